export type { CgroupReader } from './cgroup-reader';
export { HostCgroupReader, type HostCgroupReaderOptions } from './host-cgroup-reader';
export {
  wholeDiskForPath,
  wholeDiskForDevice,
  decodeDev,
  encodeDev,
  parseMajorMinor,
  wholeDiskSysfsDir,
  type BlockDevice,
  type BlockDeviceLookupOptions,
} from './blkio-device';
export * from './cgroup-stats';
export { parseCpuList, formatCpuList, MAX_CPU_ID } from './cpu-list';
export { parseMountInfo, mountForPath, type MountInfo } from './mountinfo';
export { setIoThrottle, ioThrottleWrites, type IoThrottle } from './io-throttle';
