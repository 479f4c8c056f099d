# mcpwatch — make targets. `make test` is what CI runs (.ci/run).
GO        ?= go
BIN       ?= bin/mcpwatch
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: all build run test test-short lint bench fuzz clean plugin

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mcpwatch

# The Grafana plugin into dashboards/plugin/dist/: plugin.json, module.js, gpx_mcpwatch_<os>_<arch>
# (needs Node 20+; installs npm packages on first use). See docs/soc-guide.md.
plugin:
	GO=$(GO) bash dashboards/plugin/build.sh

# Run mcpwatch on its embedded defaults (broker and store under ./mcpwatch-data).
run:
	$(GO) run ./cmd/mcpwatch run $(ARGS)

# Everything CI runs: installs and starts ClickHouse (Debian's package) under a temp dir, then
# go vet and the whole test suite with the race detector, integration tests included.
test:
	bash scripts/test.sh

# Unit tests only, no services: quick feedback while developing.
test-short:
	$(GO) test -count=1 ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Benchmarks, side by side in one run. Figures go in the issue notes, never in tests.
bench:
	bash scripts/bench.sh

# Fuzz each parser (JSON-RPC and its scanner against the reference decoder, SSE, the tap's legacy endpoint
# rewriting, secret masking, spool recovery, OTLP, the event codec) and the SIEM formats (RFC 5424, CEF, LEEF)
# for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzJSONRPCParse$$' -fuzztime $(FUZZTIME) ./collector/jsonrpc/
	$(GO) test -run '^$$' -fuzz '^FuzzScannerMatchesReference$$' -fuzztime $(FUZZTIME) ./collector/jsonrpc/
	$(GO) test -run '^$$' -fuzz '^FuzzSSEParser$$' -fuzztime $(FUZZTIME) ./collector/sse/
	$(GO) test -run '^$$' -fuzz '^FuzzEndpointWatcher$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./collector/httptap/
	$(GO) test -run '^$$' -fuzz '^FuzzMask$$' -fuzztime $(FUZZTIME) ./collector/capture/
	$(GO) test -run '^$$' -fuzz '^FuzzArgumentsMember$$' -fuzztime $(FUZZTIME) ./collector/capture/
	$(GO) test -run '^$$' -fuzz '^FuzzSpoolDamage$$' -fuzztime $(FUZZTIME) ./collector/spool/
	$(GO) test -run '^$$' -fuzz '^FuzzOTLPDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./collector/otlp/
	$(GO) test -run '^$$' -fuzz '^FuzzRFC5424$$' -fuzztime $(FUZZTIME) ./alerting/format/
	$(GO) test -run '^$$' -fuzz '^FuzzCEF$$' -fuzztime $(FUZZTIME) ./alerting/format/
	$(GO) test -run '^$$' -fuzz '^FuzzLEEF$$' -fuzztime $(FUZZTIME) ./alerting/format/
	$(GO) test -run '^$$' -fuzz '^FuzzParseList$$' -fuzztime $(FUZZTIME) ./enricher/drift/
	$(GO) test -run '^$$' -fuzz '^FuzzGlob$$' -fuzztime $(FUZZTIME) ./enricher/inventory/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./enricher/inventory/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./enricher/policy/
	$(GO) test -run '^$$' -fuzz '^FuzzInspect$$' -fuzztime $(FUZZTIME) ./enricher/inspect/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCursor$$' -fuzztime $(FUZZTIME) ./internal/api/
	$(GO) test -run '^$$' -fuzz '^FuzzParseTime$$' -fuzztime $(FUZZTIME) ./internal/api/
	$(GO) test -run '^$$' -fuzz '^FuzzEventCodec$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./schemas/

clean:
	rm -rf bin
