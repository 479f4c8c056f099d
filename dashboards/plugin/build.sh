#!/usr/bin/env bash
# `make plugin`: build mcpwatch's Grafana plugin into dashboards/plugin/dist/ — plugin.json and
# module.js (the frontend, bundled by create-plugin's webpack config) and
# gpx_mcpwatch_<os>_<arch> (the Go backend). Copy dist/ to Grafana's plugins directory as
# mcpwatch-mcpwatch-datasource/. Needs Go and Node 20 or later; npm packages are installed
# (exactly as package-lock.json says) into node_modules/ the first time and when the lock
# file changes. GOOS/GOARCH pick another backend target, e.g. GOARCH=arm64.
set -euo pipefail
cd "$(dirname "$0")"
GO="${GO:-go}"
GOOS="${GOOS:-$("$GO" env GOOS)}"
GOARCH="${GOARCH:-$("$GO" env GOARCH)}"

lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat node_modules/.mcpwatch-lock 2>/dev/null)" != "$lock_sum" ]; then
  echo "== npm ci (dashboards/plugin/node_modules)"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.mcpwatch-lock
fi

echo "== frontend: dist/module.js, dist/plugin.json"
# create-plugin's webpack config is TypeScript loaded by ts-node; on Node 20 it needs CommonJS.
TS_NODE_COMPILER_OPTIONS='{"module":"commonjs","moduleResolution":"node"}' npm run --silent build

version="$(node -p 'require("./package.json").version')"
bin="dist/gpx_mcpwatch_${GOOS}_${GOARCH}"
echo "== backend: $bin"
# The build info gives the plugin's HTTP requests a User-Agent naming the plugin and version.
build_info="{\"pluginID\":\"mcpwatch-mcpwatch-datasource\",\"version\":\"$version\",\"time\":$(date +%s)000}"
CGO_ENABLED=0 GOOS="$GOOS" GOARCH="$GOARCH" "$GO" build -trimpath \
  -ldflags "-w -s -X 'github.com/grafana/grafana-plugin-sdk-go/build/buildinfo.buildInfoJSON=$build_info'" \
  -o "$bin" ./pkg

for f in dist/plugin.json dist/module.js "$bin"; do
  [ -s "$f" ] || { echo "missing $f" >&2; exit 1; }
done
echo "== built dashboards/plugin/dist/ ($(ls dist | tr '\n' ' '))"
