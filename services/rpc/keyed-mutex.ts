/**
 * One lock per key (an instance uuid): callers for the same key run one after another in
 * arrival order, callers for different keys run in parallel. Entries are dropped as soon as
 * nobody holds or waits for a key, so the map never grows with the number of instances seen.
 * Shared by the RPC server (endpoints with `instanceUuidOf`) and the spawn/migration pipelines.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Run `fn` while holding the lock for `key`; the lock is released however `fn` ends. */
  async runExclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(key);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Wait for the lock on `key`; returns the function that releases it (idempotent). */
  async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let releaseNext!: () => void;
    const mine = new Promise<void>((resolve) => (releaseNext = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      releaseNext();
      // Last in line: forget the key (a newer waiter would have replaced the tail).
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  /** True while someone holds or waits for `key`. */
  isLocked(key: string): boolean {
    return this.tails.has(key);
  }

  /** Number of keys currently held or awaited (for metrics and tests). */
  get size(): number {
    return this.tails.size;
  }
}

/** Counting semaphore: at most `limit` holders at once, waiters served in FIFO order. */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`semaphore limit must be a positive integer, got ${limit}`);
  }

  async acquire(): Promise<() => void> {
    if (this.active < this.limit) {
      this.active++;
    } else {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      // The releaser handed its slot over: `active` is unchanged.
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.active--;
    };
  }

  get inUse(): number {
    return this.active;
  }

  get waiting(): number {
    return this.waiters.length;
  }
}
