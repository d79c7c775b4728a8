import { assertIfname, ifaceIdFor, instanceKey, isLocallyAdministeredUnicast, macFor, nicNames, parseHostLinkName, UUID_PATTERN } from '../../../drivers/network/names';

const U1 = '3f2a9c1e-7b4d-4e2f-9a8b-1c2d3e4f5a6b';
const U2 = '3f2a9c1e-7b4d-4e2f-9a8b-1c2d3e4f5a6c';

describe('names', () => {
  test('veth/IFB names are deterministic, <= 15 chars, distinct per NIC', () => {
    const a = nicNames(U1, 0);
    expect(a).toEqual({ hostVeth: 'cvh3f2a9c1e7b0', ifb: 'cvi3f2a9c1e7b0', containerIfname: 'eth0' });
    expect(nicNames(U1, 0)).toEqual(a);
    for (let i = 0; i < 16; i++) {
      const n = nicNames(U1, i);
      expect(n.hostVeth.length).toBeLessThanOrEqual(15);
      expect(n.ifb.length).toBeLessThanOrEqual(15);
      expect(parseHostLinkName(n.hostVeth)).toEqual({ kind: 'veth', key: instanceKey(U1), nicIndex: i });
    }
    expect(nicNames(U1, 1).hostVeth).not.toBe(a.hostVeth);
  });

  test.each([[U1, -1], [U1, 16], [U1, 1.5], ['3F2A9C1E-7B4D-4E2F-9A8B-1C2D3E4F5A6B', 0], ['x;rm -rf /', 0], ['', 0]])('nicNames refuses %p / %p', (u, i) => {
    expect(() => nicNames(u, i)).toThrow(/uuid|NIC index/);
  });

  test('MACs are locally administered unicast, stable, distinct per NIC and instance', () => {
    const macs = new Set<string>();
    for (const u of [U1, U2]) for (let i = 0; i < 4; i++) {
      const m = macFor(u, i);
      expect(isLocallyAdministeredUnicast(m)).toBe(true);
      expect(macFor(u, i)).toBe(m);
      macs.add(m);
    }
    expect(macs.size).toBe(8);
  });

  test.each([['02:00:00:00:00:01', true], ['fa:16:3e:00:00:01', true], ['00:16:3e:00:00:01', false], ['03:00:00:00:00:01', false], ['02:00:00:00:00', false]])(
    'isLocallyAdministeredUnicast(%s) = %p', (m, ok) => expect(isLocallyAdministeredUnicast(m)).toBe(ok));

  test('iface-id is the uuid for NIC 0 and uuid-shaped per other NIC', () => {
    expect(ifaceIdFor(U1, 0)).toBe(U1);
    expect(ifaceIdFor(U1, 1)).toMatch(UUID_PATTERN);
    expect(ifaceIdFor(U1, 1)).not.toBe(ifaceIdFor(U1, 2));
  });

  test.each(['eth0', 'cvh0123456789a', 'br-int', 'a.b_c'])('assertIfname accepts %s', (n) => expect(() => assertIfname(n)).not.toThrow());
  test.each(['sixteen-chars-xx', '-evil', 'a b', 'a;b', 'a$(x)', '', 'a\nb', 'a/b'])('assertIfname refuses %p', (n) => expect(() => assertIfname(n)).toThrow(/interface name/));
  test.each(['cvh3f2a9c1e7b', 'cvx3f2a9c1e7b0', 'eth0', 'cvh3f2a9c1e7bz0'])('parseHostLinkName(%s) is null', (n) => expect(parseHostLinkName(n)).toBeNull());
});
