#!/usr/bin/env python3
"""A grpcio server with TLS (ssl_server_credentials) for grpc-sync's TLS interop tests.

Usage: tls_server.py --service S --cert server.pem --key server.key
                     [--client-ca ca.pem [--require-client-auth]] [--port 0] [--host 127.0.0.1]
                     [--db route_guide_db.json] [--gen DIR]

The services are those of servers.py. Like servers.py it prints "PORT <n>" once serving and
stops when stdin reaches end of file.
"""

import argparse
import sys

import grpc

import common
import servers


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main(argv=None):
    parser = argparse.ArgumentParser(description="grpcio TLS interop server")
    parser.add_argument("--service", required=True, choices=sorted(common.SERVICES) + ["all"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db", default=common.DEFAULT_DB)
    parser.add_argument("--gen", default=common.DEFAULT_GEN_DIR)
    parser.add_argument("--cert", required=True, help="PEM certificate chain")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--client-ca", help="PEM CA for client certificates (mutual TLS)")
    parser.add_argument("--require-client-auth", action="store_true")
    args = parser.parse_args(argv)

    services = sorted(common.SERVICES) if args.service == "all" else [args.service]
    server = servers.build_server(services, args.gen, args.db, 10)
    creds = grpc.ssl_server_credentials(
        [(read(args.key), read(args.cert))],
        root_certificates=read(args.client_ca) if args.client_ca else None,
        require_client_auth=args.require_client_auth,
    )
    port = server.add_secure_port("%s:%d" % (args.host, args.port), creds)
    if port == 0:
        sys.exit("tls_server.py: could not bind %s:%d" % (args.host, args.port))
    server.start()
    common.serve_until_stdin_closes(server, port)


if __name__ == "__main__":
    main()
