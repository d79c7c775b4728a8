import path from 'node:path';
import { Internal } from '../../services/errors';

/** One line of /proc/<pid>/mountinfo (proc(5)); only the fields this package needs. */
export interface MountInfo {
  /** "254:0"; 0:N for filesystems without a block device of their own (btrfs, overlay, tmpfs). */
  majorMinor: string;
  /** The directory of the filesystem that is mounted (not always "/": bind mounts, cgroup namespaces). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \040 \011 \012 \134. */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (fields.length < 10 || sep < 0 || fields.length < sep + 4) {
      throw new Internal(`unexpected mountinfo line: ${line}`);
    }
    mounts.push({
      majorMinor: fields[2],
      root: unescapeMountField(fields[3]),
      mountPoint: unescapeMountField(fields[4]),
      fsType: fields[sep + 1],
      source: unescapeMountField(fields[sep + 2]),
      superOptions: fields[sep + 3].split(','),
    });
  }
  return mounts;
}

/**
 * The mount that holds an absolute, already-resolved path: the longest mount point that is a
 * prefix of it; among equal mount points the last one (mounted on top) wins.
 */
export function mountForPath(mounts: MountInfo[], absPath: string): MountInfo | undefined {
  const p = path.posix.normalize(absPath);
  let best: MountInfo | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const inside = mp === '/' || p === mp || p.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}
