/**
 * JSON Schemas of RPC arguments live in api-spec/rpc/<method>.json; shared definitions in
 * api-spec/rpc/_*.json (e.g. _defs.json with InstanceSpec). Loaded at run time from the source
 * tree so ts-jest and the compiled service read the same files.
 */
import fs from 'node:fs';
import path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { apiSpecPath } from '../api-spec-files';

/** api-spec/rpc (services/rpc or dist/services/rpc). */
export function rpcSpecDir(): string {
  return apiSpecPath('rpc');
}

/** The args schema of one method: api-spec/rpc/<method>.json. */
export function loadRpcSchema(method: string): Record<string, unknown> {
  if (!/^[a-z_][a-z0-9_]*$/.test(method)) throw new Error(`bad method name ${method}`);
  const file = path.join(rpcSpecDir(), `${method}.json`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** Shared definition files (api-spec/rpc/_*.json), referenced by `$id`. */
export function loadSharedSchemas(): Record<string, unknown>[] {
  const dir = rpcSpecDir();
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('_') && f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>);
}

export function createRpcAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: false });
  addFormats(ajv);
  for (const s of loadSharedSchemas()) ajv.addSchema(s);
  return ajv;
}

/** One line per problem, naming the field: `args.instance_uuid: must match format "uuid"`. */
export function describeAjvErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const where = 'args' + e.instancePath.replace(/\//g, '.').replace(/\.(\d+)(?=\.|$)/g, '[$1]');
    switch (e.keyword) {
      case 'additionalProperties':
        return `${where}: unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
      case 'required':
        return `${where}: missing required field "${(e.params as { missingProperty: string }).missingProperty}"`;
      case 'enum':
        return `${where}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
      default:
        return `${where}: ${e.message ?? e.keyword}`;
    }
  });
}

export type ArgsValidator = ValidateFunction;
