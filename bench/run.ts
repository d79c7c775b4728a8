/**
 * `npm run bench`: run the benchmarks, print one aligned table per benchmark and write
 * bench/results.json (with the machine they ran on). Exits non-zero only on errors (set-up
 * failures, failed calls, clean-up problems), never because of the timings themselves.
 *
 *   node dist/bench/run.js            all benchmarks
 *   node dist/bench/run.js rpc        only these (by name)
 *
 * A new benchmark (spawn, migration...) is one more BenchModule in MODULES.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeError } from '../services/errors';
import { logger } from '../services/logger';
import { formatTable, repoRoot, round, type BenchModule, type BenchModuleResult } from './lib';
import { rpcBench } from './rpc-bench';
import { spawnBench } from './spawn-bench';
import { migrationBench } from './migration-bench';

const MODULES: BenchModule[] = [rpcBench, spawnBench, migrationBench];

interface ModuleReport extends Partial<BenchModuleResult> {
  name: string;
  description: string;
  ok: boolean;
  durationSec: number;
  errors: string[];
}

function machine(loadAvgAtStart: number[]): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGb: round(os.totalmem() / 1024 ** 3, 1),
    loadAvgAtStart: loadAvgAtStart.map((l) => round(l, 2)),
    loadAvgAtEnd: os.loadavg().map((l) => round(l, 2)),
    platform: `${os.platform()} ${os.release()}`,
    arch: os.arch(),
    node: process.version,
  };
}

/** p95 of a row (p95Ms) or a ratio (p95), for modules that report it (spawn). */
const p95 = (x: object): number | undefined => (x as { p95Ms?: number }).p95Ms ?? (x as { p95?: number }).p95;

function printModule(m: ModuleReport): void {
  const out: string[] = [`\n== ${m.name}: ${m.description} (${round(m.durationSec, 1)} s)`];
  // A module may add p95 (spawn does): shown when every row has it.
  if (m.rows?.length) {
    const withP95 = m.rows.every((r) => p95(r) !== undefined);
    out.push(
      formatTable(
        ['case', 'server', 'client', 'phase', 'conc', 'calls', 'errors', 'calls/s', 'p50 ms', ...(withP95 ? ['p95 ms'] : []), 'p99 ms', 'mean ms', 'max ms'],
        m.rows.map((r) => [
          r.case, r.subject, r.client, r.phase, r.concurrency, r.calls, r.errors,
          round(r.callsPerSec, m.name === 'rpc' ? 0 : 2), round(r.p50Ms), ...(withP95 ? [round(p95(r)!)] : []), round(r.p99Ms), round(r.meanMs), round(r.maxMs),
        ]),
      ),
    );
  }
  if (m.ratios?.length) {
    out.push('\nours / baseline (calls/s > 1 and latency < 1 favour ours):');
    out.push(
      formatTable(
        ['case', 'client', 'phase', 'calls/s', 'p50', ...(m.ratios.every((r) => p95(r) !== undefined) ? ['p95'] : []), 'p99'],
        m.ratios.map((r) => [r.case, r.client, r.phase, round(r.callsPerSec), round(r.p50), ...(m.ratios!.every((x) => p95(x) !== undefined) ? [round(p95(r)!)] : []), round(r.p99)]),
      ),
    );
  }
  for (const n of m.notes ?? []) out.push(`note: ${n}`);
  for (const e of m.errors) out.push(`ERROR: ${e}`);
  process.stdout.write(out.join('\n') + '\n');
}

async function main(): Promise<number> {
  // Service logs would interleave with the tables on stdout: warnings and errors only.
  logger.level = process.env.LOG_LEVEL ?? 'warn';
  const root = repoRoot();
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !MODULES.some((m) => m.name === w));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; available: ${MODULES.map((m) => m.name).join(', ')}\n`);
    return 2;
  }
  const selected = wanted.length ? MODULES.filter((m) => wanted.includes(m.name)) : MODULES;
  const started = new Date();
  const loadAtStart = os.loadavg();
  const reports: ModuleReport[] = [];
  for (const m of selected) {
    const t0 = process.hrtime.bigint();
    const report: ModuleReport = { name: m.name, description: m.description, ok: false, durationSec: 0, errors: [] };
    try {
      const res = await m.run({ root, progress: (msg) => process.stderr.write(`[${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1).padStart(5)}s] ${msg}\n`) });
      Object.assign(report, res);
      report.ok = res.errors.length === 0;
    } catch (err) {
      report.errors.push(describeError(err));
    }
    report.durationSec = Number(process.hrtime.bigint() - t0) / 1e9;
    reports.push(report);
    printModule(report);
  }
  const results = {
    date: started.toISOString(),
    durationSec: round((Date.now() - started.getTime()) / 1000, 1),
    machine: machine(loadAtStart),
    benchmarks: reports.map((r) => ({
      ...r,
      durationSec: round(r.durationSec, 1),
      rows: r.rows?.map((x) => ({ ...x, elapsedSec: round(x.elapsedSec, 3), callsPerSec: round(x.callsPerSec, 2), p50Ms: round(x.p50Ms, 3), ...(p95(x) !== undefined ? { p95Ms: round(p95(x)!, 3) } : {}), p99Ms: round(x.p99Ms, 3), meanMs: round(x.meanMs, 3), maxMs: round(x.maxMs, 3) })),
      ratios: r.ratios?.map((x) => ({ ...x, callsPerSec: round(x.callsPerSec, 3), p50: round(x.p50, 3), ...(p95(x) !== undefined ? { p95: round(p95(x)!, 3) } : {}), p99: round(x.p99, 3) })),
    })),
  };
  const file = path.join(root, 'bench', 'results.json');
  fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  const failed = reports.filter((r) => !r.ok);
  process.stdout.write(`\nresults: ${path.relative(process.cwd(), file) || file}${failed.length ? `; FAILED: ${failed.map((r) => r.name).join(', ')}` : ''}\n`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${describeError(err)}\n`);
    process.exit(1);
  },
);
