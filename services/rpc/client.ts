/**
 * RPC client with oslo.messaging's wire format (what oslo_messaging.RPCClient sends): call with
 * a timeout and optional call-monitor timeout, cast, fanout cast. Like oslo it owns one
 * `reply_<hex>` queue per client (transient, x-expires 30 min) and re-declares it under the same
 * name after a reconnect, so a call survives a broker restart if the server can still reply.
 * Remote failures come back as the matching ComputeError subclass.
 */
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { describeError, Timeout, Unavailable, type ComputeError } from '../errors';
import { logger as rootLogger, type Logger } from '../logger';
import { AmqpSession } from './connection';
import {
  buildRequest,
  decodeEnvelope,
  encodeEnvelope,
  isPlainObject,
  newId,
  PUBLISH_PROPERTIES,
  type RpcContext,
} from './envelope';
import { decodeFailure } from './failures';
import {
  controlExchangeOptions,
  declareFanoutExchange,
  declareReplyQueue,
  fanoutExchangeName,
  hostTopic,
} from './topology';

export interface RpcClientOptions {
  amqpUrl: string;
  controlExchange: string;
  topic: string;
  heartbeatSec?: number;
  quorumQueues?: boolean;
  /** Default call timeout (config.rpc.callTimeoutSec). */
  defaultTimeoutSec?: number;
  log?: Logger;
  connectTimeoutMs?: number;
}

export interface CallOptions {
  /** Seconds to wait for the reply (default: defaultTimeoutSec). */
  timeout?: number;
  /**
   * oslo's call_monitor_timeout: sent as `_timeout`; the server then sends `ending:false`
   * heartbeats every half of it and the call fails early if they stop.
   */
  callMonitorTimeout?: number;
  context?: Partial<RpcContext> | Record<string, unknown>;
  version?: string;
  namespace?: string;
  /** Reuse an id to deliberately resend the same request (the server answers from its store). */
  uniqueId?: string;
}

export type CastOptions = Pick<CallOptions, 'context' | 'version' | 'namespace' | 'uniqueId'>;

interface Waiter {
  resolve(v: unknown): void;
  reject(e: Error): void;
  result: unknown;
  onHeartbeat(): void;
}

export class RpcClient {
  readonly replyQueue = `reply_${newId()}`;
  private readonly log: Logger;
  private readonly session: AmqpSession;
  private channel: ConfirmChannel | undefined;
  private readonly waiters = new Map<string, Waiter>();
  private readonly seenReplies: string[] = [];
  private readonly returned = new Set<string>();
  private closed = false;

  constructor(private readonly o: RpcClientOptions) {
    this.log = (o.log ?? rootLogger).child({ component: 'rpc-client' });
    this.session = new AmqpSession({
      url: o.amqpUrl,
      heartbeatSec: o.heartbeatSec ?? 30,
      name: `compute-rpc-client ${this.replyQueue}`,
      log: this.log,
      setup: (conn) => this.setup(conn),
    });
  }

  static async connect(o: RpcClientOptions): Promise<RpcClient> {
    const c = new RpcClient(o);
    c.session.start();
    try {
      await c.session.waitReady(o.connectTimeoutMs ?? 15000);
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  private async setup(conn: ChannelModel): Promise<void> {
    const ch = await conn.createConfirmChannel();
    ch.on('error', (err: Error) => this.log.warn({ err: describeError(err) }, 'client channel error'));
    ch.on('return', (msg: ConsumeMessage) => {
      const id = msg.properties.messageId as string | undefined;
      if (id) this.returned.add(id);
    });
    await ch.assertExchange(this.o.controlExchange, 'topic', controlExchangeOptions(this.o.quorumQueues ?? false));
    await declareFanoutExchange(ch, this.o.topic);
    await declareReplyQueue(ch, this.replyQueue);
    await ch.consume(this.replyQueue, (msg) => {
      if (!msg) return;
      try {
        ch.ack(msg);
      } catch {
        /* channel gone; the reply is redelivered on the next connection if the queue survived */
      }
      this.onReply(msg);
    });
    this.channel = ch;
  }

  private onReply(msg: ConsumeMessage): void {
    let data: Record<string, unknown>;
    try {
      data = decodeEnvelope(msg.content, 64 * 1024 * 1024);
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'Dropped an undecodable reply');
      return;
    }
    const uniqueId = typeof data._unique_id === 'string' ? data._unique_id : undefined;
    if (uniqueId) {
      if (this.seenReplies.includes(uniqueId)) return;
      this.seenReplies.push(uniqueId);
      if (this.seenReplies.length > 64) this.seenReplies.shift();
    }
    const msgId = typeof data._msg_id === 'string' ? data._msg_id : undefined;
    const w = msgId ? this.waiters.get(msgId) : undefined;
    if (!w) {
      this.log.debug({ msgId }, 'Reply for no waiting call (timed out or duplicate)');
      return;
    }
    if (data.failure !== null && data.failure !== undefined) {
      w.reject(decodeFailure(data.failure));
      return;
    }
    const result = data.result ?? null;
    if (result !== null) w.result = result;
    if (data.ending === true) w.resolve(w.result);
    else if (result === null) w.onHeartbeat();
  }

  private routingKey(host: string | undefined): string {
    return host ? hostTopic(this.o.topic, host) : this.o.topic;
  }

  /** Publish with a broker confirm; with `mandatory`, an unroutable message is an Unavailable error. */
  private async publish(exchange: string, routingKey: string, body: Record<string, unknown>, opts: { mandatory: boolean; expirationMs?: number; waitMs: number }): Promise<void> {
    const deadline = Date.now() + opts.waitMs;
    for (;;) {
      if (this.closed) throw new Unavailable('RPC client is closed');
      const ch = this.session.isReady ? this.channel : undefined;
      if (ch) {
        const messageId = newId();
        try {
          await new Promise<void>((resolve, reject) => {
            ch.publish(exchange, routingKey, encodeEnvelope(body), {
              ...PUBLISH_PROPERTIES,
              mandatory: opts.mandatory,
              messageId,
              persistent: this.o.quorumQueues ?? false,
              ...(opts.expirationMs ? { expiration: String(Math.ceil(opts.expirationMs)) } : {}),
            }, (err) => (err ? reject(err) : resolve()));
          });
        } catch (err) {
          if (Date.now() >= deadline) throw new Unavailable(`could not publish to ${exchange || '(default)'}/${routingKey}: ${describeError(err)}`, { cause: err });
          await sleep(200);
          continue;
        }
        if (this.returned.delete(messageId)) {
          throw new Unavailable(`no RPC server is listening on ${routingKey} (exchange ${exchange}): message returned unroutable`);
        }
        return;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Unavailable('RabbitMQ is not reachable: message not sent');
      await this.session.waitReady(left).catch(() => undefined);
    }
  }

  /**
   * Call `method` on `host` (undefined: any host listening on the topic) and wait for the result.
   * Rejects with the remote error (ComputeError subclass), Timeout or Unavailable.
   */
  async call<T = unknown>(host: string | undefined, method: string, args: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<T> {
    const timeoutSec = opts.timeout ?? this.o.defaultTimeoutSec ?? 60;
    const msgId = newId();
    const msg = buildRequest({
      method,
      args,
      version: opts.version,
      namespace: opts.namespace,
      msgId,
      replyQ: this.replyQueue,
      callMonitorTimeout: opts.callMonitorTimeout,
      uniqueId: opts.uniqueId,
      context: opts.context,
    });
    const target = this.routingKey(host);
    const started = Date.now();
    let monitor: NodeJS.Timeout | undefined;
    let overall: NodeJS.Timeout | undefined;
    const result = new Promise<unknown>((resolve, reject) => {
      const fail = (what: string): void =>
        reject(new Timeout(`Timed out waiting for a reply to message ID ${msgId} (${method} on ${target}) ${what}`));
      const armMonitor = (): void => {
        if (!opts.callMonitorTimeout) return;
        if (monitor) clearTimeout(monitor);
        monitor = setTimeout(() => fail(`: no call-monitor heartbeat for ${opts.callMonitorTimeout}s`), opts.callMonitorTimeout * 1000);
      };
      overall = setTimeout(() => fail(`after ${timeoutSec}s`), timeoutSec * 1000);
      armMonitor();
      this.waiters.set(msgId, { resolve, reject, result: null, onHeartbeat: armMonitor });
    });
    try {
      await this.publish(this.o.controlExchange, target, msg, { mandatory: true, expirationMs: timeoutSec * 1000, waitMs: timeoutSec * 1000 });
      return (await result) as T;
    } finally {
      clearTimeout(overall);
      if (monitor) clearTimeout(monitor);
      this.waiters.delete(msgId);
      this.log.debug({ method, target, msgId, ms: Date.now() - started }, 'RPC call finished');
      result.catch(() => undefined);
    }
  }

  /** Fire-and-forget to one host (or any host); resolves once the broker has routed it. */
  async cast(host: string | undefined, method: string, args: Record<string, unknown> = {}, opts: CastOptions = {}): Promise<void> {
    const msg = buildRequest({ method, args, version: opts.version, namespace: opts.namespace, uniqueId: opts.uniqueId, context: opts.context });
    await this.publish(this.o.controlExchange, this.routingKey(host), msg, { mandatory: true, waitMs: (this.o.defaultTimeoutSec ?? 60) * 1000 });
  }

  /** To every host's fanout queue (`<topic>_fanout`); no host listening is not an error. */
  async fanoutCast(method: string, args: Record<string, unknown> = {}, opts: CastOptions = {}): Promise<void> {
    const msg = buildRequest({ method, args, version: opts.version, namespace: opts.namespace, uniqueId: opts.uniqueId, context: opts.context });
    await this.publish(fanoutExchangeName(this.o.topic), '', msg, { mandatory: false, waitMs: (this.o.defaultTimeoutSec ?? 60) * 1000 });
  }

  /** Publish raw bytes to a routing key on the control exchange (tests, poison-message drills). */
  async publishRaw(host: string | undefined, body: Buffer): Promise<void> {
    const ch = await this.ready();
    await new Promise<void>((resolve, reject) =>
      ch.publish(this.o.controlExchange, this.routingKey(host), body, { ...PUBLISH_PROPERTIES }, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Send an already-built request message to a host and wait for the reply to its `_msg_id`. */
  async callRaw<T = unknown>(host: string | undefined, message: Record<string, unknown>, timeoutSec = 10): Promise<T> {
    const msgId = typeof message._msg_id === 'string' ? message._msg_id : newId();
    const full = { ...message, _msg_id: msgId, _reply_q: this.replyQueue };
    const result = new Promise<unknown>((resolve, reject) => {
      const t = setTimeout(() => reject(new Timeout(`Timed out waiting for a reply to message ID ${msgId}`)), timeoutSec * 1000);
      this.waiters.set(msgId, {
        resolve: (v) => (clearTimeout(t), resolve(v)),
        reject: (e) => (clearTimeout(t), reject(e)),
        result: null,
        onHeartbeat: () => undefined,
      });
    });
    try {
      await this.publish(this.o.controlExchange, this.routingKey(host), full, { mandatory: true, waitMs: timeoutSec * 1000 });
      return (await result) as T;
    } finally {
      this.waiters.delete(msgId);
      result.catch(() => undefined);
    }
  }

  private async ready(): Promise<ConfirmChannel> {
    await this.session.waitReady(15000);
    if (!this.channel) throw new Unavailable('RPC client channel not ready');
    return this.channel;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.values()) w.reject(new Unavailable('RPC client closed'));
    this.waiters.clear();
    const conn = this.session.connection;
    if (conn) {
      try {
        const c = await conn.createChannel();
        c.on('error', () => undefined);
        await c.deleteQueue(this.replyQueue);
        await c.close();
      } catch {
        /* best effort: x-expires removes it anyway */
      }
    }
    await this.session.close();
  }
}

/** Type guard for callers that want the remote class name. */
export function isRemoteError(err: unknown): err is ComputeError {
  return err instanceof Error && 'code' in err && isPlainObject((err as ComputeError).details);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
