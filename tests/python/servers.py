#!/usr/bin/env python3
"""grpcio servers for grpc-sync's interop tests, ported from the seed tutorials.

Usage: servers.py --service {helloworld,route_guide,calculator,format_data,all}
                  [--port 0] [--host 127.0.0.1] [--db route_guide_db.json] [--gen DIR]
                  [--reflection]

With --reflection it also serves grpcio-reflection's grpc.reflection.v1alpha.ServerReflection
over the services it runs.

Once serving it prints exactly one line, "PORT <n>", to stdout. It stops when stdin reaches end
of file (the parent dropped its end of the pipe) or on SIGTERM/SIGINT. Diagnostics go to stderr.
"""

import argparse
import os
import sys
import threading
import time
from concurrent import futures

import grpc

import common


def _wait_or_cancelled(context, seconds):
    """Sleeps up to `seconds`, returning early if the call ends (deadline, cancel) first, so a
    slow call does not hold a worker after the client has gone."""
    done = threading.Event()
    if context.add_callback(done.set):
        done.wait(seconds)


# --- helloworld (seed 001) ----------------------------------------------------------------------


def make_greeter(pb2, pb2_grpc, tag=None):
    class Greeter(pb2_grpc.GreeterServicer):
        def SayHello(self, request, context):
            return self._answer(request, context, common.greeting)

        def SayHelloAgain(self, request, context):
            return self._answer(request, context, common.greeting_again)

        def _answer(self, request, context, greet):
            self._echo_metadata(context, tag)
            name = request.name
            if name.startswith(common.SLEEP_MARKER):
                _wait_or_cancelled(context, int(name[len(common.SLEEP_MARKER):]) / 1000.0)
            elif name.startswith(common.ABORT_MARKER):
                code_name, _, details = name[len(common.ABORT_MARKER):].partition(":")
                code = grpc.StatusCode.__members__.get(code_name)
                if code is None or code == grpc.StatusCode.OK:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown status code " + code_name)
                context.abort(code, details)
            return pb2.HelloReply(message=greet(name))

        @staticmethod
        def _echo_metadata(context, tag):
            echoed = [(k, v) for k, v in context.invocation_metadata() if k.startswith(common.ECHO_PREFIX)]
            initial = [(k, v) for k, v in echoed if not k.endswith("-bin")]
            trailing = [(k, v) for k, v in echoed if k.endswith("-bin")]
            if tag is not None:
                # Which server answered, for the load-balancing tests.
                trailing.append(("x-served-by", tag))
            if initial:
                context.send_initial_metadata(initial)
            if trailing:
                context.set_trailing_metadata(trailing)

    return Greeter(), pb2_grpc.add_GreeterServicer_to_server


# --- route guide (seed 002) ---------------------------------------------------------------------


def make_route_guide(pb2, pb2_grpc, db_path):
    db = common.read_route_guide_db(db_path, pb2)

    class RouteGuide(pb2_grpc.RouteGuideServicer):
        def GetFeature(self, request, context):
            feature = common.get_feature(db, request)
            if feature is None:
                return pb2.Feature(name="", location=request)
            return feature

        def ListFeatures(self, request, context):
            left = min(request.lo.longitude, request.hi.longitude)
            right = max(request.lo.longitude, request.hi.longitude)
            top = max(request.lo.latitude, request.hi.latitude)
            bottom = min(request.lo.latitude, request.hi.latitude)
            for feature in db:
                if (
                    feature.location.longitude >= left
                    and feature.location.longitude <= right
                    and feature.location.latitude >= bottom
                    and feature.location.latitude <= top
                ):
                    yield feature

        def RecordRoute(self, request_iterator, context):
            point_count = 0
            feature_count = 0
            distance = 0.0
            prev_point = None

            start_time = time.time()
            for point in request_iterator:
                point_count += 1
                if common.get_feature(db, point):
                    feature_count += 1
                if prev_point is not None:
                    distance += common.get_distance(prev_point, point)
                prev_point = point

            elapsed_time = time.time() - start_time
            return pb2.RouteSummary(
                point_count=point_count,
                feature_count=feature_count,
                distance=int(distance),
                elapsed_time=int(elapsed_time),
            )

        def RouteChat(self, request_iterator, context):
            prev_notes = []
            for new_note in request_iterator:
                for prev_note in prev_notes:
                    if prev_note.location == new_note.location:
                        yield prev_note
                prev_notes.append(new_note)

    return RouteGuide(), pb2_grpc.add_RouteGuideServicer_to_server


# --- calculator: seed 000's Demo service --------------------------------------------------------


def make_calculator(pb2, pb2_grpc):
    class Demo(pb2_grpc.DemoServicer):
        def Calculate(self, request, context):
            if request.op == pb2.Work.ADD:
                return pb2.Result(val=request.num1 + request.num2)
            elif request.op == pb2.Work.SUBTRACT:
                return pb2.Result(val=request.num1 - request.num2)
            elif request.op == pb2.Work.MULTIPLY:
                return pb2.Result(val=request.num1 * request.num2)
            elif request.op == pb2.Work.DIVIDE:
                if request.num2 == 0:
                    context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
                    context.set_details("cannot divide by 0")
                    return pb2.Result()
                return pb2.Result(val=request.num1 // request.num2)
            else:
                context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
                context.set_details("invalid operation")
                return pb2.Result()

        def GetCitySubjects(self, request, context):
            subjects = common.CITY_SUBJECTS.get(request.name)
            if subjects is None:
                # The seed would crash here (iterating None); a clear status is more useful.
                context.abort(grpc.StatusCode.NOT_FOUND, "unknown city: " + request.name)
            for subject in subjects:
                yield pb2.Subject(name=subject)

        def Accumulate(self, request_iterator, context):
            total = 0
            for num in request_iterator:
                total += num.val
            return pb2.Sum(val=total)

        def GuessNumber(self, request_iterator, context):
            for num in request_iterator:
                if num.val in common.GUESS_ANSWERS:
                    yield pb2.Answer(val=num.val, desc="bingo")

    return Demo(), pb2_grpc.add_DemoServicer_to_server


# --- format data (seed 004) ---------------------------------------------------------------------

# Metadata that the transport adds rather than the caller; everything else is echoed.
_TRANSPORT_KEYS = ("user-agent", "te", "content-type")


def make_format_data(pb2, pb2_grpc):
    class FormatData(pb2_grpc.FormatDataServicer):
        def DoFormat(self, request, context):
            # Seed 004's client prints call.initial_metadata() and sees its own ('ip', ...),
            # ('hello', ...) pairs: the server sends the caller's metadata back.
            custom = [
                (k, v)
                for k, v in context.invocation_metadata()
                if not k.startswith((":", "grpc-")) and k not in _TRANSPORT_KEYS
            ]
            if custom:
                context.send_initial_metadata(custom)
            return pb2.Data(text=request.text.upper())

    return FormatData(), pb2_grpc.add_FormatDataServicer_to_server


# --- main ---------------------------------------------------------------------------------------


def build_server(services, gen_dir, db_path, max_workers, reflection=False, tag=None):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), options=common.MESSAGE_OPTIONS)
    names = []
    for service in services:
        pb2, pb2_grpc = common.load_modules(gen_dir, service)
        names.append(common.service_full_name(pb2, service))
        if service == "helloworld":
            servicer, add = make_greeter(pb2, pb2_grpc, tag)
        elif service == "route_guide":
            servicer, add = make_route_guide(pb2, pb2_grpc, db_path)
        elif service == "calculator":
            servicer, add = make_calculator(pb2, pb2_grpc)
        else:
            servicer, add = make_format_data(pb2, pb2_grpc)
        add(servicer, server)
    if reflection:
        from grpc_reflection.v1alpha import reflection as grpc_reflection

        grpc_reflection.enable_server_reflection(names + [grpc_reflection.SERVICE_NAME], server)
    return server


def main(argv=None):
    parser = argparse.ArgumentParser(description="grpcio interop servers (one or all services)")
    parser.add_argument("--service", required=True, choices=sorted(common.SERVICES) + ["all"])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db", default=common.DEFAULT_DB, help="route_guide_db.json")
    parser.add_argument("--gen", default=common.DEFAULT_GEN_DIR, help="folder of the generated modules")
    parser.add_argument("--max-workers", type=int, default=10)
    parser.add_argument("--reflection", action="store_true", help="also serve server reflection")
    parser.add_argument("--tag", help="helloworld answers carry trailing metadata x-served-by: TAG")
    args = parser.parse_args(argv)

    services = sorted(common.SERVICES) if args.service == "all" else [args.service]
    if "route_guide" in services and not os.path.isfile(args.db):
        sys.exit("servers.py: route guide database %s not found (pass --db)" % args.db)

    server = build_server(services, args.gen, args.db, args.max_workers, args.reflection, args.tag)
    port = server.add_insecure_port("%s:%d" % (args.host, args.port))
    if port == 0:
        sys.exit("servers.py: could not bind %s:%d" % (args.host, args.port))
    server.start()
    print("servers.py: serving %s on %s:%d" % (",".join(services), args.host, port), file=sys.stderr)
    sys.stderr.flush()
    common.serve_until_stdin_closes(server, port)


if __name__ == "__main__":
    main()
