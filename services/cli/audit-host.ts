import { Command } from 'commander';
import { auditHost } from '../compute/host-audit';
import { createComputeDeps } from '../compute/service';
import { loadConfig } from '../config';
import { createDb } from '../db/knex';

/**
 * `audit host [--json] [--config FILE]`: the read-only consistency check of THIS host (the same
 * report as GET /hosts/{name}/audit), run locally. Exit 0 when consistent, 1 with findings.
 */
export async function runHostAudit(argv: string[], out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<number> {
  const program = new Command('audit-host').option('--json', 'print the report as JSON').option('--config <file>', 'config file').exitOverride();
  program.parse(argv, { from: 'user' });
  const opts = program.opts<{ json?: boolean }>();
  const config = loadConfig({ argv });
  const db = createDb(config.databaseUrl, { max: 2 });
  try {
    const deps = await createComputeDeps(config, db);
    const report = await auditHost(deps);
    if (opts.json) out(JSON.stringify(report, null, 2));
    else {
      for (const f of report.findings) out(`${f.kind}\t${f.instance_uuid ?? '-'}\t${f.detail}`);
      out(`host ${report.host}: ${report.instances} instance(s), ${report.skipped.length} busy (skipped), ${report.findings.length} finding(s)`);
    }
    return report.ok ? 0 : 1;
  } finally {
    await db.destroy();
  }
}
