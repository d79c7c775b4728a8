import fs from 'node:fs';
import path from 'node:path';
import { MIGRATIONS } from '../../migrations';
import { migrateLatest, migrateRollbackAll } from '../../services/db/knex';
import { freshDatabase, type TestDatabase } from '../helpers/db';

const TABLES = ['hosts', 'networks', 'ip_allocations', 'instances', 'cpu_pins', 'instance_actions',
  'instance_action_events', 'migrations', 'rpc_requests'];

async function tables(t: TestDatabase): Promise<string[]> {
  const r = await t.db.raw(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'knex%'`);
  return (r.rows as Array<{ tablename: string }>).map((x) => x.tablename).sort();
}

describe('migrations on real PostgreSQL', () => {
  let t: TestDatabase;
  beforeAll(async () => { t = await freshDatabase('mig'); });
  afterAll(async () => { await t?.drop(); });

  test('the list matches the files in migrations/', () => {
    const files = fs.readdirSync(path.join(__dirname, '../../migrations'))
      .filter((f) => /^\d{14}_.*\.ts$/.test(f)).map((f) => f.replace(/\.ts$/, '')).sort();
    expect(MIGRATIONS.map(([n]) => n)).toEqual(files);
  });

  test('up creates every table; constraints forbid double claims', async () => {
    expect(await tables(t)).toEqual([...TABLES].sort());
    await t.db('hosts').insert({ name: 'host-a', vcpus: 2, memory_mb: 1024 });
    await t.db('cpu_pins').insert({ host: 'host-a', cpu: 0, instance_uuid: '00000000-0000-4000-8000-000000000001' });
    await expect(t.db('cpu_pins').insert({ host: 'host-a', cpu: 0, instance_uuid: '00000000-0000-4000-8000-000000000002' }))
      .rejects.toThrow(/duplicate key/);
    await t.db('networks').insert({ name: 'net1', type: 'ovs-vlan', bridge: 'br-int', vlan: 100, cidr: '198.18.0.0/24',
      gateway: '198.18.0.1', range_start: '198.18.0.10', range_end: '198.18.0.200' });
    await t.db('ip_allocations').insert({ network: 'net1', address: '198.18.0.10', instance_uuid: '00000000-0000-4000-8000-000000000001' });
    await expect(t.db('ip_allocations').insert({ network: 'net1', address: '198.18.0.10', instance_uuid: '00000000-0000-4000-8000-000000000002' }))
      .rejects.toThrow(/duplicate key/);
    // VLAN outside 1..4094 and a range outside the CIDR are refused by the schema itself.
    await expect(t.db('networks').insert({ name: 'bad', type: 'ovs-vlan', bridge: 'br-int', vlan: 4095, cidr: '198.18.1.0/24',
      range_start: '198.18.1.10', range_end: '198.18.1.20' })).rejects.toThrow(/networks_vlan_range/);
    await expect(t.db('networks').insert({ name: 'bad2', type: 'linux-bridge', bridge: 'brx', cidr: '198.18.1.0/24',
      range_start: '198.18.2.10', range_end: '198.18.2.20' })).rejects.toThrow(/networks_range_in_cidr/);
    await expect(t.db('hosts').insert({ name: 'Host;rm' })).rejects.toThrow(/hosts_name_format/);
  });

  test('down removes everything, up again restores it, with data surviving a partial round trip', async () => {
    const rolled = await migrateRollbackAll(t.db);
    expect(rolled.length).toBe(MIGRATIONS.length);
    expect(await tables(t)).toEqual([]);
    const applied = await migrateLatest(t.db);
    expect(applied.length).toBe(MIGRATIONS.length);
    expect(await tables(t)).toEqual([...TABLES].sort());
    await t.db('hosts').insert({ name: 'host-b', vcpus: 4, memory_mb: 2048 });
    // Roll back only the newest migration: older tables keep their rows.
    await t.db.migrate.down({ migrationSource: new (await import('../../migrations')).ListMigrationSource() });
    expect(await tables(t)).not.toContain('rpc_requests');
    expect((await t.db('hosts').where({ name: 'host-b' })).length).toBe(1);
    await migrateLatest(t.db);
    expect(await tables(t)).toContain('rpc_requests');
  });
});
