/**
 * `npm run migrate [-- latest|rollback|status]`: run knex migrations against the configured
 * database, creating the database first if needed.
 */
import { loadConfig } from '../config';
import { createDb, ensureDatabase, migrateLatest, migrateRollbackAll, migrationConfig } from './knex';

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--config'));
  const cmd = args[0] ?? 'latest';
  const cfg = loadConfig();
  const created = await ensureDatabase(cfg.databaseUrl);
  const db = createDb(cfg.databaseUrl, { max: 2 });
  try {
    if (cmd === 'latest') {
      const names = await migrateLatest(db);
      console.log(`database: ${created ? 'created, ' : ''}${names.length === 0 ? 'schema up to date' : `applied ${names.join(', ')}`}`);
    } else if (cmd === 'rollback') {
      const names = await migrateRollbackAll(db);
      console.log(`database: rolled back ${names.length} migration(s)`);
    } else if (cmd === 'status') {
      const [done, pending] = await db.migrate.list(migrationConfig());
      console.log(`applied: ${done.length}, pending: ${pending.length}`);
    } else {
      console.error(`usage: migrate [latest|rollback|status]`);
      process.exitCode = 2;
    }
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(`migrate failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
