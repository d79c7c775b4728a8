import type { Config } from '../config';
import { describeError, Unavailable } from '../errors';
import { RpcClient } from '../rpc/client';
import type { HostRpc } from './route';

/**
 * An RpcClient connected on first use (and again after a failed connect), so the API starts and
 * serves DB-only routes while RabbitMQ is down; host calls then answer 503.
 */
export class LazyRpc implements HostRpc {
  private client: Promise<RpcClient> | undefined;

  constructor(private readonly config: Config) {}

  private connect(): Promise<RpcClient> {
    if (!this.client) {
      const c = this.config;
      this.client = RpcClient.connect({
        amqpUrl: c.amqpUrl, controlExchange: c.controlExchange, topic: c.rpc.topic, heartbeatSec: c.rpc.heartbeatSec,
        quorumQueues: c.rpc.quorumQueues, defaultTimeoutSec: c.rpc.callTimeoutSec, connectTimeoutMs: 5000,
      });
      this.client.catch(() => (this.client = undefined));
    }
    return this.client;
  }

  async call<T>(host: string, method: string, args: Record<string, unknown>, opts: Parameters<HostRpc['call']>[3] = {}): Promise<T> {
    let client: RpcClient;
    try {
      client = await this.connect();
    } catch (err) {
      throw new Unavailable(`RabbitMQ is not reachable: ${describeError(err)}`, { cause: err });
    }
    return client.call<T>(host, method, args, opts);
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await (await c.catch(() => undefined))?.close();
  }
}
