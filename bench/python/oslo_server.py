"""Baseline for `npm run bench`: a plain oslo.messaging RPC server (Debian python3-oslo.messaging,
executor 'threading') whose get_info does the same work as ours: one PostgreSQL SELECT of the
instance row (psycopg2, pooled connections), the same host check, the same 8 fields back.

Usage: /usr/bin/python3 oslo_server.py CONFIG_JSON
  CONFIG_JSON: {"url": "rabbit://...", "exchange": ..., "topic": ..., "host": ..., "dsn": "postgres://...",
                "threads": 16, "db_pool": 10}
Prints one JSON line {"ready": true, "queues": [...]} once consuming. Stops cleanly on SIGTERM or
SIGINT, and also when its stdin closes (the parent died), so it never outlives the benchmark.
"""
import json
import os
import signal
import sys
import threading

from oslo_config import cfg
import oslo_messaging
from oslo_messaging.rpc import dispatcher
import psycopg2
import psycopg2.pool

SQL = 'SELECT * FROM instances WHERE uuid = %s AND deleted_at IS NULL LIMIT 1'
FIELDS = ('uuid', 'name', 'vm_state', 'power_state', 'task_state', 'hostname', 'container_id', 'host')


class NotFound(Exception):
    pass


class Pool(object):
    """psycopg2's ThreadedConnectionPool, but waiting for a free connection (as knex's pool does)
    instead of raising PoolError, and in autocommit mode (one SELECT, no transaction left open)."""

    def __init__(self, size, dsn):
        self._slots = threading.BoundedSemaphore(size)
        self._pool = _AutocommitPool(1, size, dsn)

    def getconn(self):
        self._slots.acquire()
        try:
            return self._pool.getconn()
        except Exception:
            self._slots.release()
            raise

    def putconn(self, conn):
        try:
            self._pool.putconn(conn)
        finally:
            self._slots.release()

    def closeall(self):
        self._pool.closeall()


class _AutocommitPool(psycopg2.pool.ThreadedConnectionPool):
    def _connect(self, key=None):
        conn = super()._connect(key)
        conn.autocommit = True
        return conn


class ComputeEndpoint(object):
    target = oslo_messaging.Target(version='1.0')

    def __init__(self, pool, host):
        self._pool = pool
        self._host = host

    def get_info(self, ctxt, instance_uuid):
        conn = self._pool.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute(SQL, (instance_uuid,))
                row = cur.fetchone()
                cols = [d[0] for d in cur.description]
        finally:
            self._pool.putconn(conn)
        if row is None:
            raise NotFound('Instance %s could not be found.' % instance_uuid)
        inst = dict(zip(cols, row))
        if inst['host'] != self._host:
            raise NotFound('Instance %s could not be found on host %s.' % (instance_uuid, self._host))
        return {k: inst[k] for k in FIELDS}


def consumer_queues(server):
    """Names of the queues the server declared (the fanout one has a random suffix), best effort."""
    try:
        conn = server.listener._poll_style_listener.conn.connection
        return sorted(c.queue_name for c in conn._consumers)
    except Exception:  # noqa: internal layout of oslo.messaging; the caller also scans by prefix
        return []


def main():
    o = json.loads(sys.argv[1])
    conf = cfg.CONF
    conf([])
    oslo_messaging.set_transport_defaults(control_exchange=o['exchange'])
    pool = Pool(int(o.get('db_pool', 10)), o['dsn'])

    transport = oslo_messaging.get_rpc_transport(conf, url=o['url'])
    target = oslo_messaging.Target(topic=o['topic'], server=o['host'])
    server = oslo_messaging.get_rpc_server(
        transport, target, [ComputeEndpoint(pool, o['host'])], executor='threading',
        access_policy=dispatcher.DefaultRPCAccessPolicy)
    server.start(override_pool_size=int(o.get('threads', 16)))

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    def watch_stdin():
        try:
            sys.stdin.read()
        finally:
            done.set()
    threading.Thread(target=watch_stdin, daemon=True).start()

    print(json.dumps({'ready': True, 'pid': os.getpid(), 'queues': consumer_queues(server)}), flush=True)
    while not done.wait(0.5):
        pass
    killer = threading.Timer(10, lambda: os._exit(3))  # never hang on shutdown
    killer.daemon = True
    killer.start()
    server.stop()
    server.wait()
    transport.cleanup()
    pool.closeall()
    os._exit(0)


if __name__ == '__main__':
    main()
