import path from 'node:path';
import { Internal, Unavailable } from '../../services/errors';
import { parseCpuList, formatCpuList } from './cpu-list';
import type { MountInfo } from './mountinfo';

/**
 * Pure parsing of cgroup v1 and v2 files into one stats shape. No I/O here: the host adapter
 * (host-cgroup-reader.ts) reads the files and hands their text to `statsFromV1Files` /
 * `statsFromV2Files`.
 */
export type CgroupVersion = 'v1' | 'v2';

/** v1 controllers whose files we read. (On some hosts cpu and cpuacct are separate hierarchies.) */
export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'blkio', 'pids', 'cpuset'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];

export type CgroupPaths =
  | { version: 'v1'; dirs: Partial<Record<V1Controller, string>> }
  | { version: 'v2'; dir: string };

export interface IoDeviceStats {
  majorMinor: string;
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

/** A throttle as the kernel holds it; null = no limit in that direction. */
export interface IoDeviceLimit {
  majorMinor: string;
  readBps: number | null;
  writeBps: number | null;
  readIops: number | null;
  writeIops: number | null;
}

/** Every value is null when its file is absent (controller not enabled for this cgroup). */
export interface CgroupStats {
  version: CgroupVersion;
  cpu: {
    /** Total CPU time in nanoseconds (v1 cpuacct.usage; v2 cpu.stat usage_usec * 1000). */
    usageNs: number | null;
    /** v1 cpu.shares. */
    shares: number | null;
    /** v2 cpu.weight (runc maps shares 2..262144 onto weight 1..10000). */
    weight: number | null;
  };
  memory: {
    /** v1 memory.usage_in_bytes (includes page cache, as the kernel counts it); v2 memory.current. */
    usageBytes: number | null;
    /** null = unlimited. */
    limitBytes: number | null;
  };
  io: {
    /** Sums over devices. */
    readBytes: number | null;
    writeBytes: number | null;
    readOps: number | null;
    writeOps: number | null;
    devices: IoDeviceStats[];
    limits: IoDeviceLimit[];
  };
  pids: { current: number | null; /** null = unlimited */ max: number | null };
  /** v1 cpuset.cpus; v2 cpuset.cpus.effective. */
  cpuset: { cpus: number[]; list: string } | null;
}

// ---------------------------------------------------------------------------------------------
// Scalars

/** A non-negative integer in a cgroup file. Values past 2^53 lose precision (fine for stats). */
export function parseCgroupInt(text: string, what = 'cgroup value'): number {
  const t = text.trim();
  if (!/^\d+$/.test(t)) throw new Internal(`unexpected ${what}: "${t}"`);
  return Number(t);
}

/**
 * A limit: "max" (v2, v1 pids.max) or a number. v1 memory.limit_in_bytes says "unlimited" as
 * PAGE_COUNTER_MAX * page size (9223372036854771712 with 4k pages), so anything from 2^62 up
 * is treated as unlimited too.
 */
export function parseCgroupLimit(text: string, what = 'cgroup limit'): number | null {
  const t = text.trim();
  if (t === 'max') return null;
  if (!/^\d+$/.test(t)) throw new Internal(`unexpected ${what}: "${t}"`);
  if (BigInt(t) >= 1n << 62n) return null;
  return Number(t);
}

// ---------------------------------------------------------------------------------------------
// v1 blkio

export interface BlkioOpStats {
  read: number;
  write: number;
  sync: number;
  async: number;
  discard: number;
  total: number;
}

/**
 * blkio.throttle.io_service_bytes / io_serviced (and the _recursive and blkio.io_* forms):
 * "8:0 Read 4096" lines per device and op, and a final "Total N".
 */
export function parseBlkioStat(text: string): { devices: Record<string, BlkioOpStats>; total: number | null } {
  const devices: Record<string, BlkioOpStats> = {};
  let total: number | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const f = line.split(/\s+/);
    if (f.length === 2 && f[0] === 'Total') {
      total = parseCgroupInt(f[1], 'blkio total');
      continue;
    }
    if (f.length !== 3 || !/^\d+:\d+$/.test(f[0])) throw new Internal(`unexpected blkio stat line: "${line}"`);
    const op = f[1].toLowerCase();
    if (!['read', 'write', 'sync', 'async', 'discard', 'total'].includes(op)) {
      throw new Internal(`unexpected blkio op in "${line}"`);
    }
    const dev = (devices[f[0]] ??= { read: 0, write: 0, sync: 0, async: 0, discard: 0, total: 0 });
    dev[op as keyof BlkioOpStats] = parseCgroupInt(f[2], 'blkio value');
  }
  return { devices, total };
}

/** blkio.throttle.{read,write}_{bps,iops}_device: "8:0 1048576" per line. */
export function parseBlkioThrottleDevice(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const f = line.split(/\s+/);
    if (f.length !== 2 || !/^\d+:\d+$/.test(f[0])) throw new Internal(`unexpected blkio throttle line: "${line}"`);
    out[f[0]] = parseCgroupInt(f[1], 'blkio throttle');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// v2 keyed files

/** "MAJ:MIN key=value key=value" lines (io.stat, io.max) -> { "MAJ:MIN": { key: value } }. */
export function parseNestedKeyed(text: string, what: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const [dev, ...pairs] = line.split(/\s+/);
    if (!/^\d+:\d+$/.test(dev)) throw new Internal(`unexpected ${what} line: "${line}"`);
    const kv: Record<string, string> = (out[dev] ??= {});
    for (const p of pairs) {
      const eq = p.indexOf('=');
      if (eq <= 0) throw new Internal(`unexpected ${what} field "${p}" in "${line}"`);
      kv[p.slice(0, eq)] = p.slice(eq + 1);
    }
  }
  return out;
}

/** io.stat: "254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device. */
export function parseIoStat(text: string): IoDeviceStats[] {
  const parsed = parseNestedKeyed(text, 'io.stat');
  const num = (v: string | undefined) => (v === undefined ? 0 : parseCgroupInt(v, 'io.stat value'));
  return Object.entries(parsed).map(([majorMinor, kv]) => ({
    majorMinor,
    readBytes: num(kv.rbytes),
    writeBytes: num(kv.wbytes),
    readOps: num(kv.rios),
    writeOps: num(kv.wios),
  }));
}

/** io.max: "254:0 rbps=1048576 wbps=max riops=max wiops=max" per device. */
export function parseIoMax(text: string): IoDeviceLimit[] {
  const parsed = parseNestedKeyed(text, 'io.max');
  const lim = (v: string | undefined) => (v === undefined ? null : parseCgroupLimit(v, 'io.max value'));
  return Object.entries(parsed).map(([majorMinor, kv]) => ({
    majorMinor,
    readBps: lim(kv.rbps),
    writeBps: lim(kv.wbps),
    readIops: lim(kv.riops),
    writeIops: lim(kv.wiops),
  }));
}

/** Flat keyed files (cpu.stat, memory.stat): "key value" per line. */
export function parseFlatKeyed(text: string, what = 'cgroup stat'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const f = line.split(/\s+/);
    if (f.length !== 2) throw new Internal(`unexpected ${what} line: "${line}"`);
    out[f[0]] = parseCgroupInt(f[1], `${what} ${f[0]}`);
  }
  return out;
}

/** cpu.stat (v2): usage_usec etc. */
export function parseCpuStat(text: string): Record<string, number> {
  return parseFlatKeyed(text, 'cpu.stat');
}

/** A cpuset file: "0-3,5\n" -> cpus and the canonical list string. */
export function parseCpusetFile(text: string): { cpus: number[]; list: string } {
  const cpus = parseCpuList(text);
  return { cpus, list: formatCpuList(cpus) };
}

// ---------------------------------------------------------------------------------------------
// Locating a process's cgroups

export interface ProcCgroupEntry {
  hierarchyId: number;
  /** v1: ["cpu","cpuacct"] or ["name=systemd"]; v2 (hierarchy 0): []. */
  controllers: string[];
  path: string;
}

/** /proc/<pid>/cgroup: "4:memory:/docker/abc" per hierarchy, "0::/path" for v2. */
export function parseProcCgroup(text: string): ProcCgroupEntry[] {
  const out: ProcCgroupEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    // The path may itself contain ':', so split on the first two only.
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (a < 0 || b < 0 || !/^\d+$/.test(line.slice(0, a))) throw new Internal(`unexpected /proc/PID/cgroup line: "${line}"`);
    const controllers = line.slice(a + 1, b);
    out.push({
      hierarchyId: Number(line.slice(0, a)),
      controllers: controllers === '' ? [] : controllers.split(','),
      path: line.slice(b + 1),
    });
  }
  return out;
}

const isV1ResourceMount = (m: MountInfo) =>
  m.fsType === 'cgroup' && m.superOptions.some((o) => (V1_CONTROLLERS as readonly string[]).includes(o));

/**
 * v1 when resource controllers are mounted as v1 hierarchies (legacy and hybrid layouts: a
 * cgroup2 at /sys/fs/cgroup/unified then only tracks processes); v2 when only cgroup2 is.
 */
export function detectCgroupVersion(mounts: MountInfo[]): CgroupVersion {
  if (mounts.some(isV1ResourceMount)) return 'v1';
  if (mounts.some((m) => m.fsType === 'cgroup2')) return 'v2';
  throw new Unavailable('no cgroup filesystem is mounted');
}

/** The directory under a mount for a cgroup path, honouring the mount's root (cgroup namespaces). */
function dirUnder(mount: MountInfo, cgroupPath: string, hostRoot: string): string | undefined {
  const root = mount.root.replace(/\/+$/, '');
  let rel: string;
  if (root === '') rel = cgroupPath;
  else if (cgroupPath === root) rel = '/';
  else if (cgroupPath.startsWith(`${root}/`)) rel = cgroupPath.slice(root.length);
  else return undefined;
  const joined = path.posix.join(mount.mountPoint, rel);
  // A cgroup path never legitimately climbs out of its mount.
  if (rel.split('/').includes('..')) return undefined;
  return `${hostRoot}${joined}`;
}

/**
 * Where a process's cgroup directories are, from its /proc/<pid>/cgroup and our mountinfo.
 * A controller that is not mounted (or whose path is outside our view) is left out.
 */
export function resolveCgroupPaths(
  entries: ProcCgroupEntry[],
  mounts: MountInfo[],
  version: CgroupVersion,
  hostRoot = '',
): CgroupPaths {
  if (version === 'v2') {
    const entry = entries.find((e) => e.hierarchyId === 0 && e.controllers.length === 0);
    const mount = mounts.find((m) => m.fsType === 'cgroup2');
    const dir = entry && mount ? dirUnder(mount, entry.path, hostRoot) : undefined;
    if (!dir) throw new Unavailable('process has no cgroup v2 path under the mounted cgroup2 filesystem');
    return { version: 'v2', dir };
  }
  const dirs: Partial<Record<V1Controller, string>> = {};
  for (const ctl of V1_CONTROLLERS) {
    const entry = entries.find((e) => e.controllers.includes(ctl));
    const mount = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(ctl));
    if (!entry || !mount) continue;
    const dir = dirUnder(mount, entry.path, hostRoot);
    if (dir) dirs[ctl] = dir;
  }
  return { version: 'v1', dirs };
}

// ---------------------------------------------------------------------------------------------
// Assembling stats from file contents (undefined = the file is absent)

export type FileTexts = Record<string, string | undefined>;

/** Files read for v1, by controller. */
export const V1_FILES: Record<V1Controller, string[]> = {
  cpu: ['cpu.shares'],
  cpuacct: ['cpuacct.usage'],
  memory: ['memory.usage_in_bytes', 'memory.limit_in_bytes'],
  blkio: [
    'blkio.throttle.io_service_bytes',
    'blkio.throttle.io_serviced',
    'blkio.throttle.read_bps_device',
    'blkio.throttle.write_bps_device',
    'blkio.throttle.read_iops_device',
    'blkio.throttle.write_iops_device',
  ],
  pids: ['pids.current', 'pids.max'],
  cpuset: ['cpuset.cpus'],
};

/** Files read for v2 (all in the one directory). */
export const V2_FILES = [
  'cpu.stat',
  'cpu.weight',
  'memory.current',
  'memory.max',
  'io.stat',
  'io.max',
  'pids.current',
  'pids.max',
  'cpuset.cpus.effective',
];

const opt = <T>(text: string | undefined, f: (t: string) => T): T | null => (text === undefined ? null : f(text));

function sumOrNull(devices: IoDeviceStats[], key: keyof Omit<IoDeviceStats, 'majorMinor'>, present: boolean): number | null {
  return present ? devices.reduce((s, d) => s + d[key], 0) : null;
}

function mergeLimits(byKind: Record<'readBps' | 'writeBps' | 'readIops' | 'writeIops', Record<string, number>>): IoDeviceLimit[] {
  const devs = new Set<string>();
  for (const m of Object.values(byKind)) Object.keys(m).forEach((d) => devs.add(d));
  return [...devs].sort().map((majorMinor) => ({
    majorMinor,
    readBps: byKind.readBps[majorMinor] ?? null,
    writeBps: byKind.writeBps[majorMinor] ?? null,
    readIops: byKind.readIops[majorMinor] ?? null,
    writeIops: byKind.writeIops[majorMinor] ?? null,
  }));
}

/** v1: `files` keyed by file name (e.g. "memory.usage_in_bytes"). */
export function statsFromV1Files(files: FileTexts): CgroupStats {
  const bytes = opt(files['blkio.throttle.io_service_bytes'], parseBlkioStat);
  const ops = opt(files['blkio.throttle.io_serviced'], parseBlkioStat);
  const devNames = new Set([...Object.keys(bytes?.devices ?? {}), ...Object.keys(ops?.devices ?? {})]);
  const devices: IoDeviceStats[] = [...devNames].sort().map((majorMinor) => ({
    majorMinor,
    readBytes: bytes?.devices[majorMinor]?.read ?? 0,
    writeBytes: bytes?.devices[majorMinor]?.write ?? 0,
    readOps: ops?.devices[majorMinor]?.read ?? 0,
    writeOps: ops?.devices[majorMinor]?.write ?? 0,
  }));
  const throttle = (name: string) => opt(files[name], parseBlkioThrottleDevice) ?? {};
  return {
    version: 'v1',
    cpu: {
      usageNs: opt(files['cpuacct.usage'], (t) => parseCgroupInt(t, 'cpuacct.usage')),
      shares: opt(files['cpu.shares'], (t) => parseCgroupInt(t, 'cpu.shares')),
      weight: null,
    },
    memory: {
      usageBytes: opt(files['memory.usage_in_bytes'], (t) => parseCgroupInt(t, 'memory.usage_in_bytes')),
      limitBytes: opt(files['memory.limit_in_bytes'], (t) => parseCgroupLimit(t, 'memory.limit_in_bytes')),
    },
    io: {
      readBytes: sumOrNull(devices, 'readBytes', bytes !== null),
      writeBytes: sumOrNull(devices, 'writeBytes', bytes !== null),
      readOps: sumOrNull(devices, 'readOps', ops !== null),
      writeOps: sumOrNull(devices, 'writeOps', ops !== null),
      devices,
      limits: mergeLimits({
        readBps: throttle('blkio.throttle.read_bps_device'),
        writeBps: throttle('blkio.throttle.write_bps_device'),
        readIops: throttle('blkio.throttle.read_iops_device'),
        writeIops: throttle('blkio.throttle.write_iops_device'),
      }),
    },
    pids: {
      current: opt(files['pids.current'], (t) => parseCgroupInt(t, 'pids.current')),
      max: opt(files['pids.max'], (t) => parseCgroupLimit(t, 'pids.max')),
    },
    cpuset: opt(files['cpuset.cpus'], parseCpusetFile),
  };
}

/** v2: `files` keyed by file name in the container's one cgroup directory. */
export function statsFromV2Files(files: FileTexts): CgroupStats {
  const cpuStat = opt(files['cpu.stat'], parseCpuStat);
  const ioStat = opt(files['io.stat'], parseIoStat);
  const devices = (ioStat ?? []).sort((a, b) => a.majorMinor.localeCompare(b.majorMinor));
  const present = ioStat !== null;
  return {
    version: 'v2',
    cpu: {
      usageNs: cpuStat && cpuStat.usage_usec !== undefined ? cpuStat.usage_usec * 1000 : null,
      shares: null,
      weight: opt(files['cpu.weight'], (t) => parseCgroupInt(t, 'cpu.weight')),
    },
    memory: {
      usageBytes: opt(files['memory.current'], (t) => parseCgroupInt(t, 'memory.current')),
      limitBytes: opt(files['memory.max'], (t) => parseCgroupLimit(t, 'memory.max')),
    },
    io: {
      readBytes: sumOrNull(devices, 'readBytes', present),
      writeBytes: sumOrNull(devices, 'writeBytes', present),
      readOps: sumOrNull(devices, 'readOps', present),
      writeOps: sumOrNull(devices, 'writeOps', present),
      devices,
      limits: (opt(files['io.max'], parseIoMax) ?? []).sort((a, b) => a.majorMinor.localeCompare(b.majorMinor)),
    },
    pids: {
      current: opt(files['pids.current'], (t) => parseCgroupInt(t, 'pids.current')),
      max: opt(files['pids.max'], (t) => parseCgroupLimit(t, 'pids.max')),
    },
    cpuset: opt(files['cpuset.cpus.effective'], parseCpusetFile),
  };
}
