import { validateNetworkRecord } from '../../../drivers/network/network-record';

const ok = {
  name: 'net-a', type: 'ovs-vlan', bridge: 'br-int', vlan: 100, cidr: '198.18.10.0/24', gateway: '198.18.10.1',
  rangeStart: '198.18.10.10', rangeEnd: '198.18.10.200', hostnameTemplate: '{name}-{o4}', domain: 'local',
};

describe('validateNetworkRecord', () => {
  test('valid ovs-vlan and linux-bridge records are normalised', () => {
    expect(validateNetworkRecord(ok)).toEqual({ ...ok, uplink: null, mtu: null });
    const lb = validateNetworkRecord({ name: 'flat', type: 'linux-bridge', bridge: 'tbr-1', cidr: '198.18.20.0/24', rangeStart: '198.18.20.2', rangeEnd: '198.18.20.254' });
    expect(lb).toMatchObject({ vlan: null, gateway: null, hostnameTemplate: '{name}', domain: 'local' });
  });

  test.each([
    [{ name: 'Bad;Name' }, /name must match/],
    [{ type: 'macvlan' }, /type must be one of/],
    [{ bridge: 'br int' }, /bridge must match/],
    [{ bridge: 'sixteen-chars-br' }, /bridge must match/],
    [{ bridge: '$(id)' }, /bridge must match/],
    [{ vlan: 4095 }, /vlan must be an integer 1..4094/],
    [{ vlan: 0 }, /vlan must be/],
    [{ vlan: null }, /vlan must be/],
    [{ vlan: '100' }, /vlan must be/],
    [{ type: 'linux-bridge', vlan: 5 }, /not supported on linux-bridge/],
    [{ cidr: '198.18.10.5/24' }, /host bits/],
    [{ cidr: '198.18.10.0/31' }, /prefix must be 8..30/],
    [{ gateway: '198.18.11.1' }, /gateway .* inside/],
    [{ gateway: '198.18.10.0' }, /gateway .* inside/],
    [{ rangeStart: '198.18.9.10' }, /range/],
    [{ rangeEnd: '198.18.10.255' }, /range/],
    [{ rangeStart: '198.18.10.50', rangeEnd: '198.18.10.40' }, /range/],
    [{ hostnameTemplate: '{name}_{o4}' }, /RFC 1123/],
    [{ hostnameTemplate: '{bogus}' }, /unknown placeholder/],
    [{ domain: 'bad domain' }, /domain/],
    [{ uplink: 'eth0' }, /uplink is only for linux-bridge/],
    [{ mtu: 100 }, /mtu/],
    [{ extra: 1 }, /unknown field/],
  ])('refuses %p', (patch, re) => expect(() => validateNetworkRecord({ ...ok, ...patch })).toThrow(re));

  test('every problem is listed at once', () => {
    try {
      validateNetworkRecord({ ...ok, vlan: 4095, bridge: 'x y', hostnameTemplate: '-{o4}' });
      throw new Error('expected a throw');
    } catch (e) {
      expect((e as { details: string[] }).details.length).toBe(3);
    }
  });
});
