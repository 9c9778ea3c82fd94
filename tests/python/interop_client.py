#!/usr/bin/env python3
"""A grpcio interop client for grpc-sync's interop tests: the cases of gRPC's interop test
descriptions against a grpc.testing.TestService server (grpc-sync's interop_server).

Usage: interop_client.py --port N [--host 127.0.0.1] [--case NAME[,NAME...]] [--gen DIR]

Prints one line per case, "ok <case>: <what was checked>" or "FAIL <case>: <why>", and exits
non-zero if any case failed.

grpcio limits: a Python client cannot see the compressed flag of a response message, so the
server_compressed_* cases check the payloads only; and it compresses a whole call or none of it,
so client_compressed_streaming sends both messages compressed (the server only checks the
message that must be compressed).
"""

import argparse
import queue
import sys
import threading
import traceback

import grpc

import common
import interop_common

CASES = [
    "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong",
    "empty_stream", "cancel_after_begin", "cancel_after_first_response",
    "timeout_on_sleeping_server", "status_code_and_message", "special_status_message",
    "custom_metadata", "unimplemented_method", "unimplemented_service",
    "client_compressed_unary", "server_compressed_unary", "client_compressed_streaming",
    "server_compressed_streaming",
]

REQUEST_SIZES = (27182, 8, 1828, 45904)
RESPONSE_SIZES = (31415, 9, 2653, 58979)
TRAILING_VALUE = b"\xab\xab\xab"
INITIAL_VALUE = "test_initial_metadata_value"
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
WAIT = 30  # seconds: the deadline of every wait in a case


class CaseFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CaseFailure(msg)


class Pipe(object):
    """A request iterator fed by hand; closing it ends the stream."""

    _CLOSE = object()

    def __init__(self):
        self._q = queue.Queue()

    def __iter__(self):
        return self

    def __next__(self):
        item = self._q.get(timeout=WAIT)
        if item is Pipe._CLOSE:
            raise StopIteration()
        return item

    def add(self, item):
        self._q.put(item)

    def close(self):
        self._q.put(Pipe._CLOSE)


class Stubs(object):
    def __init__(self, channel, empty_pb2, messages_pb2):
        self.empty = empty_pb2
        self.m = messages_pb2
        for name, (kind, req, resp) in interop_common.methods(empty_pb2, messages_pb2).items():
            make = getattr(channel, kind)
            setattr(self, name, make("/%s/%s" % (interop_common.SERVICE, name),
                                     request_serializer=req.SerializeToString,
                                     response_deserializer=resp.FromString))
        self.UnimplementedService = channel.unary_unary(
            "/%s/UnimplementedCall" % interop_common.UNIMPLEMENTED_SERVICE,
            request_serializer=empty_pb2.Empty.SerializeToString,
            response_deserializer=empty_pb2.Empty.FromString)


def zeros(m, n):
    return m.Payload(body=b"\x00" * n)


def check_payload(what, payload, size):
    check(len(payload.body) == size, "%s: payload of %d bytes, expected %d" % (what, len(payload.body), size))
    check(payload.body == b"\x00" * size, "%s: payload is not all zeros" % what)


def large_request(m, **kw):
    return m.SimpleRequest(response_size=314159, payload=zeros(m, 271828), **kw)


def stream_request(m, sizes, payload_size=0, **kw):
    req = m.StreamingOutputCallRequest(
        response_parameters=[m.ResponseParameters(size=s) for s in sizes], **kw)
    if payload_size:
        req.payload.CopyFrom(zeros(m, payload_size))
    return req


def expect_code(what, fn, code):
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, "%s: %s %r, expected %s" % (what, e.code(), e.details(), code))
        return e
    raise CaseFailure("%s succeeded, expected %s" % (what, code))


def empty_unary(s):
    r = s.EmptyCall(s.empty.Empty(), timeout=WAIT)
    check(r == s.empty.Empty(), "non-empty response %r" % r)
    return "EmptyCall returned an empty response"


def large_unary(s):
    r = s.UnaryCall(large_request(s.m), timeout=WAIT)
    check_payload("UnaryCall", r.payload, 314159)
    return "UnaryCall: 271828 bytes sent, 314159 zero bytes back"


def client_streaming(s):
    reqs = [s.m.StreamingInputCallRequest(payload=zeros(s.m, n)) for n in REQUEST_SIZES]
    r = s.StreamingInputCall(iter(reqs), timeout=WAIT)
    check(r.aggregated_payload_size == 74922, "aggregated_payload_size %d" % r.aggregated_payload_size)
    return "StreamingInputCall: aggregated_payload_size 74922"


def server_streaming(s):
    sizes = [len(r.payload.body) for r in s.StreamingOutputCall(stream_request(s.m, RESPONSE_SIZES), timeout=WAIT)]
    check(sizes == list(RESPONSE_SIZES), "response sizes %r" % sizes)
    return "StreamingOutputCall: 4 responses of 31415, 9, 2653, 58979 bytes"


def ping_pong(s):
    pipe = Pipe()
    responses = s.FullDuplexCall(pipe, timeout=WAIT)
    for req_size, resp_size in zip(REQUEST_SIZES, RESPONSE_SIZES):
        pipe.add(stream_request(s.m, [resp_size], req_size))
        r = next(responses)
        check_payload("pong", r.payload, resp_size)
    pipe.close()
    check(next(responses, None) is None, "an extra response after half-close")
    return "FullDuplexCall: 4 pings answered in turn"


def empty_stream(s):
    responses = list(s.FullDuplexCall(iter([]), timeout=WAIT))
    check(responses == [], "%d responses, expected none" % len(responses))
    return "FullDuplexCall with no requests: no responses, OK"


def cancel_after_begin(s):
    pipe = Pipe()
    future = s.StreamingInputCall.future(pipe, timeout=WAIT)
    future.cancel()
    check(future.cancelled(), "the future is not cancelled")
    check(future.code() == grpc.StatusCode.CANCELLED, "code %s" % future.code())
    pipe.close()
    return "StreamingInputCall cancelled before any request: CANCELLED"


def cancel_after_first_response(s):
    pipe = Pipe()
    responses = s.FullDuplexCall(pipe, timeout=WAIT)
    pipe.add(stream_request(s.m, [31415], 27182))
    check_payload("first response", next(responses).payload, 31415)
    responses.cancel()
    expect_code("reading after cancel", lambda: next(responses), grpc.StatusCode.CANCELLED)
    pipe.close()
    return "FullDuplexCall cancelled after the first response: CANCELLED"


def timeout_on_sleeping_server(s):
    pipe = Pipe()
    responses = s.FullDuplexCall(pipe, timeout=0.001)
    pipe.add(stream_request(s.m, [], 27182))
    expect_code("FullDuplexCall with a 1 ms deadline", lambda: next(responses), grpc.StatusCode.DEADLINE_EXCEEDED)
    pipe.close()
    return "FullDuplexCall with a 1 ms deadline: DEADLINE_EXCEEDED"


def _status_request(s, message):
    return s.m.EchoStatus(code=2, message=message)


def status_code_and_message(s):
    msg = "test status message"
    e = expect_code("UnaryCall", lambda: s.UnaryCall(s.m.SimpleRequest(response_status=_status_request(s, msg)), timeout=WAIT),
                    grpc.StatusCode.UNKNOWN)
    check(e.details() == msg, "UnaryCall details %r" % e.details())
    req = s.m.StreamingOutputCallRequest(response_status=_status_request(s, msg))
    e = expect_code("FullDuplexCall", lambda: list(s.FullDuplexCall(iter([req]), timeout=WAIT)), grpc.StatusCode.UNKNOWN)
    check(e.details() == msg, "FullDuplexCall details %r" % e.details())
    return "UnaryCall and FullDuplexCall: UNKNOWN 'test status message'"


def special_status_message(s):
    e = expect_code("UnaryCall", lambda: s.UnaryCall(s.m.SimpleRequest(response_status=_status_request(s, SPECIAL_MESSAGE)), timeout=WAIT),
                    grpc.StatusCode.UNKNOWN)
    check(e.details() == SPECIAL_MESSAGE, "details %r" % e.details())
    return "UnaryCall: UNKNOWN with whitespace and Unicode intact"


def _check_echo(what, initial, trailing):
    initial, trailing = dict(initial or ()), dict(trailing or ())
    check(initial.get(interop_common.ECHO_INITIAL_KEY) == INITIAL_VALUE, "%s: initial metadata %r" % (what, initial))
    check(trailing.get(interop_common.ECHO_TRAILING_KEY) == TRAILING_VALUE, "%s: trailing metadata %r" % (what, trailing))


def custom_metadata(s):
    md = ((interop_common.ECHO_INITIAL_KEY, INITIAL_VALUE), (interop_common.ECHO_TRAILING_KEY, TRAILING_VALUE))
    r, call = s.UnaryCall.with_call(large_request(s.m), metadata=md, timeout=WAIT)
    check_payload("UnaryCall", r.payload, 314159)
    _check_echo("UnaryCall", call.initial_metadata(), call.trailing_metadata())
    responses = s.FullDuplexCall(iter([stream_request(s.m, [314159], 271828)]), metadata=md, timeout=WAIT)
    got = list(responses)
    check(len(got) == 1, "FullDuplexCall: %d responses" % len(got))
    check_payload("FullDuplexCall", got[0].payload, 314159)
    _check_echo("FullDuplexCall", responses.initial_metadata(), responses.trailing_metadata())
    return "UnaryCall and FullDuplexCall echoed both metadata entries"


def unimplemented_method(s):
    expect_code("UnimplementedCall", lambda: s.UnimplementedCall(s.empty.Empty(), timeout=WAIT), grpc.StatusCode.UNIMPLEMENTED)
    return "TestService/UnimplementedCall: UNIMPLEMENTED"


def unimplemented_service(s):
    expect_code("UnimplementedService", lambda: s.UnimplementedService(s.empty.Empty(), timeout=WAIT), grpc.StatusCode.UNIMPLEMENTED)
    return "UnimplementedService/UnimplementedCall: UNIMPLEMENTED"


def client_compressed_unary(s):
    probe = large_request(s.m, expect_compressed=s.m.BoolValue(value=True))
    expect_code("the probe", lambda: s.UnaryCall(probe, timeout=WAIT), grpc.StatusCode.INVALID_ARGUMENT)
    r = s.UnaryCall(probe, timeout=WAIT, compression=grpc.Compression.Gzip)
    check_payload("compressed call", r.payload, 314159)
    r = s.UnaryCall(large_request(s.m, expect_compressed=s.m.BoolValue(value=False)), timeout=WAIT)
    check_payload("uncompressed call", r.payload, 314159)
    return "probe INVALID_ARGUMENT; gzip and uncompressed UnaryCalls succeeded"


def server_compressed_unary(s):
    for compressed in (True, False):
        r = s.UnaryCall(large_request(s.m, response_compressed=s.m.BoolValue(value=compressed)), timeout=WAIT)
        check_payload("response_compressed=%s" % compressed, r.payload, 314159)
    return "UnaryCall with response_compressed true and false (grpcio cannot see the flag)"


def client_compressed_streaming(s):
    first = s.m.StreamingInputCallRequest(payload=zeros(s.m, 27182), expect_compressed=s.m.BoolValue(value=True))
    expect_code("the probe", lambda: s.StreamingInputCall(iter([first]), timeout=WAIT), grpc.StatusCode.INVALID_ARGUMENT)
    second = s.m.StreamingInputCallRequest(payload=zeros(s.m, 45904), expect_compressed=s.m.BoolValue(value=False))
    r = s.StreamingInputCall(iter([first, second]), timeout=WAIT, compression=grpc.Compression.Gzip)
    check(r.aggregated_payload_size == 73086, "aggregated_payload_size %d" % r.aggregated_payload_size)
    return "probe INVALID_ARGUMENT; gzip StreamingInputCall: 73086 bytes"


def server_compressed_streaming(s):
    req = s.m.StreamingOutputCallRequest(response_parameters=[
        s.m.ResponseParameters(size=31415, compressed=s.m.BoolValue(value=True)),
        s.m.ResponseParameters(size=92653, compressed=s.m.BoolValue(value=False)),
    ])
    sizes = [len(r.payload.body) for r in s.StreamingOutputCall(req, timeout=WAIT)]
    check(sizes == [31415, 92653], "response sizes %r" % sizes)
    return "StreamingOutputCall: 2 responses, first compressed (grpcio cannot see the flag)"


def main(argv=None):
    parser = argparse.ArgumentParser(description="grpcio interop client")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--case", default="all", help="a case, several separated by commas, or all")
    parser.add_argument("--gen", default=common.DEFAULT_GEN_DIR)
    args = parser.parse_args(argv)

    cases = CASES if args.case == "all" else args.case.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        sys.exit("interop_client.py: unknown case(s) %s; known: %s" % (", ".join(unknown), ", ".join(CASES)))
    empty_pb2, messages_pb2 = interop_common.load(args.gen)
    failed = 0
    with grpc.insecure_channel("%s:%d" % (args.host, args.port), options=common.MESSAGE_OPTIONS) as channel:
        stubs = Stubs(channel, empty_pb2, messages_pb2)
        for case in cases:
            try:
                what = globals()[case](stubs)
                print("ok %s: %s" % (case, what))
            except CaseFailure as e:
                failed += 1
                print("FAIL %s: %s" % (case, e))
            except grpc.RpcError as e:
                failed += 1
                print("FAIL %s: RPC failed: %s %r" % (case, e.code(), e.details()))
            except Exception:  # a bug in the case itself: report it as a failure with its trace
                failed += 1
                print("FAIL %s: %s" % (case, traceback.format_exc().strip().replace("\n", " | ")))
            sys.stdout.flush()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
