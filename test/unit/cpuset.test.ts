import {
  chooseDedicatedCpus,
  cpuSharesFor,
  formatCpuList,
  parseCpuList,
  sharedCpuset,
} from '../../services/compute/cpuset';
import { InvalidInput, NoCapacity } from '../../services/errors';

describe('parseCpuList', () => {
  test.each<[string, number[]]>([
    ['0', [0]],
    ['0-3', [0, 1, 2, 3]],
    ['0-3,5', [0, 1, 2, 3, 5]],
    ['5,0-1', [0, 1, 5]],
    ['1,1,0-1', [0, 1]],
    ['0-0', [0]],
    ['', []],
    ['\n', []],
    ['0-1\n', [0, 1]],
    [' 2 , 4-5 ', [2, 4, 5]],
    ['8191', [8191]],
  ])('%j -> %j', (text, cpus) => {
    expect(parseCpuList(text)).toEqual(cpus);
  });

  test.each(['a', '1,,2', '-1', '3-1', '1-', '0x1', '1.5', '8192', '0-99999999', '1 2'])('%j is refused', (text) => {
    expect(() => parseCpuList(text)).toThrow(InvalidInput);
  });
});

describe('formatCpuList', () => {
  test.each<[number[], string]>([
    [[], ''],
    [[0], '0'],
    [[0, 1], '0-1'],
    [[0, 1, 2, 3, 5], '0-3,5'],
    [[5, 3, 1, 2, 0], '0-3,5'],
    [[1, 1, 1], '1'],
    [[0, 2, 4], '0,2,4'],
    [[7, 8, 9, 11, 12], '7-9,11-12'],
  ])('%j -> %j', (cpus, text) => {
    expect(formatCpuList(cpus)).toBe(text);
  });

  test.each([[[-1]], [[1.5]], [[NaN]], [[8192]]])('%j is refused', (cpus) => {
    expect(() => formatCpuList(cpus)).toThrow(InvalidInput);
  });

  test('round-trips', () => {
    for (const s of ['0-3,5', '1', '0,2-4,6-7', '']) expect(formatCpuList(parseCpuList(s))).toBe(s);
  });
});

describe('chooseDedicatedCpus', () => {
  test.each<[string, number[], number[], number, number[]]>([
    ['lowest free first', [0, 1, 2, 3], [], 2, [0, 1]],
    ['skips pinned', [0, 1, 2, 3], [0, 2], 2, [1, 3]],
    ['unsorted host list', [3, 1, 2, 0], [1], 1, [0]],
    ['exactly what is free', [4, 5], [4], 1, [5]],
    ['all of them', [0, 1], [], 2, [0, 1]],
    ['pins outside the dedicated set do not matter', [2, 3], [0, 1], 2, [2, 3]],
    ['duplicates in the host list count once', [1, 1, 2], [], 2, [1, 2]],
  ])('%s', (_name, host, pinned, count, expected) => {
    expect(chooseDedicatedCpus(host, new Set(pinned), count)).toEqual(expected);
  });

  test.each<[string, number[], number[], number, RegExp, { needed: number; free: number }]>([
    ['none free', [0, 1], [0, 1], 1, /need 1, 0 free \(2 dedicated on the host\)/, { needed: 1, free: 0 }],
    ['too few free', [0, 1, 2], [1], 3, /need 3, 2 free \(3 dedicated on the host, free: 0,2\)/, { needed: 3, free: 2 }],
    ['no dedicated CPUs at all', [], [], 1, /need 1, 0 free \(0 dedicated/, { needed: 1, free: 0 }],
  ])('NoCapacity: %s', (_name, host, pinned, count, message, details) => {
    let caught: unknown;
    try {
      chooseDedicatedCpus(host, new Set(pinned), count);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(NoCapacity);
    expect((caught as Error).message).toMatch(message);
    expect((caught as NoCapacity).details).toMatchObject(details);
  });

  test.each([0, -1, 1.5, NaN])('count %p is invalid input', (count) => {
    expect(() => chooseDedicatedCpus([0, 1], new Set(), count)).toThrow(InvalidInput);
  });

  test('a bad host CPU id is invalid input', () => {
    expect(() => chooseDedicatedCpus([0, -3], new Set(), 1)).toThrow(InvalidInput);
  });
});

describe('sharedCpuset', () => {
  test.each<[number[], number[], string]>([
    [[0, 1], [0, 1], '0-1'],
    [[3, 1, 2, 3], [1, 2, 3], '1-3'],
    [[0, 2], [0, 2], '0,2'],
  ])('%j -> %j %j', (host, cpus, cpuset) => {
    expect(sharedCpuset(host)).toEqual({ cpus, cpuset });
  });

  test('an empty shared pool is NoCapacity', () => {
    expect(() => sharedCpuset([])).toThrow(NoCapacity);
    expect(() => sharedCpuset([])).toThrow(/no shared CPU pool/);
  });
});

describe('cpuSharesFor', () => {
  test.each<[string, { vcpus: number; cpu_shares?: number | null }, number]>([
    ['1 vCPU default', { vcpus: 1 }, 1024],
    ['4 vCPU default', { vcpus: 4 }, 4096],
    ['null means default', { vcpus: 2, cpu_shares: null }, 2048],
    ['explicit', { vcpus: 2, cpu_shares: 512 }, 512],
    ['explicit minimum', { vcpus: 1, cpu_shares: 2 }, 2],
    ['explicit maximum', { vcpus: 1, cpu_shares: 262144 }, 262144],
    ['default capped at the kernel max', { vcpus: 300 }, 262144],
  ])('%s', (_name, flavor, shares) => {
    expect(cpuSharesFor(flavor)).toBe(shares);
  });

  test.each<[string, { vcpus: number; cpu_shares?: number | null }]>([
    ['zero vcpus', { vcpus: 0 }],
    ['fractional vcpus', { vcpus: 1.5 }],
    ['shares below 2', { vcpus: 1, cpu_shares: 1 }],
    ['shares above max', { vcpus: 1, cpu_shares: 262145 }],
    ['fractional shares', { vcpus: 1, cpu_shares: 10.5 }],
  ])('%s is invalid input', (_name, flavor) => {
    expect(() => cpuSharesFor(flavor)).toThrow(InvalidInput);
  });
});
