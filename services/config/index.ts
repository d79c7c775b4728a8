import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import Ajv from 'ajv';
import yaml from 'js-yaml';
import { InvalidInput } from '../errors';

/**
 * Configuration: defaults, then a YAML file (`--config FILE` or COMPUTE_CONFIG), then
 * environment variables. Validated once by ajv with allErrors so an operator sees every
 * mistake at once. Secrets (URLs with passwords, API tokens) are masked by `maskConfig`.
 */
export interface ApiToken {
  name: string;
  role: 'admin' | 'reader';
  /** sha256 hex of the token; `token` (plain) is accepted in the file and hashed on load. */
  sha256?: string;
  token?: string;
}

export interface Config {
  host: string;
  databaseUrl: string;
  amqpUrl: string;
  controlExchange: string;
  rpc: {
    topic: string;
    concurrency: number;
    quorumQueues: boolean;
    heartbeatSec: number;
    callTimeoutSec: number;
  };
  registry: string;
  dockerSocket: string;
  /** Docker's data root on this host: blkio throttles apply to the whole disk holding it. */
  dockerDataRoot: string;
  /** Seconds a clean stop waits after SIGTERM before SIGKILL. */
  stopTimeoutSec: number;
  dockerTimeoutSec: number;
  dockerConcurrency: number;
  ovs: { bridge: string; datapathType: 'auto' | 'system' | 'netdev' };
  volumeRoots: string[];
  stateDir: string;
  /** `hostStaleAfterSec`: a host whose heartbeat is older is reported down and never scheduled to. */
  api: { listen: string; port: number; tokens: ApiToken[]; hostStaleAfterSec: number };
  /** Pause the container while `docker commit` runs for a snapshot (consistent, but a freeze). */
  snapshotPause: boolean;
  migration: {
    /** A destination whose heartbeat is older than this is refused by the pre-flight. */
    destHeartbeatMaxAgeSec: number;
    /** Confirm a finished migration by itself after this many seconds (0 = never). */
    autoConfirmSec: number;
  };
  /** CPU lists ("0-3,6"); "all" means every online CPU. Dedicated pins are exclusive among
   * dedicated instances; shared instances float over the shared list with cpu.shares weights. */
  cpus: { dedicated: string; shared: string };
  memoryReservedMb: number;
  /** Port of the compute service's own /metrics on api.listen (0 = off; the API serves them too). */
  metricsPort: number;
  heartbeatIntervalSec: number;
  reconcileIntervalSec: number;
  testImage: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** Names that reach external tools or AMQP: kept to a strict pattern everywhere. */
export const NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';

export const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['host', 'databaseUrl', 'amqpUrl', 'controlExchange', 'rpc', 'registry', 'dockerSocket', 'ovs', 'volumeRoots', 'stateDir', 'api'],
  properties: {
    host: { type: 'string', pattern: NAME_PATTERN },
    databaseUrl: { type: 'string', pattern: '^postgres(ql)?://' },
    amqpUrl: { type: 'string', pattern: '^amqps?://' },
    controlExchange: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
    rpc: {
      type: 'object',
      additionalProperties: false,
      properties: {
        topic: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
        concurrency: { type: 'integer', minimum: 1, maximum: 256 },
        quorumQueues: { type: 'boolean' },
        heartbeatSec: { type: 'integer', minimum: 0, maximum: 600 },
        callTimeoutSec: { type: 'integer', minimum: 1, maximum: 3600 },
      },
    },
    registry: { type: 'string', pattern: '^[A-Za-z0-9.-]+(:[0-9]{1,5})?$' },
    dockerSocket: { type: 'string', pattern: '^/[A-Za-z0-9._/-]+$' },
    dockerDataRoot: { type: 'string', pattern: '^/[A-Za-z0-9._/-]+$' },
    stopTimeoutSec: { type: 'integer', minimum: 0, maximum: 3600 },
    dockerTimeoutSec: { type: 'integer', minimum: 1, maximum: 3600 },
    dockerConcurrency: { type: 'integer', minimum: 1, maximum: 64 },
    ovs: {
      type: 'object',
      additionalProperties: false,
      properties: {
        bridge: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,15}$' },
        datapathType: { enum: ['auto', 'system', 'netdev'] },
      },
    },
    volumeRoots: { type: 'array', items: { type: 'string', pattern: '^/[A-Za-z0-9._/-]+$' } },
    stateDir: { type: 'string', pattern: '^/[A-Za-z0-9._/-]+$' },
    api: {
      type: 'object',
      additionalProperties: false,
      properties: {
        listen: { type: 'string', pattern: '^[0-9a-fA-F.:]+$|^localhost$' },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        hostStaleAfterSec: { type: 'integer', minimum: 1, maximum: 86400 },
        tokens: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'role'],
            properties: {
              name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
              role: { enum: ['admin', 'reader'] },
              sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
              token: { type: 'string', minLength: 16 },
            },
          },
        },
      },
    },
    snapshotPause: { type: 'boolean' },
    migration: {
      type: 'object',
      additionalProperties: false,
      properties: {
        destHeartbeatMaxAgeSec: { type: 'integer', minimum: 1, maximum: 86400 },
        autoConfirmSec: { type: 'integer', minimum: 0, maximum: 30 * 86400 },
      },
    },
    cpus: {
      type: 'object',
      additionalProperties: false,
      properties: {
        dedicated: { type: 'string', pattern: '^(all|none|[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)$' },
        shared: { type: 'string', pattern: '^(all|none|[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)$' },
      },
    },
    memoryReservedMb: { type: 'integer', minimum: 0 },
    metricsPort: { type: 'integer', minimum: 0, maximum: 65535 },
    heartbeatIntervalSec: { type: 'integer', minimum: 1, maximum: 3600 },
    reconcileIntervalSec: { type: 'integer', minimum: 5, maximum: 86400 },
    testImage: { type: 'string', pattern: '^[A-Za-z0-9._/:-]+$' },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  },
} as const;

function defaultHost(): string {
  const h = os.hostname().toLowerCase().split('.')[0].replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '');
  return h.length > 0 ? h.slice(0, 63) : 'localhost';
}

export function defaults(): Config {
  return {
    host: defaultHost(),
    databaseUrl: 'postgres://postgres@127.0.0.1:5432/compute',
    amqpUrl: 'amqp://guest:guest@127.0.0.1:5672/',
    controlExchange: 'openstack',
    rpc: { topic: 'compute', concurrency: 16, quorumQueues: false, heartbeatSec: 30, callTimeoutSec: 60 },
    registry: '127.0.0.1:5000',
    dockerSocket: '/var/run/docker.sock',
    dockerDataRoot: '/var/lib/docker',
    stopTimeoutSec: 10,
    dockerTimeoutSec: 60,
    dockerConcurrency: 8,
    ovs: { bridge: 'br-int', datapathType: 'auto' },
    volumeRoots: ['/var/lib/compute/volumes'],
    stateDir: '/var/lib/compute',
    api: { listen: '127.0.0.1', port: 8774, tokens: [], hostStaleAfterSec: 60 },
    snapshotPause: true,
    migration: { destHeartbeatMaxAgeSec: 60, autoConfirmSec: 0 },
    cpus: { dedicated: 'all', shared: 'all' },
    memoryReservedMb: 512,
    metricsPort: 0,
    heartbeatIntervalSec: 10,
    reconcileIntervalSec: 60,
    testImage: 'compute-test/busybox:latest',
    logLevel: 'info',
  };
}

/** Environment variable -> config path, with how to read the string. */
const ENV_MAP: Array<[string, string, 'string' | 'int' | 'bool' | 'list']> = [
  ['COMPUTE_HOST', 'host', 'string'],
  ['COMPUTE_DATABASE_URL', 'databaseUrl', 'string'],
  ['COMPUTE_AMQP_URL', 'amqpUrl', 'string'],
  ['COMPUTE_CONTROL_EXCHANGE', 'controlExchange', 'string'],
  ['COMPUTE_RPC_TOPIC', 'rpc.topic', 'string'],
  ['COMPUTE_RPC_CONCURRENCY', 'rpc.concurrency', 'int'],
  ['COMPUTE_RPC_QUORUM_QUEUES', 'rpc.quorumQueues', 'bool'],
  ['COMPUTE_REGISTRY', 'registry', 'string'],
  ['COMPUTE_DOCKER_SOCKET', 'dockerSocket', 'string'],
  ['COMPUTE_DOCKER_DATA_ROOT', 'dockerDataRoot', 'string'],
  ['COMPUTE_STOP_TIMEOUT_SEC', 'stopTimeoutSec', 'int'],
  ['COMPUTE_OVS_BRIDGE', 'ovs.bridge', 'string'],
  ['COMPUTE_OVS_DATAPATH_TYPE', 'ovs.datapathType', 'string'],
  ['COMPUTE_VOLUME_ROOTS', 'volumeRoots', 'list'],
  ['COMPUTE_STATE_DIR', 'stateDir', 'string'],
  ['COMPUTE_API_LISTEN', 'api.listen', 'string'],
  ['COMPUTE_API_PORT', 'api.port', 'int'],
  ['COMPUTE_API_HOST_STALE_AFTER_SEC', 'api.hostStaleAfterSec', 'int'],
  ['COMPUTE_SNAPSHOT_PAUSE', 'snapshotPause', 'bool'],
  ['COMPUTE_MIGRATION_AUTO_CONFIRM_SEC', 'migration.autoConfirmSec', 'int'],
  ['COMPUTE_CPUS_DEDICATED', 'cpus.dedicated', 'string'],
  ['COMPUTE_CPUS_SHARED', 'cpus.shared', 'string'],
  ['COMPUTE_MEMORY_RESERVED_MB', 'memoryReservedMb', 'int'],
  ['COMPUTE_METRICS_PORT', 'metricsPort', 'int'],
  ['COMPUTE_HEARTBEAT_INTERVAL_SEC', 'heartbeatIntervalSec', 'int'],
  ['COMPUTE_LOG_LEVEL', 'logLevel', 'string'],
];

export const ENV_VARIABLES = ENV_MAP.map(([name, path]) => ({ name, path }));

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]] = value;
}

function coerce(raw: string, kind: 'string' | 'int' | 'bool' | 'list'): unknown {
  switch (kind) {
    case 'int':
      return /^-?[0-9]+$/.test(raw.trim()) ? Number(raw) : raw; // left as string: ajv names it
    case 'bool':
      return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    default:
      return raw;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge of plain objects; arrays and scalars from `over` replace. */
export function mergeConfig(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(base[k]) ? mergeConfig(base[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

const ajv = new Ajv({ allErrors: true, useDefaults: false });
const validateConfig = ajv.compile(configSchema);

/** Validate a fully merged config object, listing every problem. */
export function validate(candidate: unknown, source = 'config'): Config {
  if (!validateConfig(candidate)) {
    const problems = (validateConfig.errors ?? []).map((e) => {
      const where = e.instancePath || '/';
      if (e.keyword === 'additionalProperties') return `${where}: unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`;
      if (e.keyword === 'enum') return `${where}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
      return `${where}: ${e.message}`;
    });
    throw new InvalidInput(`invalid ${source}: ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`, { details: problems });
  }
  return candidate as unknown as Config;
}

export interface LoadOptions {
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Overrides applied last (tests). */
  overrides?: Record<string, unknown>;
}

export function configFileFrom(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
  const i = argv.indexOf('--config');
  if (i >= 0 && argv[i + 1]) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith('--config='));
  if (eq) return eq.slice('--config='.length);
  return env.COMPUTE_CONFIG || undefined;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const argv = opts.argv ?? process.argv.slice(2);
  const env = opts.env ?? process.env;
  let merged = defaults() as unknown as Record<string, unknown>;
  const file = configFileFrom(argv, env);
  if (file) {
    let parsed: unknown;
    try {
      parsed = yaml.load(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new InvalidInput(`cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (parsed !== undefined && parsed !== null && !isPlainObject(parsed)) {
      throw new InvalidInput(`config file ${file}: top level must be a mapping`);
    }
    merged = mergeConfig(merged, (parsed ?? {}) as Record<string, unknown>);
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, path, kind] of ENV_MAP) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') setPath(fromEnv, path, coerce(raw, kind));
  }
  merged = mergeConfig(merged, fromEnv);
  if (opts.overrides) merged = mergeConfig(merged, opts.overrides);
  const cfg = validate(merged, file ? `config (file ${file})` : 'config');
  cfg.api.tokens = cfg.api.tokens.map(hashToken);
  return cfg;
}

function hashToken(t: ApiToken): ApiToken {
  if (t.sha256 || !t.token) return { name: t.name, role: t.role, sha256: t.sha256 };
  return { name: t.name, role: t.role, sha256: crypto.createHash('sha256').update(t.token).digest('hex') };
}

/** Replace the password of a URL with ***. */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]+:)[^@]*@/i, '$1***@');
}

/** A copy safe to log: passwords and token hashes hidden. */
export function maskConfig(cfg: Config): Record<string, unknown> {
  return {
    ...cfg,
    databaseUrl: maskUrl(cfg.databaseUrl),
    amqpUrl: maskUrl(cfg.amqpUrl),
    api: { ...cfg.api, tokens: cfg.api.tokens.map((t) => ({ name: t.name, role: t.role, sha256: '***' })) },
  };
}
