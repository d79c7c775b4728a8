/**
 * Cold migration: total time and downtime of `migrate_instance` (auto-confirm) between the two
 * real Docker engines of this machine, against the raw operator sequence on a container of the
 * same image and data in the same run: `docker stop` -> `docker commit` -> `docker push` ->
 * `docker pull` (host-b) -> `docker run --net=none` (host-b). Ours also re-plugs OVS, keeps
 * IP/MAC/hostname, rewrites the managed files and records every step, which the raw path
 * does not do. Downtime = stop on the source until the container runs on the destination.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { NetworksRepo } from '../services/db/networks-repo';
import { ensureTemplateDatabase } from '../test/helpers/db';
import { instanceSpec, startHarness, TEST_IMAGE, type ComputeHarness } from '../test/helpers/compute-harness';
import { summarise, type BenchModule, type BenchRatio, type BenchRow } from './lib';

const run = promisify(execFile);
const HOST_B_SOCK = '/var/lib/compute/host-b/docker.sock';
const REPS = Number(process.env.BENCH_MIGRATION_REPS ?? 5);
const DATA_KB = Number(process.env.BENCH_MIGRATION_DATA_KB ?? 4096);

const docker = async (host: 'a' | 'b', ...args: string[]) =>
  (await run('docker', [...(host === 'b' ? ['-H', `unix://${HOST_B_SOCK}`] : []), ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();

function row(subject: string, phase: string, ms: number[], totalSec: number): BenchRow {
  return { case: 'cold migration', subject, client: 'one instance at a time', phase, concurrency: 1, errors: 0, ...summarise(ms, totalSec) };
}

export const migrationBench: BenchModule = {
  name: 'migration',
  description: `cold migration host-a -> host-b (${REPS} runs, ${DATA_KB} KiB written in the container) vs raw docker stop/commit/push/pull/run`,
  async run(ctx) {
    await ensureTemplateDatabase();
    const errors: string[] = [];
    let a: ComputeHarness | undefined;
    let b: ComputeHarness | undefined;
    const ours = { total: [] as number[], down: [] as number[] };
    const raw = { total: [] as number[], down: [] as number[] };
    const tag = crypto.randomBytes(3).toString('hex');
    try {
      a = await startHarness('bm-a');
      b = await startHarness('bm-b', { sameCloudAs: a, overrides: { dockerSocket: HOST_B_SOCK, dockerDataRoot: '/var/lib/compute/host-b/data' } });
      await new NetworksRepo(a.t.db).create({ name: 'bm', type: 'ovs-vlan', bridge: a.config.ovs.bridge, vlan: 3698, cidr: '198.19.94.0/24',
        gateway: '198.19.94.1', rangeStart: '198.19.94.10', rangeEnd: '198.19.94.200', hostnameTemplate: 'bm-{o4}', domain: 'bm.test' });
      const fill = ['sh', '-c', `dd if=/dev/urandom of=/root/blob bs=1024 count=${DATA_KB} 2>/dev/null`];
      for (let i = 0; i < REPS; i++) {
        // ours
        const s = instanceSpec({ name: `bm${i}`, networks: [{ network: 'bm' }] });
        await a.call('build_and_run_instance', { instance: s });
        await a.execIn(s.uuid, ...fill);
        const t0 = Date.now();
        const mig = await a.call('migrate_instance', { instance_uuid: s.uuid, dest_host: b.host, auto_confirm: true });
        ours.total.push(Date.now() - t0);
        ours.down.push(mig.progress.downtime_ms);
        await b.call('terminate_instance', { instance_uuid: s.uuid });
        ctx.progress(`migration ${i + 1}/${REPS}: ours ${Date.now() - t0} ms (downtime ${mig.progress.downtime_ms} ms)`);

        // raw operator sequence on a container with the same image and data
        const name = `bm-raw-${tag}-${i}`;
        const ref = `127.0.0.1:5000/bench/${name}:mig`;
        await docker('a', 'run', '-d', '--net=none', '--name', name, '--label', 'compute.test=bench', TEST_IMAGE);
        await docker('a', 'exec', name, ...fill);
        const r0 = Date.now();
        await docker('a', 'stop', '-t', '10', name);
        await docker('a', 'commit', name, ref);
        await docker('a', 'push', ref);
        await docker('b', 'pull', ref);
        await docker('b', 'run', '-d', '--net=none', '--name', name, '--label', 'compute.test=bench', ref);
        const r1 = Date.now();
        raw.total.push(r1 - r0);
        raw.down.push(r1 - r0);
        for (const h of ['a', 'b'] as const) {
          await docker(h, 'rm', '-f', name).catch((e) => errors.push(`cleanup ${name}: ${e.message}`));
          await docker(h, 'rmi', ref).catch(() => undefined);
        }
        ctx.progress(`migration ${i + 1}/${REPS}: raw ${r1 - r0} ms`);
      }
    } finally {
      await b?.close().catch((e) => errors.push(`cleanup host-b: ${e.message}`));
      await a?.close().catch((e) => errors.push(`cleanup host-a: ${e.message}`));
    }
    const sec = (xs: number[]) => xs.reduce((p, c) => p + c, 0) / 1000;
    const rows = [
      row('ours (migrate_instance)', 'total', ours.total, sec(ours.total)),
      row('raw docker CLI', 'total', raw.total, sec(raw.total)),
      row('ours (migrate_instance)', 'downtime', ours.down, sec(ours.down)),
      row('raw docker CLI', 'downtime', raw.down, sec(raw.down)),
    ];
    const ratios: BenchRatio[] = ['total', 'downtime'].map((phase) => {
      const o = rows.find((r) => r.phase === phase && r.subject.startsWith('ours'))!;
      const w = rows.find((r) => r.phase === phase && r.subject.startsWith('raw'))!;
      return { case: 'cold migration', client: 'one at a time', phase, callsPerSec: o.callsPerSec / w.callsPerSec, p50: o.p50Ms / w.p50Ms, p99: o.p99Ms / w.p99Ms };
    });
    return {
      rows, ratios, errors,
      config: { reps: REPS, dataKiB: DATA_KB, hosts: 'two dockerd on one machine, registry 127.0.0.1:5000' },
      notes: ['p50/p99 are of per-migration milliseconds; ratio < 1 means ours is faster',
        'ours includes claim on the destination, OVS re-plug with the same IP/MAC, managed /etc/hosts, and confirm (old container removed)'],
    };
  },
};
