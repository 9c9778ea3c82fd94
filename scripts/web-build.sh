#!/usr/bin/env bash
# Builds the route_guide gRPC-Web page (examples/web/) into target/web-test/dist, as the
# browser test does: npm ci from the checked-in lock (once per lock), code for
# proto/route_guide.proto from protoc-gen-es, a bundle from esbuild. Needs Node.js 18+ and npm.
# Then: cargo run --example route_guide_server -- --grpc-web, and open the URL it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "error: $*" >&2; exit 1; }
command -v npm >/dev/null || die "npm is not installed (Debian/Ubuntu: apt-get install nodejs npm)"
dir="${CARGO_TARGET_DIR:-target}/web-test"
mkdir -p "$dir/src" "$dir/proto"
if ! cmp -s examples/web/package-lock.json "$dir/grpc-sync-package-lock.json" \
    || [ ! -e "$dir/node_modules/.bin/esbuild" ]; then
  cp examples/web/package.json examples/web/package-lock.json "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund)
  cp examples/web/package-lock.json "$dir/grpc-sync-package-lock.json"
fi
cp examples/web/package.json examples/web/buf.gen.yaml "$dir/"
cp examples/web/src/index.html examples/web/src/main.js "$dir/src/"
cp examples/web/test/drive.mjs "$dir/"
cp proto/route_guide.proto "$dir/proto/"
(cd "$dir" && npm run build)
echo "built $dir/dist"
