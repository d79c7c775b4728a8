import crypto from 'node:crypto';
import { createDb, dropDatabase, ensureDatabase, migrateLatest, type Db } from '../../services/db/knex';

export const PG_ADMIN_BASE = process.env.COMPUTE_TEST_PG_BASE ?? 'postgres://postgres@127.0.0.1:5432';
export const TEMPLATE_DB = 'compute_test_template';

/** Create (once per run) a migrated template database that test databases are cloned from. */
export async function ensureTemplateDatabase(): Promise<void> {
  const url = `${PG_ADMIN_BASE}/${TEMPLATE_DB}`;
  await ensureDatabase(url);
  const db = createDb(url, { max: 1 });
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }
}

export interface TestDatabase {
  url: string;
  db: Db;
  drop(): Promise<void>;
}

/**
 * A private, migrated database for one test file (cloned from the template in ~100 ms), so
 * integration files can run in parallel without seeing each other's rows.
 */
export async function freshDatabase(label = 'db'): Promise<TestDatabase> {
  const name = `compute_t_${label.replace(/[^a-z0-9]/g, '').slice(0, 20)}_${crypto.randomBytes(4).toString('hex')}`;
  const url = `${PG_ADMIN_BASE}/${name}`;
  // CREATE DATABASE ... TEMPLATE fails while another session is connected to the template;
  // retry briefly (only the global setup ever connects to it).
  for (let i = 0; ; i++) {
    try {
      await ensureDatabase(url, TEMPLATE_DB);
      break;
    } catch (err) {
      if (i >= 20) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const db = createDb(url, { max: 5 });
  return {
    url,
    db,
    async drop() {
      await db.destroy();
      await dropDatabase(url);
    },
  };
}
