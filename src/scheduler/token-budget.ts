// Length-sorted batching under a padded-token budget (esm-extract's get_batch_indices): a batch of
// n sequences padded to the longest costs max_len × n tokens, so similar lengths go together.

/**
 * Groups item indices into batches, shortest first, such that max_len × n ≤ maxTokens and
 * n ≤ maxSequences. An item longer than the budget on its own still gets a batch of one.
 */
export function tokenBudgetBatches(lengths: readonly number[], maxTokens: number, maxSequences = Infinity): number[][] {
  if (!(maxTokens > 0)) throw new RangeError(`token budget must be positive, got ${maxTokens}`);
  if (!(maxSequences >= 1) || (maxSequences !== Infinity && !Number.isInteger(maxSequences))) {
    throw new RangeError(`batch size must be a whole number ≥ 1, got ${maxSequences}`);
  }
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const batches: number[][] = [];
  let current: number[] = [];
  for (const index of order) {
    // Sorted ascending, so this item is the longest of the batch it joins.
    const paddedCost = lengths[index] * (current.length + 1);
    if (current.length > 0 && (paddedCost > maxTokens || current.length >= maxSequences)) {
      batches.push(current);
      current = [];
    }
    current.push(index);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
