/**
 * Shared plumbing of the fault tests (test/serial/fault-*.test.ts): an in-process compute host
 * with a private DB/exchange/topic/state dir, and control of the shared daemons (RabbitMQ,
 * PostgreSQL, dockerd) that ALWAYS brings them back, even when the test fails.
 * They disrupt every user of those daemons, hence the serial stage (jest --runInBand).
 */
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, type Config } from '../../services/config';
import { startComputeService, type ComputeService } from '../../services/compute/service';
import { createDb, type Db } from '../../services/db/knex';
import { NetworksRepo } from '../../services/db/networks-repo';
import { RpcClient } from '../../services/rpc/client';
import { freshDatabase, type TestDatabase } from '../helpers/db';

export const run = promisify(execFile);
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/';
export const TEST_IMAGE = 'compute-test/busybox:latest';

export async function waitFor<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, stepMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await fn();
      if (ok(last)) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value ${JSON.stringify(last)?.slice(0, 500)}${lastErr ? `, last error ${(lastErr as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export interface FaultHost {
  config: Config;
  t: TestDatabase;
  host: string;
  stateDir: string;
  service?: ComputeService;
  /** The service's own connection pool (as in the real process), separate from the test's `t.db`. */
  serviceDb?: Db;
  client: RpcClient;
  start(): Promise<ComputeService>;
  call<T = any>(method: string, args: Record<string, unknown>, timeoutSec?: number): Promise<T>;
  /** Terminate what the DB knows, remove containers by label, stop, drop the DB, remove files. */
  close(): Promise<void>;
}

/** An ovs-vlan network for one test (VLANs 3500-3599 and 198.19.80-89.0/24 are reserved for these tests). */
export async function createNetwork(t: TestDatabase, name: string, vlan: number, octet: number): Promise<void> {
  await new NetworksRepo(t.db).create({
    name, type: 'ovs-vlan', bridge: 'br-int', vlan, cidr: `198.19.${octet}.0/24`, gateway: `198.19.${octet}.1`,
    rangeStart: `198.19.${octet}.10`, rangeEnd: `198.19.${octet}.250`, hostnameTemplate: 'f-{o4}', domain: 'fault.test',
  });
}

export async function faultHost(label: string, overrides: Record<string, unknown> = {}): Promise<FaultHost> {
  const suffix = crypto.randomBytes(3).toString('hex');
  const host = `${label}-${suffix}`;
  const t = await freshDatabase(label);
  const stateDir = await fsp.mkdtemp(path.join(os.tmpdir(), `compute-${label}-`));
  const topic = `compute_${label.replace(/-/g, '_')}_${suffix}`;
  const config = loadConfig({
    argv: [], env: {},
    overrides: {
      host, databaseUrl: t.url, controlExchange: `test_${label.replace(/-/g, '_')}_${suffix}`, rpc: { topic, heartbeatSec: 2 }, stateDir,
      volumeRoots: [path.join(stateDir, 'volumes')], stopTimeoutSec: 1, reconcileIntervalSec: 3600, logLevel: 'silent', ...overrides,
    },
  });
  const client = await RpcClient.connect({ amqpUrl: AMQP_URL, controlExchange: config.controlExchange, topic, heartbeatSec: 2, defaultTimeoutSec: 60 });
  const fh: FaultHost = {
    config, t, host, stateDir, client,
    async start() {
      fh.serviceDb ??= createDb(config.databaseUrl, { max: 10 });
      fh.service = await startComputeService(config, fh.serviceDb);
      return fh.service;
    },
    call: (method, args, timeoutSec = 60) => client.call(host, method, args, { timeout: timeoutSec }),
    async close() {
      try {
        if (fh.service) {
          const live = await t.db('instances').whereNull('deleted_at').where({ host }).select('uuid').catch(() => []);
          for (const { uuid } of live) await client.call(host, 'terminate_instance', { instance_uuid: uuid }, { timeout: 30 }).catch(() => undefined);
        }
      } finally {
        await removeContainersOf(host);
        await client.close().catch(() => undefined);
        await fh.service?.stop().catch(() => undefined);
        await fh.serviceDb?.destroy().catch(() => undefined);
        await t.drop().catch(() => undefined);
        await fsp.rm(stateDir, { recursive: true, force: true }).catch(() => undefined);
      }
    },
  };
  return fh;
}

export async function containersOf(host: string, all = true): Promise<Array<{ id: string; uuid: string; pid: number; running: boolean }>> {
  const ids = (await run('docker', ['ps', ...(all ? ['-a'] : []), '-q', '--filter', `label=compute.host=${host}`])).stdout.split('\n').filter(Boolean);
  if (!ids.length) return [];
  const out = (await run('docker', ['inspect', '-f', '{{.Id}} {{index .Config.Labels "compute.instance-uuid"}} {{.State.Pid}} {{.State.Running}}', ...ids])).stdout;
  return out.split('\n').filter(Boolean).map((l) => {
    const [id, uuid, pid, running] = l.split(' ');
    return { id: id!, uuid: uuid!, pid: Number(pid), running: running === 'true' };
  });
}

export async function removeContainersOf(host: string): Promise<void> {
  const ids = (await run('docker', ['ps', '-aq', '--filter', `label=compute.host=${host}`]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean);
  if (ids.length) await run('docker', ['rm', '-f', ...ids]).catch(() => undefined);
}

// ------------------------------------------------------------------ daemons

export async function rabbitmqctl(cmd: 'stop_app' | 'start_app' | 'await_startup'): Promise<void> {
  await run('rabbitmqctl', [cmd], { timeout: 60000 });
}

/** RabbitMQ app down for `downMs`, then always up again. */
export async function bounceRabbitmq(downMs: number): Promise<void> {
  try {
    await rabbitmqctl('stop_app');
    await new Promise((r) => setTimeout(r, downMs));
  } finally {
    await rabbitmqctl('start_app');
    await rabbitmqctl('await_startup').catch(() => undefined);
  }
}

export function postgresVersion(): string {
  const versions = fs.readdirSync('/etc/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(a) - Number(b));
  if (!versions.length) throw new Error('no cluster under /etc/postgresql');
  return versions[versions.length - 1]!;
}

export async function pgReady(): Promise<boolean> {
  return run('pg_isready', ['-q', '-h', '127.0.0.1', '-p', '5432']).then(() => true, () => false);
}

/** `pg_ctlcluster --skip-systemctl-redirect <ver> main restart`; if it fails, start it. */
export async function restartPostgres(): Promise<void> {
  const ver = postgresVersion();
  try {
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', ver, 'main', 'restart'], { timeout: 60000 });
  } finally {
    if (!(await pgReady())) await run('pg_ctlcluster', ['--skip-systemctl-redirect', ver, 'main', 'start'], { timeout: 60000 }).catch(() => undefined);
    await waitFor('postgresql', pgReady, (ok) => ok, 30000, 200);
  }
}

const DOCKER_SOCK = '/var/run/docker.sock';
const DOCKER_PIDFILE = '/var/run/docker.pid';

export async function dockerPing(): Promise<boolean> {
  return run('curl', ['-sf', '--max-time', '2', '--unix-socket', DOCKER_SOCK, 'http://d/_ping']).then((r) => r.stdout.trim() === 'OK', () => false);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Start dockerd exactly as scripts/bootstrap does (setsid nohup, --iptables=false), wait for /_ping. */
export async function startDockerd(): Promise<void> {
  if (await dockerPing()) return;
  await fsp.rm(DOCKER_PIDFILE, { force: true });
  fs.mkdirSync('/var/log/compute', { recursive: true });
  const log = fs.openSync('/var/log/compute/dockerd.log', 'a');
  const child = spawn('setsid', ['nohup', 'dockerd', '--host', `unix://${DOCKER_SOCK}`, '--iptables=false'], { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  fs.closeSync(log);
  await waitFor('dockerd /_ping', dockerPing, (ok) => ok, 60000, 300);
}

/**
 * Stop dockerd by its pid file (SIGTERM: it stops the containers, as on a host reboot of the
 * daemon), then start it again the way bootstrap does. dockerd is always started again.
 */
export async function restartDockerd(): Promise<{ downMs: number }> {
  const t0 = Date.now();
  try {
    const pid = Number((await fsp.readFile(DOCKER_PIDFILE, 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 1) throw new Error(`bad pid in ${DOCKER_PIDFILE}`);
    process.kill(pid, 'SIGTERM');
    await waitFor('dockerd to exit', async () => pidAlive(pid), (alive) => !alive, 60000, 200).catch(() => {
      process.kill(pid, 'SIGKILL');
    });
  } finally {
    await startDockerd();
  }
  return { downMs: Date.now() - t0 };
}
