// Every error a gRPC client can see: the HTTP error (errors.ts toApiError, one table for both
// protocols) as a gRPC status, its message the HTTP `detail`, with trailing metadata `esm2-error`
// (the HTTP `error` code) and, where HTTP sends Retry-After, `retry-after-ms`.
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { toApiError, type ApiError } from '../errors.js';

/** HTTP statuses as gRPC codes (README, gRPC). 413 too_costly: OUT_OF_RANGE, not retryable; RESOURCE_EXHAUSTED is the 429s, retryable later. */
export function grpcCode(api: ApiError): status {
  if (api.statusCode === 413 && api.code === 'too_costly') return status.OUT_OF_RANGE;
  switch (api.statusCode) {
    case 401:
      return status.UNAUTHENTICATED;
    case 404:
      return status.NOT_FOUND;
    case 429:
      return status.RESOURCE_EXHAUSTED;
    case 499:
      return status.CANCELLED;
    case 503:
      return status.UNAVAILABLE;
    case 504:
      return status.DEADLINE_EXCEEDED;
    default:
      return api.statusCode >= 400 && api.statusCode < 500 ? status.INVALID_ARGUMENT : status.INTERNAL;
  }
}

/** The gRPC error for anything a call threw. */
export function toGrpcError(err: unknown): Partial<ServiceError> {
  const api = toApiError(err);
  const metadata = new Metadata();
  metadata.set('esm2-error', api.code);
  const retryAfter = Number(api.headers['retry-after']);
  if (Number.isFinite(retryAfter) && retryAfter > 0) metadata.set('retry-after-ms', String(Math.round(retryAfter * 1000)));
  return { code: grpcCode(api), details: api.message, message: api.message, metadata };
}
