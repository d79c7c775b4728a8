import { InvalidInput } from '../../services/errors';
import {
  parseImageRef,
  validateAbsPath,
  validateContainerName,
  validateCpuset,
  validateDevicePath,
  validateEnv,
  validateHostname,
  validateImageRefOrId,
  validateLabelFilter,
  validateLabelKey,
  validateLabels,
} from '../../drivers/docker/validation';
import { devnameFromUevent, resolveBlockDevicePath } from '../../drivers/docker/block-device';

function refused(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (err) {
    if (err instanceof InvalidInput) return true;
    throw err;
  }
}

describe('container names', () => {
  test.each([
    ['ddtest-1a2b', true],
    ['instance-0000001', true],
    ['a', true],
    ['A.b_c-d', true],
    ['a'.repeat(128), true],
    ['a'.repeat(129), false],
    ['-leading-dash', false],
    ['.hidden', false],
    ['_x', false],
    ['', false],
    ['has space', false],
    ['slash/name', false],
    ['../etc', false],
    ['name?x=1', false],
    ['ünicode', false],
    ['a\nb', false],
  ])('%j -> valid %s', (name, ok) => {
    expect(refused(() => validateContainerName(name))).toBe(!ok);
  });
});

describe('image references', () => {
  test.each([
    ['busybox', { repository: 'busybox' }],
    ['busybox:latest', { repository: 'busybox', tag: 'latest' }],
    ['compute-test/busybox:latest', { repository: 'compute-test/busybox', tag: 'latest' }],
    ['127.0.0.1:5000/proj/uuid:mig-7', { registry: '127.0.0.1:5000', repository: '127.0.0.1:5000/proj/uuid', tag: 'mig-7' }],
    ['localhost/x', { registry: 'localhost', repository: 'localhost/x' }],
    ['registry.example.com/a/b__c/d-e.f:V1.2_3', { registry: 'registry.example.com', repository: 'registry.example.com/a/b__c/d-e.f', tag: 'V1.2_3' }],
    ['Registry.Example.com:443/x', { registry: 'Registry.Example.com:443', repository: 'Registry.Example.com:443/x' }],
    [`x@sha256:${'a'.repeat(64)}`, { repository: 'x', digest: `sha256:${'a'.repeat(64)}` }],
    [`r:5000/x:t@sha256:${'0'.repeat(64)}`, { registry: 'r:5000', repository: 'r:5000/x', tag: 't', digest: `sha256:${'0'.repeat(64)}` }],
  ])('%s parses', (ref, expected) => {
    expect(parseImageRef(ref)).toEqual(expected);
  });

  test.each([
    '',
    'UPPER/case',
    'Busybox',
    'busybox:',
    ':tag',
    'a//b',
    '/abs',
    'a/',
    'a..b',
    'a/../b',
    'busybox?x=1',
    'busybox#frag',
    'bus box',
    'x:-tag',
    `x:${'t'.repeat(129)}`,
    'x@sha256:short',
    'x@md5:aaaa',
    'host:99999999/x',
    'a'.repeat(256),
    '127.0.0.1:5000/x:tag/extra',
  ])('%j is refused', (ref) => {
    expect(refused(() => parseImageRef(ref))).toBe(true);
  });

  test('image ids are accepted where an image is named, short ids are not', () => {
    expect(validateImageRefOrId(`sha256:${'f'.repeat(64)}`)).toBe(`sha256:${'f'.repeat(64)}`);
    expect(refused(() => validateImageRefOrId('sha256:fff'))).toBe(true);
  });
});

describe('labels', () => {
  test.each([
    ['compute.instance-uuid', true],
    ['compute.test', true],
    ['com.docker.compose.project', true],
    ['a', true],
    ['a_b', true],
    ['Compute.Test', false],
    ['.compute', false],
    ['compute.', false],
    ['has space', false],
    ['a=b', false],
    ['', false],
    ['k'.repeat(129), false],
  ])('key %j -> valid %s', (key, ok) => {
    expect(refused(() => validateLabelKey(key))).toBe(!ok);
  });

  test.each([
    [{ 'compute.test': 'docker-driver' }, true],
    [{ 'compute.test': '' }, true],
    [{ 'compute.test': 'line\nbreak' }, false],
    [{ 'compute.test': 'x'.repeat(1025) }, false],
    [{ 'BAD KEY': 'x' }, false],
  ])('%j -> valid %s', (labels, ok) => {
    expect(refused(() => validateLabels(labels))).toBe(!ok);
  });

  test.each([
    ['compute.test', true],
    ['compute.test=docker-driver', true],
    ['compute.test=', true],
    ['=value', false],
    ['Bad=1', false],
  ])('filter %j -> valid %s', (f, ok) => {
    expect(refused(() => validateLabelFilter(f))).toBe(!ok);
  });
});

describe('other fields', () => {
  test.each([
    ['0', true],
    ['0-3', true],
    ['0,2,4-7', true],
    ['3-1', false],
    ['0-', false],
    [',1', false],
    ['a', false],
    ['0 1', false],
  ])('cpuset %j -> valid %s', (v, ok) => {
    expect(refused(() => validateCpuset(v))).toBe(!ok);
  });

  test.each([
    ['web-198-18-0-5', true],
    ['a', true],
    ['x'.repeat(63), true],
    ['x'.repeat(64), false],
    ['-web', false],
    ['web-', false],
    ['under_score', false],
    ['dotted.name', false],
  ])('hostname %j -> valid %s', (v, ok) => {
    expect(refused(() => validateHostname(v))).toBe(!ok);
  });

  test.each([
    ['/var/lib/compute/volumes/x', true],
    ['/etc/hosts', true],
    ['relative/path', false],
    ['/a/../etc', false],
    ['/a/./b', false],
    ['/a:b', false],
    ['/a,b', false],
    ['/a b', false],
  ])('path %j -> valid %s', (v, ok) => {
    expect(refused(() => validateAbsPath(v, 'path'))).toBe(!ok);
  });

  test.each([
    ['/dev/vda', true],
    ['/dev/block/254:0', true],
    ['/dev/../etc/passwd', false],
    ['/etc/passwd', false],
  ])('device %j -> valid %s', (v, ok) => {
    expect(refused(() => validateDevicePath(v))).toBe(!ok);
  });

  test('env becomes KEY=value, bad names refused', () => {
    expect(validateEnv({ A: '1', B_2: 'x=y z' })).toEqual(['A=1', 'B_2=x=y z']);
    expect(refused(() => validateEnv({ '1A': 'x' }))).toBe(true);
    expect(refused(() => validateEnv({ 'A-B': 'x' }))).toBe(true);
  });
});

describe('block devices for blkio', () => {
  test('DEVNAME from a uevent', () => {
    expect(devnameFromUevent('MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n')).toBe('vda');
    expect(devnameFromUevent('MAJOR=254\n')).toBeNull();
  });

  const io = (files: Record<string, string>, nodes: string[] = []) => ({
    readText: async (p: string) => {
      if (p in files) return files[p];
      throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
    },
    exists: async (p: string) => nodes.includes(p),
  });

  test.each([
    ['path given', { path: '/dev/sdb' }, io({}), '/dev/sdb'],
    ['udev link', { major: 8, minor: 0 }, io({}, ['/dev/block/8:0']), '/dev/block/8:0'],
    ['sysfs DEVNAME', { major: 254, minor: 0 }, io({ '/sys/dev/block/254:0/uevent': 'MAJOR=254\nMINOR=0\nDEVNAME=vda\n' }), '/dev/vda'],
  ])('%s', async (_what, dev, fsio, expected) => {
    await expect(resolveBlockDevicePath(dev, fsio)).resolves.toBe(expected);
  });

  test('unknown numbers: NotFound; bad numbers: InvalidInput', async () => {
    await expect(resolveBlockDevicePath({ major: 9, minor: 9 }, io({}))).rejects.toMatchObject({ code: 'not_found' });
    await expect(resolveBlockDevicePath({ major: -1, minor: 0 }, io({}))).rejects.toBeInstanceOf(InvalidInput);
    await expect(resolveBlockDevicePath({ path: '/etc/passwd' }, io({}))).rejects.toBeInstanceOf(InvalidInput);
  });
});
