// The scheduler's public surface: the batch queue, device distribution, and their errors.
export { Scheduler, type DropReport, type RetryReport, type SchedulerOptions, type SchedulerStats, type SubmitOptions } from './scheduler.js';
export { CancelledError, OverloadedError, SchedulerTimeoutError, UnavailableError } from './errors.js';
export { distribute, distributionInfo, type DistributionInfo, type DistributionStrategy } from './distributor.js';
export { tokenBudgetBatches } from './token-budget.js';
export type { BatchReport, Executor, ItemOutcome, SequenceResult, Want, WorkItem } from './types.js';
