import { NetworksRepo } from '../../services/db/networks-repo';
import { freshDatabase, type TestDatabase } from '../helpers/db';
import { uuid } from './network-fixtures';

const NET = {
  name: 'repo-net', type: 'ovs-vlan', bridge: 'br-int', vlan: 101, cidr: '198.18.160.0/28', gateway: '198.18.160.1',
  rangeStart: '198.18.160.0', rangeEnd: '198.18.160.15', hostnameTemplate: '{name}-{o4}', domain: 'local',
};

describe('NetworksRepo on real PostgreSQL', () => {
  let t: TestDatabase;
  let repo: NetworksRepo;
  beforeAll(async () => { t = await freshDatabase('netrepo'); repo = new NetworksRepo(t.db); });
  afterAll(async () => { await t?.drop(); });

  test('create validates, round-trips, refuses duplicates and bad records', async () => {
    await expect(repo.create({ ...NET, rangeStart: '198.18.160.0' })).rejects.toThrow(/range/);
    const ok = { ...NET, rangeStart: '198.18.160.2', rangeEnd: '198.18.160.14' };
    const n = await repo.create(ok);
    expect(n).toEqual({ ...ok, uplink: null, mtu: null });
    expect(await repo.list()).toEqual([n]);
    await expect(repo.create(ok)).rejects.toMatchObject({ code: 'conflict' });
    await expect(repo.create({ ...ok, name: 'other' })).rejects.toThrow(/VLAN 101 is already used/);
    await expect(repo.create({ ...ok, name: 'v4095', vlan: 4095 })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(repo.get('nope')).rejects.toMatchObject({ code: 'not_found' });
  });

  test('concurrent allocation fills the range exactly once, skipping gateway; then NoCapacity', async () => {
    // range .2-.14 minus nothing reserved inside it = 13 addresses; gateway .1 outside range.
    const instances = Array.from({ length: 16 }, () => uuid());
    const results = await Promise.allSettled(instances.map((u) => repo.allocate('repo-net', u)));
    const ok = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<NetworksRepo['allocate']>>> => r.status === 'fulfilled').map((r) => r.value);
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(ok.length).toBe(13);
    expect(new Set(ok.map((a) => a.address)).size).toBe(13);
    expect(ok.map((a) => a.address)).not.toContain('198.18.160.1');
    expect(failed.every((f) => (f.reason as { code: string }).code === 'no_capacity')).toBe(true);
    // Idempotent per instance: a second claim returns the first one.
    const again = await repo.allocate('repo-net', ok[0].instanceUuid);
    expect(again.address).toBe(ok[0].address);
    // Release, then a fixed IP.
    expect(await repo.release('repo-net', ok[0].instanceUuid)).toBe(1);
    expect(await repo.release('repo-net', ok[0].instanceUuid)).toBe(0);
    const fixed = await repo.allocate('repo-net', uuid(), { fixedIp: ok[0].address });
    expect(fixed.address).toBe(ok[0].address);
    await expect(repo.allocate('repo-net', uuid(), { fixedIp: ok[1].address })).rejects.toMatchObject({ code: 'conflict' });
    await expect(repo.allocate('repo-net', uuid(), { fixedIp: '198.18.160.1' })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(repo.allocate('repo-net', uuid(), { fixedIp: '198.18.161.5' })).rejects.toMatchObject({ code: 'invalid_input' });
    expect(fixed.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  });

  test('delete is refused while addresses are allocated, allowed after release', async () => {
    await expect(repo.delete('repo-net')).rejects.toMatchObject({ code: 'conflict' });
    for (const a of await repo.allocationsOf('repo-net')) await repo.release('repo-net', a.instanceUuid);
    await repo.delete('repo-net');
    await expect(repo.delete('repo-net')).rejects.toMatchObject({ code: 'not_found' });
  });
});
