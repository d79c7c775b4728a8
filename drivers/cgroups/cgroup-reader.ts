import type { BlockDevice } from './blkio-device';
import type { CgroupPaths, CgroupStats, CgroupVersion } from './cgroup-stats';

/**
 * What the compute service needs from the host's cgroups: diagnostics for a running container
 * and the device its blkio throttles must name. The real one is HostCgroupReader; unit tests
 * use FakeCgroupReader (drivers/cgroups/testing).
 */
export interface CgroupReader {
  /** Which cgroup version holds the resource controllers on this host (hybrid counts as v1). */
  detectVersion(): Promise<CgroupVersion>;
  /**
   * The cgroup directories of a process: pass the container's init pid (docker inspect
   * State.Pid). NotFound when the process is gone.
   */
  locate(pid: number): Promise<CgroupPaths>;
  /** Read stats from those directories. NotFound when the cgroup is gone (container stopped). */
  readStats(paths: CgroupPaths): Promise<CgroupStats>;
  /** locate + readStats. */
  statsForPid(pid: number): Promise<CgroupStats>;
  /** The whole disk (never a partition) holding `path`, e.g. Docker's data root, for blkio throttles. */
  wholeDiskFor(path: string): Promise<BlockDevice>;
}
