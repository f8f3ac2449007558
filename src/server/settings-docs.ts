// What each setting means, its variable and its default as one writes it in the environment: the
// one description of the settings (README's table, GET /v1/models, the defaults loadSettings applies).
// The order of SETTINGS_DOCS is the order of settingsInForce (settings.ts).
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface SettingDoc {
  variable: string;
  /** The default as one would write it in the environment; "unset" when there is none. */
  default: string;
  description: string;
}

export const SETTINGS_DOCS: readonly SettingDoc[] = [
  {
    variable: 'MODEL_NAME',
    default: 'unset',
    description:
      'A local checkpoint directory (ESM-2, ESM-1b/1v or ESM C, HuggingFace layout; an existing directory wins), or a HuggingFace hub repository `org/name[@revision]`, downloaded into the hub cache as Python\'s huggingface_hub does. Unset: `facebook/esm2_t6_8M_UR50D`, or — when that cannot be had (offline, nothing cached) — the built-in demo checkpoint with random weights, with a warning (see ALLOW_DEMO_MODEL). A set MODEL_NAME that cannot be loaded stops start-up. A comma list (e.g. the five `facebook/esm1v_t33_650M_UR90S_1` … `_5`) serves an **ensemble**: every member loaded, each with its own replicas on DEVICES (CPU threads split between members), of one family and one vocabulary (refused at start otherwise); `/v1/score` without `model` returns the members\' mean score and each member\'s, every route takes `model` to pick one member (README, Models). Items are trimmed; an empty item or a duplicate stops start-up',
  },
  { variable: 'HOST', default: '0.0.0.0', description: 'Address to listen on' },
  { variable: 'PORT', default: '8000', description: 'Port to listen on (0–65535; 0 picks a free one)' },
  {
    variable: 'GRPC_PORT',
    default: 'unset',
    description:
      'Port of the gRPC API (`esm2.v1.Esm2`, `grpc.health.v1.Health`, server reflection; README, gRPC) on HOST, started and drained with the HTTP server, with the same API key, rate limit and request path. Unset or empty: no gRPC server; 0 picks a free one (logged)',
  },
  { variable: 'LOG_LEVEL', default: 'info', description: `Log level: ${LOG_LEVELS.join(', ')}` },
  { variable: 'CORS_ORIGINS', default: '*', description: 'Allowed cross-origin origins: a comma list, or `*` for any; empty: none' },
  { variable: 'MAX_BATCH_SIZE', default: '64', description: 'Most sequences in one request' },
  { variable: 'MAX_SEQUENCE_LENGTH', default: '1022', description: 'Most residues in one sequence' },
  { variable: 'BATCH_QUEUE_ENABLED', default: 'true', description: 'Batch sequences of concurrent requests together (true/false); pays off on GPUs — on CPU-only hosts false measured 1.3–2.3× faster under concurrency (docs/performance.md)' },
  { variable: 'BATCH_QUEUE_MAX_WAIT_MS', default: '50', description: 'Longest a sequence waits for others to share its batch' },
  { variable: 'BATCH_QUEUE_WAIT_WHEN_IDLE', default: 'false', description: 'Also wait for company when no batch is running (the FastAPI service did); false dispatches at once then' },
  { variable: 'BATCH_QUEUE_MAX_SIZE', default: '64', description: 'Most sequences in one engine batch' },
  {
    variable: 'DEVICES',
    default: 'auto',
    description: '`auto` (one replica per NVIDIA GPU, honouring `CUDA_VISIBLE_DEVICES`, when the CUDA execution provider is installed; else CPU), `cpu`, `cpu:N` (N CPU replicas sharing the cores), `cuda:0,1,…`, `tensorrt:0,…`, `webgpu`',
  },
  { variable: 'PRECISION', default: 'auto', description: 'Compiled graph precision: `auto` (per replica, from the device it actually runs on: fp32 on CPU — a GPU replica fallen back to CPU included —, fp16 on GPU), `fp32`, `fp16` (kept on a CPU fallback, and reported), `int8` (CPU only: every encoder Linear dynamically quantized: 1.5–1.6× fp32 at t30, 1.2× at t12 on a 2-core AVX2 CPU; start-up refuses it on a GPU device; `esm2 compare` measures it against fp32 on your checkpoint and sequences; docs/performance.md)' },
  { variable: 'MAX_BATCH_TOKENS', default: '4096', description: 'Padded-token budget of one engine batch (sequences × longest length, cls and eos included); at least MAX_SEQUENCE_LENGTH + 2' },
  { variable: 'DISTRIBUTION_STRATEGY', default: 'balanced', description: '`/predict/batch` split over replicas: `balanced` (by padded tokens) or `contiguous` (the original service\'s chunks)' },
  { variable: 'MAX_QUEUED_TOKENS', default: '262144', description: 'Tokens waiting in the queue beyond which requests get 429' },
  { variable: 'REQUEST_TIMEOUT_MS', default: '120000', description: 'A request still unanswered after this gets 504 and its work is dropped' },
  { variable: 'BODY_LIMIT_BYTES', default: '10485760', description: 'Largest request body (413 beyond), at least 1024' },
  { variable: 'MAX_REQUEST_TOKENS', default: '8388608', description: 'Tokens of inference one request may need, counted before any work: every sequence (cls and eos included), every window, every masked copy (a deep mutational scan or PLL of L residues is L passes). Beyond: 413 `too_costly` naming the figure. The default takes a PLL of 8 × 1,022 residues; such a request runs in parts and is never refused against itself by MAX_QUEUED_TOKENS. A request whose tokens would take longer than REQUEST_TIMEOUT_MS at the measured rate is refused the same way' },
  { variable: 'MAX_REQUEST_RESULT_BYTES', default: '536870912', description: 'Bytes of results the server may hold for one request (engine outputs, assembled windows, score matrices), computed before any work; beyond: 413 naming the figure. 512 MiB: contacts of one sequence in window mode up to ~11,000 residues' },
  { variable: 'MAX_RESULT_BYTES_IN_FLIGHT', default: '1073741824', description: 'Bytes of results the server holds for all requests at once, until each reply is sent or abandoned (RESPONSE_WRITE_TIMEOUT_MS bounds a client that does not read); a request that does not fit now gets 429 with Retry-After. Keeps the server process of a t33 pod well inside 8 GiB' },
  { variable: 'MAX_JSON_RESPONSE_BYTES', default: '268435456', description: 'Largest JSON response, estimated at 20 bytes a number before any work (JSON goes out streamed); beyond: 413 pointing to `Accept: application/octet-stream` (safetensors, 4 bytes a number)' },
  { variable: 'MAX_BATCH_MEMORY_BYTES', default: '2147483648', description: 'Estimated replica memory of one engine batch (activations, attention scores, outputs; the contacts graph keeps every layer\'s attention maps, layers × heads × length² floats a sequence). Sequences join a batch only within it; one sequence over it runs alone' },
  { variable: 'MAX_BATCH_MS', default: '1000', description: 'Longest an engine batch should run: once the replicas\' rate has been measured, a batch holds at most the tokens a replica runs in this long (at least one sequence; never more than MAX_BATCH_TOKENS), so that a request arriving behind running work waits about this long. Binds on slow replicas (CPU, large models); on GPUs MAX_BATCH_TOKENS is reached first. Together with fair queuing (the oldest work of a request with nothing running goes first) it keeps a small request quick beside a large one' },
  {
    variable: 'MAX_BODY_BYTES_IN_FLIGHT',
    default: '268435456',
    description:
      'Request body bytes the server holds at once, all requests together (256 MiB: 25 bodies of the largest size; parsing one transiently takes a few times its size, so this stays well inside the 4 GiB the Kubernetes pod requests). A body whose Content-Length does not fit what is left is refused unread, a chunked one as soon as it would pass it: 503 `server_busy` with Retry-After: 1, connection closed (`esm2_bodies_refused_total`; held now: `esm2_body_bytes_in_flight`). Bytes are given back when the body is parsed, refused, or its client leaves or times out (CLIENT_TIMEOUT_MS). At least BODY_LIMIT_BYTES',
  },
  { variable: 'API_KEY', default: 'unset', description: 'When set, every route but health, readiness, metrics and the web page\'s own files (`/ui`, which asks for the key) needs `Authorization: Bearer <API_KEY>` (compared in constant time; 401 otherwise)' },
  { variable: 'RATE_LIMIT_PER_MINUTE', default: '0', description: 'Requests per minute allowed per API key (per client address for requests without one), bursts up to that many; beyond: 429 with Retry-After. Health, readiness, metrics and the web page\'s files are not counted. 0: no limit' },
  { variable: 'API_KEYS_FILE', default: 'unset', description: 'A YAML or JSON file of API keys, each with a name, a tier (1 is served first) and its own rate limit (README, API keys and tiers); reread on SIGHUP (a bad file then keeps the keys in force and logs why). A bad file stops start-up. With API_KEY too, that key is one more (tier 1). Each key has its own rate-limit bucket; `esm2_key_requests_total{key}` counts requests by key name' },
  { variable: 'AUTH_FAILURES_PER_MINUTE', default: '20', description: 'Failed authentications (no key, a wrong one) allowed per client address a minute (bursts up to that many), when keys are set; past them the address gets 429 `auth_throttled` with Retry-After without its key being looked at, so guessing is bounded. Other addresses are unaffected. 0: no throttle' },
  { variable: 'TIER_MAX_WAIT_MS', default: '2000', description: 'Requests of a higher tier (smaller number) are served first; work of a lower tier that has waited longer than this goes first instead (every other batch at most), so no tier starves. Fair queuing by request holds within a tier. `esm2_tier_requests_total{tier}` and `esm2_tier_queue_wait_seconds{tier}` show each tier' },
  { variable: 'REPLICA_RUN_TIMEOUT_MS', default: '600000', description: 'A replica whose batch runs longer than this is killed and restarted, and the batch is retried on another replica (at most twice)' },
  { variable: 'REPLICA_HANG_TIMEOUT_MS', default: '10000', description: 'A replica process whose heartbeat goes unanswered this long — stopped (SIGSTOP), frozen or starved, idle or busy; a worker thread answers it, so a long batch does not count — is killed and restarted like one past REPLICA_RUN_TIMEOUT_MS, and its batch is retried on another replica. `/health` shows it, `esm2_replica_hangs_total` counts it. At least 100' },
  { variable: 'CLIENT_TIMEOUT_MS', default: '30000', description: 'A client must send its whole request (headers and body) within this; a slower one gets 408 and its connection is closed. Inference time is not counted' },
  { variable: 'MAX_CONNECTIONS', default: '4096', description: 'Most client connections open at once, idle keep-alive ones included. At the cap a new connection closes the one idle longest (no request in progress: `esm2_connections_evicted_total`), so thousands of held idle sockets do not lock new clients out; only when every open connection has a request in progress is the new one closed as soon as it is accepted, unanswered (`esm2_connections_refused_total{reason="total"}`). Well under the usual file-descriptor limit (1,024 soft on many hosts — raise `ulimit -n` above this —, 65,536 or more in containers), so that replicas, model files and the cache keep theirs' },
  { variable: 'MAX_CONNECTIONS_PER_ADDRESS', default: '256', description: 'Most client connections open at once from one client address. Past it a new connection from that address closes that address\'s connection idle longest (`esm2_connections_evicted_total`); only when all of them have a request in progress is it closed as soon as accepted, unanswered (`esm2_connections_refused_total{reason="per_address"}`), so that one client cannot hold them all. Behind a proxy or ingress every connection comes from its few addresses: raise it above the proxy\'s connections to one pod, or 0: no per-address cap' },
  { variable: 'KEEP_ALIVE_TIMEOUT_MS', default: '5000', description: 'An idle keep-alive connection is closed after this (Node\'s default; Node waits 1 s more than it advertises). Behind a load balancer that reuses idle connections, set it above the balancer\'s idle timeout (ingress-nginx and AWS ALB: 60 s; the Kubernetes ConfigMap sets 65000), or it may send a request on a connection as the server closes it' },
  { variable: 'RESPONSE_WRITE_TIMEOUT_MS', default: '30000', description: 'A response whose client stops reading — its unsent data makes no progress to the client for this long — has its connection destroyed, and what it held freed (`esm2_response_write_timeouts_total`). Only the writing of an answer counts: not inference time, not a quiet event stream with nothing unsent; a slow client that keeps reading is not cut (any byte it takes counts as progress, a large single write included). A cut comes between one and two of this after the client stopped reading' },
  { variable: 'ALLOW_DEMO_MODEL', default: 'true', description: 'Whether MODEL_NAME unset may fall back to the built-in demo checkpoint (random weights) when the default model cannot be had. false: start-up fails with the reason instead (the container images and Kubernetes overlays set false). While the demo serves, `/health` says so in `status` (`demo`, 200) and in `message` (random weights)' },
  { variable: 'ALLOW_CPU_FALLBACK', default: 'true', description: 'Whether a GPU replica (`cuda`, `tensorrt`, `webgpu`) whose device is unusable, or `DEVICES=auto` finding NVIDIA GPUs without the CUDA execution provider, may run on CPU instead (in the CPU\'s precision: fp32 with PRECISION=auto; `/health` degraded with the reason, `esm2_replica_fallbacks_total{requested,device}`, a warning line). false: start-up fails with one line naming the device and the reason (the CUDA image sets false)' },
  { variable: 'SHUTDOWN_TIMEOUT_MS', default: '130000', description: 'SIGTERM/SIGINT drain: accepted work may finish for this long (REQUEST_TIMEOUT_MS + 10 s by default); then what still waits is answered 503 and the process exits with code 1. A second signal exits at once (130 for SIGINT, 143 for SIGTERM); the same signal again within 500 ms (the copy npm forwards of a signal to its process group) is not a second one' },
];

/**
 * The HuggingFace hub client's variables (model/hub/env.ts): read as Python's huggingface_hub reads
 * them, so one environment and one cache serve both. Documented in the same table; not part of
 * Settings, since the hub client reads them itself, also for `esm2 pull`.
 */
export const HUB_SETTINGS_DOCS: readonly SettingDoc[] = [
  { variable: 'HF_ENDPOINT', default: 'https://huggingface.co', description: 'Hub to download from (a mirror, or a hub proxy)' },
  { variable: 'HF_TOKEN', default: 'unset', description: 'Access token for gated or private repositories (sent to HF_ENDPOINT only, never to the CDN it redirects to); unset: the file `huggingface-cli login` wrote, `$HF_HOME/token`, if any' },
  { variable: 'HF_HOME', default: '~/.cache/huggingface', description: 'HuggingFace home (honours `XDG_CACHE_HOME`); the hub cache is `$HF_HOME/hub`' },
  { variable: 'HF_HUB_CACHE', default: '$HF_HOME/hub', description: 'The hub cache (`models--org--name/{blobs,snapshots,refs}`, shared with Python); may be a volume several servers share' },
  { variable: 'HF_HUB_OFFLINE', default: '0', description: '`1` (or true/yes/on): never contact the hub; models come from the cache only' },
  { variable: 'HF_HUB_ETAG_TIMEOUT', default: '10', description: 'Seconds to wait for the hub\'s answer about a file (3 at most for the default model on huggingface.co, so an offline machine starts the demo quickly)' },
  { variable: 'HF_HUB_DOWNLOAD_TIMEOUT', default: '10', description: 'Seconds a download may connect or stall before it is retried (5 retries, resuming)' },
];

/**
 * OpenTelemetry's standard variables that tracing honours (server/tracing.ts). Documented in the
 * same table; not part of Settings, since the OpenTelemetry SDK and exporter read most of them.
 */
export const TRACING_SETTINGS_DOCS: readonly SettingDoc[] = [
  { variable: 'OTEL_EXPORTER_OTLP_ENDPOINT', default: 'unset', description: 'Tracing on: OTLP/HTTP (JSON) spans go to `<endpoint>/v1/traces`; unset (and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT unset): tracing off, no `traceparent` header, nothing registered' },
  { variable: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', default: 'unset', description: 'Tracing on, spans sent to exactly this URL (wins over OTEL_EXPORTER_OTLP_ENDPOINT); also `OTEL_EXPORTER_OTLP_HEADERS` / `_TIMEOUT` as the SDK reads them' },
  { variable: 'OTEL_SDK_DISABLED', default: 'false', description: '`true`: tracing off whatever the endpoint' },
  { variable: 'OTEL_TRACES_EXPORTER', default: 'otlp', description: '`none`: tracing off whatever the endpoint' },
  { variable: 'OTEL_SERVICE_NAME', default: 'esm2-serve', description: 'The spans\' `service.name` (`OTEL_RESOURCE_ATTRIBUTES` adds others)' },
  { variable: 'OTEL_TRACES_SAMPLER', default: 'parentbased_always_on', description: 'always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio' },
  { variable: 'OTEL_TRACES_SAMPLER_ARG', default: '1', description: 'The ratio (0 … 1) of the traceidratio samplers' },
  { variable: 'OTEL_BSP_SCHEDULE_DELAY', default: '5000', description: 'Milliseconds between exports of finished spans (also `OTEL_BSP_MAX_QUEUE_SIZE`, `_MAX_EXPORT_BATCH_SIZE`, `_EXPORT_TIMEOUT`)' },
];
