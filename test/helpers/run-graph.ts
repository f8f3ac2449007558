// Runs golden cases through a compiled graph in-process (no replica) and cuts out the quantities
// fair-esm's fixture stores, with the engine's own padding and slicing functions.
import ort from 'onnxruntime-node';
import { padTokens, sliceContacts, sliceRows, type BatchOutput } from '../../src/engine/batch.js';

export type GoldenQuantity = 'logits' | 'last_hidden' | 'repr_layer1' | 'contacts';

/** Runs token rows as one padded batch; returns, per row, the fixture's quantities. */
export async function runGoldenRows(
  session: ort.InferenceSession,
  rows: Int32Array[],
  opts: { padTokenId: number; numLayers: number; contacts: boolean },
): Promise<Partial<Record<GoldenQuantity, Float32Array>>[]> {
  const { ids, batchSize, seqLen } = padTokens(rows, opts.padTokenId);
  const last = `hidden_${opts.numLayers}`;
  const fetches = ['logits', 'hidden_1', last, ...(opts.contacts ? ['contacts'] : [])];
  const out = await session.run({ input_ids: new ort.Tensor('int64', ids, [batchSize, seqLen]) }, fetches);
  const view = (name: string): BatchOutput => ({ data: out[name].data as Float32Array, dims: out[name].dims });
  return rows.map((row, b) => ({
    logits: sliceRows(view('logits'), b, 0, row.length),
    repr_layer1: sliceRows(view('hidden_1'), b, 0, row.length),
    last_hidden: sliceRows(view(last), b, 0, row.length),
    ...(opts.contacts ? { contacts: sliceContacts(view('contacts'), b, row.length - 2) } : {}),
  }));
}
