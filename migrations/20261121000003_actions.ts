import type { Knex } from 'knex';

/** nova's os-instance-actions: one action per operation, one event per step. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('instance_actions', (t) => {
    t.increments('id').primary();
    t.uuid('instance_uuid').notNullable();
    t.string('action', 64).notNullable();
    t.string('request_id', 255);
    t.string('user_id', 255);
    t.string('project_id', 255);
    t.string('host', 63);
    t.timestamp('start_time', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finish_time', { useTz: true });
    t.string('result', 16);
    t.text('message');
    t.index(['instance_uuid', 'start_time']);
    t.index(['request_id']);
  });
  await knex.schema.raw(`ALTER TABLE instance_actions ADD CONSTRAINT instance_actions_result CHECK (result IS NULL OR result IN ('Success', 'Error'))`);
  await knex.schema.createTable('instance_action_events', (t) => {
    t.increments('id').primary();
    t.integer('action_id').notNullable().references('id').inTable('instance_actions').onDelete('CASCADE');
    t.string('event', 64).notNullable();
    t.string('host', 63);
    t.timestamp('start_time', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finish_time', { useTz: true });
    t.string('result', 16);
    t.text('traceback');
    t.jsonb('details');
    t.index(['action_id']);
  });
  await knex.schema.raw(`ALTER TABLE instance_action_events ADD CONSTRAINT instance_action_events_result CHECK (result IS NULL OR result IN ('Success', 'Error'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('instance_action_events');
  await knex.schema.dropTableIfExists('instance_actions');
}
