/**
 * Abuse over RPC: > 5,000 malformed messages published raw with amqplib to a running compute
 * host (in-process, real Docker/OVS/RabbitMQ/PostgreSQL, private DB/exchange/topic):
 *   - every call-shaped message gets a failure reply with the expected class (InvalidParameter
 *     naming the field, NoSuchMethod, UnsupportedVersion, or the handler's refusal);
 *   - every message with no address to answer is dropped with a poison / refusal log line;
 *   - the service answers real get_info / list_instances calls throughout (latency measured);
 *   - no command ran with attacker-controlled text: the network drivers' CommandRunner is a
 *     RecordingRunner (zero invocations during the flood), no container / host link / OVS port
 *     was created, and a shell canary file never appears;
 *   - memory stays flat (heapUsed after GC and RSS, before vs after, printed).
 * Network: ovs-vlan 3500, 198.19.80.0/24 (the ranges reserved for these tests).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import pino from 'pino';
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { ExecFileRunner, RecordingRunner } from '../../drivers/network/exec';
import { instanceKey } from '../../drivers/network/names';
import { loadConfig, type Config } from '../../services/config';
import { startComputeService, type ComputeService } from '../../services/compute/service';
import { NetworksRepo } from '../../services/db/networks-repo';
import { logger } from '../../services/logger';
import { RpcClient } from '../../services/rpc/client';
import { createRpcAjv, loadRpcSchema } from '../../services/rpc/schemas';
import { freshDatabase, type TestDatabase } from '../helpers/db';
import { hostLinks, instanceSpec, ovsPorts, run } from '../helpers/compute-harness';

jest.setTimeout(150000);

const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/';
const suffix = crypto.randomBytes(3).toString('hex');
const host = `abuse-${suffix}`;
const exchange = `test_abuse_${suffix}`;
const topic = `compute_abuse_${suffix}`;
const NET = 'abusenet';
const CANARY = `/tmp/abuse-canary-${suffix}`;

// ------------------------------------------------------------------ deterministic generator

/** mulberry32: seeded, so a failing case can be replayed with ABUSE_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const SEED = Number(process.env.ABUSE_SEED ?? 8);
const rnd = prng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

/** Text an attacker would like to reach a shell, a path or a command line. */
const HOSTILE_STRINGS = [
  `$(touch ${CANARY})`, `\`touch ${CANARY}\``, `; touch ${CANARY}`, `| touch ${CANARY}`, `&& touch ${CANARY}`,
  `x\ntouch ${CANARY}`, `x'; touch ${CANARY}; '`, `x"; touch ${CANARY}; "`, '../../../../etc/passwd', '/etc/shadow',
  '..', '../..', '/proc/self/root', '/var/run/docker.sock', 'br-int', 'eth0', 'lo', '-rf', '--help', '-o ProxyCommand=touch',
  '\u0000', 'nul\u0000byte', '\u202etxt.exe', '名前', '💥', ' ', '', 'A'.repeat(300), 'a'.repeat(70000),
  '%2e%2e%2f', '${IFS}', '*', '?', '[a-z]', '~root', '\\\\server\\share', "' OR 1=1 --", 'Robert"); DROP TABLE instances;--',
];
const HOSTILE_NUMBERS: unknown[] = [-1, -2147483649, 0, 1.5, 1e308, -1e308, 2 ** 53 + 2, 4294967296, Number.MAX_SAFE_INTEGER, '1', '', null, true, [], {}, [1], { n: 1 }];
const BAD_UUIDS: unknown[] = [
  'not-a-uuid', '', '00000000-0000-0000-0000-00000000000', '00000000-0000-0000-0000-0000000000000', '../../etc/passwd', `$(touch ${CANARY})`,
  "' OR '1'='1", 'g0000000-0000-0000-0000-000000000000', '{00000000-0000-0000-0000-000000000000}', 12345, null, true, [], {}, 'a'.repeat(5000),
];
/** Methods and the field whose value we spoil. */
const UUID_METHODS = ['get_info', 'terminate_instance', 'stop_instance', 'start_instance', 'reboot_instance', 'pause_instance',
  'unpause_instance', 'update_instance_resources', 'get_console_output', 'get_diagnostics'];

type Expect =
  | { reply: true; cls: string; field?: string }
  | { reply: true; cls: 'any-failure' }
  | { reply: false; log: 'poison' | 'refused' };

interface AbuseMessage {
  body: Buffer;
  expect: Expect;
  /** Publish to the fanout exchange instead of the host queue. */
  fanout?: boolean;
  what: string;
}

function envelope(inner: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': JSON.stringify(inner) }));
}

function validSpec(): Record<string, any> {
  return instanceSpec({ networks: [{ network: NET }], flavor: { vcpus: 1, memory_mb: 32, cpu_policy: 'shared', pids_limit: 64 } });
}

/** Set obj[path] = value (path like ['instance','flavor','vcpus']). */
function setPath(obj: any, p: Array<string | number>, value: unknown): void {
  let o = obj;
  for (const k of p.slice(0, -1)) o = o[k] ??= {};
  o[p[p.length - 1]!] = value;
}

/** The field name as describeAjvErrors prints it: args.instance.networks[0].network */
const fieldName = (p: Array<string | number>): string => 'args' + p.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('');

/**
 * The real schemas, used only as a guard on the generator: a "spoiled" message that happens to
 * be valid (e.g. read_bps 2^53) would be a real spawn, so it is skipped; a "semantic" one must be valid.
 */
const ajv = createRpcAjv();
const validators = new Map<string, ReturnType<typeof ajv.compile>>();
function schemaAccepts(method: string, args: unknown): boolean {
  let v = validators.get(method);
  if (!v) {
    const schema = loadRpcSchema(method);
    v = (ajv.getSchema(schema.$id as string) as typeof v) ?? ajv.compile(schema);
    validators.set(method, v!);
  }
  return v!(args) as boolean;
}

function generate(replyQ: string, count: number): AbuseMessage[] {
  const out: AbuseMessage[] = [];
  const pushChecked = (method: string, args: Record<string, unknown>, m: AbuseMessage, wantValid = false): void => {
    if (schemaAccepts(method, args) === wantValid) out.push(m);
  };
  let n = 0;
  const id = (): string => `abuse${suffix}${(n++).toString(36)}`;
  const call = (inner: Record<string, unknown>): Record<string, unknown> => ({ ...inner, _msg_id: id(), _reply_q: replyQ, _unique_id: id() });
  const specFields: Array<[Array<string | number>, unknown[]]> = [
    [['instance', 'uuid'], BAD_UUIDS],
    [['instance', 'name'], ['', 'a'.repeat(300), 5, null, [], {}]],
    [['instance', 'project_id'], ['', 'p'.repeat(256), 1, null]],
    [['instance', 'image'], HOSTILE_STRINGS.filter((s) => !/^[A-Za-z0-9._/:@-]{1,512}$/.test(s))],
    [['instance', 'hostname'], HOSTILE_STRINGS.filter((s) => !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(s))],
    [['instance', 'networks', 0, 'network'], HOSTILE_STRINGS.filter((s) => !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(s))],
    [['instance', 'networks', 0, 'fixed_ip'], ['198.19.80.300', '198.19.80.1; reboot', '::1', '0x7f.1', '-1', '1.2.3', 12, null]],
    [['instance', 'networks'], ['abusenet', { network: NET }, Array.from({ length: 9 }, () => ({ network: NET })), null]],
    [['instance', 'flavor', 'vcpus'], HOSTILE_NUMBERS],
    [['instance', 'flavor', 'memory_mb'], HOSTILE_NUMBERS],
    [['instance', 'flavor', 'swap_mb'], HOSTILE_NUMBERS],
    [['instance', 'flavor', 'cpu_shares'], HOSTILE_NUMBERS],
    [['instance', 'flavor', 'pids_limit'], HOSTILE_NUMBERS],
    [['instance', 'flavor', 'cpu_policy'], ['Dedicated', 'isolate', '', 1, null, `$(touch ${CANARY})`]],
    [['instance', 'volumes'], [
      [{ host_path: `/tmp/$(touch ${CANARY})`, container_path: '/data' }],
      [{ host_path: 'relative/path', container_path: '/data' }],
      [{ host_path: '/data\n/etc', container_path: '/data' }],
      [{ host_path: '/data', container_path: '/data', read_only: 'yes' }],
      [{ host_path: '/data', container_path: '/data', mode: 'rw' }],
      [{ host_path: '/data' }],
      Array.from({ length: 33 }, (_, i) => ({ host_path: `/v${i}`, container_path: `/c${i}` })),
      'not-an-array',
    ]],
    [['instance', 'io', 'read_bps'], HOSTILE_NUMBERS.filter((v) => !(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER))],
    [['instance', 'io', 'write_iops'], [-1, 1.5, '100', null]],
    [['instance', 'net', 'egress_kbit'], [-1, 1.5, '100', null, []]],
    [['instance', 'env'], [{ 'BAD-NAME': 'x' }, { '$(touch)': 'x' }, { OK: 5 }, { OK: 'v'.repeat(40000) }, ['A=1']]],
    [['instance', 'command'], ['sh -c reboot', [1, 2], ['x'.repeat(40000)], Array.from({ length: 257 }, () => 'x')]],
    [['instance', 'labels'], [{ 'bad label': 'x' }, { ok: 1 }, { ok: 'v'.repeat(5000) }]],
  ];

  while (out.length < count) {
    const r = rnd();
    if (r < 0.12) {
      // ---- poison: not JSON, not an object, broken envelope; sometimes with a recoverable address
      const withAddr = rnd() < 0.5;
      const mid = id();
      const addr = withAddr ? `"_msg_id": "${mid}", "_reply_q": "${replyQ}", ` : '';
      const variants: Array<[string, Buffer]> = [
        ['bytes', crypto.randomBytes(1 + Math.floor(rnd() * 200))],
        ['truncated', Buffer.from(`{${addr}"method": "get_info", "args": {"instance_uuid": `)],
        ['array', Buffer.from('[1,2,3]')],
        ['number', Buffer.from('42')],
        ['string', Buffer.from('"oslo"')],
        ['null', Buffer.from('null')],
        ['empty', Buffer.alloc(0)],
        ['envelope-3.0', Buffer.from(JSON.stringify({ 'oslo.version': '3.0', 'oslo.message': `{${addr}"method":"get_info"}` }))],
        ['envelope-not-string', Buffer.from(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': { method: 'get_info' } }))],
        ['envelope-bad-inner', Buffer.from(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': `{${addr}"method": get_info}` }))],
        ['inner-array', Buffer.from(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': '[1]' }))],
        ['no-method', envelope(withAddr ? call({ args: {} }) : { args: {} })],
        ['method-shell', envelope(withAddr ? call({ method: `get_info; touch ${CANARY}`, args: {} }) : { method: '../../bin/sh', args: {} })],
        ['args-array', envelope(withAddr ? call({ method: 'get_info', args: ['x'] }) : { method: 'get_info', args: 'x' })],
        ['version-number', envelope(withAddr ? call({ method: 'get_info', args: {}, version: 1.0 }) : { method: 'get_info', version: 1 })],
        ['msgid-no-replyq', envelope({ method: 'get_info', args: {}, _msg_id: mid })],
        ['replyq-shell', envelope({ method: 'get_info', args: {}, _msg_id: mid, _reply_q: `q; touch ${CANARY}` })],
      ];
      const [what, body] = pick(variants);
      // The server answers only when it could recover a well-formed (_msg_id, _reply_q) pair.
      const answerable = withAddr && ['truncated', 'envelope-3.0', 'envelope-bad-inner', 'no-method', 'method-shell', 'args-array', 'version-number'].includes(what);
      out.push({ body, what: `poison:${what}`, expect: answerable ? { reply: true, cls: 'InvalidParameter' } : { reply: false, log: 'poison' } });
      continue;
    }
    if (r < 0.17) {
      // ---- unknown methods, versions, namespaces
      const v = pick(['method', 'version', 'major', 'namespace'] as const);
      if (v === 'method') {
        out.push({ body: envelope(call({ method: pick(['rm_rf', 'system', 'exec_command', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'get_infoo']), args: {} })),
          what: 'no-such-method', expect: { reply: true, cls: 'NoSuchMethod' } });
      } else if (v === 'version') {
        out.push({ body: envelope(call({ method: 'get_info', args: {}, version: pick(['1.99', '2.0', '0.1', '1.0.1', 'latest', '1.0; touch']) })),
          what: 'bad-version', expect: { reply: true, cls: 'UnsupportedVersion' } });
      } else if (v === 'major') {
        out.push({ body: envelope(call({ method: 'list_instances', args: {}, version: '9.0' })), what: 'major', expect: { reply: true, cls: 'UnsupportedVersion' } });
      } else {
        out.push({ body: envelope(call({ method: 'get_info', args: {}, namespace: pick(['compute', '../x', 'baseapi']) })),
          what: 'namespace', expect: { reply: true, cls: 'UnsupportedVersion' } });
      }
      continue;
    }
    if (r < 0.62) {
      // ---- build_and_run_instance with exactly one spoiled field (or an unknown one)
      const spec = validSpec();
      if (rnd() < 0.12) {
        const extra = pick(['privileged', 'cap_add', 'network_mode', '__proto__x', 'host_pid', 'devices']);
        spec[extra] = pick([true, 'host', ['SYS_ADMIN'], '/dev/mem']);
        pushChecked('build_and_run_instance', { instance: spec }, { body: envelope(call({ method: 'build_and_run_instance', args: { instance: spec } })), what: `spawn:unknown:${extra}`,
          expect: { reply: true, cls: 'InvalidParameter', field: `unknown field "${extra}"` } });
        continue;
      }
      const [p, values] = pick(specFields);
      setPath({ instance: spec }, p, pick(values));
      // The field must be named (a nested problem, e.g. volumes[0].host_path, starts with it).
      pushChecked('build_and_run_instance', { instance: spec }, { body: envelope(call({ method: 'build_and_run_instance', args: { instance: spec } })), what: `spawn:${p.join('.')}`,
        expect: { reply: true, cls: 'InvalidParameter', field: fieldName(p) } });
      continue;
    }
    if (r < 0.82) {
      // ---- uuid methods with a bad uuid, bad extra args or unknown fields
      const method = pick(UUID_METHODS);
      const k = rnd();
      if (k < 0.6) {
        const args = { instance_uuid: pick(BAD_UUIDS) };
        pushChecked(method, args, { body: envelope(call({ method, args })), what: `${method}:uuid`,
          expect: { reply: true, cls: 'InvalidParameter', field: 'args.instance_uuid' } });
      } else if (k < 0.8) {
        const extra = pick(['force', 'cmd', 'path', 'shell', '__proto__x']);
        out.push({ body: envelope(call({ method, args: { instance_uuid: crypto.randomUUID(), [extra]: `$(touch ${CANARY})` } })), what: `${method}:extra`,
          expect: { reply: true, cls: 'InvalidParameter', field: `unknown field "${extra}"` } });
      } else if (method === 'reboot_instance') {
        const args = { instance_uuid: crypto.randomUUID(), reboot_type: pick(['soft', 'HARD; reboot', 1, null]) };
        pushChecked(method, args, { body: envelope(call({ method, args })),
          what: 'reboot:type', expect: { reply: true, cls: 'InvalidParameter', field: 'args.reboot_type' } });
      } else if (method === 'get_console_output') {
        const args = { instance_uuid: crypto.randomUUID(), tail: pick([-1, 0, 10001, 1e308, '10', 1.5]) };
        pushChecked(method, args, { body: envelope(call({ method, args })),
          what: 'console:tail', expect: { reply: true, cls: 'InvalidParameter', field: 'args.tail' } });
      } else if (method === 'update_instance_resources') {
        const f = pick(['vcpus', 'memory_mb', 'cpu_shares', 'pids_limit']);
        const args = { instance_uuid: crypto.randomUUID(), [f]: pick([-1, 0, 1e12, 1.5, 'many', null]) };
        pushChecked(method, args, { body: envelope(call({ method, args })),
          what: `update:${f}`, expect: { reply: true, cls: 'InvalidParameter', field: `args.${f}` } });
      } else {
        out.push({ body: envelope(call({ method, args: {} })), what: `${method}:missing`,
          expect: { reply: true, cls: 'InvalidParameter', field: 'missing required field "instance_uuid"' } });
      }
      continue;
    }
    if (r < 0.88) {
      // ---- schema-valid but hostile: the handler must refuse it before any command or container
      const k = rnd();
      const spec = validSpec();
      if (k < 0.2) {
        spec.image = pick(['../../../../etc/passwd', '/etc/shadow', 'a//b', ':tag', '@sha256:x', 'UPPER/case', '-rf', 'x:'.repeat(10)]);
      } else if (k < 0.45) {
        spec.volumes = [{ host_path: pick(['/etc', '/', '/var/run/docker.sock', '/proc/self/root', '/../../etc', '/tmp/../etc', '/root/.ssh']), container_path: '/data' }];
      } else if (k < 0.6) {
        // {name}-{o4} with a name no hostname may carry
        spec.name = pick([`$(touch ${CANARY})`, `;touch ${CANARY}`, 'UPPER', 'a'.repeat(200), '../x', 'x y']);
        spec.image = 'UPPER/case';
      } else if (k < 0.75) {
        spec.flavor = { vcpus: pick([512, 1024]), memory_mb: 32, cpu_policy: 'dedicated' };
      } else if (k < 0.9) {
        spec.flavor = { vcpus: 1, memory_mb: pick([16777216, 8388608]), cpu_policy: 'shared' };
      } else {
        spec.networks = [{ network: pick(['nosuchnet', 'br-int', 'default']) }];
      }
      pushChecked('build_and_run_instance', { instance: spec }, { body: envelope(call({ method: 'build_and_run_instance', args: { instance: spec } })), what: 'spawn:semantic',
        expect: { reply: true, cls: 'any-failure' } }, true);
      continue;
    }
    if (r < 0.94) {
      // ---- schema-valid calls on instances that do not exist on this host
      const method = pick(['get_info', 'stop_instance', 'terminate_instance', 'pause_instance', 'get_console_output', 'get_diagnostics']);
      // terminate of an unknown instance is an idempotent success: any reply is fine, it must not run commands
      out.push({ body: envelope(call({ method, args: { instance_uuid: crypto.randomUUID() } })), what: `${method}:unknown`,
        expect: method === 'terminate_instance' ? { reply: true, cls: 'any' } as unknown as Expect : { reply: true, cls: 'NotFound' } });
      continue;
    }
    // ---- casts (nowhere to reply): refused or poisoned, never run
    const spec = validSpec();
    spec.hostname = pick(HOSTILE_STRINGS.filter((s) => !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(s)));
    if (rnd() < 0.3) {
      out.push({ body: envelope({ method: 'refresh_hosts', args: { network_id: pick(['../etc', `$(touch ${CANARY})`, 'UPPER']) }, _unique_id: id() }),
        what: 'fanout-cast', fanout: true, expect: { reply: false, log: 'refused' } });
    } else {
      out.push({ body: envelope({ method: 'build_and_run_instance', args: { instance: spec }, _unique_id: id() }), what: 'cast:hostname',
        expect: { reply: false, log: 'refused' } });
    }
  }
  return out;
}

/** 10 MB bodies (over the 1 MiB limit): the reply address is at the head, found by the server. */
function hugeMessages(replyQ: string, k: number): AbuseMessage[] {
  const out: AbuseMessage[] = [];
  for (let i = 0; i < k; i++) {
    const mid = `huge${suffix}${i}`;
    const inner = `{"_msg_id": "${mid}", "_reply_q": "${replyQ}", "method": "get_info", "args": {"instance_uuid": "${'A'.repeat(10 * 1024 * 1024)}"}}`;
    out.push({ body: Buffer.from(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': inner })), what: 'huge-10MB', expect: { reply: true, cls: 'InvalidParameter', field: 'exceeds the limit' } });
  }
  // and one without any address: log + drop
  out.push({ body: Buffer.alloc(10 * 1024 * 1024, 0x7b), what: 'huge-10MB-noaddr', expect: { reply: false, log: 'poison' } });
  // just under the limit: a 900 KiB string in a field that has a maxLength
  const spec = validSpec();
  spec.env = { BIG: 'x'.repeat(900 * 1024) };
  out.push({ body: envelope({ method: 'build_and_run_instance', args: { instance: spec }, _msg_id: `big${suffix}`, _reply_q: replyQ, _unique_id: `big${suffix}` }),
    what: 'big-900KiB', expect: { reply: true, cls: 'InvalidParameter', field: 'args.instance.env.BIG' } });
  return out;
}

// ------------------------------------------------------------------ memory

let gc: (() => void) | undefined;
function forceGc(): void {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
  gc();
}
function memory(): { rssMb: number; heapUsedMb: number } {
  forceGc();
  const m = process.memoryUsage();
  return { rssMb: Math.round(m.rss / 2 ** 20), heapUsedMb: Math.round(m.heapUsed / 2 ** 20) };
}

// ------------------------------------------------------------------ test

describe('RPC abuse: thousands of malformed messages', () => {
  let t: TestDatabase;
  let stateDir: string;
  let config: Config;
  let service: ComputeService;
  let client: RpcClient;
  let conn: ChannelModel;
  let ch: Channel;
  const recorder = new RecordingRunner(new ExecFileRunner());
  const logCounts = { poison: 0, refused: 0 };
  const savedStream = (logger as any)[pino.symbols.streamSym];
  const savedLevel = logger.level;
  let legitUuid = '';
  let linksBefore: string[] = [];
  let portsBefore: string[] = [];

  beforeAll(async () => {
    // Count the service's log lines (poison drops, refused casts) without printing them.
    (logger as any)[pino.symbols.streamSym] = {
      write(line: string) {
        if (line.includes('"Rejected poison RPC message"')) logCounts.poison++;
        else if (line.includes('"Refused RPC request"')) logCounts.refused++;
      },
    };
    logger.level = 'info';
    t = await freshDatabase('abuse');
    stateDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'compute-abuse-'));
    await new NetworksRepo(t.db).create({ name: NET, type: 'ovs-vlan', bridge: 'br-int', vlan: 3500, cidr: '198.19.80.0/24', gateway: '198.19.80.1',
      rangeStart: '198.19.80.10', rangeEnd: '198.19.80.250', hostnameTemplate: '{name}-{o4}', domain: 'abuse.test' });
    config = loadConfig({
      argv: [], env: {},
      overrides: {
        host, databaseUrl: t.url, controlExchange: exchange, rpc: { topic }, stateDir, volumeRoots: [path.join(stateDir, 'volumes')],
        stopTimeoutSec: 1, reconcileIntervalSec: 3600, logLevel: 'info',
      },
    });
    await fsp.mkdir(path.join(stateDir, 'volumes'), { recursive: true });
    service = await startComputeService(config, t.db, { runner: recorder });
    client = await RpcClient.connect({ amqpUrl: AMQP_URL, controlExchange: exchange, topic, defaultTimeoutSec: 60 });
    linksBefore = await hostLinks();
    portsBefore = await ovsPorts('br-int');
  });

  afterAll(async () => {
    try {
      if (legitUuid) await client?.call(host, 'terminate_instance', { instance_uuid: legitUuid }, { timeout: 60 }).catch(() => undefined);
      const ids = (await run('docker', ['ps', '-aq', '--filter', `label=compute.host=${host}`])).stdout.split('\n').filter(Boolean);
      if (ids.length) await run('docker', ['rm', '-f', ...ids]).catch(() => undefined);
      await ch?.close().catch(() => undefined);
      await conn?.close().catch(() => undefined);
      await client?.close().catch(() => undefined);
      await service?.stop().catch(() => undefined);
      await t?.drop().catch(() => undefined);
      await fsp.rm(stateDir, { recursive: true, force: true }).catch(() => undefined);
      await fsp.rm(CANARY, { force: true });
    } finally {
      (logger as any)[pino.symbols.streamSym] = savedStream;
      logger.level = savedLevel;
    }
  });

  test('>= 5,000 malformed messages: all refused clearly, service responsive, no command, memory flat', async () => {
    // One real instance (OVS VLAN 3500): proves the recording runner sees the driver's commands,
    // and gives get_info something real to answer during the flood.
    const legit = validSpec();
    legitUuid = legit.uuid;
    const spawned = await client.call<{ vm_state: string }>(host, 'build_and_run_instance', { instance: legit }, { timeout: 90 });
    expect(spawned.vm_state).toBe('active');
    const commandsAfterSpawn = recorder.calls.length;
    expect(commandsAfterSpawn).toBeGreaterThan(3);
    const containersBefore = (await run('docker', ['ps', '-aq', '--filter', `label=compute.host=${host}`])).stdout.split('\n').filter(Boolean);
    expect(containersBefore).toHaveLength(1);
    const linksWithLegit = await hostLinks();

    // Raw AMQP: our own reply queue, replies matched by _msg_id.
    conn = await connect(AMQP_URL);
    ch = await conn.createChannel();
    const replyQ = `reply_abuse_${suffix}`;
    await ch.assertQueue(replyQ, { exclusive: true, autoDelete: true });
    const replies = new Map<string, { failure: any; result: any }>();
    const waiters = new Map<string, () => void>();
    await ch.consume(replyQ, (m: ConsumeMessage | null) => {
      if (!m) return;
      const outer = JSON.parse(m.content.toString('utf8'));
      const inner = JSON.parse(outer['oslo.message']);
      if (inner.ending === false) return;
      // Keep only what is checked (class, message head, size): the map must not skew the memory figures.
      const f = inner.failure ? JSON.parse(inner.failure) : null;
      replies.set(inner._msg_id, {
        failure: f ? { class: f.class, message: String(f.message).slice(0, 600), size: String(f.message).length } : null,
        result: f ? null : JSON.stringify(inner.result).slice(0, 200),
      });
      waiters.get(inner._msg_id)?.();
    }, { noAck: true });

    const messages = [...generate(replyQ, 5200), ...hugeMessages(replyQ, 4)];
    // Spread the huge ones through the flood instead of at the end.
    for (let i = messages.length - 6; i < messages.length; i++) {
      const j = Math.floor(rnd() * (messages.length - 6));
      [messages[i], messages[j]] = [messages[j]!, messages[i]!];
    }
    const msgIdOf = (m: AbuseMessage): string | undefined => {
      if (!m.expect.reply) return undefined;
      const mm = /_msg_id\\?"\s*:\s*\\?"([A-Za-z0-9_-]+)/.exec(m.body.subarray(0, 4096).toString('utf8')) ?? /_msg_id\\?"\s*:\s*\\?"([A-Za-z0-9_-]+)/.exec(m.body.toString('utf8'));
      return mm?.[1];
    };
    const hostQueue = `${topic}.${host}`;
    const fanoutEx = `${topic}_fanout`;

    // Probes: real calls through the topic queue, competing with the flood for the server.
    const probeLatencies: number[] = [];
    let probing = true;
    const probeLoop = (async () => {
      let i = 0;
      while (probing) {
        const t0 = performance.now();
        if (i++ % 2 === 0) {
          const info = await client.call<{ vm_state: string }>(undefined, 'get_info', { instance_uuid: legitUuid }, { timeout: 30 });
          expect(info.vm_state).toBe('active');
        } else {
          const list = await client.call<unknown[]>(undefined, 'list_instances', {}, { timeout: 30 });
          expect(Array.isArray(list) || typeof list === 'object').toBe(true);
        }
        probeLatencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    // Warm up (first 200), then measure memory, then the rest in windows of 250.
    const sendBatch = async (batch: AbuseMessage[]): Promise<void> => {
      const ids = batch.map(msgIdOf).filter((x): x is string => !!x);
      const done = Promise.all(ids.map((mid) => (replies.has(mid) ? undefined : new Promise<void>((r) => waiters.set(mid, r)))));
      for (const m of batch) {
        if (m.fanout) ch.publish(fanoutEx, '', m.body);
        else ch.publish(exchange, hostQueue, m.body);
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise((r) => { timer = setTimeout(r, 30000); })]);
      clearTimeout(timer);
    };
    const t0 = performance.now();
    await sendBatch(messages.slice(0, 200));
    const memBefore = memory();
    for (let i = 200; i < messages.length; i += 250) await sendBatch(messages.slice(i, i + 250));
    const floodSec = (performance.now() - t0) / 1000;
    // Drops have no reply to wait for: wait until the queue is empty and the log counts settle.
    // Every poison message is logged (answered or not); the answered ones also got a reply.
    const expectedPoison = messages.filter((m) => m.what.startsWith('poison:') || m.what.startsWith('huge')).length;
    const expectedRefused = messages.filter((m) => !m.expect.reply && m.expect.log === 'refused').length;
    for (let i = 0; i < 100 && (logCounts.poison < expectedPoison || logCounts.refused < expectedRefused); i++) await new Promise((r) => setTimeout(r, 100));
    probing = false;
    await probeLoop;
    const memAfter = memory();

    // ---- every call-shaped message answered with the expected failure
    const problems: string[] = [];
    const byClass: Record<string, number> = {};
    let callShaped = 0;
    for (const m of messages) {
      if (!m.expect.reply) continue;
      callShaped++;
      const mid = msgIdOf(m)!;
      const r = replies.get(mid);
      if (!r) { problems.push(`${m.what}: no reply`); continue; }
      const exp = m.expect as { cls: string; field?: string };
      if (exp.cls === 'any') { byClass.any = (byClass.any ?? 0) + 1; continue; }
      if (!r.failure) { problems.push(`${m.what}: succeeded: ${JSON.stringify(r.result).slice(0, 200)}`); continue; }
      byClass[r.failure.class] = (byClass[r.failure.class] ?? 0) + 1;
      if (exp.cls !== 'any-failure' && r.failure.class !== exp.cls) problems.push(`${m.what}: class ${r.failure.class} (wanted ${exp.cls}): ${String(r.failure.message).slice(0, 200)}`);
      if (exp.field && !String(r.failure.message).includes(exp.field)) problems.push(`${m.what}: message does not name ${exp.field}: ${String(r.failure.message).slice(0, 300)}`);
      if (r.failure.size > 20000) problems.push(`${m.what}: failure message of ${r.failure.size} chars`);
    }
    const sorted = [...probeLatencies].sort((a, b) => a - b);
    const q = (p: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 10) / 10;
    const summary = {
      seed: SEED, messages: messages.length, callShaped, dropped: messages.length - callShaped, floodSec: Math.round(floodSec * 10) / 10,
      msgsPerSec: Math.round(messages.length / floodSec), replyClasses: byClass, logCounts, expectedPoison, expectedRefused,
      probes: { n: sorted.length, p50Ms: q(0.5), p95Ms: q(0.95), maxMs: q(1) }, memBefore, memAfter,
      commandsDuringFlood: recorder.calls.length - commandsAfterSpawn,
    };
    // eslint-disable-next-line no-console
    console.log(`abuse-rpc summary ${JSON.stringify(summary)}`);
    expect(problems.slice(0, 20)).toEqual([]);
    expect(messages.length).toBeGreaterThanOrEqual(5000);

    // ---- drops are logged, never block the queue
    expect(logCounts.poison).toBe(expectedPoison);
    expect(logCounts.refused).toBeGreaterThanOrEqual(expectedRefused);
    const qs = await ch.checkQueue(hostQueue);
    expect(qs.messageCount).toBe(0);

    // ---- responsive throughout: real calls kept being answered
    expect(sorted.length).toBeGreaterThanOrEqual(20);
    expect(q(0.95)).toBeLessThan(2000);
    expect(q(1)).toBeLessThan(10000);

    // ---- no command ran, nothing was created, no shell ever saw the payloads
    expect(recorder.calls.slice(commandsAfterSpawn)).toEqual([]);
    expect(recorder.calls.filter((c) => c.args.some((a) => /touch|canary|\.\.\/|\$\(/.test(a)))).toEqual([]);
    expect(fs.existsSync(CANARY)).toBe(false);
    const containersAfter = (await run('docker', ['ps', '-aq', '--filter', `label=compute.host=${host}`])).stdout.split('\n').filter(Boolean);
    expect(containersAfter).toEqual(containersBefore);
    const key = instanceKey(legitUuid);
    const newLinks = (await hostLinks()).filter((l) => !linksWithLegit.includes(l) && /^cv[hi]/.test(l) && !l.includes(key));
    // (other files create cvh* links in parallel; only links of instances of this DB count)
    const ourInstances = (await t.db('instances').select('uuid')).map((r: { uuid: string }) => instanceKey(r.uuid));
    expect(newLinks.filter((l) => ourInstances.some((k) => l.includes(k)))).toEqual([]);
    expect((await ovsPorts('br-int')).filter((p) => !portsBefore.includes(p) && ourInstances.some((k) => p.includes(k) && k !== key))).toEqual([]);
    // the hostile-but-valid spawns left nothing held
    expect(await t.db('ip_allocations').whereNot({ instance_uuid: legitUuid })).toHaveLength(0);
    expect(await t.db('cpu_pins').whereNot({ instance_uuid: legitUuid })).toHaveLength(0);
    expect(await t.db('instances').whereNot({ uuid: legitUuid }).whereNot({ vm_state: 'error' })).toHaveLength(0);
    // nothing accepted is left hanging
    expect(await t.db('rpc_requests').whereIn('status', ['accepted', 'running'])).toHaveLength(0);

    // ---- memory flat (generous bounds; measured after GC)
    expect(memAfter.heapUsedMb - memBefore.heapUsedMb).toBeLessThan(64);
    expect(memAfter.rssMb - memBefore.rssMb).toBeLessThan(256);

    // still fully working afterwards
    await expect(client.call(host, 'get_info', { instance_uuid: legitUuid }, { timeout: 10 })).resolves.toMatchObject({ vm_state: 'active' });
  });
});
