import http from 'node:http';
import { HostCgroupReader } from '../../drivers/cgroups';
import { collectProcessMetrics, registry } from '../metrics';
import { DockerodeDriver } from '../../drivers/docker';
import { loadNetworkDrivers } from '../../drivers/network';
import type { CommandRunner } from '../../drivers/network/exec';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { NetworksRepo } from '../db/networks-repo';
import { describeError } from '../errors';
import { logger } from '../logger';
import { RpcClient } from '../rpc/client';
import type { EndpointTable } from '../rpc/server';
import { KeyedMutex } from '../rpc/keyed-mutex';
import type { ComputeDeps, FaultInjector } from './compute-deps';
import { createComputeEndpoints } from './endpoints';
import { startHeartbeat } from './heartbeat';
import { createOperationEndpoints } from './operation-endpoints';
import { reconcile, startDockerEventWatcher, startReconcileLoop } from './reconciler';
import { startComputeRpc } from './rpc';

/**
 * The compute service's own GET /metrics (RPC, spawn steps, container events, process), for a
 * host that runs without the API (`--no-api`). With the API in the same process, /metrics of
 * the API shows the same registry.
 */
export async function startMetricsServer(listen: string, port: number): Promise<http.Server> {
  collectProcessMetrics();
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
      registry.metrics().then((text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType });
        res.end(text);
      }, (err) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(err));
      });
      return;
    }
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'not_found', message: `no route for ${req.method} ${req.url}` } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, listen, () => resolve());
  });
  return server;
}

export interface ComputeService {
  deps: ComputeDeps;
  rpcClient: RpcClient;
  /** Stop reporting (tests of a destination whose heartbeat went stale). */
  stopHeartbeat(): void;
  stop(): Promise<void>;
}

/** Everything but the RPC server: usable in-process by tests and by the API. */
export async function createComputeDeps(config: Config, db: Db, opts: { faults?: FaultInjector; rpcClient?: RpcClient; runner?: CommandRunner } = {}): Promise<ComputeDeps> {
  const log = logger.child({ host: config.host });
  const docker = new DockerodeDriver({ socketPath: config.dockerSocket, timeoutMs: config.dockerTimeoutSec * 1000, concurrency: config.dockerConcurrency, logger: log });
  await docker.ping();
  // `runner`: tests wrap the command runner (e.g. RecordingRunner) to see every ip/ovs-vsctl/tc call.
  const networkDrivers = await loadNetworkDrivers({ ovs: config.ovs }, undefined, opts.runner);
  const rpcClient = opts.rpcClient;
  return {
    config,
    db,
    docker,
    networkDrivers,
    networks: new NetworksRepo(db),
    cgroups: new HostCgroupReader(),
    instanceLocks: new KeyedMutex(),
    log,
    // origin_host (a `_context_` key): our own server gets the fanout too and skips it, the
    // local refresh having just been done by the caller.
    notifyPeers: rpcClient ? (network) => rpcClient.fanoutCast('refresh_hosts', { network_id: network }, { context: { origin_host: config.host } }) : undefined,
    hosts: rpcClient
      ? { call: <T>(host: string, method: string, args: Record<string, unknown>, o?: { timeout?: number; context?: Record<string, unknown> }) =>
          rpcClient.call<T>(host, method, args, { timeout: o?.timeout ?? 300, ...(o?.context ? { context: o.context } : {}) }) }
      : undefined,
    faults: opts.faults,
  };
}

/** refresh_hosts fanouts this host sent itself (after refreshing locally) are not run twice. */
function skipOwnRefreshHosts(table: EndpointTable, host: string): EndpointTable {
  const ep = table.refresh_hosts;
  if (!ep) return table;
  return {
    ...table,
    refresh_hosts: {
      ...ep,
      handler: (ctx, args) => (ctx.raw?.origin_host === host ? Promise.resolve({ changed: 0, skipped: 'sent by this host' }) : ep.handler(ctx, args)),
    },
  };
}

/**
 * The compute service of this host: heartbeat, start-up reconcile (before any request is
 * taken, so a leftover task_state is known to be a crash's), RPC server, periodic reconcile.
 */
export async function startComputeService(config: Config, db: Db, opts: { faults?: FaultInjector; runner?: CommandRunner } = {}): Promise<ComputeService> {
  const hb = startHeartbeat(config, db);
  await hb.beat();
  const rpcClient = await RpcClient.connect({
    amqpUrl: config.amqpUrl, controlExchange: config.controlExchange, topic: config.rpc.topic,
    heartbeatSec: config.rpc.heartbeatSec, quorumQueues: config.rpc.quorumQueues, defaultTimeoutSec: config.rpc.callTimeoutSec,
  });
  const deps = await createComputeDeps(config, db, { ...opts, rpcClient });
  try {
    const report = await reconcile(deps, { startup: true });
    deps.log.info({ report }, 'Start-up reconcile done');
  } catch (err) {
    deps.log.error({ err: describeError(err) }, 'start-up reconcile failed; continuing');
  }
  const rpc = await startComputeRpc({
    config,
    db,
    instanceLocks: deps.instanceLocks,
    endpoints: skipOwnRefreshHosts({ ...createComputeEndpoints({ db, host: config.host }), ...createOperationEndpoints(deps) }, config.host),
    log: deps.log,
  });
  const loop = startReconcileLoop(deps);
  const dockerEvents = startDockerEventWatcher(deps);
  const metricsServer = config.metricsPort > 0 ? await startMetricsServer(config.api.listen, config.metricsPort) : undefined;
  return {
    deps,
    rpcClient,
    stopHeartbeat: () => hb.stop(),
    async stop() {
      loop.stop();
      dockerEvents.stop();
      hb.stop();
      await new Promise<void>((r) => (metricsServer ? metricsServer.close(() => r()) : r()));
      await rpc.stop();
      await rpcClient.close();
    },
  };
}
