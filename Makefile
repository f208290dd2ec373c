# The balancer's build, run and test entry points. `make help` lists them.
SHELL := /bin/bash
GO ?= go
GOROOT := $(shell $(GO) env GOROOT)
PORT ?= 8787
# The dashboard's page, CSS and JS are embedded in the program: a change to them rebuilds it.
GO_SOURCES := $(shell find worker internal durable -name '*.go' -not -name '*_test.go' 2>/dev/null) go.mod go.sum \
	$(shell find worker internal durable -path '*/dashboard/*' -type f 2>/dev/null)
WRANGLER := node_modules/.bin/wrangler

.PHONY: help build deploy run dev test test-unit bench profile-workerd fuzz check fmt vet clean deps

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

HOST_SOURCES := $(shell find host -name '*.go' -not -name '*_test.go' 2>/dev/null)

build: build/app.wasm build/worker.mjs build/wasm_exec.js build/evmlb build/evmlb-serve ## build/app.wasm (GOOS=js GOARCH=wasm), the JS entry files, build/evmlb and build/evmlb-serve

build/evmlb: $(GO_SOURCES) $(HOST_SOURCES)
	@mkdir -p build
	@echo "make: compiling build/evmlb, the operator's command (serve, validate, secrets, status, deploy-check, keys)"
	$(GO) build -trimpath -o $@ ./host

# serve alone: what make run needs, without the Cloudflare SDK that the operator's commands link.
build/evmlb-serve: $(GO_SOURCES) $(HOST_SOURCES)
	@mkdir -p build
	@echo "make: compiling build/evmlb-serve, the wazero host (about half a minute on a fresh machine)"
	$(GO) build -trimpath -o $@ ./host/cmd/evmlb-serve

build/app.wasm: $(GO_SOURCES)
	@mkdir -p build
	@echo "make: compiling build/app.wasm, the balancer for GOOS=js GOARCH=wasm (about half a minute on a fresh machine)"
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags="-s -w" -o $@ ./worker

build/worker.mjs: worker/shim/worker.mjs
	@mkdir -p build
	cp $< $@

build/wasm_exec.js: $(GOROOT)/lib/wasm/wasm_exec.js
	@mkdir -p build
	cp $< $@

deploy: build node_modules/.package-lock.json ## check (wasm size vs PLAN=free|paid, validate, migrations), then wrangler deploy
	build/evmlb deploy-check --plan $${PLAN:-free}
	$(WRANGLER) deploy

run: build/app.wasm build/evmlb-serve ## serve the balancer on 127.0.0.1:$(PORT) in the wazero host (no Node, no account)
	@echo "make: starting the wazero host (it compiles app.wasm for this machine on its first start, then caches it)"
	build/evmlb-serve -addr 127.0.0.1:$(PORT)

dev: build node_modules/.package-lock.json ## serve the balancer on 127.0.0.1:$(PORT) in workerd (wrangler dev)
	PORT=$(PORT) scripts/dev.sh

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: ## install what the tests need: npm dev dependencies (wrangler, anvil), Go modules, Debian's chromium
	GO=$(GO) scripts/deps.sh

test: build deps ## every test: unit, fuzz seeds, end to end in the wazero host and in workerd against anvil
	EVMLB_E2E_REQUIRED=1 $(GO) test -race -count=1 -timeout 55m ./...

test-unit: ## the native unit tests only
	$(GO) test -race -count=1 ./internal/... ./durable/... ./worker/... ./host/...

bench: build node_modules/.package-lock.json ## latency and throughput through each host and directly; app.wasm size
	$(GO) run ./e2e/cmd/bench

profile-workerd: build node_modules/.package-lock.json ## a V8 CPU profile of the balancer in workerd under load (PROFILE_REQUESTS, PROFILE_CONCURRENCY, PROFILE_CALLDATA_KIB)
	scripts/profile-workerd.sh

fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	scripts/fuzz.sh $${FUZZTIME:-20s}

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

vet: ## go vet, natively and for js/wasm
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./worker/... ./e2e/testdata/floorgo ./e2e/testdata/cachego

check: build vet ## build every target, vet, gofmt and go mod tidy; fail on a dirty tree
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) mod tidy
	$(GO) build ./...
	@git diff --exit-code -- go.mod go.sum || { echo "go mod tidy changed go.mod/go.sum"; exit 1; }

clean: ## remove build outputs and local state
	rm -rf build .evmlb .wrangler
