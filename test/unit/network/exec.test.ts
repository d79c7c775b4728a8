import { assertSafeInvocation, ExecFileRunner, RecordingRunner } from '../../../drivers/network/exec';
import { LinuxBridgeDriver } from '../../../drivers/network/linux-bridge-driver';
import { OvsVlanDriver } from '../../../drivers/network/ovs-vlan-driver';
import { tbfArgs } from '../../../drivers/network/shaping';
import { loadNetworkDrivers, NETWORK_DRIVERS } from '../../../drivers/network';

describe('exec adapter', () => {
  test.each([
    ['ip', ['link', 'show', 'dev', 'eth0;reboot']],
    ['ip', ['link', 'show', 'dev', '$(id)']],
    ['ip', ['link', 'show', 'dev', 'a b']],
    ['ip', ['link', 'show', 'dev', '`id`']],
    ['ip', ['x\ny']],
    ['ip', ['']],
    ['sh', ['-c', 'id']],
    ['bash', []],
  ])('refuses %s %p', (tool, args) => expect(() => assertSafeInvocation(tool, args)).toThrow(/unsafe|not allowed/));

  test('batch input lines are checked too', () => {
    expect(() => assertSafeInvocation('ip', ['-batch', '-'], 'link set dev lo up\n')).not.toThrow();
    expect(() => assertSafeInvocation('ip', ['-batch', '-'], 'link set dev lo up; reboot\n')).toThrow(/unsafe batch line/);
  });

  test('a refused call never starts a process; a real one runs with a timeout', async () => {
    const r = new ExecFileRunner(5000);
    await expect(r.run('ip', ['link', 'show', 'dev', 'x|y'])).rejects.toThrow(/unsafe/);
    const { stdout } = await r.run('ip', ['-json', 'link', 'show', 'dev', 'lo']);
    expect(JSON.parse(stdout)[0].ifname).toBe('lo');
    await expect(r.run('ip', ['link', 'show', 'dev', 'nonexistent0'])).rejects.toMatchObject({ code: 'internal' });
  });

  test('timeouts are enforced', async () => {
    const r = new ExecFileRunner();
    // Arbitrary scripts are refused; only constant literals registered in code may have spaces.
    await expect(r.run('python3', ['-c', 'import time; time.sleep(5)'], { timeoutMs: 200 })).rejects.toThrow(/unsafe/);
    const t0 = Date.now();
    await expect(r.run('nsenter', ['-t', String(process.pid), '-n', 'sleep', '5'], { timeoutMs: 300 })).rejects.toMatchObject({ code: 'timeout' });
    expect(Date.now() - t0).toBeLessThan(2000);
    await expect(r.run('nsenter', ['-t', '999999999', '-n', 'true'], { timeoutMs: 2000 })).rejects.toMatchObject({ code: 'internal' });
  });

  test('TBF burst covers several frames at low rates and ~20 ms at high rates', () => {
    expect(tbfArgs(1000)).toEqual(['tbf', 'rate', '1000kbit', 'burst', '6056', 'latency', '100ms']);
    expect(tbfArgs(1_000_000)).toContain('2500000');
  });
});

describe('driver table', () => {
  test('has exactly the two backends', () => {
    expect(Object.keys(NETWORK_DRIVERS).sort()).toEqual(['linux-bridge', 'ovs-vlan']);
    const rec = new RecordingRunner(new ExecFileRunner());
    expect(NETWORK_DRIVERS['linux-bridge'](rec, { ovs: { bridge: 'br-int', datapathType: 'auto' } })).toBeInstanceOf(LinuxBridgeDriver);
    expect(NETWORK_DRIVERS['ovs-vlan'](rec, { ovs: { bridge: 'br-int', datapathType: 'auto' } })).toBeInstanceOf(OvsVlanDriver);
  });

  test('an unknown type fails start-up with a clear message, before any command', async () => {
    const rec = new RecordingRunner(new ExecFileRunner());
    await expect(loadNetworkDrivers({ ovs: { bridge: 'br-int', datapathType: 'auto' } }, ['macvlan'], rec)).rejects.toThrow(/no network driver for type "macvlan"/);
    expect(rec.calls).toEqual([]);
  });

  test('a bad OVS bridge name is refused when the driver is built', () => {
    expect(() => new OvsVlanDriver(new ExecFileRunner(), { bridge: 'br;x', datapathType: 'auto' })).toThrow(/bridge must match/);
  });
});
