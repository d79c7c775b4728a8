import { describeError } from '../errors';
import type { Logger } from '../logger';

/**
 * A multi-step operation as a list of `{do, undo}` steps (the CNI bridge plugin's pattern):
 * the undo of a step is registered the moment its `do` succeeds; on failure the registered
 * undos run in reverse order. Cleanup errors are logged and collected, never replacing the
 * original error. Each step must be idempotent so that a re-run after a crash finds what exists.
 */
export interface Step<C> {
  name: string;
  do(ctx: C): Promise<void>;
  undo?(ctx: C): Promise<void>;
}

export interface PipelineHooks {
  /** Called before a step runs (persist progress: task_state, action event). */
  beforeStep?(name: string): Promise<void>;
  /** Called after a step finished, with its error if it failed. */
  afterStep?(name: string, err?: unknown): Promise<void>;
  /** Test-only fault injection: throw here to fail a named step after its `do` ran. */
  faultAfter?(name: string): Promise<void> | void;
}

export class StepFailed extends Error {
  constructor(readonly step: string, readonly original: unknown, readonly cleanupErrors: Array<{ step: string; error: unknown }>) {
    super(`step ${step} failed: ${describeError(original)}`, { cause: original });
    this.name = 'StepFailed';
  }
}

export async function runPipeline<C>(steps: Array<Step<C>>, ctx: C, log: Logger, hooks: PipelineHooks = {}): Promise<void> {
  const done: Array<Step<C>> = [];
  for (const step of steps) {
    try {
      await hooks.beforeStep?.(step.name);
      log.info({ step: step.name }, `Running step ${step.name}`);
      // Register the undo before `do`: a step that fails half-way (container created, start
      // failed) must still be cleaned, so every undo is written to tolerate "not there".
      done.push(step);
      await step.do(ctx);
      await hooks.faultAfter?.(step.name);
      await hooks.afterStep?.(step.name);
    } catch (err) {
      await hooks.afterStep?.(step.name, err).catch(() => undefined);
      const cleanupErrors: Array<{ step: string; error: unknown }> = [];
      for (const s of done.reverse()) {
        if (!s.undo) continue;
        try {
          log.info({ step: s.name }, `Undoing step ${s.name}`);
          await s.undo(ctx);
        } catch (undoErr) {
          cleanupErrors.push({ step: s.name, error: undoErr });
          log.error({ step: s.name, err: describeError(undoErr) }, `Undo of step ${s.name} failed`);
        }
      }
      throw new StepFailed(step.name, err, cleanupErrors);
    }
  }
}
