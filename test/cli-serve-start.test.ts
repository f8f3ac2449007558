// `esm2 serve` that cannot start: a port in use, a bad setting, a model that cannot load. Each says
// why in one line at the default log level, exits 1, and shows the stack only at LOG_LEVEL=debug.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { fixtureModelDir, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';

const exec = promisify(execFile);

/** Runs `esm2 serve` with `env` (LOG_LEVEL unset: the default, info) until it exits; its code and output lines. */
async function serveFails(env: Record<string, string>): Promise<{ code: number; lines: string[]; output: string }> {
  const { LOG_LEVEL: _unset, ...inherited } = process.env;
  try {
    const { stdout, stderr } = await exec(process.execPath, [join(repoRoot, 'bin', 'esm2.js'), 'serve'], {
      cwd: repoRoot,
      env: { ...inherited, DEVICES: 'cpu', HOST: '127.0.0.1', ...env },
      timeout: 60_000,
    });
    assert.fail(`esm2 serve exited 0:\n${stdout}${stderr}`);
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    return { code: e.code, lines: output.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('npm warn')), output };
  }
}

const STACK = /\n\s+at |\\n\s+at |"stack"/;

test('a port in use: one line naming the address and the settings to change, exit 1; the stack only at LOG_LEVEL=debug', async (t) => {
  const holder = createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  t.after(() => new Promise((resolve) => holder.close(resolve)));
  const port = (holder.address() as { port: number }).port;
  const env = { MODEL_NAME: fixtureModelDir, PORT: String(port), ESM2_COMPILE_CACHE: await tempDir(t) };

  const plain = await serveFails(env);
  assert.equal(plain.code, 1);
  assert.deepEqual(plain.lines, [`esm2: cannot listen on 127.0.0.1:${port}: the address is in use; set PORT (or HOST) to pick another`]);

  const debug = await serveFails({ ...env, LOG_LEVEL: 'debug' });
  assert.equal(debug.code, 1);
  assert.ok(debug.lines.includes(plain.lines[0]), debug.output);
  assert.match(debug.output, STACK, 'the stack at LOG_LEVEL=debug');
  assert.match(debug.output, /caused by: Error: listen EADDRINUSE/);
});

test('a bad setting: one line naming the variable, exit 1', async () => {
  const { code, lines } = await serveFails({ PORT: 'eighty' });
  assert.equal(code, 1);
  assert.deepEqual(lines, ['esm2: PORT="eighty" is invalid: expected a whole number from 0 to 65535']);
});

test('a model that cannot load: one fatal line saying why, exit 1; the stack only at LOG_LEVEL=debug', async (t) => {
  const env = { MODEL_NAME: join(await tempDir(t), 'no-such-model'), PORT: '0' };
  const plain = await serveFails(env);
  assert.equal(plain.code, 1);
  const failures = plain.lines.filter((l) => /cannot serve/.test(l));
  assert.equal(failures.length, 1, plain.output);
  assert.match(JSON.parse(failures[0]).msg as string, /^cannot serve: MODEL_NAME=.*no-such-model: no such directory/);
  assert.doesNotMatch(plain.output, STACK);

  const debug = await serveFails({ ...env, LOG_LEVEL: 'debug' });
  assert.equal(debug.code, 1);
  assert.match(debug.output, STACK, 'the stack at LOG_LEVEL=debug');
});
