import os from 'node:os';
import type { Config } from '../config';
import type { HostCapacity } from '../db/hosts-repo';
import { parseCpuList } from '../../drivers/cgroups/cpu-list';

/** Resolve a configured CPU list ("all", "none" or "0-3,6") against the CPUs this host has. */
export function resolveCpuSetting(setting: string, online: number[]): number[] {
  if (setting === 'all') return [...online];
  if (setting === 'none') return [];
  const wanted = parseCpuList(setting);
  const missing = wanted.filter((c) => !online.includes(c));
  if (missing.length > 0) {
    throw new Error(`configured CPUs ${missing.join(',')} are not online on this host (online: ${online.join(',')})`);
  }
  return wanted;
}

/** What this host offers to the scheduler; recomputed on every heartbeat. */
export function hostCapacity(cfg: Config, facts = { cpus: os.cpus().length, memoryBytes: os.totalmem() }): HostCapacity {
  const online = Array.from({ length: facts.cpus }, (_, i) => i);
  return {
    vcpus: facts.cpus,
    memoryMb: Math.floor(facts.memoryBytes / (1024 * 1024)),
    memoryReservedMb: cfg.memoryReservedMb,
    dedicatedCpus: resolveCpuSetting(cfg.cpus.dedicated, online),
    sharedCpus: resolveCpuSetting(cfg.cpus.shared, online),
    info: { kernel: os.release(), arch: os.arch(), node: process.version },
  };
}
