import crypto from 'node:crypto';
import { claimResources, listCpuPins, releaseResources, type ClaimRequest } from '../../services/db/claims-repo';
import { Conflict, InvalidInput, NoCapacity, NotFound } from '../../services/errors';
import { freshDatabase, type TestDatabase } from '../helpers/db';

/** Real PostgreSQL: a private migrated database for this file. */
let t: TestDatabase;

beforeAll(async () => {
  t = await freshDatabase('claims');
});
afterAll(async () => {
  await t?.drop();
});

async function addHost(name: string, opts: { dedicated?: number[]; shared?: number[]; memoryMb?: number; reservedMb?: number } = {}) {
  await t.db('hosts').insert({
    name,
    vcpus: 2,
    memory_mb: opts.memoryMb ?? 100000,
    memory_reserved_mb: opts.reservedMb ?? 0,
    dedicated_cpus: opts.dedicated ?? [0, 1],
    shared_cpus: opts.shared ?? [0, 1],
  });
}

async function addInstance(fields: Record<string, unknown> = {}): Promise<string> {
  const uuid = crypto.randomUUID();
  await t.db('instances').insert({ uuid, name: `i-${uuid.slice(0, 8)}`, project_id: 'p1', spec: {}, ...fields });
  return uuid;
}

const dedicated = (host: string, instanceUuid: string, extra: Partial<ClaimRequest> = {}): ClaimRequest => ({
  host, instanceUuid, vcpus: 1, cpuPolicy: 'dedicated', memoryMb: 64, ...extra,
});

describe('dedicated CPUs', () => {
  test('20 concurrent 1-vCPU claims on a 2-CPU host: exactly 2 win, 18 NoCapacity, no CPU pinned twice', async () => {
    await addHost('race-host');
    const uuids = await Promise.all(Array.from({ length: 20 }, () => addInstance()));
    const results = await Promise.allSettled(uuids.map((u) => claimResources(t.db, dedicated('race-host', u))));

    const won = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof claimResources>>> => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(2);
    expect(lost).toHaveLength(18);
    for (const l of lost) {
      expect(l.reason).toBeInstanceOf(NoCapacity);
      expect((l.reason as Error).message).toMatch(/not enough dedicated CPUs: need 1, 0 free/);
    }
    expect(won.map((w) => w.value.cpuset).sort()).toEqual(['0', '1']);

    const pins = await listCpuPins(t.db, 'race-host');
    expect(pins.map((p) => p.cpu)).toEqual([0, 1]);
    expect(new Set(pins.map((p) => p.instance_uuid)).size).toBe(2);
    // The winners own the instance rows' host now; the losers were not touched.
    const hosted = await t.db('instances').whereIn('uuid', uuids).whereNotNull('host').pluck('uuid');
    expect(hosted.sort()).toEqual(pins.map((p) => p.instance_uuid).sort());
  });

  test('the schema refuses a double pin even when the code is bypassed', async () => {
    await addHost('pk-host');
    const a = await addInstance();
    await claimResources(t.db, dedicated('pk-host', a));
    await expect(t.db('cpu_pins').insert({ host: 'pk-host', cpu: 0, instance_uuid: crypto.randomUUID() })).rejects.toMatchObject({ code: '23505' });
  });

  test('lowest free first; multi-vCPU; refusal names needed vs free', async () => {
    await addHost('multi-host', { dedicated: [0, 1, 2, 3] });
    const a = await addInstance();
    const b = await addInstance();
    const c = await addInstance();
    expect(await claimResources(t.db, dedicated('multi-host', a, { vcpus: 1 }))).toEqual({ cpus: [0], cpuset: '0', cpuShares: 1024, memoryMb: 64 });
    expect(await claimResources(t.db, dedicated('multi-host', b, { vcpus: 2 }))).toMatchObject({ cpus: [1, 2], cpuset: '1-2', cpuShares: 2048 });
    const err = await claimResources(t.db, dedicated('multi-host', c, { vcpus: 2 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoCapacity);
    expect((err as Error).message).toBe('not enough dedicated CPUs: need 2, 1 free (4 dedicated on the host, free: 3)');
    expect((err as NoCapacity).details).toMatchObject({ needed: 2, free: 1 });
    expect(await t.db('cpu_pins').where({ instance_uuid: c }).count('* as n').first()).toEqual({ n: '0' });
  });

  test('re-claim is idempotent; release frees; release twice is fine', async () => {
    await addHost('idem-host');
    const a = await addInstance();
    const b = await addInstance();
    const first = await claimResources(t.db, dedicated('idem-host', a, { vcpus: 2 }));
    expect(first.cpuset).toBe('0-1');
    expect(await claimResources(t.db, dedicated('idem-host', a, { vcpus: 2 }))).toEqual(first);
    expect((await listCpuPins(t.db, 'idem-host')).map((p) => p.cpu)).toEqual([0, 1]);

    await expect(claimResources(t.db, dedicated('idem-host', b))).rejects.toBeInstanceOf(NoCapacity);
    expect(await releaseResources(t.db, { host: 'idem-host', instanceUuid: a })).toEqual({ releasedCpus: [0, 1] });
    expect(await t.db('instances').where({ uuid: a }).first()).toMatchObject({ host: null });
    expect(await releaseResources(t.db, { host: 'idem-host', instanceUuid: a })).toEqual({ releasedCpus: [] });
    expect(await claimResources(t.db, dedicated('idem-host', b))).toMatchObject({ cpus: [0] });
    // Unknown host / instance: nothing to release, no error.
    expect(await releaseResources(t.db, { host: 'no-such-host', instanceUuid: crypto.randomUUID() })).toEqual({ releasedCpus: [] });
  });

  test('changing vcpus keeps the CPUs held; switching to shared drops them', async () => {
    await addHost('resize-host', { dedicated: [0, 1, 2, 3], shared: [4, 5] });
    const a = await addInstance();
    const other = await addInstance();
    await claimResources(t.db, dedicated('resize-host', other)); // takes 0
    expect((await claimResources(t.db, dedicated('resize-host', a, { vcpus: 1 }))).cpus).toEqual([1]);
    expect((await claimResources(t.db, dedicated('resize-host', a, { vcpus: 3 }))).cpus).toEqual([1, 2, 3]);
    expect((await claimResources(t.db, dedicated('resize-host', a, { vcpus: 2 }))).cpus).toEqual([1, 2]);
    const shared = await claimResources(t.db, { host: 'resize-host', instanceUuid: a, vcpus: 2, cpuPolicy: 'shared', memoryMb: 64 });
    expect(shared).toEqual({ cpus: [4, 5], cpuset: '4-5', cpuShares: 2048, memoryMb: 64 });
    expect((await listCpuPins(t.db, 'resize-host')).map((p) => [p.cpu, p.instance_uuid])).toEqual([[0, other]]);
  });
});

describe('shared CPUs', () => {
  test('get the shared pool and the flavor weight; any number fit', async () => {
    await addHost('shared-host', { dedicated: [], shared: [0, 1] });
    const claims = await Promise.all(
      Array.from({ length: 5 }, async (_, i) =>
        claimResources(t.db, { host: 'shared-host', instanceUuid: await addInstance(), vcpus: 1, cpuPolicy: 'shared', memoryMb: 10, cpuShares: i === 0 ? 256 : undefined }),
      ),
    );
    expect(claims.map((c) => c.cpuset)).toEqual(['0-1', '0-1', '0-1', '0-1', '0-1']);
    expect(claims.map((c) => c.cpuShares)).toEqual([256, 1024, 1024, 1024, 1024]);
    expect(await listCpuPins(t.db, 'shared-host')).toEqual([]);
  });

  test('a host without a shared pool refuses shared instances', async () => {
    await addHost('noshared-host', { shared: [] });
    await expect(
      claimResources(t.db, { host: 'noshared-host', instanceUuid: await addInstance(), vcpus: 1, cpuPolicy: 'shared', memoryMb: 1 }),
    ).rejects.toThrow(/no shared CPU pool/);
  });
});

describe('memory', () => {
  test('over-claim is refused, counting instances on the host and excluding the claimer', async () => {
    await addHost('mem-host', { memoryMb: 1000, reservedMb: 200, shared: [0, 1] });
    // Already running here (not through a claim): counts.
    await addInstance({ host: 'mem-host', memory_mb: 300, vm_state: 'active' });
    // Deleted: does not count.
    await addInstance({ host: 'mem-host', memory_mb: 5000, vm_state: 'deleted', deleted_at: new Date() });
    const a = await addInstance();
    const b = await addInstance();
    const shared = (instanceUuid: string, memoryMb: number): ClaimRequest => ({ host: 'mem-host', instanceUuid, vcpus: 1, cpuPolicy: 'shared', memoryMb });

    await claimResources(t.db, shared(a, 400)); // 300 + 400 = 700 of 800
    const err = await claimResources(t.db, shared(b, 101)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoCapacity);
    expect((err as Error).message).toBe('not enough memory on host mem-host: need 101 MB, 100 MB free (800 MB usable, 700 MB claimed)');
    // Nothing was written for the refused claim.
    expect(await t.db('instances').where({ uuid: b }).first()).toMatchObject({ host: null });

    await claimResources(t.db, shared(b, 100)); // exactly full
    // Re-claiming a with the same memory is fine (it does not count against itself)...
    await claimResources(t.db, shared(a, 400));
    // ...growing it is not.
    await expect(claimResources(t.db, shared(a, 401))).rejects.toThrow(/need 401 MB, 400 MB free/);
    // Release frees its memory.
    await releaseResources(t.db, { host: 'mem-host', instanceUuid: b });
    await claimResources(t.db, shared(a, 500));
  });

  test('a dedicated claim refused for memory pins nothing', async () => {
    await addHost('memcpu-host', { memoryMb: 100 });
    const a = await addInstance();
    await expect(claimResources(t.db, dedicated('memcpu-host', a, { memoryMb: 101 }))).rejects.toBeInstanceOf(NoCapacity);
    expect(await listCpuPins(t.db, 'memcpu-host')).toEqual([]);
  });
});

describe('cold migration claims', () => {
  test('the destination claim is tagged, holds memory on both hosts, and its release leaves the rest', async () => {
    await addHost('mig-src', { memoryMb: 1000 });
    await addHost('mig-dst', { memoryMb: 1000 });
    const inst = await addInstance();
    await claimResources(t.db, dedicated('mig-src', inst, { memoryMb: 600 }));
    const [{ id }] = await t.db('migrations').insert({ instance_uuid: inst, source_host: 'mig-src', dest_host: 'mig-dst' }).returning('id');

    const claim = await claimResources(t.db, dedicated('mig-dst', inst, { memoryMb: 600, migrationId: id }));
    expect(claim.cpus).toEqual([0]);
    expect(await listCpuPins(t.db, 'mig-dst')).toMatchObject([{ cpu: 0, instance_uuid: inst, migration_id: id }]);
    // The instance row still says the source.
    expect(await t.db('instances').where({ uuid: inst }).first()).toMatchObject({ host: 'mig-src' });
    // While in flight, its 600 MB are held on the destination too.
    await expect(claimResources(t.db, dedicated('mig-dst', await addInstance(), { memoryMb: 401 }))).rejects.toThrow(/400 MB free/);

    // Revert on the destination: only the migration's pins go; the source keeps its claim.
    expect(await releaseResources(t.db, { host: 'mig-dst', instanceUuid: inst, migrationId: id })).toEqual({ releasedCpus: [0] });
    expect((await listCpuPins(t.db, 'mig-src')).map((p) => p.instance_uuid)).toEqual([inst]);
    await t.db('migrations').where({ id }).update({ status: 'reverted' });
    await claimResources(t.db, dedicated('mig-dst', await addInstance(), { memoryMb: 1000 }));
  });

  test('a migration claim needs an in-flight migration to that host', async () => {
    await addHost('mig2-dst');
    const inst = await addInstance();
    await expect(claimResources(t.db, dedicated('mig2-dst', inst, { migrationId: 999999 }))).rejects.toBeInstanceOf(Conflict);
  });
});

describe('bad requests', () => {
  beforeAll(() => addHost('bad-host'));
  test.each<[string, Partial<ClaimRequest>, new (...args: never[]) => Error]>([
    ['unknown host', { host: 'nope' }, NotFound],
    ['unknown instance', { instanceUuid: crypto.randomUUID() }, NotFound],
    ['not a uuid', { instanceUuid: 'abc' }, InvalidInput],
    ['zero vcpus', { vcpus: 0 }, InvalidInput],
    ['negative memory', { memoryMb: -1 }, InvalidInput],
    ['bad policy', { cpuPolicy: 'exclusive' as never }, InvalidInput],
    ['bad cpu shares', { cpuShares: 1 }, InvalidInput],
  ])('%s', async (_name, override, errorClass) => {
    const inst = await addInstance();
    await expect(claimResources(t.db, { ...dedicated('bad-host', inst), ...override })).rejects.toBeInstanceOf(errorClass);
  });

  test('a deleted instance cannot claim', async () => {
    await addHost('del-host');
    const inst = await addInstance({ vm_state: 'deleted', deleted_at: new Date() });
    await expect(claimResources(t.db, dedicated('del-host', inst))).rejects.toBeInstanceOf(NotFound);
  });
});

describe('inside a caller transaction', () => {
  test('a failed claim rolls back only its savepoint; a rolled-back caller leaves no pins', async () => {
    await addHost('trx-host', { dedicated: [0] });
    const a = await addInstance();
    const b = await addInstance();
    await t.db.transaction(async (trx) => {
      await claimResources(trx, dedicated('trx-host', a));
      await expect(claimResources(trx, dedicated('trx-host', b))).rejects.toBeInstanceOf(NoCapacity);
      // The transaction is still usable after the refused claim.
      expect((await listCpuPins(trx, 'trx-host')).map((p) => p.instance_uuid)).toEqual([a]);
    });
    await releaseResources(t.db, { host: 'trx-host', instanceUuid: a });
    await t.db
      .transaction(async (trx) => {
        await claimResources(trx, dedicated('trx-host', b));
        throw new Error('a later step of the caller failed');
      })
      .catch(() => undefined);
    expect(await listCpuPins(t.db, 'trx-host')).toEqual([]);
  });
});
