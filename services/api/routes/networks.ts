import type { NetworkRecord } from '../../../drivers/network/network-record';
import { NetworksRepo } from '../../db/networks-repo';
import { ComputeError, InvalidInput } from '../../errors';
import type { FieldProblem } from '../openapi';
import type { ApiDeps, ApiRoute } from '../route';

/** API field (snake_case) <-> NetworkRecord field (camelCase). */
const FIELDS: Array<[string, keyof NetworkRecord]> = [
  ['name', 'name'], ['type', 'type'], ['bridge', 'bridge'], ['vlan', 'vlan'], ['cidr', 'cidr'], ['gateway', 'gateway'],
  ['range_start', 'rangeStart'], ['range_end', 'rangeEnd'], ['hostname_template', 'hostnameTemplate'], ['domain', 'domain'],
  ['uplink', 'uplink'], ['mtu', 'mtu'],
];

export function presentNetwork(n: NetworkRecord, allocated?: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [api, rec] of FIELDS) out[api] = n[rec];
  if (allocated !== undefined) out.allocated = allocated;
  return out;
}

function toRecord(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [api, rec] of FIELDS) if (body[api] !== undefined) out[rec] = body[api];
  return out;
}

/** The repository names fields in camelCase; name them as the API does and say which field failed. */
function apiProblems(problems: unknown): FieldProblem[] {
  const list = Array.isArray(problems) ? problems.map(String) : [String(problems)];
  return list.map((p) => {
    let msg = p;
    for (const [api, rec] of FIELDS) msg = msg.replace(new RegExp(`\\b${rec}\\b`, 'g'), api);
    const hit = FIELDS.map(([api]) => api).find((api) => new RegExp(`^(unknown field "${api}"|${api}\\b)`).test(msg))
      ?? (/^(range |range holds)/.test(msg) ? 'range_start' : /template|hostname|\{/.test(msg) ? 'hostname_template' : /prefix|cidr|CIDR/.test(msg) ? 'cidr' : undefined);
    return { field: hit ? `body.${hit}` : 'body', message: msg };
  });
}

export function networkRoutes(deps: ApiDeps): ApiRoute[] {
  const repo = new NetworksRepo(deps.db);
  const counts = async (): Promise<Map<string, number>> => {
    const rows = (await deps.db('ip_allocations').select('network').count<{ network: string; count: string }[]>('* as count').groupBy('network'));
    return new Map(rows.map((r) => [r.network, Number(r.count)]));
  };
  return [
    {
      method: 'get', path: '/networks',
      handler: async () => {
        const c = await counts();
        return { body: { networks: (await repo.list()).map((n) => presentNetwork(n, c.get(n.name) ?? 0)) } };
      },
    },
    {
      method: 'post', path: '/networks',
      handler: async ({ v }) => {
        let n: NetworkRecord;
        try {
          n = await repo.create(toRecord(v.body));
        } catch (err) {
          if (err instanceof ComputeError && err.code === 'invalid_input') {
            const problems = apiProblems(err.details ?? err.message);
            throw new InvalidInput(`invalid network: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`, { cause: err, details: problems });
          }
          throw err;
        }
        return { status: 201, body: { network: presentNetwork(n, 0) } };
      },
    },
    {
      method: 'get', path: '/networks/{name}',
      handler: async ({ v }) => {
        const n = await repo.get(v.params.name);
        return { body: { network: presentNetwork(n, (await counts()).get(n.name) ?? 0) } };
      },
    },
    {
      method: 'delete', path: '/networks/{name}',
      handler: async ({ v }) => {
        await repo.delete(v.params.name);
        return { status: 204 };
      },
    },
  ];
}
