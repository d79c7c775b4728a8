import { HOSTS_HEADER, isDomainName, isHostnameLabel, parseTemplate, renderHostname, renderHostsFile, sanitizeName } from '../../../drivers/network/hostname';

const base = { name: 'web', ip: '198.18.3.42', network: 'prod-net', uuid: '3f2a9c1e-7b4d-4e2f-9a8b-1c2d3e4f5a6b' };

describe('hostname templates', () => {
  test.each([
    ['{name}', 'web'],
    ['{name}-{ip_dashed}', 'web-198-18-3-42'],
    ['web-{o3}-{o4}', 'web-3-42'],
    ['h{o1}x{o2}', 'h198x18'],
    ['{network}-{short_uuid}', 'prod-net-3f2a9c1e'],
    ['{short_uuid}', '3f2a9c1e'],
  ])('%s -> %s', (tpl, want) => expect(renderHostname(tpl, base)).toBe(want));

  test.each([
    ['My_Web Server!', 'my-web-server'], ['--x--', 'x'], ['ÄBC', 'bc'], ['', ''],
  ])('sanitizeName(%p) = %p', (n, want) => expect(sanitizeName(n)).toBe(want));

  test.each([
    ['{name}_x', /RFC 1123/],
    ['-{o4}', /RFC 1123/],
    ['{o4}-', /RFC 1123/],
    ['{name}.{o4}', /RFC 1123/],
    ['UPPER{o4}', /RFC 1123/],
    ['{nope}', /unknown placeholder/],
    ['{name', /unbalanced/],
    ['x}', /unbalanced/],
    ['a'.repeat(64), /RFC 1123/],
    ['$(reboot){o4}', /RFC 1123/],
    ['', /non-empty/],
  ])('template %p is refused', (tpl, re) => expect(() => renderHostname(tpl, base)).toThrow(re));

  test('a name that sanitises to nothing is refused, not rendered as an empty hostname', () => {
    expect(() => renderHostname('{name}', { ...base, name: '___' })).toThrow(/RFC 1123/);
  });

  test('parseTemplate accepts every placeholder', () => {
    expect(parseTemplate('{name}{ip_dashed}{o1}{o2}{o3}{o4}{network}{short_uuid}')).toBeTruthy();
  });

  test.each([['a', true], ['a-b', true], ['a'.repeat(63), true], ['a'.repeat(64), false], ['-a', false], ['a_b', false], ['A', false]])(
    'isHostnameLabel(%p) = %p', (s, ok) => expect(isHostnameLabel(s)).toBe(ok));
  test.each([['local', true], ['example.org', true], ['a..b', false], ['.a', false], ['a b', false]])('isDomainName(%p) = %p', (s, ok) => expect(isDomainName(s)).toBe(ok));
});

describe('hosts file', () => {
  test('header, loopback, then IP FQDN SHORT sorted by address, duplicates once', () => {
    const text = renderHostsFile([
      { ip: '198.18.0.20', hostname: 'b', domain: 'local' },
      { ip: '198.18.0.3', hostname: 'a', domain: 'local' },
      { ip: '198.18.0.20', hostname: 'b', domain: 'local' },
      { ip: '198.18.0.100', hostname: 'c', domain: 'example.org' },
    ]);
    const lines = text.trimEnd().split('\n');
    expect(lines.slice(0, HOSTS_HEADER.length)).toEqual(HOSTS_HEADER);
    expect(lines).toContain('127.0.0.1\tlocalhost');
    expect(lines.slice(-3)).toEqual(['198.18.0.3\ta.local\ta', '198.18.0.20\tb.local\tb', '198.18.0.100\tc.example.org\tc']);
    expect(text.endsWith('\n')).toBe(true);
  });

  test('order of input does not change the text', () => {
    const e = [{ ip: '198.18.0.2', hostname: 'x', domain: 'local' }, { ip: '198.18.0.1', hostname: 'y', domain: 'local' }];
    expect(renderHostsFile(e)).toBe(renderHostsFile([...e].reverse()));
  });

  test.each([
    [{ ip: '198.18.0.1\n6.6.6.6', hostname: 'a', domain: 'local' }],
    [{ ip: '198.18.0.1', hostname: 'a\n6.6.6.6 evil', domain: 'local' }],
    [{ ip: '198.18.0.1', hostname: 'a', domain: 'lo cal' }],
  ])('injection is refused: %p', (e) => expect(() => renderHostsFile([e])).toThrow(/bad/));
});
