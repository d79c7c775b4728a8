import type { ApiDeps, ApiRoute } from '../route';
import { hostRoutes } from './hosts';
import { instanceActionRoutes } from './instance-actions';
import { instanceRoutes } from './instances';
import { metaRoutes } from './meta';
import { migrationRoutes } from './migrations';
import { networkRoutes } from './networks';

/** THE route table: app.ts registers exactly these, the spec test compares them with openapi.yaml. */
export function apiRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    ...metaRoutes(deps),
    ...hostRoutes(deps),
    ...networkRoutes(deps),
    ...instanceRoutes(deps),
    ...instanceActionRoutes(deps),
    ...migrationRoutes(deps),
  ];
}
