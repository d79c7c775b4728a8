import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { HostCgroupReader } from '../../drivers/cgroups/host-cgroup-reader';
import type { BlockDevice } from '../../drivers/cgroups/blkio-device';
import { wholeDiskForPath } from '../../drivers/cgroups/blkio-device';
import { NotFound } from '../../services/errors';

/**
 * Real Docker, real cgroup files on the host side. The docker CLI is used here (tests only);
 * the service itself talks to Docker through drivers/docker.
 */
const run = promisify(execFile);
const IMAGE = process.env.COMPUTE_TEST_IMAGE ?? 'compute-test/busybox:latest';
const LABEL = 'compute.test=cgroups';

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { timeout: 30000 });
  return stdout.trim();
}

const reader = new HostCgroupReader();
const containers: string[] = [];
let rootDir: string;
let disk: BlockDevice;

async function startContainer(extra: string[]): Promise<{ name: string; pid: number }> {
  const name = `cgtest-${crypto.randomBytes(4).toString('hex')}`;
  containers.push(name);
  await docker('run', '-d', '--name', name, '--label', LABEL, '--net=none', ...extra, IMAGE);
  const pid = Number(await docker('inspect', '-f', '{{.State.Pid}}', name));
  expect(pid).toBeGreaterThan(0);
  return { name, pid };
}

beforeAll(async () => {
  rootDir = await docker('info', '--format', '{{.DockerRootDir}}');
  disk = await reader.wholeDiskFor(rootDir);
});

afterAll(async () => {
  // Removed whatever the tests did; a leftover would also be found by its label.
  await Promise.all(containers.map((c) => run('docker', ['rm', '-f', c], { timeout: 30000 }).catch(() => undefined)));
});

describe('whole disk of Docker data root', () => {
  test('is a whole disk with a device node, matching the data root mount', async () => {
    expect(disk.partition).toBeUndefined();
    expect(disk.devNode).not.toBeNull();
    expect(fs.existsSync(`/sys/dev/block/${disk.majorMinor}/partition`)).toBe(false);
    const st = fs.statSync(disk.devNode as string, { bigint: true });
    expect(st.isBlockDevice()).toBe(true);
    // On this machine: /dev/vda, 254:0 (virtio, unpartitioned).
    const lsblk = JSON.parse((await run('lsblk', ['-J', '-o', 'NAME,MAJ:MIN,TYPE'], { timeout: 10000 })).stdout);
    const names = (lsblk.blockdevices as Array<{ name: string; 'maj:min': string; type: string }>).map((d) => `${d.name} ${d['maj:min']} ${d.type}`);
    expect(names).toContain(`${disk.name} ${disk.majorMinor} disk`);
  });

  test('a filesystem with an anonymous st_dev falls back to the mount source', async () => {
    // /dev/shm is tmpfs (st_dev 0:N); pretend, through a mountinfo fixture, that it is btrfs on the
    // data root's disk, as btrfs reports 0:N too.
    const shmDev = fs.statSync('/dev/shm', { bigint: true }).dev;
    expect(Number(shmDev >> 8n) & 0xfff).toBe(0);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cgroup-mi-'));
    try {
      const mi = path.join(tmp, 'mountinfo');
      fs.writeFileSync(mi, `27 1 ${disk.majorMinor} / / rw - ext4 ${disk.devNode} rw\n60 27 0:99 / /dev/shm rw - btrfs ${disk.devNode} rw\n`);
      const viaMount = await wholeDiskForPath('/dev/shm', { mountInfoPath: mi });
      expect(viaMount.majorMinor).toBe(disk.majorMinor);
      fs.writeFileSync(mi, `60 27 0:99 / /dev/shm rw - tmpfs tmpfs rw\n`);
      await expect(wholeDiskForPath('/dev/shm', { mountInfoPath: mi })).rejects.toThrow(/not on a block device/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('stats of a real container (cgroup v1 hybrid here)', () => {
  test('limits equal what was set; usage is live', async () => {
    expect(await reader.detectVersion()).toBe('v1');
    const { name, pid } = await startContainer([
      '--memory', '64m',
      '--pids-limit', '50',
      '--cpuset-cpus', '0',
      '--cpu-shares', '512',
      '--device-read-bps', `${disk.devNode}:1mb`,
      '--device-write-iops', `${disk.devNode}:100`,
    ]);
    // Give it something to do so CPU and IO counters move.
    await docker('exec', name, 'sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; cat /bin/busybox > /dev/null');

    const paths = await reader.locate(pid);
    expect(paths.version).toBe('v1');
    if (paths.version === 'v1') expect(paths.dirs.memory).toMatch(/\/sys\/fs\/cgroup\/memory\/.*[0-9a-f]{64}$/);

    const stats = await reader.readStats(paths);
    console.log(`cgroup stats of ${name} (pid ${pid}) on ${disk.devNode} ${disk.majorMinor}: ${JSON.stringify(stats)}`);

    expect(stats.memory.limitBytes).toBe(64 * 1024 * 1024);
    expect(stats.pids.max).toBe(50);
    expect(stats.cpuset).toEqual({ cpus: [0], list: '0' });
    expect(stats.cpu.shares).toBe(512);
    expect(stats.io.limits).toEqual([
      { majorMinor: disk.majorMinor, readBps: 1024 * 1024, writeBps: null, readIops: null, writeIops: 100 },
    ]);
    expect(stats.cpu.usageNs).toBeGreaterThan(0);
    expect(stats.memory.usageBytes).toBeGreaterThan(0);
    expect(stats.pids.current).toBeGreaterThanOrEqual(1);
    expect(stats.io.readBytes).toBeGreaterThanOrEqual(0);
    expect(stats.io.readOps).toBeGreaterThanOrEqual(0);

    // The same numbers the files hold (guards against reading the wrong directory).
    if (paths.version === 'v1') {
      expect(fs.readFileSync(path.join(paths.dirs.pids as string, 'pids.max'), 'utf8').trim()).toBe('50');
    }
  });

  test('an unlimited container reports null limits and the full cpuset', async () => {
    const { pid } = await startContainer([]);
    const stats = await reader.statsForPid(pid);
    expect(stats.memory.limitBytes).toBeNull();
    expect(stats.pids.max).toBeNull();
    expect(stats.io.limits).toEqual([]);
    expect(stats.cpuset?.cpus).toEqual(Array.from({ length: os.cpus().length }, (_, i) => i));
  });

  test('after the container is removed, reading is NotFound', async () => {
    const { name, pid } = await startContainer(['--memory', '32m']);
    const paths = await reader.locate(pid);
    await docker('rm', '-f', name);
    await expect(reader.readStats(paths)).rejects.toBeInstanceOf(NotFound);
  });
});
