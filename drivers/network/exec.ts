import { execFile } from 'node:child_process';
import { Internal, InvalidInput, Timeout, Unavailable } from '../../services/errors';

/**
 * The only way this driver runs external tools: execFile with an argument array (never a
 * shell), a fixed PATH, a timeout on every call, and every argument checked against a strict
 * pattern here as well as by the callers. A hostile name is refused before a process starts.
 */
export const TOOLS = ['ip', 'ovs-vsctl', 'tc', 'nsenter', 'ethtool', 'python3'] as const;
export type Tool = (typeof TOOLS)[number];

/** No whitespace, quotes, `$`, `;`, `|`, `&`, backticks, globs, brackets or newlines. */
export const SAFE_ARG = /^[A-Za-z0-9_.:/=,@+%-]{1,256}$/;
/** Lines fed to `ip -batch -`: the same characters plus single spaces between words. */
export const SAFE_BATCH_LINE = /^[A-Za-z0-9_.:/=,@+%-]+( [A-Za-z0-9_.:/=,@+%-]+)*$/;

export const DEFAULT_TIMEOUT_MS = 10_000;
const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

export interface RunOptions {
  timeoutMs?: number;
  /** Text for stdin; only `ip -batch -` lines (checked by SAFE_BATCH_LINE) or a trusted script. */
  input?: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Narrow interface the drivers depend on; tests wrap it to count or refuse calls. */
export interface CommandRunner {
  run(tool: Tool, args: readonly string[], opts?: RunOptions): Promise<ExecResult>;
}

/** Constant strings defined in this code base that may be passed although they have spaces. */
const trustedLiterals = new Set<string>();
export function registerTrustedLiteral(text: string): string {
  trustedLiterals.add(text);
  return text;
}

export function assertSafeInvocation(tool: unknown, args: readonly unknown[], input?: string): void {
  if (!(TOOLS as readonly unknown[]).includes(tool)) throw new InvalidInput(`tool not allowed: ${JSON.stringify(tool)}`);
  if (!Array.isArray(args) || args.length > 200) throw new InvalidInput('arguments must be an array of <= 200 strings');
  for (const a of args) {
    if (typeof a !== 'string' || (!SAFE_ARG.test(a) && !trustedLiterals.has(a))) {
      throw new InvalidInput(`refusing unsafe argument ${JSON.stringify(a)} for ${String(tool)}`);
    }
  }
  if (input !== undefined && !trustedLiterals.has(input)) {
    const lines = input.split('\n').filter((l) => l.length > 0);
    for (const l of lines) {
      if (!SAFE_BATCH_LINE.test(l)) throw new InvalidInput(`refusing unsafe batch line ${JSON.stringify(l)}`);
    }
  }
}

/** Details carried by a failed command (inside `Internal.details`). */
export interface CommandFailure {
  tool: Tool;
  args: readonly string[];
  exitCode: number | null;
  stderr: string;
}

export function commandFailure(err: unknown): CommandFailure | null {
  const d = (err as { details?: unknown })?.details as Partial<CommandFailure> | undefined;
  return d && typeof d === 'object' && typeof d.tool === 'string' ? (d as CommandFailure) : null;
}

/** True when a failed command said the device (or netns, or port) does not exist. */
export function isGone(err: unknown): boolean {
  const f = commandFailure(err);
  return !!f && /Cannot find device|does not exist|No such device|no port named|no row|No such process|Cannot open network namespace|not found/i.test(f.stderr);
}

export class ExecFileRunner implements CommandRunner {
  constructor(private readonly defaultTimeoutMs = DEFAULT_TIMEOUT_MS) {}

  async run(tool: Tool, args: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
    assertSafeInvocation(tool, args, opts.input);
    return this.spawn(tool, args, opts);
  }

  private spawn(tool: Tool, args: readonly string[], opts: RunOptions): Promise<ExecResult> {
    const timeout = opts.timeoutMs ?? this.defaultTimeoutMs;
    const file = tool === 'python3' ? '/usr/bin/python3' : tool;
    return new Promise((resolve, reject) => {
      const child = execFile(file, [...args], { timeout, killSignal: 'SIGKILL', env: ENV, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
        (err, stdout, stderr) => {
          if (!err) return resolve({ stdout, stderr });
          const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number; signal?: string };
          if (e.code === 'ENOENT') {
            return reject(new Unavailable(`${tool} is not installed (not found on ${ENV.PATH})`, { cause: err, details: { tool, args, exitCode: null, stderr: '' } }));
          }
          if (e.killed || e.signal === 'SIGKILL') {
            return reject(new Timeout(`${tool} ${args.join(' ')} did not finish within ${timeout} ms`, { cause: err, details: { tool, args, exitCode: null, stderr } }));
          }
          const failure: CommandFailure = { tool, args, exitCode: typeof e.code === 'number' ? e.code : null, stderr: String(stderr).trim() };
          reject(new Internal(`${tool} ${args.join(' ')} failed: ${failure.stderr || `exit ${failure.exitCode}`}`, { cause: err, details: failure }));
        });
      if (opts.input !== undefined) {
        child.stdin?.on('error', () => undefined); // the exit status reports the real problem
        child.stdin?.end(opts.input);
      }
    });
  }
}

/** Runner that records invocations (tests, dry runs) and delegates to another. */
export class RecordingRunner implements CommandRunner {
  readonly calls: Array<{ tool: Tool; args: string[] }> = [];
  constructor(private readonly inner: CommandRunner) {}
  run(tool: Tool, args: readonly string[], opts?: RunOptions): Promise<ExecResult> {
    this.calls.push({ tool, args: [...args] });
    return this.inner.run(tool, args, opts);
  }
}
