"""An unmodified oslo.messaging RPCClient (Debian python3-oslo.messaging) against our server.

Usage: /usr/bin/python3 oslo_client.py rabbit://URL EXCHANGE TOPIC HOST INSTANCE_UUID
Prints one JSON document with what each call returned or raised.
"""
import json
import sys

from oslo_config import cfg
import oslo_messaging


def main():
    url, exchange, topic, host, uuid = sys.argv[1:6]
    conf = cfg.CONF
    conf([])
    oslo_messaging.set_transport_defaults(control_exchange=exchange)
    transport = oslo_messaging.get_rpc_transport(conf, url=url)
    target = oslo_messaging.Target(topic=topic, server=host, version='1.0')
    client = oslo_messaging.RPCClient(transport, target, timeout=15)
    ctxt = {'request_id': 'req-python-1', 'user_id': 'admin-user', 'project_id': 'admin-project',
            'roles': ['admin'], 'is_admin': True, 'auth_token': 'secret-token'}
    out = {}

    def attempt(name, fn):
        try:
            out[name] = {'ok': fn()}
        except oslo_messaging.RemoteError as e:
            out[name] = {'remote_error': {'exc_type': e.exc_type, 'value': e.value, 'str': str(e)[:500]}}
        except Exception as e:  # noqa
            out[name] = {'error': {'type': type(e).__name__, 'module': type(e).__module__, 'str': str(e)[:500]}}

    attempt('get_available_resource', lambda: client.call(ctxt, 'get_available_resource'))
    attempt('get_info', lambda: client.call(ctxt, 'get_info', instance_uuid=uuid))
    attempt('get_info_missing', lambda: client.call(ctxt, 'get_info', instance_uuid='00000000-0000-4000-8000-000000000000'))
    attempt('unknown_method', lambda: client.call(ctxt, 'reticulate_splines'))
    attempt('invalid_args', lambda: client.call(ctxt, 'get_info', instance_uuid=uuid, bogus=1))
    attempt('bad_version', lambda: client.prepare(version='2.0').call(ctxt, 'get_info', instance_uuid=uuid))
    # call_monitor_timeout 2 s on a 4.5 s call: only our ending:false heartbeats keep it alive.
    attempt('call_monitor', lambda: client.prepare(call_monitor_timeout=2, timeout=20).call(ctxt, 'slow', ms=4500, tag='python-cm'))
    attempt('any_host', lambda: oslo_messaging.RPCClient(transport, oslo_messaging.Target(topic=topic, version='1.0'), timeout=15).call(ctxt, 'echo', value='py'))
    attempt('cast', lambda: client.cast(ctxt, 'record', value='python-cast'))
    attempt('fanout', lambda: client.prepare(fanout=True, server=None).cast(ctxt, 'record', value='python-fanout'))
    # oslo never deletes its reply queue (x-expires does, after 30 min); report it so the test can.
    out['reply_q'] = getattr(transport._driver, '_reply_q', None)
    transport.cleanup()
    print(json.dumps(out))


if __name__ == '__main__':
    main()
