/**
 * Failures on the wire: `failure` in a reply is null or a JSON *string* of
 * `{class, module, message, tb, args, kwargs}` (oslo's serialize_remote_exception). The mapping
 * of our error kinds to oslo class/module names lives in services/errors.ts only.
 */
import { ComputeError, fromRpcFailure, Internal, toRpcFailure, type RpcFailure } from '../errors';
import { isPlainObject } from './envelope';

/** Serialise any thrown value as the `failure` string of a reply. */
export function encodeFailure(err: unknown): string {
  return JSON.stringify(toRpcFailure(err));
}

/** Parse a `failure` string from a reply into the matching ComputeError subclass. */
export function decodeFailure(failure: unknown): ComputeError {
  let parsed: unknown = failure;
  if (typeof failure === 'string') {
    try {
      parsed = JSON.parse(failure);
    } catch {
      return new Internal(`unparseable remote failure: ${failure.slice(0, 200)}`);
    }
  }
  if (!isPlainObject(parsed)) return new Internal(`malformed remote failure: ${JSON.stringify(failure).slice(0, 200)}`);
  return fromRpcFailure(parsed as Partial<RpcFailure>);
}

/** The remote class name a decoded failure came from (e.g. "NoSuchMethod"). */
export function remoteClassOf(err: ComputeError): string | undefined {
  const d = err.details;
  return isPlainObject(d) && typeof d.remoteClass === 'string' ? d.remoteClass : undefined;
}
