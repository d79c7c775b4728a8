import type { Knex } from 'knex';

export const VM_STATES = ['building', 'active', 'stopped', 'paused', 'resized', 'error', 'deleted'] as const;
export const TASK_STATES = [
  'spawning', 'creating', 'starting', 'post_starting', 'powering_off', 'powering_on', 'rebooting',
  'pausing', 'unpausing', 'deleting', 'resize_prep', 'resize_migrating', 'resize_migrated',
  'resize_finish', 'resize_reverting', 'resize_confirming', 'updating_resources', 'image_snapshot',
] as const;
export const POWER_STATES = ['nostate', 'running', 'paused', 'shutdown', 'crashed'] as const;

const list = (xs: readonly string[]) => xs.map((x) => `'${x}'`).join(', ');

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('instances', (t) => {
    t.uuid('uuid').primary();
    t.string('name', 255).notNullable();
    t.string('project_id', 255).notNullable();
    t.string('user_id', 255);
    t.string('host', 63).references('name').inTable('hosts').onDelete('RESTRICT');
    t.string('vm_state', 16).notNullable().defaultTo('building');
    t.string('task_state', 32);
    t.string('power_state', 16).notNullable().defaultTo('nostate');
    t.string('container_id', 64);
    t.string('hostname', 63);
    t.integer('vcpus').notNullable().defaultTo(1);
    t.bigInteger('memory_mb').notNullable().defaultTo(0);
    t.jsonb('spec').notNullable();
    t.jsonb('fault');
    t.string('server_group', 255);
    t.timestamp('launched_at', { useTz: true });
    t.timestamp('terminated_at', { useTz: true });
    t.timestamp('deleted_at', { useTz: true });
    t.timestamps(true, true);
    t.index(['host']);
    t.index(['project_id']);
  });
  await knex.schema.raw(`ALTER TABLE instances
    ADD CONSTRAINT instances_vm_state CHECK (vm_state IN (${list(VM_STATES)})),
    ADD CONSTRAINT instances_task_state CHECK (task_state IS NULL OR task_state IN (${list(TASK_STATES)})),
    ADD CONSTRAINT instances_power_state CHECK (power_state IN (${list(POWER_STATES)}))`);

  // unique(host, cpu) as the primary key: a CPU can never be pinned twice on one host, whatever
  // the code does. `migration_id` marks a pin held on a destination during a cold migration.
  await knex.schema.createTable('cpu_pins', (t) => {
    t.string('host', 63).notNullable().references('name').inTable('hosts').onDelete('CASCADE');
    t.integer('cpu').notNullable();
    t.uuid('instance_uuid').notNullable();
    t.integer('migration_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['host', 'cpu']);
    t.index(['instance_uuid']);
  });
  await knex.schema.raw(`ALTER TABLE cpu_pins ADD CONSTRAINT cpu_pins_cpu_nonneg CHECK (cpu >= 0)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('cpu_pins');
  await knex.schema.dropTableIfExists('instances');
}
