import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import type { NetworkRecord } from '../../drivers/network/network-record';

/**
 * Real containers for network tests. The docker CLI through execFile is fine here (tests only);
 * the product talks to Docker through drivers/docker.
 */
const run = promisify(execFile);
export const IMAGE = process.env.COMPUTE_TEST_IMAGE ?? 'compute-test/busybox:latest';

export interface TestContainer { id: string; pid: number }

export async function startContainer(): Promise<TestContainer> {
  const { stdout } = await run('docker', ['run', '-d', '--net=none', '--label', 'compute.test=network', IMAGE], { timeout: 30000 });
  const id = stdout.trim();
  const pid = Number((await run('docker', ['inspect', '-f', '{{.State.Pid}}', id], { timeout: 10000 })).stdout.trim());
  return { id, pid };
}

export async function removeContainers(ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await run('docker', ['rm', '-f', ...ids], { timeout: 30000 }).catch(() => undefined);
}

export async function dockerExec(id: string, args: string[], timeoutMs = 20000): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('docker', ['exec', id, ...args], { timeout: timeoutMs });
    return { ok: true, stdout, stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

export async function ping(from: TestContainer, ip: string, count = 2): Promise<boolean> {
  return (await dockerExec(from.id, ['ping', '-c', String(count), '-W', '1', ip])).ok;
}

export async function sh(cmd: string, args: string[], timeoutMs = 20000): Promise<string> {
  return (await run(cmd, args, { timeout: timeoutMs })).stdout;
}

export async function quiet(cmd: string, args: string[]): Promise<void> {
  await run(cmd, args, { timeout: 20000 }).catch(() => undefined);
}

export function uuid(): string {
  return crypto.randomUUID();
}

export function rand(n = 6): string {
  return crypto.randomBytes(8).toString('hex').slice(0, n);
}

export function ovsNet(name: string, vlan: number, third: number): NetworkRecord {
  return {
    name, type: 'ovs-vlan', bridge: 'br-int', vlan, cidr: `198.18.${third}.0/24`, gateway: `198.18.${third}.1`,
    rangeStart: `198.18.${third}.10`, rangeEnd: `198.18.${third}.250`, hostnameTemplate: '{name}-{o4}', domain: 'local', uplink: null, mtu: null,
  };
}

export function bridgeNet(name: string, bridge: string, third: number): NetworkRecord {
  return {
    name, type: 'linux-bridge', bridge, vlan: null, cidr: `198.18.${third}.0/24`, gateway: null,
    rangeStart: `198.18.${third}.10`, rangeEnd: `198.18.${third}.250`, hostnameTemplate: '{name}', domain: 'local', uplink: null, mtu: null,
  };
}

/** Host links of the driver's naming scheme, or all links. */
export async function hostLinks(): Promise<string[]> {
  const out = JSON.parse(await sh('ip', ['-json', 'link', 'show'])) as Array<{ ifname: string }>;
  return out.map((l) => l.ifname);
}

export async function ovsPorts(bridge = 'br-int'): Promise<string[]> {
  return (await sh('ovs-vsctl', ['list-ports', bridge])).split('\n').filter((l) => l.length > 0);
}

/**
 * Time a one-way TCP transfer of `bytes` from `src` to `dst` (busybox nc). The receiver times
 * itself with /proc/uptime from its first byte to its last, so docker exec start-up does not
 * count. busybox nc quits when *its* stdin ends, so the listener reads stdin from a FIFO held
 * open by a sleep, and the sender keeps its stdin open a moment after the data.
 */
export async function measureTransfer(src: TestContainer, dst: TestContainer, dstIp: string, bytes: number, port = 5001): Promise<{ seconds: number; kbit: number }> {
  const fifo = `/tmp/nc-hold-${port}`;
  const recvScript = `rm -f ${fifo}; mkfifo ${fifo}; sleep 100 > ${fifo} & SP=$!; nc -l -p ${port} < ${fifo} | { dd bs=1 count=1 of=/dev/null 2>/dev/null; s=$(cut -d' ' -f1 /proc/uptime); head -c ${bytes - 1} >/dev/null; e=$(cut -d' ' -f1 /proc/uptime); echo "$s $e"; }; kill $SP`;
  const receiver = dockerExec(dst.id, ['sh', '-c', recvScript], 120000);
  await new Promise((r) => setTimeout(r, 700));
  const sender = dockerExec(src.id, ['sh', '-c', `(head -c ${bytes} /dev/zero; sleep 1) | nc ${dstIp} ${port}`], 120000);
  const r = await receiver;
  await sender;
  const m = /([0-9.]+) ([0-9.]+)/.exec(r.stdout);
  if (!m) throw new Error(`receiver output: ${r.stdout} ${r.stderr}`);
  const seconds = Number(m[2]) - Number(m[1]);
  return { seconds, kbit: ((bytes - 1) * 8) / seconds / 1000 };
}
