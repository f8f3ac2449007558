// Checks done before anything is queued, so a malformed request is rejected on its own and never
// reaches a batch it would fail for everyone in it. Layer numbers are checked only for shape: the
// scheduler does not know the model's depth, so callers (tasks/) must check the range.
import type { SchedulerOptions, SubmitOptions } from './scheduler.js';
import type { Executor, WorkItem } from './types.js';
import { PRIORITY_MAX } from './priority.js';

const isCount = (n: number) => n === Infinity || (Number.isInteger(n) && n >= 1);

export function validateOptions(executor: Executor, options: SchedulerOptions): void {
  if (!Number.isInteger(executor.size) || executor.size < 1) throw new RangeError(`executor needs ≥ 1 replica, has ${executor.size}`);
  if (!(options.maxBatchTokens > 0)) throw new RangeError(`maxBatchTokens must be positive, got ${options.maxBatchTokens}`);
  if (!isCount(options.maxBatchSize)) throw new RangeError(`maxBatchSize must be a whole number ≥ 1, got ${options.maxBatchSize}`);
  if (!(options.maxWaitMs >= 0) || !Number.isFinite(options.maxWaitMs)) throw new RangeError(`maxWaitMs must be ≥ 0, got ${options.maxWaitMs}`);
  if (!(options.maxQueuedTokens > 0)) throw new RangeError(`maxQueuedTokens must be positive, got ${options.maxQueuedTokens}`);
  const bound = options.priorityMaxWaitMs;
  if (bound !== undefined && !(bound >= 0 && Number.isFinite(bound))) throw new RangeError(`priorityMaxWaitMs must be ≥ 0, got ${bound}`);
}

export function validateSubmitOptions(options: SubmitOptions): void {
  const { timeoutMs } = options;
  if (timeoutMs !== undefined && !(timeoutMs > 0 && Number.isFinite(timeoutMs))) {
    throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  }
  const { priority } = options;
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0 && priority <= PRIORITY_MAX)) {
    throw new RangeError(`priority must be a whole number from 0 to ${PRIORITY_MAX}, got ${priority}`);
  }
}

function checkLayers(layers: unknown, where: string): void {
  if (layers === undefined) return;
  if (!Array.isArray(layers) || !layers.every((k) => Number.isInteger(k) && k >= 0)) {
    throw new TypeError(`${where} must be a list of layer numbers ≥ 0`);
  }
}

export function validateItems(items: readonly WorkItem[], replicas: number): void {
  if (!Array.isArray(items)) throw new TypeError('items must be an array');
  items.forEach((item, i) => {
    if (!(item?.tokens instanceof Int32Array)) throw new TypeError(`item ${i}: tokens must be an Int32Array`);
    // cls … eos: the engine refuses a shorter row, which would fail everyone else in its batch.
    if (item.tokens.length < 2) throw new RangeError(`item ${i}: ${item.tokens.length} tokens; at least cls and eos are needed`);
    if (typeof item.want !== 'object' || item.want === null) throw new TypeError(`item ${i}: want must be an object`);
    checkLayers(item.want.hidden, `item ${i}: want.hidden`);
    checkLayers(item.want.mean, `item ${i}: want.mean`);
    checkLayers(item.want.bos, `item ${i}: want.bos`);
    const { replica } = item;
    if (replica !== undefined && !(Number.isInteger(replica) && replica >= 0 && replica < replicas)) {
      throw new RangeError(`item ${i}: replica ${replica} is not one of 0 … ${replicas - 1}`);
    }
  });
}
