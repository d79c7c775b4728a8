/**
 * oslo.messaging-compatible RPC server over amqplib, with one difference on purpose: oslo acks a
 * request before dispatching it (a crash loses it); we write it to rpc_requests first, then ack,
 * run, store the outcome and reply. A redelivered or duplicated message finds the row and gets
 * the stored reply (call) or is skipped (cast); it never runs twice.
 *
 * Per delivery: decode -> version/namespace/method/args checks (failure reply, no row) ->
 * concurrency slot -> INSERT ... ON CONFLICT -> ack -> [instance lock] -> running -> handler ->
 * stored result/failure -> reply. Poison (undecodable) messages are rejected without requeue.
 */
import crypto from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Db } from '../db/knex';
import {
  ComputeError,
  describeError,
  Internal,
  InvalidInput,
  NoSuchMethod,
  toRpcFailure,
  Unavailable,
  UnsupportedVersion,
  type RpcFailure,
} from '../errors';
import { logger as rootLogger, type Logger } from '../logger';
import { resultLabel, rpcServerDuration, rpcServerRequests } from '../metrics';
import { AmqpSession } from './connection';
import {
  ACCEPTED_NAMESPACES,
  buildReply,
  contextFromDict,
  decodeEnvelope,
  encodeEnvelope,
  MAX_MESSAGE_BYTES,
  newId,
  parseRequest,
  PoisonMessage,
  PUBLISH_PROPERTIES,
  RPC_API_VERSION,
  versionIsCompatible,
  type RpcContext,
  type RpcRequest,
} from './envelope';
import { KeyedMutex, Semaphore } from './keyed-mutex';
import { acceptRequest, finishRequest, getRequest, listUnfinished, markRunning, type RpcRequestRow } from './request-store';
import { createRpcAjv, describeAjvErrors, type ArgsValidator } from './schemas';
import { declareFanoutQueue, declareTopicQueue, fanoutExchangeName, hostTopic } from './topology';

/** What a handler receives besides its args. */
export interface RequestContext extends RpcContext {
  method: string;
  uniqueId: string;
  host: string;
  log: Logger;
}

/** One RPC method: its args schema, its handler, and (optionally) the instance it locks. */
export interface RpcEndpoint<A = any, R = unknown> {
  /** JSON Schema of the keyword args (api-spec/rpc/<method>.json). */
  schema: Record<string, unknown>;
  handler(ctx: RequestContext, args: A): Promise<R>;
  /** Requests for the same instance run one at a time (KeyedMutex on this uuid). */
  instanceUuidOf?(args: A): string | undefined;
  /** Safe to run again after a crash interrupted it mid-way (read-only or idempotent). */
  resumable?: boolean;
}

/** The one registration table: method name -> endpoint. */
export type EndpointTable = Record<string, RpcEndpoint>;

export interface RpcServerOptions {
  amqpUrl: string;
  controlExchange: string;
  topic: string;
  host: string;
  db: Db;
  endpoints: EndpointTable;
  concurrency: number;
  quorumQueues: boolean;
  heartbeatSec: number;
  /** How long a finished call keeps trying to deliver its reply while the broker is away. */
  replyDeadlineSec?: number;
  maxMessageBytes?: number;
  /** Shared with the spawn/migration pipelines so they and RPC handlers agree on instance locks. */
  instanceLocks?: KeyedMutex;
  log?: Logger;
  /** Give up start() if the broker cannot be reached in this time (the session keeps retrying until stop). */
  startTimeoutMs?: number;
}

interface Outcome {
  result?: unknown;
  failure?: RpcFailure;
}

type Source = 'topic' | 'host' | 'fanout';

export class RpcServer {
  private readonly log: Logger;
  private readonly session: AmqpSession;
  private readonly validators = new Map<string, ArgsValidator>();
  private readonly slots: Semaphore;
  readonly instanceLocks: KeyedMutex;
  /** Requests running in this process, by store key: duplicates wait on these. */
  private readonly inflight = new Map<string, Promise<Outcome>>();
  private readonly tasks = new Set<Promise<unknown>>();
  private readonly fanoutQueue: string;
  private readonly hostHash: string;
  private replyChannel: ConfirmChannel | undefined;
  private consumeChannel: Channel | undefined;
  private stopping = false;
  private readonly returned = new Set<string>();
  private readonly obsoleteReplyQueues = new Map<string, number>();

  constructor(private readonly o: RpcServerOptions) {
    this.log = (o.log ?? rootLogger).child({ component: 'rpc-server', host: o.host });
    this.slots = new Semaphore(o.concurrency);
    this.instanceLocks = o.instanceLocks ?? new KeyedMutex();
    this.fanoutQueue = `${fanoutExchangeName(o.topic)}_${newId()}`;
    this.hostHash = crypto.createHash('sha256').update(o.host).digest('hex').slice(0, 16);
    const ajv = createRpcAjv();
    for (const [method, ep] of Object.entries(o.endpoints)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(method)) throw new Error(`endpoint name ${method} is not a valid RPC method name`);
      const id = typeof ep.schema.$id === 'string' ? ep.schema.$id : undefined;
      this.validators.set(method, (id && ajv.getSchema(id)) || ajv.compile(ep.schema));
    }
    this.session = new AmqpSession({
      url: o.amqpUrl,
      heartbeatSec: o.heartbeatSec,
      name: `compute-rpc-server ${o.host}`,
      log: this.log,
      setup: (conn) => this.setup(conn),
    });
  }

  /** Queue names this server consumes (for tests and operators). */
  get queues(): { topic: string; host: string; fanout: string } {
    return { topic: this.o.topic, host: hostTopic(this.o.topic, this.o.host), fanout: this.fanoutQueue };
  }

  async start(): Promise<void> {
    // Unfinished requests of this host are registered as in flight before consuming starts, so a
    // redelivered duplicate waits for them instead of running them a second time.
    await this.recoverUnfinished();
    this.session.start();
    try {
      await this.session.waitReady(this.o.startTimeoutMs ?? 30000);
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.log.info({ queues: this.queues, exchange: this.o.controlExchange }, 'RPC server consuming');
  }

  private async setup(conn: ChannelModel): Promise<void> {
    const reply = await conn.createConfirmChannel();
    reply.on('error', (err: Error) => this.log.warn({ err: describeError(err) }, 'reply channel error'));
    reply.on('return', (msg: ConsumeMessage) => {
      const id = msg.properties.messageId as string | undefined;
      if (id) this.returned.add(id);
    });
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) => this.log.warn({ err: describeError(err) }, 'consume channel error'));
    // Quorum queues refuse a channel-wide (global) prefetch; the semaphore bounds running work anyway.
    await ch.prefetch(this.o.concurrency, !this.o.quorumQueues);
    const topo = { controlExchange: this.o.controlExchange, topic: this.o.topic, quorumQueues: this.o.quorumQueues };
    await declareTopicQueue(ch, topo, this.o.topic);
    await declareTopicQueue(ch, topo, hostTopic(this.o.topic, this.o.host));
    await declareFanoutQueue(ch, this.o.topic, this.fanoutQueue);
    this.replyChannel = reply;
    this.consumeChannel = ch;
    const consume = async (queue: string, source: Source): Promise<void> => {
      await ch.consume(queue, (msg) => {
        if (msg) this.track(this.onDelivery(ch, msg, source));
      });
    };
    await consume(this.o.topic, 'topic');
    await consume(hostTopic(this.o.topic, this.o.host), 'host');
    await consume(this.fanoutQueue, 'fanout');
  }

  /** Keep a handle on background work so stop() can wait for it; never let it reject unhandled. */
  private track(p: Promise<unknown>): void {
    const t = p.catch((err) => this.log.error({ err: describeError(err) }, 'RPC task failed unexpectedly'));
    this.tasks.add(t);
    void t.finally(() => this.tasks.delete(t));
  }

  private settle(ch: Channel, msg: ConsumeMessage, how: 'ack' | 'reject' | 'requeue'): void {
    try {
      if (how === 'ack') ch.ack(msg);
      else ch.nack(msg, false, how === 'requeue');
    } catch (err) {
      // The channel died with the connection; the broker redelivers and the stored row catches it.
      this.log.debug({ err: describeError(err) }, `could not ${how} (channel closed)`);
    }
  }

  private async onDelivery(ch: Channel, msg: ConsumeMessage, source: Source): Promise<void> {
    let req: RpcRequest;
    try {
      req = parseRequest(decodeEnvelope(msg.content, this.o.maxMessageBytes ?? MAX_MESSAGE_BYTES), msg.content);
    } catch (err) {
      const poison = err instanceof PoisonMessage ? err : new PoisonMessage(describeError(err));
      this.log.warn(
        { reason: poison.message, bytes: msg.content.length, source, redelivered: msg.fields.redelivered, ...poison.recovered },
        'Rejected poison RPC message',
      );
      this.settle(ch, msg, 'reject');
      const { msgId, replyQ } = poison.recovered;
      if (msgId && replyQ) await this.sendReply(replyQ, msgId, null, toRpcFailure(new InvalidInput(`rejected message: ${poison.message}`)));
      return;
    }
    const log = this.log.child({ requestId: req.context.requestId, method: req.method, msgId: req.msgId, uniqueId: req.uniqueId });

    const refusal = this.checkDispatchable(req);
    if (refusal) {
      log.info({ err: refusal.message }, 'Refused RPC request');
      this.settle(ch, msg, 'ack');
      if (req.kind === 'call') await this.sendReply(req.replyQ!, req.msgId!, null, toRpcFailure(refusal));
      return;
    }

    // Fanout deliveries carry the same _unique_id to every host sharing this database.
    const key = source === 'fanout' ? `${req.uniqueId}:${this.hostHash}` : req.uniqueId;
    const release = await this.slots.acquire();
    if (this.stopping) {
      // Not acked: the message goes back to the queue when our channel closes.
      release();
      return;
    }
    let accepted: Awaited<ReturnType<typeof acceptRequest>>;
    // Resumable (idempotent) methods without an instance lock to wait for start right away:
    // stored as running in the same write that persists them.
    const ep0 = this.o.endpoints[req.method];
    const startNow = !!ep0?.resumable && !ep0.instanceUuidOf?.(req.args);
    try {
      accepted = await acceptRequest(this.o.db, {
        startNow,
        uniqueId: key,
        msgId: req.msgId,
        method: req.method,
        kind: req.kind,
        host: this.o.host,
        replyQ: req.replyQ,
        args: req.args,
        context: req.context.raw,
      });
    } catch (err) {
      release();
      // Not persisted, so not acked: the broker keeps it. Pause first so a database outage is
      // not a hot redelivery loop.
      log.error({ err: describeError(err) }, 'Could not persist RPC request; requeueing');
      await sleep(1000);
      this.settle(ch, msg, 'requeue');
      return;
    }
    this.settle(ch, msg, 'ack');

    if (!accepted.inserted) {
      release();
      await this.onDuplicate(req, key, accepted.row, log);
      return;
    }
    await this.execute(req, key, log, Promise.resolve(release), startNow);
  }

  /** NoSuchMethod, UnsupportedVersion or InvalidInput for a request we will not run; undefined if fine. */
  private checkDispatchable(req: RpcRequest): ComputeError | undefined {
    if (!ACCEPTED_NAMESPACES.includes(req.namespace)) {
      return new UnsupportedVersion(
        `Endpoint does not support RPC version ${req.version} in namespace ${JSON.stringify(req.namespace)}. Attempted method: ${req.method}`,
      );
    }
    if (!versionIsCompatible(RPC_API_VERSION, req.version)) {
      return new UnsupportedVersion(
        `Endpoint does not support RPC version ${req.version} (this server implements ${RPC_API_VERSION}). Attempted method: ${req.method}`,
      );
    }
    const ep = this.o.endpoints[req.method];
    const validate = this.validators.get(req.method);
    if (!ep || !validate || !Object.prototype.hasOwnProperty.call(this.o.endpoints, req.method)) {
      return new NoSuchMethod(`Endpoint does not support RPC method ${req.method}`);
    }
    if (!validate(req.args)) {
      const problems = describeAjvErrors(validate.errors);
      return new InvalidInput(`invalid arguments for ${req.method}: ${problems.join('; ')}`, { details: problems });
    }
    return undefined;
  }

  private async onDuplicate(req: RpcRequest, key: string, row: RpcRequestRow, log: Logger): Promise<void> {
    log.info({ status: row.status, firstMsgId: row.msg_id }, 'Duplicate RPC request: not running it again');
    if (row.status === 'done' || row.status === 'failed') {
      if (req.kind === 'call') await this.sendReply(req.replyQ!, req.msgId!, row.result, row.failure ?? undefined);
      return;
    }
    if (req.kind === 'cast') return;
    // Still running: answer this caller too once it is done.
    const stopBeats = this.startCallMonitor(req, log);
    try {
      const running = this.inflight.get(key);
      const outcome = running ? await running : await this.pollUntilFinished(key);
      await this.sendReply(req.replyQ!, req.msgId!, outcome.result, outcome.failure);
    } finally {
      stopBeats();
    }
  }

  /** A row running elsewhere (another process of this host or a crash window): wait for its outcome. */
  private async pollUntilFinished(key: string): Promise<Outcome> {
    const deadline = Date.now() + (this.o.replyDeadlineSec ?? 600) * 1000;
    while (Date.now() < deadline && !this.stopping) {
      const row = await getRequest(this.o.db, key).catch(() => undefined);
      if (row && (row.status === 'done' || row.status === 'failed')) return { result: row.result, failure: row.failure ?? undefined };
      await sleep(500);
    }
    return { failure: toRpcFailure(new Unavailable(`request ${key} is still running elsewhere; no result to send`)) };
  }

  /**
   * Run a persisted request: instance lock, status running, handler, stored outcome, reply.
   * `release` gives back the concurrency slot.
   */
  private execute(req: RpcRequest, key: string, log: Logger, slot: Promise<() => void>, alreadyRunning = false): Promise<Outcome> {
    const ep = this.o.endpoints[req.method];
    const run = async (): Promise<Outcome> => {
      const stopBeats = this.startCallMonitor(req, log);
      const release = await slot;
      try {
        const uuid = ep?.instanceUuidOf?.(req.args);
        const body = async (): Promise<Outcome> => {
          if (!ep) return { failure: toRpcFailure(new NoSuchMethod(`Endpoint does not support RPC method ${req.method}`)) };
          if (!alreadyRunning) await retryDb(() => markRunning(this.o.db, key), log);
          const started = Date.now();
          let outcome: Outcome;
          try {
            const ctx: RequestContext = { ...req.context, method: req.method, uniqueId: req.uniqueId, host: this.o.host, log };
            const result = await ep.handler(ctx, req.args);
            outcome = { result: toJsonValue(result) };
            observeRpc(req.method, undefined, started);
            log.debug({ ms: Date.now() - started }, 'RPC request done');
          } catch (err) {
            const failure = toRpcFailure(err);
            outcome = { failure };
            observeRpc(req.method, err, started);
            const expected = err instanceof ComputeError && err.code !== 'internal';
            log[expected ? 'info' : 'error']({ err: describeError(err), ms: Date.now() - started }, 'RPC request failed');
          }
          const store = retryDb(() => finishRequest(this.o.db, key, outcome.failure ? { failure: outcome.failure } : { result: outcome.result }), log).catch(
            (err) => log.error({ err: describeError(err) }, 'Could not store the RPC outcome; replying anyway'),
          );
          // An idempotent method's reply need not wait for its stored copy: a duplicate arriving
          // in between is answered from `inflight`, and a crash before the write re-runs it.
          if (alreadyRunning) this.track(store);
          else await store;
          return outcome;
        };
        return uuid ? await this.instanceLocks.runExclusive(uuid, body) : await body();
      } catch (err) {
        // Only the database can fail here (handler errors are outcomes already).
        log.error({ err: describeError(err) }, 'RPC request could not be run');
        return { failure: toRpcFailure(new Unavailable(`could not run ${req.method}: ${describeError(err)}`, { cause: err })) };
      } finally {
        stopBeats();
        release();
      }
    };
    const p = run();
    this.inflight.set(key, p);
    const done = p.then(async (outcome) => {
      this.inflight.delete(key);
      if (req.kind === 'call') await this.sendReply(req.replyQ!, req.msgId!, outcome.result, outcome.failure);
      return outcome;
    });
    done.catch(() => this.inflight.delete(key));
    return done;
  }

  /** oslo's call-monitor watchdog: `ending:false` replies every _timeout/2 s, only when _timeout was sent. */
  private startCallMonitor(req: RpcRequest, log: Logger): () => void {
    if (req.kind !== 'call' || !req.callMonitorTimeout) return () => undefined;
    // As oslo: int(_timeout) / 2 seconds, and nothing below 1 s (oslo logs and sends none).
    const everyMs = (Math.trunc(req.callMonitorTimeout) * 1000) / 2;
    if (everyMs < 1000) {
      log.warn({ callMonitorTimeout: req.callMonitorTimeout }, 'Client call-monitor timeout below 2 s: no heartbeats');
      return () => undefined;
    }
    const timer = setInterval(() => {
      void this.publishReply(req.replyQ!, buildReply(req.msgId!, null, null, false), 0).catch((err) =>
        log.debug({ err: describeError(err) }, 'call-monitor heartbeat not sent'),
      );
    }, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Final reply for a call; retried across reconnects until replyDeadlineSec. */
  private async sendReply(replyQ: string, msgId: string, result: unknown, failure: RpcFailure | undefined): Promise<void> {
    const body = buildReply(msgId, failure ? null : result, failure ? JSON.stringify(failure) : null, true);
    try {
      // Like oslo (MessageUndeliverable retried, then ObsoleteReplyQueuesCache): a missing reply
      // queue may be a client re-declaring it after a broker restart, so retry for a while; a
      // queue that stayed missing is remembered for a minute so later replies do not wait again.
      const retryUntil = Date.now() + (this.obsoleteReplyQueues.has(replyQ) ? 0 : REPLY_QUEUE_RETRY_MS);
      for (;;) {
        const routed = await this.publishReply(replyQ, body, (this.o.replyDeadlineSec ?? 60) * 1000);
        if (routed) return;
        if (Date.now() >= retryUntil || this.stopping) break;
        await sleep(250);
      }
      this.obsoleteReplyQueues.set(replyQ, Date.now());
      for (const [q, at] of this.obsoleteReplyQueues) if (Date.now() - at > 60000) this.obsoleteReplyQueues.delete(q);
      this.log.warn({ replyQ, msgId }, 'Reply queue does not exist (caller gone); reply dropped, outcome kept in rpc_requests');
    } catch (err) {
      this.log.warn({ replyQ, msgId, err: describeError(err) }, 'Could not deliver reply; outcome kept in rpc_requests');
    }
  }

  /**
   * Publish on the default exchange with routing key = reply queue, mandatory, and wait for the
   * broker's confirm. Resolves false if the queue does not exist (the broker returned it).
   */
  private async publishReply(replyQ: string, reply: ReturnType<typeof buildReply>, deadlineMs: number): Promise<boolean> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const ch = this.session.isReady ? this.replyChannel : undefined;
      if (ch) {
        try {
          await new Promise<void>((resolve, reject) => {
            ch.publish('', replyQ, encodeEnvelope(reply as unknown as Record<string, unknown>), {
              ...PUBLISH_PROPERTIES,
              mandatory: true,
              messageId: reply._unique_id,
            }, (err) => (err ? reject(err) : resolve()));
          });
          const returned = this.returned.delete(reply._unique_id);
          return !returned;
        } catch (err) {
          if (Date.now() >= deadline || this.stopping) throw err;
        }
      }
      if (Date.now() >= deadline || (this.stopping && !this.session.isReady)) throw new Unavailable('broker unavailable for the reply');
      await this.session.waitReady(Math.max(1, deadline - Date.now())).catch(() => undefined);
      if (!this.session.isReady) await sleep(200);
    }
  }

  /**
   * Start-up: requests of this host accepted but never started are run now; requests that were
   * running when the process died are run again only if their endpoint is resumable, otherwise
   * failed explicitly (stored failure + reply if the caller's queue still exists).
   */
  private async recoverUnfinished(): Promise<void> {
    const rows = await listUnfinished(this.o.db, this.o.host);
    for (const row of rows) {
      const ep = this.o.endpoints[row.method];
      const log = this.log.child({ method: row.method, uniqueId: row.unique_id, msgId: row.msg_id, status: row.status });
      const req: RpcRequest = {
        method: row.method,
        args: row.args ?? {},
        version: RPC_API_VERSION,
        namespace: null,
        msgId: row.msg_id ?? undefined,
        replyQ: row.reply_q ?? undefined,
        uniqueId: row.unique_id,
        context: contextFromDict(row.context ?? {}),
        kind: row.kind === 'call' && row.msg_id && row.reply_q ? 'call' : 'cast',
      };
      if (ep && (row.status === 'accepted' || ep.resumable)) {
        log.warn('Resuming RPC request left unfinished by a previous run');
        this.track(this.execute(req, row.unique_id, log, this.slots.acquire()));
        continue;
      }
      const err = ep
        ? new Internal(`${row.method} was interrupted by a restart of the compute service on ${this.o.host}; not run again because it is not resumable`)
        : new NoSuchMethod(`Endpoint does not support RPC method ${row.method} (after restart)`);
      log.error({ err: err.message }, 'Failing RPC request left unfinished by a previous run');
      const failure = toRpcFailure(err);
      await finishRequest(this.o.db, row.unique_id, { failure });
      if (req.kind === 'call') this.track(this.sendReply(req.replyQ!, req.msgId!, null, failure));
    }
  }

  /** Stop consuming, let running requests finish (up to `graceMs`), then close the connection. */
  async stop(graceMs = 30000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const ch = this.consumeChannel;
    if (ch && this.session.isReady) {
      try {
        // Unacked deliveries go back to the queue when the channel closes; nothing is lost.
        await ch.close();
      } catch {
        /* already closed */
      }
    }
    const pending = Promise.allSettled([...this.tasks]);
    await Promise.race([pending, sleep(graceMs)]);
    const conn = this.session.connection;
    if (conn) {
      try {
        const c = await conn.createChannel();
        c.on('error', () => undefined);
        // Our per-process fanout queue is useless once we are gone (it would expire after 30 min).
        await c.deleteQueue(this.fanoutQueue);
        await c.close();
      } catch {
        /* best effort */
      }
    }
    await this.session.close();
    this.log.info('RPC server stopped');
  }
}

/** How long a reply keeps being retried while its queue does not exist. */
const REPLY_QUEUE_RETRY_MS = 15000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => {
    const t = setTimeout(r, ms);
    t.unref?.();
  });
}

/** Results travel as JSON: Dates become ISO strings, undefined becomes null, here rather than on the wire. */
function toJsonValue(v: unknown): unknown {
  return v === undefined ? null : JSON.parse(JSON.stringify(v));
}

async function retryDb<T>(fn: () => Promise<T>, log: Logger, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      log.warn({ err: describeError(err), attempt: i }, 'database write failed; retrying');
      await sleep(200 * 2 ** i);
    }
  }
}

/** Prometheus: count and latency by method and result (success or the error code). */
function observeRpc(method: string, err: unknown, startedMs: number): void {
  const labels = { method, result: resultLabel(err === undefined ? undefined : err instanceof ComputeError ? err : { code: 'internal' }) };
  rpcServerRequests.inc(labels);
  rpcServerDuration.observe(labels, (Date.now() - startedMs) / 1000);
}
