import { checkTransition, type Operation } from '../../services/compute/state-machine';
import { Conflict } from '../../services/errors';
import type { VmState } from '../../services/db/instances-repo';

describe('instance state machine', () => {
  test.each<[Operation, VmState, string | null, 'run' | 'noop' | 'conflict']>([
    ['stop', 'active', null, 'run'],
    ['stop', 'stopped', null, 'noop'],
    ['stop', 'paused', null, 'conflict'],
    ['start', 'stopped', null, 'run'],
    ['start', 'active', null, 'noop'],
    ['start', 'error', null, 'conflict'],
    ['pause', 'active', null, 'run'],
    ['pause', 'stopped', null, 'conflict'],
    ['pause', 'paused', null, 'noop'],
    ['unpause', 'paused', null, 'run'],
    ['unpause', 'stopped', null, 'conflict'],
    ['reboot_soft', 'active', null, 'run'],
    ['reboot_soft', 'stopped', null, 'conflict'],
    ['reboot_hard', 'error', null, 'run'],
    ['terminate', 'error', null, 'run'],
    ['terminate', 'active', 'rebooting', 'run'],
    ['terminate', 'deleted', null, 'noop'],
    ['stop', 'active', 'pausing', 'conflict'],
    ['update_resources', 'paused', null, 'run'],
    ['migrate', 'paused', null, 'conflict'],
  ])('%s from %s (task %s) -> %s', (op, vm, task, want) => {
    if (want === 'conflict') {
      expect(() => checkTransition(op, vm, task)).toThrow(Conflict);
    } else {
      expect(checkTransition(op, vm, task)).toBe(want);
    }
  });

  test('the refusal names the state and what is allowed', () => {
    expect(() => checkTransition('pause', 'stopped', null)).toThrow('cannot pause instance in vm_state stopped (allowed from: active)');
  });
});
