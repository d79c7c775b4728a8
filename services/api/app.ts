import crypto from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { InvalidInput, NotFound, toHttp } from '../errors';
import { checkHealth } from '../health';
import { logger } from '../logger';

export interface ApiDeps {
  config: Config;
  db: Db;
}

declare module 'express-serve-static-core' {
  interface Request {
    requestId: string;
  }
}

/** `req-<uuid>` like nova; a caller-supplied X-Request-Id is kept if it is sane. */
function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const given = req.header('x-request-id');
  req.requestId = given && /^[A-Za-z0-9_.:-]{1,128}$/.test(given) ? given : `req-${crypto.randomUUID()}`;
  res.setHeader('X-Request-Id', req.requestId);
  next();
}

export function createApiApp(deps: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestIdMiddleware);
  app.use(express.json({ limit: '1mb' }));

  app.get('/healthz', async (_req, res, next) => {
    try {
      const report = await checkHealth(deps.config, deps.db);
      res.status(report.status === 'ok' ? 200 : 503).json(report);
    } catch (err) {
      next(err);
    }
  });

  app.use((req, _res, next) => next(new NotFound(`no route for ${req.method} ${req.path}`)));

  // One error handler: every error leaves as {error: {code, message, details, request_id}}.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let e = err;
    const bodyErr = err as { type?: string; message?: string };
    if (bodyErr && (bodyErr.type === 'entity.parse.failed' || bodyErr.type === 'entity.too.large')) {
      e = new InvalidInput(`request body: ${bodyErr.message}`, { cause: err });
    }
    const { status, body } = toHttp(e, req.requestId);
    if (status >= 500) logger.error({ err, requestId: req.requestId }, 'request failed');
    res.status(status).json(body);
  });
  return app;
}
