import fs from 'node:fs';
import path from 'node:path';

const cache = new Map<string, string>();

/**
 * A file or folder under api-spec/, found by walking up from this module: the same from the
 * TypeScript sources (ts-jest) and from dist/ (the compiled service).
 */
export function apiSpecPath(relative: string): string {
  const hit = cache.get(relative);
  if (hit) return hit;
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'api-spec', relative);
    if (fs.existsSync(candidate)) {
      cache.set(relative, candidate);
      return candidate;
    }
    dir = path.dirname(dir);
  }
  throw new Error(`api-spec/${relative} not found above ${__dirname}`);
}
