/** The operator command against a real server: call prints JSON, a remote failure exits 1 with `Class: message`. */
import { main } from '../../services/cli/rpc-cli';
import { startComputeRpc, type ComputeRpcHandle } from '../../services/compute/rpc';
import { acquireRpcSuiteLock, newProbe, rand, rpcTestEnv, seedInstance, testEndpoints, waitFor, type Probe, type RpcTestEnv } from './rpc-harness';

let env: RpcTestEnv;
const host = `rpc-cli-${rand()}`;
let server: ComputeRpcHandle;
let probe: Probe;

let releaseLock: (() => void) | undefined;

beforeAll(async () => {
  releaseLock = await acquireRpcSuiteLock();
  env = await rpcTestEnv('cli');
  probe = newProbe();
  server = await startComputeRpc({ config: env.config(host), db: env.tdb.db, endpoints: testEndpoints(env.tdb, host, probe) });
  process.env.COMPUTE_CONTROL_EXCHANGE = env.exchange;
  process.env.COMPUTE_RPC_TOPIC = env.topic;
}, 120000);

afterAll(async () => {
  await server?.stop(5000);
  await env?.cleanup([host]);
});

// Separate hook: runs even if the clean-up above failed.
afterAll(() => releaseLock?.());

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(['node', 'rpc-cli', ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

test('call, cast and failures from the command line', async () => {
  const uuid = await seedInstance(env.tdb, host);
  const ok = await cli('call', host, 'get_info', JSON.stringify({ instance_uuid: uuid }));
  expect(ok.code).toBe(0);
  expect(JSON.parse(ok.out)).toMatchObject({ uuid, vm_state: 'active' });

  const nf = await cli('call', host, 'get_info', JSON.stringify({ instance_uuid: '00000000-0000-4000-8000-000000000000' }));
  expect(nf.code).toBe(1);
  expect(nf.err).toMatch(/^NotFound: Instance 00000000-0000-4000-8000-000000000000 could not be found/);

  const bad = await cli('call', host, 'get_info', '{"instance_uuid": 1, "x": 2}');
  expect(bad.code).toBe(1);
  expect(bad.err).toContain('InvalidParameter: invalid arguments for get_info');
  expect(bad.err).toContain('unknown field "x"');

  const c = await cli('cast', host, 'record', '{"value":"from-cli"}');
  expect(c.code).toBe(0);
  await waitFor(() => probe.records.some((r) => r.value === 'from-cli'), 5000, 'cli cast');
  expect(probe.records.find((r) => r.value === 'from-cli')!.ctx).toMatchObject({ userId: 'operator', isAdmin: true });

  const any = await cli('call', '-', 'echo', '{"value":3}');
  expect(JSON.parse(any.out)).toEqual({ host, value: 3 });
});

test('usage errors: bad JSON and --help', async () => {
  const r = await cli('call', host, 'get_info', '{nope');
  expect(r.code).toBe(2);
  expect(r.err).toContain('args must be JSON');
  const h = await cli('--help');
  expect(h.code).toBe(0);
  expect(h.out).toContain('call');
  expect(h.out).toContain('fanout');
  const sub = await cli('call', '--help');
  expect(sub.out).toContain('--monitor');
});
