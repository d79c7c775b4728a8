import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, maskConfig, maskUrl, defaults } from '../../services/config';
import { InvalidInput } from '../../services/errors';

function writeYaml(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const file = path.join(dir, 'compute.yaml');
  fs.writeFileSync(file, text);
  return file;
}

describe('config', () => {
  test('defaults validate', () => {
    const cfg = loadConfig({ argv: [], env: {} });
    expect(cfg.controlExchange).toBe('openstack');
    expect(cfg.rpc.topic).toBe('compute');
    expect(cfg.api.port).toBe(defaults().api.port);
  });

  test('file overrides defaults, environment overrides file', () => {
    const file = writeYaml('host: host-a\nrpc:\n  topic: compute2\napi:\n  port: 9000\n');
    const cfg = loadConfig({ argv: ['--config', file], env: { COMPUTE_API_PORT: '9100' } });
    expect(cfg.host).toBe('host-a');
    expect(cfg.rpc.topic).toBe('compute2');
    expect(cfg.rpc.concurrency).toBe(defaults().rpc.concurrency); // deep merge keeps siblings
    expect(cfg.api.port).toBe(9100);
  });

  test('COMPUTE_CONFIG names the file when --config is absent', () => {
    const file = writeYaml('host: from-env-file\n');
    expect(loadConfig({ argv: [], env: { COMPUTE_CONFIG: file } }).host).toBe('from-env-file');
  });

  test('a file with three mistakes is refused with all three named', () => {
    const file = writeYaml('host: "Bad Host!"\novs:\n  datapathType: kernel\nfrobnicate: 1\n');
    let err: unknown;
    try {
      loadConfig({ argv: ['--config', file], env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidInput);
    const msg = (err as Error).message;
    expect(msg).toContain('3 problem(s)');
    expect(msg).toContain('/host');
    expect(msg).toContain('/ovs/datapathType: must be one of auto, system, netdev');
    expect(msg).toContain('unknown key "frobnicate"');
  });

  test.each([
    ['COMPUTE_API_PORT', 'eighty', '/api/port'],
    ['COMPUTE_RPC_QUORUM_QUEUES', 'maybe', '/rpc/quorumQueues'],
    ['COMPUTE_AMQP_URL', 'http://x', '/amqpUrl'],
    ['COMPUTE_OVS_BRIDGE', 'br;rm -rf /', '/ovs/bridge'],
  ])('bad env %s=%s is named as %s', (name, value, where) => {
    expect(() => loadConfig({ argv: [], env: { [name]: value } })).toThrow(where);
  });

  test('unreadable file is a clear error', () => {
    expect(() => loadConfig({ argv: ['--config', '/nonexistent/compute.yaml'], env: {} })).toThrow(/cannot read config file/);
  });

  test('secrets are masked and plain tokens hashed', () => {
    const file = writeYaml('api:\n  tokens:\n    - {name: ops, role: admin, token: "0123456789abcdef-secret"}\n');
    const cfg = loadConfig({ argv: ['--config', file], env: { COMPUTE_AMQP_URL: 'amqp://u:hunter2@127.0.0.1:5672/' } });
    expect(cfg.api.tokens[0].token).toBeUndefined();
    expect(cfg.api.tokens[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    const shown = JSON.stringify(maskConfig(cfg));
    expect(shown).not.toContain('hunter2');
    expect(shown).not.toContain(cfg.api.tokens[0].sha256!);
    expect(maskUrl('postgres://a:b@h/db')).toBe('postgres://a:***@h/db');
  });
});
