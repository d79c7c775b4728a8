import { ComputeError, Conflict, Internal, InvalidInput, NotFound, Timeout, Unavailable } from '../../services/errors';
import { classifyStreamError, dockerMessage, mapDockerError } from '../../drivers/docker/docker-errors';

/** Shaped like what docker-modem rejects with. */
function httpError(statusCode: number, message: string): Error {
  return Object.assign(new Error(`(HTTP code ${statusCode}) unexpected - ${message} `), { statusCode, json: { message } });
}

function sysError(code: string): Error {
  return Object.assign(new Error(`connect ${code} /var/run/docker.sock`), { code });
}

describe('mapDockerError', () => {
  test.each([
    ['404', httpError(404, 'No such container: x'), NotFound, 'docker inspect: No such container: x'],
    ['409', httpError(409, 'Conflict. The container name "/x" is already in use'), Conflict, 'docker inspect: Conflict. The container name "/x" is already in use'],
    ['400', httpError(400, 'Requested CPUs are not available'), InvalidInput, 'docker inspect: Requested CPUs are not available'],
    ['500', httpError(500, 'driver failed'), Internal, 'docker inspect: driver failed'],
    ['304', httpError(304, ''), Internal, 'docker inspect: (HTTP code 304) unexpected -'],
    ['ECONNREFUSED', sysError('ECONNREFUSED'), Unavailable, 'docker inspect: dockerd unreachable (ECONNREFUSED): connect ECONNREFUSED /var/run/docker.sock'],
    ['ENOENT socket', sysError('ENOENT'), Unavailable, 'docker inspect: dockerd unreachable (ENOENT): connect ENOENT /var/run/docker.sock'],
    ['EACCES', sysError('EACCES'), Unavailable, 'docker inspect: dockerd unreachable (EACCES): connect EACCES /var/run/docker.sock'],
    ['ECONNRESET', sysError('ECONNRESET'), Unavailable, 'docker inspect: dockerd unreachable (ECONNRESET): connect ECONNRESET /var/run/docker.sock'],
    ['ETIMEDOUT', sysError('ETIMEDOUT'), Timeout, 'docker inspect: connect ETIMEDOUT /var/run/docker.sock'],
    ['plain Error', new Error('boom'), Internal, 'docker inspect: boom'],
    ['a string', 'weird', Internal, 'docker inspect: weird'],
  ])('%s', (_what, err, cls, message) => {
    const mapped = mapDockerError(err, 'inspect');
    expect(mapped).toBeInstanceOf(cls);
    expect(mapped.message).toBe(message);
    expect(mapped.cause).toBe(err); // always kept
  });

  test('a ComputeError passes through untouched', () => {
    const e = new Timeout('docker exec: no answer within 5 ms');
    expect(mapDockerError(e, 'exec')).toBe(e);
  });

  test('details name the operation and status', () => {
    expect(mapDockerError(httpError(404, 'x'), 'start').details).toEqual({ op: 'start', statusCode: 404, code: undefined });
  });

  test.each([
    [{ message: 'x', json: { message: 'from docker' } }, 'from docker'],
    [{ message: 'x', json: 'text body\n' }, 'text body'],
    [{ message: ' transport ', json: null }, 'transport'],
  ])('dockerMessage(%j)', (err, msg) => {
    expect(dockerMessage(err)).toBe(msg);
  });
});

describe('classifyStreamError (errors inside a 200 push/pull stream)', () => {
  test.each([
    ['Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused', Unavailable],
    ['Get "https://nowhere.invalid/v2/": dial tcp: lookup nowhere.invalid: no such host', Unavailable],
    ['net/http: TLS handshake timeout', Unavailable],
    ['manifest for 127.0.0.1:5000/x:nope not found: manifest unknown: manifest unknown', NotFound],
    ['An image does not exist locally with the tag: 127.0.0.1:5000/x', NotFound],
    ['unauthorized: authentication required', Internal],
    ['something else entirely', Internal],
  ])('%s', (message, cls) => {
    const e: ComputeError = classifyStreamError('push', message);
    expect(e).toBeInstanceOf(cls);
    expect(e.message).toBe(`docker push: ${message}`);
  });
});
