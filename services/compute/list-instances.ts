import type { Db } from '../db/knex';
import { listInstances, type VmState } from '../db/instances-repo';
import type { RequestContext, RpcEndpoint } from '../rpc/server';
import { loadRpcSchema } from '../rpc/schemas';

export interface ListInstancesArgs {
  vm_state?: VmState;
}

export interface InstanceSummary {
  uuid: string;
  name: string;
  project_id: string;
  vm_state: string;
  power_state: string;
  task_state: string | null;
  hostname: string | null;
}

/** list_instances(): the instances placed on this host (not deleted), oldest first. */
export function listInstancesEndpoint(deps: { db: Db; host: string }): RpcEndpoint<ListInstancesArgs, InstanceSummary[]> {
  return {
    schema: loadRpcSchema('list_instances'),
    resumable: true,
    async handler(_ctx: RequestContext, args: ListInstancesArgs): Promise<InstanceSummary[]> {
      const rows = await listInstances(deps.db, { host: deps.host, vmState: args.vm_state });
      return rows.map((r) => ({
        uuid: r.uuid,
        name: r.name,
        project_id: r.project_id,
        vm_state: r.vm_state,
        power_state: r.power_state,
        task_state: r.task_state,
        hostname: r.hostname,
      }));
    },
  };
}
