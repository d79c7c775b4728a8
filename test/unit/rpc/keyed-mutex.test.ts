import { KeyedMutex, Semaphore } from '../../../services/rpc/keyed-mutex';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('KeyedMutex', () => {
  test('same key runs in arrival order, one at a time; other keys in parallel', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const job = (key: string, name: string, ms: number) =>
      m.runExclusive(key, async () => {
        log.push(`start ${name}`);
        await tick(ms);
        log.push(`end ${name}`);
      });
    await Promise.all([job('a', 'a1', 20), job('a', 'a2', 1), job('b', 'b1', 1)]);
    expect(log.indexOf('end a1')).toBeLessThan(log.indexOf('start a2'));
    expect(log.indexOf('start b1')).toBeLessThan(log.indexOf('end a1'));
    expect(m.size).toBe(0);
  });

  test('a throwing holder releases the lock and the error reaches the caller', async () => {
    const m = new KeyedMutex();
    await expect(m.runExclusive('k', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    await expect(m.runExclusive('k', async () => 42)).resolves.toBe(42);
    expect(m.isLocked('k')).toBe(false);
  });

  test('release is idempotent', async () => {
    const m = new KeyedMutex();
    const r1 = await m.acquire('k');
    const p2 = m.acquire('k');
    r1();
    r1();
    const r2 = await p2;
    expect(m.isLocked('k')).toBe(true);
    r2();
    expect(m.isLocked('k')).toBe(false);
  });
});

describe('Semaphore', () => {
  test('never more than limit holders, FIFO hand-over', async () => {
    const s = new Semaphore(2);
    let active = 0;
    let max = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const release = await s.acquire();
        order.push(i);
        active++;
        max = Math.max(max, active);
        await tick(5);
        active--;
        release();
        release();
      }),
    );
    expect(max).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(s.inUse).toBe(0);
  });

  test('rejects a silly limit', () => {
    expect(() => new Semaphore(0)).toThrow(RangeError);
  });
});
