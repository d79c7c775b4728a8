import client from 'prom-client';
import { checkHealth } from '../../health';
import { registry } from '../../metrics';
import { collectInstanceMetrics } from '../instance-metrics';
import { loadOpenApi } from '../openapi';
import type { ApiDeps, ApiRoute } from '../route';

export function metaRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    {
      method: 'get', path: '/healthz',
      handler: async () => {
        const report = await checkHealth(deps.config, deps.db);
        return { status: report.status === 'ok' ? 200 : 503, body: report };
      },
    },
    { method: 'get', path: '/openapi.json', handler: async () => ({ body: loadOpenApi() }) },
    {
      method: 'get', path: '/metrics',
      handler: async ({ res, requestId }) => {
        const scraped = await collectInstanceMetrics(deps, requestId);
        const merged = client.Registry.merge([registry, scraped]);
        res.setHeader('Content-Type', merged.contentType);
        res.status(200).send(await merged.metrics());
      },
    },
  ];
}
