import pino from 'pino';

/**
 * One structured logger for the whole process. Child loggers carry `instanceUuid` and
 * `requestId` as fields so a grep by either finds every line of an operation.
 */
export const logger = pino({
  level: process.env.LOG_LEVEL ?? (process.env.NODE_ENV === 'test' ? 'silent' : 'info'),
  base: { svc: 'compute' },
  redact: {
    paths: ['*.password', '*.token', '*.tokens', 'config.api.tokens', 'config.databaseUrl', 'config.amqpUrl'],
    censor: '***',
  },
  timestamp: pino.stdTimeFunctions.isoTime,
});

export type Logger = pino.Logger;

export function childLogger(fields: { instanceUuid?: string; requestId?: string; [k: string]: unknown }): Logger {
  return logger.child(fields);
}
