// Every Prometheus metric of the service, declared in one place (prom-client, own registry).
import client from 'prom-client';

export class Metrics {
  readonly registry = new client.Registry();
  readonly requests = new client.Counter({ name: 'esm2_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [this.registry] });
  readonly requestDuration = new client.Histogram({
    name: 'esm2_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly tierRequests = new client.Counter({ name: 'esm2_tier_requests_total', help: 'Inference requests admitted, by client tier (1 is served first)', labelNames: ['tier'], registers: [this.registry] });
  readonly tierQueueWait = new client.Histogram({
    name: 'esm2_tier_queue_wait_seconds',
    help: 'Longest queue wait of an inference request\'s sequences, by client tier',
    labelNames: ['tier'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly keyRequests = new client.Counter({ name: 'esm2_key_requests_total', help: 'Requests accepted by API key, by the key\'s name (API_KEYS_FILE, or API_KEY)', labelNames: ['key'], registers: [this.registry] });
  readonly queueSequences = new client.Gauge({ name: 'esm2_queue_depth_sequences', help: 'Sequences waiting in the batch queue', registers: [this.registry] });
  readonly queueTokens = new client.Gauge({ name: 'esm2_queue_depth_tokens', help: 'Tokens waiting in the batch queue (the autoscaling signal)', registers: [this.registry] });
  /** MAX_QUEUED_TOKENS, so that an alert can say how full the queue is (k8s/components/alerts). */
  readonly queueLimitTokens = new client.Gauge({ name: 'esm2_queue_limit_tokens', help: 'Tokens the batch queue holds before new work is refused (MAX_QUEUED_TOKENS)', registers: [this.registry] });
  readonly demoModel = new client.Gauge({ name: 'esm2_demo_model', help: '1 while the built-in demo checkpoint (random weights) serves, else 0', registers: [this.registry] });
  readonly batchSequences = new client.Histogram({
    name: 'esm2_batch_sequences',
    help: 'Sequences per engine batch',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  readonly batchTokens = new client.Histogram({
    name: 'esm2_batch_tokens',
    help: 'Padded tokens per engine batch',
    buckets: [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384],
    registers: [this.registry],
  });
  readonly batchPadding = new client.Histogram({
    name: 'esm2_batch_padding_ratio',
    help: 'Share of padding in an engine batch (1 − real / padded tokens)',
    buckets: [0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75],
    registers: [this.registry],
  });
  readonly inferenceDuration = new client.Histogram({
    name: 'esm2_inference_duration_seconds',
    help: 'Engine batch duration by device',
    labelNames: ['device'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly residues = new client.Counter({ name: 'esm2_residues_total', help: 'Residues processed', registers: [this.registry] });
  readonly replicaUp = new client.Gauge({ name: 'esm2_replica_up', help: '1 when the replica serves (replica: its index; device: the device asked for)', labelNames: ['device', 'replica'], registers: [this.registry] });
  readonly replicaRestarts = new client.Counter({
    name: 'esm2_replica_restarts_total',
    help: 'Replica processes restarted after a crash or a hang',
    labelNames: ['device', 'replica'],
    registers: [this.registry],
  });
  readonly replicaHangs = new client.Counter({
    name: 'esm2_replica_hangs_total',
    help: 'Replica processes killed (and restarted) because their heartbeat went unanswered for REPLICA_HANG_TIMEOUT_MS: stopped, frozen or starved',
    labelNames: ['device', 'replica'],
    registers: [this.registry],
  });
  readonly replicaFallbacks = new client.Counter({
    name: 'esm2_replica_fallbacks_total',
    help: 'Replica processes that started on another device than asked for (requested: the device asked for, an unusable GPU; device: the one used, cpu)',
    labelNames: ['requested', 'device'],
    registers: [this.registry],
  });
  readonly batchRetries = new client.Counter({
    name: 'esm2_batch_retries_total',
    help: 'Failed batches put back in the queue: after a replica fault (reason crashed, timeout, failed, closed) or, split in halves, after an ONNX Runtime error (reason split)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly retriedSequences = new client.Counter({
    name: 'esm2_retried_sequences_total',
    help: 'Sequences of failed batches put back in the queue, by reason as esm2_batch_retries_total',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly requestsCancelled = new client.Counter({
    name: 'esm2_requests_cancelled_total',
    help: 'Requests whose client disconnected before the answer was sent',
    labelNames: ['route'],
    registers: [this.registry],
  });
  readonly droppedSequences = new client.Counter({
    name: 'esm2_dropped_sequences_total',
    help: 'Queued sequences dropped before a replica ran them (reason cancelled: the client left; timeout: REQUEST_TIMEOUT_MS; failed: another sequence of the request failed; shutdown: SHUTDOWN_TIMEOUT_MS passed; unavailable: every replica had failed)',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  readonly connectionsOpen = new client.Gauge({
    name: 'esm2_connections_open',
    help: 'Client connections open (accepted, not refused), idle keep-alive ones included',
    registers: [this.registry],
  });
  readonly connectionsEvicted = new client.Counter({
    name: 'esm2_connections_evicted_total',
    help: 'Idle connections (no request in progress) closed to make room for a new one at MAX_CONNECTIONS',
    registers: [this.registry],
  });
  readonly connectionsRefused = new client.Counter({
    name: 'esm2_connections_refused_total',
    help: 'Client connections closed as soon as accepted (reason total: MAX_CONNECTIONS were open and none was idle; per_address: MAX_CONNECTIONS_PER_ADDRESS were open from its address)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly bodyBytesInFlight = new client.Gauge({
    name: 'esm2_body_bytes_in_flight',
    help: 'Request body bytes held against MAX_BODY_BYTES_IN_FLIGHT: a declared Content-Length in full from the start of its read, a chunked body as it arrives; given back when the body is parsed, refused, or its client leaves or times out',
    registers: [this.registry],
  });
  readonly bodiesRefused = new client.Counter({
    name: 'esm2_bodies_refused_total',
    help: 'Request bodies refused with 503 server_busy because they did not fit what was left of MAX_BODY_BYTES_IN_FLIGHT (reason declared: its Content-Length, refused unread; chunked: as it arrived)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly responseWriteTimeouts = new client.Counter({
    name: 'esm2_response_write_timeouts_total',
    help: 'Connections destroyed because a response made no write progress to its client for RESPONSE_WRITE_TIMEOUT_MS (the client stopped reading)',
    labelNames: ['route'],
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
  }
}
