import type { Db } from '../db/knex';
import { getInstance } from '../db/instances-repo';
import { NotFound } from '../errors';
import type { RequestContext, RpcEndpoint } from '../rpc/server';
import { loadRpcSchema } from '../rpc/schemas';

export interface GetInfoArgs {
  instance_uuid: string;
}

export interface InstanceInfo {
  uuid: string;
  name: string;
  vm_state: string;
  power_state: string;
  task_state: string | null;
  hostname: string | null;
  container_id: string | null;
  host: string;
}

/** get_info(instance_uuid): the recorded state of one instance of this host. */
export function getInfoEndpoint(deps: { db: Db; host: string }): RpcEndpoint<GetInfoArgs, InstanceInfo> {
  return {
    schema: loadRpcSchema('get_info'),
    resumable: true,
    async handler(_ctx: RequestContext, args: GetInfoArgs): Promise<InstanceInfo> {
      const inst = await getInstance(deps.db, args.instance_uuid);
      if (!inst) throw new NotFound(`Instance ${args.instance_uuid} could not be found.`);
      if (inst.host !== deps.host) {
        throw new NotFound(`Instance ${args.instance_uuid} could not be found on host ${deps.host} (it is on ${inst.host ?? 'no host'}).`);
      }
      return {
        uuid: inst.uuid,
        name: inst.name,
        vm_state: inst.vm_state,
        power_state: inst.power_state,
        task_state: inst.task_state,
        hostname: inst.hostname,
        container_id: inst.container_id,
        host: inst.host,
      };
    },
  };
}
