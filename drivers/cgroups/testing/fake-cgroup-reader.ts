import { NotFound } from '../../../services/errors';
import type { BlockDevice } from '../blkio-device';
import type { CgroupReader } from '../cgroup-reader';
import type { CgroupPaths, CgroupStats, CgroupVersion } from '../cgroup-stats';

/** Stats with every value present and zero: start from this and override what a test needs. */
export function emptyStats(version: CgroupVersion = 'v1'): CgroupStats {
  return {
    version,
    cpu: { usageNs: 0, shares: version === 'v1' ? 1024 : null, weight: version === 'v2' ? 100 : null },
    memory: { usageBytes: 0, limitBytes: null },
    io: { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0, devices: [], limits: [] },
    pids: { current: 1, max: null },
    cpuset: { cpus: [0], list: '0' },
  };
}

export const FAKE_DISK: BlockDevice = { major: 254, minor: 0, majorMinor: '254:0', name: 'vda', devNode: '/dev/vda' };

/**
 * In-memory CgroupReader: `setStats(pid, stats)` makes a "running container"; `remove(pid)`
 * stops it (then every read is NotFound, as with the real reader).
 */
export class FakeCgroupReader implements CgroupReader {
  private readonly byPid = new Map<number, CgroupStats>();

  constructor(
    public version: CgroupVersion = 'v1',
    public disk: BlockDevice = FAKE_DISK,
  ) {}

  setStats(pid: number, stats: Partial<CgroupStats> = {}): void {
    this.byPid.set(pid, { ...emptyStats(this.version), ...stats, version: this.version });
  }

  remove(pid: number): void {
    this.byPid.delete(pid);
  }

  async detectVersion(): Promise<CgroupVersion> {
    return this.version;
  }

  async locate(pid: number): Promise<CgroupPaths> {
    if (!this.byPid.has(pid)) throw new NotFound(`process ${pid} does not exist (container not running?)`);
    const dir = `/fake/cgroup/pid-${pid}`;
    return this.version === 'v2' ? { version: 'v2', dir } : { version: 'v1', dirs: { memory: dir, cpuacct: dir } };
  }

  async readStats(paths: CgroupPaths): Promise<CgroupStats> {
    const dir = paths.version === 'v2' ? paths.dir : (paths.dirs.memory ?? '');
    const m = /^\/fake\/cgroup\/pid-(\d+)$/.exec(dir);
    const stats = m ? this.byPid.get(Number(m[1])) : undefined;
    if (!stats) throw new NotFound(`cgroup ${dir} does not exist (container stopped?)`);
    return structuredClone(stats);
  }

  async statsForPid(pid: number): Promise<CgroupStats> {
    return this.readStats(await this.locate(pid));
  }

  async wholeDiskFor(_path: string): Promise<BlockDevice> {
    return { ...this.disk };
  }
}
