// The Kubernetes manifests (k8s/): every overlay rendered by `kubectl kustomize` and every object
// validated offline against the Kubernetes schemas; then what the objects say is checked against
// the server itself — probes and scrape paths are routes it serves (without the API key), the
// ConfigMap holds only variables it reads and values it accepts (a real model, never the demo), the
// base HPA needs nothing but the CPU metric, the queue-autoscaling component's metric is one it
// exports and its prometheus-adapter rule serves exactly that, one scrape path (the ServiceMonitor),
// the drain fits the grace period, the Ingress and PodDisruptionBudget are sane.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { parse as parseYamlText } from 'yaml';
import { registerEmbed } from '../src/cli/embed.js';
import { SETTINGS_DOCS, loadSettings } from '../src/server/settings.js';
import { parseShardSpec, selectShard } from '../src/tasks/embed-file.js';
import {
  describe,
  environmentVariablesRead,
  exportedMetricNames,
  findKubectl,
  kustomize,
  nginxSize,
  readYamlFile,
  serverRoutes,
  validateObjects,
  type K8sObject,
  type RouteProbe,
} from './helpers/deploy.js';
import { repoRoot } from './helpers/paths.js';

const K8S = path.join(repoRoot, 'k8s');
const BASE = path.join(K8S, 'base');
const OVERLAYS = ['cpu', 'gpu', '8gpu'] as const;
type Overlay = (typeof OVERLAYS)[number];
/** Manifests in k8s/base applied on their own (`kubectl apply -f`), not through the kustomization. */
const STANDALONE = ['job-embed.yaml', 'esm2-8gpu-service.yaml'];
const NAMESPACE = 'esm2-inference';
const LIVENESS = '/v1/health/live';
const READINESS = ['/ready', '/v1/health/ready'];

const kubectl = findKubectl();
const noKubectl = 'missing' in kubectl ? kubectl.missing : undefined;
if (noKubectl) console.warn(`deploy-k8s: ${noKubectl}`);

let routes: RouteProbe;
const renders = new Map<string, K8sObject[]>();

before(async () => {
  routes = await serverRoutes();
});
after(async () => {
  await routes?.close();
});

async function render(overlay: Overlay): Promise<K8sObject[]> {
  if (!('path' in kubectl)) throw new Error('kubectl missing');
  if (!renders.has(overlay)) renders.set(overlay, await kustomize(kubectl.path, path.join(K8S, 'overlays', overlay)));
  return renders.get(overlay)!;
}

function only(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `exactly one ${kind}${name ? `/${name}` : ''} (found ${found.length})`);
  return found[0];
}

const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The environment a container starts with: its ConfigMaps (envFrom) overlaid by its env values. */
function containerEnv(container: K8sObject, objects: readonly K8sObject[]): { values: Record<string, string>; fromSecrets: Record<string, K8sObject> } {
  const values: Record<string, string> = {};
  const fromSecrets: Record<string, K8sObject> = {};
  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef;
    assert.ok(ref, `${container.name}: envFrom only from ConfigMaps`);
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === ref.name);
    assert.ok(configMap || ref.optional === true, `${container.name}: ConfigMap ${ref.name} is not among the objects and not optional`);
    Object.assign(values, configMap?.data ?? {});
  }
  for (const entry of container.env ?? []) {
    if (entry.valueFrom?.secretKeyRef) fromSecrets[entry.name] = entry.valueFrom.secretKeyRef;
    else if (entry.value !== undefined) values[entry.name] = String(entry.value);
  }
  return { values, fromSecrets };
}

const under = (file: string, dir: string) => file === dir || file.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/** Everything a server pod must get right, whichever manifest it comes from. */
async function checkServerPod(where: string, pod: K8sObject, objects: readonly K8sObject[]): Promise<Record<string, string>> {
  const spec = pod.spec;
  const container = spec.containers.find((c: K8sObject) => c.name === 'esm2');
  assert.ok(container, `${where}: a container named esm2`);
  const { values: env, fromSecrets } = containerEnv(container, objects);

  // Every variable is one the server reads, and the server accepts the values.
  const known = environmentVariablesRead();
  for (const name of [...Object.keys(env), ...Object.keys(fromSecrets)]) assert.ok(known.has(name), `${where}: ${name} is not an environment variable the server reads`);
  const settings = loadSettings(env);

  // The API key comes from a Secret, optionally, and never as a literal.
  assert.ok(!('API_KEY' in env), `${where}: API_KEY must come from a Secret, not a literal or a ConfigMap`);
  assert.equal(fromSecrets.API_KEY?.optional, true, `${where}: API_KEY from an optional secretKeyRef`);

  // Port and probes.
  const httpPort = container.ports.find((p: K8sObject) => p.name === 'http');
  assert.ok(httpPort, `${where}: a container port named http`);
  assert.equal(httpPort.containerPort, settings.port, `${where}: containerPort = PORT`);
  const portOf = (port: string | number) => (typeof port === 'number' ? port : container.ports.find((p: K8sObject) => p.name === port)?.containerPort);
  const probe = async (name: string, expected: string[]) => {
    const get = container[name]?.httpGet;
    assert.ok(get, `${where}: ${name} is an httpGet probe`);
    assert.ok(expected.includes(get.path), `${where}: ${name} on ${get.path}, expected ${expected.join(' or ')}`);
    assert.equal(portOf(get.port), settings.port, `${where}: ${name} port is the server's`);
    assert.ok(routes.has(get.path), `${where}: ${name} path ${get.path} is not a route of the server`);
    return { path: get.path as string, status: await routes.status(get.path) };
  };
  const live = await probe('livenessProbe', [LIVENESS]);
  assert.equal(live.status, 200, `${where}: liveness answers 200 while the model loads, without the API key`);
  for (const name of ['readinessProbe', 'startupProbe']) {
    const ready = await probe(name, READINESS);
    assert.equal(ready.status, 503, `${where}: ${name} ${ready.path} is 503 until the model is ready (and reachable without the API key)`);
  }
  const startup = container.startupProbe;
  assert.ok(startup.periodSeconds * startup.failureThreshold >= 600, `${where}: the startup probe allows at least 10 minutes to download and compile the model`);

  // One scrape path: the ServiceMonitor (servicemonitor component). Scrape annotations as well would
  // have a Prometheus that honours both scrape every pod twice, doubling the queue depth the
  // adapter sums per pod.
  const annotations = pod.metadata.annotations ?? {};
  assert.deepEqual(Object.keys(annotations).filter((k) => k.startsWith('prometheus.io/')), [], `${where}: no prometheus.io/* scrape annotations (the ServiceMonitor scrapes)`);

  // Drain: preStop, then SIGTERM and up to REQUEST_TIMEOUT_MS for accepted requests.
  const preStop = container.lifecycle?.preStop;
  const preStopSeconds = preStop?.sleep?.seconds ?? (preStop?.exec?.command?.[0] === 'sleep' ? Number(preStop.exec.command[1]) : NaN);
  assert.ok(preStopSeconds > 0, `${where}: a preStop pause so endpoints stop routing before the drain`);
  const needed = preStopSeconds + Math.ceil(settings.requestTimeoutMs / 1000);
  assert.ok(spec.terminationGracePeriodSeconds >= needed, `${where}: terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} < preStop ${preStopSeconds} s + REQUEST_TIMEOUT_MS ${settings.requestTimeoutMs / 1000} s`);

  // Volumes: /dev/shm in memory, and every path the server writes on a volume.
  const mounts: { name: string; mountPath: string }[] = container.volumeMounts ?? [];
  const volumeOf = (mountPath: string) => spec.volumes.find((v: K8sObject) => v.name === mounts.find((m) => m.mountPath === mountPath)?.name);
  const shm = volumeOf('/dev/shm');
  assert.equal(shm?.emptyDir?.medium, 'Memory', `${where}: /dev/shm is a memory emptyDir (replicas pass large results through it)`);
  assert.ok(shm.emptyDir.sizeLimit, `${where}: /dev/shm has a sizeLimit`);
  for (const mount of mounts) assert.ok(spec.volumes.some((v: K8sObject) => v.name === mount.name), `${where}: volumeMount ${mount.name} has a volume`);
  assert.ok(env.HF_HOME, `${where}: HF_HOME (the model cache) is set`);
  for (const variable of ['HF_HOME', 'ESM2_COMPILE_CACHE', 'ESM2_DEMO_CACHE']) {
    if (!env[variable]) continue;
    assert.ok(
      mounts.some((m) => under(env[variable], m.mountPath)),
      `${where}: ${variable}=${env[variable]} is not on a volume (the root filesystem is read-only)`,
    );
  }
  for (const volume of spec.volumes) {
    if (volume.persistentVolumeClaim) {
      const claim = volume.persistentVolumeClaim.claimName;
      assert.ok(objects.some((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === claim), `${where}: PVC ${claim} is among the objects`);
    }
  }

  // Non-root, no privilege escalation, read-only root filesystem.
  assert.equal(spec.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
  assert.ok(spec.securityContext?.runAsUser > 0, `${where}: a non-root runAsUser`);
  assert.equal(container.securityContext?.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation false`);
  assert.equal(container.securityContext?.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
  assert.ok(mounts.some((m) => m.mountPath === '/tmp'), `${where}: a writable /tmp`);
  return env;
}

function gpusOf(container: K8sObject): number {
  return Number(container.resources?.limits?.['nvidia.com/gpu'] ?? 0);
}

test('every manifest under k8s/ is used: in base/kustomization.yaml or applied on its own', async () => {
  const kustomization = (await readYamlFile(path.join(BASE, 'kustomization.yaml')))[0];
  const files = readdirSync(BASE).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual(files.filter((f) => !kustomization.resources.includes(f) && !STANDALONE.includes(f)), [], 'manifests nobody applies');
  assert.deepEqual(STANDALONE.filter((f) => kustomization.resources.includes(f)), [], 'standalone manifests must stay out of the service kustomization');
});

for (const overlay of OVERLAYS) {
  test(`overlay ${overlay}: renders, and every object is valid against the Kubernetes schemas`, { skip: noKubectl }, async () => {
    const objects = await render(overlay);
    assert.deepEqual(await validateObjects(objects), []);
    for (const object of objects) {
      if (object.kind !== 'Namespace') assert.equal(object.metadata.namespace, NAMESPACE, `${describe(object)}: namespace`);
    }
    const kinds = new Set(objects.map((o) => o.kind));
    for (const kind of ['Namespace', 'ConfigMap', 'Deployment', 'Service', 'Ingress', 'PodDisruptionBudget']) assert.ok(kinds.has(kind), `${overlay}: has a ${kind}`);
  });

  test(`overlay ${overlay}: the server pod — probes, settings, drain, volumes, security`, { skip: noKubectl }, async () => {
    const objects = await render(overlay);
    const deployment = only(objects, 'Deployment');
    const template = deployment.spec.template;
    assert.ok(matches(deployment.spec.selector.matchLabels, template.metadata.labels), 'the Deployment selects its own pods');
    await checkServerPod(`${overlay} Deployment`, template, objects);
    const service = only(objects, 'Service');
    assert.ok(matches(service.spec.selector, template.metadata.labels), 'the Service selects the server pods');
    const container = template.spec.containers[0];
    for (const port of service.spec.ports) {
      assert.ok(container.ports.some((p: K8sObject) => p.name === port.targetPort || p.containerPort === port.targetPort), `Service port ${port.name} targets a container port`);
    }
  });

  test(`overlay ${overlay}: the ConfigMap holds every setting but the API key, and nothing the server does not read`, { skip: noKubectl }, async () => {
    const configMap = only(await render(overlay), 'ConfigMap', 'esm2-config');
    const keys = Object.keys(configMap.data);
    const known = environmentVariablesRead();
    assert.deepEqual(keys.filter((k) => !known.has(k)), [], 'keys that are no environment variable the server reads');
    assert.deepEqual(SETTINGS_DOCS.map((d) => d.variable).filter((v) => v !== 'API_KEY' && !keys.includes(v)), [], 'settings missing from the ConfigMap');
    assert.ok(!keys.includes('API_KEY') && !keys.includes('HF_TOKEN'), 'secrets stay out of the ConfigMap');
    assert.doesNotThrow(() => loadSettings(configMap.data), 'the server accepts every value');
  });

  test(`overlay ${overlay}: Ingress has a class by ingressClassName only, and limits matching the server's`, { skip: noKubectl }, async () => {
    const objects = await render(overlay);
    const ingress = only(objects, 'Ingress');
    const settings = loadSettings(only(objects, 'ConfigMap', 'esm2-config').data);
    const annotations = ingress.metadata.annotations ?? {};
    assert.ok(ingress.spec.ingressClassName, 'spec.ingressClassName');
    assert.ok(!('kubernetes.io/ingress.class' in annotations), 'no deprecated kubernetes.io/ingress.class annotation beside ingressClassName');
    assert.equal(nginxSize(annotations['nginx.ingress.kubernetes.io/proxy-body-size']), settings.bodyLimitBytes, 'proxy-body-size = BODY_LIMIT_BYTES');
    for (const key of ['proxy-read-timeout', 'proxy-send-timeout']) {
      const seconds = Number(annotations[`nginx.ingress.kubernetes.io/${key}`]);
      assert.ok(seconds >= settings.requestTimeoutMs / 1000, `${key} ${seconds} s ≥ REQUEST_TIMEOUT_MS, so the server's 504 arrives, not the proxy's`);
      assert.ok(seconds <= settings.requestTimeoutMs / 1000 + 60, `${key} ${seconds} s within a minute of REQUEST_TIMEOUT_MS`);
    }
    const service = only(objects, 'Service');
    for (const rule of ingress.spec.rules) {
      for (const p of rule.http.paths) {
        assert.equal(p.backend.service.name, service.metadata.name, 'the backend is the Service');
        assert.ok(service.spec.ports.some((sp: K8sObject) => sp.name === p.backend.service.port.name || sp.port === p.backend.service.port.number), 'the backend port is a Service port');
      }
    }
  });

  test(`overlay ${overlay}: the PodDisruptionBudget never blocks a drain at one replica`, { skip: noKubectl }, async () => {
    const objects = await render(overlay);
    const pdb = only(objects, 'PodDisruptionBudget');
    const deployment = only(objects, 'Deployment');
    assert.ok(matches(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels), 'the PDB selects the server pods');
    const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler');
    for (const replicas of new Set([1, deployment.spec.replicas ?? 1, hpa?.spec.minReplicas ?? 1])) {
      assert.ok(allowedDisruptions(pdb.spec, replicas) >= 1, `${replicas} replica(s): the PDB allows no eviction`);
    }
  });
}

/** Pods the eviction API may take at `replicas` healthy pods (percentages round up, as Kubernetes does). */
function allowedDisruptions(spec: { maxUnavailable?: number | string; minAvailable?: number | string }, replicas: number): number {
  const count = (value: number | string) => (typeof value === 'number' ? value : Math.ceil((Number(value.replace('%', '')) / 100) * replicas));
  if (spec.maxUnavailable !== undefined) return Math.min(replicas, count(spec.maxUnavailable));
  if (spec.minAvailable !== undefined) return Math.max(0, replicas - count(spec.minAvailable));
  return replicas;
}

/** The HPA of a render, checked for what every one needs: it scales the Deployment, which leaves replicas to it. */
function checkHpa(where: string, objects: readonly K8sObject[]): K8sObject {
  const hpa = only(objects, 'HorizontalPodAutoscaler');
  const deployment = only(objects, 'Deployment');
  assert.equal(hpa.apiVersion, 'autoscaling/v2');
  assert.deepEqual(
    { kind: hpa.spec.scaleTargetRef.kind, name: hpa.spec.scaleTargetRef.name },
    { kind: 'Deployment', name: deployment.metadata.name },
    `${where}: the HPA scales the server Deployment`,
  );
  assert.equal(deployment.spec.replicas, undefined, `${where}: replicas left to the HPA (a replicas field would reset it on every apply)`);
  assert.ok(hpa.spec.minReplicas >= 1 && hpa.spec.maxReplicas > hpa.spec.minReplicas, `${where}: room to scale`);
  const cpu = hpa.spec.metrics.find((m: K8sObject) => m.type === 'Resource' && m.resource.name === 'cpu');
  assert.ok(cpu, `${where}: a CPU metric`);
  assert.ok(deployment.spec.template.spec.containers[0].resources.requests.cpu, `${where}: CPU utilization needs a CPU request`);
  return hpa;
}

const metricTypes = (hpa: K8sObject) => hpa.spec.metrics.map((m: K8sObject) => (m.type === 'Resource' ? `Resource/${m.resource.name}` : `${m.type}/${m[m.type.charAt(0).toLowerCase() + m.type.slice(1)]?.metric?.name}`));

test('HPA of the base and the cpu overlay: CPU only, so it scales up and down on a bare cluster', { skip: noKubectl }, async () => {
  // An HPA with a metric it cannot get (no prometheus-adapter) does not scale down at all since
  // Kubernetes 1.21: the base must name nothing but what metrics-server provides.
  if (!('path' in kubectl)) return;
  const base = await kustomize(kubectl.path, BASE);
  assert.deepEqual(metricTypes(checkHpa('base', base)), ['Resource/cpu'], 'base: the CPU metric alone');
  assert.deepEqual(metricTypes(checkHpa('cpu', await render('cpu'))), ['Resource/cpu'], 'cpu overlay: the CPU metric alone');
});

test('bare cluster: the base, cpu and 8gpu overlays use only built-in Kubernetes kinds (no Prometheus-operator CRDs)', { skip: noKubectl }, async () => {
  if (!('path' in kubectl)) return;
  const builtIn = /^(v1|apps\/v1|batch\/v1|autoscaling\/v2|policy\/v1|networking\.k8s\.io\/v1)$/;
  for (const [where, objects] of [['base', await kustomize(kubectl.path, BASE)], ['cpu', await render('cpu')], ['8gpu', await render('8gpu')]] as const) {
    assert.deepEqual(objects.filter((o) => !builtIn.test(o.apiVersion)).map(describe), [], `${where}: objects a bare cluster has no API for`);
  }
});

/** The prometheus-adapter rules in the component's ConfigMap (its config.yaml, the file the adapter reads). */
function adapterRules(objects: readonly K8sObject[]): K8sObject[] {
  const configMap = only(objects, 'ConfigMap', 'esm2-prometheus-adapter');
  const config = parseYamlText(configMap.data['config.yaml']) as { rules?: K8sObject[] };
  assert.ok(Array.isArray(config.rules) && config.rules.length > 0, 'config.yaml has a rules list, as prometheus-adapter reads it');
  return config.rules;
}

/** Renders `resource` (a path under k8s/) with `components` in a kustomization of its own, as a user's overlay would. */
async function renderWith(t: TestContext, resource: string, components: string[]): Promise<K8sObject[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'esm2-kustomize-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const rel = (p: string) => path.relative(dir, path.join(K8S, p));
  const lines = ['apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization', 'resources:', `  - ${rel(resource)}`, 'components:', ...components.map((c) => `  - ${rel(c)}`), ''];
  await writeFile(path.join(dir, 'kustomization.yaml'), lines.join('\n'));
  return kustomize((kubectl as { path: string }).path, dir);
}

test('component queue-autoscaling (in the gpu overlay): the queue-depth Pods metric, the adapter rule that serves it, and the scrape', { skip: noKubectl }, async (t) => {
  if (!('path' in kubectl)) return;
  const metrics = await exportedMetricNames();
  // On its own over the base, and as the gpu overlay has it.
  for (const [where, objects] of [['base + queue-autoscaling', await renderWith(t, 'base', ['components/queue-autoscaling'])], ['gpu', await render('gpu')]] as const) {
    assert.deepEqual(await validateObjects(objects), [], where);
    const settings = loadSettings(only(objects, 'ConfigMap', 'esm2-config').data);
    const hpa = checkHpa(where, objects);
    assert.deepEqual(metricTypes(hpa).sort(), ['Pods/esm2_queue_depth_tokens', 'Resource/cpu'], `${where}: the queue depth besides CPU`);
    const pods = hpa.spec.metrics.find((m: K8sObject) => m.type === 'Pods').pods;
    assert.ok(metrics.has(pods.metric.name), `${where}: the server exports ${pods.metric.name}`);
    assert.equal(pods.target.type, 'AverageValue');
    const target = Number(pods.target.averageValue);
    assert.ok(target > 0 && target < settings.maxQueuedTokens, `${where}: the queue target (${target}) is reached before requests get 429 (MAX_QUEUED_TOKENS ${settings.maxQueuedTokens})`);

    // The adapter rule: a series the server exports, per namespace and pod, served under the HPA's name.
    const rules = adapterRules(objects).filter((r) => new RegExp(r.name?.matches ?? '.*').test(pods.metric.name) && r.name?.as === pods.metric.name);
    assert.equal(rules.length, 1, `${where}: one adapter rule serves ${pods.metric.name}`);
    const [rule] = rules;
    const series = /^'?([a-zA-Z_:][\w:]*)\{/.exec(rule.seriesQuery)?.[1];
    assert.ok(series && metrics.has(series), `${where}: the rule's series ${series} is a metric the server exports`);
    assert.ok(new RegExp(rule.name.matches).test(series), `${where}: name.matches ${rule.name.matches} matches the series`);
    assert.deepEqual(rule.resources?.overrides, { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } }, `${where}: per namespace and pod, as a Pods metric needs`);
    for (const placeholder of ['<<.Series>>', '<<.LabelMatchers>>', '<<.GroupBy>>']) assert.ok(rule.metricsQuery.includes(placeholder), `${where}: metricsQuery uses ${placeholder}`);

    // The scrape that puts the series in Prometheus: the ServiceMonitor, on the Service's metrics route.
    const monitor = only(objects, 'ServiceMonitor');
    const service = only(objects, 'Service');
    assert.ok(matches(monitor.spec.selector.matchLabels, service.metadata.labels), `${where}: the ServiceMonitor selects the Service`);
    for (const endpoint of monitor.spec.endpoints) assert.equal(await routes.status(endpoint.path), 200, `${where}: ${endpoint.path} is open to the scraper without the API key`);
    for (const object of objects) if (object.kind !== 'Namespace') assert.equal(object.metadata.namespace, NAMESPACE, `${where}: ${describe(object)} namespace`);
  }
});

test('overlays: settings — a real model, never the demo; the cpu overlay without the batch queue; no CPU fallback on GPUs', { skip: noKubectl }, async () => {
  for (const overlay of OVERLAYS) {
    const objects = await render(overlay);
    const data = only(objects, 'ConfigMap', 'esm2-config').data;
    const settings = loadSettings(data);
    assert.ok(data.MODEL_NAME?.trim(), `${overlay}: MODEL_NAME names a model (empty means the default, or the demo when that cannot be had)`);
    assert.match(data.MODEL_NAME, /^(facebook\/esm2_t\d+_\d+[MB]_UR50D(@\S+)?|\/data\/\S+)$/, `${overlay}: MODEL_NAME is a published ESM-2 checkpoint or a directory on the model volume`);
    assert.equal(settings.allowDemoModel, false, `${overlay}: ALLOW_DEMO_MODEL=false, a pod without its model fails rather than serving random weights`);
    const gpus = gpusOf(only(objects, 'Deployment').spec.template.spec.containers[0]);
    if (gpus > 0) assert.equal(settings.allowCpuFallback, false, `${overlay}: ALLOW_CPU_FALLBACK=false (the ConfigMap overrides the CUDA image's own false)`);
  }
  const cpu = loadSettings(only(await render('cpu'), 'ConfigMap', 'esm2-config').data);
  assert.equal(cpu.batchQueueEnabled, false, 'cpu: BATCH_QUEUE_ENABLED=false (1.3–2.3× faster on CPU-only pods, docs/performance.md)');
});

test('overlays: images, devices, GPUs and replicas', { skip: noKubectl }, async () => {
  const expected: Record<Overlay, { tag: string; gpus: number; devices: RegExp; hpa: boolean; replicas?: number }> = {
    cpu: { tag: 'cpu', gpus: 0, devices: /^cpu(:\d+)?$/, hpa: true },
    gpu: { tag: 'cuda', gpus: 1, devices: /^auto$/, hpa: true },
    '8gpu': { tag: 'cuda', gpus: 8, devices: /^auto$/, hpa: false, replicas: 1 },
  };
  for (const overlay of OVERLAYS) {
    const objects = await render(overlay);
    const want = expected[overlay];
    const deployment = only(objects, 'Deployment');
    const container = deployment.spec.template.spec.containers[0];
    assert.equal(container.image, `esm2-serve:${want.tag}`, `${overlay}: image`);
    assert.equal(gpusOf(container), want.gpus, `${overlay}: GPUs per pod`);
    assert.match(only(objects, 'ConfigMap', 'esm2-config').data.DEVICES, want.devices, `${overlay}: DEVICES`);
    assert.equal(objects.some((o) => o.kind === 'HorizontalPodAutoscaler'), want.hpa, `${overlay}: HPA`);
    assert.equal(deployment.spec.replicas, want.replicas, `${overlay}: replicas`);
    if (want.gpus > 0) {
      assert.ok(deployment.spec.template.spec.tolerations?.some((t: K8sObject) => t.key === 'nvidia.com/gpu'), `${overlay}: tolerates GPU node taints`);
      assert.equal(container.resources.requests?.['nvidia.com/gpu'] ?? container.resources.limits['nvidia.com/gpu'], container.resources.limits['nvidia.com/gpu'], `${overlay}: GPU request = limit`);
    }
    if (want.gpus > 1) assert.equal(deployment.spec.strategy.type, 'Recreate', `${overlay}: a pod holding a whole node cannot surge`);
  }
});

test('component servicemonitor: a Prometheus-operator ServiceMonitor scraping the Service\'s /metrics', { skip: noKubectl }, async (t) => {
  if (!('path' in kubectl)) return;
  const objects = await renderWith(t, 'overlays/cpu', ['components/servicemonitor']);
  assert.deepEqual(await validateObjects(objects), []);
  const monitor = only(objects, 'ServiceMonitor');
  const service = only(objects, 'Service');
  assert.equal(monitor.metadata.namespace, service.metadata.namespace);
  assert.ok(matches(monitor.spec.selector.matchLabels, service.metadata.labels), 'selects the Service by its labels');
  for (const endpoint of monitor.spec.endpoints) {
    assert.ok(service.spec.ports.some((p: K8sObject) => p.name === endpoint.port), `endpoint port ${endpoint.port} is a Service port name`);
    assert.ok(routes.has(endpoint.path), `${endpoint.path} is a route`);
  }
});

test('job-embed.yaml: an Indexed Job running `esm2 embed --shard $(JOB_COMPLETION_INDEX)/N` into one file per shard', async () => {
  const objects = await readYamlFile(path.join(BASE, 'job-embed.yaml'));
  assert.deepEqual(await validateObjects(objects), []);
  const job = only(objects, 'Job');
  for (const object of objects) assert.equal(object.metadata.namespace, NAMESPACE, `${describe(object)}: namespace`);
  assert.equal(job.spec.completionMode, 'Indexed');
  const pod = job.spec.template.spec;
  const container = pod.containers[0];
  const env: Record<string, K8sObject> = Object.fromEntries(container.env.map((e: K8sObject) => [e.name, e]));
  const shards = Number(env.SHARDS?.value);
  assert.equal(job.spec.completions, shards, 'completions = SHARDS, the N of --shard I/N');
  assert.ok(job.spec.parallelism >= 1 && job.spec.parallelism <= shards, 'parallelism within 1 … completions');
  assert.equal(env.JOB_COMPLETION_INDEX?.valueFrom?.fieldRef?.fieldPath, "metadata.annotations['batch.kubernetes.io/job-completion-index']", 'the completion index from the pod annotation');

  // $(VAR) in command/args expands only for variables the container defines: anything else stays literal.
  const args: string[] = [...(container.command ?? []), ...container.args];
  for (const arg of args) for (const [, name] of arg.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) assert.ok(env[name], `$(${name}) in "${arg}" is defined in the container's env`);

  // The arguments are the embed command's, with its required options, for every index.
  assert.equal(container.command, undefined, "the image's entrypoint (node bin/esm2.js) runs them");
  assert.equal(args[0], 'embed');
  const program = new Command();
  registerEmbed(program);
  const embed = program.commands.find((c) => c.name() === 'embed')!;
  const flags = new Set(embed.options.flatMap((o) => [o.long, o.short].filter(Boolean) as string[]));
  for (const arg of args.slice(1)) if (arg.startsWith('--')) assert.ok(flags.has(arg), `${arg} is an option of esm2 embed`);
  for (const option of embed.options.filter((o) => o.mandatory)) assert.ok(args.includes(option.long!), `required ${option.long}`);
  const valueOf = (flag: string) => args[args.indexOf(flag) + 1];
  const expand = (text: string, index: number) => text.replace(/\$\((\w+)\)/g, (_, name: string) => (name === 'JOB_COMPLETION_INDEX' ? String(index) : String(env[name].value)));
  const outputs = new Set<string>();
  const covered: number[] = [];
  const records = Array.from({ length: 3 * shards + 1 }, (_, i) => i);
  for (let index = 0; index < shards; index++) {
    const shard = parseShardSpec(expand(valueOf('--shard'), index));
    assert.deepEqual(shard, { index, count: shards });
    covered.push(...selectShard(records, shard));
    outputs.add(expand(valueOf('--output'), index));
  }
  assert.equal(outputs.size, shards, 'one output file per shard');
  assert.deepEqual(covered.sort((a, b) => a - b), records, 'the shards cover every record once');

  // The shared volume holds input, model and outputs; the output directory is created first.
  const mounts: { name: string; mountPath: string }[] = container.volumeMounts;
  for (const file of [valueOf('--input'), expand(valueOf('--model'), 0), expand(valueOf('--output'), 0), env.ESM2_COMPILE_CACHE.value]) {
    const mount = mounts.find((m) => under(file, m.mountPath));
    assert.ok(mount, `${file} is on a volume`);
    const volume = pod.volumes.find((v: K8sObject) => v.name === mount.name);
    const claim = volume.persistentVolumeClaim?.claimName;
    assert.ok(claim && objects.some((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === claim), `${file} is on the shared PVC`);
    assert.ok(objects.find((o) => o.metadata.name === claim)!.spec.accessModes.includes('ReadWriteMany'), 'pods on several nodes share it');
  }
  const outputDir = path.posix.dirname(expand(valueOf('--output'), 0));
  assert.ok(pod.initContainers?.some((c: K8sObject) => c.command.join(' ').includes(outputDir)), `an init container creates ${outputDir}`);
  const shm = pod.volumes.find((v: K8sObject) => v.name === mounts.find((m) => m.mountPath === '/dev/shm')?.name);
  assert.equal(shm?.emptyDir?.medium, 'Memory', '/dev/shm in memory');
  if (valueOf('--device').startsWith('cuda')) assert.equal(gpusOf(container), 1, 'one GPU per shard pod for --device cuda:0');
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(['Never', 'OnFailure'].includes(pod.restartPolicy));
});

test('esm2-8gpu-service.yaml: the seed\'s 8-GPU pod, fixed, and its Service', async () => {
  const objects = await readYamlFile(path.join(BASE, 'esm2-8gpu-service.yaml'));
  assert.deepEqual(await validateObjects(objects), []);
  const pod = only(objects, 'Pod');
  const env = await checkServerPod('esm2-8gpu Pod', pod, objects);
  assert.equal(env.DEVICES, 'auto');
  assert.equal(gpusOf(pod.spec.containers[0]), 8);
  const service = only(objects, 'Service');
  assert.ok(matches(service.spec.selector, pod.metadata.labels), 'its Service selects it');
  for (const object of objects) assert.equal(object.metadata.namespace, NAMESPACE, `${describe(object)}: namespace`);
  // Kept apart from the managed Deployment: neither Service selects the other's pods.
  const baseService = (await readYamlFile(path.join(BASE, 'service.yaml')))[0];
  const basePods = (await readYamlFile(path.join(BASE, 'deployment.yaml')))[0].spec.template.metadata.labels;
  assert.ok(!matches(baseService.spec.selector, pod.metadata.labels), 'the base Service does not route to the dev pod');
  assert.ok(!matches(service.spec.selector, basePods), 'the dev Service does not route to the Deployment');
});

test('the validation finds what the API server would refuse', async () => {
  // Guards the checks above against passing vacuously: a broken copy of a valid object fails each way.
  const deployment = (await readYamlFile(path.join(BASE, 'deployment.yaml')))[0];
  const broken = structuredClone(deployment);
  broken.spec.template.spec.containers[0].livenessProbe.initialDelaySecond = 5; // typo: not a field
  broken.spec.template.spec.containers[0].ports[0].containerPort = '8000'; // a string, not an integer
  delete broken.spec.selector; // required
  const ingress = (await readYamlFile(path.join(BASE, 'ingress.yaml')))[0];
  const brokenIngress = structuredClone(ingress);
  brokenIngress.spec.ingressClassname = brokenIngress.spec.ingressClassName; // the wrong spelling
  const problems = await validateObjects([deployment, broken, ingress, brokenIngress]);
  const text = problems.join('\n');
  assert.match(text, /Deployment\/esm2-inference: .*initialDelaySecond/);
  assert.match(text, /containerPort must be integer/);
  assert.match(text, /must have required property 'selector'|selector/);
  assert.match(text, /Ingress\/esm2-inference: .*ingressClassname/);
  assert.equal(problems.filter((p) => !/initialDelaySecond|containerPort|selector|ingressClassname|'string' is not assignable to type 'number'/.test(p)).length, 0, `only the broken fields are reported:\n${text}`);
  assert.ok(!routes.has('/healthz'), 'a probe on a route the server lacks is caught');
});

test('component alerts: a PrometheusRule on the service\'s own metrics — valid, in the Service\'s namespace, every series one the server exports', { skip: noKubectl }, async (t) => {
  if (!('path' in kubectl)) return;
  const objects = await renderWith(t, 'overlays/cpu', ['components/servicemonitor', 'components/alerts']);
  assert.deepEqual(await validateObjects(objects), []);
  const rule = only(objects, 'PrometheusRule');
  assert.equal(rule.metadata.namespace, only(objects, 'Service').metadata.namespace);
  const rules = (rule.spec.groups as K8sObject[]).flatMap((g) => g.rules as K8sObject[]);
  assert.deepEqual(rules.map((r) => r.alert), ['Esm2AllReplicasDown', 'Esm2ReplicaDown', 'Esm2ReplicaRestarting', 'Esm2QueueNearLimit', 'Esm2LatencyP99High', 'Esm2High5xxRate', 'Esm2DemoModelServing']);
  // Every series a rule reads is one the server registers (a renamed metric would silence an alert).
  const exported = await exportedMetricNames();
  for (const r of rules) {
    assert.ok(['warning', 'critical'].includes(r.labels.severity), `${r.alert}: severity`);
    assert.ok(r.annotations.summary && r.annotations.description, `${r.alert}: summary and description`);
    for (const series of String(r.expr).match(/esm2_[a-z0-9_]+/g) ?? []) {
      const name = series.replace(/_(bucket|sum|count)$/, '');
      assert.ok(exported.has(name), `${r.alert}: ${series} is not a metric the server exports`);
    }
  }
  // The latency rule's route matcher (PromQL anchors =~) takes the inference routes and no probe.
  const matcher = new RegExp(`^(?:${/route=~"([^"]+)"/.exec(rules.find((r) => r.alert === 'Esm2LatencyP99High')!.expr)![1]})$`);
  for (const route of ['/predict', '/predict/batch', '/v1/embed', '/v1/score']) assert.ok(matcher.test(route), route);
  for (const route of ['/health', '/ready', '/metrics']) assert.ok(!matcher.test(route), route);
});
