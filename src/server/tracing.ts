// Distributed tracing (OpenTelemetry), off unless the standard OTEL_* variables ask for it: on when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, unless OTEL_SDK_DISABLED
// is true or OTEL_TRACES_EXPORTER is none. Off, nothing here runs: no provider, no hooks, no header.
// On, a request's server span takes the caller's W3C `traceparent` as its parent, names itself in
// the reply's `traceparent`, and its children (admission, queue wait, batch, replica run,
// serialization) are built from measured timestamps after the fact (tasks/inference.ts
// BatchRecord), so that neither the scheduler nor the engine knows of tracing. The provider is
// this server's own (not registered globally): several servers in one process each have theirs.
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, type Sampler } from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { tracingWanted } from './tracing-env.js';

export { tracingWanted };

export const DEFAULT_SERVICE_NAME = 'esm2-serve';

/**
 * OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG as the specification defines them (the v3 SDK no
 * longer reads them itself): always_on, always_off, traceidratio, parentbased_always_on (the
 * default), parentbased_always_off, parentbased_traceidratio; a ratio outside [0, 1] or unreadable is 1.
 */
export function samplerFromEnv(env: NodeJS.ProcessEnv = process.env): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG);
  const ratio = () => new TraceIdRatioBasedSampler(Number.isFinite(arg) && arg >= 0 && arg <= 1 && (env.OTEL_TRACES_SAMPLER_ARG ?? '').trim() !== '' ? arg : 1);
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** A positive integer from the environment, else undefined (the SDK's default). */
function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const value = Number(env[name]);
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

/** Epoch milliseconds of a performance.now() time (the SDK takes epoch ms). */
export function epochMs(performanceMs: number): number {
  return performance.timeOrigin + performanceMs;
}

/** One request's server span and the children built under it. */
export class RequestSpan {
  readonly context: Context;
  /** `00-<trace id>-<span id>-<flags>`: the reply's `traceparent` header. */
  readonly traceparent: string;
  private readonly endings: ((endedAt: number) => void)[] = [];
  private ended = false;

  constructor(
    private readonly tracer: Tracer,
    readonly span: Span,
    parent: Context,
  ) {
    this.context = trace.setSpan(parent, span);
    const { traceId, spanId, traceFlags } = span.spanContext();
    this.traceparent = `00-${traceId}-${spanId}-0${(traceFlags & 1).toString(16)}`;
  }

  get recording(): boolean {
    return this.span.isRecording();
  }

  /** A finished child span, from `start` to `end` (performance.now() times); `error` marks it failed. */
  child(name: string, start: number, end: number, attributes: Attributes = {}, error?: unknown): void {
    if (!this.recording) return;
    const span = this.tracer.startSpan(name, { kind: SpanKind.INTERNAL, startTime: epochMs(start), attributes }, this.context);
    if (error !== undefined) fail(span, error);
    span.end(epochMs(Math.max(start, end)));
  }

  /** Runs `fn(endedAt)` just before the span ends (a child that lasts until the reply is over). */
  atEnd(fn: (endedAt: number) => void): void {
    this.endings.push(fn);
  }

  /** Ends the span (once) at `at` (performance.now()), with the HTTP status when there is one. */
  end(at: number, status?: number, error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    for (const fn of this.endings.splice(0)) fn(at);
    if (status !== undefined) this.span.setAttribute('http.response.status_code', status);
    if (error !== undefined) fail(this.span, error);
    else if (status !== undefined && status >= 500) this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.span.end(epochMs(at));
  }
}

function fail(span: Span, error: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  if (error instanceof Error) span.recordException(error);
}

type Carrier = Record<string, string | string[] | undefined>;
const headerGetter = {
  keys: (carrier: Carrier) => Object.keys(carrier),
  get: (carrier: Carrier, key: string) => carrier[key.toLowerCase()] ?? carrier[key],
};

/** The server's tracer, exporter and propagator; `startTracing` makes one when the environment asks for it. */
export class Tracing {
  private readonly propagator = new W3CTraceContextPropagator();
  private readonly tracer: Tracer;

  constructor(private readonly provider: TracerProvider, version: string) {
    this.tracer = provider.getTracer(DEFAULT_SERVICE_NAME, version);
  }

  /**
   * A request's server span, child of the caller's span when `carrier` (HTTP headers, gRPC
   * metadata as a plain object of lower-case keys) holds a valid `traceparent` (and `tracestate`).
   */
  startRequestSpan(name: string, carrier: Carrier, attributes: Attributes = {}, startedAt = performance.now()): RequestSpan {
    const parent = this.propagator.extract(ROOT_CONTEXT, carrier, headerGetter);
    const span = this.tracer.startSpan(name, { kind: SpanKind.SERVER, startTime: epochMs(startedAt), attributes }, parent);
    return new RequestSpan(this.tracer, span, parent);
  }

  /** Runs `fn` with the request's span as the active one (for code that reads the active context). */
  withSpan<T>(request: RequestSpan, fn: () => T): T {
    return context.with(request.context, fn);
  }

  /** Exports what is buffered and stops (graceful shutdown). */
  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}

let contextManagerSet = false;

/**
 * Tracing as the environment sets it, or undefined (off). The exporter reads the SDK's own
 * OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout); the batch processor OTEL_BSP_*.
 */
export function startTracing(version: string, env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  if (!tracingWanted(env)) return undefined;
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: DEFAULT_SERVICE_NAME, [ATTR_SERVICE_VERSION]: version }))
    .merge(detectResources({ detectors: [envDetector] })); // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
  const processor = new BatchSpanProcessor({
    exporter: new OTLPTraceExporter(),
    scheduledDelayMillis: envInt(env, 'OTEL_BSP_SCHEDULE_DELAY'),
    maxQueueSize: envInt(env, 'OTEL_BSP_MAX_QUEUE_SIZE'),
    maxExportBatchSize: envInt(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
    exportTimeoutMillis: envInt(env, 'OTEL_BSP_EXPORT_TIMEOUT'),
  });
  // For withSpan: an active context that follows async calls (once per process).
  if (!contextManagerSet) contextManagerSet = context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  return new Tracing(new TracerProvider({ resource, sampler: samplerFromEnv(env), spanProcessors: [processor] }), version);
}
