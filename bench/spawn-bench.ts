/**
 * Spawn benchmark: RPC build_and_run_instance -> active (claim in PostgreSQL, container with
 * cpuset/memory/pids limits and the managed /etc/hosts + resolv.conf, start, veth into the
 * netns, OVS port with tag=VLAN, peers' hosts files refreshed) against a hand-written operator
 * script doing the same wiring with the same tools, in the same run:
 *
 *   write hosts file; docker run -d --net=none --hostname H --cpuset-cpus C --cpu-shares S
 *     --memory M --pids-limit P -v hosts:/etc/hosts:ro IMAGE; docker inspect -f {{.State.Pid}};
 *   ip link add H type veth peer name C; ip link set C netns PID;
 *   nsenter -t PID -n ip link set C name eth0 / address MAC / addr add / link set up / route add default;
 *   ip link set H up; ovs-vsctl add-port br-int H tag=N
 *
 * (execFile with argument arrays, one process per step, as an operator's script would.)
 * Phases: concurrency 1, 4 and 16 for both, each a fresh batch that is torn down afterwards
 * (teardown is not timed). Ours is driven through our RpcClient over RabbitMQ; its latency is
 * request sent -> reply (the reply is sent once the instance is active).
 *
 * VLANs 3510 (ours) and 3511 (raw), 198.19.81.0/24 and 198.19.82.0/24.
 * Knobs: BENCH_SPAWN_N1 (12), BENCH_SPAWN_N4 (24), BENCH_SPAWN_N16 (48), BENCH_SPAWN_POLICY
 * (shared|dedicated for the concurrency-1 phase; default dedicated).
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ExecFileRunner, type CommandRunner, type ExecResult, type RunOptions, type Tool } from '../drivers/network/exec';
import { loadConfig } from '../services/config';
import { startComputeService, type ComputeService } from '../services/compute/service';
import { NetworksRepo } from '../services/db/networks-repo';
import { describeError } from '../services/errors';
import { logger } from '../services/logger';
import { RpcClient } from '../services/rpc/client';
import { ensureTemplateDatabase, freshDatabase, type TestDatabase } from '../test/helpers/db';
import { percentile, round, summarise, type BenchContext, type BenchModule, type BenchModuleResult, type BenchRatio, type BenchRow } from './lib';

const execFileP = promisify(execFile);
const AMQP_URL = process.env.COMPUTE_BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';
const IMAGE = process.env.COMPUTE_TEST_IMAGE ?? 'compute-test/busybox:latest';
const BRIDGE = 'br-int';
const OURS_VLAN = 3510;
const RAW_VLAN = 3511;

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/** Counts and times every ip/ovs-vsctl/tc/nsenter process the network drivers start. */
class TimingRunner implements CommandRunner {
  count = 0;
  totalMs = 0;
  readonly byTool = new Map<string, { n: number; ms: number }>();
  constructor(private readonly inner: CommandRunner) {}
  async run(tool: Tool, args: readonly string[], opts?: RunOptions): Promise<ExecResult> {
    const t0 = performance.now();
    try {
      return await this.inner.run(tool, args, opts);
    } finally {
      const ms = performance.now() - t0;
      this.count++;
      this.totalMs += ms;
      const key = tool === 'nsenter' ? `nsenter ${args.find((a, i) => i > 2 && !a.startsWith('-')) ?? ''}`.trim() : `${tool} ${args.find((a) => !a.startsWith('-')) ?? ''}`.trim();
      const e = this.byTool.get(key) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += ms;
      this.byTool.set(key, e);
    }
  }
  reset(): void {
    this.count = 0;
    this.totalMs = 0;
    this.byTool.clear();
  }
}

/** Run `n` jobs with `concurrency` workers; latency of each, wall time of all. */
async function runPhase(n: number, concurrency: number, job: (i: number) => Promise<void>, prepare?: () => Promise<void>): Promise<{ latencies: number[]; elapsedSec: number; errors: string[] }> {
  const latencies: number[] = [];
  const errors: string[] = [];
  let next = 0;
  let untimedMs = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      if (prepare) {
        // Not part of the measurement (e.g. freeing the dedicated CPUs of the previous spawn).
        const p0 = performance.now();
        await prepare().catch((err) => errors.push(`prepare: ${describeError(err)}`));
        untimedMs += performance.now() - p0;
      }
      const s = performance.now();
      try {
        await job(i);
        latencies.push(performance.now() - s);
      } catch (err) {
        errors.push(describeError(err));
      }
    }
  }));
  return { latencies, elapsedSec: (performance.now() - t0 - untimedMs) / 1000, errors };
}

async function sh(cmd: string, args: string[], timeoutMs = 30000): Promise<string> {
  return (await execFileP(cmd, args, { timeout: timeoutMs, encoding: 'utf8' })).stdout.trim();
}

// ------------------------------------------------------------------ the operator script

interface RawCtx {
  tag: string;
  dir: string;
  ncpu: number;
}

const rawName = (c: RawCtx, i: number): string => `bench-raw-${c.tag}-${i}`;
const rawHostVeth = (c: RawCtx, i: number): string => `bvh${c.tag}${i.toString(36)}`;
const rawPeer = (c: RawCtx, i: number): string => `bvc${c.tag}${i.toString(36)}`;

/** The operator's spawn of container i: everything our pipeline does to the host, by hand. */
async function rawSpawn(c: RawCtx, i: number, cpuset: string): Promise<void> {
  const name = rawName(c, i);
  const ip = `198.19.82.${10 + (i % 240)}`;
  const hostname = `raw-${10 + (i % 240)}`;
  const hosts = path.join(c.dir, `${name}.hosts`);
  await fs.writeFile(hosts, `127.0.0.1 localhost\n${ip} ${hostname}.raw.bench ${hostname}\n`);
  await sh('docker', ['run', '-d', '--net=none', '--name', name, '--hostname', hostname, '--label', `bench.spawn=${c.tag}`,
    '--cpuset-cpus', cpuset, '--cpu-shares', '1024', '--memory', '32m', '--memory-swap', '32m', '--pids-limit', '64',
    '-v', `${hosts}:/etc/hosts:ro`, IMAGE]);
  const pid = await sh('docker', ['inspect', '-f', '{{.State.Pid}}', name]);
  const h = rawHostVeth(c, i);
  const p = rawPeer(c, i);
  const mac = `02:bb:${c.tag.slice(0, 2)}:${c.tag.slice(2, 4)}:00:${(i % 256).toString(16).padStart(2, '0')}`;
  await sh('ip', ['link', 'add', h, 'type', 'veth', 'peer', 'name', p]);
  await sh('ip', ['link', 'set', p, 'netns', pid]);
  const ns = ['-t', pid, '-n', 'ip'];
  await sh('nsenter', [...ns, 'link', 'set', p, 'name', 'eth0']);
  await sh('nsenter', [...ns, 'link', 'set', 'eth0', 'address', mac]);
  await sh('nsenter', [...ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await sh('nsenter', [...ns, 'link', 'set', 'eth0', 'up']);
  await sh('nsenter', [...ns, 'route', 'add', 'default', 'via', '198.19.82.1']);
  await sh('ip', ['link', 'set', h, 'up']);
  await sh('ovs-vsctl', ['--timeout=10', 'add-port', BRIDGE, h, `tag=${RAW_VLAN}`]);
}

async function rawCleanup(c: RawCtx, n: number): Promise<string[]> {
  const problems: string[] = [];
  const ids = (await sh('docker', ['ps', '-aq', '--filter', `label=bench.spawn=${c.tag}`]).catch(() => '')).split('\n').filter(Boolean);
  if (ids.length) await sh('docker', ['rm', '-f', ...ids], 120000).catch((e) => problems.push(`docker rm: ${describeError(e)}`));
  for (let i = 0; i < n; i++) {
    await sh('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-port', BRIDGE, rawHostVeth(c, i)]).catch((e) => problems.push(describeError(e)));
    await sh('ip', ['link', 'del', rawHostVeth(c, i)]).catch(() => undefined); // gone with the netns: fine
  }
  return problems;
}

// ------------------------------------------------------------------ the module

export const spawnBench: BenchModule = {
  name: 'spawn',
  description: 'build_and_run_instance -> active (OVS VLAN, hosts file, cpuset) vs an operator script (docker run --net=none + veth + ovs-vsctl)',
  async run(ctx: BenchContext): Promise<BenchModuleResult> {
    const n1 = envInt('BENCH_SPAWN_N1', 12);
    const n4 = envInt('BENCH_SPAWN_N4', 24);
    const n16 = envInt('BENCH_SPAWN_N16', 48);
    const policy1 = process.env.BENCH_SPAWN_POLICY === 'shared' ? 'shared' : 'dedicated';
    const tag = crypto.randomBytes(2).toString('hex');
    const host = `bench-spawn-${tag}`;
    const savedLevel = logger.level;
    logger.level = 'warn';
    const rows: BenchRow[] = [];
    const ratios: BenchRatio[] = [];
    const errors: string[] = [];
    const notes: string[] = [];
    let tdb: TestDatabase | undefined;
    let service: ComputeService | undefined;
    let client: RpcClient | undefined;
    const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-spawn-'));
    const raw: RawCtx = { tag, dir: stateDir, ncpu: os.cpus().length };
    const timing = new TimingRunner(new ExecFileRunner());
    let queries = 0;
    let queriesPaused = false;
    const live: string[] = [];
    try {
      ctx.progress('spawn: database, network, compute service');
      await ensureTemplateDatabase();
      tdb = await freshDatabase('benchspawn');
      tdb.db.on('query', () => { if (!queriesPaused) queries++; });
      await new NetworksRepo(tdb.db).create({ name: 'benchnet', type: 'ovs-vlan', bridge: BRIDGE, vlan: OURS_VLAN, cidr: '198.19.81.0/24', gateway: '198.19.81.1',
        rangeStart: '198.19.81.10', rangeEnd: '198.19.81.250', hostnameTemplate: 'b-{o4}', domain: 'bench.test' });
      const topic = `compute_bench_spawn_${tag}`;
      const exchange = `bench_spawn_${tag}`;
      const config = loadConfig({
        argv: [], env: {},
        overrides: { host, databaseUrl: tdb.url, controlExchange: exchange, rpc: { topic }, stateDir, volumeRoots: [path.join(stateDir, 'volumes')],
          stopTimeoutSec: 1, reconcileIntervalSec: 3600, logLevel: 'warn' },
      });
      service = await startComputeService(config, tdb.db, { runner: timing });
      client = await RpcClient.connect({ amqpUrl: AMQP_URL, controlExchange: exchange, topic, defaultTimeoutSec: 120 });
      const c = client;

      const spec = (cpuPolicy: 'shared' | 'dedicated') => ({
        uuid: crypto.randomUUID(), name: 'b', project_id: 'bench', image: IMAGE,
        flavor: { vcpus: 1, memory_mb: 32, cpu_policy: cpuPolicy, pids_limit: 64 }, networks: [{ network: 'benchnet' }],
      });
      const oursSpawn = async (cpuPolicy: 'shared' | 'dedicated'): Promise<void> => {
        const s = spec(cpuPolicy);
        live.push(s.uuid);
        const r = await c.call<{ vm_state: string }>(host, 'build_and_run_instance', { instance: s }, { timeout: 120 });
        if (r.vm_state !== 'active') throw new Error(`spawn ended ${r.vm_state}`);
      };
      const oursTeardown = async (): Promise<void> => {
        queriesPaused = true;
        const uuids = live.splice(0);
        await runPhase(uuids.length, 4, async (i) => {
          await c.call(host, 'terminate_instance', { instance_uuid: uuids[i] }, { timeout: 120 });
        }).then((r) => { for (const e of r.errors) errors.push(`terminate: ${e}`); });
        queriesPaused = false;
      };

      // Warm-up: image layers, OVS, code paths, connection pools.
      ctx.progress('spawn: warm-up');
      await oursSpawn('shared');
      await oursTeardown();
      await rawSpawn(raw, 0, '0');
      errors.push(...await rawCleanup(raw, 1));

      const phases: Array<{ conc: number; n: number; policy: 'shared' | 'dedicated' }> = [
        { conc: 1, n: n1, policy: policy1 },
        { conc: 4, n: n4, policy: 'shared' },
        { conc: 16, n: n16, policy: 'shared' },
      ];
      const allCpus = raw.ncpu > 1 ? `0-${raw.ncpu - 1}` : '0';
      for (const [pi, ph] of phases.entries()) {
        const order = pi % 2 === 0 ? ['ours', 'raw'] : ['raw', 'ours'];
        const phaseRows: Record<string, BenchRow> = {};
        for (const who of order) {
          ctx.progress(`spawn: ${who}, concurrency ${ph.conc}, ${ph.n} spawns (${ph.policy})`);
          if (who === 'ours') {
            timing.reset();
            queries = 0;
            // Dedicated pins whole CPUs: with fewer CPUs than spawns, each is torn down right after.
            const dedicatedOneByOne = ph.policy === 'dedicated';
            const r = await runPhase(ph.n, ph.conc, () => oursSpawn(ph.policy), dedicatedOneByOne ? oursTeardown : undefined);
            const perSpawn = { procs: round(timing.count / Math.max(1, r.latencies.length), 1), procMs: round(timing.totalMs / Math.max(1, r.latencies.length), 1), queries: round(queries / Math.max(1, r.latencies.length), 1) };
            notes.push(`ours c=${ph.conc}: per spawn ${perSpawn.procs} network-tool processes (${perSpawn.procMs} ms summed), ${perSpawn.queries} SQL statements`);
            if (ph.conc === 1) {
              const top = [...timing.byTool.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8)
                .map(([k, v]) => `${k} x${round(v.n / Math.max(1, r.latencies.length), 1)} ${round(v.ms / Math.max(1, r.latencies.length), 1)}ms`);
              notes.push(`ours c=1 per spawn, by command: ${top.join(', ')}`);
            }
            for (const e of r.errors.slice(0, 3)) errors.push(`ours c=${ph.conc}: ${e}`);
            phaseRows.ours = row('ours (RPC)', ph, r);
            await oursTeardown();
          } else {
            // The operator pins too: dedicated = one CPU per container, round robin (they are torn down after the phase).
            const r = await runPhase(ph.n, ph.conc, (i) => rawSpawn(raw, i, ph.policy === 'dedicated' ? String(i % raw.ncpu) : allCpus));
            for (const e of r.errors.slice(0, 3)) errors.push(`raw c=${ph.conc}: ${e}`);
            phaseRows.raw = row('operator script', ph, r);
            errors.push(...await rawCleanup(raw, ph.n));
          }
        }
        rows.push(phaseRows.ours!, phaseRows.raw!);
        ratios.push({
          case: 'spawn', client: 'RpcClient / execFile', phase: `c=${ph.conc}`,
          callsPerSec: phaseRows.ours!.callsPerSec / phaseRows.raw!.callsPerSec,
          p50: phaseRows.ours!.p50Ms / phaseRows.raw!.p50Ms,
          p99: phaseRows.ours!.p99Ms / phaseRows.raw!.p99Ms,
          ...{ p95: (phaseRows.ours as BenchRow & { p95Ms: number }).p95Ms / (phaseRows.raw as BenchRow & { p95Ms: number }).p95Ms },
        } as BenchRatio);
      }
      notes.push('latency = request sent -> reply (ours: instance active, wired, hosts files refreshed; raw: last ovs-vsctl returned)');
      notes.push(`ours: ${host}, rpc.concurrency ${config.rpc.concurrency}, dockerConcurrency ${config.dockerConcurrency}; c=1 phase cpu_policy ${policy1}, others shared`);
    } finally {
      ctx.progress('spawn: clean-up');
      try {
        if (client && live.length) {
          for (const u of live.splice(0)) await client.call(host, 'terminate_instance', { instance_uuid: u }, { timeout: 60 }).catch((e) => errors.push(`clean-up terminate: ${describeError(e)}`));
        }
        errors.push(...await rawCleanup(raw, Math.max(n1, n4, n16)));
        const leftovers = (await sh('docker', ['ps', '-aq', '--filter', `label=compute.host=${host}`]).catch(() => '')).split('\n').filter(Boolean);
        if (leftovers.length) {
          errors.push(`clean-up: ${leftovers.length} container(s) of ours left; removed`);
          await sh('docker', ['rm', '-f', ...leftovers], 120000).catch(() => undefined);
        }
        await client?.close().catch(() => undefined);
        await service?.stop().catch((e) => errors.push(`clean-up stop: ${describeError(e)}`));
        await tdb?.drop().catch((e) => errors.push(`clean-up db: ${describeError(e)}`));
        await fs.rm(stateDir, { recursive: true, force: true });
      } finally {
        logger.level = savedLevel;
      }
    }
    return { rows, ratios, config: { n1, n4, n16, policy1, image: IMAGE, vlans: [OURS_VLAN, RAW_VLAN] }, notes, errors };
  },
};

function row(subject: string, ph: { conc: number; n: number; policy: string }, r: { latencies: number[]; elapsedSec: number; errors: string[] }): BenchRow {
  const s = summarise(r.latencies, r.elapsedSec);
  const sorted = [...r.latencies].sort((a, b) => a - b);
  return {
    case: 'spawn', subject, client: subject.startsWith('ours') ? 'RpcClient' : 'execFile', phase: `c=${ph.conc} ${ph.policy}`,
    concurrency: ph.conc, errors: r.errors.length, ...s, ...{ p95Ms: percentile(sorted, 95) },
  } as BenchRow;
}
