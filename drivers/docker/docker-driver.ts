/**
 * The Docker driver's contract. Only plain, typed values cross it: no dockerode type leaks out,
 * so callers (and the in-memory fake in ./testing) depend on this file alone.
 *
 * Errors are always one of services/errors: InvalidInput (refused before any call), NotFound,
 * Conflict, Unavailable (dockerd or a registry unreachable), Timeout, Internal; `cause` keeps
 * what Docker said.
 */

/** Label carrying the instance uuid; create() uses it to recognise its own container after a crash. */
export const INSTANCE_LABEL = 'compute.instance-uuid';

/** A block device named by its node (`/dev/vda`) or by its numbers (`254:0`). */
export type BlockDevice = { path: string } | { major: number; minor: number };

/** A throttle on one block device; `rate` is bytes/s for *Bps and operations/s for *Iops. */
export type ThrottleRate = BlockDevice & { rate: number };

export interface BlkioThrottle {
  readBps?: ThrottleRate[];
  writeBps?: ThrottleRate[];
  readIops?: ThrottleRate[];
  writeIops?: ThrottleRate[];
}

/** cgroup limits that can be set at create and changed live with update(). */
export interface ContainerResources {
  /** e.g. "0-1" or "0,2". */
  cpusetCpus?: string;
  /** cpu.shares weight (2..262144). */
  cpuShares?: number;
  memoryBytes?: number;
  /** memory + swap; -1 = unlimited swap. Must be >= memoryBytes. */
  memorySwapBytes?: number;
  /** 0 or -1 = unlimited. */
  pidsLimit?: number;
  blkio?: BlkioThrottle;
}

export interface BindMount {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
}

export type NetworkMode = 'none' | 'host' | 'bridge';

export interface ContainerSpec extends ContainerResources {
  name: string;
  image: string;
  /** argv; the image's CMD when absent. */
  command?: string[];
  env?: Record<string, string>;
  /** Single RFC 1123 label. */
  hostname: string;
  domainName?: string;
  labels: Record<string, string>;
  /** Default 'none': the network driver plugs the container after start. */
  networkMode?: NetworkMode;
  /** Host paths bind-mounted into the container (must exist: they are never created). */
  binds?: BindMount[];
  /** Host file bind-mounted read-only as /etc/hosts (Docker then does not manage its own). */
  hostsFile?: string;
  /** Host file bind-mounted read-only as /etc/resolv.conf. */
  resolvConfFile?: string;
  macAddress?: string;
  /** Seconds Docker waits after SIGTERM before SIGKILL when none is given to stop(). */
  stopTimeoutSec?: number;
  /**
   * Docker restart policy (default Docker's `no`). `unless-stopped`: dockerd starts the
   * container again after a crash or a daemon restart, but not after an explicit stop.
   */
  restartPolicy?: RestartPolicy;
}

export type RestartPolicy = 'no' | 'always' | 'unless-stopped' | 'on-failure';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ContainerState {
  status: ContainerStatus;
  running: boolean;
  paused: boolean;
  /** 0 when not running. */
  pid: number;
  exitCode: number;
  /** ISO time, null when never started. */
  startedAt: string | null;
  finishedAt: string | null;
  oomKilled: boolean;
}

export interface ContainerHostConfig {
  networkMode: string;
  cpusetCpus: string;
  cpuShares: number;
  memoryBytes: number;
  memorySwapBytes: number;
  pidsLimit: number;
  blkio: Required<{ [K in keyof BlkioThrottle]: Array<{ path: string; rate: number }> }>;
  mounts: BindMount[];
}

export interface ContainerInfo {
  id: string;
  name: string;
  /** Image id (sha256:...). */
  image: string;
  /** The reference the container was created from. */
  imageRef: string;
  hostname: string;
  labels: Record<string, string>;
  tty: boolean;
  state: ContainerState;
  hostConfig: ContainerHostConfig;
}

export interface ContainerSummary {
  id: string;
  name: string;
  imageRef: string;
  status: ContainerStatus;
  labels: Record<string, string>;
  /** ISO time. */
  createdAt: string;
}

export interface ImageInfo {
  id: string;
  repoTags: string[];
  /** `repo@sha256:...` entries, set once the image was pushed or pulled. */
  repoDigests: string[];
  labels: Record<string, string>;
  createdAt: string;
  sizeBytes: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** One line of a push/pull progress stream. */
export interface ProgressEvent {
  status?: string;
  id?: string;
  progress?: string;
  current?: number;
  total?: number;
}

export interface TransferOptions {
  onProgress?: (event: ProgressEvent) => void;
  /** Overrides the driver's per-call timeout (pushes and pulls of big images take longer). */
  timeoutMs?: number;
}

export interface TransferResult {
  /** Manifest digest reported by the registry, when the stream carried one. */
  digest: string | null;
}

export interface CommitOptions {
  repo: string;
  tag: string;
  labels?: Record<string, string>;
  /** Pause the container during the commit (Docker's default is true). */
  pause?: boolean;
  timeoutMs?: number;
}

export interface EventFilters {
  type?: Array<'container' | 'image' | 'network' | 'volume' | 'daemon'>;
  event?: string[];
  container?: string[];
  /** `key` or `key=value`. */
  label?: string[];
}

export interface DockerEvent {
  type: string;
  action: string;
  /** Object id (container id, image reference...). */
  id: string;
  attributes: Record<string, string>;
  /** Unix time in nanoseconds, as a string (too big for a number). */
  timeNano: string;
}

export interface DockerVersion {
  version: string;
  apiVersion: string;
  minApiVersion: string;
  os: string;
  arch: string;
  kernelVersion: string;
}

export interface RemoveOptions {
  force?: boolean;
  /** Also remove anonymous volumes. */
  volumes?: boolean;
}

export interface DockerDriver {
  /** Create, or return the existing container of that name when it carries the same INSTANCE_LABEL. */
  create(spec: ContainerSpec): Promise<string>;
  /** Already running is success. */
  start(id: string): Promise<void>;
  /** Already stopped or gone is success. */
  stop(id: string, timeoutSec: number): Promise<void>;
  /** Not running is success. Default signal SIGKILL. */
  kill(id: string, signal?: string): Promise<void>;
  /** Gone is success. */
  remove(id: string, opts?: RemoveOptions): Promise<void>;
  inspect(id: string): Promise<ContainerInfo>;
  /** Already paused is success. */
  pause(id: string): Promise<void>;
  /** Not paused is success. */
  unpause(id: string): Promise<void>;
  update(id: string, resources: ContainerResources): Promise<void>;
  /** Returns the new image id. */
  commit(id: string, opts: CommitOptions): Promise<string>;
  push(ref: string, opts?: TransferOptions): Promise<TransferResult>;
  pull(ref: string, opts?: TransferOptions): Promise<TransferResult>;
  tag(source: string, target: string): Promise<void>;
  /** Gone is success; in use is Conflict unless force. */
  removeImage(ref: string, opts?: { force?: boolean }): Promise<void>;
  imageInspect(ref: string): Promise<ImageInfo>;
  /** All containers (running or not) matching every filter (`key` or `key=value`). */
  listByLabel(filters: string[]): Promise<ContainerSummary[]>;
  /** Last `tail` lines of stdout+stderr as text. */
  logs(id: string, tail: number): Promise<string>;
  /** Runs argv (no shell) in a running container and waits for it. */
  exec(id: string, argv: string[]): Promise<ExecResult>;
  /** Subscribes to dockerd events; resolves once subscribed, with a function that ends the subscription. */
  events(filters: EventFilters, onEvent: (event: DockerEvent) => void, onError?: (err: Error) => void): Promise<() => void>;
  ping(): Promise<void>;
  version(): Promise<DockerVersion>;
}
