// The RouteGuide page: calls a grpc-sync server through gRPC-Web (connect-web's transport),
// with the service and messages that protoc-gen-es generated from proto/route_guide.proto.
//
// Query parameters: `server` (default http://<this host>:50051), `auto=1` to run every call
// once on load (the browser test does).

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { RouteGuide } from "../gen/route_guide_pb.js";

const params = new URLSearchParams(location.search);
const server = params.get("server") ?? `http://${location.hostname}:50051`;
const client = createClient(RouteGuide, createGrpcWebTransport({ baseUrl: server }));

const $ = (id) => document.getElementById(id);
$("server").textContent = server;

// "INVALID_ARGUMENT (3)", as gRPC names codes.
function codeName(code) {
  const name = Code[code] ?? "UNKNOWN";
  return `${name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase()} (${code})`;
}

function describe(err) {
  const e = ConnectError.from(err);
  return `${codeName(e.code)}: ${e.rawMessage}`;
}

function degrees(e7) {
  return (e7 / 1e7).toFixed(4);
}

async function getFeature() {
  const latitude = Number($("lat").value);
  const longitude = Number($("lng").value);
  try {
    const f = await client.getFeature({ latitude, longitude });
    const where = `${degrees(f.location.latitude)}, ${degrees(f.location.longitude)}`;
    $("feature").textContent = f.name ? `${f.name} (at ${where})` : `no feature at ${where}`;
  } catch (err) {
    $("feature").textContent = `error: ${describe(err)}`;
  }
}

async function listFeatures() {
  const list = $("features");
  list.replaceChildren();
  $("count").textContent = "listing…";
  const rect = {
    lo: { latitude: 400000000, longitude: -750000000 },
    hi: { latitude: 420000000, longitude: -730000000 },
  };
  let n = 0;
  try {
    for await (const f of client.listFeatures(rect)) {
      const li = document.createElement("li");
      li.textContent = `${f.name || "(unnamed)"} at ${degrees(f.location.latitude)}, ${degrees(f.location.longitude)}`;
      list.append(li);
      n++;
    }
    $("count").textContent = `${n} features`;
  } catch (err) {
    $("count").textContent = `error after ${n} features: ${describe(err)}`;
  }
}

async function badCall() {
  try {
    await client.getFeature({ latitude: 1000000000, longitude: 0 });
    $("error").textContent = "no error?";
  } catch (err) {
    $("error").textContent = describe(err);
  }
}

$("get-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  getFeature();
});
$("list").addEventListener("click", listFeatures);
$("bad").addEventListener("click", badCall);

if (params.get("auto") === "1") {
  $("status").textContent = "running";
  await getFeature();
  await listFeatures();
  await badCall();
}
$("status").textContent = "done";
