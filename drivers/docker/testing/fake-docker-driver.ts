import crypto from 'node:crypto';
import { Conflict, Internal, InvalidInput, NotFound, Unavailable, type ComputeError } from '../../../services/errors';
import {
  INSTANCE_LABEL,
  type CommitOptions,
  type ContainerInfo,
  type ContainerResources,
  type ContainerSpec,
  type ContainerSummary,
  type DockerDriver,
  type DockerEvent,
  type DockerVersion,
  type EventFilters,
  type ExecResult,
  type ImageInfo,
  type RemoveOptions,
  type ThrottleRate,
  type TransferOptions,
  type TransferResult,
} from '../docker-driver';
import {
  parseImageRef,
  validateArgv,
  validateContainerName,
  validateContainerRef,
  validateCpuset,
  validateHostname,
  validateImageRefOrId,
  validateInt,
  validateLabelFilter,
  validateLabels,
  validateSignal,
} from '../validation';

/**
 * In-memory DockerDriver for unit tests of the modules above it (spawn pipeline, migration,
 * reconciler). It models what those modules rely on and nothing more:
 *  - the same input validation as the real driver (the same functions);
 *  - container states and the same idempotence rules (start/stop/kill/pause/unpause/remove);
 *  - find-or-create by name + INSTANCE_LABEL;
 *  - images by reference, and a registry as a map (push/pull copy between them);
 *  - fault injection with failNext(op, error) for testing undo paths.
 * exec runs only through a handler the test gives; it never pretends a command ran.
 */
interface FakeContainer {
  id: string;
  spec: ContainerSpec;
  imageId: string;
  state: ContainerInfo['state'];
  resources: ContainerResources;
  logs: string[];
}

interface FakeImage {
  id: string;
  labels: Record<string, string>;
  digest: string | null;
}

export type FakeExecHandler = (container: ContainerInfo, argv: string[]) => ExecResult | Promise<ExecResult>;

export interface FakeDockerDriverOptions {
  /** Images present at start (e.g. the test image). */
  images?: string[];
  execHandler?: FakeExecHandler;
  /** Registries (host:port) that "refuse connections": push/pull to them fail with Unavailable. */
  unreachableRegistries?: string[];
}

type Op = keyof DockerDriver;

export class FakeDockerDriver implements DockerDriver {
  private readonly containers = new Map<string, FakeContainer>();
  private readonly images = new Map<string, FakeImage>();
  /** What a registry holds, by full reference. */
  readonly registry = new Map<string, FakeImage>();
  private readonly faults = new Map<Op, ComputeError[]>();
  private readonly listeners = new Set<{ filters: EventFilters; onEvent: (e: DockerEvent) => void }>();
  private nextPid = 1000;
  /** Every call, in order: `op` and first argument. For diagnosis, not for assertions on calls. */
  readonly journal: Array<{ op: Op; arg?: unknown }> = [];

  constructor(private readonly opts: FakeDockerDriverOptions = {}) {
    for (const ref of opts.images ?? []) this.addImage(ref);
  }

  /** Puts an image in the local store, as `docker import` would. */
  addImage(ref: string, labels: Record<string, string> = {}): string {
    parseImageRef(ref);
    const id = `sha256:${crypto.createHash('sha256').update(ref + crypto.randomUUID()).digest('hex')}`;
    this.images.set(ref, { id, labels, digest: null });
    return id;
  }

  /** The next call of `op` fails with `error` (queued: several faults fire in order). */
  failNext(op: Op, error: ComputeError): void {
    this.faults.set(op, [...(this.faults.get(op) ?? []), error]);
  }

  /** Simulates the container's main process exiting (crash, OOM, normal end). */
  exitContainer(id: string, exitCode: number, oomKilled = false): void {
    const c = this.mustGet(id);
    c.state = { ...c.state, status: 'exited', running: false, paused: false, pid: 0, exitCode, oomKilled, finishedAt: new Date().toISOString() };
    this.emit(c, 'die');
  }

  /** Lines the container "wrote", for logs(). */
  appendLogs(id: string, ...lines: string[]): void {
    this.mustGet(id).logs.push(...lines);
  }

  private enter(op: Op, arg?: unknown): void {
    this.journal.push({ op, arg });
    const queued = this.faults.get(op);
    const fault = queued?.shift();
    if (queued && queued.length === 0) this.faults.delete(op);
    if (fault) throw fault;
  }

  private find(idOrName: string): FakeContainer | undefined {
    const byId = this.containers.get(idOrName);
    if (byId) return byId;
    for (const c of this.containers.values()) {
      if (c.spec.name === idOrName || (idOrName.length >= 12 && c.id.startsWith(idOrName))) return c;
    }
    return undefined;
  }

  private mustGet(idOrName: string): FakeContainer {
    const c = this.find(idOrName);
    if (!c) throw new NotFound(`docker: No such container: ${idOrName}`);
    return c;
  }

  private emit(c: FakeContainer, action: string): void {
    const event: DockerEvent = { type: 'container', action, id: c.id, attributes: { name: c.spec.name, ...c.spec.labels }, timeNano: String(process.hrtime.bigint()) };
    for (const l of this.listeners) {
      const f = l.filters;
      if (f.type && !f.type.includes('container')) continue;
      if (f.event && !f.event.includes(action)) continue;
      if (f.container && !f.container.some((x) => x === c.id || x === c.spec.name)) continue;
      if (f.label && !f.label.every((x) => FakeDockerDriver.labelMatches(c.spec.labels, x))) continue;
      l.onEvent(event);
    }
  }

  private static labelMatches(labels: Record<string, string>, filter: string): boolean {
    const eq = filter.indexOf('=');
    return eq === -1 ? filter in labels : labels[filter.slice(0, eq)] === filter.slice(eq + 1);
  }

  private static validateResources(r: ContainerResources): void {
    if (r.cpusetCpus !== undefined) validateCpuset(r.cpusetCpus);
    if (r.cpuShares !== undefined) validateInt(r.cpuShares, 'cpuShares', 2, 262144);
    if (r.memoryBytes !== undefined) validateInt(r.memoryBytes, 'memoryBytes', 6 * 1024 * 1024);
    if (r.memorySwapBytes !== undefined && r.memorySwapBytes !== -1) validateInt(r.memorySwapBytes, 'memorySwapBytes', 0);
    if (r.pidsLimit !== undefined && r.pidsLimit !== -1) validateInt(r.pidsLimit, 'pidsLimit', 0);
  }

  private view(c: FakeContainer): ContainerInfo {
    const r = c.resources;
    const t = (list: ThrottleRate[] | undefined): Array<{ path: string; rate: number }> =>
      (list ?? []).map((x) => ({ path: 'path' in x ? x.path : `/dev/block/${x.major}:${x.minor}`, rate: x.rate }));
    return {
      id: c.id,
      name: c.spec.name,
      image: c.imageId,
      imageRef: c.spec.image,
      hostname: c.spec.hostname,
      labels: { ...c.spec.labels },
      tty: false,
      state: { ...c.state },
      hostConfig: {
        networkMode: c.spec.networkMode ?? 'none',
        cpusetCpus: r.cpusetCpus ?? '',
        cpuShares: r.cpuShares ?? 0,
        memoryBytes: r.memoryBytes ?? 0,
        memorySwapBytes: r.memorySwapBytes ?? 0,
        pidsLimit: r.pidsLimit ?? 0,
        blkio: { readBps: t(r.blkio?.readBps), writeBps: t(r.blkio?.writeBps), readIops: t(r.blkio?.readIops), writeIops: t(r.blkio?.writeIops) },
        mounts: [
          ...(c.spec.binds ?? []),
          ...(c.spec.hostsFile ? [{ hostPath: c.spec.hostsFile, containerPath: '/etc/hosts', readOnly: true }] : []),
          ...(c.spec.resolvConfFile ? [{ hostPath: c.spec.resolvConfFile, containerPath: '/etc/resolv.conf', readOnly: true }] : []),
        ],
      },
    };
  }

  async create(spec: ContainerSpec): Promise<string> {
    validateContainerName(spec.name);
    parseImageRef(spec.image);
    validateLabels(spec.labels);
    validateHostname(spec.hostname);
    if (spec.command !== undefined) validateArgv(spec.command, 'command');
    FakeDockerDriver.validateResources(spec);
    this.enter('create', spec.name);
    const existing = this.find(spec.name);
    if (existing) {
      const want = spec.labels[INSTANCE_LABEL];
      if (want !== undefined && existing.spec.labels[INSTANCE_LABEL] === want) return existing.id;
      throw new Conflict(`docker create: name ${spec.name} is taken by container ${existing.id.slice(0, 12)} of another owner`);
    }
    const image = this.images.get(spec.image);
    if (!image) throw new NotFound(`docker create: No such image: ${spec.image}`);
    const id = crypto.randomBytes(32).toString('hex');
    const resources: ContainerResources = {
      cpusetCpus: spec.cpusetCpus, cpuShares: spec.cpuShares, memoryBytes: spec.memoryBytes,
      memorySwapBytes: spec.memorySwapBytes, pidsLimit: spec.pidsLimit, blkio: spec.blkio,
    };
    const c: FakeContainer = {
      id,
      spec: { ...spec, labels: { ...spec.labels } },
      imageId: image.id,
      resources,
      logs: [],
      state: { status: 'created', running: false, paused: false, pid: 0, exitCode: 0, startedAt: null, finishedAt: null, oomKilled: false },
    };
    this.containers.set(id, c);
    this.emit(c, 'create');
    return id;
  }

  async start(id: string): Promise<void> {
    validateContainerRef(id);
    this.enter('start', id);
    const c = this.mustGet(id);
    if (c.state.running) return;
    c.state = { ...c.state, status: 'running', running: true, paused: false, pid: this.nextPid++, exitCode: 0, oomKilled: false, startedAt: new Date().toISOString() };
    this.emit(c, 'start');
  }

  async stop(id: string, timeoutSec: number): Promise<void> {
    validateContainerRef(id);
    validateInt(timeoutSec, 'stop timeoutSec', 0, 3600);
    this.enter('stop', id);
    const c = this.find(id);
    if (!c || !c.state.running) return;
    this.exitContainer(id, 0);
    this.emit(c, 'stop');
  }

  async kill(id: string, signal = 'SIGKILL'): Promise<void> {
    validateContainerRef(id);
    validateSignal(signal);
    this.enter('kill', id);
    const c = this.mustGet(id);
    if (!c.state.running) return;
    this.emit(c, 'kill');
    this.exitContainer(id, 137);
  }

  async remove(id: string, opts: RemoveOptions = {}): Promise<void> {
    validateContainerRef(id);
    this.enter('remove', id);
    const c = this.find(id);
    if (!c) return;
    if (c.state.running && opts.force !== true) {
      throw new Conflict(`docker remove: You cannot remove a running container ${c.id}. Stop the container before attempting removal or force remove`);
    }
    if (c.state.running) this.exitContainer(c.id, 137);
    this.containers.delete(c.id);
    this.emit(c, 'destroy');
  }

  async inspect(id: string): Promise<ContainerInfo> {
    validateContainerRef(id);
    this.enter('inspect', id);
    return this.view(this.mustGet(id));
  }

  async pause(id: string): Promise<void> {
    validateContainerRef(id);
    this.enter('pause', id);
    const c = this.mustGet(id);
    if (c.state.paused) return;
    if (!c.state.running) throw new Conflict(`docker pause: Container ${c.id} is not running`);
    c.state = { ...c.state, status: 'paused', paused: true };
    this.emit(c, 'pause');
  }

  async unpause(id: string): Promise<void> {
    validateContainerRef(id);
    this.enter('unpause', id);
    const c = this.mustGet(id);
    if (!c.state.paused) return;
    c.state = { ...c.state, status: 'running', paused: false };
    this.emit(c, 'unpause');
  }

  async update(id: string, resources: ContainerResources): Promise<void> {
    validateContainerRef(id);
    if (resources.blkio !== undefined) {
      throw new InvalidInput('docker update cannot change blkio throttles of an existing container; use drivers/cgroups');
    }
    FakeDockerDriver.validateResources(resources);
    this.enter('update', id);
    const c = this.mustGet(id);
    const defined = Object.fromEntries(Object.entries(resources).filter(([, v]) => v !== undefined));
    c.resources = { ...c.resources, ...defined };
  }

  async commit(id: string, opts: CommitOptions): Promise<string> {
    validateContainerRef(id);
    const ref = `${opts.repo}:${opts.tag}`;
    parseImageRef(ref);
    if (opts.labels) validateLabels(opts.labels);
    this.enter('commit', id);
    const c = this.mustGet(id);
    const imageId = this.addImage(ref, { ...c.spec.labels, ...(opts.labels ?? {}) });
    return imageId;
  }

  private unreachable(ref: string): boolean {
    const { registry } = parseImageRef(ref);
    return registry !== undefined && (this.opts.unreachableRegistries ?? []).includes(registry);
  }

  async push(ref: string, opts: TransferOptions = {}): Promise<TransferResult> {
    const r = parseImageRef(ref);
    if (r.tag === undefined || r.digest !== undefined) throw new InvalidInput(`push needs repository:tag, got ${JSON.stringify(ref)}`);
    this.enter('push', ref);
    const image = this.images.get(ref);
    if (!image) throw new NotFound(`docker push: An image does not exist locally with the tag: ${r.repository}`);
    if (this.unreachable(ref)) throw new Unavailable(`docker push: dial tcp ${r.registry}: connect: connection refused`);
    const digest = `sha256:${crypto.createHash('sha256').update(image.id).digest('hex')}`;
    image.digest = digest;
    this.registry.set(ref, { ...image });
    opts.onProgress?.({ status: 'Pushed', id: image.id.slice(7, 19) });
    return { digest };
  }

  async pull(ref: string, opts: TransferOptions = {}): Promise<TransferResult> {
    const r = parseImageRef(ref);
    this.enter('pull', ref);
    if (this.unreachable(ref)) throw new Unavailable(`docker pull: dial tcp ${r.registry}: connect: connection refused`);
    const full = r.tag === undefined && r.digest === undefined ? `${ref}:latest` : ref;
    const image = this.registry.get(full);
    if (!image) throw new NotFound(`docker pull: manifest for ${full} not found`);
    this.images.set(full, { ...image });
    opts.onProgress?.({ status: `Digest: ${image.digest}` });
    return { digest: image.digest };
  }

  async tag(source: string, target: string): Promise<void> {
    validateImageRefOrId(source);
    const t = parseImageRef(target);
    if (t.tag === undefined || t.digest !== undefined) throw new InvalidInput(`tag target must be repository:tag, got ${JSON.stringify(target)}`);
    this.enter('tag', source);
    const image = this.imageByRefOrId(source);
    if (!image) throw new NotFound(`docker tag: No such image: ${source}`);
    this.images.set(target, { ...image });
  }

  private imageByRefOrId(ref: string): FakeImage | undefined {
    return this.images.get(ref) ?? [...this.images.values()].find((i) => i.id === ref);
  }

  async removeImage(ref: string, opts: { force?: boolean } = {}): Promise<void> {
    validateImageRefOrId(ref);
    this.enter('removeImage', ref);
    const image = this.imageByRefOrId(ref);
    if (!image) return;
    const user = [...this.containers.values()].find((c) => c.imageId === image.id);
    const otherRefs = [...this.images.entries()].filter(([k, v]) => v.id === image.id && k !== ref);
    if (user && opts.force !== true && otherRefs.length === 0) {
      throw new Conflict(`docker remove image: image is being used by container ${user.id.slice(0, 12)}`);
    }
    for (const [k, v] of [...this.images.entries()]) if (k === ref || (ref === image.id && v.id === image.id)) this.images.delete(k);
  }

  async imageInspect(ref: string): Promise<ImageInfo> {
    validateImageRefOrId(ref);
    this.enter('imageInspect', ref);
    const image = this.imageByRefOrId(ref);
    if (!image) throw new NotFound(`docker image inspect: No such image: ${ref}`);
    const tags = [...this.images.entries()].filter(([, v]) => v.id === image.id).map(([k]) => k);
    return {
      id: image.id,
      repoTags: tags,
      repoDigests: image.digest ? tags.map((t) => `${parseImageRef(t).repository}@${image.digest}`) : [],
      labels: { ...image.labels },
      createdAt: new Date(0).toISOString(),
      sizeBytes: 0,
    };
  }

  async listByLabel(filters: string[]): Promise<ContainerSummary[]> {
    if (!Array.isArray(filters) || filters.length === 0) throw new InvalidInput('listByLabel needs at least one label filter');
    filters.forEach(validateLabelFilter);
    this.enter('listByLabel', filters);
    return [...this.containers.values()]
      .filter((c) => filters.every((f) => FakeDockerDriver.labelMatches(c.spec.labels, f)))
      .map((c) => ({ id: c.id, name: c.spec.name, imageRef: c.spec.image, status: c.state.status, labels: { ...c.spec.labels }, createdAt: new Date(0).toISOString() }));
  }

  async logs(id: string, tail: number): Promise<string> {
    validateContainerRef(id);
    validateInt(tail, 'tail', 0, 100000);
    this.enter('logs', id);
    const lines = this.mustGet(id).logs;
    return tail === 0 ? '' : lines.slice(-tail).map((l) => `${l}\n`).join('');
  }

  async exec(id: string, argv: string[]): Promise<ExecResult> {
    validateContainerRef(id);
    validateArgv(argv, 'exec argv');
    this.enter('exec', id);
    const c = this.mustGet(id);
    if (!c.state.running) throw new Conflict(`docker exec: Container ${c.id} is not running`);
    if (c.state.paused) throw new Conflict(`docker exec: Container ${c.id} is paused, unpause the container before exec`);
    if (!this.opts.execHandler) throw new Internal('FakeDockerDriver.exec: no execHandler configured; the fake runs no commands');
    return this.opts.execHandler(this.view(c), argv);
  }

  async events(filters: EventFilters, onEvent: (event: DockerEvent) => void): Promise<() => void> {
    for (const v of filters.label ?? []) validateLabelFilter(v);
    this.enter('events', filters);
    const l = { filters, onEvent };
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  async ping(): Promise<void> {
    this.enter('ping');
  }

  async version(): Promise<DockerVersion> {
    this.enter('version');
    return { version: '20.10.24-fake', apiVersion: '1.41', minApiVersion: '1.12', os: 'linux', arch: 'amd64', kernelVersion: 'fake' };
  }
}
