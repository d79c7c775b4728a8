import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NetworksRepo } from '../../services/db/networks-repo';
import { instanceSpec, run, startHarness, type ComputeHarness } from '../helpers/compute-harness';
import { eventually, REPO_ROOT, startService, type ServiceProcess } from '../helpers/service-process';

jest.setTimeout(300000);

const HOST_B_SOCK = '/var/lib/compute/host-b/docker.sock';
const dockerB = async (...args: string[]) => (await run('docker', ['-H', `unix://${HOST_B_SOCK}`, ...args])).stdout.trim();

/** The runbook CLI as an operator runs it; resolves with exit code and output. */
function cli(env: Record<string, string>, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO_ROOT, 'dist/services/cli/index.js'), ...args], { env: { ...process.env, ...env, LOG_LEVEL: 'silent' }, timeout: 240000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr }));
  });
}

describe('runbook: migrate with the CLI, and resume after the source service was killed', () => {
  let b: ComputeHarness;
  let a: ServiceProcess | undefined;
  let stateDirA: string;
  let env: Record<string, string>;
  const hostA = `rb-a-${Date.now().toString(36)}`;

  const startA = (extra: Record<string, string> = {}) => {
    a = startService({ ...env, NODE_ENV: 'test', LOG_LEVEL: 'warn', COMPUTE_HOST: hostA, COMPUTE_STATE_DIR: stateDirA,
      COMPUTE_VOLUME_ROOTS: path.join(stateDirA, 'volumes'), COMPUTE_STOP_TIMEOUT_SEC: '1', ...extra }, ['--no-api']);
    return eventually(() => b.client.call(hostA, 'get_available_resource', {}, { timeout: 5 }), (r) => !!r, 60000, 300);
  };

  beforeAll(async () => {
    b = await startHarness('rb-b', { overrides: { dockerSocket: HOST_B_SOCK, dockerDataRoot: '/var/lib/compute/host-b/data' } });
    stateDirA = await fs.mkdtemp(path.join(os.tmpdir(), 'compute-rb-a-'));
    env = { COMPUTE_DATABASE_URL: b.config.databaseUrl, COMPUTE_CONTROL_EXCHANGE: b.config.controlExchange, COMPUTE_RPC_TOPIC: b.config.rpc.topic };
    await new NetworksRepo(b.t.db).create({ name: 'rb', type: 'ovs-vlan', bridge: b.config.ovs.bridge, vlan: 3602, cidr: '198.19.91.0/24',
      gateway: '198.19.91.1', rangeStart: '198.19.91.10', rangeEnd: '198.19.91.200', hostnameTemplate: 'rb-{o4}', domain: 'rb.test' });
  });

  afterAll(async () => {
    await a?.stop('SIGKILL');
    for (const id of (await run('docker', ['ps', '-aq', '--filter', `label=compute.host=${hostA}`])).stdout.split('\n').filter(Boolean)) await run('docker', ['rm', '-f', id]);
    for (const id of (await dockerB('ps', '-aq', '--filter', `label=compute.host=${b?.host}`)).split('\n').filter(Boolean)) await dockerB('rm', '-f', id);
    await b?.close();
    await fs.rm(stateDirA, { recursive: true, force: true });
  });

  test('`migrate --to --auto-confirm` shows each step and ends confirmed', async () => {
    await startA();
    const x = instanceSpec({ name: 'cli', networks: [{ network: 'rb' }] });
    await b.client.call(hostA, 'build_and_run_instance', { instance: x }, { timeout: 60 });
    const r = await cli(env, 'migrate', x.uuid, '--to', b.host, '--auto-confirm');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/prep_resize\s+done/);
    expect(r.out).toMatch(/finish_resize\s+done/);
    expect(r.out).toMatch(/status confirmed/);
    expect(r.out).toMatch(/downtime\s+\d+/);
    expect((await b.call('get_info', { instance_uuid: x.uuid })).vm_state).toBe('active');
    const list = await cli(env, 'migration', 'list', '--json');
    expect(JSON.parse(list.out)[0]).toMatchObject({ instance_uuid: x.uuid, status: 'confirmed' });
    await b.call('terminate_instance', { instance_uuid: x.uuid });
    await a!.stop('SIGTERM');
  });

  test('source killed after commit: `migration resume` finishes the move, then `confirm`', async () => {
    await startA({ COMPUTE_TEST_HANG_AFTER_STEP: 'mig_committed' });
    const x = instanceSpec({ name: 'crashy', networks: [{ network: 'rb' }] });
    const built = await b.client.call<{ hostname: string; addresses: Array<{ address: string; mac: string }> }>(hostA, 'build_and_run_instance', { instance: x }, { timeout: 60 });
    await run('docker', ['exec', `instance-${x.uuid}`, 'sh', '-c', 'echo survived > /root/state.txt']);
    await b.client.cast(hostA, 'migrate_instance', { instance_uuid: x.uuid, dest_host: b.host });
    const committed = await eventually(() => b.t.db('migrations').where({ instance_uuid: x.uuid }).first(), (m) => !!m?.image_ref, 60000, 200);
    expect(committed.image_ref).toBeTruthy();
    await a!.stop('SIGKILL');

    await startA(); // restarted without the fault; the interrupted request is failed, the migration waits
    const waiting = await b.t.db('migrations').where({ id: committed.id }).first();
    expect(['migrating', 'post-migrating']).toContain(waiting.status);

    const show = await cli(env, 'migration', 'show', String(committed.id));
    expect(show.out).toMatch(/next .*migration resume/);
    const resumed = await cli(env, 'migration', 'resume', String(committed.id), '--json');
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.out)).toMatchObject({ id: committed.id, status: 'finished' });
    expect(await dockerB('exec', `instance-${x.uuid}`, 'cat', '/root/state.txt')).toBe('survived');
    expect(await dockerB('exec', `instance-${x.uuid}`, 'hostname')).toBe(built.hostname);
    expect(await dockerB('exec', `instance-${x.uuid}`, 'cat', '/sys/class/net/eth0/address')).toBe(built.addresses[0].mac);
    expect(await dockerB('exec', `instance-${x.uuid}`, 'ip', '-o', '-4', 'addr', 'show', 'eth0')).toContain(built.addresses[0].address);

    const confirmed = await cli(env, 'migration', 'confirm', String(committed.id));
    expect(confirmed.code).toBe(0);
    expect(confirmed.out).toMatch(/status confirmed/);
    expect((await run('docker', ['ps', '-aq', '--filter', `label=compute.instance-uuid=${x.uuid}`])).stdout.trim()).toBe('');
    await b.call('terminate_instance', { instance_uuid: x.uuid });
  });

  test('bad input and unknown ids get documented exit codes', async () => {
    expect((await cli(env, 'migration', 'show', 'abc')).code).toBe(2);
    expect((await cli(env, 'migration', 'show', '999999')).code).toBe(1);
    expect((await cli(env, 'migrate', '00000000-0000-4000-8000-000000000000', '--to', b.host)).code).toBe(1);
  });
});
