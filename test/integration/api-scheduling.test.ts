/**
 * Scheduling over HTTP with two real compute hosts sharing one cloud (database, exchange, topic):
 * anti-affinity spreads a server group and refuses when it cannot, a disabled host is skipped,
 * the least loaded host wins, affinity keeps a group together.
 */
import { startHarness, TEST_IMAGE, type ComputeHarness } from '../helpers/compute-harness';
import { expectErrorShape, startApi, type ApiFixture } from './api-fixture';

jest.setTimeout(240000);

let a: ComputeHarness;
let b: ComputeHarness;
let api: ApiFixture;

const body = (name: string, over: Record<string, unknown> = {}) => ({
  name, project_id: 'proj-sched', image: TEST_IMAGE, hostname: name, networks: [],
  flavor: { vcpus: 1, memory_mb: 64, cpu_policy: 'shared', pids_limit: 64 }, ...over,
});

async function create(name: string, over: Record<string, unknown> = {}): Promise<{ uuid: string; host: string }> {
  const r = await api.call('POST', '/instances', { body: body(name, over) });
  if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${r.text}`);
  return r.body.instance;
}

beforeAll(async () => {
  a = await startHarness('apisch');
  b = await startHarness('apisch', { sameCloudAs: a });
  api = await startApi(a);
});

afterAll(async () => {
  await api?.close();
  await b?.close();
  await a?.close();
});

afterEach(async () => {
  // Each test starts from two empty, enabled hosts.
  for (const r of (await api.call('GET', '/instances?limit=1000')).body.instances as Array<{ uuid: string }>) {
    await api.call('DELETE', `/instances/${r.uuid}`);
  }
  await api.call('POST', `/hosts/${a.host}/enable`);
  await api.call('POST', `/hosts/${b.host}/enable`);
});

test('anti-affinity puts two members on different hosts and refuses a third (409 no_capacity)', async () => {
  const g = { name: 'web-group', policy: 'anti-affinity' };
  const m1 = await create('m1', { server_group: g });
  const m2 = await create('m2', { server_group: g });
  expect([m1.host, m2.host].sort()).toEqual([a.host, b.host].sort());
  const r = await api.call('POST', '/instances', { body: body('m3', { server_group: g }) });
  expectErrorShape(r, 409, 'no_capacity');
  expect(r.body.error.details.rejected).toEqual({
    [a.host]: 'anti-affinity: a member of server group web-group is already on this host',
    [b.host]: 'anti-affinity: a member of server group web-group is already on this host',
  });
  // Concurrent creates in one group are serialised: never two members on one host.
  await api.call('DELETE', `/instances/${m2.uuid}`);
  const race = await Promise.all(['r1', 'r2'].map((n) => api.call('POST', '/instances', { body: body(n, { server_group: g }) })));
  expect(race.map((x) => x.status).sort()).toEqual([201, 409]);
  const hosts = (await api.call('GET', '/instances')).body.instances.map((i: { host: string }) => i.host);
  expect(new Set(hosts).size).toBe(hosts.length);
});

test('affinity keeps a group on the host of its first member', async () => {
  const g = { name: 'pair', policy: 'affinity' };
  const p1 = await create('p1', { server_group: g });
  const p2 = await create('p2', { server_group: g });
  const p3 = await create('p3', { server_group: g });
  expect(p2.host).toBe(p1.host);
  expect(p3.host).toBe(p1.host);
});

test('the least loaded host wins; a disabled host is skipped; both disabled is 409', async () => {
  const first = await create('l1');
  const second = await create('l2');
  expect(second.host).not.toBe(first.host); // the first host now carries 64 MB more
  await api.call('POST', `/hosts/${a.host}/disable`, { body: { reason: 'drain' } });
  for (const n of ['d1', 'd2']) expect((await create(n)).host).toBe(b.host);
  await api.call('POST', `/hosts/${b.host}/disable`);
  const r = await api.call('POST', '/instances', { body: body('none') });
  expectErrorShape(r, 409, 'no_capacity');
  expect(r.body.error.details.rejected).toMatchObject({ [a.host]: 'disabled', [b.host]: 'disabled' });
});

test('a host with a stale heartbeat (or none) is never scheduled to', async () => {
  // Fake hosts with plenty of room: only their heartbeat keeps them out. The real hosts are
  // disabled so nothing else can take the instance.
  const stale = `stale-${a.host.slice(-6)}`;
  const never = `never-${a.host.slice(-6)}`;
  await a.t.db('hosts').insert([
    { name: stale, vcpus: 64, memory_mb: 1 << 20, heartbeat_at: new Date(Date.now() - 300_000) },
    { name: never, vcpus: 64, memory_mb: 1 << 20, heartbeat_at: null },
  ]);
  try {
    await api.call('POST', `/hosts/${a.host}/disable`);
    await api.call('POST', `/hosts/${b.host}/disable`);
    const r = await api.call('POST', '/instances', { body: body('stale') });
    expectErrorShape(r, 409, 'no_capacity');
    expect(r.body.error.details.rejected[stale]).toMatch(/^heartbeat 300 s old \(max 60 s\)$/);
    expect(r.body.error.details.rejected[never]).toBe('never sent a heartbeat');
    const hosts = (await api.call('GET', '/hosts')).body.hosts as Array<{ name: string; up: boolean; heartbeat_age_sec: number | null }>;
    expect(hosts.find((x) => x.name === stale)).toMatchObject({ up: false });
    expect(hosts.find((x) => x.name === never)).toMatchObject({ up: false, heartbeat_age_sec: null });
  } finally {
    await a.t.db('hosts').whereIn('name', [stale, never]).del();
  }
});
