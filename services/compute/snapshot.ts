import { INSTANCE_LABEL } from '../../drivers/docker';
import type { ActionContext } from '../db/actions-repo';
import { updateInstance } from '../db/instances-repo';
import { InvalidInput } from '../errors';
import type { ComputeDeps } from './compute-deps';
import { InstanceAction } from './instance-action';
import { localInstance } from './lifecycle';
import { checkTransition } from './state-machine';

const REPO_COMPONENT = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const IMAGE_NAME = /^([a-z0-9]+(?:[._-][a-z0-9]+)*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$/;

/** `REGISTRY/<project>/<name>:<tag>` from parts that were each checked by a strict pattern. */
export function imageRefFor(registry: string, projectId: string, name: string, tag: string): string {
  const project = projectId.toLowerCase();
  if (!REPO_COMPONENT.test(project)) throw new InvalidInput(`project_id ${JSON.stringify(projectId)} cannot name a registry repository ([a-z0-9._-])`);
  if (!REPO_COMPONENT.test(name)) throw new InvalidInput(`image name ${JSON.stringify(name)} must match [a-z0-9]+([._-][a-z0-9]+)*`);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) throw new InvalidInput(`image tag ${JSON.stringify(tag)} is not a valid tag`);
  return `${registry}/${project}/${name}:${tag}`;
}

export function parseImageName(imageName: string): { name: string; tag: string } {
  const m = IMAGE_NAME.exec(imageName);
  if (!m) throw new InvalidInput(`image_name ${JSON.stringify(imageName)} must look like name or name:tag (lowercase name)`);
  const tag = m[2] ?? 'latest';
  // Migration images live at <project>/<instance uuid>:mig-<id>: a snapshot must never overwrite one.
  if (tag.startsWith('mig-') || /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(m[1])) {
    throw new InvalidInput(`image_name ${JSON.stringify(imageName)}: uuid names and mig-* tags are reserved for migrations`);
  }
  return { name: m[1], tag };
}

/** `docker commit` (paused per config.snapshotPause) + push; returns the reference and digest. */
export async function commitAndPush(
  deps: ComputeDeps,
  containerId: string,
  ref: string,
  labels: Record<string, string>,
  pause: boolean,
): Promise<{ image_ref: string; digest: string | null }> {
  const colon = ref.lastIndexOf(':');
  await deps.docker.commit(containerId, { repo: ref.slice(0, colon), tag: ref.slice(colon + 1), labels, pause, timeoutMs: 600_000 });
  const pushed = await deps.docker.push(ref, { timeoutMs: 1_800_000 });
  return { image_ref: ref, digest: pushed.digest };
}

export async function snapshotInstance(deps: ComputeDeps, ctx: ActionContext, args: { instance_uuid: string; image_name: string }) {
  const inst = await localInstance(deps, args.instance_uuid);
  checkTransition('snapshot', inst.vm_state, inst.task_state);
  const { name, tag } = parseImageName(args.image_name);
  const ref = imageRefFor(deps.config.registry, inst.project_id, name, tag);
  await updateInstance(deps.db, inst.uuid, { task_state: 'image_snapshot' });
  try {
    return await InstanceAction.run(deps.db, inst.uuid, 'createImage', deps.config.host, ctx, (a) =>
      a.event('compute_snapshot', () => commitAndPush(deps, inst.container_id!, ref, { [INSTANCE_LABEL]: inst.uuid, 'compute.snapshot': 'true' }, deps.config.snapshotPause)));
  } finally {
    await updateInstance(deps.db, inst.uuid, { task_state: null });
  }
}
