import {
  buildReply,
  buildRequest,
  contextFromDict,
  decodeEnvelope,
  encodeEnvelope,
  parseRequest,
  PoisonMessage,
  recoverReplyAddress,
  versionIsCompatible,
} from '../../../services/rpc/envelope';

describe('versionIsCompatible (oslo utils.version_is_compatible)', () => {
  test.each([
    ['1.0', '1.0', true],
    ['1.0', '1.1', false],
    ['1.3', '1.1', true],
    ['1.0', '2.0', false],
    ['2.0', '1.0', false],
    ['1.0', '1.0.1', false],
    ['1.0.2', '1.0.1', true],
    ['1.0', 'x', false],
    ['1.0', '', false],
  ])('ours %s, requested %s -> %s', (ours, req, ok) => {
    expect(versionIsCompatible(ours, req)).toBe(ok);
  });
});

describe('envelope', () => {
  test('round trip, with oslo.message a JSON string', () => {
    const body = encodeEnvelope({ method: 'get_info', args: { a: [1] } });
    const outer = JSON.parse(body.toString());
    expect(outer['oslo.version']).toBe('2.0');
    expect(typeof outer['oslo.message']).toBe('string');
    expect(decodeEnvelope(body)).toEqual({ method: 'get_info', args: { a: [1] } });
  });

  test('a message without envelope keys is taken as is (oslo pre-2.0)', () => {
    expect(decodeEnvelope(Buffer.from('{"method":"x"}'))).toEqual({ method: 'x' });
  });

  test.each([
    ['not json', 'not JSON'],
    ['[1]', 'array'],
    ['"s"', 'string'],
    ['{"oslo.version":"3.0","oslo.message":"{}"}', 'unsupported envelope version'],
    ['{"oslo.version":"2.0","oslo.message":5}', 'must be a JSON string'],
    ['{"oslo.version":"2.0","oslo.message":"[]"}', 'must hold a JSON object'],
  ])('poison %s', (raw, why) => {
    expect(() => decodeEnvelope(Buffer.from(raw))).toThrow(PoisonMessage);
    expect(() => decodeEnvelope(Buffer.from(raw))).toThrow(why);
  });

  test('oversized body is poison but its reply address is recovered', () => {
    const body = encodeEnvelope({ method: 'm', args: { v: 'x'.repeat(2000) }, _msg_id: 'abc123', _reply_q: 'reply_ff' });
    try {
      decodeEnvelope(body, 1000);
      throw new Error('no throw');
    } catch (err) {
      expect(err).toBeInstanceOf(PoisonMessage);
      expect((err as PoisonMessage).recovered).toEqual({ msgId: 'abc123', replyQ: 'reply_ff' });
    }
  });

  test('recoverReplyAddress reads escaped and plain JSON', () => {
    expect(recoverReplyAddress('{"_msg_id": "m1", "_reply_q": "reply_1"')).toEqual({ msgId: 'm1', replyQ: 'reply_1' });
    expect(recoverReplyAddress('\\"_msg_id\\": \\"m2\\"')).toEqual({ msgId: 'm2', replyQ: undefined });
  });
});

describe('parseRequest', () => {
  const body = Buffer.from('x');
  test('call with context, timeout and defaults', () => {
    const r = parseRequest(
      {
        method: 'get_info',
        args: { instance_uuid: 'u' },
        _msg_id: 'm1',
        _reply_q: 'reply_1',
        _unique_id: 'u1',
        _timeout: 30,
        _context_request_id: 'req-1',
        _context_user: 'bob',
        _context_project_name: 'demo',
        _context_tenant: 't1',
        _context_roles: ['admin', 3],
        _context_is_admin: true,
        _context_auth_token: 'tok',
      },
      body,
    );
    expect(r).toMatchObject({ kind: 'call', version: '1.0', namespace: null, msgId: 'm1', replyQ: 'reply_1', uniqueId: 'u1', callMonitorTimeout: 30 });
    expect(r.context).toMatchObject({ requestId: 'req-1', userId: 'bob', projectId: 't1', projectName: 'demo', roles: ['admin'], isAdmin: true });
    expect(r.context.raw.auth_token).toBe('***');
  });

  test('cast without _unique_id gets a stable id from the body', () => {
    const a = parseRequest({ method: 'x' }, Buffer.from('same'));
    const b = parseRequest({ method: 'x' }, Buffer.from('same'));
    expect(a.kind).toBe('cast');
    expect(a.uniqueId).toBe(b.uniqueId);
    expect(a.uniqueId).toMatch(/^[0-9a-f]{40}$/);
  });

  test.each([
    [{ args: {} }, 'no "method"'],
    [{ method: 'a b' }, 'not a valid identifier'],
    [{ method: 'x', args: [] }, '"args" must be an object'],
    [{ method: 'x', version: 1 }, '"version" must be a string'],
    [{ method: 'x', _msg_id: 'm' }, 'nowhere to reply'],
    [{ method: 'x', _msg_id: 'm', _reply_q: 'bad queue name!' }, '"_reply_q" must be a queue name'],
  ])('refuses %j', (inner, why) => {
    expect(() => parseRequest(inner as Record<string, unknown>, body)).toThrow(why);
  });

  test('poison keeps the recovered address when method is missing', () => {
    try {
      parseRequest({ _msg_id: 'm', _reply_q: 'reply_x' }, body);
    } catch (err) {
      expect((err as PoisonMessage).recovered).toEqual({ msgId: 'm', replyQ: 'reply_x' });
    }
  });
});

describe('requests and replies as oslo builds them', () => {
  test('buildRequest packs context as _context_* and sets _timeout null without monitor', () => {
    const m = buildRequest({ method: 'm', args: {}, msgId: 'id', replyQ: 'reply_q', context: { requestId: 'r', userId: 'u', roles: ['a'] } });
    expect(m).toMatchObject({ method: 'm', version: '1.0', _msg_id: 'id', _reply_q: 'reply_q', _timeout: null, _context_request_id: 'r', _context_user_id: 'u', _context_user: 'u', _context_roles: ['a'] });
    expect(m).not.toHaveProperty('namespace');
    const raw = buildRequest({ method: 'm', args: {}, context: { request_id: 'r2', roles: ['x'] } });
    expect(raw).toMatchObject({ _context_request_id: 'r2', _context_roles: ['x'] });
    expect(raw).not.toHaveProperty('_msg_id');
  });

  test('buildReply has result, failure, ending, _msg_id and a fresh _unique_id', () => {
    const a = buildReply('m', undefined, null);
    expect(a).toMatchObject({ result: null, failure: null, ending: true, _msg_id: 'm' });
    expect(buildReply('m', 1, null)._unique_id).not.toBe(a._unique_id);
  });

  test('contextFromDict: user_id wins over user, project_id over project', () => {
    expect(contextFromDict({ user_id: 'a', user: 'b', project_id: 'p', project: 'q' })).toMatchObject({ userId: 'a', projectId: 'p', roles: [], isAdmin: false });
  });
});
