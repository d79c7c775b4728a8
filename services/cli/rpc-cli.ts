/**
 * Operator command for the compute RPC API, same wire format as the control plane:
 *   npm run rpc -- call <host|-> <method> '<json args>' [--timeout S] [--monitor S]
 *   npm run rpc -- cast <host|-> <method> '<json args>'
 *   npm run rpc -- fanout <method> '<json args>'
 * `-` as host means any host on the topic. Connection settings come from the service config
 * (--config FILE / COMPUTE_* variables). Prints the result as JSON; a remote failure prints
 * `Class: message` on stderr and exits 1; a usage error exits 2.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config';
import { ComputeError, describeError } from '../errors';
import { logger } from '../logger';
import { RpcClient } from '../rpc/client';
import { remoteClassOf } from '../rpc/failures';

function parseArgs(json: string | undefined): Record<string, unknown> {
  if (json === undefined || json === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    throw new InvalidArgumentError(`args must be JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError('args must be a JSON object of keyword arguments');
  return v as Record<string, unknown>;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${v} is not a positive number of seconds`);
  return n;
}

const hostArg = (h: string): string | undefined => (h === '-' ? undefined : h);

interface GlobalOpts {
  config?: string;
  exchange?: string;
  topic?: string;
  requestId?: string;
}

async function withClient<T>(program: Command, fn: (c: RpcClient, timeoutSec: number) => Promise<T>): Promise<T> {
  const g = program.opts<GlobalOpts>();
  const cfg = loadConfig({ argv: g.config ? ['--config', g.config] : [] });
  logger.level = process.env.LOG_LEVEL ?? 'warn';
  const client = await RpcClient.connect({
    amqpUrl: cfg.amqpUrl,
    controlExchange: g.exchange ?? cfg.controlExchange,
    topic: g.topic ?? cfg.rpc.topic,
    heartbeatSec: cfg.rpc.heartbeatSec,
    quorumQueues: cfg.rpc.quorumQueues,
    defaultTimeoutSec: cfg.rpc.callTimeoutSec,
    connectTimeoutMs: 10000,
  });
  try {
    return await fn(client, cfg.rpc.callTimeoutSec);
  } finally {
    await client.close();
  }
}

function context(program: Command): Record<string, unknown> {
  const g = program.opts<GlobalOpts>();
  return { request_id: g.requestId ?? `req-${crypto.randomUUID()}`, user: 'operator', user_id: 'operator', is_admin: true, roles: ['admin'] };
}

export function buildProgram(): Command {
  const program = new Command()
    .name('rpc')
    .description('Talk to compute hosts over the oslo.messaging-compatible RPC API')
    .option('--config <file>', 'service config file (or COMPUTE_CONFIG)')
    .option('--exchange <name>', 'control exchange (default: config controlExchange)')
    .option('--topic <name>', 'RPC topic (default: config rpc.topic)')
    .option('--request-id <id>', 'request id to send in the context (default: generated)')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('call')
    .description('call a method and print its result')
    .argument('<host>', 'compute host, or - for any host')
    .argument('<method>', 'RPC method, e.g. get_info')
    .argument('[args]', "JSON object of keyword args, e.g. '{\"instance_uuid\":\"...\"}'", parseArgs)
    .option('--timeout <s>', 'seconds to wait for the reply (default: config rpc.callTimeoutSec)', positiveNumber)
    .option('--monitor <s>', 'call-monitor timeout: fail early if the host stops sending heartbeats', positiveNumber)
    .action(async (host: string, method: string, args: Record<string, unknown> | undefined, o: { timeout?: number; monitor?: number }) => {
      const result = await withClient(program, (c, def) =>
        c.call(hostArg(host), method, args ?? {}, { timeout: o.timeout ?? def, callMonitorTimeout: o.monitor, context: context(program) }),
      );
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    });

  program
    .command('cast')
    .description('send a method without waiting for its result')
    .argument('<host>', 'compute host, or - for any host')
    .argument('<method>', 'RPC method')
    .argument('[args]', 'JSON object of keyword args', parseArgs)
    .action(async (host: string, method: string, args: Record<string, unknown> | undefined) => {
      await withClient(program, (c) => c.cast(hostArg(host), method, args ?? {}, { context: context(program) }));
      process.stdout.write(`cast ${method} sent to ${host === '-' ? 'any host' : host}\n`);
    });

  program
    .command('fanout')
    .description('send a method to every host (e.g. refresh_hosts)')
    .argument('<method>', 'RPC method')
    .argument('[args]', 'JSON object of keyword args', parseArgs)
    .action(async (method: string, args: Record<string, unknown> | undefined) => {
      await withClient(program, (c) => c.fanoutCast(method, args ?? {}, { context: context(program) }));
      process.stdout.write(`fanout ${method} sent\n`);
    });
  return program;
}

export async function main(argv = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    // Commander already printed usage or help; keep its exit code (0 for --help, 1 for usage).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof ComputeError) {
      process.stderr.write(`${remoteClassOf(err) ?? err.name}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`rpc: ${describeError(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
