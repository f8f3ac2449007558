// The engine's public surface: replicas (one child process per device) and their result types.
export { Replica, type CrashEvent, type ReplicaInfo, type ReplicaOptions, type ReplicaState, type RestartPolicy, type RunRequest } from './replica.js';
export { ReplicaError, type ReplicaErrorReason } from './errors.js';
export type { SequenceResult, Want } from './batch.js';
export { DeviceSpecError, executionProvidersFor, parseDevice, type DeviceKind, type DeviceSpec } from './devices.js';
export type { FaultInjection, ModelPaths } from './protocol.js';
