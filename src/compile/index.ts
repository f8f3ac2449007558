// Compiles a checkpoint into an ONNX graph (+ external weights) once, and caches it on disk keyed
// by checkpoint content, graph options and the compiler's own code, so a restart loads directly.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Esm2Checkpoint } from '../model/checkpoint.js';
import type { ModelFamily } from '../model/config.js';
import { ExternalDataWriter } from './external-data.js';
import { buildEsm2Graph, type Esm2Shape, type GraphOptions } from './esm2-graph.js';
import { buildEsm1bGraph } from './esm1b-graph.js';
import { buildEsmcGraph } from './esmc-graph.js';
import type { WeightSource } from './weights.js';
import { GraphBuilder } from './onnx-graph.js';
import { CONTRIB_DOMAIN } from './attention-fused.js';
import { checkEntry, discardEntry, writeManifest } from './cache-entry.js';

export type Variant = 'default' | 'contacts';
/** fp16: half-precision compute; int8: float32 compute with every encoder Linear dynamically quantized (cpu). */
export type Precision = 'fp32' | 'fp16' | 'int8';

export interface CompileOptions {
  variant: Variant;
  precision: Precision;
  /** ORT contrib-op attention in the default variant (default true). */
  fusedAttention?: boolean;
  /** Defaults to $ESM2_COMPILE_CACHE or ~/.cache/esm2-serve/compiled. */
  cacheDir?: string;
  /** Told when a cached graph is damaged (which file, what is wrong) before it is recompiled. */
  onWarning?: (message: string) => void;
}

/** Each model family's forward pass (config.ts chooses the family from model_type and position_embedding_type). */
const FAMILY_GRAPHS: Record<ModelFamily, (g: GraphBuilder, source: WeightSource, shape: Esm2Shape, opts: GraphOptions) => Promise<void>> = {
  esm2: buildEsm2Graph,
  esm1: buildEsm1bGraph,
  esmc: buildEsmcGraph,
};

export interface CompiledModel {
  onnxPath: string;
  family: ModelFamily;
  variant: Variant;
  precision: Precision;
  fusedAttention: boolean;
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  vocabSize: number;
  padTokenId: number;
  clsTokenId: number;
  eosTokenId: number;
  maskTokenId: number;
  outputs: string[];
  cacheKey: string;
  /** False when the graph came from the cache. */
  compiled: boolean;
  compileMs: number;
}

/** The files of an entry, all recorded in its manifest with size and sha256. */
const ENTRY_FILES = ['model.onnx', 'model.onnx.data'] as const;

export function defaultCompileCacheDir(): string {
  return process.env.ESM2_COMPILE_CACHE || join(homedir(), '.cache', 'esm2-serve', 'compiled');
}

export function esm2Shape(checkpoint: Esm2Checkpoint): Esm2Shape {
  return { ...checkpoint.config, clsTokenId: checkpoint.tokenizer.clsId, eosTokenId: checkpoint.tokenizer.eosId };
}

export function graphOutputs(shape: Esm2Shape, variant: Variant): string[] {
  const hidden = Array.from({ length: shape.numLayers + 1 }, (_, k) => `hidden_${k}`);
  return ['logits', ...hidden, ...(variant === 'contacts' ? ['contacts'] : [])];
}

export async function compileCheckpoint(checkpoint: Esm2Checkpoint, options: CompileOptions): Promise<CompiledModel> {
  const fusedAttention = options.fusedAttention ?? true;
  const cacheDir = options.cacheDir ?? defaultCompileCacheDir();
  const shape = esm2Shape(checkpoint);
  const cacheKey = createHash('sha256')
    .update(JSON.stringify({ checkpoint: await checkpoint.fingerprint(), variant: options.variant, precision: options.precision, fusedAttention, compiler: await compilerVersion() }))
    .digest('hex')
    .slice(0, 32);
  const finalDir = join(cacheDir, cacheKey);
  const describe = (compiled: boolean, compileMs: number): CompiledModel => ({
    onnxPath: join(finalDir, 'model.onnx'),
    family: shape.family,
    variant: options.variant,
    precision: options.precision,
    fusedAttention,
    numLayers: shape.numLayers,
    hiddenSize: shape.hiddenSize,
    numHeads: shape.numHeads,
    vocabSize: shape.vocabSize,
    padTokenId: shape.padTokenId,
    clsTokenId: shape.clsTokenId,
    eosTokenId: shape.eosTokenId,
    maskTokenId: shape.maskTokenId,
    outputs: graphOutputs(shape, options.variant),
    cacheKey,
    compiled,
    compileMs,
  });
  // The manifest is written last inside a private directory that is renamed into place, so a
  // directory with a manifest is complete, even with several processes compiling at once; every
  // file is re-hashed against it before use, since a file can be damaged after that (cache-entry.ts).
  const cached = await checkEntry(finalDir, ENTRY_FILES);
  if (cached.state === 'intact') return describe(false, 0);
  if (cached.state === 'damaged') {
    options.onWarning?.(`cached graph ${finalDir} is damaged: ${cached.problem}; moving it aside and recompiling`);
    await discardEntry(finalDir, cached.manifest);
  }

  const started = performance.now();
  await mkdir(cacheDir, { recursive: true });
  const workDir = join(cacheDir, `.${cacheKey}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await mkdir(workDir);
  try {
    const data = new ExternalDataWriter(join(workDir, 'model.onnx.data'));
    const g = new GraphBuilder(data);
    try {
      await FAMILY_GRAPHS[shape.family](g, checkpoint, shape, {
        variant: options.variant,
        computeType: options.precision === 'fp16' ? 'float16' : 'float32',
        linearWeights: options.precision === 'int8' ? 'int8' : 'compute',
        fusedAttention,
      });
    } finally {
      data.close();
    }
    const bytes = g.encode({
      graphName: `${shape.family}_${options.variant}_${options.precision}`,
      opsets: { '': 17, [CONTRIB_DOMAIN]: 1 },
      metadata: { checkpoint: checkpoint.dir, family: shape.family, variant: options.variant, precision: options.precision },
    });
    await writeFile(join(workDir, 'model.onnx'), bytes);
    const compileMs = performance.now() - started;
    await writeManifest(workDir, { ...describe(true, compileMs), onnxPath: 'model.onnx' });
    try {
      await rename(workDir, finalDir);
    } catch (err) {
      // Another process finished the same graph first: use its copy, once it proves intact.
      const other = await checkEntry(finalDir, ENTRY_FILES);
      if (other.state !== 'intact') throw new Error(`cannot install the compiled graph at ${finalDir}: ${(err as Error).message}${other.state === 'damaged' ? ` (${other.problem})` : ''}`);
      await rm(workDir, { recursive: true, force: true });
      return describe(false, 0);
    }
    return describe(true, compileMs);
  } catch (err) {
    await rm(workDir, { recursive: true, force: true });
    throw err;
  }
}

let cachedCompilerVersion: Promise<string> | null = null;

/** A hash of this directory's compiled code: any change to the compiler invalidates old graphs. */
export function compilerVersion(): Promise<string> {
  cachedCompilerVersion ??= (async () => {
    const dir = dirname(fileURLToPath(import.meta.url));
    const hash = createHash('sha256');
    for (const file of (await readdir(dir)).filter((f) => f.endsWith('.js')).sort()) hash.update(file).update(await readFile(join(dir, file)));
    return hash.digest('hex').slice(0, 16);
  })();
  return cachedCompilerVersion;
}
