import { Client } from 'pg';
import { ensureTemplateDatabase, PG_ADMIN_BASE } from './db';

/**
 * Drop private test databases left by a run that was killed before its afterAll (nobody is
 * connected to them any more). Databases in use by a concurrent run are left alone.
 */
async function dropAbandonedTestDatabases(): Promise<void> {
  const c = new Client({ connectionString: `${PG_ADMIN_BASE}/postgres` });
  await c.connect();
  try {
    const r = await c.query(`SELECT datname FROM pg_database d WHERE datname LIKE 'compute\\_t\\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)`);
    for (const { datname } of r.rows as Array<{ datname: string }>) {
      if (/^compute_t_[a-z0-9_]+$/.test(datname)) await c.query(`DROP DATABASE IF EXISTS "${datname}"`).catch(() => undefined);
    }
  } finally {
    await c.end();
  }
}

/**
 * Runs once per jest run. `npm test` has already run scripts/bootstrap (daemons up, build,
 * migrations); here we only prepare the template database test files clone from.
 */
export default async function globalSetup(): Promise<void> {
  process.env.NODE_ENV = 'test';
  await ensureTemplateDatabase();
  await dropAbandonedTestDatabases();
}
