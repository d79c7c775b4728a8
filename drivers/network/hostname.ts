import { InvalidInput } from '../../services/errors';
import { ipToInt, isIpv4, octets } from './ip-math';
import { assertUuid } from './names';

/** One RFC 1123 label, lowercase (what we put in /etc/hostname and hosts files). */
export const HOSTNAME_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function isHostnameLabel(s: unknown): s is string {
  return typeof s === 'string' && HOSTNAME_LABEL.test(s);
}

/** A DNS domain: dot-separated RFC 1123 labels, <= 253 characters. */
export function isDomainName(s: unknown): s is string {
  return typeof s === 'string' && s.length >= 1 && s.length <= 253 && s.split('.').every((l) => HOSTNAME_LABEL.test(l));
}

export const TEMPLATE_PLACEHOLDERS = ['name', 'ip_dashed', 'o1', 'o2', 'o3', 'o4', 'network', 'short_uuid'] as const;
export type TemplatePlaceholder = (typeof TEMPLATE_PLACEHOLDERS)[number];

export interface HostnameInput {
  /** Instance display name; sanitised as nova does (lowercase, other characters become '-'). */
  name: string;
  ip: string;
  network: string;
  uuid: string;
}

const TOKEN = /\{([^{}]*)\}/g;

/** Refuse unknown placeholders and stray braces before anything is rendered. */
export function parseTemplate(template: unknown): string {
  if (typeof template !== 'string' || template.length === 0 || template.length > 255) {
    throw new InvalidInput(`hostname template must be a non-empty string of <= 255 characters`);
  }
  for (const m of template.matchAll(TOKEN)) {
    if (!(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(m[1])) {
      throw new InvalidInput(`unknown placeholder {${m[1]}} in hostname template ${JSON.stringify(template)}; allowed: ${TEMPLATE_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}`);
    }
  }
  if (/[{}]/.test(template.replace(TOKEN, ''))) {
    throw new InvalidInput(`unbalanced brace in hostname template ${JSON.stringify(template)}`);
  }
  return template;
}

/** nova's sanitize_hostname, simplified: the result may still be empty (then rendering fails). */
export function sanitizeName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-{2,}/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
}

export function renderHostname(template: string, input: HostnameInput): string {
  parseTemplate(template);
  if (!isIpv4(input.ip)) throw new InvalidInput(`not an IPv4 address: ${JSON.stringify(input.ip)}`);
  assertUuid(input.uuid);
  const o = octets(input.ip);
  const values: Record<TemplatePlaceholder, string> = {
    name: sanitizeName(String(input.name ?? '')),
    ip_dashed: o.join('-'),
    o1: String(o[0]),
    o2: String(o[1]),
    o3: String(o[2]),
    o4: String(o[3]),
    network: String(input.network ?? ''),
    short_uuid: input.uuid.slice(0, 8),
  };
  const out = template.replace(TOKEN, (_m, key: TemplatePlaceholder) => values[key]);
  if (!isHostnameLabel(out)) {
    throw new InvalidInput(`hostname template ${JSON.stringify(template)} gives ${JSON.stringify(out)}, which is not an RFC 1123 label (a-z 0-9 -, 1..63 chars, no leading/trailing dash)`);
  }
  return out;
}

export interface HostsEntry {
  ip: string;
  hostname: string;
  domain: string;
}

export const HOSTS_HEADER = [
  '# Managed by the compute service (drivers/network/hostname.ts). Do not edit:',
  '# this file is rewritten whenever an instance on one of its networks starts or stops.',
];

const LOCAL_LINES = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/**
 * The text of a managed /etc/hosts: header, loopback lines, then `IP FQDN SHORT` for every
 * peer, ordered by address then name so the file only changes when the set of peers does.
 * Every field is validated: a hostname with a newline must never add a line of its own.
 */
export function renderHostsFile(entries: readonly HostsEntry[]): string {
  const lines = new Set<string>();
  const sorted = [...entries].map((e) => {
    if (!isIpv4(e.ip)) throw new InvalidInput(`hosts entry has a bad address: ${JSON.stringify(e.ip)}`);
    if (!isHostnameLabel(e.hostname)) throw new InvalidInput(`hosts entry has a bad hostname: ${JSON.stringify(e.hostname)}`);
    if (!isDomainName(e.domain)) throw new InvalidInput(`hosts entry has a bad domain: ${JSON.stringify(e.domain)}`);
    return e;
  }).sort((a, b) => ipToInt(a.ip) - ipToInt(b.ip) || a.hostname.localeCompare(b.hostname) || a.domain.localeCompare(b.domain));
  for (const e of sorted) lines.add(`${e.ip}\t${e.hostname}.${e.domain}\t${e.hostname}`);
  return [...HOSTS_HEADER, ...LOCAL_LINES, ...lines].join('\n') + '\n';
}
