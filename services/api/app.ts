import crypto from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { ComputeError, InvalidInput, NotFound, toHttp } from '../errors';
import { logger } from '../logger';
import { apiRequests, collectProcessMetrics } from '../metrics';
import { authenticate, authorize } from './auth';
import { OpenApiValidators, specOperations, toExpressPath } from './openapi';
import type { ApiDeps, ApiRoute, Caller } from './route';
import { apiRoutes } from './routes';

export type { ApiDeps } from './route';

declare module 'express-serve-static-core' {
  interface Request {
    requestId: string;
    caller?: Caller;
  }
}

/** `req-<uuid>` like nova; a caller-supplied X-Request-Id is kept if it is sane. */
function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const given = req.header('x-request-id');
  req.requestId = given && /^[A-Za-z0-9_.:-]{1,128}$/.test(given) ? given : `req-${crypto.randomUUID()}`;
  res.setHeader('X-Request-Id', req.requestId);
  next();
}

/**
 * Routes and spec must agree both ways; a mismatch is a programming error caught at start-up
 * (and by test/unit/api/openapi-routes.test.ts before that).
 */
export function checkRoutesAgainstSpec(routes: readonly ApiRoute[], validators: OpenApiValidators): void {
  const routeKeys = new Set(routes.map((r) => `${r.method.toUpperCase()} ${r.path}`));
  const specKeys = new Set(specOperations(validators.doc).map((o) => `${o.method.toUpperCase()} ${o.path}`));
  const missingInSpec = [...routeKeys].filter((k) => !specKeys.has(k));
  const missingRoutes = [...specKeys].filter((k) => !routeKeys.has(k));
  if (missingInSpec.length || missingRoutes.length) {
    throw new Error(`routes and api-spec/openapi.yaml disagree: not in the spec: [${missingInSpec.join(', ')}]; no route: [${missingRoutes.join(', ')}]`);
  }
}

export function createApiApp(deps: ApiDeps, opts: { validators?: OpenApiValidators } = {}): express.Express {
  collectProcessMetrics();
  const validators = opts.validators ?? new OpenApiValidators();
  const routes = apiRoutes(deps);
  checkRoutesAgainstSpec(routes, validators);
  const openOps = new Set(specOperations(validators.doc).filter((o) => o.open).map((o) => `${o.method.toUpperCase()} ${o.path}`));

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestIdMiddleware);

  for (const route of routes) {
    const key = `${route.method.toUpperCase()} ${route.path}`;
    const validate = validators.get(route.method, route.path)!;
    const chain: express.RequestHandler[] = [];
    // Count every request of the route, by status, once it is answered.
    chain.push((req, res, next) => {
      res.on('finish', () => apiRequests.inc({ method: req.method, route: route.path, status: String(res.statusCode) }));
      next();
    });
    if (!openOps.has(key)) {
      // Auth before the body is read: an anonymous caller learns nothing about validation.
      chain.push((req, res, next) => {
        const caller = authenticate(deps.config.api.tokens, req.header('authorization'));
        authorize(caller, req.method);
        req.caller = caller;
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.on('finish', () => logger.info(
            { requestId: req.requestId, token: caller.name, role: caller.role, method: req.method, path: req.path, status: res.statusCode },
            `API ${req.method} ${req.path} by ${caller.name}`,
          ));
        }
        next();
      });
    }
    if (route.method !== 'get') chain.push(express.json({ limit: '1mb', strict: false }));
    chain.push(async (req, res) => {
      const v = validate({ params: { ...req.params }, query: { ...(req.query as Record<string, unknown>) }, body: req.body });
      const out = await route.handler({ req, res, v, requestId: req.requestId, caller: req.caller });
      if (!out || res.headersSent) return;
      if (out.body === undefined) res.status(out.status ?? 204).end();
      else res.status(out.status ?? 200).json(out.body);
    });
    app[route.method](toExpressPath(route.path), ...chain);
  }

  app.use((req, _res, next) => next(new NotFound(`no route for ${req.method} ${req.path}`)));

  // One error handler: every error leaves as {error: {code, message, details, request_id}}.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let e = err;
    // body-parser's own errors (bad JSON, too large, bad charset/encoding, a corrupt gzip stream:
    // http-errors with a 4xx status) are the client's fault: 400 in our shape.
    const bodyErr = err as { type?: string; message?: string; status?: number; expose?: boolean; code?: string };
    if (bodyErr && !(err instanceof ComputeError) && typeof bodyErr.status === 'number' && bodyErr.status >= 400 && bodyErr.status < 500 && bodyErr.expose) {
      const what = bodyErr.code === 'Z_DATA_ERROR' || bodyErr.code === 'Z_BUF_ERROR' ? 'content encoding does not match the body' : String(bodyErr.message);
      e = new InvalidInput(`request body: ${what}`, { cause: err, details: [{ field: 'body', message: what }] });
    }
    const { status, body } = toHttp(e, req.requestId);
    if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="compute"');
    if (status >= 500) logger.error({ err, requestId: req.requestId }, 'request failed');
    res.status(status).json(body);
  });
  return app;
}
