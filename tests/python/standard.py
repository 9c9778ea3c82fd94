#!/usr/bin/env python3
"""The standard services against grpcio's own: health checking (grpcio-health-checking) and
rich error details (grpcio-status), both ways. Driven by tests/interop_standard.rs.

Usage:
  standard.py --service standard --port 0 [--host 127.0.0.1] [--gen DIR] [--db FILE]
      A grpcio server: grpc_health's HealthServicer ("" and "routeguide.RouteGuide" SERVING,
      "sick.Svc" NOT_SERVING) and "test.Rich/Fail", which aborts with
      rpc_status.to_status(...) carrying BadRequest, ErrorInfo and RetryInfo. Prints
      "PORT <n>", then serves until stdin ends.
  standard.py --client {health,rich} --port P [--host 127.0.0.1]
      grpcio clients against our server (see tests/interop_standard.rs for what it offers).
      Every check prints "ok <what>" or "FAIL <what>: ..."; exit status 0 if all passed.

Every call carries a deadline, so nothing hangs.
"""

import argparse
import sys
from concurrent import futures

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

import common

TIMEOUT = 10.0
S = health_pb2.HealthCheckResponse

FAILED = []


def check(what, cond, got=""):
    if cond:
        print("ok %s" % what, flush=True)
    else:
        FAILED.append(what)
        print("FAIL %s: got %s" % (what, got), flush=True)


def _pack(msg):
    a = any_pb2.Any()
    a.Pack(msg)
    return a


def rich_status():
    """The google.rpc.Status that both sides send for test.Rich/Fail."""
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT,
        message="bad request",
        details=[
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field="name", description="must not be empty")
                    ]
                )
            ),
            _pack(error_details_pb2.ErrorInfo(reason="EMPTY_NAME", domain="grpc-sync.test", metadata={"k": "v"})),
            _pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=500))),
        ],
    )


# --- server ---------------------------------------------------------------------------------


def serve(args):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    servicer = health.HealthServicer()
    servicer.set("", S.SERVING)
    servicer.set("routeguide.RouteGuide", S.SERVING)
    servicer.set("sick.Svc", S.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)

    def fail(request, context):
        context.abort_with_status(rpc_status.to_status(rich_status()))

    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Rich", {"Fail": grpc.unary_unary_rpc_method_handler(fail)}),)
    )
    port = server.add_insecure_port("%s:%d" % (args.host, args.port))
    if port == 0:
        sys.exit("standard.py: could not bind %s:%d" % (args.host, args.port))
    server.start()
    common.serve_until_stdin_closes(server, port)


# --- clients against our server ---------------------------------------------------------------


def control(channel, body):
    """Our test server's raw control method: "name=STATUS" sets a status, "stop" stops it."""
    channel.unary_unary("/test.Control/Do")(body.encode(), timeout=TIMEOUT)


def health_client(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    req = health_pb2.HealthCheckRequest
    r = stub.Check(req(service=""), timeout=TIMEOUT)
    check("Check '' is SERVING", r.status == S.SERVING, r)
    r = stub.Check(req(service="routeguide.RouteGuide"), timeout=TIMEOUT)
    check("Check routeguide.RouteGuide is SERVING", r.status == S.SERVING, r)
    try:
        stub.Check(req(service="no.Such"), timeout=TIMEOUT)
        check("Check no.Such fails", False, "an answer")
    except grpc.RpcError as e:
        check("Check no.Such is NOT_FOUND", e.code() == grpc.StatusCode.NOT_FOUND, e.code())

    if hasattr(stub, "List"):
        r = stub.List(health_pb2.HealthListRequest(), timeout=TIMEOUT)
        got = {k: v.status for k, v in r.statuses.items()}
        check("List", got == {"": S.SERVING, "routeguide.RouteGuide": S.SERVING}, got)

    # Watch an unknown service: SERVICE_UNKNOWN, then each change in order.
    watch = stub.Watch(req(service="x.Svc"), timeout=TIMEOUT * 3)
    first = next(watch).status
    check("Watch x.Svc starts SERVICE_UNKNOWN", first == S.SERVICE_UNKNOWN, first)
    seen = []
    for status in ("SERVING", "NOT_SERVING", "SERVING"):
        control(channel, "x.Svc=" + status)
        seen.append(S.ServingStatus.Name(next(watch).status))
    check("Watch x.Svc sees the changes in order", seen == ["SERVING", "NOT_SERVING", "SERVING"], seen)

    # The server stops: NOT_SERVING reaches both watchers before the connection goes.
    whole = stub.Watch(req(service=""), timeout=TIMEOUT * 3)
    first = next(whole).status
    check("Watch '' starts SERVING", first == S.SERVING, first)
    control(channel, "stop")
    last = next(whole).status
    check("Watch '' sees NOT_SERVING on stop", last == S.NOT_SERVING, S.ServingStatus.Name(last))
    last = next(watch).status
    check("Watch x.Svc sees NOT_SERVING on stop", last == S.NOT_SERVING, S.ServingStatus.Name(last))
    watch.cancel()
    whole.cancel()


def rich_client(channel):
    try:
        channel.unary_unary("/test.Rich/Fail")(b"", timeout=TIMEOUT)
        check("test.Rich/Fail fails", False, "an answer")
        return
    except grpc.RpcError as e:
        status = rpc_status.from_call(e)
    check("from_call finds a google.rpc.Status", status is not None, status)
    if status is None:
        return
    want = rich_status()
    check("code and message", (status.code, status.message) == (want.code, want.message), status)
    urls = [d.type_url for d in status.details]
    check(
        "type URLs",
        urls
        == [
            "type.googleapis.com/google.rpc.BadRequest",
            "type.googleapis.com/google.rpc.ErrorInfo",
            "type.googleapis.com/google.rpc.RetryInfo",
        ],
        urls,
    )
    check("details unpack to the same messages", list(status.details) == list(want.details), status.details)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service")
    parser.add_argument("--client", choices=["health", "rich"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--gen")
    parser.add_argument("--db")
    args = parser.parse_args(argv)
    if args.client is None:
        serve(args)
        return 0
    with grpc.insecure_channel("%s:%d" % (args.host, args.port)) as channel:
        try:
            {"health": health_client, "rich": rich_client}[args.client](channel)
        except grpc.RpcError as e:
            check("no unexpected RPC error", False, "%s: %s" % (e.code(), e.details()))
        except StopIteration:
            check("the watch goes on", False, "it ended")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
