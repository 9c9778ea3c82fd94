#!/usr/bin/env python3
"""grpcio clients for grpc-sync's interop tests: exercise a server (ours, in Rust, or servers.py)
with every RPC kind of the seed services.

Usage: clients.py --service {helloworld,route_guide,calculator,format_data,all} --port P
                  [--case NAME[,NAME...]]... [--host 127.0.0.1] [--db route_guide_db.json]
                  [--gen DIR] [--timeout SECONDS]
       clients.py --list

Every check prints one line, "ok <case>: <what was checked>" or
"FAIL <case>: expected <x> got <y> (<what>)". Exit status: 0 if every check passed, 1 if any
failed, 2 for a usage error. Every call carries a deadline, so nothing hangs.
"""

import argparse
import os
import queue
import sys
import time

import grpc
from google.protobuf import text_format

import common

# Each entry: case name -> (service, function, one-line description). Names are unique across
# services so that a Rust test can name one case without its service.
CASES = {}


def case(service, description):
    def register(fn):
        CASES[fn.__name__] = (service, fn, description)
        return fn

    return register


class CheckFailed(Exception):
    pass


class Ctx:
    """What one case needs: its name (for the output lines), the stub, the messages module."""

    def __init__(self, name, channel, pb2, pb2_grpc, service, args):
        self.name = name
        self.channel = channel
        self.pb2 = pb2
        self.service = service
        self.timeout = args.timeout
        self.db_path = args.db
        self.stub = getattr(pb2_grpc, common.SERVICES[service][1] + "Stub")(channel)
        self.passed = 0
        self.failed = 0

    def ok(self, what):
        self.passed += 1
        print("ok %s: %s" % (self.name, what), flush=True)

    def fail(self, expected, got, what):
        self.failed += 1
        print("FAIL %s: expected %s got %s (%s)" % (self.name, expected, got, what), flush=True)

    def eq(self, what, expected, got):
        if expected == got:
            self.ok("%s == %s" % (what, _short(expected)))
        else:
            self.fail(_short(expected), _short(got), what)
        return expected == got

    def check(self, what, condition, got=""):
        if condition:
            self.ok(what)
        else:
            self.fail("true", _short(got) if got != "" else "false", what)
        return condition

    def rpc_error(self, what, call, code, details=None):
        """Runs `call()` and checks that it raises an RpcError with this code (and details)."""
        try:
            result = call()
        except grpc.RpcError as e:
            got = (e.code(), e.details())
            if got[0] != code or (details is not None and got[1] != details):
                self.fail(_status(code, details), _status(*got), what)
                return None
            self.ok("%s -> %s" % (what, _status(code, details)))
            return e
        self.fail(_status(code, details), "success %s" % _short(result), what)
        return None

    def stop(self, expected, got, what):
        """Fails the check and abandons the rest of the case (later checks depend on it)."""
        self.fail(expected, got, what)
        raise CheckFailed()


def _status(code, details=None):
    name = code.name if isinstance(code, grpc.StatusCode) else str(code)
    return name if details is None else "%s %r" % (name, details)


def _short(value, limit=300):
    if isinstance(value, grpc.StatusCode):
        return value.name
    if hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):  # a protobuf message
        text = "%s{%s}" % (type(value).__name__, text_format.MessageToString(value, as_one_line=True))
    else:
        text = repr(value)
    return text if len(text) <= limit else "%s...(%d chars)" % (text[:limit], len(text))


def _pick(metadata, prefix):
    """Entries of a metadata sequence whose key starts with `prefix`, in order."""
    return [(m[0], m[1]) for m in (metadata or ()) if m[0].startswith(prefix)]


# --- helloworld ---------------------------------------------------------------------------------


@case("helloworld", "unary SayHello as in seed 001")
def say_hello(c):
    reply = c.stub.SayHello(c.pb2.HelloRequest(name="czl"), timeout=c.timeout)
    c.eq("SayHello(name='czl').message", common.greeting("czl"), reply.message)


@case("helloworld", "unary SayHelloAgain as in seed 001")
def say_hello_again(c):
    reply = c.stub.SayHelloAgain(c.pb2.HelloRequest(name="daydaygo"), timeout=c.timeout)
    c.eq("SayHelloAgain(name='daydaygo').message", common.greeting_again("daydaygo"), reply.message)


@case("helloworld", "with_call: x-echo-* metadata comes back as initial (ASCII) and trailing (-bin)")
def with_call_metadata(c):
    sent_ascii = [("x-echo-ascii", "one"), ("x-echo-ascii", "two"), ("x-echo-other", "v a l;u=e")]
    sent_bin = [("x-echo-data-bin", b"\x00\x01\xfe\xff")]
    reply, call = c.stub.SayHello.with_call(
        c.pb2.HelloRequest(name="meta"), metadata=sent_ascii + sent_bin, timeout=c.timeout
    )
    c.eq("with_call reply.message", common.greeting("meta"), reply.message)
    c.eq("with_call call.code()", grpc.StatusCode.OK, call.code())
    c.eq("initial metadata x-echo-*", sent_ascii, _pick(call.initial_metadata(), common.ECHO_PREFIX))
    c.eq("trailing metadata x-echo-*", sent_bin, _pick(call.trailing_metadata(), common.ECHO_PREFIX))


@case("helloworld", ".future(): result(), done(), initial metadata")
def future(c):
    fut = c.stub.SayHello.future(
        c.pb2.HelloRequest(name="future"), metadata=[("x-echo-future", "yes")], timeout=c.timeout
    )
    reply = fut.result(timeout=c.timeout)
    c.eq("future.result().message", common.greeting("future"), reply.message)
    c.check("future.done()", fut.done())
    c.eq("future.code()", grpc.StatusCode.OK, fut.code())
    echoed = _pick(fut.initial_metadata(), common.ECHO_PREFIX)
    c.eq("future.initial_metadata() x-echo-*", [("x-echo-future", "yes")], echoed)


@case("helloworld", ".future() cancelled at once, and a slow call cancelled while its handler runs")
def future_cancel(c):
    slow = c.pb2.HelloRequest(name=common.SLEEP_MARKER + "20000")
    fut = c.stub.SayHello.future(slow, timeout=c.timeout)
    c.check("future.cancel() returns True", fut.cancel())
    c.check("future.cancelled()", fut.cancelled())
    try:
        fut.result(timeout=c.timeout)
        c.fail("FutureCancelledError", "a result", "future.result() after cancel")
    except grpc.FutureCancelledError:
        c.ok("future.result() after cancel raises FutureCancelledError")

    # A unary future only reports initial metadata with the response, so to know that the
    # handler is running, call the same method through a unary-stream callable (the wire is
    # identical): its initial_metadata() returns as soon as the server's headers arrive, and
    # the server echoes x-echo-* headers before it starts sleeping. The cancel then reaches a
    # live call on the server (RST_STREAM CANCEL).
    path = "/%s/SayHello" % common.service_full_name(c.pb2, "helloworld")
    method = c.channel.unary_stream(
        path,
        request_serializer=c.pb2.HelloRequest.SerializeToString,
        response_deserializer=c.pb2.HelloReply.FromString,
    )
    call = method(slow, metadata=[("x-echo-started", "1")], timeout=c.timeout)
    echoed = _pick(call.initial_metadata(), common.ECHO_PREFIX)
    c.eq("headers of the running slow call", [("x-echo-started", "1")], echoed)
    call.cancel()
    c.eq("code() of the cancelled call", grpc.StatusCode.CANCELLED, call.code())
    reply = c.stub.SayHello(c.pb2.HelloRequest(name="after-cancel"), timeout=c.timeout)
    c.eq("next call on the same channel", common.greeting("after-cancel"), reply.message)


@case("helloworld", "a 300 ms deadline on a 5 s call raises DEADLINE_EXCEEDED without waiting for the server")
def deadline_exceeded(c):
    start = time.monotonic()
    c.rpc_error(
        "SayHello(name='sleep:5000', timeout=0.3)",
        lambda: c.stub.SayHello(c.pb2.HelloRequest(name=common.SLEEP_MARKER + "5000"), timeout=0.3),
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    elapsed = time.monotonic() - start
    c.check("the deadline fired before the server answered (%.2f s)" % elapsed, elapsed < 4.0, elapsed)
    reply = c.stub.SayHello(c.pb2.HelloRequest(name="after-deadline"), timeout=c.timeout)
    c.eq("next call on the same channel", common.greeting("after-deadline"), reply.message)


@case("helloworld", "unknown method and unknown service -> UNIMPLEMENTED")
def unimplemented(c):
    full = common.service_full_name(c.pb2, "helloworld")
    package = full.rpartition(".")[0]
    for path in ("/%s/Nope" % full, "/%s%sNoSuchService/SayHello" % (package, "." if package else "")):
        method = c.channel.unary_unary(path)
        c.rpc_error(
            "generic call to %s" % path,
            lambda: method(b"", timeout=c.timeout),
            grpc.StatusCode.UNIMPLEMENTED,
        )


@case("helloworld", "a request of 4 MiB - 100 bytes and its echo of similar size")
def large_message(c):
    name = "x" * (4 * 1024 * 1024 - 100)
    reply = c.stub.SayHello(c.pb2.HelloRequest(name=name), timeout=max(c.timeout, 30))
    expected = common.greeting(name)
    c.eq("len(reply.message)", len(expected), len(reply.message))
    c.check("reply.message == greeting(name)", reply.message == expected)


@case("helloworld", "server aborts with NOT_FOUND / PERMISSION_DENIED; details with %, non-ASCII survive")
def abort_status(c):
    for code, details in (
        (grpc.StatusCode.NOT_FOUND, "no greeting here"),
        (grpc.StatusCode.PERMISSION_DENIED, "denied 100% ✓ 拒绝\tnow"),
    ):
        name = "%s%s:%s" % (common.ABORT_MARKER, code.name, details)
        c.rpc_error(
            "SayHello(name=%r)" % name,
            lambda: c.stub.SayHello(c.pb2.HelloRequest(name=name), timeout=c.timeout),
            code,
            details,
        )


@case("helloworld", "16 concurrent .future() calls on one channel all get their own answer")
def concurrent_calls(c):
    names = ["c%02d" % i for i in range(16)]
    futs = [c.stub.SayHello.future(c.pb2.HelloRequest(name=n), timeout=c.timeout) for n in names]
    got = [f.result(timeout=c.timeout).message for f in futs]
    c.eq("16 concurrent replies", [common.greeting(n) for n in names], got)


# --- route guide --------------------------------------------------------------------------------


def _load_db(c):
    if not os.path.isfile(c.db_path):
        c.stop("a route guide database", "no file at %s" % c.db_path, "--db")
    return common.read_route_guide_db(c.db_path, c.pb2)


def _point(c, lat, lon):
    return c.pb2.Point(latitude=lat, longitude=lon)


def _features(features):
    return [(f.name, f.location.latitude, f.location.longitude) for f in features]


def _note(c, message, lat, lon):
    return c.pb2.RouteNote(message=message, location=_point(c, lat, lon))


def _notes(notes):
    return [(n.message, n.location.latitude, n.location.longitude) for n in notes]


@case("route_guide", "GetFeature of a known point returns its named feature")
def get_feature(c):
    point = _point(c, 409146138, -746188906)
    feature = c.stub.GetFeature(point, timeout=c.timeout)
    name = "Berkshire Valley Management Area Trail, Jefferson, NJ, USA"
    c.eq("GetFeature(409146138, -746188906).name", name, feature.name)
    c.eq("GetFeature(409146138, -746188906).location", point, feature.location)


@case("route_guide", "GetFeature of an unknown point returns an unnamed feature at that point")
def get_feature_missing(c):
    feature = c.stub.GetFeature(_point(c, 0, 0), timeout=c.timeout)
    c.eq("GetFeature(0, 0).name", "", feature.name)
    c.check("GetFeature(0, 0) has a location", feature.HasField("location"))
    c.eq("GetFeature(0, 0).location", _point(c, 0, 0), feature.location)


# The seed's rectangle holds all 100 features; the second one (corners swapped) 21, 7 unnamed.
SEED_RECT = ((400000000, -750000000), (420000000, -730000000), 100)
SMALL_RECT = ((415000000, -740000000), (410000000, -745000000), 21)


@case("route_guide", "ListFeatures streams exactly the database's features inside two rectangles, in order")
def list_features(c):
    db = _load_db(c)
    for lo, hi, count in (SEED_RECT, SMALL_RECT):
        rect = c.pb2.Rectangle(lo=_point(c, *lo), hi=_point(c, *hi))
        got = _features(c.stub.ListFeatures(rect, timeout=c.timeout))
        left, right = min(lo[1], hi[1]), max(lo[1], hi[1])
        bottom, top = min(lo[0], hi[0]), max(lo[0], hi[0])
        expected = _features(
            f for f in db if left <= f.location.longitude <= right and bottom <= f.location.latitude <= top
        )
        c.eq("number of features in %s-%s" % (lo, hi), count, len(got))
        c.eq("features in %s-%s" % (lo, hi), expected, got)


# Ten database points and one that is not a feature; the summary was computed with the route
# guide's haversine formula: 11 points, 10 features, 670035 m.
ROUTE_DB_INDICES = [0, 5, 10, 20, 30, 40, 50, 60, 70, 80]
ROUTE_EXTRA_POINT = (407000000, -745000000)
ROUTE_SUMMARY = (11, 10, 670035)


def _route(c, db):
    points = [db[i].location for i in ROUTE_DB_INDICES]
    points.insert(5, _point(c, *ROUTE_EXTRA_POINT))
    return points


def _check_summary(c, what, summary):
    c.eq(what + " (point_count, feature_count, distance)", ROUTE_SUMMARY,
         (summary.point_count, summary.feature_count, summary.distance))
    c.check(what + " elapsed_time >= 0", summary.elapsed_time >= 0, summary.elapsed_time)


@case("route_guide", "RecordRoute of a fixed 11-point route, and of an empty route")
def record_route(c):
    db = _load_db(c)
    _check_summary(c, "RecordRoute", c.stub.RecordRoute(iter(_route(c, db)), timeout=c.timeout))
    empty = c.stub.RecordRoute(iter([]), timeout=c.timeout)
    c.eq("RecordRoute([]) (point_count, feature_count, distance)", (0, 0, 0),
         (empty.point_count, empty.feature_count, empty.distance))


@case("route_guide", "RecordRoute.future() and .with_call() of the fixed route")
def record_route_future(c):
    db = _load_db(c)
    fut = c.stub.RecordRoute.future(iter(_route(c, db)), timeout=c.timeout)
    _check_summary(c, "RecordRoute.future().result()", fut.result(timeout=c.timeout))
    summary, call = c.stub.RecordRoute.with_call(iter(_route(c, db)), timeout=c.timeout)
    _check_summary(c, "RecordRoute.with_call()", summary)
    c.eq("RecordRoute.with_call() code", grpc.StatusCode.OK, call.code())


@case("route_guide", "RouteChat returns every earlier note at the same location")
def route_chat(c):
    sent = [
        _note(c, "msg 1", 0, 0),
        _note(c, "msg 2", 1, 0),
        _note(c, "msg 3", 0, 1),
        _note(c, "msg 4", 0, 0),
        _note(c, "msg 5", 1, 1),
        _note(c, "msg 6", 1, 0),
        _note(c, "msg 7", 0, 0),
    ]
    got = _notes(c.stub.RouteChat(iter(sent), timeout=c.timeout))
    expected = [("msg 1", 0, 0), ("msg 2", 1, 0), ("msg 1", 0, 0), ("msg 4", 0, 0)]
    c.eq("RouteChat replies", expected, got)


@case("route_guide", "RouteChat ping-pong: replies arrive while the request stream is still open")
def route_chat_pingpong(c):
    outbox = queue.Queue()

    def requests():
        while True:
            note = outbox.get()
            if note is None:
                return
            yield note

    call = c.stub.RouteChat(requests(), timeout=c.timeout)
    try:
        outbox.put(_note(c, "ping 1", 5, 5))
        outbox.put(_note(c, "ping 2", 5, 5))
        c.eq("first reply before half-close", [("ping 1", 5, 5)], _notes([next(call)]))
        outbox.put(_note(c, "ping 3", 5, 5))
        c.eq("next two replies", [("ping 1", 5, 5), ("ping 2", 5, 5)], _notes([next(call), next(call)]))
        outbox.put(None)
        c.eq("nothing more after half-close", [], _notes(call))
        c.eq("RouteChat code", grpc.StatusCode.OK, call.code())
    finally:
        outbox.put(None)
        call.cancel()


# --- calculator ---------------------------------------------------------------------------------


def _work(c, num1, num2, op):
    return c.pb2.Work(num1=num1, num2=num2, op=op)


@case("calculator", "Calculate ADD, SUBTRACT, MULTIPLY, DIVIDE as in seed 000, plus negatives")
def calculate(c):
    Work = c.pb2.Work
    for num1, num2, op, name, expected in (
        (100, 50, Work.ADD, "100+50", 150),
        (100, 50, Work.SUBTRACT, "100-50", 50),
        (100, 50, Work.MULTIPLY, "100*50", 5000),
        (100, 50, Work.DIVIDE, "100//50", 2),
        (-7, 6, Work.MULTIPLY, "-7*6", -42),
        (-2147483647, -1, Work.ADD, "-2147483647+-1", -2147483648),
    ):
        result = c.stub.Calculate(_work(c, num1, num2, op), timeout=c.timeout)
        c.eq("Calculate " + name, expected, result.val)


@case("calculator", "DIVIDE by 0 -> INVALID_ARGUMENT 'cannot divide by 0'")
def divide_by_zero(c):
    c.rpc_error(
        "Calculate 100//0",
        lambda: c.stub.Calculate(_work(c, 100, 0, c.pb2.Work.DIVIDE), timeout=c.timeout),
        grpc.StatusCode.INVALID_ARGUMENT,
        "cannot divide by 0",
    )


@case("calculator", "an operation outside the enum -> INVALID_ARGUMENT 'invalid operation'")
def invalid_operation(c):
    c.rpc_error(
        "Calculate op=99",
        lambda: c.stub.Calculate(_work(c, 1, 2, 99), timeout=c.timeout),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid operation",
    )


@case("calculator", "GetCitySubjects streams the seed's subjects (UTF-8) for beijing and wuhan")
def get_city_subjects(c):
    for city in ("beijing", "wuhan"):
        got = [s.name for s in c.stub.GetCitySubjects(c.pb2.City(name=city), timeout=c.timeout)]
        c.eq("GetCitySubjects(%s)" % city, common.CITY_SUBJECTS[city], got)


@case("calculator", "GetCitySubjects of an unknown city -> NOT_FOUND")
def unknown_city(c):
    c.rpc_error(
        "GetCitySubjects(tokyo)",
        lambda: list(c.stub.GetCitySubjects(c.pb2.City(name="tokyo"), timeout=c.timeout)),
        grpc.StatusCode.NOT_FOUND,
        "unknown city: tokyo",
    )


@case("calculator", "Accumulate sums a stream of deltas (1..10 -> 55, empty -> 0, future)")
def accumulate(c):
    deltas = [c.pb2.Delta(val=v) for v in range(1, 11)]
    c.eq("Accumulate(1..10)", 55, c.stub.Accumulate(iter(deltas), timeout=c.timeout).val)
    c.eq("Accumulate([])", 0, c.stub.Accumulate(iter([]), timeout=c.timeout).val)
    fut = c.stub.Accumulate.future(iter(deltas), timeout=c.timeout)
    c.eq("Accumulate.future(1..10)", 55, fut.result(timeout=c.timeout).val)


@case("calculator", "GuessNumber answers 'bingo' for each guess in 0..9, nothing otherwise")
def guess_number(c):
    guesses = [3, 15, 7, 12, 0, 9, 10, 3]
    answers = c.stub.GuessNumber(iter(c.pb2.Number(val=g) for g in guesses), timeout=c.timeout)
    got = [(a.val, a.desc) for a in answers]
    c.eq("GuessNumber(%s)" % guesses, [(g, "bingo") for g in guesses if g in common.GUESS_ANSWERS], got)


# --- format data --------------------------------------------------------------------------------

SEED_METADATA = [("ip", "127.0.0.1"), ("hello", "360")]


def _custom(metadata):
    keys = {k for k, _ in SEED_METADATA}
    return [(m[0], m[1]) for m in (metadata or ()) if m[0] in keys]


@case("format_data", "DoFormat upper-cases the text as in seed 004")
def do_format(c):
    reply = c.stub.DoFormat(c.pb2.Data(text="hello,world!"), timeout=c.timeout)
    c.eq("DoFormat('hello,world!').text", "HELLO,WORLD!", reply.text)


@case("format_data", "DoFormat.with_call with seed 004's metadata; it comes back as initial metadata")
def format_metadata(c):
    reply, call = c.stub.DoFormat.with_call(
        c.pb2.Data(text="with call"), metadata=SEED_METADATA, timeout=c.timeout
    )
    c.eq("DoFormat.with_call reply.text", "WITH CALL", reply.text)
    c.eq("call.initial_metadata() ip/hello", SEED_METADATA, _custom(call.initial_metadata()))


@case("format_data", "DoFormat.future with seed 004's metadata: result() and initial_metadata()")
def format_future(c):
    fut = c.stub.DoFormat.future(c.pb2.Data(text="future"), metadata=SEED_METADATA, timeout=c.timeout)
    c.eq("DoFormat.future().result().text", "FUTURE", fut.result(timeout=c.timeout).text)
    c.eq("future.initial_metadata() ip/hello", SEED_METADATA, _custom(fut.initial_metadata()))


# --- main ---------------------------------------------------------------------------------------


def run_case(name, channel, modules, args):
    service, fn, _ = CASES[name]
    pb2, pb2_grpc = modules[service]
    c = Ctx(name, channel, pb2, pb2_grpc, service, args)
    try:
        fn(c)
    except CheckFailed:
        pass
    except grpc.RpcError as e:
        c.fail("no RPC error", _status(e.code(), e.details()), "unexpected RpcError")
    except Exception as e:  # a broken case must report, not kill the other cases
        c.fail("no exception", "%s: %s" % (type(e).__name__, e), "unexpected exception")
    if c.passed + c.failed == 0:
        c.fail("at least one check", "none", "case ran no check")
    return c.failed == 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="grpcio interop clients (see the module docstring)")
    parser.add_argument("--service", choices=sorted(common.SERVICES) + ["all"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--case", action="append", default=[], help="case names, repeatable or comma-separated (default: all)"
    )
    parser.add_argument("--db", default=common.DEFAULT_DB, help="route_guide_db.json for expected values")
    parser.add_argument("--gen", default=common.DEFAULT_GEN_DIR, help="folder of the generated modules")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of each call, seconds")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)

    if args.list:
        for name, (service, _, description) in CASES.items():
            print("%-12s %-22s %s" % (service, name, description))
        return 0
    if args.service is None or args.port is None:
        parser.error("--service and --port are required")

    services = sorted(common.SERVICES) if args.service == "all" else [args.service]
    names = [n for spec in args.case for n in spec.split(",") if n]
    if not names:
        names = [n for n, (s, _, _) in CASES.items() if s in services]
    for n in names:
        if n not in CASES:
            parser.error("unknown case %r (see --list)" % n)
        if CASES[n][0] not in services:
            parser.error("case %r belongs to service %s, not %s" % (n, CASES[n][0], args.service))

    modules = {s: common.load_modules(args.gen, s) for s in services}
    target = "%s:%d" % (args.host, args.port)
    with grpc.insecure_channel(target, options=common.MESSAGE_OPTIONS) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=args.timeout)
        except grpc.FutureTimeoutError:
            print(
                "FAIL connect: expected a connection got none within %.0f s (%s)" % (args.timeout, target),
                flush=True,
            )
            return 1
        results = [run_case(n, channel, modules, args) for n in names]
    passed = sum(results)
    print("%d/%d cases passed" % (passed, len(results)), file=sys.stderr, flush=True)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
