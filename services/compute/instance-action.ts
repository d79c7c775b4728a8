import { finishAction, finishEvent, startAction, startEvent, type ActionContext } from '../db/actions-repo';
import type { Db } from '../db/knex';
import { describeError } from '../errors';

/**
 * nova's wrap_instance_action / wrap_instance_event: an operation records one action row with
 * the caller's request id, user and project; each step inside it records an event with its
 * start, finish, result and (on error) the cause. Recording failures never mask the operation's
 * own outcome.
 */
export class InstanceAction {
  private constructor(private readonly db: Db, readonly id: number, private readonly host: string) {}

  static async start(db: Db, instanceUuid: string, action: string, host: string, ctx: ActionContext): Promise<InstanceAction> {
    return new InstanceAction(db, await startAction(db, instanceUuid, action, host, ctx), host);
  }

  /** Run `fn` as event `name` of this action. */
  async event<T>(name: string, fn: () => Promise<T>, details?: unknown): Promise<T> {
    const eventId = await startEvent(this.db, this.id, name, this.host);
    try {
      const out = await fn();
      await finishEvent(this.db, eventId, 'Success', { details });
      return out;
    } catch (err) {
      await finishEvent(this.db, eventId, 'Error', { traceback: describeError(err), details }).catch(() => undefined);
      throw err;
    }
  }

  private openEvent: number | undefined;

  /** Start an event that `endEvent` closes (for step hooks that cannot wrap a function). */
  async beginEvent(name: string): Promise<void> {
    this.openEvent = await startEvent(this.db, this.id, name, this.host);
  }

  async endEvent(err?: unknown): Promise<void> {
    if (this.openEvent === undefined) return;
    const id = this.openEvent;
    this.openEvent = undefined;
    await finishEvent(this.db, id, err ? 'Error' : 'Success', err ? { traceback: describeError(err) } : {});
  }

  async finish(err?: unknown): Promise<void> {
    await finishAction(this.db, this.id, err ? 'Error' : 'Success', err ? describeError(err) : undefined).catch(() => undefined);
  }

  /** Wrap a whole operation: action finished with Success or Error whatever happens. */
  static async run<T>(db: Db, instanceUuid: string, action: string, host: string, ctx: ActionContext, fn: (a: InstanceAction) => Promise<T>): Promise<T> {
    const a = await InstanceAction.start(db, instanceUuid, action, host, ctx);
    try {
      const out = await fn(a);
      await a.finish();
      return out;
    } catch (err) {
      await a.finish(err);
      throw err;
    }
  }
}
