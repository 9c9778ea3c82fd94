#!/usr/bin/env python3
"""grpcio-reflection against a server that offers server reflection (ours, in Rust): discover
the helloworld and route guide services with ProtoReflectionDescriptorDatabase, build a
descriptor pool from what the server sends, and call methods with message classes made from
that pool alone (no generated modules are imported).

Usage: reflection_client.py --port P [--host 127.0.0.1] [--timeout SECONDS] [--gen DIR] [--db F]

Every check prints one line, "ok <what>" or "FAIL <what>: expected <x> got <y>". Exit status: 0
if every check passed, 1 if any failed. Every call carries a deadline, so nothing hangs.
"""

import argparse
import sys

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

# Every service and method the server must describe.
EXPECTED = {
    "helloworld.Greeter": ["SayHello", "SayHelloAgain"],
    "routeguide.RouteGuide": ["GetFeature", "ListFeatures", "RecordRoute", "RouteChat"],
}

failed = 0


def check(what, expected, got):
    global failed
    if expected == got:
        print("ok %s" % what, flush=True)
    else:
        failed += 1
        print("FAIL %s: expected %r got %r" % (what, expected, got), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--timeout", type=float, default=30.0)
    # Accepted for the test harness's sake (run_script passes them); not used.
    parser.add_argument("--gen")
    parser.add_argument("--db")
    args = parser.parse_args(argv)

    channel = grpc.insecure_channel("%s:%d" % (args.host, args.port))
    grpc.channel_ready_future(channel).result(timeout=args.timeout)

    db = ProtoReflectionDescriptorDatabase(channel)
    services = db.get_services()
    print("services: %s" % ", ".join(services), flush=True)
    pool = descriptor_pool.DescriptorPool(db)

    for name, methods in EXPECTED.items():
        check("%s listed" % name, True, name in services)
        service = pool.FindServiceByName(name)
        check("%s methods" % name, sorted(methods), sorted(m.name for m in service.methods))
        for method in service.methods:
            # Each message type resolves in the pool, fields and all.
            for message in (method.input_type, method.output_type):
                found = pool.FindMessageTypeByName(message.full_name)
                check("%s.%s: %s" % (name, method.name, message.full_name), message.full_name, found.full_name)

    # Every listed service, the reflection service itself included, is described.
    for name in services:
        check("%s described" % name, name, pool.FindServiceByName(name).full_name)
    # A file by name, and a symbol that is not there.
    check("route_guide.proto by name", "routeguide", pool.FindFileByName("route_guide.proto").package)
    try:
        pool.FindMessageTypeByName("routeguide.NoSuchThing")
        check("unknown symbol is missing", "KeyError", "found")
    except KeyError:
        check("unknown symbol is missing", True, True)

    # Dynamic calls with classes built from the reflected descriptors.
    greeter = pool.FindServiceByName("helloworld.Greeter")
    say_hello = greeter.methods_by_name["SayHello"]
    request_class = GetMessageClass(say_hello.input_type)
    reply_class = GetMessageClass(say_hello.output_type)
    call = channel.unary_unary(
        "/helloworld.Greeter/SayHello",
        request_serializer=request_class.SerializeToString,
        response_deserializer=reply_class.FromString,
    )
    reply = call(request_class(name="reflection"), timeout=args.timeout)
    check("dynamic SayHello", "hello reflection", reply.message)

    route_guide = pool.FindServiceByName("routeguide.RouteGuide")
    get_feature = route_guide.methods_by_name["GetFeature"]
    point_class = GetMessageClass(get_feature.input_type)
    feature_class = GetMessageClass(get_feature.output_type)
    call = channel.unary_unary(
        "/routeguide.RouteGuide/GetFeature",
        request_serializer=point_class.SerializeToString,
        response_deserializer=feature_class.FromString,
    )
    feature = call(point_class(latitude=409146138, longitude=-746188906), timeout=args.timeout)
    check(
        "dynamic GetFeature",
        "Berkshire Valley Management Area Trail, Jefferson, NJ, USA",
        feature.name,
    )
    check("dynamic GetFeature location", 409146138, feature.location.latitude)

    list_features = route_guide.methods_by_name["ListFeatures"]
    rectangle_class = GetMessageClass(list_features.input_type)
    call = channel.unary_stream(
        "/routeguide.RouteGuide/ListFeatures",
        request_serializer=rectangle_class.SerializeToString,
        response_deserializer=GetMessageClass(list_features.output_type).FromString,
    )
    rectangle = rectangle_class()
    rectangle.lo.latitude, rectangle.lo.longitude = 400000000, -750000000
    rectangle.hi.latitude, rectangle.hi.longitude = 420000000, -730000000
    features = list(call(rectangle, timeout=args.timeout))
    check("dynamic ListFeatures streams features", True, len(features) > 0)

    channel.close()
    print("%s: %d failed" % ("FAIL" if failed else "PASS", failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
