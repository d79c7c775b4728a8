/**
 * Exchange and queue declarations, argument for argument what oslo.messaging 14's rabbit driver
 * declares with its default options (impl_rabbit.py: Consumer, declare_topic_consumer,
 * declare_fanout_consumer, declare_direct_consumer, topic_send, fanout_send;
 * amqp_durable_queues=False, amqp_auto_delete=False, rabbit_transient_queues_ttl=1800,
 * rabbit_ha_queues=False). RabbitMQ refuses a redeclaration whose flags or arguments differ
 * (PRECONDITION_FAILED), so a Python peer and we must agree exactly.
 */
import type { Channel, Options } from 'amqplib';

/** oslo's rabbit_transient_queues_ttl default: reply and fanout queues expire after 30 min unused. */
export const TRANSIENT_QUEUE_TTL_MS = 1800 * 1000;

export interface TopologyOptions {
  controlExchange: string;
  topic: string;
  /** oslo's rabbit_quorum_queue: topic queues get x-queue-type=quorum and become durable (so does the exchange). */
  quorumQueues: boolean;
}

/** The control exchange, as topic_send and declare_topic_consumer declare it. */
export function controlExchangeOptions(quorum: boolean): Options.AssertExchange {
  return { durable: quorum, autoDelete: false };
}

/** The shared topic queues `compute` and `compute.<host>`. */
export function topicQueueOptions(quorum: boolean): Options.AssertQueue {
  return quorum
    ? { durable: true, autoDelete: false, exclusive: false, arguments: { 'x-queue-type': 'quorum' } }
    : { durable: false, autoDelete: false, exclusive: false };
}

/** `<topic>_fanout`: fanout, not durable, auto-delete (both in fanout_send and the consumer). */
export const FANOUT_EXCHANGE_OPTIONS: Options.AssertExchange = { durable: false, autoDelete: true };

/** Per-process fanout queues and `reply_<hex>` queues: transient, expiring when unused. */
export const TRANSIENT_QUEUE_OPTIONS: Options.AssertQueue = {
  durable: false,
  autoDelete: false,
  exclusive: false,
  arguments: { 'x-expires': TRANSIENT_QUEUE_TTL_MS },
};

export const fanoutExchangeName = (topic: string): string => `${topic}_fanout`;
export const hostTopic = (topic: string, host: string): string => `${topic}.${host}`;

export async function declareControlExchange(ch: Channel, o: TopologyOptions): Promise<void> {
  await ch.assertExchange(o.controlExchange, 'topic', controlExchangeOptions(o.quorumQueues));
}

export async function declareFanoutExchange(ch: Channel, topic: string): Promise<void> {
  await ch.assertExchange(fanoutExchangeName(topic), 'fanout', FANOUT_EXCHANGE_OPTIONS);
}

/** A topic consumer's queue, bound with its own name as routing key (oslo: queue_name = topic). */
export async function declareTopicQueue(ch: Channel, o: TopologyOptions, queue: string): Promise<void> {
  await declareControlExchange(ch, o);
  await ch.assertQueue(queue, topicQueueOptions(o.quorumQueues));
  await ch.bindQueue(queue, o.controlExchange, queue);
}

/** `<topic>_fanout_<hex>` bound to `<topic>_fanout` (routing key = topic, ignored by fanout). */
export async function declareFanoutQueue(ch: Channel, topic: string, queue: string): Promise<void> {
  await declareFanoutExchange(ch, topic);
  await ch.assertQueue(queue, TRANSIENT_QUEUE_OPTIONS);
  await ch.bindQueue(queue, fanoutExchangeName(topic), topic);
}

/** A `reply_<hex>` queue on the default exchange (declare_direct_consumer). */
export async function declareReplyQueue(ch: Channel, queue: string): Promise<void> {
  await ch.assertQueue(queue, TRANSIENT_QUEUE_OPTIONS);
}
