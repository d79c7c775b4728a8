import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  detectCgroupVersion,
  parseBlkioStat,
  parseBlkioThrottleDevice,
  parseCgroupInt,
  parseCgroupLimit,
  parseCpuStat,
  parseCpusetFile,
  parseIoMax,
  parseIoStat,
  parseProcCgroup,
  resolveCgroupPaths,
  statsFromV1Files,
  statsFromV2Files,
} from '../../drivers/cgroups/cgroup-stats';
import { HostCgroupReader } from '../../drivers/cgroups/host-cgroup-reader';
import { parseMountInfo } from '../../drivers/cgroups/mountinfo';
import { FakeCgroupReader } from '../../drivers/cgroups/testing/fake-cgroup-reader';
import { Internal, InvalidInput, NotFound, Unavailable } from '../../services/errors';

const CID = '2c098955053b87a2997a1989315559ea98575f87219fe0cbde69d43f202c9373';

// Real text from this machine (cgroup v1 hybrid, cpu and cpuacct mounted separately).
const HYBRID_MOUNTINFO = [
  '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard',
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
  '34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio',
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');
const HYBRID_PROC_CGROUP = [
  `9:name=systemd:/docker/${CID}`,
  `8:pids:/docker/${CID}`,
  `7:blkio:/docker/${CID}`,
  `4:memory:/docker/${CID}`,
  `3:cpuset:/docker/${CID}`,
  `2:cpuacct:/docker/${CID}`,
  `1:cpu:/docker/${CID}`,
  `0::/docker/${CID}`,
].join('\n');
// The usual systemd-era legacy layout: cpu and cpuacct co-mounted.
const LEGACY_MOUNTINFO = [
  '25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
  '26 24 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
].join('\n');
const V2_MOUNTINFO = '30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot';

describe('scalars', () => {
  test.each<[string, number]>([['0', 0], ['67108864\n', 67108864], [' 50 ', 50]])('int %j', (t, n) => {
    expect(parseCgroupInt(t)).toBe(n);
  });
  test.each(['', 'max', '-1', '1.5', 'abc'])('int %j is refused', (t) => {
    expect(() => parseCgroupInt(t)).toThrow(Internal);
  });
  test.each<[string, number | null]>([
    ['max\n', null],
    ['67108864\n', 67108864],
    ['9223372036854771712\n', null], // v1 memory "unlimited"
    ['4611686018427387904', null], // 2^62
    ['50', 50],
    ['0', 0],
  ])('limit %j -> %p', (t, v) => {
    expect(parseCgroupLimit(t)).toBe(v);
  });
  test.each(['', 'unlimited', '-1'])('limit %j is refused', (t) => {
    expect(() => parseCgroupLimit(t)).toThrow(Internal);
  });
});

describe('parseBlkioStat (v1)', () => {
  test.each<[string, string, ReturnType<typeof parseBlkioStat>]>([
    ['empty (no IO yet)', 'Total 0\n', { devices: {}, total: 0 }],
    [
      'one device',
      '254:0 Read 319488\n254:0 Write 4096\n254:0 Sync 319488\n254:0 Async 4096\n254:0 Discard 0\n254:0 Total 323584\nTotal 323584\n',
      { devices: { '254:0': { read: 319488, write: 4096, sync: 319488, async: 4096, discard: 0, total: 323584 } }, total: 323584 },
    ],
    [
      'two devices, older kernel without Discard',
      '8:0 Read 10\n8:0 Write 20\n8:0 Sync 0\n8:0 Async 30\n8:0 Total 30\n8:16 Read 1\n8:16 Write 2\n8:16 Sync 3\n8:16 Async 0\n8:16 Total 3\nTotal 33',
      {
        devices: {
          '8:0': { read: 10, write: 20, sync: 0, async: 30, discard: 0, total: 30 },
          '8:16': { read: 1, write: 2, sync: 3, async: 0, discard: 0, total: 3 },
        },
        total: 33,
      },
    ],
  ])('%s', (_name, text, expected) => {
    expect(parseBlkioStat(text)).toEqual(expected);
  });
  test.each(['254:0 Read', 'sda Read 1', '254:0 Bogus 1', '254:0 Read x'])('%j is refused', (t) => {
    expect(() => parseBlkioStat(t)).toThrow(Internal);
  });
});

describe('parseBlkioThrottleDevice (v1)', () => {
  test.each<[string, Record<string, number>]>([
    ['', {}],
    ['254:0 1048576\n', { '254:0': 1048576 }],
    ['8:0 100\n8:16 200\n', { '8:0': 100, '8:16': 200 }],
  ])('%j', (t, expected) => {
    expect(parseBlkioThrottleDevice(t)).toEqual(expected);
  });
  test('garbage is refused', () => expect(() => parseBlkioThrottleDevice('254:0')).toThrow(Internal));
});

describe('parseIoStat / parseIoMax (v2)', () => {
  test.each<[string, string, ReturnType<typeof parseIoStat>]>([
    ['empty', '', []],
    [
      'one device',
      '254:0 rbytes=319488 wbytes=4096 rios=23 wios=1 dbytes=0 dios=0\n',
      [{ majorMinor: '254:0', readBytes: 319488, writeBytes: 4096, readOps: 23, writeOps: 1 }],
    ],
    [
      'missing keys count as 0',
      '8:0 rbytes=5 rios=1\n8:16 wbytes=7 wios=2',
      [
        { majorMinor: '8:0', readBytes: 5, writeBytes: 0, readOps: 1, writeOps: 0 },
        { majorMinor: '8:16', readBytes: 0, writeBytes: 7, readOps: 0, writeOps: 2 },
      ],
    ],
  ])('io.stat %s', (_name, text, expected) => {
    expect(parseIoStat(text)).toEqual(expected);
  });
  test.each(['vda rbytes=1', '254:0 rbytes', '254:0 =1', '254:0 rbytes=x'])('io.stat %j is refused', (t) => {
    expect(() => parseIoStat(t)).toThrow(Internal);
  });
  test.each<[string, ReturnType<typeof parseIoMax>]>([
    ['', []],
    ['254:0 rbps=1048576 wbps=max riops=max wiops=100\n', [{ majorMinor: '254:0', readBps: 1048576, writeBps: null, readIops: null, writeIops: 100 }]],
  ])('io.max %j', (t, expected) => {
    expect(parseIoMax(t)).toEqual(expected);
  });
});

describe('parseCpuStat / parseCpusetFile', () => {
  test('cpu.stat', () => {
    expect(parseCpuStat('usage_usec 22844\nuser_usec 10000\nsystem_usec 12844\nnr_periods 0\n')).toEqual({
      usage_usec: 22844, user_usec: 10000, system_usec: 12844, nr_periods: 0,
    });
  });
  test('cpu.stat garbage is refused', () => expect(() => parseCpuStat('usage_usec\n')).toThrow(Internal));
  test.each<[string, number[], string]>([
    ['0\n', [0], '0'],
    ['0-3,5\n', [0, 1, 2, 3, 5], '0-3,5'],
    ['0,1\n', [0, 1], '0-1'],
    ['\n', [], ''],
  ])('cpuset %j', (t, cpus, list) => {
    expect(parseCpusetFile(t)).toEqual({ cpus, list });
  });
  test('cpuset garbage is refused', () => expect(() => parseCpusetFile('0-\n')).toThrow(InvalidInput));
});

describe('parseProcCgroup', () => {
  test('hybrid v1', () => {
    const entries = parseProcCgroup(HYBRID_PROC_CGROUP);
    expect(entries).toHaveLength(8);
    expect(entries[0]).toEqual({ hierarchyId: 9, controllers: ['name=systemd'], path: `/docker/${CID}` });
    expect(entries[7]).toEqual({ hierarchyId: 0, controllers: [], path: `/docker/${CID}` });
  });
  test.each<[string, { hierarchyId: number; controllers: string[]; path: string }]>([
    ['2:cpu,cpuacct:/system.slice/docker-abc.scope', { hierarchyId: 2, controllers: ['cpu', 'cpuacct'], path: '/system.slice/docker-abc.scope' }],
    ['0::/', { hierarchyId: 0, controllers: [], path: '/' }],
    ['0::/weird:path', { hierarchyId: 0, controllers: [], path: '/weird:path' }],
  ])('%j', (line, expected) => {
    expect(parseProcCgroup(line)).toEqual([expected]);
  });
  test.each(['garbage', 'x:memory:/'])('%j is refused', (t) => {
    expect(() => parseProcCgroup(t)).toThrow(Internal);
  });
});

describe('detectCgroupVersion', () => {
  test.each<[string, string, 'v1' | 'v2']>([
    ['hybrid (this machine)', HYBRID_MOUNTINFO, 'v1'],
    ['legacy', LEGACY_MOUNTINFO, 'v1'],
    ['unified', V2_MOUNTINFO, 'v2'],
    // Only the systemd named hierarchy on v1: resource controllers are on v2.
    ['v2 with a name=systemd v1 mount', `${V2_MOUNTINFO}\n40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd`, 'v2'],
  ])('%s -> %s', (_name, mountinfo, version) => {
    expect(detectCgroupVersion(parseMountInfo(mountinfo))).toBe(version);
  });
  test('no cgroup mounted', () => {
    expect(() => detectCgroupVersion(parseMountInfo('27 1 254:0 / / rw - ext4 /dev/vda rw'))).toThrow(Unavailable);
  });
});

describe('resolveCgroupPaths', () => {
  test('hybrid v1: one dir per controller', () => {
    const paths = resolveCgroupPaths(parseProcCgroup(HYBRID_PROC_CGROUP), parseMountInfo(HYBRID_MOUNTINFO), 'v1');
    expect(paths).toEqual({
      version: 'v1',
      dirs: {
        cpu: `/sys/fs/cgroup/cpu/docker/${CID}`,
        cpuacct: `/sys/fs/cgroup/cpuacct/docker/${CID}`,
        memory: `/sys/fs/cgroup/memory/docker/${CID}`,
        blkio: `/sys/fs/cgroup/blkio/docker/${CID}`,
        pids: `/sys/fs/cgroup/pids/docker/${CID}`,
        cpuset: `/sys/fs/cgroup/cpuset/docker/${CID}`,
      },
    });
  });
  test('legacy v1 with co-mounted cpu,cpuacct and a host root prefix', () => {
    const paths = resolveCgroupPaths(
      parseProcCgroup('3:memory:/docker/x\n2:cpu,cpuacct:/docker/x'),
      parseMountInfo(LEGACY_MOUNTINFO),
      'v1',
      '/host',
    );
    expect(paths).toEqual({
      version: 'v1',
      dirs: {
        cpu: '/host/sys/fs/cgroup/cpu,cpuacct/docker/x',
        cpuacct: '/host/sys/fs/cgroup/cpu,cpuacct/docker/x',
        memory: '/host/sys/fs/cgroup/memory/docker/x',
      },
    });
  });
  test('v2 (systemd driver path)', () => {
    const paths = resolveCgroupPaths(parseProcCgroup('0::/system.slice/docker-abc.scope'), parseMountInfo(V2_MOUNTINFO), 'v2');
    expect(paths).toEqual({ version: 'v2', dir: '/sys/fs/cgroup/system.slice/docker-abc.scope' });
  });
  test('a mount whose root is a sub-cgroup (cgroup namespace) strips that root', () => {
    const mounts = parseMountInfo('30 24 0:26 /docker/outer /sys/fs/cgroup rw - cgroup2 cgroup2 rw');
    expect(resolveCgroupPaths(parseProcCgroup('0::/docker/outer/inner'), mounts, 'v2')).toEqual({ version: 'v2', dir: '/sys/fs/cgroup/inner' });
    expect(() => resolveCgroupPaths(parseProcCgroup('0::/elsewhere'), mounts, 'v2')).toThrow(Unavailable);
  });
  test('a path climbing out with .. is not followed', () => {
    const paths = resolveCgroupPaths(parseProcCgroup('4:memory:/../../etc'), parseMountInfo(HYBRID_MOUNTINFO), 'v1');
    expect(paths).toEqual({ version: 'v1', dirs: {} });
  });
});

describe('statsFromV1Files', () => {
  test('all files (values as read on this machine)', () => {
    const stats = statsFromV1Files({
      'cpuacct.usage': '22844125\n',
      'cpu.shares': '1024\n',
      'memory.usage_in_bytes': '737280\n',
      'memory.limit_in_bytes': '67108864\n',
      'blkio.throttle.io_service_bytes': '254:0 Read 319488\n254:0 Write 0\n254:0 Sync 319488\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 319488\nTotal 319488\n',
      'blkio.throttle.io_serviced': '254:0 Read 23\n254:0 Write 0\n254:0 Sync 23\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 23\nTotal 23\n',
      'blkio.throttle.read_bps_device': '254:0 1048576\n',
      'blkio.throttle.write_bps_device': '',
      'blkio.throttle.read_iops_device': '',
      'blkio.throttle.write_iops_device': '254:0 100\n',
      'pids.current': '1\n',
      'pids.max': '50\n',
      'cpuset.cpus': '0\n',
    });
    expect(stats).toEqual({
      version: 'v1',
      cpu: { usageNs: 22844125, shares: 1024, weight: null },
      memory: { usageBytes: 737280, limitBytes: 67108864 },
      io: {
        readBytes: 319488,
        writeBytes: 0,
        readOps: 23,
        writeOps: 0,
        devices: [{ majorMinor: '254:0', readBytes: 319488, writeBytes: 0, readOps: 23, writeOps: 0 }],
        limits: [{ majorMinor: '254:0', readBps: 1048576, writeBps: null, readIops: null, writeIops: 100 }],
      },
      pids: { current: 1, max: 50 },
      cpuset: { cpus: [0], list: '0' },
    });
  });
  test('unlimited values and absent files', () => {
    const stats = statsFromV1Files({
      'cpuacct.usage': '5\n',
      'memory.usage_in_bytes': '4096\n',
      'memory.limit_in_bytes': '9223372036854771712\n',
      'pids.max': 'max\n',
    });
    expect(stats.memory).toEqual({ usageBytes: 4096, limitBytes: null });
    expect(stats.pids).toEqual({ current: null, max: null });
    expect(stats.io).toEqual({ readBytes: null, writeBytes: null, readOps: null, writeOps: null, devices: [], limits: [] });
    expect(stats.cpuset).toBeNull();
    expect(stats.cpu.shares).toBeNull();
  });
});

describe('statsFromV2Files', () => {
  test('all files', () => {
    const stats = statsFromV2Files({
      'cpu.stat': 'usage_usec 22844\nuser_usec 10000\nsystem_usec 12844\n',
      'cpu.weight': '39\n',
      'memory.current': '737280\n',
      'memory.max': '67108864\n',
      'io.stat': '254:0 rbytes=319488 wbytes=8192 rios=23 wios=2 dbytes=0 dios=0\n8:0 rbytes=1 wbytes=1 rios=1 wios=1 dbytes=0 dios=0\n',
      'io.max': '254:0 rbps=1048576 wbps=max riops=max wiops=max\n',
      'pids.current': '2\n',
      'pids.max': '50\n',
      'cpuset.cpus.effective': '0-1\n',
    });
    expect(stats).toEqual({
      version: 'v2',
      cpu: { usageNs: 22844000, shares: null, weight: 39 },
      memory: { usageBytes: 737280, limitBytes: 67108864 },
      io: {
        readBytes: 319489,
        writeBytes: 8193,
        readOps: 24,
        writeOps: 3,
        devices: [
          { majorMinor: '254:0', readBytes: 319488, writeBytes: 8192, readOps: 23, writeOps: 2 },
          { majorMinor: '8:0', readBytes: 1, writeBytes: 1, readOps: 1, writeOps: 1 },
        ],
        limits: [{ majorMinor: '254:0', readBps: 1048576, writeBps: null, readIops: null, writeIops: null }],
      },
      pids: { current: 2, max: 50 },
      cpuset: { cpus: [0, 1], list: '0-1' },
    });
  });
  test('"max" limits and absent controllers', () => {
    const stats = statsFromV2Files({ 'cpu.stat': 'usage_usec 1\n', 'memory.current': '1\n', 'memory.max': 'max\n', 'pids.max': 'max\n' });
    expect(stats.memory.limitBytes).toBeNull();
    expect(stats.pids).toEqual({ current: null, max: null });
    expect(stats.io.readBytes).toBeNull();
    expect(stats.cpuset).toBeNull();
  });
});

/** A fake host root: /proc/self/mountinfo, /proc/<pid>/cgroup and cgroup dirs with files. */
function makeHostRoot(mountinfo: string, pid: number, procCgroup: string, dirs: Record<string, Record<string, string>>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cgroup-stats-'));
  const write = (rel: string, content: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
  };
  write('proc/self/mountinfo', mountinfo);
  write(`proc/${pid}/cgroup`, procCgroup);
  for (const [dir, files] of Object.entries(dirs)) {
    write(path.join(dir, 'cgroup.procs'), `${pid}\n`);
    for (const [f, c] of Object.entries(files)) write(path.join(dir, f), c);
  }
  return root;
}

describe('HostCgroupReader on a fixture tree', () => {
  const roots: string[] = [];
  afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

  test('v2: locates via /proc/<pid>/cgroup and reads the files', async () => {
    const dir = 'sys/fs/cgroup/system.slice/docker-abc.scope';
    const root = makeHostRoot(V2_MOUNTINFO, 4242, '0::/system.slice/docker-abc.scope\n', {
      [dir]: {
        'cpu.stat': 'usage_usec 1500\n',
        'memory.current': '1048576\n',
        'memory.max': '67108864\n',
        'io.max': '254:0 rbps=1048576 wbps=max riops=max wiops=max\n',
        'io.stat': '',
        'pids.current': '2\n',
        'pids.max': '50\n',
        'cpuset.cpus.effective': '0\n',
      },
    });
    roots.push(root);
    const reader = new HostCgroupReader({ rootPrefix: root });
    expect(await reader.detectVersion()).toBe('v2');
    expect(await reader.locate(4242)).toEqual({ version: 'v2', dir: `${root}/${dir}` });
    const stats = await reader.statsForPid(4242);
    expect(stats.cpu.usageNs).toBe(1500000);
    expect(stats.memory).toEqual({ usageBytes: 1048576, limitBytes: 67108864 });
    expect(stats.io.limits).toEqual([{ majorMinor: '254:0', readBps: 1048576, writeBps: null, readIops: null, writeIops: null }]);
    expect(stats.io.readBytes).toBe(0);
    expect(stats.pids).toEqual({ current: 2, max: 50 });
    expect(stats.cpuset).toEqual({ cpus: [0], list: '0' });
    expect(stats.cpu.weight).toBeNull(); // cpu.weight absent in the fixture
  });

  test('v1: a missing pids controller gives nulls, not an error', async () => {
    const root = makeHostRoot(LEGACY_MOUNTINFO, 7, '3:memory:/docker/x\n2:cpu,cpuacct:/docker/x\n', {
      'sys/fs/cgroup/cpu,cpuacct/docker/x': { 'cpuacct.usage': '99\n', 'cpu.shares': '512\n' },
      'sys/fs/cgroup/memory/docker/x': { 'memory.usage_in_bytes': '8192\n', 'memory.limit_in_bytes': '9223372036854771712\n' },
    });
    roots.push(root);
    const stats = await new HostCgroupReader({ rootPrefix: root }).statsForPid(7);
    expect(stats.cpu).toEqual({ usageNs: 99, shares: 512, weight: null });
    expect(stats.memory).toEqual({ usageBytes: 8192, limitBytes: null });
    expect(stats.pids).toEqual({ current: null, max: null });
  });

  test('a process that is gone is NotFound; so is a removed cgroup', async () => {
    const root = makeHostRoot(V2_MOUNTINFO, 5, '0::/gone\n', {});
    roots.push(root);
    const reader = new HostCgroupReader({ rootPrefix: root });
    await expect(reader.statsForPid(6)).rejects.toBeInstanceOf(NotFound);
    await expect(reader.statsForPid(5)).rejects.toThrow(/does not exist \(container stopped\?\)/);
  });

  test.each([0, -1, 1.5, NaN])('pid %p is invalid input', async (pid) => {
    await expect(new HostCgroupReader().locate(pid)).rejects.toBeInstanceOf(InvalidInput);
  });
});

describe('FakeCgroupReader', () => {
  test('behaves like the real one for a running and a stopped container', async () => {
    const fake = new FakeCgroupReader('v2');
    fake.setStats(10, { memory: { usageBytes: 5, limitBytes: 64 << 20 } });
    const stats = await fake.statsForPid(10);
    expect(stats.version).toBe('v2');
    expect(stats.memory.limitBytes).toBe(64 << 20);
    expect((await fake.wholeDiskFor('/var/lib/docker')).majorMinor).toBe('254:0');
    fake.remove(10);
    await expect(fake.statsForPid(10)).rejects.toBeInstanceOf(NotFound);
  });
});
