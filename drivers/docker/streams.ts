import { StringDecoder } from 'node:string_decoder';
import { Internal } from '../../services/errors';
import type { ProgressEvent } from './docker-driver';

/**
 * Pure decoders for the two stream formats dockerd speaks, fed chunk by chunk:
 *  - the multiplexed stdout/stderr stream of non-TTY containers (logs, exec);
 *  - the newline-delimited JSON progress stream of push/pull, whose HTTP status is 200 even
 *    when the operation failed: the failure is an `{"error": ..., "errorDetail": ...}` line.
 */

/** stream type byte of the 8-byte frame header: 0 stdin (written as stdout), 1 stdout, 2 stderr. */
const FRAME_HEADER = 8;

export class StreamDemuxer {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];
  private readonly all: Buffer[] = [];

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= FRAME_HEADER) {
      const type = this.buffer.readUInt8(0);
      if (type > 2 || this.buffer.readUInt8(1) !== 0 || this.buffer.readUInt16BE(2) !== 0) {
        throw new Internal(`malformed multiplexed stream: bad frame header ${this.buffer.subarray(0, FRAME_HEADER).toString('hex')}`);
      }
      const size = this.buffer.readUInt32BE(4);
      if (this.buffer.length < FRAME_HEADER + size) return;
      const payload = this.buffer.subarray(FRAME_HEADER, FRAME_HEADER + size);
      (type === 2 ? this.err : this.out).push(payload);
      this.all.push(payload);
      this.buffer = this.buffer.subarray(FRAME_HEADER + size);
    }
  }

  /**
   * Everything decoded; `combined` is stdout and stderr in the order dockerd sent the frames.
   * Throws if the stream stopped in the middle of a frame.
   */
  end(): { stdout: Buffer; stderr: Buffer; combined: Buffer } {
    if (this.buffer.length > 0) throw new Internal(`malformed multiplexed stream: ${this.buffer.length} trailing bytes`);
    return { stdout: Buffer.concat(this.out), stderr: Buffer.concat(this.err), combined: Buffer.concat(this.all) };
  }
}

export function demux(data: Buffer): { stdout: Buffer; stderr: Buffer; combined: Buffer } {
  const d = new StreamDemuxer();
  d.push(data);
  return d.end();
}

/** A decoded progress line: either progress or an error reported inside the stream. */
export interface ProgressMessage {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { code?: number; message?: string };
  aux?: { Tag?: string; Digest?: string; Size?: number };
  [key: string]: unknown;
}

/** The error a progress line carries, or null. */
export function progressError(msg: ProgressMessage): string | null {
  const detail = msg.errorDetail && typeof msg.errorDetail === 'object' ? msg.errorDetail.message : undefined;
  if (typeof detail === 'string' && detail.length > 0) return detail;
  // An `error` key is a failure even when its text is empty: fail rather than report success.
  if (typeof msg.error === 'string') return msg.error.length > 0 ? msg.error : 'error without message in progress stream';
  if (msg.error !== undefined && msg.error !== null) return JSON.stringify(msg.error);
  return null;
}

export function toProgressEvent(msg: ProgressMessage): ProgressEvent {
  const ev: ProgressEvent = {};
  if (typeof msg.status === 'string') ev.status = msg.status;
  if (typeof msg.id === 'string') ev.id = msg.id;
  if (typeof msg.progress === 'string') ev.progress = msg.progress;
  const pd = msg.progressDetail;
  if (pd && typeof pd.current === 'number') ev.current = pd.current;
  if (pd && typeof pd.total === 'number') ev.total = pd.total;
  return ev;
}

/** Digest reported in a push (`aux.Digest`) or pull (`status: "Digest: sha256:..."`) stream. */
export function progressDigest(msg: ProgressMessage): string | null {
  if (msg.aux && typeof msg.aux.Digest === 'string') return msg.aux.Digest;
  if (typeof msg.status === 'string') {
    const m = /^Digest: (sha256:[a-f0-9]{64})$/.exec(msg.status);
    if (m) return m[1];
  }
  return null;
}

/**
 * Splits a JSON-lines stream (push/pull progress, events); a line that is not a JSON object is
 * an error rather than something to skip.
 */
export class JsonLinesParser<T extends object = Record<string, unknown>> {
  private rest = '';
  // A multi-byte character may straddle two chunks.
  private readonly decoder = new StringDecoder('utf8');

  push(chunk: Buffer | string): T[] {
    this.rest += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const lines = this.rest.split('\n');
    this.rest = lines.pop() ?? '';
    return lines.flatMap((l) => this.parseLine(l));
  }

  end(): T[] {
    const last = this.rest + this.decoder.end();
    this.rest = '';
    return this.parseLine(last);
  }

  private parseLine(line: string): T[] {
    const trimmed = line.trim();
    if (trimmed.length === 0) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (cause) {
      throw new Internal(`unparseable line in JSON stream: ${trimmed.slice(0, 200)}`, { cause });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Internal(`unexpected line in JSON stream: ${trimmed.slice(0, 200)}`);
    }
    return [parsed as T];
  }
}

/**
 * Decodes a whole progress stream and returns its outcome; the first error line wins.
 * Used by the driver chunk by chunk and by tests on recorded streams.
 */
export function summarizeProgress(messages: ProgressMessage[]): { error: string | null; digest: string | null } {
  let digest: string | null = null;
  for (const m of messages) {
    const e = progressError(m);
    if (e !== null) return { error: e, digest };
    digest = progressDigest(m) ?? digest;
  }
  return { error: null, digest };
}
