import { ensureTemplateDatabase } from './db';

/**
 * Runs once per jest run. `npm test` has already run scripts/bootstrap (daemons up, build,
 * migrations); here we only prepare the template database test files clone from.
 */
export default async function globalSetup(): Promise<void> {
  process.env.NODE_ENV = 'test';
  await ensureTemplateDatabase();
}
