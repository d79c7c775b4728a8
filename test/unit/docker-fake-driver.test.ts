import { INSTANCE_LABEL, type DockerEvent } from '../../drivers/docker';
import { FakeDockerDriver } from '../../drivers/docker/testing/fake-docker-driver';
import { Conflict, Internal, NotFound, Unavailable } from '../../services/errors';
import { dockerDriverContract } from '../helpers/docker-driver-contract';

const IMAGE = 'compute-test/busybox:latest';

dockerDriverContract('FakeDockerDriver', () => ({ driver: new FakeDockerDriver({ images: [IMAGE] }), image: IMAGE, labels: { 'compute.test': 'fake' } }));

describe('FakeDockerDriver specifics', () => {
  const spec = (name: string) => ({ name, image: IMAGE, hostname: name, labels: { [INSTANCE_LABEL]: `uuid-${name}` } });

  test('failNext injects faults in order, then behaves again', async () => {
    const d = new FakeDockerDriver({ images: [IMAGE] });
    d.failNext('start', new Unavailable('dockerd down'));
    d.failNext('start', new Internal('again'));
    const id = await d.create(spec('a'));
    await expect(d.start(id)).rejects.toBeInstanceOf(Unavailable);
    await expect(d.start(id)).rejects.toBeInstanceOf(Internal);
    await d.start(id);
    expect((await d.inspect(id)).state.running).toBe(true);
  });

  test('exitContainer models a crash; start again gets a new pid', async () => {
    const d = new FakeDockerDriver({ images: [IMAGE] });
    const id = await d.create(spec('b'));
    await d.start(id);
    const pid = (await d.inspect(id)).state.pid;
    d.exitContainer(id, 137, true);
    expect((await d.inspect(id)).state).toMatchObject({ status: 'exited', exitCode: 137, oomKilled: true, pid: 0 });
    await d.start(id);
    expect((await d.inspect(id)).state.pid).not.toBe(pid);
  });

  test('exec needs a handler and a running, unpaused container', async () => {
    const plain = new FakeDockerDriver({ images: [IMAGE] });
    const id = await plain.create(spec('c'));
    await expect(plain.exec(id, ['true'])).rejects.toBeInstanceOf(Conflict);
    await plain.start(id);
    await expect(plain.exec(id, ['true'])).rejects.toBeInstanceOf(Internal);

    const d = new FakeDockerDriver({ images: [IMAGE], execHandler: (c, argv) => ({ exitCode: 0, stdout: `${c.hostname}:${argv.join(' ')}\n`, stderr: '' }) });
    const id2 = await d.create(spec('d'));
    await d.start(id2);
    expect(await d.exec(id2, ['hostname'])).toEqual({ exitCode: 0, stdout: 'd:hostname\n', stderr: '' });
    await d.pause(id2);
    await expect(d.exec(id2, ['hostname'])).rejects.toBeInstanceOf(Conflict);
  });

  test('commit, push, remove, pull through the in-memory registry; unreachable registry fails', async () => {
    const d = new FakeDockerDriver({ images: [IMAGE], unreachableRegistries: ['127.0.0.1:5999'] });
    const id = await d.create(spec('e'));
    const ref = '127.0.0.1:5000/p/e:mig-1';
    const imageId = await d.commit(id, { repo: '127.0.0.1:5000/p/e', tag: 'mig-1', labels: { 'compute.migration-id': '1' } });
    expect((await d.imageInspect(ref)).labels).toMatchObject({ 'compute.migration-id': '1', [INSTANCE_LABEL]: 'uuid-e' });
    const { digest } = await d.push(ref);
    await d.removeImage(ref);
    await expect(d.imageInspect(ref)).rejects.toBeInstanceOf(NotFound);
    expect(await d.pull(ref)).toEqual({ digest });
    expect((await d.imageInspect(ref)).id).toBe(imageId);
    await d.tag(ref, '127.0.0.1:5999/p/e:x');
    await expect(d.push('127.0.0.1:5999/p/e:x')).rejects.toBeInstanceOf(Unavailable);
    await expect(d.pull('127.0.0.1:5000/p/none:x')).rejects.toBeInstanceOf(NotFound);
  });

  test('events reach matching subscribers until stopped', async () => {
    const d = new FakeDockerDriver({ images: [IMAGE] });
    const seen: DockerEvent[] = [];
    const stop = await d.events({ type: ['container'], event: ['start', 'die'] }, (e) => seen.push(e));
    const id = await d.create(spec('f'));
    await d.start(id);
    await d.stop(id, 1);
    stop();
    await d.start(id);
    expect(seen.map((e) => e.action)).toEqual(['start', 'die']);
  });

  test('logs tail', async () => {
    const d = new FakeDockerDriver({ images: [IMAGE] });
    const id = await d.create(spec('g'));
    d.appendLogs(id, 'one', 'two', 'three');
    expect(await d.logs(id, 2)).toBe('two\nthree\n');
    expect(await d.logs(id, 0)).toBe('');
  });
});
