// The container files and the CI workflow, without a Docker engine: the Dockerfiles parse, their
// stages reference stages and files that exist (and that .dockerignore lets through), the image
// starts the way `npm start` does, its health check probes a real route (and works: it is run
// against the server laid out as the image lays it out), the user is not root and the model cache
// is a volume. The workflow runs what package.json defines and builds both images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { cp, mkdir, symlink } from 'node:fs/promises';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { SETTINGS_DOCS, loadSettings } from '../src/server/settings.js';
import { serverRoutes } from './helpers/deploy.js';
import { fixtureModelDir, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';
import { freePort } from './helpers/cli-server.js';

const exec = promisify(execFile);
const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  engines: { node: string; npm?: string };
  allowScripts?: Record<string, boolean>;
};
const tsconfig = JSON.parse(readFileSync(path.join(repoRoot, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string } };

// ---- a Dockerfile reader, enough for what the project's Dockerfiles use ----

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  index: number;
  name?: string;
  /** The image or earlier stage it starts from, global ARGs substituted. */
  from: string;
  instructions: Instruction[];
}

interface Dockerfile {
  file: string;
  stages: Stage[];
  globalArgs: Record<string, string>;
}

function parseDockerfile(file: string): Dockerfile {
  const lines = readFileSync(path.join(repoRoot, file), 'utf8').split('\n');
  const instructions: Instruction[] = [];
  let pending = '';
  let start = 0;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending !== '' && line.startsWith('#')) return; // comments inside a continued instruction
    if (pending === '') start = i + 1;
    pending += (pending ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (line.endsWith('\\')) return;
    const match = /^([A-Za-z]+)\s+([\s\S]*)$/.exec(pending);
    assert.ok(match, `${file}:${start}: not an instruction: ${pending}`);
    instructions.push({ keyword: match[1].toUpperCase(), args: match[2], line: start });
    pending = '';
  });
  assert.equal(pending, '', `${file}: ends inside a continued line`);

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const from = words[0].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => {
        const value = globalArgs[a ?? b];
        assert.ok(value !== undefined, `${file}:${instruction.line}: FROM uses ARG ${a ?? b}, which has no default`);
        return value;
      });
      const name = words[1]?.toUpperCase() === 'AS' ? words[2] : undefined;
      stages.push({ index: stages.length, name, from, instructions: [] });
    } else if (stages.length === 0) {
      assert.equal(instruction.keyword, 'ARG', `${file}:${instruction.line}: only ARG may come before the first FROM`);
      const [key, value] = instruction.args.split('=');
      globalArgs[key.trim()] = value?.trim() ?? '';
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return { file, stages, globalArgs };
}

/** Flags (--from=x) and the remaining words of a COPY/ADD. */
function copyArgs(instruction: Instruction): { flags: Record<string, string>; sources: string[]; dest: string } {
  const words = instruction.args.trim().startsWith('[') ? (JSON.parse(instruction.args) as string[]) : instruction.args.split(/\s+/);
  const flags: Record<string, string> = {};
  while (words[0]?.startsWith('--')) {
    const [key, value] = words.shift()!.slice(2).split('=');
    flags[key] = value ?? 'true';
  }
  return { flags, sources: words.slice(0, -1), dest: words.at(-1)! };
}

/** ENV instructions of a stage as a map (KEY=VALUE pairs; the legacy `ENV KEY VALUE` too). */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'ENV') continue;
    if (!args.includes('=')) {
      const [key, ...rest] = args.split(/\s+/);
      env[key] = rest.join(' ');
      continue;
    }
    for (const [, key, quoted, plain] of args.matchAll(/(\w+)=(?:"([^"]*)"|(\S*))/g)) env[key] = quoted ?? plain;
  }
  return env;
}

const last = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).at(-1);
const execForm = (instruction: Instruction | undefined, what: string): string[] => {
  assert.ok(instruction, `${what} is set`);
  const json = instruction.args.replace(/^(--\S+\s+)*(CMD\s+)?/, '');
  assert.ok(json.trim().startsWith('['), `${what} is in exec (JSON) form, so signals reach node: ${instruction.args}`);
  return JSON.parse(json) as string[];
};

// ---- .dockerignore ----

function dockerignore(): (relative: string) => boolean {
  const patterns = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const toRegex = (pattern: string) =>
    new RegExp(
      `^${pattern
        .replace(/^\/+|\/+$/g, '')
        .split('')
        .map((c, i, all) => (c === '*' ? (all[i + 1] === '*' ? '' : all[i - 1] === '*' ? '.*' : '[^/]*') : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('')}$`,
    );
  const rules = patterns.map((p) => ({ exclude: !p.startsWith('!'), regex: toRegex(p.replace(/^!/, '')) }));
  return (relative) => {
    // A path is excluded when it or a directory above it matches; later rules win.
    const prefixes = relative.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (prefixes.some((p) => rule.regex.test(p))) excluded = rule.exclude;
    return excluded;
  };
}

const DOCKERFILES = ['Dockerfile', 'Dockerfile.cuda'] as const;

function stagesCheck(dockerfile: Dockerfile) {
  const { file, stages } = dockerfile;
  const names = stages.map((s) => s.name).filter(Boolean);
  assert.equal(new Set(names).size, names.length, `${file}: stage names are unique`);
  for (const stage of stages) {
    const earlier = stages.slice(0, stage.index);
    if (!earlier.some((s) => s.name === stage.from)) {
      assert.ok(/^[\w./-]+(:[\w.-]+)?(@sha256:[0-9a-f]+)?$/.test(stage.from), `${file}: stage ${stage.name ?? stage.index} starts from an image reference: ${stage.from}`);
      assert.ok(!stage.from.endsWith(':latest') && stage.from.includes(':'), `${file}: ${stage.from} is pinned to a tag`);
    }
    for (const instruction of stage.instructions.filter((i) => ['COPY', 'ADD'].includes(i.keyword))) {
      const from = copyArgs(instruction).flags.from;
      if (from === undefined) continue;
      assert.ok(earlier.some((s) => s.name === from || String(s.index) === from), `${file}:${instruction.line}: COPY --from=${from} names no earlier stage`);
    }
  }
  const runtime = stages.at(-1)!;
  assert.equal(runtime.name, 'runtime', `${file}: the last stage, the image, is "runtime"`);
  return runtime;
}

for (const file of DOCKERFILES) {
  test(`${file}: stages reference earlier stages, and the build context holds every file it copies`, () => {
    const dockerfile = parseDockerfile(file);
    stagesCheck(dockerfile);
    const ignored = dockerignore();
    for (const stage of dockerfile.stages) {
      for (const instruction of stage.instructions.filter((i) => ['COPY', 'ADD'].includes(i.keyword))) {
        const { flags, sources } = copyArgs(instruction);
        if (flags.from !== undefined) continue;
        for (const source of sources) {
          assert.ok(!/[*?]/.test(source), `${file}:${instruction.line}: copy named files, not ${source}`);
          assert.ok(existsSync(path.join(repoRoot, source)), `${file}:${instruction.line}: ${source} does not exist`);
          assert.ok(!ignored(source.replace(/^\.\//, '')), `${file}:${instruction.line}: ${source} is excluded by .dockerignore`);
        }
      }
    }
  });

  test(`${file}: the build stage installs from the lockfile and compiles; the image gets production dependencies only`, () => {
    const dockerfile = parseDockerfile(file);
    const runtime = dockerfile.stages.at(-1)!;
    const build = dockerfile.stages.find((s) => s.name === 'build');
    assert.ok(build, `${file}: a build stage`);
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const copied = build.instructions.filter((i) => i.keyword === 'COPY' && copyArgs(i).flags.from === undefined).flatMap((i) => copyArgs(i).sources.map((s) => s.replace(/^\.\//, '')));
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'bin']) assert.ok(copied.includes(needed), `${file}: the build stage copies ${needed}`);
    assert.ok(runs.some((r) => /\bnpm ci\b/.test(r)), `${file}: npm ci (exactly the lockfile)`);
    assert.ok(runs.some((r) => /\bnpm run build\b/.test(r)) && pkg.scripts.build, `${file}: npm run build (package.json: ${pkg.scripts.build})`);
    assert.ok(runs.some((r) => /\bnpm prune --omit=dev\b/.test(r)), `${file}: dev dependencies pruned before the copy to the image`);
    // What the image takes from the build stage exists there: copied in, installed or compiled.
    const workdir = last(build, 'WORKDIR')!.args;
    const produced = new Set([...copied, 'node_modules', `${tsconfig.compilerOptions.outDir}/src`]);
    const taken = runtime.instructions.filter((i) => i.keyword === 'COPY' && copyArgs(i).flags.from === 'build').flatMap((i) => copyArgs(i).sources);
    for (const source of taken) {
      assert.ok(source.startsWith(`${workdir}/`), `${file}: ${source} is under the build WORKDIR ${workdir}`);
      assert.ok(produced.has(path.posix.relative(workdir, source)), `${file}: the build stage has no ${source}`);
    }
    // What `node bin/esm2.js` needs at run time: the launcher, the compiled code, package.json (its version) and node_modules.
    for (const needed of ['bin', 'dist/src', 'package.json', 'node_modules']) assert.ok(taken.includes(`${workdir}/${needed}`), `${file}: the image gets ${needed}`);
  });

  test(`${file}: starts like npm start, as a non-root user, with a health check on the liveness route and the model cache on a volume`, async () => {
    const dockerfile = parseDockerfile(file);
    const runtime = dockerfile.stages.at(-1)!;
    const command = [...execForm(last(runtime, 'ENTRYPOINT'), `${file} ENTRYPOINT`), ...execForm(last(runtime, 'CMD'), `${file} CMD`)];
    // The start script execs node (so npm's child is the server itself: test/server-signals.test.ts).
    assert.deepEqual(command, pkg.scripts.start.replace(/^exec\s+/, '').split(/\s+/), `${file}: ENTRYPOINT + CMD is package.json's start script`);

    const port = SETTINGS_DOCS.find((d) => d.variable === 'PORT')!.default;
    assert.deepEqual(last(runtime, 'EXPOSE')?.args.split(/\s+/), [port], `${file}: EXPOSE the server's default PORT`);

    const user = last(runtime, 'USER')?.args.split(':')[0];
    assert.ok(user && user !== 'root' && user !== '0', `${file}: USER is not root (${user})`);
    assert.ok(/^\d+$/.test(user), `${file}: a numeric USER, so Kubernetes can verify runAsNonRoot`);
    const userAt = runtime.instructions.indexOf(last(runtime, 'USER')!);
    assert.ok(!runtime.instructions.slice(userAt).some((i) => i.keyword === 'RUN'), `${file}: nothing runs as root after USER`);

    const env = envOf(runtime);
    const volumes = runtime.instructions.filter((i) => i.keyword === 'VOLUME').flatMap((i) => (i.args.trim().startsWith('[') ? (JSON.parse(i.args) as string[]) : i.args.split(/\s+/)));
    for (const variable of ['HF_HOME', 'ESM2_COMPILE_CACHE']) {
      assert.ok(env[variable], `${file}: ENV ${variable}`);
      assert.ok(volumes.some((v) => env[variable] === v || env[variable].startsWith(`${v.replace(/\/$/, '')}/`)), `${file}: ${variable}=${env[variable]} lies on a VOLUME (${volumes.join(', ')})`);
    }
    assert.doesNotThrow(() => loadSettings(env), `${file}: the server accepts the image's settings`);
    assert.equal(loadSettings(env).allowDemoModel, false, `${file}: ENV ALLOW_DEMO_MODEL=false — an image never serves the random-weight demo unless told to`);

    const healthcheck = last(runtime, 'HEALTHCHECK');
    assert.ok(healthcheck, `${file}: HEALTHCHECK`);
    const probe = execForm(healthcheck, `${file} HEALTHCHECK`);
    assert.equal(probe[0], 'node', `${file}: the health check runs node (slim images have no curl or wget)`);
    const url = /\/[\w/.-]+(?=')/.exec(probe.join(' '))?.[0];
    assert.equal(url, '/v1/health/live', `${file}: the health check probes liveness`);
    const routes = await serverRoutes();
    try {
      assert.ok(routes.has(url), `${file}: ${url} is a route of the server`);
    } finally {
      await routes.close();
    }
  });
}

/** The Node major the project targets: the lowest one package.json's engines admits (">=24"). */
const NODE_MAJOR = Number(/^>=\s*(\d+)(\.\d+)*$/.exec(pkg.engines.node)?.[1]);

test('one Node major everywhere: engines, @types/node, both images, the CI workflow and .ci/run', () => {
  assert.ok(NODE_MAJOR >= 22, `engines.node "${pkg.engines.node}" is ">=N" with N a Node line in support`);
  assert.ok(pkg.devDependencies['@types/node'].startsWith(`^${NODE_MAJOR}.`), `@types/node ${pkg.devDependencies['@types/node']} is the ${NODE_MAJOR}.x line, so the code cannot use newer APIs`);
  for (const file of DOCKERFILES) {
    const nodeImages = parseDockerfile(file).stages.map((s) => s.from).filter((from) => from.startsWith('node:'));
    assert.ok(nodeImages.length > 0, `${file}: Node comes from an official node image`);
    for (const image of nodeImages) assert.match(image, new RegExp(`^node:${NODE_MAJOR}-`), `${file}: ${image}`);
  }
  const workflow = readFileSync(path.join(repoRoot, '.github', 'workflows', 'ci.yml'), 'utf8');
  assert.deepEqual([...workflow.matchAll(/node-version:\s*(\S+)/g)].map((m) => m[1]), [String(NODE_MAJOR)], 'the workflow sets up that Node');
  const ciRun = readFileSync(path.join(repoRoot, '.ci', 'run'), 'utf8');
  assert.match(ciRun, new RegExp(`^NODE_VERSION=${NODE_MAJOR}\\.\\d+\\.\\d+$`, 'm'), '.ci/run installs that Node when the machine has an older one');
  assert.ok(Number(process.versions.node.split('.')[0]) >= NODE_MAJOR, `the tests themselves run on Node ${process.versions.node}, older than engines admits`);
});

test('Dockerfile: the CPU image — Node slim, onnxruntime-node without downloads', () => {
  const dockerfile = parseDockerfile('Dockerfile');
  const runtime = dockerfile.stages.at(-1)!;
  assert.match(runtime.from, new RegExp(`^node:${NODE_MAJOR}-[\\w-]*slim$`));
  assert.equal(envOf(dockerfile.stages.find((s) => s.name === 'build')!).ONNXRUNTIME_NODE_INSTALL, 'skip');
});

test('install scripts: every dependency that has one is decided in package.json allowScripts, onnxruntime-node denied', () => {
  // npm ≥ 11.16 reads allowScripts: a dependency's install script not listed there runs with a warning
  // on every `npm ci` (npm 12 blocks it); one denied (false) is skipped silently.
  const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
  const allow = pkg.allowScripts ?? {};
  const withScripts = Object.entries(lock.packages)
    .filter(([where, entry]) => where !== '' && entry.hasInstallScript)
    .map(([where]) => where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length));
  assert.ok(withScripts.includes('onnxruntime-node'), 'the lockfile knows onnxruntime-node has an install script');
  assert.deepEqual(withScripts.filter((name) => !Object.keys(allow).some((key) => key === name || key.startsWith(`${name}@`))), [], 'dependencies with install scripts missing from allowScripts');
  // Its postinstall downloads the CUDA provider from NuGet on linux/x64 unless told to skip: CPU hosts
  // (and CI, offline) must not run it; GPU hosts run it themselves (README "GPU hosts").
  assert.equal(allow['onnxruntime-node'], false, 'onnxruntime-node\'s install script is denied');
  const npmMinimum = /^>=\s*(\d+)\.(\d+)/.exec(pkg.engines.npm ?? '');
  assert.ok(npmMinimum && (Number(npmMinimum[1]) > 11 || (Number(npmMinimum[1]) === 11 && Number(npmMinimum[2]) >= 16)), 'engines.npm asks for ≥ 11.16, the first npm that reads allowScripts');
  assert.ok(!existsSync(path.join(repoRoot, '.npmrc')) || !/onnxruntime-node-install/.test(readFileSync(path.join(repoRoot, '.npmrc'), 'utf8')), 'no onnxruntime-node-install in .npmrc (npm warns "Unknown project config" on every command)');
});

test('Dockerfile.cuda: CUDA 12 + cuDNN runtime base, the node binary of the Node image, the CUDA execution provider installed, DEVICES=auto', () => {
  const dockerfile = parseDockerfile('Dockerfile.cuda');
  const runtime = dockerfile.stages.at(-1)!;
  const build = dockerfile.stages.find((s) => s.name === 'build')!;
  assert.match(runtime.from, /^nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+$/, 'an NVIDIA CUDA 12 image with cuDNN (9 in CUDA ≥ 12.4 tags)');
  assert.match(dockerfile.stages.find((s) => s.name === 'nodejs')!.from, new RegExp(`^node:${NODE_MAJOR}-`));
  const nodeCopy = runtime.instructions.find((i) => i.keyword === 'COPY' && copyArgs(i).flags.from === 'nodejs');
  assert.deepEqual(nodeCopy && copyArgs(nodeCopy).sources, ['/usr/local/bin/node'], 'the node binary comes from the Node image');

  // onnxruntime-node's installer, run directly (npm is denied it by allowScripts), as this version of
  // the package has it, with a manifest "cuda12" for linux/x64.
  const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
  const [, script, install] = /node (node_modules\/onnxruntime-node\/script\/install\.js) --onnxruntime-node-install=(\S+)/.exec(runs) ?? [];
  assert.ok(script && existsSync(path.join(repoRoot, script)), 'the build runs onnxruntime-node/script/install.js, which exists');
  assert.equal(install, 'cuda12');
  assert.ok(!('ONNXRUNTIME_NODE_INSTALL' in envOf(build)), 'no ONNXRUNTIME_NODE_INSTALL in the environment: the script reads it before its --onnxruntime-node-install flag');
  const ortDir = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  const metadata = createRequire(import.meta.url)(path.join(ortDir, 'script', 'install-metadata.js')) as { requirements: Record<string, string[]> };
  assert.ok(metadata.requirements['linux/x64'].includes(install), `onnxruntime-node ${install} is a manifest for linux/x64`);
  assert.match(runs, /test -f node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime_providers_cuda\.so/, 'the build fails if the CUDA provider did not arrive');
  assert.ok(existsSync(path.join(ortDir, 'bin', 'napi-v6', 'linux', 'x64')), "the provider's folder is the package's linux/x64 binaries folder");

  const env = envOf(runtime);
  assert.equal(env.DEVICES, 'auto');
  assert.equal(loadSettings(env).devices, 'auto');
  assert.equal(loadSettings(env).allowCpuFallback, false, 'ENV ALLOW_CPU_FALLBACK=false: a GPU image does not quietly run on CPU');
});

test('the image layout starts the server with the image command, and the health check passes on it', async (t) => {
  // The runtime stage's files (bin, dist/src, package.json, node_modules) laid out as in the image,
  // started with ENTRYPOINT + CMD and probed with the HEALTHCHECK command.
  const dockerfile = parseDockerfile('Dockerfile');
  const runtime = dockerfile.stages.at(-1)!;
  const app = await tempDir(t, 'esm2-image-');
  const workdir = last(dockerfile.stages.find((s) => s.name === 'build')!, 'WORKDIR')!.args;
  for (const instruction of runtime.instructions.filter((i) => i.keyword === 'COPY' && copyArgs(i).flags.from === 'build')) {
    for (const source of copyArgs(instruction).sources) {
      const relative = path.posix.relative(workdir, source);
      const target = path.join(app, relative);
      await mkdir(path.dirname(target), { recursive: true });
      if (relative === 'node_modules') await symlink(path.join(repoRoot, 'node_modules'), target);
      else await cp(path.join(repoRoot, relative), target, { recursive: true });
    }
  }
  const port = await freePort();
  const cache = path.join(app, 'data');
  const env = { ...process.env, ...envOf(runtime), MODEL_NAME: fixtureModelDir, DEVICES: 'cpu', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', HF_HOME: path.join(cache, 'hf'), ESM2_COMPILE_CACHE: path.join(cache, 'compiled'), ESM2_DEMO_CACHE: path.join(cache, 'demo') };
  const command = [...execForm(last(runtime, 'ENTRYPOINT'), 'ENTRYPOINT'), ...execForm(last(runtime, 'CMD'), 'CMD')];
  const healthcheck = execForm(last(runtime, 'HEALTHCHECK'), 'HEALTHCHECK');
  const health = async () => {
    try {
      await exec(process.execPath, healthcheck.slice(1), { cwd: app, env, timeout: 10_000 });
      return 0;
    } catch (err) {
      return (err as { code?: number }).code ?? -1;
    }
  };
  assert.equal(await health(), 1, 'the health check fails while nothing listens');

  const server = spawn(process.execPath, command.slice(1), { cwd: app, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
  t.after(() => void (server.exitCode === null && server.kill('SIGKILL')));
  const deadline = Date.now() + 30_000;
  let ready = false;
  while (!ready && Date.now() < deadline && server.exitCode === null) {
    ready = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.ok, () => false);
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(ready, `the server became ready: ${stderr}`);
  assert.equal(await health(), 0, 'the health check passes');
  const embedding = await fetch(`http://127.0.0.1:${port}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sequence: 'MKTVRQERLK' }) });
  assert.equal(embedding.status, 200);
  server.kill('SIGTERM');
  assert.equal(await exited, 0, `SIGTERM drains and exits 0: ${stderr}`);
});

test('the image needs only production dependencies: compiled code imports nothing from devDependencies', () => {
  const dist = path.join(repoRoot, tsconfig.compilerOptions.outDir, 'src');
  const allowed = new Set([...Object.keys(pkg.dependencies), ...builtinModules]);
  const problems: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.js')) {
        const text = readFileSync(full, 'utf8');
        for (const [, specifier] of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|require\(|\.resolve\()['"]([^'"./][^'"]*)['"]/g)) {
          if (specifier.startsWith('node:')) continue;
          const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
          if (!allowed.has(name)) problems.push(`${path.relative(repoRoot, full)}: ${specifier}`);
        }
      }
    }
  };
  walk(dist);
  assert.deepEqual(problems, [], 'imports of packages that `npm prune --omit=dev` removes from the image');
});

test('.dockerignore keeps dependencies, build output, VCS data and scratch out of the context', () => {
  const ignored = dockerignore();
  for (const p of ['node_modules', 'node_modules/fastify/package.json', 'dist/src/cli/main.js', '.git/HEAD', 'scratch/x', 'test/deploy-docker.test.ts', 'app.tsbuildinfo']) assert.ok(ignored(p), `${p} is excluded`);
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'src/cli/main.ts', 'bin/esm2.js']) assert.ok(!ignored(p), `${p} is in the context`);
});

test('CI workflow: on pushes and pull requests, npm ci, lint, typecheck, tests, and both images built', () => {
  const workflow = parseYaml(readFileSync(path.join(repoRoot, '.github', 'workflows', 'ci.yml'), 'utf8')) as {
    on: Record<string, unknown>;
    jobs: Record<string, { steps: { run?: string; uses?: string; with?: Record<string, unknown> }[]; strategy?: { matrix: { include: Record<string, string>[] } } }>;
  };
  assert.ok('push' in workflow.on && 'pull_request' in workflow.on, 'runs on push and pull_request');
  const steps = Object.values(workflow.jobs).flatMap((j) => j.steps);
  const runs = steps.map((s) => s.run ?? '').join('\n');
  assert.match(runs, /^npm ci$/m);
  for (const [, script] of runs.matchAll(/\bnpm run (\S+)/g)) assert.ok(pkg.scripts[script], `npm run ${script} is a package.json script`);
  for (const script of ['lint', 'typecheck']) assert.match(runs, new RegExp(`^npm run ${script}$`, 'm'));
  const testCommand = pkg.scripts.test.split('&&').at(-1)!.trim();
  assert.ok(runs.split('\n').some((line) => line.trim() === testCommand), `the tests run as package.json runs them: ${testCommand}`);
  const node = steps.find((s) => s.uses?.startsWith('actions/setup-node'));
  assert.equal(String(node?.with?.['node-version']), String(NODE_MAJOR));
  const built = Object.values(workflow.jobs).flatMap((j) => j.strategy?.matrix.include ?? []).map((m) => m.dockerfile);
  assert.deepEqual(built.sort(), [...DOCKERFILES].sort(), 'both Dockerfiles are built');
  for (const file of built) assert.ok(existsSync(path.join(repoRoot, file)), file);
  assert.ok(steps.some((s) => s.uses?.startsWith('docker/build-push-action')), 'images built with buildx');

  // The repository alone: the golden fixture is in it, so nothing else is checked out beside it.
  const text = readFileSync(path.join(repoRoot, '.github', 'workflows', 'ci.yml'), 'utf8');
  for (const step of steps.filter((s) => s.uses?.startsWith('actions/checkout'))) {
    assert.deepEqual(Object.keys(step.with ?? {}).filter((k) => k === 'repository' || k === 'path'), [], 'the repository checked out at the workspace root, and no other');
  }
  assert.doesNotMatch(text, /\.\.\/shared|GOLDEN_FIXTURE_REPOSITORY|working-directory/, 'nothing outside the checkout');

  // The smoke test runs the CPU image offline: with nothing cached the only model is the demo, which
  // the image refuses (ALLOW_DEMO_MODEL=false) unless the run allows it or mounts a model.
  const imageEnv = envOf(parseDockerfile('Dockerfile').stages.at(-1)!);
  const dockerRuns = runs.split('\n').filter((line) => /\bdocker run\b.*esm2-serve:cpu/.test(line));
  assert.ok(dockerRuns.length > 0, 'the CPU image is started');
  for (const line of dockerRuns) {
    const offline = /-e HF_HUB_OFFLINE=1\b/.test(line) && !/-e MODEL_NAME=|-v /.test(line);
    if (offline && imageEnv.ALLOW_DEMO_MODEL === 'false') assert.match(line, /-e ALLOW_DEMO_MODEL=true\b/, `offline with no model, the demo must be allowed explicitly: ${line.trim()}`);
  }
});
