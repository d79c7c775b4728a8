/**
 * The closed set of error kinds. Every layer throws one of these (keeping the cause);
 * HTTP and RPC each map them in exactly one place: `toHttp` and `toRpcFailure`.
 */
export type ErrorCode =
  | 'invalid_input'
  | 'not_found'
  | 'conflict'
  | 'no_capacity'
  | 'unavailable'
  | 'timeout'
  | 'unauthorized'
  | 'forbidden'
  | 'no_such_method'
  | 'unsupported_version'
  | 'internal';

export interface ErrorOptions {
  cause?: unknown;
  details?: unknown;
}

export abstract class ComputeError extends Error {
  abstract readonly code: ErrorCode;
  readonly details?: unknown;
  constructor(message: string, opts: ErrorOptions = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = new.target.name;
    this.details = opts.details;
  }
}

export class InvalidInput extends ComputeError { readonly code = 'invalid_input' as const; }
export class NotFound extends ComputeError { readonly code = 'not_found' as const; }
/** The object exists but its state forbids the operation (nova's InstanceInvalidState). */
export class Conflict extends ComputeError { readonly code = 'conflict' as const; }
export class NoCapacity extends ComputeError { readonly code = 'no_capacity' as const; }
/** A dependency (database, broker, docker, ovs, registry, another host) is down. */
export class Unavailable extends ComputeError { readonly code = 'unavailable' as const; }
export class Timeout extends ComputeError { readonly code = 'timeout' as const; }
export class Unauthorized extends ComputeError { readonly code = 'unauthorized' as const; }
export class Forbidden extends ComputeError { readonly code = 'forbidden' as const; }
export class NoSuchMethod extends ComputeError { readonly code = 'no_such_method' as const; }
export class UnsupportedVersion extends ComputeError { readonly code = 'unsupported_version' as const; }
export class Internal extends ComputeError { readonly code = 'internal' as const; }

/** Wrap anything thrown into a ComputeError, keeping the original as cause. */
export function asComputeError(err: unknown): ComputeError {
  if (err instanceof ComputeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new Internal(message, { cause: err });
}

const HTTP_STATUS: Record<ErrorCode, number> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  no_such_method: 404,
  conflict: 409,
  no_capacity: 409,
  unsupported_version: 400,
  internal: 500,
  unavailable: 503,
  timeout: 504,
};

export interface HttpErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown; request_id?: string };
}

export function toHttp(err: unknown, requestId?: string): { status: number; body: HttpErrorBody } {
  const e = asComputeError(err);
  return {
    status: HTTP_STATUS[e.code],
    body: { error: { code: e.code, message: e.message, details: e.details, request_id: requestId } },
  };
}

/**
 * oslo.messaging failure payload. `class`/`module` are what a Python client uses to rebuild the
 * exception: a module it cannot import (or one not in allowed_remote_exmods) becomes RemoteError
 * carrying our class name and message, which is what a control plane expects from a remote service.
 */
export interface RpcFailure {
  class: string;
  module: string;
  message: string;
  tb: string[];
  args: unknown[];
  kwargs: Record<string, unknown>;
}

const RPC_CLASS: Record<ErrorCode, { class: string; module: string }> = {
  invalid_input: { class: 'InvalidParameter', module: 'container_compute.exception' },
  not_found: { class: 'NotFound', module: 'container_compute.exception' },
  conflict: { class: 'InstanceInvalidState', module: 'container_compute.exception' },
  no_capacity: { class: 'NoCapacity', module: 'container_compute.exception' },
  unavailable: { class: 'ServiceUnavailable', module: 'container_compute.exception' },
  timeout: { class: 'Timeout', module: 'container_compute.exception' },
  unauthorized: { class: 'Unauthorized', module: 'container_compute.exception' },
  forbidden: { class: 'Forbidden', module: 'container_compute.exception' },
  no_such_method: { class: 'NoSuchMethod', module: 'oslo_messaging.rpc.dispatcher' },
  unsupported_version: { class: 'UnsupportedVersion', module: 'oslo_messaging.rpc.dispatcher' },
  internal: { class: 'InternalError', module: 'container_compute.exception' },
};

export function toRpcFailure(err: unknown): RpcFailure {
  const e = asComputeError(err);
  const { class: cls, module } = RPC_CLASS[e.code];
  return {
    class: cls,
    module,
    message: e.message,
    tb: (e.stack ?? '').split('\n').map((l) => l + '\n'),
    args: [e.message],
    kwargs: e.details === undefined ? {} : { details: e.details },
  };
}

const ERROR_CLASSES: Record<ErrorCode, new (message: string, opts?: ErrorOptions) => ComputeError> = {
  invalid_input: InvalidInput,
  not_found: NotFound,
  conflict: Conflict,
  no_capacity: NoCapacity,
  unavailable: Unavailable,
  timeout: Timeout,
  unauthorized: Unauthorized,
  forbidden: Forbidden,
  no_such_method: NoSuchMethod,
  unsupported_version: UnsupportedVersion,
  internal: Internal,
};

/**
 * The inverse of `toRpcFailure`, for our own RPC client: a remote failure becomes the
 * ComputeError subclass its oslo class name maps to (Internal for a class we do not know),
 * keeping the remote message; the remote class, module, traceback and kwargs go to `details`.
 */
export function fromRpcFailure(f: Partial<RpcFailure>): ComputeError {
  const cls = typeof f.class === 'string' ? f.class : 'UnknownError';
  const code = (Object.keys(RPC_CLASS) as ErrorCode[]).find((c) => RPC_CLASS[c].class === cls) ?? 'internal';
  const kwargs = f.kwargs && typeof f.kwargs === 'object' ? f.kwargs : {};
  const message = typeof f.message === 'string' ? f.message : `remote ${cls}`;
  return new ERROR_CLASSES[code](message, {
    details: {
      remoteClass: cls,
      remoteModule: f.module,
      remoteTraceback: Array.isArray(f.tb) ? f.tb.join('') : undefined,
      ...('details' in kwargs ? { details: (kwargs as { details: unknown }).details } : {}),
    },
  });
}

/** Follow `cause` links into one readable line for logs and stored results. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let i = 0; cur !== undefined && cur !== null && i < 5; i++) {
    parts.push(cur instanceof Error ? `${cur.name}: ${cur.message}` : String(cur));
    cur = cur instanceof Error ? (cur as Error & { cause?: unknown }).cause : undefined;
  }
  return parts.join(' <- caused by ');
}
