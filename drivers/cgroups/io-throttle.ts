import fs from 'node:fs/promises';
import path from 'node:path';
import { InvalidInput, NotFound } from '../../services/errors';
import type { CgroupPaths } from './cgroup-stats';

/** Rates for one whole disk; 0 or undefined removes that throttle. */
export interface IoThrottle {
  majorMinor: string;
  readBps?: number;
  writeBps?: number;
  readIops?: number;
  writeIops?: number;
}

const MAJMIN = /^[0-9]{1,10}:[0-9]{1,10}$/;

/** The file writes that apply `t` (pure): v1 one file per kind, v2 one `io.max` line. */
export function ioThrottleWrites(paths: CgroupPaths, t: IoThrottle): Array<{ file: string; text: string }> {
  if (!MAJMIN.test(t.majorMinor)) throw new InvalidInput(`bad device ${JSON.stringify(t.majorMinor)}`);
  for (const v of [t.readBps, t.writeBps, t.readIops, t.writeIops]) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new InvalidInput(`io rate must be a non-negative integer, got ${v}`);
  }
  if (paths.version === 'v1') {
    const dir = paths.dirs.blkio;
    if (!dir) throw new NotFound('container has no blkio cgroup');
    return [
      ['blkio.throttle.read_bps_device', t.readBps],
      ['blkio.throttle.write_bps_device', t.writeBps],
      ['blkio.throttle.read_iops_device', t.readIops],
      ['blkio.throttle.write_iops_device', t.writeIops],
    ].map(([file, v]) => ({ file: path.join(dir, file as string), text: `${t.majorMinor} ${v ?? 0}` }));
  }
  const max = (v?: number) => (v ? String(v) : 'max');
  return [{ file: path.join(paths.dir, 'io.max'), text: `${t.majorMinor} rbps=${max(t.readBps)} wbps=${max(t.writeBps)} riops=${max(t.readIops)} wiops=${max(t.writeIops)}` }];
}

/**
 * Change a running container's block IO throttles in its cgroup directly: Docker's update API
 * (1.41) accepts only BlkioWeight, not the throttle devices set at create (moby/moby#29593).
 */
export async function setIoThrottle(paths: CgroupPaths, t: IoThrottle): Promise<void> {
  for (const w of ioThrottleWrites(paths, t)) await fs.writeFile(w.file, w.text);
}
