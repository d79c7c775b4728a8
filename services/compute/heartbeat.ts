import type { Config } from '../config';
import { upsertHostHeartbeat } from '../db/hosts-repo';
import type { Db } from '../db/knex';
import { describeError } from '../errors';
import { logger } from '../logger';
import { hostCapacity } from './host-capacity';

/**
 * Register this host and refresh its capacity + heartbeat every `heartbeatIntervalSec`.
 * A database outage is logged and retried on the next tick; it never stops the process.
 */
export function startHeartbeat(cfg: Config, db: Db): { stop(): void; beat(): Promise<boolean> } {
  let lastOk = true;
  const beat = async (): Promise<boolean> => {
    try {
      await upsertHostHeartbeat(db, cfg.host, hostCapacity(cfg));
      if (!lastOk) logger.info({ host: cfg.host }, 'Heartbeat restored');
      lastOk = true;
      return true;
    } catch (err) {
      if (lastOk) logger.warn({ host: cfg.host, err: describeError(err) }, 'Heartbeat failed; will retry');
      lastOk = false;
      return false;
    }
  };
  const timer = setInterval(() => void beat(), cfg.heartbeatIntervalSec * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer), beat };
}
