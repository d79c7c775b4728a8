import { Conflict } from '../errors';
import type { VmState } from '../db/instances-repo';

/**
 * Which vm_states each operation may start from, and where "already there" is a success that
 * changes nothing (moby: stop on a stopped container is "not modified", not an error).
 */
export type Operation =
  | 'stop' | 'start' | 'reboot_soft' | 'reboot_hard' | 'pause' | 'unpause' | 'terminate'
  | 'update_resources' | 'snapshot' | 'migrate';

interface Rule {
  from: VmState[];
  noopFrom?: VmState[];
}

export const TRANSITIONS: Record<Operation, Rule> = {
  stop: { from: ['active'], noopFrom: ['stopped'] },
  start: { from: ['stopped'], noopFrom: ['active'] },
  reboot_soft: { from: ['active'] },
  reboot_hard: { from: ['active', 'stopped', 'paused', 'error'] },
  pause: { from: ['active'], noopFrom: ['paused'] },
  unpause: { from: ['paused'], noopFrom: ['active'] },
  terminate: { from: ['building', 'active', 'stopped', 'paused', 'resized', 'error'], noopFrom: ['deleted'] },
  update_resources: { from: ['active', 'stopped', 'paused'] },
  snapshot: { from: ['active', 'stopped', 'paused'] },
  migrate: { from: ['active', 'stopped'] },
};

export type TransitionDecision = 'run' | 'noop';

/**
 * Decide whether `op` may run on an instance in (vmState, taskState). A task in progress blocks
 * everything but terminate (the per-instance lock makes a live task_state mean "someone is on
 * it"; the reconciler clears ones left by a crash).
 */
export function checkTransition(op: Operation, vmState: VmState, taskState: string | null): TransitionDecision {
  const rule = TRANSITIONS[op];
  if (taskState && op !== 'terminate') {
    throw new Conflict(`cannot ${op.replace('_', ' ')} instance while task_state is ${taskState}`, {
      details: { vm_state: vmState, task_state: taskState, operation: op },
    });
  }
  if (rule.noopFrom?.includes(vmState)) return 'noop';
  if (rule.from.includes(vmState)) return 'run';
  throw new Conflict(`cannot ${op.replace('_', ' ')} instance in vm_state ${vmState} (allowed from: ${rule.from.join(', ')})`, {
    details: { vm_state: vmState, task_state: taskState, operation: op },
  });
}
