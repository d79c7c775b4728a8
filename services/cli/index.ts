/**
 * Runbook CLI: `npm run cli -- <command>`. Commands that only read print and exit 0 when all is
 * well; exit codes: 0 ok, 1 something found or failed (printed), 2 usage or configuration error.
 */
import { Command } from 'commander';
import { runNetworkAudit } from '../../drivers/network/leak-audit-cli';
import { runHostAudit } from './audit-host';
import { registerMigrationCommands } from './migration-cli';

async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('compute-cli')
    .description('Operator commands for the compute service (see README "Operations")')
    .exitOverride();
  const audit = program.command('audit').description('compare this host with the database (read-only unless --fix)');
  audit
    .command('network')
    .description('list veths, IFBs and OVS ports whose instance this host no longer has; --fix removes them')
    .option('--fix', 'remove what is found')
    .option('--live <uuids>', 'comma-separated live instance uuids (default: from the database)')
    .option('--config <file>', 'config file (or COMPUTE_CONFIG)')
    .allowUnknownOption(false)
    .action(async (_opts, cmd: Command) => {
      code = await runNetworkAudit(cmd.args.length ? cmd.args : argvAfter(argv, 'network'));
    });
  registerMigrationCommands(program, (c) => { code = c; });
  audit
    .command('host')
    .description('compare the database with Docker containers, OVS ports and host links of this host (read-only)')
    .option('--json', 'print the report as JSON')
    .option('--config <file>', 'config file (or COMPUTE_CONFIG)')
    .allowUnknownOption(false)
    .action(async () => {
      code = await runHostAudit(argvAfter(argv, 'host'));
    });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help' || e.code === 'commander.version') return 0;
    if (e.code?.startsWith('commander.')) return 2;
    process.stderr.write(`${e.message ?? String(err)}\n`);
    return 2;
  }
  return code;
}

function argvAfter(argv: string[], word: string): string[] {
  const i = argv.indexOf(word);
  return i >= 0 ? argv.slice(i + 1) : [];
}

main(process.argv.slice(2)).then((c) => process.exit(c));
