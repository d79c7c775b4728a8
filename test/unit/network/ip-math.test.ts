import { chooseAddress, cidrContains, intToIp, ipToInt, isAllocatable, isIpv4, parseCidr, poolSize } from '../../../drivers/network/ip-math';

describe('ip-math', () => {
  test.each([
    ['198.18.0.1', true], ['255.255.255.255', true], ['0.0.0.0', true],
    ['198.18.0', false], ['198.18.0.256', false], ['010.1.1.1', false], ['1.2.3.4 ', false], ['1.2.3.4;id', false], ['::1', false], [42, false],
  ])('isIpv4(%p) = %p', (ip, ok) => expect(isIpv4(ip)).toBe(ok));

  test.each([['0.0.0.0', 0], ['198.18.0.1', 3323068417], ['255.255.255.255', 4294967295]])('ipToInt/intToIp %s', (ip, n) => {
    expect(ipToInt(ip)).toBe(n);
    expect(intToIp(n)).toBe(ip);
  });

  test.each([
    ['198.18.0.0/24', '198.18.0.0', '198.18.0.255', 24],
    ['198.18.0.0/15', '198.18.0.0', '198.19.255.255', 15],
    ['198.18.4.0/30', '198.18.4.0', '198.18.4.3', 30],
  ])('parseCidr %s', (text, net, bc, prefix) => {
    const c = parseCidr(text);
    expect([intToIp(c.network), intToIp(c.broadcast), c.prefix, c.text]).toEqual([net, bc, prefix, text]);
  });

  test.each(['198.18.0.7/24', '198.18.0.0/33', '198.18.0.0', 'x/24', '198.18.0.0/24;rm', 7])('parseCidr refuses %p', (bad) => {
    expect(() => parseCidr(bad)).toThrow(/CIDR|host bits|prefix/);
  });

  test('cidrContains', () => {
    const c = parseCidr('198.18.1.0/24');
    expect(cidrContains(c, '198.18.1.0')).toBe(true);
    expect(cidrContains(c, '198.18.1.255')).toBe(true);
    expect(cidrContains(c, '198.18.2.0')).toBe(false);
  });

  const pool = { cidr: '198.18.0.0/29', gateway: '198.18.0.1', rangeStart: '198.18.0.0', rangeEnd: '198.18.0.7' };
  test('network, gateway and broadcast are never chosen', () => {
    const got: string[] = [];
    for (let i = 0; i < 5; i++) got.push(chooseAddress(pool, got));
    expect(got).toEqual(['198.18.0.2', '198.18.0.3', '198.18.0.4', '198.18.0.5', '198.18.0.6']);
    expect(() => chooseAddress(pool, got)).toThrow(/no free address/);
    expect(poolSize(pool)).toBe(5);
  });

  test.each([
    [0, '198.18.0.2'], [3, '198.18.0.3'], [7, '198.18.0.2'], [6, '198.18.0.6'], [-1, '198.18.0.2'], [1000, '198.18.0.2'],
  ])('startOffset %p walks from there and wraps, skipping reserved', (off, want) => {
    expect(chooseAddress(pool, [], off)).toBe(want);
  });

  test('taken addresses are skipped', () => {
    expect(chooseAddress({ cidr: '198.18.0.0/24', gateway: null, rangeStart: '198.18.0.10', rangeEnd: '198.18.0.12' }, ['198.18.0.10', '198.18.0.11'])).toBe('198.18.0.12');
  });

  test.each([
    ['198.18.0.2', true], ['198.18.0.1', false], ['198.18.0.0', false], ['198.18.0.7', false], ['198.18.0.8', false], ['nope', false],
  ])('isAllocatable(%s) = %p', (ip, ok) => expect(isAllocatable(pool, ip)).toBe(ok));
});
