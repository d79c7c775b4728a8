import { execFile } from 'node:child_process';
import http from 'node:http';
import amqp from 'amqplib';
import type { Config } from './config';
import type { Db } from './db/knex';

/**
 * Dependency probes for /healthz. Each probe is independent, bounded by a timeout, and never
 * throws: a down dependency is reported, not fatal, and the next probe sees it come back.
 */
export type DependencyName = 'database' | 'broker' | 'docker' | 'ovs' | 'registry';

export interface DependencyStatus {
  name: DependencyName;
  ok: boolean;
  latencyMs: number;
  detail?: string;
  error?: string;
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  host: string;
  checkedAt: string;
  dependencies: Record<DependencyName, DependencyStatus>;
}

const PROBE_TIMEOUT_MS = 3000;

async function timed(name: DependencyName, fn: () => Promise<string | undefined>): Promise<DependencyStatus> {
  const t0 = process.hrtime.bigint();
  let timer: NodeJS.Timeout | undefined;
  try {
    const detail = await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
      }),
    ]);
    return { name, ok: true, latencyMs: Number(process.hrtime.bigint() - t0) / 1e6, ...(detail ? { detail } : {}) };
  } catch (err) {
    return { name, ok: false, latencyMs: Number(process.hrtime.bigint() - t0) / 1e6, error: err instanceof Error ? err.message : String(err) };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function httpGet(opts: http.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...opts, timeout: PROBE_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (body.length < 65536) body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function execFileText(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: PROBE_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args[0] ?? ''}: ${(stderr || err.message).trim()}`));
      else resolve(stdout.trim());
    });
  });
}

export function probeDatabase(db: Db): Promise<DependencyStatus> {
  return timed('database', async () => {
    await db.raw('SELECT 1');
    return undefined;
  });
}

export function probeBroker(amqpUrl: string): Promise<DependencyStatus> {
  return timed('broker', async () => {
    const conn = await amqp.connect(amqpUrl, { timeout: PROBE_TIMEOUT_MS });
    const version = (conn.connection as unknown as { serverProperties?: { version?: string } }).serverProperties?.version;
    await conn.close();
    return version ? `rabbitmq ${version}` : undefined;
  });
}

export function probeDocker(socketPath: string): Promise<DependencyStatus> {
  return timed('docker', async () => {
    const r = await httpGet({ socketPath, path: '/version' });
    if (r.status !== 200) throw new Error(`dockerd answered ${r.status}`);
    const v = JSON.parse(r.body) as { Version?: string; ApiVersion?: string };
    return `docker ${v.Version} (API ${v.ApiVersion})`;
  });
}

export function probeOvs(bridge: string): Promise<DependencyStatus> {
  return timed('ovs', async () => {
    // Talks to ovsdb (fails if it is down); the version comes from the tool itself, as the
    // userspace datapath leaves Open_vSwitch.ovs_version empty.
    await execFileText('ovs-vsctl', ['--timeout=2', 'get', 'Open_vSwitch', '.', 'db_version']);
    const version = (await execFileText('ovs-vsctl', ['--version'])).split('\n')[0].replace(/^.*\) /, '');
    try {
      await execFileText('ovs-vsctl', ['--timeout=2', 'br-exists', bridge]);
    } catch {
      throw new Error(`bridge ${bridge} does not exist`);
    }
    return `ovs ${version}, bridge ${bridge}`;
  });
}

export function probeRegistry(registry: string): Promise<DependencyStatus> {
  return timed('registry', async () => {
    const [hostname, port] = registry.split(':');
    const r = await httpGet({ hostname, port: port ? Number(port) : 80, path: '/v2/' });
    if (r.status !== 200 && r.status !== 401) throw new Error(`registry answered ${r.status}`);
    return undefined;
  });
}

export async function checkHealth(cfg: Config, db: Db): Promise<HealthReport> {
  const results = await Promise.all([
    probeDatabase(db),
    probeBroker(cfg.amqpUrl),
    probeDocker(cfg.dockerSocket),
    probeOvs(cfg.ovs.bridge),
    probeRegistry(cfg.registry),
  ]);
  const dependencies = Object.fromEntries(results.map((r) => [r.name, r])) as Record<DependencyName, DependencyStatus>;
  return {
    status: results.every((r) => r.ok) ? 'ok' : 'degraded',
    host: cfg.host,
    checkedAt: new Date().toISOString(),
    dependencies,
  };
}
