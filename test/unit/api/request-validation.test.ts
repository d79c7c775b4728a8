import { OpenApiValidators } from '../../../services/api/openapi';
import { InvalidInput } from '../../../services/errors';

const v = new OpenApiValidators();
const uuid = '0b6a3c1e-1f2a-4c3d-9e8f-123456789abc';

function problems(fn: () => unknown): Array<{ field: string; message: string }> {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInput);
    return (err as InvalidInput).details as Array<{ field: string; message: string }>;
  }
  throw new Error('expected InvalidInput');
}

const fields = (fn: () => unknown) => problems(fn).map((p) => p.field).sort();

describe('request validation compiled from openapi.yaml', () => {
  const createInstance = v.get('post', '/instances')!;
  const list = v.get('get', '/instances')!;
  const action = v.get('post', '/instances/{uuid}/action')!;
  const createNetwork = v.get('post', '/networks')!;
  const good = { name: 'web', project_id: 'p1', image: 'busybox:latest', flavor: { vcpus: 1, memory_mb: 64 } };

  test.each([
    ['unknown top-level field', { ...good, colour: 'red' }, ['body.colour']],
    ['missing required field', { project_id: 'p', image: 'x', flavor: { vcpus: 1, memory_mb: 64 } }, ['body.name']],
    ['nested type error', { ...good, flavor: { vcpus: 'two', memory_mb: 64 } }, ['body.flavor.vcpus']],
    ['nested unknown field', { ...good, flavor: { vcpus: 1, memory_mb: 64, gpu: 1 } }, ['body.flavor.gpu']],
    ['enum', { ...good, flavor: { vcpus: 1, memory_mb: 64, cpu_policy: 'greedy' } }, ['body.flavor.cpu_policy']],
    ['array item', { ...good, networks: [{ network: 'BAD NAME' }] }, ['body.networks.0.network']],
    ['format', { ...good, networks: [{ network: 'n1', fixed_ip: '300.1.1.1' }] }, ['body.networks.0.fixed_ip']],
    ['reserved label prefix', { ...good, labels: { 'compute.instance-uuid': 'x' } }, ['body.labels']],
    ['server group policy', { ...good, server_group: { name: 'g', policy: 'sometimes' } }, ['body.server_group.policy']],
    ['several at once', { ...good, name: '', flavor: { vcpus: 0, memory_mb: 64 } }, ['body.flavor.vcpus', 'body.name']],
  ])('create instance: %s names the field', (_what, body, expected) => {
    expect(fields(() => createInstance({ params: {}, query: {}, body }))).toEqual(expected);
  });

  test('a valid create passes unchanged', () => {
    expect(createInstance({ params: {}, query: {}, body: good }).body).toEqual(good);
  });

  test('a missing body is named', () => {
    expect(fields(() => createInstance({ params: {}, query: {}, body: undefined }))).toEqual(['body']);
  });

  test('query parameters are coerced, defaulted and checked; unknown ones refused', () => {
    expect(list({ params: {}, query: {}, body: undefined }).query).toEqual({ limit: 100 });
    expect(list({ params: {}, query: { limit: '5', state: 'active' }, body: undefined }).query).toEqual({ limit: 5, state: 'active' });
    expect(fields(() => list({ params: {}, query: { limit: '0' }, body: undefined }))).toEqual(['query.limit']);
    expect(fields(() => list({ params: {}, query: { limit: 'ten' }, body: undefined }))).toEqual(['query.limit']);
    expect(fields(() => list({ params: {}, query: { state: 'asleep' }, body: undefined }))).toEqual(['query.state']);
    expect(fields(() => list({ params: {}, query: { marker: 'nope' }, body: undefined }))).toEqual(['query.marker']);
    expect(fields(() => list({ params: {}, query: { sort: 'name' }, body: undefined }))).toEqual(['query.sort']);
  });

  test('path parameters are checked', () => {
    expect(fields(() => action({ params: { uuid: 'not-a-uuid' }, query: {}, body: { start: null } }))).toEqual(['path.uuid']);
    const show = v.get('get', '/instances/{uuid}/actions/{id}')!;
    expect(show({ params: { uuid, id: '7' }, query: {}, body: undefined }).params).toEqual({ uuid, id: 7 });
    expect(fields(() => show({ params: { uuid, id: 'x' }, query: {}, body: undefined }))).toEqual(['path.id']);
  });

  test.each([
    [{ start: null }], [{ stop: {} }], [{ reboot: { type: 'HARD' } }], [{ reboot: null }], [{ pause: null }], [{ unpause: null }],
    [{ 'resize-resources': { memory_mb: 128 } }], [{ snapshot: { image_name: 'backup-1:v1' } }], [{ migrate: { host: 'host-b', auto_confirm: true } }],
    [{ migrate: null }], [{ confirm: null }], [{ revert: {} }],
  ])('action %j is accepted', (body) => {
    expect(action({ params: { uuid }, query: {}, body }).body).toEqual(body);
  });

  test.each([
    ['two actions at once', { start: null, stop: null }, 'body'],
    ['no action', {}, 'body'],
    ['unknown action', { explode: null }, 'body.explode'],
    ['bad reboot type', { reboot: { type: 'GENTLE' } }, 'body.reboot.type'],
    ['snapshot without image_name', { snapshot: {} }, 'body.snapshot.image_name'],
    ['empty resize', { 'resize-resources': {} }, 'body.resize-resources'],
    ['migrate to a bad host name', { migrate: { host: 'Host_B' } }, 'body.migrate.host'],
    ['arguments to stop', { stop: { force: true } }, 'body.stop.force'],
  ])('action: %s is refused naming %s', (_what, body, field) => {
    expect(fields(() => action({ params: { uuid }, query: {}, body }))).toContain(field);
  });

  test('network create: types and unknown fields named in snake_case', () => {
    const base = { name: 'n1', type: 'ovs-vlan', bridge: 'br-int', vlan: 3400, cidr: '198.19.70.0/24', range_start: '198.19.70.10', range_end: '198.19.70.20' };
    expect(createNetwork({ params: {}, query: {}, body: base }).body).toEqual(base);
    expect(fields(() => createNetwork({ params: {}, query: {}, body: { ...base, vlan: 5000 } }))).toEqual(['body.vlan']);
    expect(fields(() => createNetwork({ params: {}, query: {}, body: { ...base, rangeStart: 'x' } }))).toEqual(['body.rangeStart']);
    expect(fields(() => createNetwork({ params: {}, query: {}, body: { ...base, type: 'vxlan' } }))).toEqual(['body.type']);
  });

  test('operations without a body refuse one', () => {
    const enable = v.get('post', '/hosts/{name}/enable')!;
    expect(fields(() => enable({ params: { name: 'h1' }, query: {}, body: { now: true } }))).toEqual(['body']);
    expect(enable({ params: { name: 'h1' }, query: {}, body: undefined }).body).toBeUndefined();
  });
});

describe('oneOf fields report the real problem', () => {
  const action = v.get('post', '/instances/{uuid}/action')!;
  test.each([
    [{ migrate: { auto_confirm: 'yes' } }, ['body.migrate.auto_confirm']],
    [{ reboot: { type: 'GENTLE' } }, ['body.reboot.type']],
    [{ stop: { force: true } }, ['body.stop.force']],
    [{ migrate: 'host-b' }, ['body.migrate']],
  ])('%j -> %j', (body, expected) => {
    expect(fields(() => action({ params: { uuid }, query: {}, body }))).toEqual(expected);
  });
});

describe('error size is bounded', () => {
  test('20,000 unknown fields: 50 listed, the rest counted', () => {
    const createNetwork = v.get('post', '/networks')!;
    const body = Object.fromEntries(Array.from({ length: 20000 }, (_, i) => [`k${i}`, i]));
    let err: InvalidInput | undefined;
    try {
      createNetwork({ params: {}, query: {}, body });
    } catch (e) {
      err = e as InvalidInput;
    }
    expect((err!.details as unknown[]).length).toBe(50);
    expect(err!.message.length).toBeLessThan(5000);
    expect(err!.message).toMatch(/and 19956 more$/);
  });
});
