import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { hostsPath, writeInPlace, padForInPlace } from '../../services/compute/hosts-file-writer';

const run = promisify(execFile);
const IMAGE = 'compute-test/busybox:latest';

describe('hosts file rewritten in place is seen by the running container', () => {
  let stateDir: string;
  let name: string;
  const uuid = crypto.randomUUID();

  beforeAll(async () => {
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hostsfile-'));
    name = `hftest-${crypto.randomBytes(4).toString('hex')}`;
  });
  afterAll(async () => {
    await run('docker', ['rm', '-f', name]).catch(() => undefined);
    await fs.rm(stateDir, { recursive: true, force: true });
  });

  test('a bind-mounted /etc/hosts follows every rewrite, growing and shrinking', async () => {
    const file = hostsPath(stateDir, uuid);
    await writeInPlace(file, '127.0.0.1 localhost\n198.18.0.10 a.example a\n');
    const inode = (await fs.stat(file)).ino;
    await run('docker', ['run', '-d', '--name', name, '--label', 'compute.test=hosts-file', '--net=none',
      '-v', `${file}:/etc/hosts:ro`, IMAGE]);
    const inside = async () => (await run('docker', ['exec', name, 'cat', '/etc/hosts'])).stdout;
    expect(await inside()).toContain('198.18.0.10 a.example a');

    const grown = '127.0.0.1 localhost\n198.18.0.10 a.example a\n198.18.0.11 b.example b\n198.18.0.12 c.example c\n';
    expect(await writeInPlace(file, grown)).toBe(true);
    expect(await inside()).toBe(grown);

    const shrunk = '127.0.0.1 localhost\n198.18.0.12 c.example c\n';
    await writeInPlace(file, shrunk);
    expect(await inside()).toBe(shrunk);
    expect((await fs.stat(file)).ino).toBe(inode); // same inode, so the mount keeps following
    expect(await writeInPlace(file, shrunk)).toBe(false); // unchanged: no write
    // the name resolves through the file inside the container
    // (busybox ping prints the resolved address before it fails to send on --net=none)
    const ping = await run('docker', ['exec', name, 'ping', '-c', '1', '-W', '1', 'c']).catch((e) => e);
    expect(`${ping.stdout ?? ''}${ping.stderr ?? ''}`).toContain('198.18.0.12');
  });

  test.each([
    ['abc', 0, 'abc'],
    ['abc', 5, 'abc\n\n'],
    ['abcdef', 3, 'abcdef'],
  ])('padForInPlace(%j, %d)', (text, old, want) => {
    expect(padForInPlace(text, old).toString()).toBe(want);
  });

  test('a non-uuid instance id never becomes a path', () => {
    expect(() => hostsPath(stateDir, '../../etc')).toThrow(/not an instance uuid/);
  });
});
