import { NotFound } from '../../errors';
import type { ApiDeps, ApiRoute } from '../route';

const COLUMNS = ['id', 'instance_uuid', 'source_host', 'dest_host', 'status', 'step', 'image_ref', 'image_digest', 'progress', 'error', 'auto_confirm_at', 'created_at', 'updated_at'];

export function migrationRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    {
      method: 'get', path: '/migrations',
      handler: async ({ v }) => {
        const q = deps.db('migrations').select(COLUMNS).orderBy('id', 'desc').limit(1000);
        if (v.query.instance_uuid) q.where({ instance_uuid: v.query.instance_uuid });
        if (v.query.status) q.where({ status: v.query.status });
        if (v.query.host) q.where((w) => w.where({ source_host: v.query.host }).orWhere({ dest_host: v.query.host }));
        return { body: { migrations: await q } };
      },
    },
    {
      method: 'get', path: '/migrations/{id}',
      handler: async ({ v }) => {
        const m = await deps.db('migrations').select(COLUMNS).where({ id: v.params.id }).first();
        if (!m) throw new NotFound(`migration ${v.params.id} not found`);
        return { body: { migration: m } };
      },
    },
  ];
}
