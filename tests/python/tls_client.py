#!/usr/bin/env python3
"""grpcio clients over TLS (secure_channel + ssl_channel_credentials) for grpc-sync's TLS
interop tests: the cases of clients.py, on a secure channel.

Usage: tls_client.py --service S --port P --ca ca.pem [--cert client.pem --key client.key]
                     [--server-name NAME] [--case NAME[,NAME]] [--expect-failure]
                     [--host 127.0.0.1] [--db route_guide_db.json] [--gen DIR] [--timeout 10]

With --expect-failure, one SayHello call must fail with UNAVAILABLE (a TLS handshake the server
refuses); it prints "FAILED_AS_EXPECTED <code> <details>" and exits 0.
"""

import argparse
import sys

import grpc

import clients
import common


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main(argv=None):
    parser = argparse.ArgumentParser(description="grpcio TLS interop clients")
    parser.add_argument("--service", required=True, choices=sorted(common.SERVICES) + ["all"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--case", action="append", default=[])
    parser.add_argument("--db", default=common.DEFAULT_DB)
    parser.add_argument("--gen", default=common.DEFAULT_GEN_DIR)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--server-name")
    parser.add_argument("--expect-failure", action="store_true")
    args = parser.parse_args(argv)

    services = sorted(common.SERVICES) if args.service == "all" else [args.service]
    names = [n for spec in args.case for n in spec.split(",") if n]
    if not names:
        names = [n for n, (s, _, _) in clients.CASES.items() if s in services]
    modules = {s: common.load_modules(args.gen, s) for s in services}
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca),
        private_key=read(args.key) if args.key else None,
        certificate_chain=read(args.cert) if args.cert else None,
    )
    options = list(common.MESSAGE_OPTIONS)
    if args.server_name:
        options.append(("grpc.ssl_target_name_override", args.server_name))
    target = "%s:%d" % (args.host, args.port)
    with grpc.secure_channel(target, creds, options=options) as channel:
        if args.expect_failure:
            pb2, pb2_grpc = common.load_modules(args.gen, "helloworld")
            stub = pb2_grpc.GreeterStub(channel)
            try:
                stub.SayHello(pb2.HelloRequest(name="tls"), timeout=args.timeout)
            except grpc.RpcError as e:
                print("FAILED_AS_EXPECTED %s %s" % (e.code().name, e.details()), flush=True)
                return 0
            print("FAIL expect-failure: the call succeeded", flush=True)
            return 1
        try:
            grpc.channel_ready_future(channel).result(timeout=args.timeout)
        except grpc.FutureTimeoutError:
            print("FAIL connect: no TLS connection within %.0f s (%s)" % (args.timeout, target), flush=True)
            return 1
        results = [clients.run_case(n, channel, modules, args) for n in names]
    passed = sum(results)
    print("%d/%d cases passed" % (passed, len(results)), file=sys.stderr, flush=True)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
