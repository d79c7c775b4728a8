import { InvalidInput } from '../../services/errors';

/**
 * Linux CPU list strings ("0-3,5"), as in cpuset.cpus, /sys/devices/system/cpu/online and
 * Docker's CpusetCpus. The kernel's NR_CPUS tops out at 8192, so a larger id is a typo, and
 * refusing it keeps "0-999999999" from allocating a billion numbers.
 */
export const MAX_CPU_ID = 8191;

const RANGE = /^(\d+)(?:-(\d+))?$/;

/** "0-3,5" -> [0,1,2,3,5] (sorted, unique). "" (an empty cpuset) -> []. */
export function parseCpuList(text: string): number[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const cpus = new Set<number>();
  for (const part of trimmed.split(',')) {
    const m = RANGE.exec(part.trim());
    if (!m) throw new InvalidInput(`bad CPU list "${text}": "${part}" is not N or N-M`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new InvalidInput(`bad CPU list "${text}": range ${part} is backwards`);
    if (hi > MAX_CPU_ID) throw new InvalidInput(`bad CPU list "${text}": CPU ${hi} is above ${MAX_CPU_ID}`);
    for (let c = lo; c <= hi; c++) cpus.add(c);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** [0,1,2,3,5] -> "0-3,5"; order and duplicates in the input do not matter. [] -> "". */
export function formatCpuList(cpus: Iterable<number>): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  for (const c of sorted) {
    if (!Number.isInteger(c) || c < 0 || c > MAX_CPU_ID) throw new InvalidInput(`bad CPU id ${c}`);
  }
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j === i ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
