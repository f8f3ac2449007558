// Whether the OTEL_* variables ask for tracing, without loading OpenTelemetry: app.ts imports the
// SDK (tracing.ts, ~28 MiB resident) only when they do.

/** On when an OTLP endpoint is set, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  const set = (name: string) => (env[name] ?? '').trim() !== '';
  if (!set('OTEL_EXPORTER_OTLP_ENDPOINT') && !set('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')) return false;
  if (/^\s*true\s*$/i.test(env.OTEL_SDK_DISABLED ?? '')) return false;
  return !/^\s*none\s*$/i.test(env.OTEL_TRACES_EXPORTER ?? '');
}
