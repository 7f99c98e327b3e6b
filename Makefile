# Auxo. `make run` starts the local world and the operator; `make test` installs everything and runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Node.js 24+: the machine's when new enough, else the pinned one that hack/tools.sh installs into the tool cache.
NODE_BIN := $(shell bash hack/tools.sh env | sed -n 's/^AUXO_NODE_BIN=//p')
export PATH := $(NODE_BIN):$(CURDIR)/node_modules/.bin:$(PATH)
# The pinned Node.js trusts only its bundled CAs; use the system's store too (machines behind a TLS proxy need it).
ifeq ($(NODE_EXTRA_CA_CERTS),)
ifneq ($(wildcard /etc/ssl/certs/ca-certificates.crt),)
export NODE_EXTRA_CA_CERTS := /etc/ssl/certs/ca-certificates.crt
endif
endif

.PHONY: help tools deps generate typecheck lint fmt test test-unit test-integration run bench clean

help:
	@echo "make run         start the local world (control plane, node runner, S3) and the operator"
	@echo "make test        install everything, build or reuse the pinned binaries, run every check and test"
	@echo "make tools       build or reuse the pinned binaries (cache: \$${AUXO_CACHE:-~/.cache/auxo})"
	@echo "make lint        eslint and prettier --check;  make fmt  rewrites formatting"
	@echo "make generate    write crds/ (and the chart's CRDs) from src/api/v1alpha1"
	@echo "make bench       run the benchmarks (bench/README.md)"
	@echo "make test-unit | test-integration | typecheck"

tools:
	bash hack/tools.sh all

node_modules/.installed: package.json package-lock.json
	bash hack/tools.sh node
	npm ci --no-audit --no-fund
	touch $@

deps: node_modules/.installed

generate: deps
	node hack/generate.ts

typecheck: deps
	tsc -p tsconfig.json

lint: deps
	eslint . && prettier --check .

fmt: deps
	prettier --write . && eslint --fix .

test-unit: deps
	vitest run --project unit

test-integration: deps tools
	vitest run --project integration

test: tools deps typecheck lint
	vitest run

run: tools deps
	node test/harness/run-world.ts

bench: tools deps
	node bench/reconcile-latency.ts 300
	node bench/copy-1gib.ts 1024
	node bench/snapvault-copy.ts 1024
	node bench/snapvault.ts 1024 50
	node bench/auxcopy-1000.ts 1000
	node bench/policies-200.ts 200
	node bench/streams.ts 16 64
	node bench/retention.ts 100000 128,512
	node bench/secrets-memory.ts 3000 200
	node bench/rebuild.ts 1000
	node bench/rebuild.ts 20000
	node bench/cli-jobs.ts 10000 5

clean:
	rm -rf node_modules .run dist
