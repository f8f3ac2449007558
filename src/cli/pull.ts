// `esm2 pull REPO[@rev]`: a hub checkpoint into the shared huggingface_hub cache (what the server
// would fetch at start), with a progress bar on stderr; stdout gets the snapshot directory alone,
// so `MODEL_NAME=$(esm2 pull org/name)` works.
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { hubEnv, progressLogger, pullModel } from '../model/hub/index.js';
import { formatBytes } from './init-random.js';

interface PullCliOptions {
  cacheDir?: string;
  progress: boolean;
}

/** A bar per file while it downloads: bytes, rate and ETA. */
function progressBar(): { onProgress: (file: string, bytes: number, total: number | undefined) => void; stop(): void } {
  const bar = new cliProgress.SingleBar(
    {
      format: '{file} {bar} {percentage}% | {done} / {size} | {rate}/s | ETA {eta_formatted}',
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let current: string | undefined;
  let started = 0;
  let base = 0;
  return {
    onProgress(file, bytes, total) {
      if (file !== current) {
        if (current !== undefined) bar.stop();
        current = file;
        started = Date.now();
        base = bytes; // a resumed download's rate counts only what this run fetches
        bar.start(total ?? bytes, bytes, { file, done: formatBytes(bytes), size: total === undefined ? '?' : formatBytes(total), rate: '0 B' });
      }
      const seconds = Math.max((Date.now() - started) / 1000, 1e-3);
      bar.update(bytes, { done: formatBytes(bytes), rate: formatBytes(Math.round((bytes - base) / seconds)) });
    },
    stop() {
      if (current !== undefined) bar.stop();
    },
  };
}

export function registerPull(program: Command): void {
  program
    .command('pull')
    .description('download a HuggingFace hub checkpoint (org/name[@revision]) into the huggingface_hub cache; prints its snapshot directory')
    .argument('<repo>', 'repository id, e.g. facebook/esm2_t6_8M_UR50D or facebook/esm2_t6_8M_UR50D@<commit>')
    .option('--cache-dir <dir>', 'hub cache (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)')
    .option('--no-progress', 'no progress bar (also off when stderr is not a terminal)')
    .action(async (repo: string, opts: PullCliOptions) => {
      const env = hubEnv();
      if (opts.cacheDir) env.cacheDir = opts.cacheDir;
      const bar = opts.progress && process.stderr.isTTY ? progressBar() : undefined;
      // Not a terminal (CI, a pod's init container): a log line per 10 % or 5 s instead of a bar.
      const lines = opts.progress && !bar ? progressLogger({ info: (m) => console.error(m), warn: (m) => console.error(m) }, repo) : undefined;
      const started = Date.now();
      try {
        const pulled = await pullModel(repo, {
          env,
          onProgress: bar?.onProgress ?? lines,
          onNotice: (message) => {
            bar?.stop();
            console.error(`esm2: warning: ${message}`);
          },
        });
        bar?.stop();
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        const what = pulled.bytesDownloaded > 0 ? `downloaded ${formatBytes(pulled.bytesDownloaded)} in ${seconds} s` : 'already cached, nothing downloaded';
        console.error(`${pulled.repoId}@${pulled.commit}: ${pulled.files.length} files, ${what}`);
        console.log(pulled.dir);
      } finally {
        bar?.stop();
      }
    });
}
