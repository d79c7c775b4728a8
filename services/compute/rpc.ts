import type { Config } from '../config';
import type { Db } from '../db/knex';
import type { Logger } from '../logger';
import { KeyedMutex } from '../rpc/keyed-mutex';
import { RpcServer, type EndpointTable } from '../rpc/server';
import { createComputeEndpoints } from './endpoints';

export interface ComputeRpcHandle {
  server: RpcServer;
  instanceLocks: KeyedMutex;
  /** Stop consuming, wait up to graceMs (30 s) for running requests, close the connection. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Start this host's RPC server: `<topic>` and `<topic>.<host>` on the control exchange plus the
 * `<topic>_fanout` exchange. Unfinished requests from a previous run are resumed or failed first.
 * Resolves once consuming; rejects (Unavailable) if RabbitMQ stays unreachable for `startTimeoutMs`.
 */
export async function startComputeRpc(opts: {
  config: Config;
  db: Db;
  endpoints?: EndpointTable;
  instanceLocks?: KeyedMutex;
  log?: Logger;
  startTimeoutMs?: number;
}): Promise<ComputeRpcHandle> {
  const { config, db } = opts;
  const instanceLocks = opts.instanceLocks ?? new KeyedMutex();
  const server = new RpcServer({
    amqpUrl: config.amqpUrl,
    controlExchange: config.controlExchange,
    topic: config.rpc.topic,
    host: config.host,
    db,
    endpoints: opts.endpoints ?? createComputeEndpoints({ db, host: config.host }),
    concurrency: config.rpc.concurrency,
    quorumQueues: config.rpc.quorumQueues,
    heartbeatSec: config.rpc.heartbeatSec,
    instanceLocks,
    log: opts.log,
    startTimeoutMs: opts.startTimeoutMs,
  });
  await server.start();
  return { server, instanceLocks, stop: (graceMs?: number) => server.stop(graceMs) };
}
