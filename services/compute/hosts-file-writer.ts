import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * The per-instance files bind-mounted into a container as /etc/hosts and /etc/resolv.conf.
 *
 * Docker bind-mounts a single file by inode, so the usual write-temp-then-rename would leave the
 * container looking at the old inode forever (moby/moby#15793). We therefore rewrite the same
 * inode in place, with ONE positional write of the whole text padded with trailing newlines up
 * to the old length, then truncate: a reader sees either the old file, or the new text followed
 * by blank lines (harmless in /etc/hosts), never a torn line. A copy written with rename next to
 * it (`hosts.next`) keeps the intended content durable if we crash mid-way.
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function instanceDir(stateDir: string, instanceUuid: string): string {
  if (!UUID_PATTERN.test(instanceUuid)) throw new Error(`not an instance uuid: ${JSON.stringify(instanceUuid)}`);
  return path.join(stateDir, 'instances', instanceUuid);
}

export function hostsPath(stateDir: string, instanceUuid: string): string {
  return path.join(instanceDir(stateDir, instanceUuid), 'hosts');
}

export function resolvPath(stateDir: string, instanceUuid: string): string {
  return path.join(instanceDir(stateDir, instanceUuid), 'resolv.conf');
}

/** Pad `text` with newlines so a single overwrite never leaves bytes of the old content visible. */
export function padForInPlace(text: string, oldLength: number): Buffer {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length >= oldLength) return buf;
  return Buffer.concat([buf, Buffer.alloc(oldLength - buf.length, 0x0a)]);
}

/** Rewrite `file` in place (same inode), creating it if missing. Returns true if it changed. */
export async function writeInPlace(file: string, text: string): Promise<boolean> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await fs.writeFile(file, text, { mode: 0o644 });
    return true;
  }
  try {
    const old = await handle.readFile({ encoding: 'utf8' });
    if (old === text) return false;
    const next = `${file}.next`;
    const tmp = `${next}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await fs.writeFile(tmp, text, { mode: 0o644 });
    await fs.rename(tmp, next);
    const buf = padForInPlace(text, Buffer.byteLength(old, 'utf8'));
    await handle.write(buf, 0, buf.length, 0);
    await handle.truncate(Buffer.byteLength(text, 'utf8'));
    await handle.sync();
    await fs.rm(next, { force: true });
    return true;
  } finally {
    await handle.close();
  }
}

export async function removeInstanceFiles(stateDir: string, instanceUuid: string): Promise<void> {
  // A peer's hosts refresh may be writing into the directory meanwhile (ENOTEMPTY): retry.
  await fs.rm(instanceDir(stateDir, instanceUuid), { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
}
