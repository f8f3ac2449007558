// What a checkpoint is, for people: the published model its shape matches, its parameter count,
// and the licence the published weights of that family and size carry (README "Models"). The
// licence follows the shape, since a local directory has no model card: a checkpoint trained by
// you carries yours, and /v1/models says the licence is the published weights'.
import type { EsmConfig } from './config.js';
import { ESM2_PRESETS } from './presets.js';

export interface ModelLicense {
  name: string;
  url: string;
  /** Not for commercial use (ESM C 600M): the server warns when it serves one. */
  nonCommercial: boolean;
}

export interface ModelIdentity {
  /** Published models of this family and shape (ESM-1b and the five ESM-1v share one), empty for other shapes. */
  published: string[];
  parameters: number;
  license: ModelLicense | null;
}

const MIT: ModelLicense = { name: 'MIT (fair-esm)', url: 'https://github.com/facebookresearch/esm/blob/main/LICENSE', nonCommercial: false };
const CAMBRIAN_OPEN: ModelLicense = {
  name: 'EvolutionaryScale Cambrian Open License Agreement',
  url: 'https://www.evolutionaryscale.ai/policies/cambrian-open-license-agreement',
  nonCommercial: false,
};
const CAMBRIAN_NON_COMMERCIAL: ModelLicense = {
  name: 'EvolutionaryScale Cambrian Non-Commercial License Agreement',
  url: 'https://www.evolutionaryscale.ai/policies/cambrian-non-commercial-license-agreement',
  nonCommercial: true,
};
/** ESM C's licence by published size (EvolutionaryScale's LICENSE.md: 300M open, 600M non-commercial). */
const ESMC_LICENSES: Record<string, ModelLicense> = { 'ESMC-300M': CAMBRIAN_OPEN, 'ESMC-600M': CAMBRIAN_NON_COMMERCIAL };

/** `parameters`: the checkpoint's stored parameter count (its tensors' sizes). */
export function identifyModel(config: EsmConfig, parameters: number): ModelIdentity {
  const published = Object.values(ESM2_PRESETS)
    .filter((p) => p.name !== 'tiny' && (p.family ?? 'esm2') === config.family)
    .filter((p) => p.numLayers === config.numLayers && p.hiddenSize === config.hiddenSize && p.numHeads === config.numHeads && p.intermediateSize === config.intermediateSize)
    .map((p) => p.name);
  const license = config.family === 'esmc' ? (published.length ? ESMC_LICENSES[published[0]] ?? null : null) : MIT;
  return { published, parameters, license };
}

/** The warning logged at start when the published weights of this shape are not for commercial use. */
export function licenseWarning(name: string, identity: ModelIdentity): string | undefined {
  const { license } = identity;
  if (!license?.nonCommercial) return undefined;
  return `${name} has the shape of ${identity.published.join(' / ')}, whose weights are under the ${license.name} (${license.url}): not for commercial use`;
}

/** The identity of a loaded checkpoint (its parameters counted from the tensors it stores). */
export function checkpointIdentity(checkpoint: { config: EsmConfig; tensorNames: readonly string[]; tensorShape(name: string): number[] }): ModelIdentity {
  const parameters = checkpoint.tensorNames.reduce((n, name) => n + checkpoint.tensorShape(name).reduce((a, b) => a * b, 1), 0);
  return identifyModel(checkpoint.config, parameters);
}

/** identity in /v1/models form. */
export function identityJson(identity: ModelIdentity): Record<string, unknown> {
  const { license } = identity;
  return {
    published_shape: identity.published,
    parameters: identity.parameters,
    license: license ? { name: license.name, url: license.url, non_commercial: license.nonCommercial, of: 'the published weights of this family and size' } : null,
  };
}
