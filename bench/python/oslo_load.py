"""Load generator for `npm run bench`: an unmodified oslo.messaging RPCClient (Debian
python3-oslo.messaging) calling get_info, the same way against every server under test.

Usage: /usr/bin/python3 oslo_load.py CONFIG_JSON
  CONFIG_JSON: {"url": "rabbit://...", "exchange": ..., "topic": ..., "server": ..., "uuid": ...,
                "calls": 2000, "concurrency": 1, "warmup": 200, "timeout": 30}
Warm-up calls first (not measured), then `calls` calls from `concurrency` threads sharing one
client. Prints one JSON line: latencies_ms (each call), elapsed_s (measured phase), errors,
first_error, reply_q (oslo never deletes it; the caller does).
"""
import json
import os
import sys
import threading
import time

from oslo_config import cfg
import oslo_messaging


def run(client, ctxt, uuid, calls, concurrency, latencies, errors):
    lock = threading.Lock()
    left = [calls]

    def worker():
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            t0 = time.perf_counter()
            try:
                r = client.call(ctxt, 'get_info', instance_uuid=uuid)
                if not isinstance(r, dict) or r.get('uuid') != uuid:
                    raise ValueError('unexpected result %r' % (r,))
                ms = (time.perf_counter() - t0) * 1000.0
                with lock:
                    latencies.append(round(ms, 4))
            except Exception as e:  # noqa: counted and reported
                with lock:
                    errors.append('%s: %s' % (type(e).__name__, str(e)[:300]))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def main():
    o = json.loads(sys.argv[1])
    conf = cfg.CONF
    conf([])
    oslo_messaging.set_transport_defaults(control_exchange=o['exchange'])
    transport = oslo_messaging.get_rpc_transport(conf, url=o['url'])
    target = oslo_messaging.Target(topic=o['topic'], server=o['server'], version='1.0')
    timeout = int(o.get('timeout', 30))
    if hasattr(oslo_messaging, 'get_rpc_client'):
        client = oslo_messaging.get_rpc_client(transport, target, timeout=timeout)
    else:
        client = oslo_messaging.RPCClient(transport, target, timeout=timeout)
    ctxt = {'request_id': 'req-bench', 'user_id': 'bench', 'project_id': 'bench', 'roles': ['admin'], 'is_admin': True}
    concurrency = int(o.get('concurrency', 1))
    out = {'errors': 0, 'first_error': None}
    try:
        warm_errors = []
        run(client, ctxt, o['uuid'], int(o.get('warmup', 0)), concurrency, [], warm_errors)
        latencies, errors = [], []
        if not warm_errors:
            out['elapsed_s'] = run(client, ctxt, o['uuid'], int(o['calls']), concurrency, latencies, errors)
        errors = warm_errors + errors
        out['latencies_ms'] = latencies
        out['errors'] = len(errors)
        out['first_error'] = errors[0] if errors else None
    finally:
        out['reply_q'] = getattr(transport._driver, '_reply_q', None)
        transport.cleanup()
    print(json.dumps(out), flush=True)
    # oslo's heartbeat/poller threads keep the interpreter alive for seconds after cleanup().
    sys.stderr.flush()
    os._exit(0)


if __name__ == '__main__':
    main()
