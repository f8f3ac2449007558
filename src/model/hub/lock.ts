// A lock file per blob, so processes sharing one cache volume (8 pods starting at once) download
// each file once. Node has no flock(), and flock over network filesystems is unreliable anyway, so
// the lock is the file's existence: created with O_CREAT|O_EXCL ('wx'), removed on release.
//
// A holder that dies leaves its file behind. It is judged stale when (a) it was written on this
// host by a pid that no longer exists, or (b) its mtime is older than `staleMs`: holders touch it
// every `heartbeatMs`, so a live holder on another host never looks stale, however long its
// download takes. Python's filelock leaves an empty .lock file after every use; such a foreign file
// is stale by rule (b) once it is `staleMs` old.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { link, mkdir, open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';

export interface LockOptions {
  /** A lock untouched for this long is abandoned (default 30 s). */
  staleMs?: number;
  /** How often the holder touches its lock (default 5 s). */
  heartbeatMs?: number;
  /** How often a waiter looks again (default 200 ms). */
  pollMs?: number;
  /** Called on every poll while another holder has the lock (progress, log lines). */
  onWait?: (waitedMs: number) => void | Promise<void>;
}

interface Owner {
  pid: number;
  host: string;
  token: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

async function readOwner(lockPath: string): Promise<Owner | undefined> {
  try {
    const raw = JSON.parse(await readFile(lockPath, 'utf8')) as Partial<Owner>;
    return typeof raw.pid === 'number' && typeof raw.host === 'string' && typeof raw.token === 'string' ? (raw as Owner) : undefined;
  } catch {
    return undefined; // empty (Python's), half-written by a holder just starting, or gone
  }
}

async function isStale(lockPath: string, mtimeMs: number, staleMs: number): Promise<boolean> {
  const owner = await readOwner(lockPath);
  if (owner && owner.host === hostname() && !pidAlive(owner.pid)) return true;
  return Date.now() - mtimeMs > staleMs;
}

/**
 * Removes a stale lock without removing a fresh one that a faster process put in its place: the
 * file is renamed aside first and given back (link fails if someone holds a newer one) when it
 * turns out not to be the inode judged stale.
 */
async function breakStale(lockPath: string, staleIno: number): Promise<void> {
  const aside = `${lockPath}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await rename(lockPath, aside);
  } catch {
    return; // someone else broke it first
  }
  const moved = await stat(aside);
  if (moved.ino !== staleIno) await link(aside, lockPath).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `fn` while holding `lockPath`; waits (polling) while another process or call holds it. */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const staleMs = options.staleMs ?? 30_000;
  const heartbeatMs = options.heartbeatMs ?? 5_000;
  const pollMs = options.pollMs ?? 200;
  await mkdir(path.dirname(lockPath), { recursive: true });
  const owner: Owner = { pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex') };
  const started = Date.now();

  for (;;) {
    try {
      const handle = await open(lockPath, 'wx');
      try {
        await handle.writeFile(JSON.stringify(owner));
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const info = await stat(lockPath).catch(() => undefined);
    if (!info) continue; // released between our open and stat: try again at once
    if (await isStale(lockPath, info.mtimeMs, staleMs)) {
      await breakStale(lockPath, info.ino);
      continue;
    }
    await options.onWait?.(Date.now() - started);
    await sleep(pollMs);
  }

  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => undefined);
  }, heartbeatMs);
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    // Only our own lock: if it was (wrongly) broken as stale, the file is now someone else's.
    if ((await readOwner(lockPath))?.token === owner.token) await unlink(lockPath).catch(() => undefined);
  }
}
