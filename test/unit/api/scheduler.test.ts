import { assertGroupPolicy, chooseHost, rejectReason, type HostState, type PlacementRequest } from '../../../services/api/scheduler';
import { Conflict, NoCapacity } from '../../../services/errors';

const host = (name: string, over: Partial<HostState> = {}): HostState => ({
  name, disabled: false, heartbeatAgeSec: 5, memoryMb: 4096, memoryReservedMb: 512, memoryUsedMb: 0, dedicatedCpus: 4, pinnedCpus: 0, instances: 0, ...over,
});
const req = (over: Partial<PlacementRequest> = {}): PlacementRequest => ({ vcpus: 1, memoryMb: 256, cpuPolicy: 'shared', maxHeartbeatAgeSec: 60, ...over });

describe('scheduler filters', () => {
  test.each<[string, Partial<HostState>, Partial<PlacementRequest>, RegExp | undefined]>([
    ['fits', {}, {}, undefined],
    ['disabled', { disabled: true }, {}, /disabled/],
    ['stale heartbeat', { heartbeatAgeSec: 61 }, {}, /heartbeat 61 s old/],
    ['never reported', { heartbeatAgeSec: Infinity }, {}, /never sent a heartbeat/],
    ['heartbeat exactly at the limit', { heartbeatAgeSec: 60 }, {}, undefined],
    ['not enough memory (reserved counts)', { memoryUsedMb: 3400 }, {}, /memory: needs 256 MB, 184 MB free/],
    ['memory exactly enough', { memoryUsedMb: 3328 }, {}, undefined],
    ['dedicated CPUs all pinned', { pinnedCpus: 4 }, { cpuPolicy: 'dedicated' }, /dedicated CPUs: needs 1, 0 free/],
    ['dedicated CPUs partly pinned', { pinnedCpus: 2 }, { cpuPolicy: 'dedicated', vcpus: 3 }, /needs 3, 2 free/],
    ['pins do not matter for shared', { pinnedCpus: 4 }, { cpuPolicy: 'shared', vcpus: 8 }, undefined],
    ['excluded (migration source)', {}, { excludeHosts: ['a'] }, /excluded/],
    ['anti-affinity: member here', {}, { group: { name: 'g', policy: 'anti-affinity', memberHosts: ['a'] } }, /anti-affinity/],
    ['anti-affinity: member elsewhere', {}, { group: { name: 'g', policy: 'anti-affinity', memberHosts: ['b'] } }, undefined],
    ['affinity: group elsewhere', {}, { group: { name: 'g', policy: 'affinity', memberHosts: ['b'] } }, /affinity: server group g lives on b/],
    ['affinity: first member', {}, { group: { name: 'g', policy: 'affinity', memberHosts: [] } }, undefined],
  ])('%s', (_what, h, r, expected) => {
    const why = rejectReason(host('a', h), req(r));
    if (expected) expect(why).toMatch(expected);
    else expect(why).toBeUndefined();
  });
});

describe('scheduler choice', () => {
  test('least loaded by memory after placement, then fewer instances, then name', () => {
    expect(chooseHost([host('a', { memoryUsedMb: 1000 }), host('b', { memoryUsedMb: 200 })], req()).host).toBe('b');
    // Same used memory, bigger host is less loaded.
    expect(chooseHost([host('a', { memoryUsedMb: 1000 }), host('b', { memoryUsedMb: 1000, memoryMb: 8192 })], req()).host).toBe('b');
    expect(chooseHost([host('a', { instances: 3 }), host('b', { instances: 1 })], req()).host).toBe('b');
    expect(chooseHost([host('b'), host('a')], req()).host).toBe('a');
  });

  test('rejected hosts are reported with the choice', () => {
    const p = chooseHost([host('a', { disabled: true }), host('b')], req());
    expect(p).toEqual({ host: 'b', rejected: { a: 'disabled' } });
  });

  test('anti-affinity spreads three members over three hosts and refuses a fourth', () => {
    const hosts = [host('a'), host('b'), host('c')];
    const members: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = chooseHost(hosts, req({ group: { name: 'g', policy: 'anti-affinity', memberHosts: members } }));
      members.push(p.host);
    }
    expect(members.sort()).toEqual(['a', 'b', 'c']);
    expect(() => chooseHost(hosts, req({ group: { name: 'g', policy: 'anti-affinity', memberHosts: members } }))).toThrow(NoCapacity);
  });

  test('NoCapacity names every host and why, with the reasons in details', () => {
    let err: NoCapacity | undefined;
    try {
      chooseHost([host('a', { disabled: true }), host('b', { memoryUsedMb: 3584 })], req());
    } catch (e) {
      err = e as NoCapacity;
    }
    expect(err).toBeInstanceOf(NoCapacity);
    expect(err!.message).toMatch(/a: disabled; b: memory: needs 256 MB, 0 MB free/);
    expect(err!.details).toEqual({ rejected: { a: 'disabled', b: 'memory: needs 256 MB, 0 MB free' } });
  });

  test('no hosts at all', () => {
    expect(() => chooseHost([], req())).toThrow(/no hosts registered/);
  });

  test('a group keeps its policy', () => {
    expect(() => assertGroupPolicy('g', 'affinity', 'anti-affinity')).toThrow(Conflict);
    expect(() => assertGroupPolicy('g', 'affinity', undefined)).not.toThrow();
    expect(() => assertGroupPolicy('g', 'affinity', 'affinity')).not.toThrow();
  });
});
