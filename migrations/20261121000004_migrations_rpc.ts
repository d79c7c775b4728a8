import type { Knex } from 'knex';

export const MIGRATION_STATUSES = [
  'pre-migrating', 'migrating', 'post-migrating', 'finished', 'confirming', 'confirmed',
  'reverting', 'reverted', 'error',
] as const;
export const RPC_REQUEST_STATUSES = ['accepted', 'running', 'done', 'failed'] as const;

const list = (xs: readonly string[]) => xs.map((x) => `'${x}'`).join(', ');

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('migrations', (t) => {
    t.increments('id').primary();
    t.uuid('instance_uuid').notNullable();
    t.string('source_host', 63).notNullable();
    t.string('dest_host', 63).notNullable();
    t.string('status', 16).notNullable().defaultTo('pre-migrating');
    t.string('step', 64);
    t.string('image_ref', 512);
    t.string('image_digest', 128);
    t.jsonb('progress').notNullable().defaultTo('{}');
    t.text('error');
    t.timestamp('auto_confirm_at', { useTz: true });
    t.timestamps(true, true);
    t.index(['instance_uuid']);
  });
  await knex.schema.raw(`ALTER TABLE migrations ADD CONSTRAINT migrations_status CHECK (status IN (${list(MIGRATION_STATUSES)}))`);
  // At most one migration in flight per instance.
  await knex.schema.raw(`CREATE UNIQUE INDEX migrations_one_active ON migrations (instance_uuid)
    WHERE status NOT IN ('confirmed', 'reverted', 'error')`);

  // A request is written here before its AMQP message is acked: a crash never loses it and a
  // redelivery (same _unique_id) never runs it twice.
  await knex.schema.createTable('rpc_requests', (t) => {
    t.string('unique_id', 64).primary();
    t.string('msg_id', 64);
    t.string('method', 64).notNullable();
    t.string('kind', 8).notNullable();
    t.string('host', 63).notNullable();
    t.string('status', 16).notNullable().defaultTo('accepted');
    t.string('reply_q', 255);
    t.jsonb('args').notNullable().defaultTo('{}');
    t.jsonb('context').notNullable().defaultTo('{}');
    t.jsonb('result');
    t.jsonb('failure');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true });
    t.timestamp('finished_at', { useTz: true });
    t.index(['host', 'status']);
  });
  await knex.schema.raw(`ALTER TABLE rpc_requests
    ADD CONSTRAINT rpc_requests_status CHECK (status IN (${list(RPC_REQUEST_STATUSES)})),
    ADD CONSTRAINT rpc_requests_kind CHECK (kind IN ('call', 'cast'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('rpc_requests');
  await knex.schema.dropTableIfExists('migrations');
}
