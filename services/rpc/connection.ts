/**
 * One AMQP connection that comes back by itself: AMQP heartbeats so a dead broker is noticed,
 * reconnect with exponential backoff (jittered, capped) after the broker restarts or the network
 * drops, and `setup` re-run on every new connection so channels, exchanges, queues and consumers
 * are declared again. Errors are logged, never thrown into the event loop.
 */
import { connect, type ChannelModel } from 'amqplib';
import { maskUrl } from '../config';
import { describeError, Unavailable } from '../errors';
import type { Logger } from '../logger';

export interface AmqpSessionOptions {
  url: string;
  /** AMQP heartbeat in seconds (0 disables). */
  heartbeatSec: number;
  /** Shown by `rabbitmqctl list_connections client_properties` and in logs. */
  name: string;
  log: Logger;
  /** Declare topology and start consumers on a fresh connection; throwing triggers a reconnect. */
  setup(conn: ChannelModel): Promise<void>;
  minDelayMs?: number;
  maxDelayMs?: number;
}

export function withHeartbeat(url: string, heartbeatSec: number): string {
  const u = new URL(url);
  u.searchParams.set('heartbeat', String(heartbeatSec));
  return u.toString();
}

export function backoffDelay(attempt: number, minMs: number, maxMs: number, random = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 20));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export class AmqpSession {
  private conn: ChannelModel | undefined;
  private ready = false;
  private closing = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private connecting = false;
  private readyWaiters: Array<() => void> = [];
  /** Increments on every successful (re)connect; lets holders notice their channel is stale. */
  generation = 0;

  constructor(private readonly o: AmqpSessionOptions) {}

  start(): void {
    void this.connectOnce();
  }

  get isReady(): boolean {
    return this.ready;
  }

  get connection(): ChannelModel | undefined {
    return this.ready ? this.conn : undefined;
  }

  /** Resolve once connected and set up; reject with Unavailable after `timeoutMs`. */
  async waitReady(timeoutMs: number): Promise<ChannelModel> {
    if (this.ready && this.conn) return this.conn;
    if (this.closing) throw new Unavailable('AMQP session is closed');
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== onReady);
        reject(new Unavailable(`RabbitMQ at ${maskUrl(this.o.url)} not reachable within ${Math.round(timeoutMs / 1000)}s`));
      }, timeoutMs);
      const onReady = (): void => {
        clearTimeout(t);
        resolve();
      };
      this.readyWaiters.push(onReady);
    });
    if (!this.conn) throw new Unavailable('AMQP session is closed');
    return this.conn;
  }

  private async connectOnce(): Promise<void> {
    if (this.closing || this.connecting) return;
    this.connecting = true;
    let conn: ChannelModel | undefined;
    try {
      conn = await connect(withHeartbeat(this.o.url, this.o.heartbeatSec), {
        timeout: 10000,
        // Small request/reply frames: without this, Nagle + delayed ACK add ~40 ms per hop.
        noDelay: true,
        clientProperties: { connection_name: this.o.name },
      });
      conn.on('error', (err: Error) => this.o.log.warn({ err: describeError(err) }, 'AMQP connection error'));
      conn.on('close', () => this.onClosed(conn!));
      conn.on('blocked', (reason: string) => this.o.log.warn({ reason }, 'AMQP connection blocked by the broker'));
      if (this.closing) {
        await conn.close().catch(() => undefined);
        return;
      }
      this.conn = conn;
      await this.o.setup(conn);
      if (this.closing) return;
      if (this.conn !== conn) throw new Unavailable('connection closed during setup');
      this.ready = true;
      this.generation++;
      if (this.attempt > 0) this.o.log.info({ attempts: this.attempt }, 'Reconnected to RabbitMQ, topology declared again');
      this.attempt = 0;
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of waiters) w();
    } catch (err) {
      this.o.log.warn({ err: describeError(err), url: maskUrl(this.o.url) }, 'AMQP connect/setup failed');
      this.ready = false;
      if (conn) {
        if (this.conn === conn) this.conn = undefined;
        await conn.close().catch(() => undefined);
      }
      this.connecting = false;
      this.scheduleReconnect();
    } finally {
      this.connecting = false;
    }
  }

  private onClosed(conn: ChannelModel): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    const wasReady = this.ready;
    this.ready = false;
    if (this.closing) return;
    if (wasReady) this.o.log.warn('Lost the RabbitMQ connection; reconnecting');
    // While connecting, the failing setup schedules the retry itself.
    if (!this.connecting) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing || this.timer) return;
    const delay = backoffDelay(this.attempt++, this.o.minDelayMs ?? 250, this.o.maxDelayMs ?? 15000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connectOnce();
    }, delay);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.ready = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const c = this.conn;
    this.conn = undefined;
    for (const w of this.readyWaiters) w();
    this.readyWaiters = [];
    if (c) await c.close().catch(() => undefined);
  }
}
