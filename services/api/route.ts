import type { Request, Response } from 'express';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import type { HttpMethod, ValidRequest } from './openapi';

/** Who made the request: the configured token's name and role (undefined on open routes). */
export interface Caller {
  name: string;
  role: 'admin' | 'reader';
}

/** What the API needs to reach compute hosts: RpcClient satisfies it. */
export interface HostRpc {
  call<T = unknown>(host: string, method: string, args: Record<string, unknown>, opts?: { timeout?: number; callMonitorTimeout?: number; context?: Record<string, unknown> }): Promise<T>;
}

/** Everything a route may use: narrow on purpose (no Docker, no network drivers). */
export interface ApiDeps {
  config: Config;
  db: Db;
  /** RPC to compute hosts; without it every route needing a host answers 503. */
  rpc?: HostRpc;
}

export interface RouteContext {
  req: Request;
  res: Response;
  v: ValidRequest;
  requestId: string;
  caller?: Caller;
}

/**
 * One row of the route table: registration (app.ts) and the spec-agreement test both read these,
 * so a route cannot exist in one and not the other. `path` is the OpenAPI template.
 */
export interface ApiRoute {
  method: HttpMethod;
  path: string;
  /** Return a JSON body (status 200 unless `status` set), or nothing when the handler wrote the response. */
  handler(ctx: RouteContext): Promise<{ status?: number; body?: unknown } | void>;
}
