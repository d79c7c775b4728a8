/**
 * The compute RPC API: the ONE table of methods this host answers. Operations arrive with their
 * issues (build_and_run_instance, lifecycle, resize/migration steps...) as one module each,
 * registered here.
 */
import type { Db } from '../db/knex';
import type { EndpointTable } from '../rpc/server';
import { getAvailableResourceEndpoint } from './get-available-resource';
import { getInfoEndpoint } from './get-info';
import { listInstancesEndpoint } from './list-instances';

export interface ComputeEndpointDeps {
  db: Db;
  host: string;
}

export function createComputeEndpoints(deps: ComputeEndpointDeps): EndpointTable {
  return {
    get_available_resource: getAvailableResourceEndpoint(deps),
    list_instances: listInstancesEndpoint(deps),
    get_info: getInfoEndpoint(deps),
  };
}
