import { Semaphore } from '../../drivers/docker/semaphore';

const tick = () => new Promise((r) => setImmediate(r));

describe('Semaphore', () => {
  test.each([
    [1, 5],
    [2, 7],
    [4, 4],
    [3, 10],
  ])('capacity %i never exceeded with %i tasks, all complete', async (capacity, tasks) => {
    const sem = new Semaphore(capacity);
    let running = 0;
    let peak = 0;
    const done = await Promise.all(
      Array.from({ length: tasks }, (_, i) =>
        sem.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 5 + (i % 3)));
          running--;
          return i;
        }),
      ),
    );
    expect(done).toEqual(Array.from({ length: tasks }, (_, i) => i));
    expect(peak).toBe(Math.min(capacity, tasks));
    expect(sem.inUse).toBe(0);
    expect(sem.waiting).toBe(0);
  });

  test('waiters are served first in, first out', async () => {
    const sem = new Semaphore(1);
    const first = await sem.acquire();
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) => sem.acquire().then((release) => { order.push(n); release(); }));
    await tick();
    expect(sem.waiting).toBe(3);
    first();
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3]);
  });

  test('the permit comes back when the task throws', async () => {
    const sem = new Semaphore(1);
    await expect(sem.run(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(sem.inUse).toBe(0);
    await expect(sem.run(async () => 'ok')).resolves.toBe('ok');
  });

  test('releasing twice does not mint a permit', async () => {
    const sem = new Semaphore(1);
    const release = await sem.acquire();
    release();
    release();
    expect(sem.inUse).toBe(0);
    await sem.acquire();
    expect(sem.inUse).toBe(1);
    let second = false;
    void sem.acquire().then(() => { second = true; });
    await tick();
    expect(second).toBe(false);
  });

  test('an aborted waiter leaves the queue without taking a permit', async () => {
    const sem = new Semaphore(1);
    const holder = await sem.acquire();
    const ac = new AbortController();
    const reason = new Error('deadline');
    const gaveUp = sem.acquire(ac.signal);
    const next = sem.acquire();
    await tick();
    expect(sem.waiting).toBe(2);
    ac.abort(reason);
    await expect(gaveUp).rejects.toBe(reason);
    expect(sem.waiting).toBe(1);
    holder();
    const r = await next; // the permit skipped the aborted waiter
    expect(sem.inUse).toBe(1);
    r();
    expect(sem.inUse).toBe(0);
  });

  test('an already aborted signal is refused at once', async () => {
    const sem = new Semaphore(2);
    const ac = new AbortController();
    ac.abort(new Error('late'));
    await expect(sem.acquire(ac.signal)).rejects.toThrow('late');
    expect(sem.inUse).toBe(0);
  });

  test.each([0, -1, 1.5, NaN])('capacity %p is refused', (c) => {
    expect(() => new Semaphore(c)).toThrow(RangeError);
  });
});
