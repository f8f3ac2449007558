// A HuggingFace hub on 127.0.0.1 with the real hub's headers: /{repo}/resolve/{rev}/{file} answers
// small files itself (ETag = git blob sha1) and redirects LFS files (*.safetensors, *.bin) with a
// 302 carrying X-Linked-Etag (sha256) and X-Linked-Size to a "CDN" — a second server, so it is a
// different host as cdn-lfs.huggingface.co is, and the token must not follow the redirect there.
// Switches let a test make it gated, missing, pytorch-only, corrupt, flaky or slow; every request
// is recorded.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fixtureModelDir } from './paths.js';

export const MOCK_COMMIT = '0123456789abcdef0123456789abcdef01234567';

interface RepoFile {
  bytes: Buffer;
  lfs: boolean;
  /** git blob sha1 (small files) or sha256 (LFS). */
  etag: string;
}

export interface RecordedRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  readonly status: number;
  /** False when the response was cut off (dropLargeAfterBytes). */
  complete: boolean;
  authorization?: string;
  range?: string;
}

export interface MockHub {
  url: string;
  cdnUrl: string;
  commit: string;
  /** When set, hub requests need `Authorization: Bearer <token>`: 401 without, 403 with another. */
  token?: string;
  /** Every repository answers 404 RepoNotFound. */
  repoMissing: boolean;
  /** The repository has pytorch_model.bin and no safetensors. */
  onlyPytorchBin: boolean;
  /** The CDN serves the LFS files with one byte changed (headers still announce the true sha256). */
  corruptLarge: boolean;
  /** The next CDN GET sends this many bytes and then drops the connection (once). */
  dropLargeAfterBytes?: number;
  /** Awaited after those bytes were sent and before the connection is dropped (e.g. until the client has written them). */
  beforeDrop?: () => Promise<unknown>;
  /** The CDN pauses this long after each 16 KiB (a slow download). */
  largeDelayMs: number;
  /** While set, the CDN sends an LFS file's headers and then waits for this before the body: a download in progress for as long as a test needs (to make pulls overlap, whatever the machine's speed). */
  holdLarge?: Promise<unknown>;
  /** The CDN answers Range requests with 200 and the whole file (as some proxies do). */
  ignoreRange: boolean;
  requests: RecordedRequest[];
  /** Requests with this method whose path ends with `suffix` (any server). */
  count(method: string, suffix?: string): number;
  /** The files served for a repo (etag, bytes) by file name. */
  files(repoId?: string): Map<string, RepoFile>;
  close(): Promise<void>;
}

function gitSha1(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

function loadRepo(dir: string): Map<string, RepoFile> {
  const files = new Map<string, RepoFile>();
  for (const name of readdirSync(dir)) {
    const bytes = readFileSync(path.join(dir, name));
    const lfs = /\.(safetensors|bin)$/.test(name);
    files.set(name, { bytes, lfs, etag: lfs ? createHash('sha256').update(bytes).digest('hex') : gitSha1(bytes) });
  }
  return files;
}

const FAKE_BIN = Buffer.from('PK\u0003\u0004 not really a pickle');

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function startMockHub(repos: Record<string, string> = { 'facebook/esm2_tiny': fixtureModelDir }): Promise<MockHub> {
  const contents = new Map(Object.entries(repos).map(([id, dir]) => [id, loadRepo(dir)]));
  const hubServer = http.createServer();
  const cdnServer = http.createServer();
  const hub: MockHub = {
    url: await listen(hubServer),
    cdnUrl: await listen(cdnServer),
    commit: MOCK_COMMIT,
    repoMissing: false,
    onlyPytorchBin: false,
    corruptLarge: false,
    largeDelayMs: 0,
    ignoreRange: false,
    requests: [],
    count: (method, suffix = '') => hub.requests.filter((r) => r.method === method && r.path.endsWith(suffix)).length,
    files: (repoId = 'facebook/esm2_tiny') => visibleFiles(repoId) ?? new Map(),
    async close() {
      for (const server of [hubServer, cdnServer]) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    },
  };

  function visibleFiles(repoId: string): Map<string, RepoFile> | undefined {
    const files = contents.get(repoId);
    if (!files || !hub.onlyPytorchBin) return files;
    const out = new Map([...files].filter(([name]) => !name.includes('.safetensors')));
    out.set('pytorch_model.bin', { bytes: FAKE_BIN, lfs: true, etag: createHash('sha256').update(FAKE_BIN).digest('hex') });
    return out;
  }

  // Recorded on arrival, so counts are complete whenever a client has its answer; the status is
  // read from the response when asked. `complete` is cleared by the handler that cuts one off.
  function record(server: 'hub' | 'cdn', req: IncomingMessage, res: ServerResponse): RecordedRequest {
    const entry: RecordedRequest = {
      server,
      method: req.method ?? '',
      path: (req.url ?? '').split('?')[0],
      get status() {
        return res.statusCode;
      },
      complete: true,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(req.headers.range ? { range: req.headers.range } : {}),
    };
    hub.requests.push(entry);
    return entry;
  }

  hubServer.on('request', (req, res) => {
    record('hub', req, res);
    const fail = (status: number, code: string) => {
      res.writeHead(status, { 'x-error-code': code, 'x-repo-commit': hub.commit, 'content-type': 'text/plain' });
      res.end(`${code}\n`);
    };
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec((req.url ?? '').split('?')[0]);
    if (!m) return fail(404, 'RepoNotFound');
    const [, repoId, revision, filePath] = m.map(decodeURIComponent);
    const files = visibleFiles(repoId);
    if (hub.repoMissing || !files) return fail(404, 'RepoNotFound');
    if (hub.token !== undefined && req.headers.authorization !== `Bearer ${hub.token}`) return fail(req.headers.authorization ? 403 : 401, 'GatedRepo');
    if (revision !== 'main' && revision !== hub.commit) return fail(404, 'RevisionNotFound');
    const file = files.get(filePath);
    if (!file) return fail(404, 'EntryNotFound');
    if (file.lfs) {
      res.writeHead(302, {
        location: `${hub.cdnUrl}/cdn/${file.etag}?name=${encodeURIComponent(filePath)}&signature=x`,
        'x-repo-commit': hub.commit,
        etag: `"${file.etag}"`,
        'x-linked-etag': `"${file.etag}"`,
        'x-linked-size': String(file.bytes.length),
        'content-length': '0',
      });
      return res.end();
    }
    res.writeHead(200, { 'x-repo-commit': hub.commit, etag: `"${file.etag}"`, 'content-length': String(file.bytes.length) });
    res.end(req.method === 'HEAD' ? undefined : file.bytes);
  });

  cdnServer.on('request', (req, res) => {
    const entry = record('cdn', req, res);
    const sha = /^\/cdn\/([0-9a-f]{64})/.exec(req.url ?? '')?.[1];
    const file = [...contents.keys()].flatMap((id) => [...(visibleFiles(id)?.values() ?? [])]).find((f) => f.lfs && f.etag === sha);
    if (!file) {
      res.writeHead(404);
      return res.end();
    }
    let bytes = file.bytes;
    if (hub.corruptLarge) {
      bytes = Buffer.from(bytes);
      bytes[bytes.length >> 1] ^= 0xff;
    }
    const range = hub.ignoreRange ? null : /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    if (start >= bytes.length && range) {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` });
      return res.end();
    }
    const body = bytes.subarray(start);
    res.writeHead(range ? 206 : 200, {
      'content-length': String(body.length),
      etag: `"${file.etag}"`,
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    if (req.method === 'HEAD') return res.end();
    const drop = hub.dropLargeAfterBytes;
    hub.dropLargeAfterBytes = undefined;
    const limit = drop === undefined ? body.length : Math.min(drop, body.length);
    const hold = hub.holdLarge;
    void (async () => {
      if (hold) await hold;
      for (let off = 0; off < limit; off += 16384) {
        // Each chunk handed to the kernel before the next, so a drop happens after exactly `limit` bytes.
        await new Promise<void>((resolve, reject) => res.write(body.subarray(off, Math.min(off + 16384, limit)), (err) => (err ? reject(err) : resolve())));
        if (hub.largeDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, hub.largeDelayMs));
      }
      if (drop === undefined) res.end();
      else {
        entry.complete = false;
        await hub.beforeDrop?.();
        res.socket?.end(); // mid-body: the client has every byte sent so far, then the connection ends
      }
    })().catch(() => undefined);
  });
  return hub;
}
