import { Internal } from '../../services/errors';
import { JsonLinesParser, StreamDemuxer, demux, progressDigest, progressError, summarizeProgress, toProgressEvent, type ProgressMessage } from '../../drivers/docker/streams';

function frame(type: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const h = Buffer.alloc(8);
  h.writeUInt8(type, 0);
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

/** Cuts a buffer into chunks of `size` bytes, as a socket might deliver it. */
function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

describe('multiplexed stream demux', () => {
  const stream = Buffer.concat([frame(1, 'out1\n'), frame(2, 'err1\n'), frame(1, 'out2\n'), frame(0, 'in\n'), frame(2, 'é€\n'), frame(1, '')]);

  test.each([1, 3, 7, 8, 9, 64, 1024])('same result whatever the chunk size (%i)', (size) => {
    const d = new StreamDemuxer();
    for (const c of chunks(stream, size)) d.push(c);
    const { stdout, stderr, combined } = d.end();
    expect(stdout.toString()).toBe('out1\nout2\nin\n');
    expect(stderr.toString()).toBe('err1\né€\n');
    expect(combined.toString()).toBe('out1\nerr1\nout2\nin\né€\n');
  });

  test.each([
    ['empty', Buffer.alloc(0), ''],
    ['one frame', frame(1, 'x'), 'x'],
  ])('%s', (_w, buf, out) => {
    expect(demux(buf).stdout.toString()).toBe(out);
  });

  test.each([
    ['bad stream type', Buffer.from('hello world, not framed')],
    ['reserved bytes set', Buffer.from([1, 1, 0, 0, 0, 0, 0, 1, 65])],
    ['truncated payload', frame(1, 'abcdef').subarray(0, 10)],
    ['truncated header', Buffer.from([1, 0, 0])],
  ])('%s is an error, not garbage output', (_w, buf) => {
    expect(() => demux(buf)).toThrow(Internal);
  });
});

describe('JSON lines', () => {
  const text = '{"status":"a"}\r\n{"status":"é€"}\n\n{"status":"c"}';

  test.each([1, 2, 5, 100])('split anywhere (chunk %i bytes), multi-byte characters intact', (size) => {
    const p = new JsonLinesParser<ProgressMessage>();
    const got: ProgressMessage[] = [];
    for (const c of chunks(Buffer.from(text), size)) got.push(...p.push(c));
    got.push(...p.end());
    expect(got.map((m) => m.status)).toEqual(['a', 'é€', 'c']);
  });

  test.each(['not json', '[1,2]', '"string"', 'null'])('%j is an error', (line) => {
    const p = new JsonLinesParser();
    expect(() => p.push(`${line}\n`)).toThrow(Internal);
  });
});

describe('progress stream outcome', () => {
  const D = `sha256:${'ab'.repeat(32)}`;

  test.each([
    ['error + errorDetail', { error: 'x', errorDetail: { message: 'detailed' } }, 'detailed'],
    ['error only', { error: 'plain' }, 'plain'],
    ['errorDetail only', { errorDetail: { message: 'only detail' } }, 'only detail'],
    ['non-string error', { error: { code: 1 } }, '{"code":1}'],
    ['progress', { status: 'Pushing', progressDetail: { current: 1, total: 2 } }, null],
    ['empty error string is still an error', { error: '' }, 'error without message in progress stream'],
    ['errorDetail without message falls back to error', { error: 'e', errorDetail: {} }, 'e'],
  ])('progressError: %s', (_w, msg, expected) => {
    expect(progressError(msg as ProgressMessage)).toBe(expected);
  });

  /** Recorded from dockerd 20.10: a push to a closed port answers 200 and says so inside. */
  const failedPush: ProgressMessage[] = [
    { status: 'The push refers to repository [127.0.0.1:5999/ddtest/x]' },
    { status: 'Preparing', progressDetail: {}, id: '5b0e1e0c1c27' },
    { errorDetail: { message: 'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused' }, error: 'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused' },
  ];
  const goodPush: ProgressMessage[] = [
    { status: 'The push refers to repository [127.0.0.1:5000/ddtest/x]' },
    { status: 'Pushed', progressDetail: {}, id: '5b0e1e0c1c27' },
    { status: `mig-1: digest: ${D} size: 527` },
    { progressDetail: {}, aux: { Tag: 'mig-1', Digest: D, Size: 527 } },
  ];
  const goodPull: ProgressMessage[] = [
    { status: 'Pulling from ddtest/x', id: 'mig-1' },
    { status: 'Pull complete', progressDetail: {}, id: '5b0e1e0c1c27' },
    { status: `Digest: ${D}` },
    { status: 'Status: Downloaded newer image for 127.0.0.1:5000/ddtest/x:mig-1' },
  ];

  test.each([
    ['failed push', failedPush, { error: 'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused', digest: null }],
    ['good push', goodPush, { error: null, digest: D }],
    ['good pull', goodPull, { error: null, digest: D }],
    ['empty stream', [], { error: null, digest: null }],
  ])('%s', (_w, msgs, expected) => {
    expect(summarizeProgress(msgs)).toEqual(expected);
  });

  test('digest and progress events', () => {
    expect(progressDigest({ status: 'Digest: nope' })).toBeNull();
    expect(toProgressEvent({ status: 'Pushing', id: 'abc', progress: '[==>]', progressDetail: { current: 5, total: 10 } })).toEqual({
      status: 'Pushing', id: 'abc', progress: '[==>]', current: 5, total: 10,
    });
  });
});
