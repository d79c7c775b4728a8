/**
 * oslo.messaging wire format (rabbit driver, envelope 2.0), as read from oslo.messaging 14:
 * `_drivers/common.py` (serialize_msg / deserialize_msg), `_drivers/amqp.py` (pack_context,
 * unpack_context, _unique_id) and `_drivers/amqpdriver.py` (AMQPIncomingMessage._send_reply,
 * ReplyWaiter._process_reply). Pure functions only: no I/O here.
 */
import crypto from 'node:crypto';

export const ENVELOPE_VERSION = '2.0';
/** The version of the compute RPC API this process implements. */
export const RPC_API_VERSION = '1.0';
/** Namespaces our endpoints accept: oslo's default target has namespace None. */
export const ACCEPTED_NAMESPACES: ReadonlyArray<string | null> = [null];
/** A request body larger than this is poison (an InstanceSpec is a few KiB). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

export const VERSION_KEY = 'oslo.version';
export const MESSAGE_KEY = 'oslo.message';

/** Why a message could not be turned into a request; carries what could be recovered for a reply. */
export class PoisonMessage extends Error {
  constructor(
    message: string,
    readonly recovered: { msgId?: string; replyQ?: string } = {},
  ) {
    super(message);
    this.name = 'PoisonMessage';
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `{"oslo.version": "2.0", "oslo.message": "<json>"}` as a Buffer ready to publish. */
export function encodeEnvelope(inner: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ [VERSION_KEY]: ENVELOPE_VERSION, [MESSAGE_KEY]: JSON.stringify(inner) }), 'utf8');
}

/** oslo's utils.version_is_compatible(imp_version, version): same major, requested minor <= ours. */
export function versionIsCompatible(implemented: string, requested: string): boolean {
  const parse = (v: string): number[] | undefined => {
    if (!/^[0-9]+\.[0-9]+(\.[0-9]+)?$/.test(v)) return undefined;
    const p = v.split('.').map(Number);
    return [p[0], p[1], p[2] ?? 0];
  };
  const imp = parse(implemented);
  const req = parse(requested);
  if (!imp || !req) return false;
  if (req[0] !== imp[0]) return false;
  if (req[1] > imp[1]) return false;
  if (req[1] === imp[1] && req[2] > imp[2]) return false;
  return true;
}

/**
 * Best effort on a body we refuse to parse (too big, broken JSON): find `_msg_id` and `_reply_q`
 * so the caller gets a failure instead of a timeout. They appear JSON-escaped inside the
 * envelope's string, hence the optional backslashes.
 */
export function recoverReplyAddress(raw: string): { msgId?: string; replyQ?: string } {
  const pick = (key: string): string | undefined => {
    const m = new RegExp(`\\\\?"${key}\\\\?"\\s*:\\s*\\\\?"([A-Za-z0-9_.:-]{1,255})\\\\?"`).exec(raw);
    return m ? m[1] : undefined;
  };
  return { msgId: pick('_msg_id'), replyQ: pick('_reply_q') };
}

/**
 * Body -> inner message. Like oslo, a body without the envelope keys is taken as the message
 * itself (oslo's pre-2.0 format); an envelope of another major version is refused.
 */
export function decodeEnvelope(body: Buffer, maxBytes = MAX_MESSAGE_BYTES): Record<string, unknown> {
  if (body.length > maxBytes) {
    // Only the head is searched: the reply keys come after method/args in oslo's dict order, so a
    // huge args blob may hide them; then the caller just times out, which is still bounded.
    const head = body.subarray(0, 64 * 1024).toString('utf8') + body.subarray(Math.max(0, body.length - 64 * 1024)).toString('utf8');
    throw new PoisonMessage(`message of ${body.length} bytes exceeds the limit of ${maxBytes} bytes`, recoverReplyAddress(head));
  }
  const text = body.toString('utf8');
  let outer: unknown;
  try {
    outer = JSON.parse(text);
  } catch (err) {
    throw new PoisonMessage(`body is not JSON: ${(err as Error).message}`, recoverReplyAddress(text));
  }
  if (!isPlainObject(outer)) throw new PoisonMessage(`body is a JSON ${Array.isArray(outer) ? 'array' : typeof outer}, not an object`);
  if (!(VERSION_KEY in outer) || !(MESSAGE_KEY in outer)) return outer;
  const version = outer[VERSION_KEY];
  if (typeof version !== 'string' || !versionIsCompatible(ENVELOPE_VERSION, version)) {
    throw new PoisonMessage(`unsupported envelope version ${JSON.stringify(version)} (we speak ${ENVELOPE_VERSION})`, recoverReplyAddress(text));
  }
  const innerText = outer[MESSAGE_KEY];
  if (typeof innerText !== 'string') throw new PoisonMessage(`"${MESSAGE_KEY}" must be a JSON string`, recoverReplyAddress(text));
  let inner: unknown;
  try {
    inner = JSON.parse(innerText);
  } catch (err) {
    throw new PoisonMessage(`"${MESSAGE_KEY}" is not JSON: ${(err as Error).message}`, recoverReplyAddress(innerText));
  }
  if (!isPlainObject(inner)) throw new PoisonMessage(`"${MESSAGE_KEY}" must hold a JSON object`);
  return inner;
}

/** The request context oslo packs as `_context_<key>` (an oslo.context RequestContext.to_dict()). */
export interface RpcContext {
  requestId?: string;
  globalRequestId?: string;
  userId?: string;
  userName?: string;
  projectId?: string;
  projectName?: string;
  roles: string[];
  isAdmin: boolean;
  readOnly: boolean;
  /** Every `_context_*` key as sent, secrets masked: stored with the request and usable by endpoints. */
  raw: Record<string, unknown>;
}

const SECRET_CONTEXT_KEYS = new Set(['auth_token', 'auth_token_info', 'service_token', 'password']);

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/** Build the context from a raw `{key: value}` map (without the `_context_` prefix). */
export function contextFromDict(values: Record<string, unknown>): RpcContext {
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) raw[k] = SECRET_CONTEXT_KEYS.has(k) && v !== null && v !== undefined ? '***' : v;
  const roles = Array.isArray(values.roles) ? values.roles.filter((r): r is string => typeof r === 'string') : [];
  return {
    requestId: str(values.request_id),
    globalRequestId: str(values.global_request_id),
    userId: str(values.user_id) ?? str(values.user),
    userName: str(values.user_name),
    projectId: str(values.project_id) ?? str(values.project) ?? str(values.tenant),
    projectName: str(values.project_name),
    roles,
    isAdmin: values.is_admin === true,
    readOnly: values.read_only === true,
    raw,
  };
}

/** The `_context_*` keys of a context for sending (oslo's pack_context). */
export function contextToWire(ctx: Partial<RpcContext> | Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!ctx) return out;
  const c = ctx as Partial<RpcContext>;
  const dict: Record<string, unknown> =
    'raw' in c && isPlainObject(c.raw)
      ? { ...c.raw }
      : 'requestId' in c || 'userId' in c || 'projectId' in c || 'isAdmin' in c || 'globalRequestId' in c
        ? {
            request_id: c.requestId,
            global_request_id: c.globalRequestId,
            user: c.userId,
            user_id: c.userId,
            user_name: c.userName,
            project_id: c.projectId,
            project: c.projectId,
            project_name: c.projectName,
            roles: c.roles ?? [],
            is_admin: c.isAdmin ?? false,
            read_only: c.readOnly ?? false,
          }
        : { ...(ctx as Record<string, unknown>) };
  for (const [k, v] of Object.entries(dict)) if (v !== undefined) out[`_context_${k}`] = v;
  return out;
}

/** A decoded request: what the dispatcher needs, nothing else. */
export interface RpcRequest {
  method: string;
  args: Record<string, unknown>;
  version: string;
  namespace: string | null;
  msgId?: string;
  replyQ?: string;
  uniqueId: string;
  /** `_timeout`: the client's call-monitor timeout in seconds; heartbeats only when set. */
  callMonitorTimeout?: number;
  context: RpcContext;
  kind: 'call' | 'cast';
}

const REPLY_Q_PATTERN = /^[A-Za-z0-9_.:-]{1,255}$/;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,48}$/;

/**
 * Inner message -> request. Throws PoisonMessage (with whatever reply address it found) when
 * the message cannot be dispatched at all: no method, args not an object, bad reply fields.
 * `body` is used to derive a stable id when a (non-oslo) sender left `_unique_id` out.
 */
export function parseRequest(inner: Record<string, unknown>, body: Buffer): RpcRequest {
  const msgId = str(inner._msg_id);
  const replyQ = str(inner._reply_q);
  const recovered = {
    msgId: msgId && ID_PATTERN.test(msgId) ? msgId : undefined,
    replyQ: replyQ && REPLY_Q_PATTERN.test(replyQ) ? replyQ : undefined,
  };
  if (inner._msg_id !== undefined && inner._msg_id !== null && !recovered.msgId) throw new PoisonMessage('"_msg_id" must be a short id string');
  if (inner._reply_q !== undefined && inner._reply_q !== null && !recovered.replyQ) throw new PoisonMessage('"_reply_q" must be a queue name');
  if (recovered.msgId && !recovered.replyQ) throw new PoisonMessage('"_msg_id" without "_reply_q": nowhere to reply');
  const method = inner.method;
  if (typeof method !== 'string' || method.length === 0) throw new PoisonMessage('message has no "method"', recovered);
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(method)) throw new PoisonMessage(`method name ${JSON.stringify(method.slice(0, 80))} is not a valid identifier`, recovered);
  const args = inner.args ?? {};
  if (!isPlainObject(args)) throw new PoisonMessage('"args" must be an object of keyword arguments', recovered);
  const version = inner.version ?? '1.0';
  if (typeof version !== 'string') throw new PoisonMessage('"version" must be a string', recovered);
  const namespace = inner.namespace ?? null;
  if (namespace !== null && typeof namespace !== 'string') throw new PoisonMessage('"namespace" must be a string or null', recovered);
  const rawUnique = str(inner._unique_id);
  const uniqueId =
    rawUnique && ID_PATTERN.test(rawUnique) ? rawUnique : crypto.createHash('sha256').update(rawUnique ?? body).digest('hex').slice(0, 40);
  const timeout = inner._timeout;
  const callMonitorTimeout = typeof timeout === 'number' && Number.isFinite(timeout) && timeout > 0 ? timeout : undefined;
  const ctx: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inner)) if (k.startsWith('_context_')) ctx[k.slice('_context_'.length)] = v;
  return {
    method,
    args,
    version,
    namespace,
    msgId: recovered.msgId,
    replyQ: recovered.msgId ? recovered.replyQ : undefined,
    uniqueId,
    callMonitorTimeout,
    context: contextFromDict(ctx),
    kind: recovered.msgId ? 'call' : 'cast',
  };
}

/** Build a request message the way oslo's RPCClient does (`_make_message` + `_send`). */
export function buildRequest(opts: {
  method: string;
  args: Record<string, unknown>;
  version?: string;
  namespace?: string | null;
  msgId?: string;
  replyQ?: string;
  callMonitorTimeout?: number;
  uniqueId?: string;
  context?: Partial<RpcContext> | Record<string, unknown>;
}): Record<string, unknown> {
  const msg: Record<string, unknown> = { method: opts.method, args: opts.args };
  if (opts.namespace) msg.namespace = opts.namespace;
  msg.version = opts.version ?? RPC_API_VERSION;
  if (opts.msgId) {
    msg._msg_id = opts.msgId;
    msg._reply_q = opts.replyQ;
    msg._timeout = opts.callMonitorTimeout ?? null;
  }
  msg._unique_id = opts.uniqueId ?? newId();
  Object.assign(msg, contextToWire(opts.context));
  return msg;
}

/** A reply body (inner message) exactly as AMQPIncomingMessage._send_reply builds it. */
export interface ReplyMessage {
  result: unknown;
  failure: string | null;
  ending: boolean;
  _msg_id: string;
  _unique_id: string;
}

export function buildReply(msgId: string, result: unknown, failure: string | null, ending = true): ReplyMessage {
  return { result: result === undefined ? null : result, failure, ending, _msg_id: msgId, _unique_id: newId() };
}

/** oslo uses uuid4().hex for message, unique and reply-queue ids. */
export function newId(): string {
  return crypto.randomUUID().replace(/-/g, '');
}

/** AMQP properties oslo's kombu producer sets on every message (json serializer). */
export const PUBLISH_PROPERTIES = { contentType: 'application/json', contentEncoding: 'utf-8' } as const;
