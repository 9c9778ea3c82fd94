#!/usr/bin/env python3
"""Generate grpcio Python modules (_pb2.py, _pb2_grpc.py) for the interop protos.

Usage: gen.py OUT_DIR [--proto-path DIR] [FILE.proto ...]

With no files, every *.proto in the proto path (default: the repository's proto/) is compiled.
Nothing generated is committed: the Rust test harness and selftest.sh run this into target/.
"""

import argparse
import os
import shutil
import sys
import tempfile

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="where the generated modules go (under target/)")
    parser.add_argument(
        "--proto-path",
        default=os.environ.get("GRPC_SYNC_PROTO_DIR") or os.path.join(REPO_ROOT, "proto"),
        help="folder holding the .proto files (default: $GRPC_SYNC_PROTO_DIR or <repo>/proto)",
    )
    parser.add_argument("protos", nargs="*", help="proto files, relative to --proto-path")
    args = parser.parse_intermixed_args(argv)

    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError:
        sys.exit("gen.py: grpc_tools is not installed in %s (pip install grpcio-tools)" % sys.executable)

    proto_path = os.path.abspath(args.proto_path)
    if not os.path.isdir(proto_path):
        sys.exit("gen.py: proto folder %s does not exist" % proto_path)
    protos = args.protos or sorted(p for p in os.listdir(proto_path) if p.endswith(".proto"))
    if not protos:
        sys.exit("gen.py: no .proto files in %s" % proto_path)

    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    # Generate into a scratch folder first and move each file into place with os.replace, so a
    # process importing from out_dir while another regenerates never sees a half-written module.
    scratch = tempfile.mkdtemp(prefix=".gen-", dir=out_dir)
    try:
        # grpc_tools ships the well-known types (google/protobuf/*.proto); protoc needs them on
        # the include path when a proto imports one.
        well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        for proto in protos:
            rc = protoc.main([
                "grpc_tools.protoc",
                "-I" + proto_path,
                "-I" + well_known,
                "--python_out=" + scratch,
                "--grpc_python_out=" + scratch,
                proto,
            ])
            if rc != 0:
                sys.exit("gen.py: protoc failed on %s (exit %d)" % (os.path.join(proto_path, proto), rc))
        for root, _dirs, files in os.walk(scratch):
            rel = os.path.relpath(root, scratch)
            os.makedirs(os.path.join(out_dir, rel), exist_ok=True)
            for name in files:
                os.replace(os.path.join(root, name), os.path.join(out_dir, rel, name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("gen.py: generated %d proto(s) from %s into %s" % (len(protos), proto_path, out_dir))


if __name__ == "__main__":
    main()
