// The device check end to end without a device: `npm run device:pack` (fast compression), then
// bench/device/check.sh in CPU mode from a bare copy of the working tree (no node_modules, no dist,
// the system PATH): unpack, checkpoints, compile, parity, bench:engine, the peers (skipped without
// their Python packages), the server under the load benchmark, the report.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';

const exec = promisify(execFile);

test('device:pack, then check.sh --cpu from a bare copy: every step leaves its row in results.json and results.md', async (t) => {
  const dir = await tempDir(t);
  const pack = join(dir, 'pack');
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, DEVICE_PACK_XZ_LEVEL: '0', DEVICE_PACK_LIMIT_MIB: '200', DEVICE_PACK_NO_BUILD: '1', DEVICE_PACK_NO_GL: '1' };
  const packed = await exec('bash', [join(repoRoot, 'bench/device/pack.sh'), pack], { cwd: repoRoot, env, maxBuffer: 1 << 24 });
  assert.match(packed.stdout, /device:pack: .* — node [\d.]+ MiB, app [\d.]+ MiB, gl [\d.]+ MiB: [\d.]+ MiB; with the working tree \([\d.]+ MiB\): [\d.]+ MiB of 200 MiB/);

  // The tracked files alone, as the device receives them (the pack travels beside them).
  const bare = join(dir, 'tree');
  const { stdout: files } = await exec('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: repoRoot, maxBuffer: 1 << 24 });
  for (const f of files.split('\0').filter(Boolean)) {
    await mkdir(dirname(join(bare, f)), { recursive: true });
    await cp(join(repoRoot, f), join(bare, f)).catch(() => undefined); // a file deleted but not yet committed
  }
  const out = join(dir, 'out');
  const check = await exec('bash', [join(bare, 'bench/device/check.sh'), '--cpu'], {
    cwd: bare,
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: dir, DEVICE_PACK: pack, OUT: out, CHECK_WORK: join(dir, 'work'), CHECK_SEQUENCES: '4' },
    maxBuffer: 1 << 24,
    timeout: 240_000,
  });
  assert.match(check.stdout, /done in \d+ s/);
  const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Record<string, { rows?: Record<string, unknown>[]; results?: Record<string, unknown>[]; skipped?: string | null; mode?: string; node?: string }>;
  assert.equal(results.context.mode, 'cpu');
  assert.equal(results.context.node, process.version, 'the packed Node ran, not the system one');
  const parity = results.parity.rows![0] as { precision: string; worst_relative_error: { logits: number } };
  assert.equal(parity.precision, 'fp32');
  assert.equal(parity.worst_relative_error.logits, 0, 'cpu against cpu, the same graph');
  const engine = results['engine-cpu'].rows![0];
  assert.equal(engine.model, 'tiny');
  assert.ok(Number(engine['residues/s']) > 0);
  for (const peer of ['hf-tiny', 'ort-tiny']) assert.ok(results[peer].skipped || results[peer].rows!.length > 0, `${peer}: ${JSON.stringify(results[peer])}`);
  for (const c of ['server-c1', 'server-c32']) {
    const [row] = results[c].results!;
    assert.deepEqual(row.errors, {}, c);
    assert.ok(Number(row.residues_per_s) > 0, c);
  }
  const markdown = await readFile(join(out, 'results.md'), 'utf8');
  for (const heading of ['## Parity against cpu fp32', '## Throughput on the bench:engine workload', '## The server end to end']) assert.ok(markdown.includes(heading), heading);
});
