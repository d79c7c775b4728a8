import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  decodeDev,
  encodeDev,
  parseMajorMinor,
  wholeDiskForDevice,
  wholeDiskSysfsDir,
} from '../../drivers/cgroups/blkio-device';
import { mountForPath, parseMountInfo } from '../../drivers/cgroups/mountinfo';
import { InvalidInput, NotFound } from '../../services/errors';

describe('decodeDev / encodeDev', () => {
  test.each<[string, bigint, number, number]>([
    ['virtio vda', 65024n, 254, 0],
    ['sda', 2048n, 8, 0],
    ['sda1', 2049n, 8, 1],
    ['nvme0n1p1', 66305n, 259, 1],
    ['dm-0', 64768n, 253, 0],
    ['loop3', 1795n, 7, 3],
    ['anonymous (btrfs/overlay)', 45n, 0, 45],
    // Minors > 255 and majors > 4095 use the high bits of the 64-bit encoding.
    ['sd minor 300', 0x10082cn, 8, 300],
    ['major 4096', 1n << 44n, 4096, 0],
  ])('%s: %d is %d:%d', (_name, dev, major, minor) => {
    expect(decodeDev(dev)).toEqual({ major, minor });
    expect(encodeDev(major, minor)).toBe(dev);
  });

  test('accepts a plain number', () => {
    expect(decodeDev(65024)).toEqual({ major: 254, minor: 0 });
  });
});

describe('parseMajorMinor', () => {
  test.each<[string, number, number]>([
    ['254:0\n', 254, 0],
    ['8:17', 8, 17],
    [' 259:3 ', 259, 3],
  ])('%j', (text, major, minor) => {
    expect(parseMajorMinor(text)).toEqual({ major, minor });
  });
  test.each(['', '8', '8:', ':1', 'a:b', '8:1:2'])('%j is refused', (text) => {
    expect(() => parseMajorMinor(text)).toThrow(InvalidInput);
  });
});

describe('wholeDiskSysfsDir', () => {
  test.each<[string, boolean, string]>([
    ['/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda', false, '/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda'],
    ['/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1', true, '/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda'],
    ['/sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p2', true, '/sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1'],
    ['/sys/devices/virtual/block/dm-0', false, '/sys/devices/virtual/block/dm-0'],
    ['/sys/devices/virtual/block/loop0/loop0p1/', true, '/sys/devices/virtual/block/loop0'],
  ])('%s (partition=%s)', (dir, isPartition, expected) => {
    expect(wholeDiskSysfsDir(dir, isPartition)).toBe(expected);
  });
});

describe('mountinfo', () => {
  const text = [
    '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard',
    '42 27 254:0 /var/lib/docker /var/lib/docker rw,relatime shared:1 - ext4 /dev/vda rw',
    '50 27 0:45 / /srv/my\\040data rw - btrfs /dev/sdb1 rw,space_cache',
    '51 50 0:46 / /srv/my\\040data/sub rw - tmpfs tmpfs rw',
    '52 27 0:47 / /var/lib/docker rw master:3 - btrfs /dev/sdc rw',
  ].join('\n');
  const mounts = parseMountInfo(text);

  test('parses fields, optional fields and escapes', () => {
    expect(mounts[1]).toEqual({
      majorMinor: '254:0', root: '/var/lib/docker', mountPoint: '/var/lib/docker', fsType: 'ext4', source: '/dev/vda', superOptions: ['rw'],
    });
    expect(mounts[2].mountPoint).toBe('/srv/my data');
  });

  test.each<[string, string]>([
    ['/', '/'],
    ['/etc/passwd', '/'],
    ['/srv/my data/x', '/srv/my data'],
    ['/srv/my data/sub/y', '/srv/my data/sub'],
    ['/srv/my database', '/'],
    ['/var/lib/docker/overlay2', '/var/lib/docker'],
  ])('%s is on %s', (p, mountPoint) => {
    expect(mountForPath(mounts, p)?.mountPoint).toBe(mountPoint);
  });

  test('the mount on top wins', () => {
    expect(mountForPath(mounts, '/var/lib/docker/x')?.source).toBe('/dev/sdc');
  });

  test('a malformed line is refused', () => {
    expect(() => parseMountInfo('1 2 3')).toThrow(/unexpected mountinfo line/);
  });
});

/** A fake /sys tree: block devices as sysfs lays them out, /sys/dev/block links into it. */
function makeSysfs(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cgroup-blkio-'));
  const mk = (rel: string, files: Record<string, string>) => {
    const dir = path.join(root, rel);
    fs.mkdirSync(dir, { recursive: true });
    for (const [f, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), content);
    }
  };
  const link = (majMin: string, target: string) => {
    fs.mkdirSync(path.join(root, 'sys/dev/block'), { recursive: true });
    fs.symlinkSync(`../../${target}`, path.join(root, 'sys/dev/block', majMin));
  };
  mk('sys/devices/pci0/virtio1/block/vda', { dev: '254:0\n' });
  link('254:0', 'devices/pci0/virtio1/block/vda');
  mk('sys/devices/pci0/ata1/block/sda', { dev: '8:0\n' });
  mk('sys/devices/pci0/ata1/block/sda/sda2', { dev: '8:2\n', partition: '2\n' });
  link('8:2', 'devices/pci0/ata1/block/sda/sda2');
  mk('sys/devices/pci0/nvme/nvme0/nvme0n1', { dev: '259:0\n' });
  mk('sys/devices/pci0/nvme/nvme0/nvme0n1/nvme0n1p1', { dev: '259:1\n', partition: '1\n' });
  link('259:1', 'devices/pci0/nvme/nvme0/nvme0n1/nvme0n1p1');
  mk('sys/devices/virtual/block/dm-0', { dev: '253:0\n', 'dm/name': 'vg0-docker\n' });
  link('253:0', 'devices/virtual/block/dm-0');
  return root;
}

describe('wholeDiskForDevice (fixture sysfs)', () => {
  let root: string;
  beforeAll(() => {
    root = makeSysfs();
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test.each<[string, number, number, Record<string, unknown>, string | undefined]>([
    ['virtio whole disk', 254, 0, { majorMinor: '254:0', major: 254, minor: 0, name: 'vda' }, undefined],
    ['SCSI partition -> its disk', 8, 2, { majorMinor: '8:0', name: 'sda', partition: { name: 'sda2', major: 8, minor: 2 } }, 'sda2'],
    ['nvme partition -> namespace', 259, 1, { majorMinor: '259:0', name: 'nvme0n1', partition: { name: 'nvme0n1p1', major: 259, minor: 1 } }, 'nvme0n1p1'],
    ['device-mapper as is', 253, 0, { majorMinor: '253:0', name: 'dm-0', dmName: 'vg0-docker' }, undefined],
  ])('%s', async (_name, major, minor, expected, partitionName) => {
    const dev = await wholeDiskForDevice(major, minor, { rootPrefix: root });
    expect(dev).toMatchObject(expected);
    expect(dev.partition?.name).toBe(partitionName);
    // The fixture has no device nodes.
    expect(dev.devNode).toBeNull();
  });

  test('an unknown device is NotFound', async () => {
    await expect(wholeDiskForDevice(9, 9, { rootPrefix: root })).rejects.toBeInstanceOf(NotFound);
  });
});
