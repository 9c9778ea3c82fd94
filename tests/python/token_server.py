#!/usr/bin/env python3
"""A grpcio TLS server whose grpc.ServerInterceptor wants `authorization: Bearer <token>`:
the peer of grpc-sync's call credentials interop test (tests/credentials_grpcio.rs).

Usage: token_server.py --cert server.pem --key server.key --token TOKEN
                       [--port 0] [--host 127.0.0.1] [--service S] [--gen DIR] [--db FILE]

Serves `test.Auth/Echo` (unary) and `test.Auth/Count` (server streaming) on raw bytes: a
request is a message `Text { string s = 1; }`. Echo answers a Text holding the
`authorization` value the server received; Count streams the request back three times. A call
without the right header is aborted by the interceptor with UNAUTHENTICATED before any handler
runs. `--service`, `--gen` and `--db` are accepted (the harness passes them) and ignored.

Like servers.py it prints "PORT <n>" once serving and stops when stdin reaches end of file.
"""

import argparse
import sys
from concurrent import futures

import grpc

import common


def read(path):
    with open(path, "rb") as f:
        return f.read()


def text(value):
    """Encodes Text { s: value }: field 1, length-delimited."""
    data = value.encode("utf-8")
    n, varint = len(data), bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            varint.append(byte | 0x80)
        else:
            varint.append(byte)
            break
    return b"\x0a" + bytes(varint) + data


def authorization(context):
    for key, value in context.invocation_metadata():
        if key == "authorization":
            return value
    return None


class TokenCheck(grpc.ServerInterceptor):
    """Lets a call through only with `authorization: Bearer <token>`."""

    def __init__(self, token):
        self._want = "Bearer " + token

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)
        self._deny_stream = grpc.unary_stream_rpc_method_handler(deny)

    def intercept_service(self, continuation, details):
        got = dict(details.invocation_metadata).get("authorization")
        if got == self._want:
            return continuation(details)
        if details.method.endswith("/Count"):
            return self._deny_stream
        return self._deny


def echo(request, context):
    return text(authorization(context) or "")


def count(request, context):
    for _ in range(3):
        yield request


def main(argv=None):
    parser = argparse.ArgumentParser(description="grpcio server checking a bearer token")
    parser.add_argument("--cert", required=True, help="PEM certificate chain")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--token", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--service", default="auth")
    parser.add_argument("--gen")
    parser.add_argument("--db")
    args = parser.parse_args(argv)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4), interceptors=[TokenCheck(args.token)]
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Auth",
                {
                    "Echo": grpc.unary_unary_rpc_method_handler(echo),
                    "Count": grpc.unary_stream_rpc_method_handler(count),
                },
            )
        ]
    )
    creds = grpc.ssl_server_credentials([(read(args.key), read(args.cert))])
    port = server.add_secure_port("%s:%d" % (args.host, args.port), creds)
    if port == 0:
        sys.exit("token_server.py: could not bind %s:%d" % (args.host, args.port))
    server.start()
    common.serve_until_stdin_closes(server, port)


if __name__ == "__main__":
    main()
