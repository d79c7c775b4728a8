/**
 * The admin API over HTTP against a real compute host (Docker, OVS, RabbitMQ, PostgreSQL):
 * every route of api-spec/openapi.yaml, auth failures, validation errors, pagination,
 * 404/409/503, metrics and the host audit. The last test proves every spec operation was hit.
 */
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadOpenApi } from '../../services/api/openapi';
import { startHarness, TEST_IMAGE, type ComputeHarness } from '../helpers/compute-harness';
import { apiNetwork, expectErrorShape, fieldsOf, specKeys, startApi, type ApiFixture } from './api-fixture';

jest.setTimeout(240000);
const run = promisify(execFile);

let h: ComputeHarness;
let api: ApiFixture;
const third = 70 + crypto.randomInt(0, 5); // 198.19.70-74 (api-scheduling uses 75-79)
const vlan = 3400 + crypto.randomInt(0, 50);
const net = `apinet-${crypto.randomBytes(2).toString('hex')}`;
const ghost = `ghost-${crypto.randomBytes(3).toString('hex')}`;
const orphanName = `api-orphan-${crypto.randomBytes(3).toString('hex')}`;
const created: string[] = [];

const flavor = { vcpus: 1, memory_mb: 64, cpu_policy: 'shared', pids_limit: 64 };
const body = (name: string, over: Record<string, unknown> = {}) => ({
  name, project_id: 'proj-api', image: TEST_IMAGE, flavor, networks: [{ network: net }], ...over,
});

beforeAll(async () => {
  h = await startHarness('api');
  api = await startApi(h);
});

afterAll(async () => {
  await api?.close();
  await run('docker', ['rm', '-f', orphanName]).catch(() => undefined);
  await h?.close(); // terminates every instance of the host, drops the database
});

describe('open routes', () => {
  test('GET /healthz, /openapi.json and /metrics need no token', async () => {
    const hz = await api.call('GET', '/healthz', { token: null });
    expect([200, 503]).toContain(hz.status);
    expect(Object.keys(hz.body.dependencies).sort()).toEqual(['broker', 'database', 'docker', 'ovs', 'registry']);
    const spec = await api.call('GET', '/openapi.json', { token: null });
    expect(spec.status).toBe(200);
    expect(spec.body).toEqual(JSON.parse(JSON.stringify(loadOpenApi())));
    expect(spec.body.openapi).toBe('3.1.0');
    const m = await api.call('GET', '/metrics', { token: null });
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toMatch(/text\/plain/);
    expect(m.text).toMatch(/compute_host_up\{host="[^"]+"\} 1/);
  });
});

describe('auth', () => {
  test('no token, a malformed header and an unknown token are 401 in the JSON error shape', async () => {
    const none = await api.call('GET', '/hosts', { token: null });
    expectErrorShape(none, 401, 'unauthorized');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(none.body.error.request_id).toBe(none.headers.get('x-request-id'));
    expectErrorShape(await api.call('GET', '/hosts', { token: null, headers: { authorization: 'Basic Zm9vOmJhcg==' } }), 401, 'unauthorized');
    expectErrorShape(await api.call('GET', '/hosts', { token: 'not-a-configured-token-123456' }), 401, 'unauthorized');
  });

  test('a reader may GET but not change anything (403), before the body is even validated', async () => {
    expect((await api.call('GET', '/hosts', { token: api.tokens.reader })).status).toBe(200);
    const r = await api.call('POST', '/networks', { token: api.tokens.reader, body: { nonsense: true } });
    expectErrorShape(r, 403, 'forbidden');
    expect(r.body.error.message).toMatch(/test-reader.*role reader/);
    expectErrorShape(await api.call('DELETE', `/instances/${crypto.randomUUID()}`, { token: api.tokens.reader }), 403, 'forbidden');
  });

  test('an anonymous bad body is 401, not 400 (auth runs before parsing)', async () => {
    expectErrorShape(await api.call('POST', '/networks', { token: null, rawBody: '{not json' }), 401, 'unauthorized');
  });
});

describe('hosts', () => {
  test('list and show: capacity, usage, pinned CPUs, heartbeat age', async () => {
    const list = await api.call('GET', '/hosts', { token: api.tokens.reader });
    const me = list.body.hosts.find((x: { name: string }) => x.name === h.host);
    expect(me).toMatchObject({ name: h.host, up: true, disabled: false });
    expect(me.capacity.vcpus).toBeGreaterThan(0);
    expect(me.capacity.memory_mb).toBeGreaterThan(0);
    expect(me.heartbeat_age_sec).toBeGreaterThanOrEqual(0);
    expect(me.heartbeat_age_sec).toBeLessThan(60);
    expect(me.usage).toMatchObject({ instances: 0, memory_mb: 0 });
    expect(me.pinned_cpus).toEqual([]);
    const show = await api.call('GET', `/hosts/${h.host}`);
    expect(show.status).toBe(200);
    expect(show.body.host.name).toBe(h.host);
    expectErrorShape(await api.call('GET', '/hosts/no-such-host'), 404, 'not_found');
    const bad = await api.call('GET', '/hosts/Bad_Name');
    expectErrorShape(bad, 400, 'invalid_input');
    expect(fieldsOf(bad)).toEqual(['path.name']);
  });

  test('disable (with a reason) and enable', async () => {
    const d = await api.call('POST', `/hosts/${h.host}/disable`, { body: { reason: 'maintenance' } });
    expect(d.status).toBe(200);
    expect(d.body.host).toMatchObject({ disabled: true, disabled_reason: 'maintenance' });
    const bad = await api.call('POST', `/hosts/${h.host}/disable`, { body: { reason: 'x', when: 'now' } });
    expect(fieldsOf(bad)).toEqual(['body.when']);
    const e = await api.call('POST', `/hosts/${h.host}/enable`);
    expect(e.body.host).toMatchObject({ disabled: false, disabled_reason: null });
    expectErrorShape(await api.call('POST', '/hosts/no-such-host/enable'), 404, 'not_found');
    expectErrorShape(await api.call('POST', '/hosts/no-such-host/disable'), 404, 'not_found');
  });
});

describe('networks', () => {
  test('create validates CIDR, range, VLAN and template, naming the field', async () => {
    const bad1 = await api.call('POST', '/networks', { body: { ...apiNetwork(net, third, vlan), range_start: `198.19.${third === 70 ? 71 : 70}.10` } });
    expectErrorShape(bad1, 400, 'invalid_input');
    expect(fieldsOf(bad1)).toEqual(['body.range_start']);
    const bad2 = await api.call('POST', '/networks', { body: { ...apiNetwork(net, third, vlan), vlan: 4095 } });
    expect(fieldsOf(bad2)).toEqual(['body.vlan']);
    const bad3 = await api.call('POST', '/networks', { body: { ...apiNetwork(net, third, vlan), hostname_template: '{name}_{o4}' } });
    expectErrorShape(bad3, 400, 'invalid_input');
    expect(fieldsOf(bad3)).toEqual(['body.hostname_template']);
    const bad4 = await api.call('POST', '/networks', { body: { ...apiNetwork(net, third, vlan), cidr: 'banana' } });
    expect(fieldsOf(bad4)).toEqual(['body.cidr']);
    const bad5 = await api.call('POST', '/networks', { rawBody: '{"name": ' });
    expectErrorShape(bad5, 400, 'invalid_input');
    const gz = await api.call('POST', '/networks', { rawBody: '{"a":1}', headers: { 'content-encoding': 'gzip' } });
    expectErrorShape(gz, 400, 'invalid_input');
    expect(fieldsOf(gz)).toEqual(['body']);
  });

  test('create, duplicate (409), list, show, unknown (404)', async () => {
    const c = await api.call('POST', '/networks', { body: apiNetwork(net, third, vlan) });
    expect(c.status).toBe(201);
    expect(c.body.network).toMatchObject({ name: net, vlan, cidr: `198.19.${third}.0/24`, range_start: `198.19.${third}.10`, allocated: 0 });
    expectErrorShape(await api.call('POST', '/networks', { body: apiNetwork(net, third, vlan) }), 409, 'conflict');
    const list = await api.call('GET', '/networks', { token: api.tokens.reader });
    expect(list.body.networks.map((n: { name: string }) => n.name)).toContain(net);
    expect((await api.call('GET', `/networks/${net}`)).body.network.name).toBe(net);
    expectErrorShape(await api.call('GET', '/networks/no-such-net'), 404, 'not_found');
    expectErrorShape(await api.call('DELETE', '/networks/no-such-net'), 404, 'not_found');
  });
});

describe('instances', () => {
  test('create validation names the failing fields; unknown network and host are 400', async () => {
    const r1 = await api.call('POST', '/instances', { body: { ...body('x'), colour: 'red', flavor: { vcpus: 0, memory_mb: 64 } } });
    expectErrorShape(r1, 400, 'invalid_input');
    expect(fieldsOf(r1)).toEqual(['body.colour', 'body.flavor.vcpus']);
    const r2 = await api.call('POST', '/instances', { body: body('x', { networks: [{ network: 'no-such-net' }] }) });
    expect(fieldsOf(r2)).toEqual(['body.networks.0.network']);
    const r3 = await api.call('POST', '/instances', { body: body('x', { host: 'no-such-host' }) });
    expect(fieldsOf(r3)).toEqual(['body.host']);
    expect(await h.t.db('instances').count<{ count: string }[]>('* as count')).toEqual([{ count: '0' }]);
  });

  test('create three: one on a chosen host, two scheduled; recorded with the token name', async () => {
    const a = await api.call('POST', '/instances', { body: body('web', { host: h.host }), headers: { 'x-request-id': 'req-api-create-1' } });
    expect(a.status).toBe(201);
    expect(a.body.instance).toMatchObject({ name: 'web', host: h.host, vm_state: 'active', power_state: 'running', project_id: 'proj-api' });
    expect(a.body.instance.addresses[0].address).toMatch(new RegExp(`^198\\.19\\.${third}\\.`));
    expect(a.body.instance.hostname).toBe(`web-${a.body.instance.addresses[0].address.split('.')[3]}`);
    created.push(a.body.instance.uuid);
    for (const name of ['db', 'cache']) {
      const r = await api.call('POST', '/instances', { body: body(name) });
      expect(r.status).toBe(201);
      expect(r.body.instance.host).toBe(h.host);
      created.push(r.body.instance.uuid);
    }
    const action = await h.t.db('instance_actions').where({ instance_uuid: created[0], action: 'create' }).first();
    expect(action).toMatchObject({ user_id: 'test-admin', request_id: 'req-api-create-1', project_id: 'proj-api', result: 'Success' });
    expectErrorShape(await api.call('POST', '/instances', { body: body('again', { uuid: created[0] }) }), 409, 'conflict');
  });

  test('list: filters and keyset pagination with a next link', async () => {
    const p1 = await api.call('GET', '/instances?limit=2', { token: api.tokens.reader });
    expect(p1.status).toBe(200);
    expect(p1.body.instances.map((i: { uuid: string }) => i.uuid)).toEqual(created.slice(0, 2));
    expect(p1.body.next).toBe(`/instances?limit=2&marker=${created[1]}`);
    const p2 = await api.call('GET', p1.body.next);
    expect(p2.body.instances.map((i: { uuid: string }) => i.uuid)).toEqual([created[2]]);
    expect(p2.body.next).toBeNull();
    const all = await api.call('GET', '/instances');
    expect(all.body.instances).toHaveLength(3);
    expect(all.body.next).toBeNull();
    const f = await api.call('GET', `/instances?host=${h.host}&state=active&project=proj-api&limit=1`);
    expect(f.body.instances).toHaveLength(1);
    expect(f.body.next).toBe(`/instances?host=${h.host}&state=active&project=proj-api&limit=1&marker=${created[0]}`);
    expect((await api.call('GET', '/instances?project=other')).body.instances).toEqual([]);
    expect((await api.call('GET', '/instances?state=stopped')).body.instances).toEqual([]);
    const bad = await api.call('GET', '/instances?limit=0&state=asleep&sort=name');
    expectErrorShape(bad, 400, 'invalid_input');
    expect(fieldsOf(bad)).toEqual(['query.limit', 'query.sort', 'query.state']);
    expect(fieldsOf(await api.call('GET', `/instances?marker=${crypto.randomUUID()}`))).toEqual(['query.marker']);
  });

  test('show; unknown is 404; a bad uuid is 400', async () => {
    const s = await api.call('GET', `/instances/${created[1]}`, { token: api.tokens.reader });
    expect(s.body.instance).toMatchObject({ uuid: created[1], name: 'db', flavor: flavor, image: TEST_IMAGE });
    expectErrorShape(await api.call('GET', `/instances/${crypto.randomUUID()}`), 404, 'not_found');
    expect(fieldsOf(await api.call('GET', '/instances/123'))).toEqual(['path.uuid']);
  });

  test('lifecycle actions over HTTP change the real container; a state conflict is 409', async () => {
    const u = created[0];
    const stop = await api.call('POST', `/instances/${u}/action`, { body: { stop: null } });
    expect(stop.status).toBe(200);
    expect(stop.body).toMatchObject({ action: 'stop', instance_uuid: u, host: h.host, result: { vm_state: 'stopped', changed: true } });
    expect(await h.docker('inspect', '-f', '{{.State.Running}}', `instance-${u}`)).toBe('false');
    expect((await api.call('POST', `/instances/${u}/action`, { body: { stop: {} } })).body.result.changed).toBe(false);
    const conflict = await api.call('POST', `/instances/${u}/action`, { body: { pause: null } });
    expectErrorShape(conflict, 409, 'conflict');
    expect(conflict.body.error.message).toMatch(/stopped/);
    expect((await api.call('POST', `/instances/${u}/action`, { body: { start: null } })).body.result.vm_state).toBe('active');
    expect((await api.call('POST', `/instances/${u}/action`, { body: { reboot: { type: 'HARD' } } })).status).toBe(200);
    expect((await api.call('POST', `/instances/${u}/action`, { body: { pause: null } })).body.result.vm_state).toBe('paused');
    expect(await h.docker('inspect', '-f', '{{.State.Paused}}', `instance-${u}`)).toBe('true');
    expect((await api.call('POST', `/instances/${u}/action`, { body: { unpause: null } })).body.result.vm_state).toBe('active');
    const rs = await api.call('POST', `/instances/${u}/action`, { body: { 'resize-resources': { memory_mb: 96, pids_limit: 80 } } });
    expect(rs.status).toBe(200);
    expect(rs.body.result).toMatchObject({ memory_mb: 96, pids_limit: 80 });
    expect(await h.docker('inspect', '-f', '{{.HostConfig.Memory}}', `instance-${u}`)).toBe(String(96 * 1024 * 1024));
    const two = await api.call('POST', `/instances/${u}/action`, { body: { start: null, stop: null } });
    expectErrorShape(two, 400, 'invalid_input');
    expectErrorShape(await api.call('POST', `/instances/${crypto.randomUUID()}/action`, { body: { stop: null } }), 404, 'not_found');
  });

  test('instance actions log: nova os-instance-actions shape, events, caller and request id', async () => {
    const u = created[0];
    const list = await api.call('GET', `/instances/${u}/actions`, { token: api.tokens.reader });
    expect(list.status).toBe(200);
    const acts = list.body.instanceActions as Array<Record<string, any>>;
    expect(acts.map((a) => a.action)).toEqual(['create', 'stop', 'start', 'reboot', 'pause', 'unpause', 'resize_resources']);
    for (const a of acts) expect(a).toMatchObject({ instance_uuid: u, user_id: 'test-admin', project_id: 'proj-api', host: h.host });
    expect(acts.every((a) => typeof a.request_id === 'string' && a.request_id.startsWith('req-'))).toBe(true);
    const create = await api.call('GET', `/instances/${u}/actions/${acts[0].id}`);
    expect(create.body.instanceAction).toMatchObject({ action: 'create', request_id: 'req-api-create-1', result: 'Success' });
    expect(create.body.instanceAction.events.map((e: { event: string }) => e.event)).toEqual(['compute_claim', 'compute_create', 'compute_start', 'compute_post_start']);
    expect(create.body.instanceAction.events.every((e: { result: string; finish_time: string | null }) => e.result === 'Success' && e.finish_time)).toBe(true);
    expectErrorShape(await api.call('GET', `/instances/${u}/actions/999999`), 404, 'not_found');
    expectErrorShape(await api.call('GET', `/instances/${crypto.randomUUID()}/actions`), 404, 'not_found');
  });

  test('console output (tail) and diagnostics from the instance\'s host', async () => {
    const c = await api.call('GET', `/instances/${created[1]}/console?tail=5`, { token: api.tokens.reader });
    expect(c.status).toBe(200);
    expect(typeof c.body.output).toBe('string');
    expect(fieldsOf(await api.call('GET', `/instances/${created[1]}/console?tail=0`))).toEqual(['query.tail']);
    const d = await api.call('GET', `/instances/${created[1]}/diagnostics`);
    expect(d.status).toBe(200);
    expect(d.body.cgroup.memory.limitBytes).toBe(64 * 1024 * 1024);
    expect(d.body.nics[0].network).toBe(net);
    expectErrorShape(await api.call('GET', `/instances/${crypto.randomUUID()}/diagnostics`), 404, 'not_found');
  });

  test('a network in use cannot be deleted (409)', async () => {
    const r = await api.call('DELETE', `/networks/${net}`);
    expectErrorShape(r, 409, 'conflict');
    expect((await api.call('GET', `/networks/${net}`)).body.network.allocated).toBe(3);
  });

  test('hosts show usage of the three instances', async () => {
    const me = (await api.call('GET', `/hosts/${h.host}`)).body.host;
    expect(me.usage).toMatchObject({ instances: 3, memory_mb: 96 + 64 + 64 });
  });
});

describe('snapshot / migrate / confirm / revert: validation, 404, 409', () => {
  test('validation errors name the field', async () => {
    const u = created[0];
    expect(fieldsOf(await api.call('POST', `/instances/${u}/action`, { body: { snapshot: { image_name: 'Bad Name!' } } }))).toEqual(['body.snapshot.image_name']);
    expect(fieldsOf(await api.call('POST', `/instances/${u}/action`, { body: { snapshot: {} } }))).toEqual(['body.snapshot.image_name']);
    expect(fieldsOf(await api.call('POST', `/instances/${u}/action`, { body: { migrate: { host: h.host } } }))).toEqual(['body.migrate.host']);
    expect(fieldsOf(await api.call('POST', `/instances/${u}/action`, { body: { migrate: { host: 'no-such-host' } } }))).toEqual(['body.migrate.host']);
    expect(fieldsOf(await api.call('POST', `/instances/${u}/action`, { body: { migrate: { auto_confirm: 'yes' } } }))).toEqual(['body.migrate.auto_confirm']);
  });

  test('unknown instance is 404', async () => {
    for (const b of [{ snapshot: { image_name: 'snap' } }, { migrate: null }, { confirm: null }, { revert: null }]) {
      expectErrorShape(await api.call('POST', `/instances/${crypto.randomUUID()}/action`, { body: b }), 404, 'not_found');
    }
  });

  test('confirm / revert without a finished migration are 409; migrate with no other host is 409 no_capacity', async () => {
    expectErrorShape(await api.call('POST', `/instances/${created[0]}/action`, { body: { confirm: null } }), 409, 'conflict');
    expectErrorShape(await api.call('POST', `/instances/${created[0]}/action`, { body: { revert: {} } }), 409, 'conflict');
    const m = await api.call('POST', `/instances/${created[0]}/action`, { body: { migrate: {} } });
    expectErrorShape(m, 409, 'no_capacity');
    expect(m.body.error.message).toMatch(new RegExp(`${h.host}: excluded`));
  });

  test('a second migration while one is in flight is 409', async () => {
    const [row] = await h.t.db('migrations').insert({ instance_uuid: created[2], source_host: h.host, dest_host: h.host, status: 'migrating' }).returning('id');
    try {
      const r = await api.call('POST', `/instances/${created[2]}/action`, { body: { migrate: null } });
      expectErrorShape(r, 409, 'conflict');
      expect(r.body.error.details).toMatchObject({ migration_id: row.id, status: 'migrating' });
    } finally {
      await h.t.db('migrations').where({ id: row.id }).update({ status: 'error', error: 'test row' });
    }
  });
});

describe('migrations', () => {
  test('list with filters and show; unknown is 404', async () => {
    const list = await api.call('GET', `/migrations?instance_uuid=${created[2]}`, { token: api.tokens.reader });
    expect(list.status).toBe(200);
    expect(list.body.migrations).toHaveLength(1);
    expect(list.body.migrations[0]).toMatchObject({ instance_uuid: created[2], source_host: h.host, status: 'error' });
    const id = list.body.migrations[0].id;
    expect((await api.call('GET', `/migrations?status=error&host=${h.host}`)).body.migrations.map((m: { id: number }) => m.id)).toContain(id);
    expect((await api.call('GET', '/migrations?status=finished')).body.migrations).toEqual([]);
    expect(fieldsOf(await api.call('GET', '/migrations?status=done'))).toEqual(['query.status']);
    expect((await api.call('GET', `/migrations/${id}`)).body.migration).toMatchObject({ id, instance_uuid: created[2] });
    expectErrorShape(await api.call('GET', '/migrations/999999'), 404, 'not_found');
  });
});

describe('a host that does not answer is 503 naming it', () => {
  let ghostInstance: string;
  beforeAll(async () => {
    // Registered, fresh heartbeat, but no compute service listening; disabled so the scheduler skips it.
    await h.t.db('hosts').insert({ name: ghost, vcpus: 2, memory_mb: 4096, memory_reserved_mb: 0, heartbeat_at: h.t.db.fn.now(), disabled: true });
    ghostInstance = crypto.randomUUID();
    await h.t.db('instances').insert({
      uuid: ghostInstance, name: 'ghosted', project_id: 'proj-api', host: ghost, vm_state: 'active', power_state: 'running', vcpus: 1, memory_mb: 64, spec: JSON.stringify({}),
    });
  });

  test('actions, console, diagnostics, delete and audit on a dead host', async () => {
    for (const [method, path, b] of [
      ['POST', `/instances/${ghostInstance}/action`, { stop: null }],
      ['GET', `/instances/${ghostInstance}/console`, undefined],
      ['GET', `/instances/${ghostInstance}/diagnostics`, undefined],
      ['DELETE', `/instances/${ghostInstance}`, undefined],
      ['GET', `/hosts/${ghost}/audit`, undefined],
    ] as const) {
      const r = await api.call(method, path, { body: b });
      expectErrorShape(r, 503, 'unavailable');
      expect(r.body.error.message).toContain(`host ${ghost}`);
    }
  });

  test('create on a chosen dead host is 503; on a host with a stale heartbeat too', async () => {
    const r = await api.call('POST', '/instances', { body: body('nowhere', { host: ghost }) });
    expectErrorShape(r, 503, 'unavailable');
    expect(r.body.error.message).toContain(ghost);
    await h.t.db('hosts').where({ name: ghost }).update({ heartbeat_at: new Date(Date.now() - 3600_000) });
    const s = await api.call('POST', '/instances', { body: body('nowhere2', { host: ghost }) });
    expectErrorShape(s, 503, 'unavailable');
    expect(s.body.error.message).toMatch(new RegExp(`host ${ghost} is down: last heartbeat 3600 s ago`));
    expect((await api.call('GET', `/hosts/${ghost}`)).body.host.up).toBe(false);
  });

  afterAll(async () => {
    await h.t.db('instances').where({ uuid: ghostInstance }).del();
  });
});

describe('scheduling on one host', () => {
  test('anti-affinity: a second member of the group cannot share the only host (409 no_capacity)', async () => {
    const g = { name: 'grp-a', policy: 'anti-affinity' };
    const a = await api.call('POST', '/instances', { body: body('member1', { server_group: g, networks: [] , hostname: 'member1' }) });
    expect(a.status).toBe(201);
    expect(a.body.instance.server_group).toBe('grp-a');
    created.push(a.body.instance.uuid);
    const b = await api.call('POST', '/instances', { body: body('member2', { server_group: g, networks: [], hostname: 'member2' }) });
    expectErrorShape(b, 409, 'no_capacity');
    expect(b.body.error.message).toMatch(/anti-affinity: a member of server group grp-a is already on this host/);
    const c = await api.call('POST', '/instances', { body: body('member3', { server_group: g, networks: [], hostname: 'member3', host: h.host }) });
    expectErrorShape(c, 409, 'conflict');
    const d = await api.call('POST', '/instances', { body: body('member4', { server_group: { name: 'grp-a', policy: 'affinity' }, networks: [], hostname: 'member4' }) });
    expectErrorShape(d, 409, 'conflict');
    expect(d.body.error.message).toMatch(/policy anti-affinity/);
  });

  test('more dedicated CPUs or memory than any host has is 409 no_capacity naming the host', async () => {
    const r = await api.call('POST', '/instances', { body: body('huge', { networks: [], hostname: 'huge', flavor: { vcpus: 1024, memory_mb: 64, cpu_policy: 'dedicated' } }) });
    expectErrorShape(r, 409, 'no_capacity');
    expect(r.body.error.message).toMatch(new RegExp(`${h.host}: dedicated CPUs: needs 1024`));
    expect(r.body.error.details.rejected[h.host]).toMatch(/dedicated CPUs/);
    const m = await api.call('POST', '/instances', { body: body('fat', { networks: [], hostname: 'fat', flavor: { vcpus: 1, memory_mb: 16777216 } }) });
    expectErrorShape(m, 409, 'no_capacity');
    expect(m.body.error.message).toMatch(/memory: needs 16777216 MB/);
  });
});

describe('metrics and audit', () => {
  test('/metrics has per-instance numbers, RPC and spawn metrics', async () => {
    const m = (await api.call('GET', '/metrics', { token: null })).text;
    for (const u of created) {
      expect(m).toMatch(new RegExp(`compute_instance_cpu_seconds_total\\{instance_uuid="${u}"[^}]*\\} [0-9.e-]+`));
      expect(m).toMatch(new RegExp(`compute_instance_pids\\{instance_uuid="${u}"[^}]*\\} [1-9]`));
      expect(m).toMatch(new RegExp(`compute_instance_blkio_bytes_total\\{instance_uuid="${u}"[^}]*direction="read"\\}`));
    }
    expect(m).toMatch(new RegExp(`compute_instance_memory_limit_bytes\\{instance_uuid="${created[0]}"[^}]*\\} ${96 * 1024 * 1024}`));
    expect(m).toMatch(new RegExp(`compute_instance_net_rx_bytes_total\\{instance_uuid="${created[1]}"[^}]*network="${net}"\\}`));
    expect(m).toMatch(new RegExp(`compute_instances\\{host="${h.host}",vm_state="active"\\} 4`));
    expect(m).toMatch(/compute_rpc_server_requests_total\{method="build_and_run_instance",result="success"\} [4-9]/);
    expect(m).toMatch(/compute_rpc_server_requests_total\{method="pause_instance",result="conflict"\} 1/);
    expect(m).toMatch(/compute_rpc_server_request_duration_seconds_bucket\{le="[^"]+",method="get_diagnostics",result="success"\}/);
    expect(m).toMatch(/compute_spawn_step_duration_seconds_count\{step="post_start",result="success"\} [4-9]/);
    expect(m).toMatch(/compute_api_requests_total\{method="POST",route="\/instances",status="201"\} [4-9]/);
  });

  test('audit: consistent host, then a stopped container and an orphan are found (read-only)', async () => {
    const ours = (r: { findings: Array<{ instance_uuid: string | null; kind: string }> }, extra: string[] = []) =>
      r.findings.filter((f) => f.instance_uuid && [...created, ...extra].includes(f.instance_uuid));
    const a1 = await api.call('GET', `/hosts/${h.host}/audit`, { token: api.tokens.reader });
    expect(a1.status).toBe(200);
    expect(a1.body).toMatchObject({ host: h.host, instances: 4 });
    expect(ours(a1.body)).toEqual([]);
    // Behind the service's back: stop one container, start a labelled container with no instance.
    await run('docker', ['stop', '-t', '0', `instance-${created[2]}`]);
    const orphanUuid = crypto.randomUUID();
    await run('docker', ['run', '-d', '--name', orphanName, '--net=none', '--label', `compute.instance-uuid=${orphanUuid}`, '--label', `compute.host=${h.host}`, TEST_IMAGE]);
    const a2 = (await api.call('GET', `/hosts/${h.host}/audit`)).body;
    expect(a2.ok).toBe(false);
    expect(ours(a2, [orphanUuid]).map((f) => [f.kind, f.instance_uuid]).sort()).toEqual([
      ['orphan_container', orphanUuid], ['power_state_mismatch', created[2]],
    ].sort());
    // Read-only: nothing was repaired.
    expect(await h.docker('inspect', '-f', '{{.State.Running}}', orphanName)).toBe('true');
    expect((await h.t.db('instances').where({ uuid: created[2] }).first()).power_state).toBe('running');
    await run('docker', ['rm', '-f', orphanName]);
    expectErrorShape(await api.call('GET', '/hosts/no-such-host/audit'), 404, 'not_found');
  });
});

describe('delete', () => {
  test('delete every instance (204), then 404; /metrics and hosts follow; the network can go', async () => {
    for (const u of created) {
      const r = await api.call('DELETE', `/instances/${u}`);
      expect(r.status).toBe(204);
      expectErrorShape(await api.call('GET', `/instances/${u}`), 404, 'not_found');
      expectErrorShape(await api.call('DELETE', `/instances/${u}`), 404, 'not_found');
    }
    const acts = (await api.call('GET', `/instances/${created[1]}/actions`)).body.instanceActions;
    expect(acts.map((a: { action: string }) => a.action)).toEqual(['create', 'delete']);
    const m = (await api.call('GET', '/metrics', { token: null })).text;
    expect(m).not.toMatch(new RegExp(`instance_uuid="${created[0]}"`));
    expect(m).not.toMatch(new RegExp(`compute_instances\\{host="${h.host}",vm_state="active"\\}`));
    expect((await api.call('GET', `/hosts/${h.host}`)).body.host.usage).toMatchObject({ instances: 0, memory_mb: 0 });
    expect((await api.call('DELETE', `/networks/${net}`)).status).toBe(204);
    expectErrorShape(await api.call('GET', `/networks/${net}`), 404, 'not_found');
  });

  test('an instance whose build failed (no host) is deleted from the database alone', async () => {
    const r = await api.call('POST', '/instances', { body: body('broken', { networks: [], hostname: 'broken', image: 'compute-test/no-such-image:latest' }) });
    expect(r.status).toBeGreaterThanOrEqual(400);
    const row = await h.t.db('instances').where({ name: 'broken' }).first();
    expect(row).toMatchObject({ vm_state: 'error', host: null });
    expect((await api.call('DELETE', `/instances/${row.uuid}`)).status).toBe(204);
    expectErrorShape(await api.call('GET', `/instances/${row.uuid}`), 404, 'not_found');
  });
});

test('every operation of the spec was exercised over HTTP', () => {
  expect([...api.exercised].sort()).toEqual(specKeys());
});
