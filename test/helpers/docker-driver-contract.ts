import crypto from 'node:crypto';
import { INSTANCE_LABEL, type ContainerSpec, type DockerDriver } from '../../drivers/docker';
import { Conflict, InvalidInput, NotFound } from '../../services/errors';

/**
 * Behaviour every DockerDriver must show, run against the real engine (integration) and the
 * in-memory fake (unit): this is what keeps the fake honest.
 */
export function dockerDriverContract(label: string, make: () => { driver: DockerDriver; image: string; labels: Record<string, string> }): void {
  describe(`DockerDriver contract: ${label}`, () => {
    let driver: DockerDriver;
    let image: string;
    let labels: Record<string, string>;
    const made: string[] = [];

    beforeAll(() => {
      ({ driver, image, labels } = make());
    });
    afterAll(async () => {
      for (const id of made) await driver.remove(id, { force: true }).catch(() => undefined);
    });

    function spec(): ContainerSpec {
      const name = `ddtest-${crypto.randomBytes(4).toString('hex')}`;
      return { name, image, hostname: name, labels: { ...labels, [INSTANCE_LABEL]: crypto.randomUUID() }, pidsLimit: 32 };
    }

    test('lifecycle with every repeat tolerated', async () => {
      const s = spec();
      const id = await driver.create(s);
      made.push(id);
      expect(await driver.create(s)).toBe(id);
      await expect(driver.create({ ...s, labels: { ...s.labels, [INSTANCE_LABEL]: 'someone-else' } })).rejects.toBeInstanceOf(Conflict);
      expect((await driver.inspect(id)).state).toMatchObject({ status: 'created', running: false });
      expect((await driver.inspect(s.name)).id).toBe(id);
      await driver.start(id);
      await driver.start(id);
      expect((await driver.inspect(id)).state).toMatchObject({ status: 'running', running: true });
      await driver.pause(id);
      await driver.pause(id);
      expect((await driver.inspect(id)).state).toMatchObject({ status: 'paused', paused: true });
      await driver.unpause(id);
      await driver.unpause(id);
      await driver.update(id, { pidsLimit: 48 });
      expect((await driver.inspect(id)).hostConfig.pidsLimit).toBe(48);
      await expect(driver.update(id, { blkio: { readBps: [{ path: '/dev/null', rate: 1 }] } })).rejects.toBeInstanceOf(InvalidInput);
      await driver.stop(id, 5);
      await driver.stop(id, 5);
      await driver.kill(id);
      expect((await driver.inspect(id)).state).toMatchObject({ status: 'exited', running: false });
      await expect(driver.pause(id)).rejects.toBeInstanceOf(Conflict);
      await driver.remove(id);
      await driver.remove(id);
      await driver.stop(id, 1);
      await expect(driver.inspect(id)).rejects.toBeInstanceOf(NotFound);
    });

    test('running container cannot be removed without force', async () => {
      const id = await driver.create(spec());
      made.push(id);
      await driver.start(id);
      await expect(driver.remove(id)).rejects.toBeInstanceOf(Conflict);
      await driver.remove(id, { force: true });
      await expect(driver.inspect(id)).rejects.toBeInstanceOf(NotFound);
    });

    test('listByLabel and invalid input', async () => {
      const s = spec();
      const id = await driver.create(s);
      made.push(id);
      const found = await driver.listByLabel([`${INSTANCE_LABEL}=${s.labels[INSTANCE_LABEL]}`]);
      expect(found.map((c) => c.id)).toEqual([id]);
      expect(found[0]).toMatchObject({ name: s.name, status: 'created', imageRef: image });
      await expect(driver.create({ ...spec(), name: 'bad name' })).rejects.toBeInstanceOf(InvalidInput);
      await expect(driver.listByLabel([])).rejects.toBeInstanceOf(InvalidInput);
      await expect(driver.create({ ...spec(), image: 'compute-test/no-such-image:latest' })).rejects.toBeInstanceOf(NotFound);
    });

    test('image not found, removal of a missing image tolerated', async () => {
      await expect(driver.imageInspect('compute-test/no-such-image:latest')).rejects.toBeInstanceOf(NotFound);
      await driver.removeImage('compute-test/no-such-image:latest');
    });
  });
}
