import { formatCpuList, parseCpuList } from '../../drivers/cgroups/cpu-list';
import { InvalidInput, NoCapacity } from '../errors';

/**
 * CPU placement, pure. `dedicated` instances get whole CPUs nobody else holds on the host;
 * `shared` instances float on the host's shared pool and compete by cpu.shares weight.
 * The DB side (who holds what, serialised per host) is services/db/claims-repo.ts.
 */
export { parseCpuList, formatCpuList };

export type CpuPolicy = 'dedicated' | 'shared';

/** Kernel bounds of cpu.shares (v1); Docker rejects values outside them too. */
export const MIN_CPU_SHARES = 2;
export const MAX_CPU_SHARES = 262144;

function assertCpuIds(what: string, cpus: Iterable<number>): void {
  for (const c of cpus) {
    if (!Number.isInteger(c) || c < 0) throw new InvalidInput(`${what} contains an invalid CPU id ${c}`);
  }
}

/**
 * The `count` lowest-numbered CPUs of `hostDedicated` that are not in `pinned`. Lowest first
 * keeps the choice deterministic and packs pins together, leaving high CPUs free for larger
 * flavors. NoCapacity (naming needed vs free) when there are not enough.
 */
export function chooseDedicatedCpus(hostDedicated: number[], pinned: Set<number>, count: number): number[] {
  if (!Number.isInteger(count) || count < 1) throw new InvalidInput(`dedicated CPU count must be a positive integer, got ${count}`);
  assertCpuIds('host dedicated CPUs', hostDedicated);
  const free = [...new Set(hostDedicated)].filter((c) => !pinned.has(c)).sort((a, b) => a - b);
  if (free.length < count) {
    const total = new Set(hostDedicated).size;
    throw new NoCapacity(
      `not enough dedicated CPUs: need ${count}, ${free.length} free` +
        ` (${total} dedicated on the host${free.length > 0 ? `, free: ${formatCpuList(free)}` : ''})`,
      { details: { needed: count, free: free.length, freeCpus: free, dedicatedCpus: total } },
    );
  }
  return free.slice(0, count);
}

/** The cpuset of a shared instance: the host's whole shared pool. NoCapacity if it has none. */
export function sharedCpuset(hostShared: number[]): { cpus: number[]; cpuset: string } {
  assertCpuIds('host shared CPUs', hostShared);
  const cpus = [...new Set(hostShared)].sort((a, b) => a - b);
  if (cpus.length === 0) throw new NoCapacity('host has no shared CPU pool for cpu_policy shared', { details: { needed: 1, free: 0 } });
  return { cpus, cpuset: formatCpuList(cpus) };
}

export interface FlavorCpu {
  vcpus: number;
  /** Explicit weight from the flavor; when absent, 1024 per vCPU (Docker's default per CPU). */
  cpu_shares?: number | null;
}

/** cpu.shares for a flavor: the flavor's own value, else 1024 * vcpus (capped at the kernel max). */
export function cpuSharesFor(flavor: FlavorCpu): number {
  if (!Number.isInteger(flavor.vcpus) || flavor.vcpus < 1) throw new InvalidInput(`flavor vcpus must be a positive integer, got ${flavor.vcpus}`);
  if (flavor.cpu_shares !== undefined && flavor.cpu_shares !== null) {
    const s = flavor.cpu_shares;
    if (!Number.isInteger(s) || s < MIN_CPU_SHARES || s > MAX_CPU_SHARES) {
      throw new InvalidInput(`cpu_shares must be an integer in ${MIN_CPU_SHARES}..${MAX_CPU_SHARES}, got ${s}`);
    }
    return s;
  }
  return Math.min(1024 * flavor.vcpus, MAX_CPU_SHARES);
}
