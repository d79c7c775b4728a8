import { checkRoutesAgainstSpec } from '../../../services/api/app';
import { OpenApiValidators, specOperations, toExpressPath } from '../../../services/api/openapi';
import type { ApiDeps, ApiRoute } from '../../../services/api/route';
import { apiRoutes } from '../../../services/api/routes';
import { defaults } from '../../../services/config';
import type { Db } from '../../../services/db/knex';

const deps: ApiDeps = { config: defaults(), db: {} as Db };
const key = (m: string, p: string) => `${m.toUpperCase()} ${p}`;

describe('the route table and api-spec/openapi.yaml agree', () => {
  const routes = apiRoutes(deps);
  const ops = specOperations();

  test('every route is in the spec and every spec operation has a route (same methods and paths)', () => {
    expect(routes.map((r) => key(r.method, r.path)).sort()).toEqual(ops.map((o) => key(o.method, o.path)).sort());
  });

  test('no route is registered twice', () => {
    const keys = routes.map((r) => key(r.method, r.path));
    expect(new Set(keys).size).toBe(keys.length);
  });

  test('createApiApp refuses to start when they disagree, naming the difference', () => {
    const v = new OpenApiValidators();
    const extra: ApiRoute = { method: 'get', path: '/frobnicate', handler: async () => undefined };
    expect(() => checkRoutesAgainstSpec([...routes, extra], v)).toThrow(/not in the spec: \[GET \/frobnicate\]/);
    expect(() => checkRoutesAgainstSpec(routes.filter((r) => r.path !== '/migrations'), v)).toThrow(/no route: \[GET \/migrations\]/);
    expect(() => checkRoutesAgainstSpec(routes, v)).not.toThrow();
  });

  test('only /healthz, /metrics and /openapi.json are open; every other operation needs a token', () => {
    expect(ops.filter((o) => o.open).map((o) => o.path).sort()).toEqual(['/healthz', '/metrics', '/openapi.json']);
  });

  test('every operation has a unique operationId and a compiled validator', () => {
    const v = new OpenApiValidators();
    expect(new Set(ops.map((o) => o.operationId)).size).toBe(ops.length);
    for (const o of ops) expect(v.get(o.method, o.path)).toBeDefined();
  });

  test('path templates become express paths', () => {
    expect(toExpressPath('/instances/{uuid}/actions/{id}')).toBe('/instances/:uuid/actions/:id');
    expect(toExpressPath('/openapi.json')).toBe('/openapi.json');
  });
});
