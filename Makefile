# rcbridge — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
PKGS := ./...
OPCUA_SERVER_DIR := integration/opcua-server
FUZZTIME ?= 2m

.PHONY: help build test test-integration fuzz bench bench-integration lint npm-deps

help: ## List the targets.
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## Build the binaries into bin/.
	$(GO) build -o bin/ ./cmd/...

test: ## Unit and in-process integration tests, race detector on (the CI test command).
	$(GO) test -race -count=1 -timeout 10m $(PKGS)

npm-deps: ## Install the node-opcua test server's packages from the lock file (needs Node.js >= 20 and npm).
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "Node.js and npm are needed by the integration tests (.ci/run installs them)"; exit 1; }
	cd $(OPCUA_SERVER_DIR) && npm ci --no-audit --no-fund --loglevel=error

test-integration: npm-deps ## End-to-end tests against external peers (node-opcua, mosquitto).
	@command -v mosquitto >/dev/null || { echo "mosquitto not installed (apt-get install -y mosquitto)"; exit 1; }
	$(GO) test -race -count=1 -timeout 20m -tags integration ./integration/...

fuzz: ## Run every fuzz target for FUZZTIME each (default 2m).
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

bench: ## Run the benchmarks whose figures the README quotes.
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m $(PKGS)

bench-integration: npm-deps ## Run the benchmarks against node-opcua (build tag integration).
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m -tags integration ./integration/...

lint: ## go vet and gofmt.
	$(GO) vet $(PKGS)
	$(GO) vet -tags integration ./integration/...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
