import { ComputeError, Conflict, Internal, InvalidInput, NotFound, Timeout, Unavailable } from '../../services/errors';

/**
 * The one place where what dockerode throws becomes one of services/errors. The original error
 * always stays as `cause`; `details` carries the operation and the HTTP status for logs.
 */

/** Socket-level failures meaning "dockerd (or the path to it) is not there". */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT', // no socket file: dockerd not running
  'EACCES', // socket not ours to use
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTCONN',
]);

export interface DockerErrorShape {
  statusCode?: number;
  code?: string;
  message: string;
  /** Docker's JSON body, `{ message }`. */
  json?: unknown;
}

function shapeOf(err: unknown): DockerErrorShape {
  if (typeof err !== 'object' || err === null) return { message: String(err) };
  const e = err as Record<string, unknown>;
  return {
    statusCode: typeof e.statusCode === 'number' ? e.statusCode : undefined,
    code: typeof e.code === 'string' ? e.code : undefined,
    message: typeof e.message === 'string' ? e.message : String(err),
    json: e.json,
  };
}

/** Docker's own message when it sent one, else the transport's. */
export function dockerMessage(err: unknown): string {
  const s = shapeOf(err);
  if (typeof s.json === 'object' && s.json !== null) {
    const m = (s.json as Record<string, unknown>).message;
    if (typeof m === 'string' && m.length > 0) return m;
  }
  if (typeof s.json === 'string' && s.json.trim().length > 0) return s.json.trim();
  return s.message.trim();
}

/** HTTP status dockerd answered with, if any. */
export function dockerStatus(err: unknown): number | undefined {
  return shapeOf(err).statusCode;
}

export function mapDockerError(err: unknown, op: string): ComputeError {
  if (err instanceof ComputeError) return err;
  const s = shapeOf(err);
  const msg = `docker ${op}: ${dockerMessage(err)}`;
  const opts = { cause: err, details: { op, statusCode: s.statusCode, code: s.code } };
  if (s.statusCode !== undefined) {
    switch (s.statusCode) {
      case 400:
        // Docker refused the values (e.g. a cpuset the host does not have): the caller's input.
        return new InvalidInput(msg, opts);
      case 404:
        return new NotFound(msg, opts);
      case 409:
        return new Conflict(msg, opts);
      default:
        return new Internal(msg, opts);
    }
  }
  if (s.code !== undefined && UNAVAILABLE_CODES.has(s.code)) {
    return new Unavailable(`docker ${op}: dockerd unreachable (${s.code}): ${s.message}`, opts);
  }
  if (s.code === 'ETIMEDOUT') return new Timeout(`docker ${op}: ${s.message}`, opts);
  return new Internal(msg, opts);
}

/**
 * Push/pull report failures inside a 200 response, as text. Classify the text so a caller can
 * tell "registry down" (retry later) from "no such image" (give up).
 */
export function classifyStreamError(op: string, message: string): ComputeError {
  const msg = `docker ${op}: ${message}`;
  const details = { op, streamError: message };
  if (/connection refused|no such host|dial tcp|i\/o timeout|network is unreachable|TLS handshake timeout|connection reset|EOF$/i.test(message)) {
    return new Unavailable(msg, { details });
  }
  if (/not found|manifest unknown|does not exist|An image does not exist locally/i.test(message)) {
    return new NotFound(msg, { details });
  }
  return new Internal(msg, { details });
}
