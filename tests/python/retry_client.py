#!/usr/bin/env python3
"""grpcio's client with retries on (gRFC A6), for grpc-sync's retry test: makes unary calls to
/test.Retry/Echo with the service config given, so that the Rust server can compare the
attempts grpcio makes (and their grpc-previous-rpc-attempts) with its own client's.

Usage: retry_client.py --port P --config JSON [--calls N] [--host 127.0.0.1]
                       [--timeout SECONDS] [--gen DIR] [--db F]

Messages are raw bytes (the test's `Num` message: field 1, a varint), so no generated code is
needed. Prints "ok call <i>: n=<n>" per call or "FAIL ..."; exit status 0 if every call
succeeded, 1 otherwise. Every call carries a deadline, so nothing hangs.
"""

import argparse
import sys

import grpc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", required=True)
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    # Accepted for the test harness's sake (run_script passes them); not used.
    parser.add_argument("--gen")
    parser.add_argument("--db")
    args = parser.parse_args(argv)

    channel = grpc.insecure_channel(
        "%s:%d" % (args.host, args.port),
        options=[("grpc.service_config", args.config), ("grpc.enable_retries", 1)],
    )
    echo = channel.unary_unary("/test.Retry/Echo")
    failed = 0
    for i in range(args.calls):
        # Num { n: 7 }
        try:
            reply = echo(b"\x08\x07", timeout=args.timeout)
        except grpc.RpcError as e:
            failed += 1
            print("FAIL call %d: %s %s" % (i, e.code(), e.details()), flush=True)
            continue
        if reply == b"\x08\x07":
            print("ok call %d: n=7" % i, flush=True)
        else:
            failed += 1
            print("FAIL call %d: expected b'\\x08\\x07' got %r" % (i, reply), flush=True)
    channel.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
