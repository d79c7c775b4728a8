import fs from 'node:fs/promises';
import { InvalidInput, NotFound } from '../../services/errors';
import type { BlockDevice } from './docker-driver';
import { validateDevicePath, validateInt } from './validation';

/**
 * Docker's blkio throttles take a device *node path* and stat it for major:minor. Callers often
 * know the numbers instead (the disk under the data root), so `{major, minor}` is turned into a
 * node path here: /dev/block/M:m when udev made it, else /dev/<DEVNAME> from sysfs.
 */
export type ReadText = (path: string) => Promise<string>;

const readText: ReadText = (path) => fs.readFile(path, 'utf8');

async function exists(path: string): Promise<boolean> {
  try {
    await fs.stat(path);
    return true;
  } catch {
    return false;
  }
}

export function devnameFromUevent(uevent: string): string | null {
  const m = /^DEVNAME=([A-Za-z0-9._/+-]+)$/m.exec(uevent);
  return m ? m[1] : null;
}

export async function resolveBlockDevicePath(
  dev: BlockDevice,
  io: { readText: ReadText; exists: (p: string) => Promise<boolean> } = { readText, exists },
): Promise<string> {
  if ('path' in dev) return validateDevicePath(dev.path);
  const major = validateInt(dev.major, 'device major', 0, 4095);
  const minor = validateInt(dev.minor, 'device minor', 0, 1048575);
  const byNumber = `/dev/block/${major}:${minor}`;
  if (await io.exists(byNumber)) return byNumber;
  let uevent: string;
  try {
    uevent = await io.readText(`/sys/dev/block/${major}:${minor}/uevent`);
  } catch (cause) {
    throw new NotFound(`no block device ${major}:${minor} on this host`, { cause });
  }
  const name = devnameFromUevent(uevent);
  if (name === null) throw new InvalidInput(`block device ${major}:${minor} has no DEVNAME in sysfs`);
  return validateDevicePath(`/dev/${name}`);
}
