#!/usr/bin/env python3
"""grpcio's side of grpc-sync's keepalive and connection-age interop tests.

Usage: keepalive.py --mode MODE --port P [--host H] [--seconds S] [--service X] [--gen DIR]
                    [--db FILE]

Modes:
  server-age          a grpcio server with grpc.max_connection_age_ms=300 and a 1 s grace
  server-permissive   a grpcio server that lets clients ping every 50 ms, calls or not
  client-pings        a grpcio client pinging every 100 ms without calls (the settings the
                      issue names) against --port: one call, an idle spell, one more call
  client-age          a grpcio client calling in a loop for --seconds against --port

The servers serve test.Ka/Echo and test.Ka/Peer (the peer grpcio sees, as a one-field
message) with raw bytes, print "PORT <n>" and stop when stdin closes. The clients print one
"ok ..." or "FAIL ..." line per check and exit 1 if any failed. --service, --gen and --db are
accepted (and ignored) so that the Rust test helpers can start this like the other scripts.
"""

import argparse
import sys
import time
from concurrent import futures

import grpc


def encode_text(s):
    b = s.encode()
    out = bytearray(b"\n")
    n = len(b)
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + b


def serve(options):
    handler = grpc.method_handlers_generic_handler(
        "test.Ka",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req),
            "Peer": grpc.unary_unary_rpc_method_handler(
                lambda req, ctx: encode_text(ctx.peer())
            ),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=options)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()
    sys.stdin.read()
    server.stop(None)
    return 0


def call(channel, method, timeout=10):
    fn = channel.unary_unary("/test.Ka/" + method)
    return fn(encode_text("hi"), timeout=timeout)


def client_pings(target):
    options = [
        ("grpc.keepalive_time_ms", 100),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    failed = 0
    with grpc.insecure_channel(target, options=options) as ch:
        for i in range(2):
            try:
                call(ch, "Echo")
                print("ok call %d" % i, flush=True)
            except grpc.RpcError as e:
                print("FAIL call %d: %s %s" % (i, e.code(), e.details()), flush=True)
                failed += 1
            if i == 0:
                # The client's behaviour under test: idle while its keepalive pings flow.
                # grpcio's core sends at most one ping a second whatever keepalive_time_ms
                # says, so the fourth (the third unwanted) comes after about 3 s.
                time.sleep(4.5)
    return 1 if failed else 0


def client_age(target, seconds):
    peers, calls, failed = set(), 0, 0
    end = time.monotonic() + seconds
    with grpc.insecure_channel(target) as ch:
        while time.monotonic() < end:
            try:
                reply = call(ch, "Peer")
                peers.add(bytes(reply[2:]))
            except grpc.RpcError as e:
                failed += 1
                print("FAIL call %d: %s %s" % (calls, e.code(), e.details()), flush=True)
            calls += 1
    print("%s %d calls, %d failed, over %d connections"
          % ("ok" if failed == 0 and len(peers) >= 2 else "FAIL", calls, failed, len(peers)),
          flush=True)
    return 0 if failed == 0 and len(peers) >= 2 else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--service")
    p.add_argument("--gen")
    p.add_argument("--db")
    args = p.parse_args()
    target = "%s:%d" % (args.host, args.port)
    if args.mode == "server-age":
        return serve([("grpc.max_connection_age_ms", 300), ("grpc.max_connection_age_grace_ms", 1000)])
    if args.mode == "server-permissive":
        return serve([
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 50),
            ("grpc.http2.min_ping_interval_without_data_ms", 50),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_ping_strikes", 0),
        ])
    if args.mode == "client-pings":
        return client_pings(target)
    if args.mode == "client-age":
        return client_age(target, args.seconds)
    print("unknown mode %s" % args.mode, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
