import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DockerodeDriver, INSTANCE_LABEL, type ContainerSpec, type DockerEvent, type ProgressEvent } from '../../drivers/docker';
import { Conflict, InvalidInput, NotFound, Timeout, Unavailable } from '../../services/errors';
import { dockerDriverContract } from '../helpers/docker-driver-contract';

/**
 * Against the real dockerd (scripts/bootstrap): limits are checked in the container's own
 * cgroup files, not in what Docker says it set.
 */
const SOCKET = process.env.COMPUTE_DOCKER_SOCKET ?? '/var/run/docker.sock';
const IMAGE = process.env.COMPUTE_TEST_IMAGE ?? 'compute-test/busybox:latest';
const REGISTRY = '127.0.0.1:5000';
/** Per-run label: the sweep below never touches another run's (or engineer's) containers. */
const RUN = crypto.randomBytes(4).toString('hex');
const RUN_LABEL = 'compute.test-run';

const driver = new DockerodeDriver({ socketPath: SOCKET, timeoutMs: 30_000, concurrency: 4 });
const images = new Set<string>();
const tmpFiles: string[] = [];

function rand(): string {
  return crypto.randomBytes(4).toString('hex');
}

function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  const name = `ddtest-${rand()}`;
  return {
    name,
    image: IMAGE,
    hostname: name,
    labels: { 'compute.test': 'docker-driver', [RUN_LABEL]: RUN, [INSTANCE_LABEL]: crypto.randomUUID() },
    ...over,
  };
}

async function sweep(): Promise<void> {
  for (const c of await driver.listByLabel([`${RUN_LABEL}=${RUN}`])) {
    await driver.remove(c.id, { force: true }).catch(() => undefined);
  }
}

async function cat(id: string, file: string): Promise<string> {
  const r = await driver.exec(id, ['cat', file]);
  expect(r).toMatchObject({ exitCode: 0, stderr: '' });
  return r.stdout.trim();
}

/** A whole disk (not a partition, loop or zram) to throttle, as major:minor; null if none. */
function findDisk(): { major: number; minor: number } | null {
  for (const entry of fs.readdirSync('/sys/dev/block')) {
    const uevent = fs.readFileSync(`/sys/dev/block/${entry}/uevent`, 'utf8');
    if (/^DEVTYPE=disk$/m.test(uevent) && !/^DEVNAME=(loop|zram|ram|sr)/m.test(uevent)) {
      const [major, minor] = entry.split(':').map(Number);
      return { major, minor };
    }
  }
  return null;
}

afterEach(sweep);
afterAll(async () => {
  await sweep();
  for (const ref of images) await driver.removeImage(ref, { force: true }).catch(() => undefined);
  for (const f of tmpFiles) fs.rmSync(f, { force: true, recursive: true });
});

describe('DockerodeDriver against the real engine', () => {
  test('ping and version: API 1.41', async () => {
    await driver.ping();
    const v = await driver.version();
    expect(v.apiVersion).toBe('1.41');
    expect(v.os).toBe('linux');
  });

  test('create applies hostname, network none, cpuset, cpu shares, memory, pids, blkio: read back from the cgroup files', async () => {
    const disk = findDisk();
    const s = spec({
      cpusetCpus: '0',
      cpuShares: 512,
      memoryBytes: 64 * 1024 * 1024,
      memorySwapBytes: 128 * 1024 * 1024,
      pidsLimit: 64,
      blkio: disk ? { readBps: [{ ...disk, rate: 1048576 }], writeIops: [{ ...disk, rate: 300 }] } : undefined,
    });
    const id = await driver.create(s);
    await driver.start(id);

    const info = await driver.inspect(id);
    expect(info).toMatchObject({ id, name: s.name, hostname: s.name, imageRef: IMAGE, labels: s.labels });
    expect(info.state).toMatchObject({ status: 'running', running: true, paused: false, oomKilled: false });
    expect(info.state.pid).toBeGreaterThan(0);
    expect(info.hostConfig).toMatchObject({ networkMode: 'none', cpusetCpus: '0', cpuShares: 512, pidsLimit: 64 });

    expect(await cat(id, '/sys/fs/cgroup/pids/pids.max')).toBe('64');
    expect(await cat(id, '/sys/fs/cgroup/memory/memory.limit_in_bytes')).toBe(String(64 * 1024 * 1024));
    expect(await cat(id, '/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes')).toBe(String(128 * 1024 * 1024));
    expect(await cat(id, '/sys/fs/cgroup/cpuset/cpuset.cpus')).toBe('0');
    expect(await cat(id, '/sys/fs/cgroup/cpu/cpu.shares')).toBe('512');
    expect((await driver.exec(id, ['hostname'])).stdout).toBe(`${s.name}\n`);
    // network none: loopback only
    expect((await driver.exec(id, ['ls', '/sys/class/net'])).stdout.trim().split(/\s+/)).toEqual(['lo']);
    if (disk) {
      expect(await cat(id, '/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device')).toBe(`${disk.major}:${disk.minor} 1048576`);
      expect(await cat(id, '/sys/fs/cgroup/blkio/blkio.throttle.write_iops_device')).toBe(`${disk.major}:${disk.minor} 300`);
    }
  });

  test('update changes the limits of a running container live', async () => {
    const id = await driver.create(spec({ cpusetCpus: '0', cpuShares: 512, memoryBytes: 64 << 20, memorySwapBytes: 64 << 20, pidsLimit: 64 }));
    await driver.start(id);
    const pidBefore = (await driver.inspect(id)).state.pid;
    const cpus = os.cpus().length > 1 ? '0-1' : '0';

    await driver.update(id, { cpusetCpus: cpus, cpuShares: 2048, memoryBytes: 128 << 20, memorySwapBytes: 256 << 20, pidsLimit: 100 });

    expect(await cat(id, '/sys/fs/cgroup/pids/pids.max')).toBe('100');
    expect(await cat(id, '/sys/fs/cgroup/memory/memory.limit_in_bytes')).toBe(String(128 << 20));
    expect(await cat(id, '/sys/fs/cgroup/cpuset/cpuset.cpus')).toBe(cpus);
    expect(await cat(id, '/sys/fs/cgroup/cpu/cpu.shares')).toBe('2048');
    const after = await driver.inspect(id);
    expect(after.state.pid).toBe(pidBefore); // same process: changed live, not restarted
    expect(after.hostConfig).toMatchObject({ cpusetCpus: cpus, cpuShares: 2048, memoryBytes: 128 << 20, pidsLimit: 100 });

    // dockerd ignores blkio in /update: refused instead of pretending.
    await expect(driver.update(id, { blkio: { readBps: [{ path: '/dev/null', rate: 1 }] } })).rejects.toBeInstanceOf(InvalidInput);
  });

  test('start, stop, kill and remove are idempotent', async () => {
    const id = await driver.create(spec());
    await driver.start(id);
    await driver.start(id); // 304
    const t0 = Date.now();
    await driver.stop(id, 10);
    expect(Date.now() - t0).toBeLessThan(5000); // init-wait exits on SIGTERM: no kill timeout
    await driver.stop(id, 10); // 304
    expect((await driver.inspect(id)).state).toMatchObject({ running: false, status: 'exited', exitCode: 0 });
    await driver.kill(id); // not running
    await driver.start(id);
    await driver.kill(id);
    await driver.kill(id);
    await driver.remove(id, { force: true });
    await driver.remove(id, { force: true }); // 404
    await driver.stop(id, 1); // gone
    await expect(driver.inspect(id)).rejects.toBeInstanceOf(NotFound);
    await expect(driver.start(id)).rejects.toBeInstanceOf(NotFound);
  });

  test('pause and unpause, each twice', async () => {
    const id = await driver.create(spec());
    await driver.start(id);
    await driver.pause(id);
    await driver.pause(id);
    expect((await driver.inspect(id)).state).toMatchObject({ status: 'paused', paused: true, running: true });
    await driver.unpause(id);
    await driver.unpause(id);
    expect((await driver.inspect(id)).state).toMatchObject({ status: 'running', paused: false });
    await driver.stop(id, 5);
    await expect(driver.pause(id)).rejects.toBeInstanceOf(Conflict); // stopped: a real conflict
  });

  test('create finds its own container after a crash, refuses a stranger', async () => {
    const s = spec();
    const id = await driver.create(s);
    expect(await driver.create(s)).toBe(id);
    const other = { ...s, labels: { ...s.labels, [INSTANCE_LABEL]: crypto.randomUUID() } };
    await expect(driver.create(other)).rejects.toBeInstanceOf(Conflict);
  });

  test('managed /etc/hosts and resolv.conf, binds, env and command', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddtest-'));
    tmpFiles.push(dir);
    const hosts = path.join(dir, 'hosts');
    const resolv = path.join(dir, 'resolv.conf');
    fs.writeFileSync(hosts, '127.0.0.1 localhost\n198.18.0.5 web-0-5.example.test web-0-5\n');
    fs.writeFileSync(resolv, 'nameserver 198.18.0.1\n');
    fs.mkdirSync(path.join(dir, 'vol'));
    fs.writeFileSync(path.join(dir, 'vol', 'data.txt'), 'payload');
    const id = await driver.create(
      spec({
        hostsFile: hosts,
        resolvConfFile: resolv,
        binds: [{ hostPath: path.join(dir, 'vol'), containerPath: '/data', readOnly: true }],
        env: { GREETING: 'hello world' },
      }),
    );
    await driver.start(id);
    expect(await cat(id, '/etc/hosts')).toBe(fs.readFileSync(hosts, 'utf8').trim());
    expect(await cat(id, '/etc/resolv.conf')).toBe('nameserver 198.18.0.1');
    expect(await cat(id, '/data/data.txt')).toBe('payload');
    expect((await driver.exec(id, ['sh', '-c', 'echo "$GREETING"'])).stdout).toBe('hello world\n');
    const ro = await driver.exec(id, ['sh', '-c', 'echo x > /data/new']);
    expect(ro.exitCode).not.toBe(0);
    expect(ro.stderr).toMatch(/Read-only/i);
    // A missing host path fails instead of Docker creating an empty directory.
    await expect(driver.create(spec({ binds: [{ hostPath: path.join(dir, 'missing'), containerPath: '/x', readOnly: false }] }))).rejects.toBeInstanceOf(
      InvalidInput,
    );
  });

  test('exec returns exit code, stdout and stderr apart', async () => {
    const id = await driver.create(spec());
    await driver.start(id);
    expect(await driver.exec(id, ['sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
    const big = await driver.exec(id, ['sh', '-c', 'i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done']);
    expect(big.stdout.split('\n')).toHaveLength(3001);
  });

  test('logs returns the last lines of a non-TTY container, demultiplexed', async () => {
    const id = await driver.create(
      spec({ command: ['sh', '-c', 'for i in 1 2 3 4 5; do echo line$i; done; sleep 0.3; echo oops >&2; exec /sbin/init-wait'] }),
    );
    await driver.start(id);
    let text = '';
    for (let i = 0; i < 50 && !text.includes('oops'); i++) {
      text = await driver.logs(id, 3);
      if (!text.includes('oops')) await new Promise((r) => setTimeout(r, 100));
    }
    expect(text).toBe('line4\nline5\noops\n');
    expect(await driver.logs(id, 0)).toBe('');
  });

  test('listByLabel finds exactly the labelled containers', async () => {
    const a = spec();
    const b = spec();
    const idA = await driver.create(a);
    const idB = await driver.create(b);
    await driver.start(idA);
    const all = await driver.listByLabel([`${RUN_LABEL}=${RUN}`, 'compute.test=docker-driver']);
    expect(all.map((c) => c.name).sort()).toEqual([a.name, b.name].sort());
    const one = await driver.listByLabel([`${INSTANCE_LABEL}=${b.labels[INSTANCE_LABEL]}`]);
    expect(one).toEqual([expect.objectContaining({ id: idB, name: b.name, status: 'created', imageRef: IMAGE, labels: b.labels })]);
  });

  test('commit, push to the registry, remove, pull back', async () => {
    const id = await driver.create(spec({ command: ['sh', '-c', 'echo migrated > /root/state; exec /sbin/init-wait'] }));
    await driver.start(id);
    for (let i = 0; i < 50; i++) {
      if ((await driver.exec(id, ['cat', '/root/state'])).exitCode === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await driver.stop(id, 10);
    const repo = `${REGISTRY}/ddtest/${rand()}`;
    const ref = `${repo}:mig-1`;
    images.add(ref);
    const imageId = await driver.commit(id, { repo, tag: 'mig-1', labels: { 'compute.migration-id': '42' } });
    expect(imageId).toMatch(/^sha256:[a-f0-9]{64}$/);
    const local = await driver.imageInspect(ref);
    expect(local.id).toBe(imageId);
    expect(local.labels['compute.migration-id']).toBe('42');

    const progress: ProgressEvent[] = [];
    const pushed = await driver.push(ref, { onProgress: (e) => progress.push(e) });
    expect(pushed.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(progress.length).toBeGreaterThan(0);
    expect((await driver.imageInspect(ref)).repoDigests).toContain(`${repo}@${pushed.digest}`);

    await driver.remove(id, { force: true });
    await driver.removeImage(ref);
    await driver.removeImage(ref); // gone already
    await expect(driver.imageInspect(ref)).rejects.toBeInstanceOf(NotFound);

    const pulled = await driver.pull(ref);
    expect(pulled.digest).toBe(pushed.digest);
    expect((await driver.imageInspect(ref)).repoDigests).toContain(`${repo}@${pushed.digest}`);

    // The pulled image carries the container's state.
    const back = await driver.create(spec({ image: ref, command: ['cat', '/root/state'] }));
    await driver.start(back);
    let out = '';
    for (let i = 0; i < 50 && out === ''; i++) {
      out = await driver.logs(back, 10);
      if (out === '') await new Promise((r) => setTimeout(r, 50));
    }
    expect(out).toBe('migrated\n');
  });

  test('push to a closed port fails with the registry named, not silently', async () => {
    const ref = `127.0.0.1:5999/ddtest/${rand()}:x`;
    images.add(ref);
    await driver.tag(IMAGE, ref);
    const err = await driver.push(ref).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Unavailable);
    expect((err as Error).message).toMatch(/127\.0\.0\.1:5999.*connection refused/);
  });

  test('pull of an image the registry does not have is NotFound', async () => {
    await expect(driver.pull(`${REGISTRY}/ddtest/${rand()}:nope`)).rejects.toBeInstanceOf(NotFound);
  });

  test('events: a subscription sees the start of a labelled container, and stops', async () => {
    const seen: DockerEvent[] = [];
    const errors: Error[] = [];
    const stop = await driver.events(
      { type: ['container'], event: ['start'], label: [`${RUN_LABEL}=${RUN}`] },
      (e) => seen.push(e),
      (e) => errors.push(e),
    );
    try {
      const id = await driver.create(spec());
      await driver.start(id);
      for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(seen).toEqual([expect.objectContaining({ type: 'container', action: 'start', id })]);
      expect(seen[0].attributes[RUN_LABEL]).toBe(RUN);
    } finally {
      stop();
    }
    expect(errors).toEqual([]);
  });

  test('names and references are refused before any call', async () => {
    // A driver whose socket does not exist: InvalidInput (not Unavailable) proves no call was made.
    const offline = new DockerodeDriver({ socketPath: '/nonexistent/docker.sock', timeoutMs: 1000, concurrency: 1 });
    await expect(offline.create(spec({ name: '-bad' }))).rejects.toBeInstanceOf(InvalidInput);
    await expect(offline.create(spec({ image: 'UPPER/case' }))).rejects.toBeInstanceOf(InvalidInput);
    await expect(offline.create(spec({ hostname: 'under_score' }))).rejects.toBeInstanceOf(InvalidInput);
    await expect(offline.create(spec({ labels: { 'Bad Key': 'x' } }))).rejects.toBeInstanceOf(InvalidInput);
    await expect(offline.start('../../images/x')).rejects.toBeInstanceOf(InvalidInput);
    await expect(offline.pull('busybox?x=1')).rejects.toBeInstanceOf(InvalidInput);
    await expect(offline.push('127.0.0.1:5000/no-tag')).rejects.toBeInstanceOf(InvalidInput);
    await expect(offline.exec('ok-name', [])).rejects.toBeInstanceOf(InvalidInput);
    await expect(offline.ping()).rejects.toBeInstanceOf(Unavailable);
  });
});

describe('DockerodeDriver deadlines and failures', () => {
  test('a call that outlives its deadline throws Timeout naming the operation', async () => {
    const id = await driver.create(spec());
    await driver.start(id);
    const quick = new DockerodeDriver({ socketPath: SOCKET, timeoutMs: 500, concurrency: 2 });
    const t0 = Date.now();
    const err = await quick.exec(id, ['sleep', '5']).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Timeout);
    expect((err as Error).message).toMatch(/docker exec: no answer within 500 ms/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  test('a call waiting for a slot times out too (bounded concurrency)', async () => {
    // PID 1 without a SIGTERM handler ignores it: stop takes its whole timeout, holding the slot.
    const id = await driver.create(spec({ command: ['sleep', '3600'] }));
    await driver.start(id);
    const tight = new DockerodeDriver({ socketPath: SOCKET, timeoutMs: 400, concurrency: 1 });
    const hog = tight.stop(id, 2); // deadline 400 ms + 2 s
    await new Promise((r) => setTimeout(r, 50));
    const waited = await tight.ping().then(
      () => null,
      (e: unknown) => e,
    );
    expect(waited).toBeInstanceOf(Timeout);
    expect((waited as Error).message).toBe('docker ping: waited 400 ms for one of 1 docker slots');
    await hog;
    await tight.ping(); // the slot came back
    expect((await driver.inspect(id)).state.running).toBe(false);
  });

  test('a daemon that accepts but never answers: Timeout; no socket: Unavailable', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddtest-sock-'));
    tmpFiles.push(dir);
    const sock = path.join(dir, 'hung.sock');
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const hung = new DockerodeDriver({ socketPath: sock, timeoutMs: 300, concurrency: 1 });
      await expect(hung.version()).rejects.toThrow(new Timeout('docker version: no answer within 300 ms'));
      const missing = new DockerodeDriver({ socketPath: path.join(dir, 'none.sock'), timeoutMs: 300, concurrency: 1 });
      const err = await missing.ping().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Unavailable);
      expect((err as Error).cause).toMatchObject({ code: 'ENOENT' });
    } finally {
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => server.close(r));
    }
  });
});

dockerDriverContract('DockerodeDriver', () => ({ driver, image: IMAGE, labels: { 'compute.test': 'docker-driver', [RUN_LABEL]: RUN } }));
