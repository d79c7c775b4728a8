import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ApiToken } from '../config';
import { sha256Hex } from './auth';

export const LOCAL_TOKEN_NAME = 'local-admin';

/**
 * `npm start` convenience: with no `api.tokens` configured the API would refuse everything, so
 * an admin token is kept in `${stateDir}/api-token` (mode 0600): reused when it exists, made at
 * the first start otherwise. Returns the token entry to add (hashed) and the file's path; the
 * token itself is never logged.
 */
export async function ensureLocalAdminToken(stateDir: string): Promise<{ token: ApiToken; file: string; created: boolean }> {
  const file = path.join(stateDir, 'api-token');
  await fs.mkdir(stateDir, { recursive: true });
  let plain: string | undefined;
  let created = false;
  try {
    const text = (await fs.readFile(file, 'utf8')).trim();
    if (/^[A-Za-z0-9_-]{32,512}$/.test(text)) plain = text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!plain) {
    plain = crypto.randomBytes(32).toString('base64url');
    // Write to a private temp file and rename, so the token never sits in a world-readable file.
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, `${plain}\n`, { mode: 0o600 });
    await fs.rename(tmp, file);
    created = true;
  }
  await fs.chmod(file, 0o600);
  return { token: { name: LOCAL_TOKEN_NAME, role: 'admin', sha256: sha256Hex(plain) }, file, created };
}
