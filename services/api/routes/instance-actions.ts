import { listActions, listEvents, type InstanceActionRow } from '../../db/actions-repo';
import { NotFound } from '../../errors';
import type { ApiDeps, ApiRoute } from '../route';

const iso = (d: Date | string | null): string | null => (d ? new Date(d).toISOString() : null);

/** nova's os-instance-actions fields (plus our numeric id and host). */
function presentAction(a: InstanceActionRow): Record<string, unknown> {
  return {
    id: a.id, action: a.action, instance_uuid: a.instance_uuid, request_id: a.request_id, user_id: a.user_id,
    project_id: a.project_id, host: a.host, start_time: iso(a.start_time), finish_time: iso(a.finish_time),
    result: a.result, message: a.message,
  };
}

export function instanceActionRoutes(deps: ApiDeps): ApiRoute[] {
  // Actions outlive the instance (nova shows them for deleted servers too).
  const known = async (uuid: string): Promise<void> => {
    if (!(await deps.db('instances').where({ uuid }).first())) throw new NotFound(`instance ${uuid} not found`);
  };
  return [
    {
      method: 'get', path: '/instances/{uuid}/actions',
      handler: async ({ v }) => {
        await known(v.params.uuid);
        return { body: { instanceActions: (await listActions(deps.db, v.params.uuid)).map(presentAction) } };
      },
    },
    {
      method: 'get', path: '/instances/{uuid}/actions/{id}',
      handler: async ({ v }) => {
        await known(v.params.uuid);
        const a = (await deps.db('instance_actions').where({ id: v.params.id, instance_uuid: v.params.uuid }).first()) as InstanceActionRow | undefined;
        if (!a) throw new NotFound(`instance ${v.params.uuid} has no action ${v.params.id}`);
        const events = (await listEvents(deps.db, a.id)).map((e) => ({
          event: e.event, host: e.host, start_time: iso(e.start_time), finish_time: iso(e.finish_time), result: e.result,
          traceback: e.traceback, details: e.details ?? null,
        }));
        return { body: { instanceAction: { ...presentAction(a), events } } };
      },
    },
  ];
}
