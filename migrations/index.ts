import type { Knex } from 'knex';
import * as m1 from './20261121000001_hosts_networks';
import * as m2 from './20261121000002_instances_claims';
import * as m3 from './20261121000003_actions';
import * as m4 from './20261121000004_migrations_rpc';

export interface MigrationModule {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/** Every migration, in order. Add new files here too (a test checks the folder and this list agree). */
export const MIGRATIONS: Array<[string, MigrationModule]> = [
  ['20261121000001_hosts_networks', m1],
  ['20261121000002_instances_claims', m2],
  ['20261121000003_actions', m3],
  ['20261121000004_migrations_rpc', m4],
];

/**
 * knex migration source over the static list, so migrations run the same from ts-jest and
 * from compiled JS without knex guessing file extensions.
 */
export class ListMigrationSource implements Knex.MigrationSource<[string, MigrationModule]> {
  async getMigrations(): Promise<Array<[string, MigrationModule]>> {
    return MIGRATIONS;
  }
  getMigrationName(m: [string, MigrationModule]): string {
    return m[0];
  }
  async getMigration(m: [string, MigrationModule]): Promise<Knex.Migration> {
    return m[1];
  }
}
