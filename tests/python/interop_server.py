#!/usr/bin/env python3
"""A grpcio grpc.testing.TestService server for grpc-sync's interop tests, with the behaviours
of gRPC's interop test descriptions.

Usage: interop_server.py [--port 0] [--host 127.0.0.1] [--gen DIR]

Once serving it prints exactly one line, "PORT <n>", to stdout, and stops when stdin reaches end
of file or on SIGTERM/SIGINT.

grpcio cannot tell a handler whether a request message arrived compressed, so the
`expect_compressed` check is not made here (the official Python interop server does not make it
either); compressed requests are still decompressed and answered, and responses are compressed
message by message as `response_compressed` / `ResponseParameters.compressed` ask.
"""

import argparse
import sys
import time
from concurrent import futures

import grpc

import common
import interop_common


def make_handlers(empty_pb2, messages_pb2):
    m = messages_pb2

    def zeros(size):
        if size < 0:
            raise ValueError("negative size")
        return m.Payload(body=b"\x00" * size)

    def echo_metadata(context):
        md = dict(context.invocation_metadata())
        if interop_common.ECHO_INITIAL_KEY in md:
            context.send_initial_metadata(((interop_common.ECHO_INITIAL_KEY, md[interop_common.ECHO_INITIAL_KEY]),))
        if interop_common.ECHO_TRAILING_KEY in md:
            context.set_trailing_metadata(((interop_common.ECHO_TRAILING_KEY, md[interop_common.ECHO_TRAILING_KEY]),))

    def maybe_abort(status, context):
        if status is not None and status.code != 0:
            context.abort(interop_common.status_code(status.code), status.message)

    def respond(params, context):
        for p in params:
            if p.interval_us > 0:
                time.sleep(p.interval_us / 1e6)
            if not (p.HasField("compressed") and p.compressed.value):
                context.disable_next_message_compression()
            yield m.StreamingOutputCallResponse(payload=zeros(p.size))

    def EmptyCall(request, context):
        echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(request, context):
        if request.HasField("response_compressed") and request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        echo_metadata(context)
        if request.HasField("response_status"):
            maybe_abort(request.response_status, context)
        return m.SimpleResponse(payload=zeros(request.response_size))

    def StreamingOutputCall(request, context):
        context.set_compression(grpc.Compression.Gzip)
        echo_metadata(context)
        for r in respond(request.response_parameters, context):
            yield r
        if request.HasField("response_status"):
            maybe_abort(request.response_status, context)

    def StreamingInputCall(request_iterator, context):
        echo_metadata(context)
        total = sum(len(r.payload.body) for r in request_iterator)
        return m.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(request_iterator, context):
        context.set_compression(grpc.Compression.Gzip)
        echo_metadata(context)
        for request in request_iterator:
            if request.HasField("response_status"):
                maybe_abort(request.response_status, context)
            for r in respond(request.response_parameters, context):
                yield r

    def HalfDuplexCall(request_iterator, context):
        context.set_compression(grpc.Compression.Gzip)
        echo_metadata(context)
        requests = list(request_iterator)
        for request in requests:
            if request.HasField("response_status"):
                maybe_abort(request.response_status, context)
        for request in requests:
            for r in respond(request.response_parameters, context):
                yield r

    impls = {
        "EmptyCall": EmptyCall,
        "UnaryCall": UnaryCall,
        "CacheableUnaryCall": UnaryCall,
        "StreamingOutputCall": StreamingOutputCall,
        "StreamingInputCall": StreamingInputCall,
        "FullDuplexCall": FullDuplexCall,
        "HalfDuplexCall": HalfDuplexCall,
    }
    handlers = {}
    for name, (kind, req, resp) in interop_common.methods(empty_pb2, messages_pb2).items():
        if name not in impls:
            continue  # UnimplementedCall: grpcio answers UNIMPLEMENTED
        make = getattr(grpc, kind + "_rpc_method_handler")
        handlers[name] = make(impls[name], request_deserializer=req.FromString,
                              response_serializer=resp.SerializeToString)
    return grpc.method_handlers_generic_handler(interop_common.SERVICE, handlers)


def main(argv=None):
    parser = argparse.ArgumentParser(description="grpcio interop TestService server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--gen", default=common.DEFAULT_GEN_DIR)
    args = parser.parse_args(argv)

    empty_pb2, messages_pb2 = interop_common.load(args.gen)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=common.MESSAGE_OPTIONS)
    server.add_generic_rpc_handlers((make_handlers(empty_pb2, messages_pb2),))
    port = server.add_insecure_port("%s:%d" % (args.host, args.port))
    server.start()
    print("interop_server.py: serving %s on %s:%d" % (interop_common.SERVICE, args.host, port), file=sys.stderr)
    sys.stderr.flush()
    common.serve_until_stdin_closes(server, port)

if __name__ == "__main__":
    main()
