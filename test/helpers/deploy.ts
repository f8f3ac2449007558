// Helpers of the deployment tests: kubectl kustomize renders, offline validation of Kubernetes
// objects, and what the server really serves and reads (routes, metrics, environment variables).
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { buildApp } from '../../src/server/app.js';
import { Metrics } from '../../src/server/metrics.js';
import { SETTINGS_DOCS, loadSettings } from '../../src/server/settings.js';
import { fixtureModelDir, repoRoot } from './paths.js';

const exec = promisify(execFile);

/** A Kubernetes object as parsed from YAML. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [field: string]: any;
}

/** Every YAML document of a text, as objects; YAML syntax errors throw. */
export function parseYamlDocuments(text: string, source: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null) objects.push(value);
  }
  return objects;
}

export async function readYamlFile(file: string): Promise<K8sObject[]> {
  return parseYamlDocuments(await readFile(file, 'utf8'), path.relative(repoRoot, file));
}

/** kubectl on PATH (or $KUBECTL), or why there is none. */
export function findKubectl(): { path: string } | { missing: string } {
  const candidates = process.env.KUBECTL ? [process.env.KUBECTL] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'kubectl'));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return { path: candidate };
    } catch {
      // next
    }
  }
  return { missing: `kubectl not found (${process.env.KUBECTL ? `KUBECTL=${process.env.KUBECTL}` : 'not on PATH'}): the Kustomize renders cannot be checked; install kubectl (its built-in kustomize renders offline)` };
}

/** `kubectl kustomize <dir>`, parsed. */
export async function kustomize(kubectl: string, dir: string): Promise<K8sObject[]> {
  const { stdout } = await exec(kubectl, ['kustomize', dir], { maxBuffer: 16 * 1024 * 1024 });
  return parseYamlDocuments(stdout, `kubectl kustomize ${path.relative(repoRoot, dir) || dir}`);
}

export const describe = (o: K8sObject) => `${o.kind}/${o.metadata?.name}`;

/** The model package (kubernetes-models or its Prometheus operator CRDs) that types an apiVersion. */
function modelModule(apiVersion: string): string {
  return apiVersion.startsWith('monitoring.coreos.com/') ? `@kubernetes-models/prometheus-operator/${apiVersion}` : `kubernetes-models/${apiVersion}`;
}

/**
 * Validates objects offline against the Kubernetes schemas, two ways: the JSON schemas (types,
 * required fields, enums, formats) through kubernetes-models' generated validators, and unknown
 * fields — which the schemas allow but the API server rejects (kubectl's default strict field
 * validation) — by type-checking each object as a literal of kubernetes-models' interface for its
 * kind, where TypeScript's excess-property check names any field the API does not have.
 * Returns one line per problem; empty when every object is valid.
 */
export async function validateObjects(objects: readonly K8sObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const object of objects) {
    let model: (new (data: unknown) => { validate(): void }) | undefined;
    try {
      model = ((await import(modelModule(object.apiVersion))) as Record<string, new (data: unknown) => { validate(): void }>)[object.kind];
    } catch {
      model = undefined;
    }
    if (!model) {
      problems.push(`${describe(object)}: no schema for ${object.apiVersion} ${object.kind}`);
      continue;
    }
    try {
      new model(object).validate();
    } catch (err) {
      problems.push(`${describe(object)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  problems.push(...unknownFields(objects));
  return problems;
}

/** The last type-check program: the next one reuses its unchanged files (the lib and the model types). */
let previousProgram: ts.Program | undefined;

function unknownFields(objects: readonly K8sObject[]): string[] {
  const file = path.join(repoRoot, '__k8s_objects__.ts');
  const starts: number[] = [];
  let source = '';
  objects.forEach((object, i) => {
    source += `import type { I${object.kind} as T${i} } from '${modelModule(object.apiVersion)}/${object.kind}';\n`;
  });
  objects.forEach((object, i) => {
    starts.push(source.length);
    source += `export const o${i}: T${i} = ${JSON.stringify(object, null, 1)};\n`;
  });
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFileText = host.readFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => (path.resolve(name) === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest));
  host.fileExists = (name) => path.resolve(name) === file || fileExists(name);
  host.readFile = (name) => (path.resolve(name) === file ? source : readFileText(name));
  const program = ts.createProgram([file], options, host, previousProgram);
  previousProgram = program;
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    if (d.start === undefined || d.start < starts[0]) return `type check: ${message}`;
    let index = 0;
    while (index + 1 < starts.length && starts[index + 1] <= d.start) index++;
    return `${describe(objects[index])}: ${message}`;
  });
}

/** Names of the environment variables the server's code reads: SETTINGS_DOCS plus every `env.NAME` in src/. */
export function environmentVariablesRead(): Set<string> {
  const names = new Set(SETTINGS_DOCS.map((d) => d.variable));
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) {
        for (const match of readFileSync(full, 'utf8').matchAll(/\benv(?:\.([A-Z][A-Z0-9_]+)|\[['"]([A-Z][A-Z0-9_]+)['"]\])/g)) names.add(match[1] ?? match[2]);
      }
    }
  };
  walk(path.join(repoRoot, 'src'));
  return names;
}

/** Names of the metrics the server exports (src/server/metrics.ts). */
export async function exportedMetricNames(): Promise<Set<string>> {
  const metrics = new Metrics();
  return new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
}

export interface RouteProbe {
  /** GET status with no credentials while an API key is set and the model is still loading. */
  status(url: string): Promise<number>;
  has(url: string): boolean;
  close(): Promise<void>;
}

/**
 * The real application, built (not started) with an API key set: probes and scrapers must reach
 * their routes without it, and liveness must answer while the model is still loading.
 */
export async function serverRoutes(): Promise<RouteProbe> {
  const settings = loadSettings({ MODEL_NAME: fixtureModelDir, DEVICES: 'cpu', LOG_LEVEL: 'silent', API_KEY: 'deploy-test-key' });
  const { app } = await buildApp(settings, { version: 'test', logger: false });
  await app.ready();
  return {
    has: (url) => app.hasRoute({ method: 'GET', url }),
    status: async (url) => (await app.inject({ method: 'GET', url })).statusCode,
    close: () => app.close(),
  };
}

/** "10m" / "512k" / "1g" / "1048576" as nginx reads a size, in bytes. */
export function nginxSize(value: string): number {
  const match = /^(\d+)([kKmMgG]?)$/.exec(value.trim());
  if (!match) throw new Error(`not an nginx size: ${value}`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(match[1]) * unit;
}
