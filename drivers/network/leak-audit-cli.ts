import { Command } from 'commander';
import { loadConfig } from '../../services/config';
import { createDb } from '../../services/db/knex';
import { ExecFileRunner } from './exec';
import { auditLeaks, fixLeaks } from './leak-audit';

/**
 * `audit-network [--fix] [--live UUID,...]`: list host veths, IFBs and OVS ports whose instance
 * this host no longer has. Live instances come from the DB (instances on this host, not
 * deleted) unless given. To be mounted under services/cli as `audit network`.
 */
export async function runNetworkAudit(argv: string[], out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<number> {
  const program = new Command('audit-network')
    .option('--fix', 'remove what is found')
    .option('--live <uuids>', 'comma-separated live instance uuids (skips the DB)')
    .option('--config <file>', 'config file')
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const opts = program.opts<{ fix?: boolean; live?: string }>();
  const cfg = loadConfig({ argv });
  let live: string[];
  if (opts.live !== undefined) live = opts.live.split(',').filter((s) => s.length > 0);
  else {
    const db = createDb(cfg.databaseUrl, { max: 1 });
    try {
      live = (await db('instances').where({ host: cfg.host }).whereNull('deleted_at').select('uuid')).map((r: { uuid: string }) => r.uuid);
    } finally {
      await db.destroy();
    }
  }
  const runner = new ExecFileRunner();
  const leaks = await auditLeaks(runner, live, { ovsBridge: cfg.ovs.bridge });
  for (const l of leaks) out(`${l.kind}\t${l.name}\t${l.instance}`);
  if (!opts.fix) return leaks.length > 0 ? 1 : 0;
  const r = await fixLeaks(runner, leaks);
  for (const f of r.failed) out(`FAILED\t${f.leak.name}\t${f.error}`);
  out(`removed ${r.removed.length}, failed ${r.failed.length}`);
  return r.failed.length > 0 ? 1 : 0;
}

if (require.main === module) {
  runNetworkAudit(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  });
}
