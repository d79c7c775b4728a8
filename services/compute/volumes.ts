import fs from 'node:fs/promises';
import path from 'node:path';
import { InvalidInput } from '../errors';

export interface VolumeSpec {
  host_path: string;
  container_path: string;
  read_only?: boolean;
}

export interface ResolvedBind {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
}

const SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;
/** Container paths we manage ourselves or that would hide the container's own system. */
const RESERVED_CONTAINER_PATHS = ['/', '/etc/hosts', '/etc/resolv.conf', '/etc/hostname', '/proc', '/sys', '/dev'];

/** Lexical checks, no I/O: absolute, no `..`, no reserved target. */
export function checkVolumeSyntax(v: VolumeSpec): void {
  for (const [field, p] of [['host_path', v.host_path], ['container_path', v.container_path]] as const) {
    if (!path.isAbsolute(p)) throw new InvalidInput(`volume ${field} must be absolute: ${JSON.stringify(p)}`);
    if (!SAFE_PATH.test(p)) throw new InvalidInput(`volume ${field} has characters outside [A-Za-z0-9._/-]: ${JSON.stringify(p)}`);
    if (p.split('/').includes('..')) throw new InvalidInput(`volume ${field} must not contain "..": ${JSON.stringify(p)}`);
  }
  const target = path.posix.normalize(v.container_path).replace(/\/+$/, '') || '/';
  if (RESERVED_CONTAINER_PATHS.includes(target)) {
    throw new InvalidInput(`volume container_path ${target} is reserved`);
  }
}

export function isWithin(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The deepest existing ancestor of `p`, resolved through symlinks. */
async function realpathOfExistingPrefix(p: string): Promise<{ real: string; rest: string }> {
  let cur = p;
  const rest: string[] = [];
  for (;;) {
    try {
      const real = await fs.realpath(cur);
      return { real, rest: rest.reverse().join('/') };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || cur === '/') throw err;
      rest.push(path.basename(cur));
      cur = path.dirname(cur);
    }
  }
}

/**
 * Resolve volumes against the allowed roots: the real path (symlinks followed) must stay under
 * one of them. Missing directories under a root are created. Anything else is refused before a
 * container exists.
 */
export async function resolveVolumes(volumes: VolumeSpec[], roots: string[]): Promise<ResolvedBind[]> {
  const realRoots: string[] = [];
  for (const r of roots) {
    await fs.mkdir(r, { recursive: true });
    realRoots.push(await fs.realpath(r));
  }
  const out: ResolvedBind[] = [];
  const targets = new Set<string>();
  for (const v of volumes) {
    checkVolumeSyntax(v);
    const { real, rest } = await realpathOfExistingPrefix(v.host_path);
    const resolved = rest ? path.join(real, rest) : real;
    if (!realRoots.some((root) => isWithin(root, resolved))) {
      throw new InvalidInput(
        `volume host_path ${v.host_path} resolves to ${resolved}, outside the allowed roots (${roots.join(', ')})`,
      );
    }
    if (targets.has(v.container_path)) throw new InvalidInput(`volume container_path ${v.container_path} given twice`);
    targets.add(v.container_path);
    await fs.mkdir(resolved, { recursive: true });
    out.push({ hostPath: resolved, containerPath: v.container_path, readOnly: v.read_only ?? false });
  }
  return out;
}
