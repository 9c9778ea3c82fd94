"""What interop_server.py and interop_client.py share: loading the grpc.testing messages and
the method table of grpc.testing.TestService.

The generated modules live at <gen>/grpc/testing/{empty,messages}_pb2.py. Their package path
(grpc.testing) would collide with grpcio's own `grpc` package, so they are loaded from their
files under other names, and the service is built from generic handlers and channel method
objects instead of a generated *_pb2_grpc module.
"""

import importlib.util
import os

import grpc

import common

SERVICE = "grpc.testing.TestService"
UNIMPLEMENTED_SERVICE = "grpc.testing.UnimplementedService"
ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"


def _load(gen_dir, stem):
    path = os.path.join(gen_dir, "grpc", "testing", stem + "_pb2.py")
    if not os.path.exists(path):
        raise SystemExit("%s is missing: run gen.py with grpc/testing/%s.proto" % (path, stem))
    spec = importlib.util.spec_from_file_location("grpc_testing_" + stem + "_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(gen_dir=None):
    """Returns (empty_pb2, messages_pb2)."""
    gen_dir = gen_dir or common.DEFAULT_GEN_DIR
    return _load(gen_dir, "empty"), _load(gen_dir, "messages")


def methods(empty_pb2, messages_pb2):
    """TestService's methods: name -> (kind, request type, response type)."""
    m = messages_pb2
    return {
        "EmptyCall": ("unary_unary", empty_pb2.Empty, empty_pb2.Empty),
        "UnaryCall": ("unary_unary", m.SimpleRequest, m.SimpleResponse),
        "CacheableUnaryCall": ("unary_unary", m.SimpleRequest, m.SimpleResponse),
        "StreamingOutputCall": ("unary_stream", m.StreamingOutputCallRequest, m.StreamingOutputCallResponse),
        "StreamingInputCall": ("stream_unary", m.StreamingInputCallRequest, m.StreamingInputCallResponse),
        "FullDuplexCall": ("stream_stream", m.StreamingOutputCallRequest, m.StreamingOutputCallResponse),
        "HalfDuplexCall": ("stream_stream", m.StreamingOutputCallRequest, m.StreamingOutputCallResponse),
        "UnimplementedCall": ("unary_unary", empty_pb2.Empty, empty_pb2.Empty),
    }


def status_code(value):
    """The grpc.StatusCode with numeric value `value` (UNKNOWN if there is none)."""
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN
