/**
 * Runbook commands for cold migration. They talk to the compute hosts over RPC (the same wire
 * format as the control plane) and read progress from the database.
 *
 * Exit codes: 0 done; 1 the operation failed (message printed); 2 usage or configuration error;
 * 3 a host or dependency is unreachable (nothing was changed by this command).
 */
import type { Command } from 'commander';
import { loadConfig, type Config } from '../config';
import { getInstance } from '../db/instances-repo';
import { createDb, type Db } from '../db/knex';
import { getMigration, listMigrations, type MigrationRow } from '../db/migrations-repo';
import { ComputeError, describeError, InvalidInput, NotFound } from '../errors';
import { RpcClient } from '../rpc/client';

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

interface Ctx { config: Config; db: Db; rpc?: RpcClient; json: boolean; out: (s: string) => void }

async function withCtx<T>(opts: { config?: string; json?: boolean }, needRpc: boolean, fn: (c: Ctx) => Promise<T>): Promise<T> {
  const config = loadConfig({ argv: opts.config ? ['--config', opts.config] : [] });
  const db = createDb(config.databaseUrl, { max: 2 });
  let rpc: RpcClient | undefined;
  try {
    if (needRpc) {
      rpc = await RpcClient.connect({ amqpUrl: config.amqpUrl, controlExchange: config.controlExchange, topic: config.rpc.topic, defaultTimeoutSec: 3600 });
    }
    return await fn({ config, db, rpc, json: !!opts.json, out: (s) => process.stdout.write(s + '\n') });
  } finally {
    await rpc?.close().catch(() => undefined);
    await db.destroy().catch(() => undefined);
  }
}

function fmtMs(ms?: number): string {
  return ms === undefined ? '' : ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

export function describeMigration(m: MigrationRow): string {
  const lines = [
    `migration ${m.id}: instance ${m.instance_uuid}`,
    `  ${m.source_host} -> ${m.dest_host}   status ${m.status}   step ${m.step ?? '-'}`,
  ];
  if (m.image_ref) lines.push(`  image ${m.image_ref}${m.image_digest ? ` (${m.image_digest})` : ''}`);
  for (const [step, t] of Object.entries(m.progress.steps ?? {})) lines.push(`  ${step.padEnd(16)} ${fmtMs(t.ms)}`);
  if (m.progress.downtime_ms !== undefined) lines.push(`  downtime         ${fmtMs(m.progress.downtime_ms)}`);
  if (m.error) lines.push(`  error: ${m.error}`);
  if (m.status === 'finished') lines.push(`  next: npm run cli -- migration confirm ${m.id}   (or: migration revert ${m.id})`);
  if (['pre-migrating', 'migrating', 'post-migrating', 'confirming'].includes(m.status)) lines.push(`  next (if nothing is running it): npm run cli -- migration resume ${m.id}`);
  return lines.join('\n');
}

/** Print each step as it finishes while `work` runs. */
async function watch<T>(c: Ctx, instanceUuid: string, work: Promise<T>): Promise<T> {
  const seen = new Set<string>();
  let done = false;
  const t0 = Date.now();
  const poll = async () => {
    for (;;) {
      const last = done; // one more pass after the work ended, so the final steps are printed
      const [m] = await listMigrations(c.db, { instanceUuid, limit: 1 }).catch(() => [] as MigrationRow[]);
      if (m && !c.json) {
        for (const [step, t] of Object.entries(m.progress.steps ?? {})) {
          if (seen.has(step)) continue;
          seen.add(step);
          c.out(`  ${step.padEnd(16)} done  ${fmtMs(t.ms).padStart(8)}   (t+${fmtMs(Date.now() - t0)})`);
        }
      }
      if (last) return;
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  const poller = poll();
  try {
    return await work;
  } finally {
    done = true;
    await poller;
  }
}

function exitFor(err: unknown): number {
  if (err instanceof ComputeError && (err.code === 'unavailable' || err.code === 'timeout')) return EXIT.unreachable;
  if (err instanceof ComputeError && err.code === 'invalid_input') return EXIT.usage;
  return EXIT.failed;
}

async function report(c: Ctx, m: MigrationRow): Promise<number> {
  c.out(c.json ? JSON.stringify(m, null, 2) : describeMigration(m));
  return m.status === 'error' ? EXIT.failed : EXIT.ok;
}

async function guarded(c: Ctx, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (c.json) c.out(JSON.stringify({ error: { code: (err as ComputeError).code ?? 'internal', message: describeError(err) } }));
    else process.stderr.write(`error: ${describeError(err)}\n`);
    return exitFor(err);
  }
}

export function registerMigrationCommands(program: Command, setCode: (code: number) => void): void {
  const common = (cmd: Command) => cmd.option('--json', 'machine-readable output').option('--config <file>', 'config file (or COMPUTE_CONFIG)');

  common(program.command('migrate <instance>')
    .description('cold-migrate an instance to another host, showing each step; waits for VERIFY_RESIZE (or confirmed with --auto-confirm)')
    .requiredOption('--to <host>', 'destination host')
    .option('--auto-confirm', 'confirm as soon as the instance runs on the destination'))
    .action(async (instance: string, opts: { to: string; autoConfirm?: boolean; json?: boolean; config?: string }) => {
      setCode(await withCtx(opts, true, (c) => guarded(c, async () => {
        const inst = await getInstance(c.db, instance);
        if (!inst) throw new NotFound(`instance ${instance} not found`);
        if (!inst.host) throw new InvalidInput(`instance ${instance} is on no host (vm_state ${inst.vm_state})`);
        if (!c.json) c.out(`migrating ${instance} (${inst.hostname ?? inst.name}) ${inst.host} -> ${opts.to}`);
        const m = await watch(c, instance, c.rpc!.call<MigrationRow>(inst.host, 'migrate_instance',
          { instance_uuid: instance, dest_host: opts.to, auto_confirm: !!opts.autoConfirm }, { timeout: 3600 }));
        return report(c, m);
      })));
    });

  const mig = program.command('migration').description('list, show, confirm, revert or resume migrations');
  common(mig.command('list').description('recent migrations, newest first')
    .option('--instance <uuid>', 'only this instance').option('--host <host>', 'only this source or destination'))
    .action(async (opts: { instance?: string; host?: string; json?: boolean; config?: string }) => {
      setCode(await withCtx(opts, false, (c) => guarded(c, async () => {
        const rows = await listMigrations(c.db, { instanceUuid: opts.instance, host: opts.host });
        if (c.json) c.out(JSON.stringify(rows, null, 2));
        else {
          c.out(`${'id'.padEnd(6)}${'instance'.padEnd(38)}${'source'.padEnd(16)}${'dest'.padEnd(16)}${'status'.padEnd(16)}step`);
          for (const r of rows) c.out(`${String(r.id).padEnd(6)}${r.instance_uuid.padEnd(38)}${r.source_host.padEnd(16)}${r.dest_host.padEnd(16)}${r.status.padEnd(16)}${r.step ?? ''}`);
        }
        return EXIT.ok;
      })));
    });
  common(mig.command('show <id>').description('one migration with its step timings'))
    .action(async (id: string, opts: { json?: boolean; config?: string }) => {
      setCode(await withCtx(opts, false, (c) => guarded(c, async () => report(c, await getMigration(c.db, parseId(id))))));
    });
  const remote = (name: string, description: string, method: string, where: (m: MigrationRow) => string) =>
    common(mig.command(`${name} <id>`).description(description))
      .action(async (id: string, opts: { json?: boolean; config?: string }) => {
        setCode(await withCtx(opts, true, (c) => guarded(c, async () => {
          const m = await getMigration(c.db, parseId(id));
          const args = method === 'resume_migration' ? { migration_id: m.id } : { instance_uuid: m.instance_uuid, migration_id: m.id };
          await watch(c, m.instance_uuid, c.rpc!.call(where(m), method, args, { timeout: 3600 }));
          return report(c, await getMigration(c.db, m.id));
        })));
      });
  remote('confirm', 'keep the instance on the destination; delete the source container and free its claims', 'confirm_resize', (m) => m.source_host);
  remote('revert', 'go back: delete the destination container and restart the source one', 'revert_resize', (m) => m.dest_host);
  remote('resume', 'continue an interrupted migration from its last finished step (on its source host)', 'resume_migration', (m) => m.source_host);
}

function parseId(id: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(id)) throw new InvalidInput(`migration id must be a positive integer, got ${JSON.stringify(id)}`);
  return Number(id);
}
