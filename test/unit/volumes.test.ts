import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { resolveVolumes, isWithin } from '../../services/compute/volumes';
import { InvalidInput } from '../../services/errors';

describe('volume binds only under allowed roots', () => {
  let base: string;
  let root: string;
  beforeAll(async () => {
    base = await fs.mkdtemp(path.join(os.tmpdir(), 'vol-'));
    root = path.join(base, 'root');
    await fs.mkdir(path.join(root, 'data'), { recursive: true });
    await fs.mkdir(path.join(base, 'outside'), { recursive: true });
    await fs.symlink(path.join(base, 'outside'), path.join(root, 'escape'));
    await fs.symlink(path.join(root, 'data'), path.join(root, 'alias'));
  });
  afterAll(async () => fs.rm(base, { recursive: true, force: true }));

  test('a path under the root is accepted, missing dirs are created', async () => {
    const r = await resolveVolumes([{ host_path: `${root}/new/dir`, container_path: '/data' }], [root]);
    expect(r).toEqual([{ hostPath: `${root}/new/dir`, containerPath: '/data', readOnly: false }]);
    await expect(fs.stat(`${root}/new/dir`)).resolves.toBeTruthy();
  });

  test('a symlink staying inside the root resolves to its target', async () => {
    const r = await resolveVolumes([{ host_path: `${root}/alias`, container_path: '/d', read_only: true }], [root]);
    expect(r[0].hostPath).toBe(`${root}/data`);
    expect(r[0].readOnly).toBe(true);
  });

  test.each([
    ['relative path', 'data', /must be absolute/],
    ['dot-dot', `/x/../etc`, /must not contain/],
    ['outside root', '/etc', /outside the allowed roots/],
    ['symlink escaping', 'ESCAPE', /outside the allowed roots/],
    ['shell metacharacters', '/tmp/$(reboot)', /characters outside/],
  ])('refused: %s', async (_label, hostPath, msg) => {
    const p = hostPath === 'ESCAPE' ? `${root}/escape/sub` : hostPath;
    await expect(resolveVolumes([{ host_path: p, container_path: '/data' }], [root])).rejects.toThrow(msg);
    await expect(resolveVolumes([{ host_path: p, container_path: '/data' }], [root])).rejects.toBeInstanceOf(InvalidInput);
  });

  test('reserved container paths are refused', async () => {
    await expect(resolveVolumes([{ host_path: `${root}/data`, container_path: '/etc/hosts' }], [root])).rejects.toThrow(/reserved/);
  });

  test.each([
    ['/a', '/a', true],
    ['/a', '/a/b', true],
    ['/a', '/ab', false],
    ['/a', '/', false],
  ])('isWithin(%s, %s) = %s', (r, c, want) => expect(isWithin(r, c)).toBe(want));
});
