import { apiSpecPath } from '../api-spec-files';
/**
 * api-spec/openapi.yaml is the contract. This module loads it once, lists its operations and
 * compiles ajv validators (JSON Schema 2020-12, the dialect of OpenAPI 3.1) for each operation's
 * request body and its path + query parameters. Component schemas are registered under one
 * `$id` so `#/components/schemas/X` references resolve.
 */
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import yaml from 'js-yaml';
import { InvalidInput } from '../errors';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';
export const HTTP_METHODS: readonly HttpMethod[] = ['get', 'post', 'put', 'patch', 'delete'];

export interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, unknown>; parameters?: Record<string, unknown> };
  [k: string]: unknown;
}

interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema: Record<string, unknown>;
}

export interface SpecOperation {
  method: HttpMethod;
  /** OpenAPI path template, e.g. `/instances/{uuid}`. */
  path: string;
  operationId: string;
  /** `security: []` on the operation: no token needed. */
  open: boolean;
  parameters: ParameterObject[];
  body?: { required: boolean; schema: Record<string, unknown> };
}

/** api-spec/openapi.yaml (services/api or dist/services/api). */
export function openApiFile(): string {
  return apiSpecPath('openapi.yaml');
}

let cachedDoc: OpenApiDoc | undefined;

export function loadOpenApi(): OpenApiDoc {
  if (!cachedDoc) cachedDoc = yaml.load(fs.readFileSync(openApiFile(), 'utf8')) as OpenApiDoc;
  return cachedDoc;
}

const COMPONENTS_ID = 'https://container-compute.local/openapi/components';

/** Deep copy with `#/components/schemas/X` refs pointing at the registered components schema. */
function rewriteRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = k === '$ref' && typeof x === 'string' && x.startsWith('#/components/schemas/')
        ? `${COMPONENTS_ID}#/$defs/${x.slice('#/components/schemas/'.length)}`
        : rewriteRefs(x);
    }
    return out;
  }
  return v;
}

function resolveParam(doc: OpenApiDoc, p: unknown): ParameterObject {
  const ref = (p as { $ref?: string }).$ref;
  if (ref) {
    const name = ref.replace('#/components/parameters/', '');
    const found = doc.components.parameters?.[name];
    if (!found) throw new Error(`openapi: unknown parameter ${ref}`);
    return found as ParameterObject;
  }
  return p as ParameterObject;
}

/** Every operation of the spec (method + path), in document order. */
export function specOperations(doc: OpenApiDoc = loadOpenApi()): SpecOperation[] {
  const ops: SpecOperation[] = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    const shared = ((item.parameters ?? []) as unknown[]).map((x) => resolveParam(doc, x));
    for (const method of HTTP_METHODS) {
      const op = item[method] as Record<string, unknown> | undefined;
      if (!op) continue;
      const own = ((op.parameters ?? []) as unknown[]).map((x) => resolveParam(doc, x));
      const byKey = new Map<string, ParameterObject>();
      for (const prm of [...shared, ...own]) byKey.set(`${prm.in}:${prm.name}`, prm);
      const rb = op.requestBody as { required?: boolean; content?: Record<string, { schema: Record<string, unknown> }> } | undefined;
      const security = op.security as unknown[] | undefined;
      ops.push({
        method,
        path: p,
        operationId: String(op.operationId ?? `${method} ${p}`),
        open: Array.isArray(security) && security.length === 0,
        parameters: [...byKey.values()],
        ...(rb?.content?.['application/json'] ? { body: { required: rb.required === true, schema: rb.content['application/json'].schema } } : {}),
      });
    }
  }
  return ops;
}

export interface FieldProblem {
  field: string;
  message: string;
}

/** One problem per failing field: `body.flavor.vcpus`, `query.limit`, `path.uuid`. */
export function describeProblems(where: string, errors: ErrorObject[] | null | undefined): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const e of errors ?? []) {
    if ((e as { propertyName?: string }).propertyName !== undefined) continue; // reported by its propertyNames error
    const base = where + e.instancePath.replace(/\//g, '.').replace(/~1/g, '/').replace(/~0/g, '~');
    switch (e.keyword) {
      case 'additionalProperties':
        out.push({ field: `${base}.${(e.params as { additionalProperty: string }).additionalProperty}`, message: 'unknown field' });
        break;
      case 'required':
        out.push({ field: `${base}.${(e.params as { missingProperty: string }).missingProperty}`, message: 'is required' });
        break;
      case 'enum':
        out.push({ field: base, message: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}` });
        break;
      case 'type': {
        // One line per field even when several oneOf branches each wanted another type.
        const prev = out.find((p) => p.field === base && p.message.startsWith('must be '));
        const wanted = String((e.params as { type: string | string[] }).type);
        if (prev) prev.message = `${prev.message} or ${wanted}`;
        else out.push({ field: base, message: `must be ${wanted}` });
        break;
      }
      case 'propertyNames':
        out.push({ field: base, message: `invalid key ${JSON.stringify((e.params as { propertyName: string }).propertyName)}` });
        break;
      case 'oneOf':
      case 'if':
        break; // the branch errors around it say what is wrong
      default:
        out.push({ field: base, message: e.message ?? e.keyword });
    }
  }
  // A oneOf (e.g. `null` or an object) reports the type mismatch of every branch it did not take.
  // When something deeper under that field failed, that is the real problem: drop the type lines.
  const oneOfPaths = new Set((errors ?? []).filter((e) => e.keyword === 'oneOf').map((e) => where + e.instancePath.replace(/\//g, '.')));
  const typeAt = new Set((errors ?? []).filter((e) => e.keyword === 'type').map((e) => where + e.instancePath.replace(/\//g, '.')));
  const filtered = out.filter((p) => {
    if (!oneOfPaths.has(p.field) || !typeAt.has(p.field) || !p.message.startsWith('must be ')) return true;
    return !out.some((q) => q.field.startsWith(`${p.field}.`));
  });
  // Field names come from the client (unknown keys): keep them short in what we echo.
  for (const p of filtered) if (p.field.length > 200) p.field = `${p.field.slice(0, 200)}...`;
  // ajv reports a failing field once per oneOf branch: keep one line per field + message.
  const seen = new Set<string>();
  return filtered.filter((p) => (seen.has(`${p.field}\0${p.message}`) ? false : (seen.add(`${p.field}\0${p.message}`), true)));
}

function newAjv(doc: OpenApiDoc, coerce: boolean): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true, coerceTypes: coerce, useDefaults: coerce });
  addFormats(ajv);
  ajv.addKeyword({ keyword: 'example' });
  ajv.addSchema({ $id: COMPONENTS_ID, $defs: rewriteRefs(doc.components.schemas) as Record<string, unknown> });
  return ajv;
}

export interface RequestInput {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  body: unknown;
}

export interface ValidRequest {
  params: Record<string, any>;
  query: Record<string, any>;
  body: any;
}

/** Problems listed in one error (message and details); the count of the rest is given. */
const MAX_PROBLEMS = 50;

export type RequestValidator = (input: RequestInput) => ValidRequest;

/**
 * Compiled validators of every operation, keyed `METHOD path`. Parameters are coerced from
 * strings (query and path values are text) and get their defaults; bodies are not coerced.
 * Unknown query parameters and body fields are refused.
 */
export class OpenApiValidators {
  private readonly byKey = new Map<string, RequestValidator>();

  constructor(readonly doc: OpenApiDoc = loadOpenApi()) {
    const bodyAjv = newAjv(doc, false);
    const paramAjv = newAjv(doc, true);
    for (const op of specOperations(doc)) {
      const group = (kind: 'path' | 'query') => {
        const ps = op.parameters.filter((p) => p.in === kind);
        return {
          type: 'object',
          additionalProperties: false,
          properties: Object.fromEntries(ps.map((p) => [p.name, rewriteRefs(p.schema)])),
          required: ps.filter((p) => p.required || kind === 'path').map((p) => p.name),
        };
      };
      const validatePath = paramAjv.compile(group('path'));
      const validateQuery = paramAjv.compile(group('query'));
      const validateBody: ValidateFunction | undefined = op.body ? bodyAjv.compile(rewriteRefs(op.body.schema) as object) : undefined;
      const bodyRequired = op.body?.required ?? false;
      this.byKey.set(`${op.method.toUpperCase()} ${op.path}`, (input) => {
        const params = { ...input.params };
        const query = { ...input.query };
        const problems: FieldProblem[] = [];
        if (!validatePath(params)) problems.push(...describeProblems('path', validatePath.errors));
        if (!validateQuery(query)) problems.push(...describeProblems('query', validateQuery.errors));
        let body = input.body;
        if (!validateBody) {
          if (body !== undefined && !(typeof body === 'object' && body !== null && Object.keys(body).length === 0)) {
            problems.push({ field: 'body', message: 'this operation takes no request body' });
          }
          body = undefined;
        } else if (body === undefined) {
          if (bodyRequired) problems.push({ field: 'body', message: 'a JSON request body is required (Content-Type: application/json)' });
        } else if (!validateBody(body)) {
          problems.push(...describeProblems('body', validateBody.errors));
        }
        if (problems.length > 0) {
          // Bounded: a body with 20,000 unknown keys must not produce a megabyte of error.
          const shown = problems.slice(0, MAX_PROBLEMS);
          const more = problems.length > MAX_PROBLEMS ? `; and ${problems.length - MAX_PROBLEMS} more` : '';
          throw new InvalidInput(`invalid request: ${shown.map((p) => `${p.field}: ${p.message}`).join('; ')}${more}`, { details: shown });
        }
        return { params, query, body };
      });
    }
  }

  /** The validator of `METHOD path` (OpenAPI path template); undefined if the spec lacks it. */
  get(method: HttpMethod, specPath: string): RequestValidator | undefined {
    return this.byKey.get(`${method.toUpperCase()} ${specPath}`);
  }
}

/** `/instances/{uuid}` -> `/instances/:uuid` (express). */
export function toExpressPath(specPath: string): string {
  return specPath.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, ':$1');
}
