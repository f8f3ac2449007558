// Which published model a checkpoint's shape is, and the licence of those published weights: ESM-2
// and ESM-1b/1v are MIT, ESM C 300M is under the Cambrian open licence, ESM C 600M under the
// non-commercial one (the server warns when it serves that shape).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { identifyModel, licenseWarning } from '../src/model/identity.js';
import { ESM2_PRESETS, presetConfig } from '../src/model/presets.js';

const of = (name: string) => identifyModel(presetConfig(ESM2_PRESETS[name]), 1);

test('published shapes are named, ESM-1b and ESM-1v sharing one; the tiny fixture shape is none', () => {
  assert.deepEqual(of('esm2_t33_650M_UR50D').published, ['esm2_t33_650M_UR50D']);
  assert.deepEqual(of('esm1b_t33_650M_UR50S').published, ['esm1b_t33_650M_UR50S', 'esm1v_t33_650M_UR90S']);
  assert.deepEqual(of('ESMC-300M').published, ['ESMC-300M']);
  assert.deepEqual(of('tiny').published, []);
});

test('licences: MIT for fair-esm models, Cambrian open for ESM C 300M, non-commercial for ESM C 600M, unknown for other ESM C shapes', () => {
  assert.equal(of('esm2_t6_8M_UR50D').license?.name, 'MIT (fair-esm)');
  assert.equal(of('esm1b_t33_650M_UR50S').license?.nonCommercial, false);
  assert.match(of('ESMC-300M').license!.name, /Cambrian Open License/);
  assert.equal(of('ESMC-300M').license!.nonCommercial, false);
  assert.match(of('ESMC-600M').license!.name, /Cambrian Non-Commercial License/);
  assert.equal(of('ESMC-600M').license!.nonCommercial, true);
  const other = identifyModel({ ...presetConfig(ESM2_PRESETS['ESMC-300M']), numLayers: 12 }, 1);
  assert.equal(other.license, null);
  assert.equal(licenseWarning('biohub/ESMC-300M', of('ESMC-300M')), undefined);
  assert.match(licenseWarning('biohub/ESMC-600M', of('ESMC-600M'))!, /^biohub\/ESMC-600M has the shape of ESMC-600M, whose weights are under .*Non-Commercial.*: not for commercial use$/);
});
