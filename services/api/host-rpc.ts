import { ComputeError, Timeout, Unavailable } from '../errors';
import type { ApiDeps, Caller } from './route';

export interface CallerContext {
  requestId: string;
  caller?: Caller;
  projectId?: string;
}

export interface HostCallOptions {
  timeoutSec?: number;
  /** Long operations (build, migrate, snapshot): the host sends call-monitor heartbeats, so a
   * dead host is noticed in this many seconds while a slow but alive one may run to timeoutSec. */
  monitorSec?: number;
}

/**
 * RPC `method` on compute host `host` with the caller in the context: the token's name becomes
 * user_id/user_name, which the host records in instance_actions. A host that does not answer
 * (no listener, timed out, broker down) is a 503 naming the host; remote failures keep their
 * class (NotFound 404, InstanceInvalidState 409, NoCapacity 409, InvalidParameter 400).
 */
export async function callHost<T>(deps: ApiDeps, host: string, method: string, args: Record<string, unknown>, ctx: CallerContext, opts: HostCallOptions = {}): Promise<T> {
  if (!deps.rpc) throw new Unavailable(`host ${host} cannot be reached: this API runs without an RPC client`);
  const timeout = opts.timeoutSec ?? deps.config.rpc.callTimeoutSec;
  try {
    return await deps.rpc.call<T>(host, method, args, {
      timeout,
      ...(opts.monitorSec ? { callMonitorTimeout: opts.monitorSec } : {}),
      context: {
        requestId: ctx.requestId,
        userId: ctx.caller?.name,
        userName: ctx.caller?.name,
        projectId: ctx.projectId,
        roles: ctx.caller ? [ctx.caller.role] : [],
        isAdmin: ctx.caller?.role === 'admin',
        readOnly: false,
      },
    });
  } catch (err) {
    if (err instanceof Timeout) {
      throw new Unavailable(`host ${host} did not answer ${method} in time: ${err.message}`, { cause: err, details: { host, method } });
    }
    if (err instanceof Unavailable) {
      throw new Unavailable(`host ${host} is unavailable for ${method}: ${err.message}`, { cause: err, details: { host, method, remote: err.details } });
    }
    if (err instanceof ComputeError) throw err;
    throw err;
  }
}
