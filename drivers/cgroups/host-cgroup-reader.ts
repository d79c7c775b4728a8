import fs from 'node:fs/promises';
import path from 'node:path';
import { InvalidInput, NotFound } from '../../services/errors';
import { wholeDiskForPath, type BlockDevice } from './blkio-device';
import type { CgroupReader } from './cgroup-reader';
import {
  detectCgroupVersion,
  parseProcCgroup,
  resolveCgroupPaths,
  statsFromV1Files,
  statsFromV2Files,
  V1_FILES,
  V2_FILES,
  type CgroupPaths,
  type CgroupStats,
  type CgroupVersion,
  type FileTexts,
  type V1Controller,
} from './cgroup-stats';
import { parseMountInfo, type MountInfo } from './mountinfo';

export interface HostCgroupReaderOptions {
  /** Prefix for /proc, /sys and /dev; tests point it at a fixture tree. Default "" (the host's). */
  rootPrefix?: string;
}

function isEnoent(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'ENOENT' || code === 'ENODEV' || code === 'ESRCH';
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if (isEnoent(err)) return undefined;
    throw err;
  }
}

/** Reads cgroup files of the host this process runs on (it must see the host's /proc and /sys/fs/cgroup). */
export class HostCgroupReader implements CgroupReader {
  private readonly root: string;
  private mountsCache?: MountInfo[];

  constructor(opts: HostCgroupReaderOptions = {}) {
    this.root = opts.rootPrefix ?? '';
  }

  private async mounts(): Promise<MountInfo[]> {
    // cgroup mounts do not change while the service runs; read them once.
    this.mountsCache ??= parseMountInfo(await fs.readFile(`${this.root}/proc/self/mountinfo`, 'utf8'));
    return this.mountsCache;
  }

  async detectVersion(): Promise<CgroupVersion> {
    return detectCgroupVersion(await this.mounts());
  }

  async locate(pid: number): Promise<CgroupPaths> {
    if (!Number.isInteger(pid) || pid <= 0) throw new InvalidInput(`pid must be a positive integer, got ${pid}`);
    const text = await readOptional(`${this.root}/proc/${pid}/cgroup`);
    if (text === undefined) throw new NotFound(`process ${pid} does not exist (container not running?)`);
    const mounts = await this.mounts();
    return resolveCgroupPaths(parseProcCgroup(text), mounts, detectCgroupVersion(mounts), this.root);
  }

  async readStats(paths: CgroupPaths): Promise<CgroupStats> {
    const files: FileTexts = {};
    const dirs = paths.version === 'v2' ? [paths.dir] : Object.values(paths.dirs);
    // A cgroup directory disappears when its container stops; say so instead of "all null".
    const anyDir = dirs.find((d) => d !== undefined);
    if (anyDir === undefined || (await readOptional(path.join(anyDir, 'cgroup.procs'))) === undefined) {
      throw new NotFound(`cgroup ${anyDir ?? '(none)'} does not exist (container stopped?)`);
    }
    if (paths.version === 'v2') {
      await Promise.all(V2_FILES.map(async (f) => (files[f] = await readOptional(path.join(paths.dir, f)))));
      return statsFromV2Files(files);
    }
    const jobs: Array<Promise<void>> = [];
    for (const [ctl, names] of Object.entries(V1_FILES) as Array<[V1Controller, string[]]>) {
      const dir = paths.dirs[ctl];
      if (!dir) continue;
      for (const f of names) jobs.push(readOptional(path.join(dir, f)).then((t) => void (files[f] = t)));
    }
    await Promise.all(jobs);
    return statsFromV1Files(files);
  }

  async statsForPid(pid: number): Promise<CgroupStats> {
    return this.readStats(await this.locate(pid));
  }

  async wholeDiskFor(p: string): Promise<BlockDevice> {
    return wholeDiskForPath(p, { rootPrefix: this.root });
  }
}
