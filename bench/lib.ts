/**
 * Shared plumbing of `npm run bench`: the shape of a benchmark module and its results, latency
 * statistics, aligned tables, and child processes that cannot outlive the benchmark.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** One measured row: a server under one load. */
export interface BenchRow {
  /** What is measured, e.g. `get_info`. */
  case: string;
  /** Implementation under test, e.g. `ours (TS)`, `oslo (Python)`. */
  subject: string;
  /** Load generator. */
  client: string;
  /** e.g. `sequential`, `concurrent`. */
  phase: string;
  concurrency: number;
  calls: number;
  errors: number;
  elapsedSec: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

/** ours / baseline for one (client, phase): > 1 is better for throughput, < 1 for latency. */
export interface BenchRatio {
  case: string;
  client: string;
  phase: string;
  callsPerSec: number;
  p50: number;
  p99: number;
}

export interface BenchModuleResult {
  rows: BenchRow[];
  ratios: BenchRatio[];
  /** Set-up facts worth keeping with the numbers (counts, pool sizes, versions). */
  config: Record<string, unknown>;
  notes: string[];
  /** Failed calls, clean-up problems: any makes `npm run bench` exit non-zero. */
  errors: string[];
}

/**
 * A benchmark: RPC now; spawn and migration later, each as one more module listed in run.ts.
 * `run` throws on errors (set-up failures, failed calls); timings are never a failure.
 */
export interface BenchModule {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<BenchModuleResult>;
}

export interface BenchContext {
  /** Repository root (holds package.json and bench/). */
  root: string;
  /** Progress lines (stderr, so stdout stays the table). */
  progress(msg: string): void;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  // Nearest rank.
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarise(latenciesMs: number[], elapsedSec: number): Pick<BenchRow, 'calls' | 'elapsedSec' | 'callsPerSec' | 'p50Ms' | 'p99Ms' | 'meanMs' | 'maxMs'> {
  const s = [...latenciesMs].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return {
    calls: s.length,
    elapsedSec,
    callsPerSec: elapsedSec > 0 ? s.length / elapsedSec : NaN,
    p50Ms: percentile(s, 50),
    p99Ms: percentile(s, 99),
    meanMs: s.length ? sum / s.length : NaN,
    maxMs: s.length ? s[s.length - 1]! : NaN,
  };
}

export function round(n: number, digits = 2): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** An aligned text table; columns whose cells are all numbers (or blank) are right-aligned. */
export function formatTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? (Number.isFinite(c) ? String(c) : '-') : c)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === ''));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/** The directory holding package.json, from dist/bench or bench/. */
export function repoRoot(from = __dirname): string {
  let dir = from;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'bench'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
}

// ------------------------------------------------------------------ child processes

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kill every child still running when this process exits, however it exits. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => process.exit(130));
  }
}

/** Spawn a tracked child: killed with SIGKILL if this process exits before it does. */
export function spawnTracked(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  installExitHook();
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.on('error', () => children.delete(child));
  return child;
}

/** Run a command to completion; resolves with stdout, rejects with stderr's tail on failure or timeout. */
export function runChild(cmd: string, args: string[], opts: { timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnTracked(cmd, args, opts);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.stdin!.end();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(args[0] ?? cmd)} timed out after ${opts.timeoutMs} ms; stderr: ${err.trim().slice(-1500)}`));
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${path.basename(args[0] ?? cmd)} exited with ${code ?? signal}; stderr: ${err.trim().slice(-1500)}`));
    });
  });
}

/** Stop a child: SIGTERM, then SIGKILL after graceMs. Resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** The last line of stdout that parses as a JSON object. */
export function lastJsonLine<T>(stdout: string): T {
  const lines = stdout.trim().split('\n').reverse();
  for (const l of lines) {
    const t = l.trim();
    if (t.startsWith('{')) {
      try {
        return JSON.parse(t) as T;
      } catch {
        /* keep looking */
      }
    }
  }
  throw new Error(`no JSON result in output: ${stdout.slice(-500)}`);
}
