"""What servers.py and clients.py share: where the generated modules live, the seeds' data and
the behaviour contract (greeting strings, test markers) both sides must agree on."""

import importlib
import json
import math
import os
import signal
import sys
import threading

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_GEN_DIR = os.environ.get("GRPC_SYNC_PY_GEN") or os.path.join(REPO_ROOT, "target", "python-gen")
DEFAULT_DB = os.path.join(REPO_ROOT, "tests", "data", "route_guide_db.json")

# service flag -> (proto file stem, service name in the proto)
SERVICES = {
    "helloworld": ("helloworld", "Greeter"),
    "route_guide": ("route_guide", "RouteGuide"),
    "calculator": ("calculator", "Demo"),
    "format_data": ("format_data", "FormatData"),
}

# Both sides allow 8 MiB so that a 4 MiB message (plus framing) passes in both directions.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
MESSAGE_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]

# --- helloworld (seed 001: both methods answer 'hello {name}') ---------------------------------


def greeting(name):
    return "hello {msg}".format(msg=name)


def greeting_again(name):
    return "hello {msg}".format(msg=name)


# A request name "sleep:<ms>" makes the server wait that long (or until the call ends) before
# answering: a deterministic slow call for deadline and cancellation tests.
SLEEP_MARKER = "sleep:"
# A request name "abort:<CODE>:<details>" makes the server fail the call with that status.
ABORT_MARKER = "abort:"
# Request metadata keys with this prefix come back: ASCII ones as initial metadata, "-bin" ones
# as trailing metadata, so one call checks metadata in both directions and both header blocks.
ECHO_PREFIX = "x-echo-"

# --- calculator (seed 000) ----------------------------------------------------------------------

CITY_SUBJECTS = {
    "beijing": ["python", "c++", "go", "测试", "运维", "产品经理", "java", "php"],
    "shanghai": ["python", "c++", "go", "测试", "运维", "java", "php"],
    "wuhan": ["python", "java", "测试"],
}
GUESS_ANSWERS = list(range(10))

# --- route guide (seed 002, gRPC's standard example) --------------------------------------------


def load_modules(gen_dir, service):
    """Imports <stem>_pb2 and <stem>_pb2_grpc for a service flag from the generated folder."""
    if not os.path.isdir(gen_dir):
        sys.exit("generated modules not found in %s: run tests/python/gen.py %s first" % (gen_dir, gen_dir))
    if gen_dir not in sys.path:
        sys.path.insert(0, gen_dir)
    stem, _ = SERVICES[service]
    try:
        return importlib.import_module(stem + "_pb2"), importlib.import_module(stem + "_pb2_grpc")
    except ImportError as e:
        sys.exit("cannot import the generated %s modules from %s: %s" % (stem, gen_dir, e))


def service_full_name(pb2, service):
    """'package.Service' as the proto declares it, so paths follow whatever package it uses."""
    return pb2.DESCRIPTOR.services_by_name[SERVICES[service][1]].full_name


def read_route_guide_db(path, pb2):
    with open(path, encoding="utf-8") as f:
        return [
            pb2.Feature(
                name=item["name"],
                location=pb2.Point(
                    latitude=item["location"]["latitude"],
                    longitude=item["location"]["longitude"],
                ),
            )
            for item in json.load(f)
        ]


def get_feature(db, point):
    for feature in db:
        if feature.location == point:
            return feature
    return None


def get_distance(start, end):
    """Distance in metres between two points (haversine, as in gRPC's route guide example)."""
    coord_factor = 10000000.0
    lat_1 = start.latitude / coord_factor
    lat_2 = end.latitude / coord_factor
    lon_1 = start.longitude / coord_factor
    lon_2 = end.longitude / coord_factor
    lat_rad_1 = math.radians(lat_1)
    lat_rad_2 = math.radians(lat_2)
    delta_lat_rad = math.radians(lat_2 - lat_1)
    delta_lon_rad = math.radians(lon_2 - lon_1)

    # Formula is based on http://mathforum.org/library/drmath/view/51879.html
    a = pow(math.sin(delta_lat_rad / 2), 2) + (
        math.cos(lat_rad_1) * math.cos(lat_rad_2) * pow(math.sin(delta_lon_rad / 2), 2)
    )
    c = 2 * math.atan2(math.sqrt(a), math.sqrt(1 - a))
    R = 6371000  # metres
    return R * c


# --- serving ------------------------------------------------------------------------------------


def serve_until_stdin_closes(server, port):
    """Prints "PORT <n>" (the harness waits for it), then serves until stdin reaches end of
    file (the parent test is gone) or SIGTERM/SIGINT, and stops the server."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_stdin():
        # A raw os.read (not sys.stdin) so that exiting on a signal never waits on the
        # buffered reader's lock.
        try:
            while os.read(sys.stdin.fileno(), 65536):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()
    # Short waits keep the main thread responsive to signals.
    while not stop.wait(0.5):
        pass
    server.stop(grace=None).wait(5)
