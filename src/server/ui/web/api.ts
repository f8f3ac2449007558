// The page's client of the v1 API: JSON calls, safetensors downloads and the scan's event stream.
// The API key lives in this module's memory only (never in storage) and goes out as a Bearer token.
// Paths are relative to the server root, found from this module's own URL (/ui/js/api.js), so the
// page works behind a proxy that serves everything under a prefix.
const ROOT = new URL('../../', import.meta.url);

let apiKey: string | undefined;

export function setApiKey(key: string | undefined): void {
  apiKey = key && key.length > 0 ? key : undefined;
}

export function hasApiKey(): boolean {
  return apiKey !== undefined;
}

/** An error the server answered with ({detail, error}), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  return { ...extra, ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) };
}

async function send(path: string, init: RequestInit): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(new URL(path, ROOT), init);
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'network', `the server could not be reached (${(err as Error).message})`);
  }
  if (response.ok) return response;
  let detail = `${response.status} ${response.statusText}`;
  let code = 'http_error';
  try {
    const body = (await response.json()) as { detail?: string; error?: string };
    detail = body.detail ?? detail;
    code = body.error ?? code;
  } catch {
    // not JSON: keep the status line
  }
  throw new ApiError(response.status, code, detail);
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await (await send(path, { headers: headers(), signal })).json()) as T;
}

export async function postJson<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const response = await send(path, { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body), signal });
  return (await response.json()) as T;
}

/** POST for a binary body (e.g. safetensors with Accept: application/octet-stream). */
export async function postForBlob(path: string, body: unknown, accept: string, signal?: AbortSignal): Promise<Blob> {
  const response = await send(path, { method: 'POST', headers: headers({ 'content-type': 'application/json', accept }), body: JSON.stringify(body), signal });
  return response.blob();
}

/**
 * POST to a server-sent-event route; `onEvent` gets each event's name and parsed data. Resolves
 * with the data of the `result` event; an `error` event rejects with an ApiError.
 */
export async function postEventStream<T>(path: string, body: unknown, onEvent: (event: string, data: unknown) => void, signal?: AbortSignal): Promise<T> {
  const response = await send(path, {
    method: 'POST',
    headers: headers({ 'content-type': 'application/json', accept: 'text/event-stream' }),
    body: JSON.stringify(body),
    signal,
  });
  if (!response.body) throw new ApiError(0, 'no_stream', 'the browser gave no response stream');
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let result: { data: T } | undefined;
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue; // keep-alive comment
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = text;
        else if (field === 'data') data.push(text);
      }
      if (data.length === 0) continue;
      const parsed = JSON.parse(data.join('\n')) as unknown;
      if (event === 'error') {
        const e = parsed as { status?: number; error?: string; detail?: string };
        throw new ApiError(e.status ?? 500, e.error ?? 'error', e.detail ?? 'the scan failed');
      }
      if (event === 'result') result = { data: parsed as T };
      onEvent(event, parsed);
    }
    if (done) break;
  }
  if (!result) throw new ApiError(0, 'stream_ended', 'the stream ended without a result');
  return result.data;
}
