#!/usr/bin/env python3
"""A grpcio client with bearer-token call credentials, for grpc-sync's server interceptor
interop test (tests/interceptors_grpcio.rs): helloworld SayHello over TLS against a server whose
interceptor wants `authorization: Bearer <token>`.

Usage: auth_client.py --port P --ca ca.pem --token T [--server-name localhost]
                      [--host 127.0.0.1] [--gen DIR] [--db IGNORED] [--timeout 10]

Cases, one line each (`ok <case>: ...` or `FAIL <case>: ...`):
  with_token   grpc.access_token_call_credentials(T) composed with ssl_channel_credentials:
               the call succeeds; the reply is printed (`REPLY <message>`)
  no_token     ssl_channel_credentials alone: UNAUTHENTICATED
  wrong_token  access_token_call_credentials(T + "x"): UNAUTHENTICATED
Exit 0 if every case passed.
"""

import argparse
import sys

import grpc

import common


def read(path):
    with open(path, "rb") as f:
        return f.read()


def call(target, creds, options, pb2, pb2_grpc, timeout):
    """SayHello(name="czl") on a fresh secure channel: (reply message, None) or (None, error)."""
    with grpc.secure_channel(target, creds, options=options) as channel:
        stub = pb2_grpc.GreeterStub(channel)
        try:
            return stub.SayHello(pb2.HelloRequest(name="czl"), timeout=timeout).message, None
        except grpc.RpcError as e:
            return None, e


def main(argv=None):
    parser = argparse.ArgumentParser(description="grpcio bearer-token client")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--server-name")
    parser.add_argument("--gen", default=common.DEFAULT_GEN_DIR)
    parser.add_argument("--db", default=common.DEFAULT_DB)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)

    pb2, pb2_grpc = common.load_modules(args.gen, "helloworld")
    ssl = grpc.ssl_channel_credentials(root_certificates=read(args.ca))
    options = []
    if args.server_name:
        options.append(("grpc.ssl_target_name_override", args.server_name))
    target = "%s:%d" % (args.host, args.port)
    cases = [
        ("with_token", grpc.composite_channel_credentials(
            ssl, grpc.access_token_call_credentials(args.token)), None),
        ("no_token", ssl, grpc.StatusCode.UNAUTHENTICATED),
        ("wrong_token", grpc.composite_channel_credentials(
            ssl, grpc.access_token_call_credentials(args.token + "x")),
         grpc.StatusCode.UNAUTHENTICATED),
    ]
    failed = 0
    for name, creds, want in cases:
        reply, err = call(target, creds, options, pb2, pb2_grpc, args.timeout)
        if want is None and err is None:
            print("ok %s: SayHello answered" % name, flush=True)
            print("REPLY %s" % reply, flush=True)
        elif want is None:
            failed += 1
            print("FAIL %s: expected success got %s %s" % (name, err.code().name, err.details()),
                  flush=True)
        elif err is not None and err.code() == want:
            print("ok %s: %s %s" % (name, err.code().name, err.details()), flush=True)
        else:
            failed += 1
            got = "success" if err is None else "%s %s" % (err.code().name, err.details())
            print("FAIL %s: expected %s got %s" % (name, want.name, got), flush=True)
    print("%d/%d cases passed" % (len(cases) - failed, len(cases)), file=sys.stderr, flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
