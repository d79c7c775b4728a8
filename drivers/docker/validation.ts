import { InvalidInput } from '../../services/errors';

/**
 * Strict patterns for every name, reference and path that reaches dockerd. Anything outside
 * them is refused with InvalidInput before a request is made, so a bad value can never turn
 * into a different API path, query parameter or bind specification.
 */

/** Container names (and ids, which are lowercase hex and match too). Docker's own rule, anchored. */
export const CONTAINER_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** Label keys: reverse-DNS style as Docker recommends, lowercase, no leading/trailing separator. */
export const LABEL_KEY_PATTERN = /^[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?$/;

/** Label values: printable, no control characters, bounded. */
export const LABEL_VALUE_PATTERN = /^[^\u0000-\u001f\u007f]{0,1024}$/;

/** RFC 1123 hostname label (the container's hostname is a single label; the domain goes apart). */
export const HOSTNAME_PATTERN = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

/** DNS domain name (dot-separated RFC 1123 labels). */
export const DOMAIN_PATTERN = /^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** Absolute path with safe characters only: no ':' or ',' (bind syntax), no spaces. */
export const ABS_PATH_PATTERN = /^\/[A-Za-z0-9._/+@-]{0,4095}$/;

/** Block device node path for blkio throttling. */
export const DEVICE_PATH_PATTERN = /^\/dev\/[A-Za-z0-9._/:+-]{1,255}$/;

/** Docker cpuset syntax: "0", "0-3", "0,2,4-7". */
export const CPUSET_PATTERN = /^[0-9]{1,4}(?:-[0-9]{1,4})?(?:,[0-9]{1,4}(?:-[0-9]{1,4})?)*$/;

export const MAC_PATTERN = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/;

/** Environment variable names as POSIX shells accept them. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;

/** Signals by name (SIGTERM, SIGKILL, SIGRTMIN+3 is not needed here). */
export const SIGNAL_PATTERN = /^SIG[A-Z0-9]{2,10}$/;

/** Full image id as returned by commit/inspect. */
export const IMAGE_ID_PATTERN = /^sha256:[a-f0-9]{64}$/;

/*
 * Image references, after distribution/reference's grammar, kept strict:
 *   [domain[:port]/]component(/component)*[:tag][@sha256:hex64]
 * A first component is a registry domain only if it contains '.' or ':' or is 'localhost'.
 */
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]{1,5})?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';
const DIGEST = 'sha256:[a-f0-9]{64}';

export const IMAGE_REF_PATTERN = new RegExp(
  `^(?:(${DOMAIN})/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`,
);

export interface ImageRef {
  /** Registry host[:port], when the reference names one. */
  registry?: string;
  /** Repository as Docker's API wants it: registry (if any) + path, without tag or digest. */
  repository: string;
  tag?: string;
  digest?: string;
}

function fail(what: string, value: unknown, why: string): never {
  throw new InvalidInput(`invalid ${what} ${JSON.stringify(value)}: ${why}`, { details: { field: what } });
}

export function parseImageRef(ref: string): ImageRef {
  if (typeof ref !== 'string' || ref.length === 0 || ref.length > 512) fail('image reference', ref, 'empty or too long');
  const m = IMAGE_REF_PATTERN.exec(ref);
  if (!m) fail('image reference', ref, 'does not match [registry[:port]/]path[:tag][@sha256:digest]');
  let domain: string | undefined = m[1];
  let path = m[2];
  const tag = m[3];
  const digest = m[4];
  // "foo:5000" alone parses as path "foo" with tag "5000"; only treat the first part as a
  // registry when it looks like one (distribution/reference's rule).
  if (domain !== undefined && !(domain.includes('.') || domain.includes(':') || domain === 'localhost')) {
    if (!/^[a-z0-9]/.test(domain) || domain !== domain.toLowerCase() || !new RegExp(`^${PATH_COMPONENT}$`).test(domain)) {
      fail('image reference', ref, 'first path component is neither a registry nor a lowercase name');
    }
    path = `${domain}/${path}`;
    domain = undefined;
  }
  const repository = domain !== undefined ? `${domain}/${path}` : path;
  // "sha256:abc" would parse as repository sha256, tag abc: it is a (truncated) image id.
  if (repository === 'sha256') fail('image reference', ref, 'looks like an image id; give the full sha256:<64 hex>');
  if (repository.length > 255) fail('image reference', ref, 'repository name longer than 255 characters');
  const out: ImageRef = { repository };
  if (domain !== undefined) out.registry = domain;
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** An image reference or a full image id (`sha256:<64 hex>`), for inspect/remove/tag sources. */
export function validateImageRefOrId(ref: string): string {
  if (typeof ref === 'string' && IMAGE_ID_PATTERN.test(ref)) return ref;
  parseImageRef(ref);
  return ref;
}

export function validateContainerName(name: string, what = 'container name'): string {
  if (typeof name !== 'string' || !CONTAINER_NAME_PATTERN.test(name)) {
    fail(what, name, `must match ${CONTAINER_NAME_PATTERN.source}`);
  }
  return name;
}

/** Container id or name, as accepted by every per-container call. */
export function validateContainerRef(ref: string): string {
  return validateContainerName(ref, 'container id or name');
}

export function validateLabelKey(key: string): string {
  if (typeof key !== 'string' || !LABEL_KEY_PATTERN.test(key)) fail('label key', key, `must match ${LABEL_KEY_PATTERN.source}`);
  return key;
}

export function validateLabels(labels: Record<string, string>): Record<string, string> {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) fail('labels', labels, 'must be an object');
  for (const [k, v] of Object.entries(labels)) {
    validateLabelKey(k);
    if (typeof v !== 'string' || !LABEL_VALUE_PATTERN.test(v)) fail('label value', v, `of ${k} must be printable text up to 1024 characters`);
  }
  return labels;
}

/** Label filter for listing: `key` (present) or `key=value`. */
export function validateLabelFilter(filter: string): string {
  if (typeof filter !== 'string') fail('label filter', filter, 'must be a string');
  const eq = filter.indexOf('=');
  if (eq === -1) {
    validateLabelKey(filter);
  } else {
    validateLabelKey(filter.slice(0, eq));
    const v = filter.slice(eq + 1);
    if (!LABEL_VALUE_PATTERN.test(v)) fail('label filter value', v, 'must be printable text up to 1024 characters');
  }
  return filter;
}

export function validateHostname(hostname: string): string {
  if (typeof hostname !== 'string' || !HOSTNAME_PATTERN.test(hostname)) {
    fail('hostname', hostname, 'must be a single RFC 1123 label (1-63 letters, digits, hyphens)');
  }
  return hostname;
}

export function validateDomain(domain: string): string {
  if (typeof domain !== 'string' || !DOMAIN_PATTERN.test(domain)) fail('domain name', domain, 'must be RFC 1123 labels separated by dots');
  return domain;
}

/** Absolute path without '..' segments, safe characters only. */
export function validateAbsPath(path: string, what: string): string {
  if (typeof path !== 'string' || !ABS_PATH_PATTERN.test(path)) fail(what, path, 'must be an absolute path of [A-Za-z0-9._/+@-]');
  if (path.split('/').some((seg) => seg === '..' || seg === '.')) fail(what, path, 'must not contain "." or ".." segments');
  return path;
}

export function validateDevicePath(path: string): string {
  if (typeof path !== 'string' || !DEVICE_PATH_PATTERN.test(path) || path.split('/').includes('..')) {
    fail('block device path', path, 'must be /dev/<name>');
  }
  return path;
}

export function validateCpuset(cpuset: string): string {
  if (typeof cpuset !== 'string' || !CPUSET_PATTERN.test(cpuset)) fail('cpuset', cpuset, 'must look like "0", "0-3" or "0,2,4-7"');
  for (const part of cpuset.split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    if (hi !== undefined && hi < lo) fail('cpuset', cpuset, `range ${part} is reversed`);
  }
  return cpuset;
}

export function validateMac(mac: string): string {
  if (typeof mac !== 'string' || !MAC_PATTERN.test(mac)) fail('MAC address', mac, 'must be six hex octets separated by ":"');
  return mac;
}

export function validateSignal(signal: string): string {
  if (typeof signal !== 'string' || !SIGNAL_PATTERN.test(signal)) fail('signal', signal, 'must be a signal name like SIGTERM');
  return signal;
}

/** Non-negative safe integer within [min, max]. */
export function validateInt(value: number, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(what, value, `must be an integer in [${min}, ${max}]`);
  }
  return value;
}

export function validateEnv(env: Record<string, string>): string[] {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) fail('env', env, 'must be an object');
  return Object.entries(env).map(([k, v]) => {
    if (!ENV_NAME_PATTERN.test(k)) fail('environment variable name', k, `must match ${ENV_NAME_PATTERN.source}`);
    if (typeof v !== 'string' || v.includes('\u0000')) fail('environment variable value', k, 'must be a string without NUL');
    return `${k}=${v}`;
  });
}

export function validateArgv(argv: string[], what: string): string[] {
  if (!Array.isArray(argv) || argv.length === 0 || argv.length > 4096) fail(what, argv, 'must be a non-empty array of strings');
  for (const a of argv) {
    if (typeof a !== 'string' || a.includes('\u0000')) fail(what, argv, 'every element must be a string without NUL');
  }
  return argv;
}
