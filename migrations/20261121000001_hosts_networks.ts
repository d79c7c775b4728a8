import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('hosts', (t) => {
    t.string('name', 63).primary();
    t.integer('vcpus').notNullable().defaultTo(0);
    t.bigInteger('memory_mb').notNullable().defaultTo(0);
    t.bigInteger('memory_reserved_mb').notNullable().defaultTo(0);
    // CPUs that may be pinned exclusively (dedicated) and the pool shared instances float on.
    t.specificType('dedicated_cpus', 'integer[]').notNullable().defaultTo('{}');
    t.specificType('shared_cpus', 'integer[]').notNullable().defaultTo('{}');
    t.boolean('disabled').notNullable().defaultTo(false);
    t.text('disabled_reason');
    t.jsonb('info').notNullable().defaultTo('{}');
    t.timestamp('heartbeat_at', { useTz: true });
    t.timestamps(true, true);
  });
  await knex.schema.raw(`ALTER TABLE hosts ADD CONSTRAINT hosts_name_format CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9]){0,1}$')`);

  await knex.schema.createTable('networks', (t) => {
    t.string('name', 63).primary();
    t.string('type', 32).notNullable();
    t.string('bridge', 15).notNullable();
    t.integer('vlan');
    t.specificType('cidr', 'cidr').notNullable();
    t.specificType('gateway', 'inet');
    t.specificType('range_start', 'inet').notNullable();
    t.specificType('range_end', 'inet').notNullable();
    t.string('hostname_template', 255).notNullable().defaultTo('{name}');
    t.string('domain', 253).notNullable().defaultTo('local');
    t.string('uplink', 15);
    t.integer('mtu');
    t.timestamps(true, true);
  });
  await knex.schema.raw(`ALTER TABLE networks
    ADD CONSTRAINT networks_type CHECK (type IN ('ovs-vlan', 'linux-bridge')),
    ADD CONSTRAINT networks_vlan_range CHECK (vlan IS NULL OR (vlan BETWEEN 1 AND 4094)),
    ADD CONSTRAINT networks_ovs_has_vlan CHECK (type <> 'ovs-vlan' OR vlan IS NOT NULL),
    ADD CONSTRAINT networks_range_in_cidr CHECK (range_start << cidr AND range_end << cidr AND range_start <= range_end)`);
  // One network per VLAN on an OVS bridge: two networks sharing a tag would not be isolated.
  await knex.schema.raw(`CREATE UNIQUE INDEX networks_bridge_vlan ON networks (bridge, vlan) WHERE type = 'ovs-vlan'`);

  await knex.schema.createTable('ip_allocations', (t) => {
    t.string('network', 63).notNullable().references('name').inTable('networks').onDelete('RESTRICT');
    t.specificType('address', 'inet').notNullable();
    t.uuid('instance_uuid').notNullable();
    t.integer('nic_index').notNullable().defaultTo(0);
    t.string('mac', 17);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['network', 'address']);
    t.unique(['network', 'instance_uuid']);
    t.index(['instance_uuid']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('ip_allocations');
  await knex.schema.dropTableIfExists('networks');
  await knex.schema.dropTableIfExists('hosts');
}
