import knexFactory, { type Knex } from 'knex';
import { Client } from 'pg';
import { ListMigrationSource } from '../../migrations';
import { maskUrl } from '../config';

export type Db = Knex;

export function createDb(databaseUrl: string, pool: { min?: number; max?: number } = {}): Db {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: databaseUrl, connectionTimeoutMillis: 5000 },
    pool: { min: pool.min ?? 0, max: pool.max ?? 10, acquireTimeoutMillis: 10000, idleTimeoutMillis: 10000 },
    acquireConnectionTimeout: 10000,
  });
}

/** Split `postgres://u@h:p/db` into the database name and a URL of the maintenance DB. */
export function splitDatabaseUrl(databaseUrl: string): { name: string; adminUrl: string } {
  const u = new URL(databaseUrl);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`database name "${name}" in ${maskUrl(databaseUrl)} must match ^[a-z_][a-z0-9_]{0,62}$`);
  }
  u.pathname = '/postgres';
  return { name, adminUrl: u.toString() };
}

/** CREATE DATABASE if it does not exist (idempotent). Optionally from a template. */
export async function ensureDatabase(databaseUrl: string, template?: string): Promise<boolean> {
  const { name, adminUrl } = splitDatabaseUrl(databaseUrl);
  const client = new Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const r = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (r.rowCount && r.rowCount > 0) return false;
    if (template && !/^[a-z_][a-z0-9_]{0,62}$/.test(template)) throw new Error(`bad template name ${template}`);
    try {
      await client.query(`CREATE DATABASE "${name}"${template ? ` TEMPLATE "${template}"` : ''}`);
    } catch (err) {
      // Two processes racing to create it: the loser sees duplicate_database (42P04).
      if ((err as { code?: string }).code !== '42P04') throw err;
      return false;
    }
    return true;
  } finally {
    await client.end();
  }
}

export async function dropDatabase(databaseUrl: string): Promise<void> {
  const { name, adminUrl } = splitDatabaseUrl(databaseUrl);
  const client = new Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

export const migrationConfig = (): Knex.MigratorConfig => ({
  migrationSource: new ListMigrationSource(),
  tableName: 'knex_migrations',
});

export async function migrateLatest(db: Db): Promise<string[]> {
  const [, names] = await db.migrate.latest(migrationConfig());
  return names as string[];
}

export async function migrateRollbackAll(db: Db): Promise<string[]> {
  const [, names] = await db.migrate.rollback(migrationConfig(), true);
  return names as string[];
}
