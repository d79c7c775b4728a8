import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { Conflict, Internal, InvalidInput, NotFound, Timeout } from '../../services/errors';
import { logger as rootLogger, type Logger } from '../../services/logger';
import { resolveBlockDevicePath } from './block-device';
import { classifyStreamError, dockerStatus, mapDockerError } from './docker-errors';
import {
  INSTANCE_LABEL,
  type BindMount,
  type BlkioThrottle,
  type CommitOptions,
  type ContainerInfo,
  type ContainerResources,
  type ContainerSpec,
  type ContainerStatus,
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
} from './docker-driver';
import { Semaphore } from './semaphore';
import { JsonLinesParser, StreamDemuxer, demux, progressDigest, progressError, toProgressEvent, type ProgressMessage } from './streams';
import {
  parseImageRef,
  validateAbsPath,
  validateArgv,
  validateContainerName,
  validateContainerRef,
  validateCpuset,
  validateDomain,
  validateEnv,
  validateHostname,
  validateImageRefOrId,
  validateInt,
  validateLabelFilter,
  validateLabels,
  validateMac,
  validateSignal,
} from './validation';

export interface DockerodeDriverOptions {
  /** dockerd's unix socket, e.g. /var/run/docker.sock. */
  socketPath: string;
  /** Deadline of every call, queueing included (push/pull/commit may override per call). */
  timeoutMs: number;
  /** Requests in flight towards dockerd at most; the rest wait in FIFO order. */
  concurrency: number;
  /** API version the paths are pinned to; the design targets 1.41 (dockerd 20.10). */
  apiVersion?: string;
  logger?: Logger;
}

/*
 * Every request goes through dockerode's modem (`dial`) rather than its per-verb helpers, on
 * purpose: the helpers put the whole create body (env included) into the query string, do not
 * pass the abort signal for image inspect, and JSON-parse non-follow logs (a TTY log that
 * happens to be "42" comes back as a number). `dial` gives one place for query, body, accepted
 * statuses and the abort signal, and still uses dockerode for sockets, hijack and auth headers.
 */
interface Request {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: object;
  /** HTTP statuses that mean success. */
  ok: number[];
  stream?: boolean;
  hijack?: boolean;
  authconfig?: Record<string, string>;
}

/* Wire shapes: only the fields read here. */
interface WireThrottle { Path: string; Rate: number }
interface WireInspect {
  Id: string;
  Name: string;
  Image: string;
  Config: { Hostname: string; Image: string; Labels: Record<string, string> | null; Tty: boolean };
  State: {
    Status: string; Running: boolean; Paused: boolean; Pid: number; ExitCode: number;
    StartedAt: string; FinishedAt: string; OOMKilled: boolean;
  };
  HostConfig: {
    NetworkMode: string; CpusetCpus: string; CpuShares: number; Memory: number; MemorySwap: number;
    PidsLimit: number | null;
    BlkioDeviceReadBps: WireThrottle[] | null; BlkioDeviceWriteBps: WireThrottle[] | null;
    BlkioDeviceReadIOps: WireThrottle[] | null; BlkioDeviceWriteIOps: WireThrottle[] | null;
  };
  Mounts: Array<{ Type: string; Source: string; Destination: string; RW: boolean }> | null;
}
interface WireSummary { Id: string; Names: string[]; Image: string; State: string; Labels: Record<string, string> | null; Created: number }
interface WireImage { Id: string; RepoTags: string[] | null; RepoDigests: string[] | null; Created: string; Size: number; Config: { Labels: Record<string, string> | null } | null }
interface WireExecInspect { Running: boolean; ExitCode: number | null }
interface WireEvent { Type?: string; Action?: string; status?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> }; timeNano?: number }
interface WireVersion { Version: string; ApiVersion: string; MinAPIVersion: string; Os: string; Arch: string; KernelVersion: string }

const CONTAINER_STATUSES: ReadonlySet<string> = new Set(['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead']);

function toStatus(s: string): ContainerStatus {
  return (CONTAINER_STATUSES.has(s) ? s : 'dead') as ContainerStatus;
}

/** Docker reports "never" as the zero time. */
function dockerTime(t: string): string | null {
  return !t || t.startsWith('0001-01-01') ? null : t;
}

function throttles(list: WireThrottle[] | null): Array<{ path: string; rate: number }> {
  return (list ?? []).map((t) => ({ path: t.Path, rate: t.Rate }));
}

/** Rejects when the signal aborts; the listener goes with the signal. */
function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Reads a stream to its end; aborting destroys it. */
function readAll(stream: NodeJS.ReadableStream & { destroy?: (e?: Error) => void }, signal: AbortSignal, onChunk?: (c: Buffer) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onAbort = (): void => {
      stream.destroy?.();
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    stream.on('data', (c: Buffer | string) => {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      try {
        if (onChunk) onChunk(b);
        else chunks.push(b);
      } catch (err) {
        stream.destroy?.();
        finish(err as Error);
      }
    });
    stream.on('error', (e: Error) => finish(e));
    stream.on('end', () => finish());
    stream.on('close', () => finish());
  });
}

export class DockerodeDriver implements DockerDriver {
  private readonly docker: Docker;
  private readonly sem: Semaphore;
  private readonly timeoutMs: number;
  private readonly log: Logger;

  constructor(opts: DockerodeDriverOptions) {
    validateAbsPath(opts.socketPath, 'docker socket path');
    validateInt(opts.timeoutMs, 'docker timeoutMs', 1, 24 * 3600 * 1000);
    validateInt(opts.concurrency, 'docker concurrency', 1, 1024);
    const apiVersion = opts.apiVersion ?? '1.41';
    if (!/^1\.[0-9]{2}$/.test(apiVersion)) throw new InvalidInput(`invalid docker API version ${JSON.stringify(apiVersion)}`);
    // host/protocol/timeout set explicitly so DOCKER_HOST & co. in the environment cannot
    // silently redirect the driver to another daemon.
    this.docker = new Docker({ socketPath: opts.socketPath, host: undefined, protocol: 'http', timeout: undefined, version: `v${apiVersion}` });
    this.sem = new Semaphore(opts.concurrency);
    this.timeoutMs = opts.timeoutMs;
    this.log = (opts.logger ?? rootLogger).child({ component: 'docker-driver' });
  }

  // ------------------------------------------------------------------ plumbing

  private dial(req: Request, signal: AbortSignal): Promise<unknown> {
    const query = Object.fromEntries(Object.entries(req.query ?? {}).filter(([, v]) => v !== undefined));
    const hasQuery = Object.keys(query).length > 0;
    const statusCodes: Record<number, boolean> = {};
    for (const s of req.ok) statusCodes[s] = true;
    return new Promise((resolve, reject) => {
      this.docker.modem.dial(
        {
          method: req.method,
          path: hasQuery ? `${req.path}?` : req.path,
          // `_body: {}` keeps the modem from sending the query as a body on a POST without one.
          options: { _query: query, _body: req.body ?? {} },
          statusCodes,
          isStream: req.stream === true,
          hijack: req.hijack,
          authconfig: req.authconfig,
          abortSignal: signal,
        },
        (err, data) => (err ? reject(err) : resolve(data)),
      );
    });
  }

  /**
   * Runs one operation under the semaphore with a deadline covering the wait for a slot and
   * the call itself; maps whatever fails to services/errors.
   */
  private async call<T>(op: string, fn: (signal: AbortSignal) => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    const ac = new AbortController();
    const deadline = new Timeout(`docker ${op}: no answer within ${timeoutMs} ms`, { details: { op, timeoutMs } });
    const timer = setTimeout(() => ac.abort(deadline), timeoutMs);
    let release: (() => void) | undefined;
    try {
      try {
        release = await this.sem.acquire(ac.signal);
      } catch {
        throw new Timeout(`docker ${op}: waited ${timeoutMs} ms for one of ${this.sem.capacity} docker slots`, {
          details: { op, timeoutMs, waiting: this.sem.waiting },
        });
      }
      const work = fn(ac.signal);
      work.catch(() => undefined); // the loser of the race must not surface as unhandled
      return await Promise.race([work, whenAborted(ac.signal)]);
    } catch (err) {
      if (err === deadline) throw err;
      if (ac.signal.aborted && !(err instanceof Timeout)) {
        throw new Timeout(deadline.message, { cause: err, details: { op, timeoutMs } });
      }
      throw mapDockerError(err, op);
    } finally {
      clearTimeout(timer);
      release?.();
    }
  }

  private async request<T = unknown>(op: string, req: Request, timeoutMs?: number): Promise<T> {
    return this.call(op, (signal) => this.dial(req, signal) as Promise<T>, timeoutMs);
  }

  /** Runs `fn`, treating the given Docker statuses as success. */
  private async tolerate(statuses: number[], fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (err) {
      const status = (err as { cause?: unknown }).cause !== undefined ? dockerStatus((err as { cause?: unknown }).cause) : undefined;
      if (status !== undefined && statuses.includes(status)) return false;
      throw err;
    }
  }

  private async throttleList(list: ThrottleRate[] | undefined, what: string): Promise<WireThrottle[] | undefined> {
    if (list === undefined) return undefined;
    if (!Array.isArray(list)) throw new InvalidInput(`${what} must be an array`);
    return Promise.all(
      list.map(async (t) => ({ Path: await resolveBlockDevicePath(t), Rate: validateInt(t.rate, `${what} rate`, 0) })),
    );
  }

  private async resourcesBody(r: ContainerResources): Promise<Record<string, unknown>> {
    const body: Record<string, unknown> = {};
    if (r.cpusetCpus !== undefined) body.CpusetCpus = validateCpuset(r.cpusetCpus);
    if (r.cpuShares !== undefined) body.CpuShares = validateInt(r.cpuShares, 'cpuShares', 2, 262144);
    if (r.memoryBytes !== undefined) body.Memory = validateInt(r.memoryBytes, 'memoryBytes', 6 * 1024 * 1024);
    if (r.memorySwapBytes !== undefined) {
      body.MemorySwap = r.memorySwapBytes === -1 ? -1 : validateInt(r.memorySwapBytes, 'memorySwapBytes', 0);
      if (r.memoryBytes !== undefined && r.memorySwapBytes !== -1 && r.memorySwapBytes < r.memoryBytes) {
        throw new InvalidInput(`memorySwapBytes (${r.memorySwapBytes}) must be >= memoryBytes (${r.memoryBytes}) or -1`);
      }
    }
    if (r.pidsLimit !== undefined) body.PidsLimit = r.pidsLimit === -1 ? -1 : validateInt(r.pidsLimit, 'pidsLimit', 0);
    if (r.blkio !== undefined) Object.assign(body, await this.blkioBody(r.blkio));
    return body;
  }

  private async blkioBody(b: BlkioThrottle): Promise<Record<string, unknown>> {
    const body: Record<string, unknown> = {};
    const rb = await this.throttleList(b.readBps, 'blkio.readBps');
    const wb = await this.throttleList(b.writeBps, 'blkio.writeBps');
    const ri = await this.throttleList(b.readIops, 'blkio.readIops');
    const wi = await this.throttleList(b.writeIops, 'blkio.writeIops');
    if (rb) body.BlkioDeviceReadBps = rb;
    if (wb) body.BlkioDeviceWriteBps = wb;
    if (ri) body.BlkioDeviceReadIOps = ri;
    if (wi) body.BlkioDeviceWriteIOps = wi;
    return body;
  }

  private static mount(m: BindMount, what: string): Record<string, unknown> {
    return {
      Type: 'bind',
      Source: validateAbsPath(m.hostPath, `${what} host path`),
      Target: validateAbsPath(m.containerPath, `${what} container path`),
      ReadOnly: m.readOnly === true,
    };
  }

  // ------------------------------------------------------------------ containers

  async create(spec: ContainerSpec): Promise<string> {
    const name = validateContainerName(spec.name);
    parseImageRef(spec.image);
    validateLabels(spec.labels);
    const networkMode = spec.networkMode ?? 'none';
    if (!['none', 'host', 'bridge'].includes(networkMode)) throw new InvalidInput(`invalid networkMode ${JSON.stringify(networkMode)}`);
    // Mounts (not Binds): a missing host path is an error instead of a directory Docker creates.
    const mounts = (spec.binds ?? []).map((b) => DockerodeDriver.mount(b, 'bind'));
    if (spec.hostsFile !== undefined) mounts.push(DockerodeDriver.mount({ hostPath: spec.hostsFile, containerPath: '/etc/hosts', readOnly: true }, 'hosts file'));
    if (spec.resolvConfFile !== undefined) {
      mounts.push(DockerodeDriver.mount({ hostPath: spec.resolvConfFile, containerPath: '/etc/resolv.conf', readOnly: true }, 'resolv.conf'));
    }
    const targets = mounts.map((m) => m.Target as string);
    if (new Set(targets).size !== targets.length) throw new InvalidInput(`two mounts share a container path: ${targets.join(', ')}`);

    const body = {
      Image: spec.image,
      Cmd: spec.command !== undefined ? validateArgv(spec.command, 'command') : undefined,
      Env: spec.env !== undefined ? validateEnv(spec.env) : undefined,
      Hostname: validateHostname(spec.hostname),
      Domainname: spec.domainName !== undefined ? validateDomain(spec.domainName) : undefined,
      Labels: spec.labels,
      MacAddress: spec.macAddress !== undefined ? validateMac(spec.macAddress) : undefined,
      StopTimeout: spec.stopTimeoutSec !== undefined ? validateInt(spec.stopTimeoutSec, 'stopTimeoutSec', 0, 3600) : undefined,
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: false,
      OpenStdin: false,
      HostConfig: {
        NetworkMode: networkMode,
        Mounts: mounts,
        ...(spec.restartPolicy !== undefined ? { RestartPolicy: { Name: DockerodeDriver.restartPolicy(spec.restartPolicy) } } : {}),
        ...(await this.resourcesBody(spec)),
      },
    };

    const log = this.log.child({ instanceUuid: spec.labels[INSTANCE_LABEL], container: name });
    log.info('Creating container...');
    try {
      const res = await this.request<{ Id: string }>('create', {
        method: 'POST', path: '/containers/create', query: { name }, body, ok: [200, 201],
      });
      log.info({ containerId: res.Id }, 'Created container');
      return res.Id;
    } catch (err) {
      if (!(err instanceof Conflict)) throw err;
      // The name is taken. Ours from an earlier attempt (crash between create and recording
      // the id)? Then this run found what exists instead of failing.
      let existing: ContainerInfo;
      try {
        existing = await this.inspect(name);
      } catch (inspectErr) {
        if (inspectErr instanceof NotFound) throw err; // removed meanwhile: report the original conflict
        throw inspectErr;
      }
      const want = spec.labels[INSTANCE_LABEL];
      if (want !== undefined && existing.labels[INSTANCE_LABEL] === want) {
        log.info({ containerId: existing.id }, 'Container already exists for this instance, reusing it');
        return existing.id;
      }
      throw new Conflict(`docker create: name ${name} is taken by container ${existing.id.slice(0, 12)} of another owner`, {
        cause: err,
        details: { name, existingId: existing.id, existingInstance: existing.labels[INSTANCE_LABEL] ?? null },
      });
    }
  }

  private static restartPolicy(p: unknown): string {
    if (p !== 'no' && p !== 'always' && p !== 'unless-stopped' && p !== 'on-failure') throw new InvalidInput(`invalid restartPolicy ${JSON.stringify(p)}`);
    return p;
  }

  async start(id: string): Promise<void> {
    validateContainerRef(id);
    // 304: already started.
    await this.tolerate([304], () => this.request('start', { method: 'POST', path: `/containers/${id}/start`, ok: [200, 204] }));
  }

  async stop(id: string, timeoutSec: number): Promise<void> {
    validateContainerRef(id);
    validateInt(timeoutSec, 'stop timeoutSec', 0, 3600);
    // dockerd answers only after the container is down: the deadline grows with timeoutSec.
    await this.tolerate([304, 404], () =>
      this.request('stop', { method: 'POST', path: `/containers/${id}/stop`, query: { t: timeoutSec }, ok: [200, 204] }, this.timeoutMs + timeoutSec * 1000),
    );
  }

  async kill(id: string, signal = 'SIGKILL'): Promise<void> {
    validateContainerRef(id);
    validateSignal(signal);
    await this.unlessAlready('kill', (s) => !s.running, () =>
      this.request('kill', { method: 'POST', path: `/containers/${id}/kill`, query: { signal }, ok: [200, 204] }), id);
  }

  /**
   * Runs a state change; when dockerd refuses it, checks (not parses from the message) whether
   * the wanted state already holds. dockerd 20.10 answers "already paused" with 409 but "not
   * paused" and "not running" with 409 or 500 depending on the verb.
   */
  private async unlessAlready(op: string, holds: (s: ContainerInfo['state']) => boolean, fn: () => Promise<unknown>, id: string): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof Conflict || err instanceof Internal) || dockerStatus((err as { cause?: unknown }).cause) === undefined) throw err;
      const info = await this.inspect(id);
      if (holds(info.state)) {
        this.log.debug({ containerId: id, op }, 'Container already in the wanted state');
        return;
      }
      throw err;
    }
  }

  async remove(id: string, opts: RemoveOptions = {}): Promise<void> {
    validateContainerRef(id);
    await this.tolerate([404], () =>
      this.request('remove', { method: 'DELETE', path: `/containers/${id}`, query: { force: opts.force === true, v: opts.volumes === true }, ok: [200, 204] }),
    );
  }

  async inspect(id: string): Promise<ContainerInfo> {
    validateContainerRef(id);
    const w = await this.request<WireInspect>('inspect', { method: 'GET', path: `/containers/${id}/json`, ok: [200] });
    const hc = w.HostConfig;
    return {
      id: w.Id,
      name: w.Name.replace(/^\//, ''),
      image: w.Image,
      imageRef: w.Config.Image,
      hostname: w.Config.Hostname,
      labels: w.Config.Labels ?? {},
      tty: w.Config.Tty === true,
      state: {
        status: toStatus(w.State.Status),
        running: w.State.Running,
        paused: w.State.Paused,
        pid: w.State.Pid,
        exitCode: w.State.ExitCode,
        startedAt: dockerTime(w.State.StartedAt),
        finishedAt: dockerTime(w.State.FinishedAt),
        oomKilled: w.State.OOMKilled,
      },
      hostConfig: {
        networkMode: hc.NetworkMode,
        cpusetCpus: hc.CpusetCpus,
        cpuShares: hc.CpuShares,
        memoryBytes: hc.Memory,
        memorySwapBytes: hc.MemorySwap,
        pidsLimit: hc.PidsLimit ?? 0,
        blkio: {
          readBps: throttles(hc.BlkioDeviceReadBps),
          writeBps: throttles(hc.BlkioDeviceWriteBps),
          readIops: throttles(hc.BlkioDeviceReadIOps),
          writeIops: throttles(hc.BlkioDeviceWriteIOps),
        },
        mounts: (w.Mounts ?? [])
          .filter((m) => m.Type === 'bind')
          .map((m) => ({ hostPath: m.Source, containerPath: m.Destination, readOnly: !m.RW })),
      },
    };
  }

  async pause(id: string): Promise<void> {
    validateContainerRef(id);
    await this.unlessAlready('pause', (s) => s.paused, () => this.request('pause', { method: 'POST', path: `/containers/${id}/pause`, ok: [200, 204] }), id);
  }

  async unpause(id: string): Promise<void> {
    validateContainerRef(id);
    // A stopped container is not paused either: the wanted state holds.
    await this.unlessAlready('unpause', (s) => !s.paused, () => this.request('unpause', { method: 'POST', path: `/containers/${id}/unpause`, ok: [200, 204] }), id);
  }

  async update(id: string, resources: ContainerResources): Promise<void> {
    validateContainerRef(id);
    if (resources.blkio !== undefined) {
      // dockerd 20.10 accepts Blkio* in /update and silently ignores them (checked against
      // the cgroup file): refuse rather than report a change that did not happen.
      throw new InvalidInput('docker update cannot change blkio throttles of an existing container; use drivers/cgroups');
    }
    const body = await this.resourcesBody(resources);
    if (Object.keys(body).length === 0) return;
    await this.request('update', { method: 'POST', path: `/containers/${id}/update`, body, ok: [200] });
  }

  // ------------------------------------------------------------------ images

  async commit(id: string, opts: CommitOptions): Promise<string> {
    validateContainerRef(id);
    const ref = parseImageRef(`${opts.repo}:${opts.tag}`);
    if (ref.repository !== opts.repo || ref.tag !== opts.tag) throw new InvalidInput(`invalid commit target ${opts.repo}:${opts.tag}`);
    if (opts.labels !== undefined) validateLabels(opts.labels);
    const res = await this.request<{ Id: string }>(
      'commit',
      {
        method: 'POST',
        path: '/commit',
        query: { container: id, repo: opts.repo, tag: opts.tag, pause: opts.pause ?? true },
        // Labels are merged by dockerd with the container's own.
        body: opts.labels !== undefined ? { Labels: opts.labels } : {},
        ok: [200, 201],
      },
      opts.timeoutMs,
    );
    return res.Id;
  }

  /** Reads a progress stream to its end; an error line fails the operation. */
  private async followProgress(op: string, stream: IncomingMessage, signal: AbortSignal, opts: TransferOptions): Promise<TransferResult> {
    const parser = new JsonLinesParser<ProgressMessage>();
    let digest: string | null = null;
    let failure: string | null = null;
    const handle = (msgs: ProgressMessage[]): void => {
      for (const m of msgs) {
        const e = progressError(m);
        if (e !== null) {
          failure ??= e;
          continue;
        }
        digest = progressDigest(m) ?? digest;
        opts.onProgress?.(toProgressEvent(m));
      }
    };
    await readAll(stream, signal, (chunk) => handle(parser.push(chunk)));
    handle(parser.end());
    if (failure !== null) throw classifyStreamError(op, failure);
    return { digest };
  }

  async push(ref: string, opts: TransferOptions = {}): Promise<TransferResult> {
    const r = parseImageRef(ref);
    if (r.tag === undefined || r.digest !== undefined) {
      // Without a tag dockerd pushes every tag of the repository.
      throw new InvalidInput(`push needs repository:tag, got ${JSON.stringify(ref)}`);
    }
    const tag = r.tag;
    this.log.info({ ref }, 'Pushing image...');
    const out = await this.call(
      'push',
      async (signal) => {
        const stream = (await this.dial(
          // dockerd 20.10 refuses a push without X-Registry-Auth; an empty config means anonymous.
          { method: 'POST', path: `/images/${r.repository}/push`, query: { tag }, authconfig: {}, ok: [200], stream: true },
          signal,
        )) as IncomingMessage;
        return this.followProgress('push', stream, signal, opts);
      },
      opts.timeoutMs,
    );
    this.log.info({ ref, digest: out.digest }, 'Pushed image');
    return out;
  }

  async pull(ref: string, opts: TransferOptions = {}): Promise<TransferResult> {
    const r = parseImageRef(ref);
    // No tag would pull every tag of the repository: default to latest as the CLI does.
    const tag = r.digest ?? r.tag ?? 'latest';
    this.log.info({ ref }, 'Pulling image...');
    const out = await this.call(
      'pull',
      async (signal) => {
        const stream = (await this.dial(
          { method: 'POST', path: '/images/create', query: { fromImage: r.repository, tag }, ok: [200], stream: true },
          signal,
        )) as IncomingMessage;
        return this.followProgress('pull', stream, signal, opts);
      },
      opts.timeoutMs,
    );
    this.log.info({ ref, digest: out.digest }, 'Pulled image');
    return out;
  }

  async tag(source: string, target: string): Promise<void> {
    validateImageRefOrId(source);
    const t = parseImageRef(target);
    if (t.tag === undefined || t.digest !== undefined) throw new InvalidInput(`tag target must be repository:tag, got ${JSON.stringify(target)}`);
    await this.request('tag', { method: 'POST', path: `/images/${source}/tag`, query: { repo: t.repository, tag: t.tag }, ok: [200, 201] });
  }

  async removeImage(ref: string, opts: { force?: boolean } = {}): Promise<void> {
    validateImageRefOrId(ref);
    await this.tolerate([404], () =>
      this.request('remove image', { method: 'DELETE', path: `/images/${ref}`, query: { force: opts.force === true }, ok: [200] }),
    );
  }

  async imageInspect(ref: string): Promise<ImageInfo> {
    validateImageRefOrId(ref);
    const w = await this.request<WireImage>('image inspect', { method: 'GET', path: `/images/${ref}/json`, ok: [200] });
    return {
      id: w.Id,
      repoTags: w.RepoTags ?? [],
      repoDigests: w.RepoDigests ?? [],
      labels: w.Config?.Labels ?? {},
      createdAt: w.Created,
      sizeBytes: w.Size,
    };
  }

  // ------------------------------------------------------------------ listing, logs, exec

  async listByLabel(filters: string[]): Promise<ContainerSummary[]> {
    if (!Array.isArray(filters) || filters.length === 0) throw new InvalidInput('listByLabel needs at least one label filter');
    filters.forEach(validateLabelFilter);
    const list = await this.request<WireSummary[]>('list', {
      method: 'GET', path: '/containers/json', query: { all: true, filters: JSON.stringify({ label: filters }) }, ok: [200],
    });
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      imageRef: c.Image,
      status: toStatus(c.State),
      labels: c.Labels ?? {},
      createdAt: new Date(c.Created * 1000).toISOString(),
    }));
  }

  async logs(id: string, tail: number): Promise<string> {
    validateContainerRef(id);
    validateInt(tail, 'tail', 0, 100000);
    const { tty } = await this.inspect(id);
    const raw = await this.call('logs', async (signal) => {
      const stream = (await this.dial(
        { method: 'GET', path: `/containers/${id}/logs`, query: { stdout: true, stderr: true, follow: false, tail }, ok: [200], stream: true },
        signal,
      )) as IncomingMessage;
      return readAll(stream, signal);
    });
    if (tty) return raw.toString('utf8');
    // Non-TTY logs are framed; stdout and stderr stay in the order the container wrote them.
    return demux(raw).combined.toString('utf8');
  }

  async exec(id: string, argv: string[]): Promise<ExecResult> {
    validateContainerRef(id);
    validateArgv(argv, 'exec argv');
    return this.call('exec', async (signal) => {
      const created = (await this.dial(
        {
          method: 'POST', path: `/containers/${id}/exec`,
          body: { AttachStdin: false, AttachStdout: true, AttachStderr: true, Tty: false, Cmd: argv }, ok: [201],
        },
        signal,
      )) as { Id: string };
      const stream = (await this.dial(
        { method: 'POST', path: `/exec/${created.Id}/start`, body: { Detach: false, Tty: false }, ok: [200, 101], stream: true, hijack: true },
        signal,
      )) as NodeJS.ReadableStream;
      const demuxer = new StreamDemuxer();
      await readAll(stream, signal, (chunk) => demuxer.push(chunk));
      const { stdout, stderr } = demuxer.end();
      // The output can end a moment before dockerd records the exit code.
      for (;;) {
        const info = (await this.dial({ method: 'GET', path: `/exec/${created.Id}/json`, ok: [200] }, signal)) as WireExecInspect;
        if (!info.Running && info.ExitCode !== null) {
          return { exitCode: info.ExitCode, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8') };
        }
        await sleep(20, undefined, { signal });
      }
    });
  }

  // ------------------------------------------------------------------ events, daemon

  async events(filters: EventFilters, onEvent: (event: DockerEvent) => void, onError?: (err: Error) => void): Promise<() => void> {
    const f: Record<string, string[]> = {};
    for (const [k, values] of Object.entries(filters) as Array<[keyof EventFilters, string[] | undefined]>) {
      if (values === undefined) continue;
      if (!['type', 'event', 'container', 'label'].includes(k)) throw new InvalidInput(`unknown event filter ${k}`);
      if (!Array.isArray(values)) throw new InvalidInput(`event filter ${k} must be an array`);
      for (const v of values) {
        if (k === 'label') validateLabelFilter(v);
        else if (k === 'container') validateContainerRef(v);
        else if (!/^[a-z_]{1,32}$/.test(v)) throw new InvalidInput(`invalid event filter ${k}=${JSON.stringify(v)}`);
      }
      f[k] = values;
    }
    // The subscription outlives the call: its own controller, not the call's deadline signal.
    const sub = new AbortController();
    const stream = await this.call('events', async (signal) => {
      const onDeadline = (): void => sub.abort(signal.reason);
      signal.addEventListener('abort', onDeadline, { once: true });
      try {
        return (await this.dial({ method: 'GET', path: '/events', query: { filters: JSON.stringify(f) }, ok: [200], stream: true }, sub.signal)) as IncomingMessage;
      } finally {
        signal.removeEventListener('abort', onDeadline);
      }
    });
    const parser = new JsonLinesParser<WireEvent>();
    let stopped = false;
    const deliver = (events: WireEvent[]): void => {
      for (const e of events) {
        onEvent({
          type: e.Type ?? '',
          action: e.Action ?? e.status ?? '',
          id: e.Actor?.ID ?? e.id ?? '',
          attributes: e.Actor?.Attributes ?? {},
          timeNano: String(e.timeNano ?? ''),
        });
      }
    };
    stream.on('data', (chunk: Buffer) => {
      try {
        deliver(parser.push(chunk));
      } catch (err) {
        onError?.(mapDockerError(err, 'events'));
        stream.destroy();
      }
    });
    stream.on('error', (err: Error) => {
      if (!stopped) onError?.(mapDockerError(err, 'events'));
    });
    stream.on('end', () => {
      if (!stopped) onError?.(new Internal('docker events: dockerd closed the event stream'));
    });
    return () => {
      stopped = true;
      sub.abort();
      stream.destroy();
    };
  }

  async ping(): Promise<void> {
    await this.request('ping', { method: 'GET', path: '/_ping', ok: [200] });
  }

  async version(): Promise<DockerVersion> {
    const v = await this.request<WireVersion>('version', { method: 'GET', path: '/version', ok: [200] });
    return { version: v.Version, apiVersion: v.ApiVersion, minApiVersion: v.MinAPIVersion, os: v.Os, arch: v.Arch, kernelVersion: v.KernelVersion };
  }
}
