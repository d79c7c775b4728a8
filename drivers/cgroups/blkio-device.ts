import fs from 'node:fs/promises';
import path from 'node:path';
import { InvalidInput, Internal, NotFound, Unavailable } from '../../services/errors';
import { mountForPath, parseMountInfo } from './mountinfo';

/**
 * Which block device blkio throttles must name. The throttle is matched against the device a
 * bio is submitted to: for a filesystem on /dev/sda1 that is the partition remapped onto sda,
 * and the kernel (and Docker's --device-*-bps) only accept the whole disk, so a partition is
 * replaced by its parent. Device-mapper devices (LVM, dm-crypt) are bio-based and take the
 * throttle themselves, so dm-N is used as is. virtio (vda) and nvme (nvme0n1) are whole disks.
 */
export interface BlockDevice {
  major: number;
  minor: number;
  /** "254:0": the form cgroup files use. */
  majorMinor: string;
  /** Kernel name of the whole disk: "vda", "sda", "nvme0n1", "dm-0". */
  name: string;
  /** The device the path is really on when it is a partition ("sda1"), else undefined. */
  partition?: { name: string; major: number; minor: number };
  /** Device-mapper name from /sys/.../dm/name ("vg0-root"), when it is one. */
  dmName?: string;
  /**
   * A device node for it (Docker's API takes a path for BlkioDevice*, not major:minor), or
   * null when none exists under /dev with the right rdev.
   */
  devNode: string | null;
}

/** Decode a Linux dev_t (st_dev / st_rdev) as glibc's gnu_dev_major/minor do. */
export function decodeDev(dev: bigint | number): { major: number; minor: number } {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n);
  const minor = (d & 0xffn) | ((d >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

/** Inverse of decodeDev (glibc gnu_dev_makedev). */
export function encodeDev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & 0xfffff000n) << 32n) | (mi & 0xffn) | ((mi & 0xffffff00n) << 12n);
}

/** Contents of a sysfs `dev` file ("254:0\n"). */
export function parseMajorMinor(text: string): { major: number; minor: number } {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  if (!m) throw new InvalidInput(`"${text.trim()}" is not MAJOR:MINOR`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/**
 * Given the resolved sysfs directory of a block device (the target of /sys/dev/block/M:N) and
 * whether it has a `partition` file, the directory of the whole disk: a partition's parent
 * directory is its disk (.../block/sda/sda1 -> .../block/sda, .../nvme0n1/nvme0n1p2 -> .../nvme0n1).
 */
export function wholeDiskSysfsDir(deviceDir: string, isPartition: boolean): string {
  const dir = path.posix.normalize(deviceDir).replace(/\/+$/, '');
  return isPartition ? path.posix.dirname(dir) : dir;
}

export interface BlockDeviceLookupOptions {
  /** Prefix for /sys and /dev (tests point it at a fixture tree). Default "" (the real ones). */
  rootPrefix?: string;
  /** Where mountinfo is read from; default `${rootPrefix}/proc/self/mountinfo`. */
  mountInfoPath?: string;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

async function readTrimmed(p: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(p, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

async function findDevNode(root: string, name: string, major: number, minor: number): Promise<string | null> {
  for (const candidate of [`/dev/${name}`, `/dev/block/${major}:${minor}`]) {
    try {
      const st = await fs.stat(`${root}${candidate}`, { bigint: true });
      const d = decodeDev(st.rdev);
      if (st.isBlockDevice() && d.major === major && d.minor === minor) return candidate;
    } catch {
      // not there: try the next one
    }
  }
  return null;
}

/** The whole disk for a block device number, from sysfs. */
export async function wholeDiskForDevice(major: number, minor: number, opts: BlockDeviceLookupOptions = {}): Promise<BlockDevice> {
  const root = opts.rootPrefix ?? '';
  const link = `${root}/sys/dev/block/${major}:${minor}`;
  let deviceDir: string;
  try {
    deviceDir = await fs.realpath(link);
  } catch (err) {
    throw new NotFound(`block device ${major}:${minor} is not in ${root}/sys/dev/block`, { cause: err });
  }
  const isPartition = await exists(path.join(deviceDir, 'partition'));
  const diskDir = wholeDiskSysfsDir(deviceDir, isPartition);
  const devText = await readTrimmed(path.join(diskDir, 'dev'));
  if (devText === undefined) throw new Internal(`no dev file in ${diskDir} (parent of ${major}:${minor})`);
  const disk = parseMajorMinor(devText);
  const name = path.basename(diskDir);
  const dmName = await readTrimmed(path.join(diskDir, 'dm', 'name'));
  return {
    major: disk.major,
    minor: disk.minor,
    majorMinor: `${disk.major}:${disk.minor}`,
    name,
    ...(isPartition ? { partition: { name: path.basename(deviceDir), major, minor } } : {}),
    ...(dmName !== undefined ? { dmName } : {}),
    devNode: await findDevNode(root, name, disk.major, disk.minor),
  };
}

/**
 * The whole disk holding `p` (e.g. Docker's data root). st_dev names the device directly for
 * ext4/xfs; btrfs (and overlay) report an anonymous 0:N device, so then the mount's source
 * (/dev/sdb1) is looked up in mountinfo and its rdev used instead.
 */
export async function wholeDiskForPath(p: string, opts: BlockDeviceLookupOptions = {}): Promise<BlockDevice> {
  const root = opts.rootPrefix ?? '';
  let real: string;
  let st: { dev: bigint };
  try {
    real = await fs.realpath(p);
    st = await fs.stat(real, { bigint: true });
  } catch (err) {
    throw new NotFound(`cannot stat ${p}`, { cause: err });
  }
  let dev = decodeDev(st.dev);
  if (dev.major === 0) {
    const mountInfoPath = opts.mountInfoPath ?? `${root}/proc/self/mountinfo`;
    const mount = mountForPath(parseMountInfo(await fs.readFile(mountInfoPath, 'utf8')), real);
    if (!mount || !mount.source.startsWith('/dev/')) {
      throw new Unavailable(
        `${p} is on ${mount ? `${mount.fsType} from "${mount.source}"` : 'an unknown mount'}, not on a block device: blkio throttles cannot apply`,
      );
    }
    try {
      dev = decodeDev((await fs.stat(`${root}${mount.source}`, { bigint: true })).rdev);
    } catch (err) {
      throw new NotFound(`mount source ${mount.source} of ${p} cannot be stat'ed`, { cause: err });
    }
  }
  return wholeDiskForDevice(dev.major, dev.minor, opts);
}
