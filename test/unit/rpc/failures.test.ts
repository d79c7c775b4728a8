import { Conflict, Internal, InvalidInput, NoSuchMethod, NotFound, UnsupportedVersion } from '../../../services/errors';
import { backoffDelay } from '../../../services/rpc/connection';
import { decodeFailure, encodeFailure, remoteClassOf } from '../../../services/rpc/failures';
import { createRpcAjv, describeAjvErrors, loadRpcSchema } from '../../../services/rpc/schemas';

describe('failures', () => {
  test.each([
    [new NotFound('nope'), NotFound, 'NotFound', 'container_compute.exception'],
    [new Conflict('paused'), Conflict, 'InstanceInvalidState', 'container_compute.exception'],
    [new NoSuchMethod('Endpoint does not support RPC method x'), NoSuchMethod, 'NoSuchMethod', 'oslo_messaging.rpc.dispatcher'],
    [new UnsupportedVersion('v'), UnsupportedVersion, 'UnsupportedVersion', 'oslo_messaging.rpc.dispatcher'],
    [new InvalidInput('bad', { details: ['args.x: bad'] }), InvalidInput, 'InvalidParameter', 'container_compute.exception'],
    [new TypeError('oops'), Internal, 'InternalError', 'container_compute.exception'],
  ])('%s survives the wire as the same class', (err, cls, oslo, module) => {
    const wire = encodeFailure(err);
    const parsed = JSON.parse(wire);
    expect(parsed).toMatchObject({ class: oslo, module, message: err.message, args: [err.message] });
    expect(Array.isArray(parsed.tb)).toBe(true);
    const back = decodeFailure(wire);
    expect(back).toBeInstanceOf(cls);
    expect(back.message).toBe(err.message);
    expect(remoteClassOf(back)).toBe(oslo);
  });

  test('a Python exception class we do not know becomes Internal keeping the message', () => {
    const back = decodeFailure(JSON.stringify({ class: 'KeyError', module: 'builtins', message: "'x'", tb: ['Traceback\n'], args: ['x'], kwargs: {} }));
    expect(back).toBeInstanceOf(Internal);
    expect(back.message).toBe("'x'");
    expect(back.details).toMatchObject({ remoteClass: 'KeyError', remoteModule: 'builtins', remoteTraceback: 'Traceback\n' });
  });

  test('garbage failures do not throw', () => {
    expect(decodeFailure('{nope')).toBeInstanceOf(Internal);
    expect(decodeFailure('[1]')).toBeInstanceOf(Internal);
  });
});

describe('argument schemas', () => {
  const ajv = createRpcAjv();
  test('get_info: unknown field and bad uuid are named', () => {
    const v = ajv.compile(loadRpcSchema('get_info'));
    expect(v({ instance_uuid: '6f1c3a6e-8d0b-4b7e-9d43-4a3f0c2a9b11' })).toBe(true);
    expect(v({ instance_uuid: 'x', extra: 1 })).toBe(false);
    const problems = describeAjvErrors(v.errors);
    expect(problems).toContain('args: unknown field "extra"');
    expect(problems.some((p) => p.startsWith('args.instance_uuid: must match format "uuid"'))).toBe(true);
    expect(v({})).toBe(false);
    expect(describeAjvErrors(v.errors)).toEqual(['args: missing required field "instance_uuid"']);
  });

  test('list_instances and get_available_resource take (almost) nothing', () => {
    const la = ajv.compile(loadRpcSchema('list_instances'));
    expect(la({})).toBe(true);
    expect(la({ vm_state: 'gone' })).toBe(false);
    expect(describeAjvErrors(la.errors)[0]).toContain('args.vm_state: must be one of');
    expect(ajv.compile(loadRpcSchema('get_available_resource'))({ nodename: 'node-1' })).toBe(true);
  });

  test('InstanceSpec in _defs.json refuses unknown nested fields', () => {
    const v = ajv.compile({ $ref: 'https://container-compute.local/rpc/_defs.json#/$defs/InstanceSpec' });
    const spec = {
      uuid: '6f1c3a6e-8d0b-4b7e-9d43-4a3f0c2a9b11', name: 'web', project_id: 'p', image: 'busybox:latest',
      flavor: { vcpus: 1, memory_mb: 64, cpu_policy: 'shared' }, networks: [{ network: 'net1', fixed_ip: '198.18.0.5' }],
    };
    expect(v(spec)).toBe(true);
    expect(v({ ...spec, flavor: { ...spec.flavor, gpus: 1 } })).toBe(false);
    expect(describeAjvErrors(v.errors)).toContain('args.flavor: unknown field "gpus"');
    expect(v({ ...spec, networks: [{ network: 'net1', vlan: 3 }] })).toBe(false);
    expect(describeAjvErrors(v.errors)).toContain('args.networks[0]: unknown field "vlan"');
  });
});

describe('reconnect backoff', () => {
  test('doubles, is capped, and jitters within +-20%', () => {
    expect(backoffDelay(0, 250, 15000, () => 0.5)).toBe(250);
    expect(backoffDelay(3, 250, 15000, () => 0.5)).toBe(2000);
    expect(backoffDelay(30, 250, 15000, () => 0.5)).toBe(15000);
    expect(backoffDelay(2, 250, 15000, () => 0)).toBe(800);
    expect(backoffDelay(2, 250, 15000, () => 1)).toBe(1200);
  });
});
