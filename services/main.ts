/**
 * The process `npm start` runs: the compute service for this host (RPC server, heartbeat,
 * reconciler) and the admin API on config.api.listen:port. Either half can be turned off, so a
 * second "host" on the same machine runs `node dist/services/main.js --config b.yaml --no-api`.
 */
import type { Server } from 'node:http';
import { Command } from 'commander';
import { createApiApp } from './api/app';
import { LazyRpc } from './api/lazy-rpc';
import { ensureLocalAdminToken } from './api/local-token';
import { loadConfig, maskConfig } from './config';
import type { FaultInjector } from './compute/compute-deps';
import { startComputeService } from './compute/service';
import { createDb, type Db } from './db/knex';
import { NetworksRepo } from './db/networks-repo';
import { describeError } from './errors';
import { logger } from './logger';

/**
 * Test-only: COMPUTE_TEST_HANG_AFTER_STEP=<step> makes every spawn hang after that step, so a
 * test can SIGKILL the process mid-spawn. Refused unless NODE_ENV=test.
 */
function testFaultsFromEnv(): FaultInjector | undefined {
  const step = process.env.COMPUTE_TEST_HANG_AFTER_STEP;
  if (!step) return undefined;
  if (process.env.NODE_ENV !== 'test') throw new Error('COMPUTE_TEST_HANG_AFTER_STEP is a test-only setting (needs NODE_ENV=test)');
  logger.warn({ step }, 'TEST FAULT: spawns will hang after this step');
  return { afterStep: (s) => (s === step ? new Promise<void>(() => undefined) : undefined) };
}

/**
 * A first start gets one network to spawn on: `default`, OVS VLAN 4000 on the integration
 * bridge, 198.19.250.0/24 (benchmarking range, never routed). Only when no network exists.
 */
async function ensureDefaultNetwork(db: Db, bridge: string): Promise<void> {
  const repo = new NetworksRepo(db);
  if ((await repo.list()).length > 0) return;
  try {
    await repo.create({
      name: 'default', type: 'ovs-vlan', bridge, vlan: 4000, cidr: '198.19.250.0/24', gateway: '198.19.250.1',
      rangeStart: '198.19.250.10', rangeEnd: '198.19.250.250', hostnameTemplate: '{name}-{o4}', domain: 'cloud.local',
      uplink: null, mtu: null,
    });
    logger.info('Created network "default" (ovs-vlan 4000, 198.19.250.0/24)');
  } catch (err) {
    logger.warn({ err: describeError(err) }, 'could not create the default network');
  }
}

interface Stoppable { name: string; stop(): Promise<void> | void }

async function main(): Promise<void> {
  const program = new Command()
    .name('compute-service')
    .description('Compute driver service for containers: RPC server for this host plus the admin API')
    .option('--config <file>', 'YAML config file (or COMPUTE_CONFIG)')
    .option('--no-api', 'do not serve the admin REST API')
    .option('--no-compute', 'do not run the compute service (RPC server, heartbeat)')
    .allowUnknownOption(false)
    .parse(process.argv);
  const opts = program.opts<{ config?: string; api: boolean; compute: boolean }>();

  const config = loadConfig({ argv: opts.config ? ['--config', opts.config] : [] });
  logger.level = config.logLevel;
  logger.info({ config: maskConfig(config) }, 'Starting compute service');
  const db = createDb(config.databaseUrl);
  const stoppables: Stoppable[] = [];

  let computeRpc: import('./api/route').HostRpc | undefined;
  if (opts.compute) {
    const compute = await startComputeService(config, db, { faults: testFaultsFromEnv() });
    computeRpc = compute.rpcClient;
    await ensureDefaultNetwork(db, config.ovs.bridge);
    stoppables.push({ name: 'compute', stop: () => compute.stop() });
  }

  if (opts.api) {
    if (config.api.tokens.length === 0) {
      // npm start convenience: no tokens configured -> one admin token in a 0600 file.
      const local = await ensureLocalAdminToken(config.stateDir);
      config.api.tokens = [local.token];
      logger.warn({ file: local.file, created: local.created }, `No api.tokens configured: admin token for the API is in ${local.file}`);
    }
    const lazy = computeRpc ? undefined : new LazyRpc(config);
    const app = createApiApp({ config, db, rpc: computeRpc ?? lazy });
    const server: Server = await new Promise((resolve, reject) => {
      const s = app.listen(config.api.port, config.api.listen, () => resolve(s));
      s.on('error', reject);
    });
    const addr = server.address();
    logger.info({ listen: addr }, `API listening on http://${config.api.listen}:${typeof addr === 'object' && addr ? addr.port : config.api.port}`);
    stoppables.push({ name: 'api', stop: async () => {
      await new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
      await lazy?.close();
    } });
  }

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'Stopping');
    for (const s of [...stoppables].reverse()) {
      try {
        await s.stop();
      } catch (err) {
        logger.warn({ component: s.name, err: describeError(err) }, 'error while stopping');
      }
    }
    await db.destroy().catch(() => undefined);
    logger.info('Stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('unhandledRejection', (reason) => logger.error({ err: describeError(reason) }, 'unhandled rejection'));
}

main().catch((err) => {
  logger.fatal({ err: describeError(err) }, 'compute service failed to start');
  // eslint-disable-next-line no-console
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
