import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, type Config } from '../../services/config';
import type { FaultInjector } from '../../services/compute/compute-deps';
import { startComputeService, type ComputeService } from '../../services/compute/service';
import { RpcClient } from '../../services/rpc/client';
import { freshDatabase, type TestDatabase } from './db';

export const run = promisify(execFile);
export const TEST_IMAGE = 'compute-test/busybox:latest';

/**
 * One in-process compute host for an integration test file: its own database, control
 * exchange, host name, state dir and volume root, on the real Docker/OVS/RabbitMQ/PostgreSQL.
 * `close()` terminates every instance it knows and removes what the file made.
 */
export interface ComputeHarness {
  config: Config;
  t: TestDatabase;
  service: ComputeService;
  client: RpcClient;
  host: string;
  call<T = any>(method: string, args: Record<string, unknown>, timeoutSec?: number): Promise<T>;
  docker(...args: string[]): Promise<string>;
  execIn(uuid: string, ...argv: string[]): Promise<string>;
  close(): Promise<void>;
}

export async function startHarness(
  label: string,
  opts: { faults?: FaultInjector; overrides?: Record<string, unknown>; sameCloudAs?: ComputeHarness } = {},
): Promise<ComputeHarness> {
  const suffix = crypto.randomBytes(3).toString('hex');
  const host = `${label}-${suffix}`;
  // A second host of the same cloud shares the database, exchange and topic of the first.
  const shared = opts.sameCloudAs;
  const t = shared ? shared.t : await freshDatabase(label);
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), `compute-${label}-`));
  const config = loadConfig({
    argv: [],
    env: {},
    overrides: {
      host,
      databaseUrl: t.url,
      controlExchange: shared ? shared.config.controlExchange : `test_${label.replace(/-/g, '_')}_${suffix}`,
      // Queue names are broker-wide: a private topic keeps files from sharing the `compute` queue.
      rpc: { topic: shared ? shared.config.rpc.topic : `compute_${label.replace(/-/g, '_')}_${suffix}` },
      stateDir,
      volumeRoots: [path.join(stateDir, 'volumes')],
      stopTimeoutSec: 2,
      reconcileIntervalSec: 3600,
      logLevel: 'silent',
      ...(opts.overrides ?? {}),
    },
  });
  const service = await startComputeService(config, t.db, { faults: opts.faults });
  const client = await RpcClient.connect({ amqpUrl: config.amqpUrl, controlExchange: config.controlExchange, topic: config.rpc.topic, defaultTimeoutSec: 60 });
  const docker = async (...args: string[]) => (await run('docker', args)).stdout.trim();
  return {
    config, t, service, client, host,
    call: (method, args, timeoutSec = 90) => client.call(host, method, args, { timeout: timeoutSec }),
    docker,
    execIn: (uuid, ...argv) => docker('exec', `instance-${uuid}`, ...argv),
    async close() {
      const live = await t.db('instances').whereNull('deleted_at').where({ host }).select('uuid');
      for (const { uuid } of live) {
        await client.call(host, 'terminate_instance', { instance_uuid: uuid }, { timeout: 60 }).catch(() => undefined);
      }
      // Anything that escaped (a failed test mid-way): remove by the host label.
      const ids = (await docker('ps', '-aq', '--filter', `label=compute.host=${host}`)).split('\n').filter(Boolean);
      if (ids.length) await docker('rm', '-f', ...ids).catch(() => undefined);
      await client.close().catch(() => undefined);
      await service.stop().catch(() => undefined);
      if (!shared) await t.drop().catch(() => undefined);
      await fs.rm(stateDir, { recursive: true, force: true });
    },
  };
}

export function instanceSpec(over: Record<string, unknown> = {}): Record<string, any> {
  return {
    uuid: crypto.randomUUID(),
    name: 'web',
    project_id: 'proj-test',
    image: TEST_IMAGE,
    flavor: { vcpus: 1, memory_mb: 64, cpu_policy: 'shared', pids_limit: 64 },
    networks: [],
    ...over,
  };
}

/** Host link and OVS port names, to prove nothing was left behind. */
export async function hostLinks(): Promise<string[]> {
  const out = (await run('ip', ['-o', 'link', 'show'])).stdout;
  return out.split('\n').map((l) => l.split(': ')[1]?.split('@')[0]).filter(Boolean).sort();
}

export async function ovsPorts(bridge: string): Promise<string[]> {
  const out = (await run('ovs-vsctl', ['--timeout=5', 'list-ports', bridge])).stdout;
  return out.split('\n').filter(Boolean).sort();
}
