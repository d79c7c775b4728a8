/**
 * RPC endpoints of the spawn pipeline and the instance lifecycle. Each one takes the instance
 * lock (instanceUuidOf) so two operations on one instance never interleave.
 */
import type { ActionContext } from '../db/actions-repo';
import type { EndpointTable, RequestContext, RpcEndpoint } from '../rpc/server';
import { loadRpcSchema } from '../rpc/schemas';
import type { ComputeDeps } from './compute-deps';
import { refreshLocalHosts } from './hosts-sync';
import type { InstanceSpec } from './instance-spec';
import { runLifecycle, terminateInstance } from './lifecycle';
import { getConsoleOutput, getDiagnostics, updateInstanceResources, type UpdateResourcesArgs } from './resources';
import { buildAndRunInstance } from './spawn';
import { auditHostEndpoint } from './host-audit';
import { getMigration } from '../db/migrations-repo';
import {
  abortMigration, confirmResize, finishResize, finishRevertResize, migrateInstance, prepResize, resumeMigration, revertResize,
} from './migration';
import { snapshotInstance } from './snapshot';

export function actionContext(ctx: RequestContext): ActionContext {
  return { requestId: ctx.requestId, userId: ctx.userId, projectId: ctx.projectId };
}

type ByUuid = { instance_uuid: string };
type MigArgs = { instance_uuid: string; migration_id: number };

function byUuid<A extends ByUuid, R>(method: string, fn: (ctx: RequestContext, args: A) => Promise<R>, resumable = false): RpcEndpoint<A, R> {
  return { schema: loadRpcSchema(method), handler: fn, instanceUuidOf: (a) => a.instance_uuid, resumable };
}

export function createOperationEndpoints(deps: ComputeDeps): EndpointTable {
  return {
    build_and_run_instance: {
      schema: loadRpcSchema('build_and_run_instance'),
      instanceUuidOf: (a: { instance: InstanceSpec }) => a.instance.uuid,
      // Not resumable: after a crash the reconciler cleans a half-built instance into error.
      resumable: false,
      handler: (ctx: RequestContext, a: { instance: InstanceSpec }) => buildAndRunInstance(deps, actionContext(ctx), a.instance),
    },
    terminate_instance: byUuid('terminate_instance', (ctx, a: ByUuid) => terminateInstance(deps, actionContext(ctx), a.instance_uuid), true),
    stop_instance: byUuid('stop_instance', (ctx, a: ByUuid) => runLifecycle(deps, actionContext(ctx), a.instance_uuid, 'stop'), true),
    start_instance: byUuid('start_instance', (ctx, a: ByUuid) => runLifecycle(deps, actionContext(ctx), a.instance_uuid, 'start'), true),
    reboot_instance: byUuid('reboot_instance', (ctx, a: ByUuid & { reboot_type?: 'SOFT' | 'HARD' }) =>
      runLifecycle(deps, actionContext(ctx), a.instance_uuid, a.reboot_type === 'HARD' ? 'reboot_hard' : 'reboot_soft')),
    pause_instance: byUuid('pause_instance', (ctx, a: ByUuid) => runLifecycle(deps, actionContext(ctx), a.instance_uuid, 'pause'), true),
    unpause_instance: byUuid('unpause_instance', (ctx, a: ByUuid) => runLifecycle(deps, actionContext(ctx), a.instance_uuid, 'unpause'), true),
    update_instance_resources: byUuid('update_instance_resources', (ctx, a: UpdateResourcesArgs) => updateInstanceResources(deps, actionContext(ctx), a)),
    get_console_output: byUuid('get_console_output', (_ctx, a: ByUuid & { tail?: number }) => getConsoleOutput(deps, a.instance_uuid, a.tail ?? 100), true),
    get_diagnostics: byUuid('get_diagnostics', (_ctx, a: ByUuid) => getDiagnostics(deps, a.instance_uuid), true),
    audit_host: auditHostEndpoint(deps),
    snapshot_instance: byUuid('snapshot_instance', (ctx, a: ByUuid & { image_name: string }) => snapshotInstance(deps, actionContext(ctx), a)),
    migrate_instance: byUuid('migrate_instance', (ctx, a: ByUuid & { dest_host: string; auto_confirm?: boolean }) => migrateInstance(deps, actionContext(ctx), a)),
    prep_resize: byUuid('prep_resize', (_ctx, a: MigArgs) => prepResize(deps, a), true),
    finish_resize: byUuid('finish_resize', (_ctx, a: MigArgs) => finishResize(deps, a), true),
    abort_migration: byUuid('abort_migration', (_ctx, a: MigArgs) => abortMigration(deps, a), true),
    confirm_resize: byUuid('confirm_resize', (ctx, a: MigArgs) => confirmResize(deps, actionContext(ctx), a), true),
    revert_resize: byUuid('revert_resize', (ctx, a: MigArgs) => revertResize(deps, actionContext(ctx), a), true),
    finish_revert_resize: byUuid('finish_revert_resize', (_ctx, a: MigArgs) => finishRevertResize(deps, a), true),
    resume_migration: {
      schema: loadRpcSchema('resume_migration'),
      handler: async (ctx: RequestContext, a: { migration_id: number }) => {
        const mig = await getMigration(deps.db, a.migration_id);
        return deps.instanceLocks.runExclusive(mig.instance_uuid, () => resumeMigration(deps, actionContext(ctx), a));
      },
    },
    refresh_hosts: {
      schema: loadRpcSchema('refresh_hosts'),
      resumable: true,
      handler: async (_ctx: RequestContext, a: { network_id: string }) => ({ changed: await refreshLocalHosts(deps, [a.network_id]) }),
    },
  };
}
