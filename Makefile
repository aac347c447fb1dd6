# varco — one Makefile for the go.work workspace. Every target loops over the
# workspace modules, so a new module needs no edit here.

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
MODULES      := $(shell go list -f '{{.Dir}}' -m)
VERSION      ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS      := -s -w -X varco.dev/protocol.Version=$(VERSION)
BIN          := $(CURDIR)/bin
TOOLS        := $(BIN)/tools
STATICCHECK_VERSION := v0.8.2
FUZZTIME     ?= 10s
BENCHTIME    ?= 1s
COUNT        ?= 1

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## build every command into bin/
	@mkdir -p $(BIN)
	@for m in $(MODULES); do \
		( cd $$m && pkgs=$$(go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./cmd/... 2>/dev/null || true); \
		  [ -z "$$pkgs" ] || go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ $$pkgs ); \
	done
	@ls $(BIN) | grep -v tools | sed 's/^/bin\//'

.PHONY: test
test: ## vet and test every module with the race detector (the README's test command)
	@for m in $(MODULES); do \
		echo "== $$m"; \
		( cd $$m && go vet ./... && go test -race -count=$(COUNT) ./... ); \
	done

.PHONY: lint
lint: $(TOOLS)/staticcheck ## go vet and staticcheck (pinned) on every module
	@for m in $(MODULES); do \
		echo "== $$m"; \
		( cd $$m && go vet ./... && $(TOOLS)/staticcheck ./... ); \
	done

$(TOOLS)/staticcheck:
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	@for m in $(MODULES); do \
		( cd $$m; for pkg in $$(go list ./...); do \
			for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
				echo "== $$pkg $$f"; \
				go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
			done; \
		done ); \
	done

.PHONY: bench
bench: ## run every benchmark (BENCHTIME, COUNT) and print the figures
	@for m in $(MODULES); do \
		( cd $$m && go test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(COUNT) ./... | grep -Ev '^(ok|PASS|\?)' || true ); \
	done

# test-arm runs the edge's and the protocol's tests as arm64 and armv7
# binaries under qemu-user (Debian's qemu-user, installed here when missing).
ARM_MODULES := protocol edge

.PHONY: test-arm
test-arm: ## run the edge's and protocol's tests under qemu-user for linux/arm64 and linux/arm (v7)
	@command -v qemu-aarch64 >/dev/null && command -v qemu-arm >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null; }
	@for m in $(ARM_MODULES); do \
		echo "== $$m linux/arm64"; \
		( cd $$m && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go test -count=1 -exec qemu-aarch64 ./... ); \
		echo "== $$m linux/arm GOARM=7"; \
		( cd $$m && CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 go test -count=1 -exec qemu-arm ./... ); \
	done

DEMO_DIR := /tmp/varco-demo

.PHONY: demo
demo: build ## the whole system: cloud, embedded broker, edge, two simulated readers; a member blocked, then let in (STAY=1 keeps it running)
	bin/varco-demo $(if $(STAY),--stay)

.PHONY: demo-edge
demo-edge: build ## varco-edge on two simulated readers: members pass, one is stopped by a CRM action
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@echo "== importing the demo club's members into the edge cache"
	@bin/varco-edge import --config deploy/demo/edge.toml deploy/demo/members.ndjson
	@echo "== varco-sim: two OSDP readers on a pseudo-terminal, varco-edge polling them"
	bin/varco-sim scenario --link $(DEMO_DIR)/ttyOSDP \
		--exec 'bin/varco-edge run --config deploy/demo/edge.toml' deploy/demo/demo.scn

.PHONY: release
release: ## cross-compile varco-edge for linux/arm64, linux/arm (v7) and linux/amd64
	@mkdir -p $(BIN)/release
	cd edge && CGO_ENABLED=0 GOOS=linux GOARCH=arm64         go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/release/varco-edge-linux-arm64 ./cmd/varco-edge
	cd edge && CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7   go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/release/varco-edge-linux-armv7 ./cmd/varco-edge
	cd edge && CGO_ENABLED=0 GOOS=linux GOARCH=amd64         go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/release/varco-edge-linux-amd64 ./cmd/varco-edge
	@ls -l $(BIN)/release

.PHONY: tidy
tidy: ## go mod tidy in every module, each on its own (GOWORK=off)
	@for m in $(MODULES); do ( cd $$m && GOWORK=off go mod tidy ); done

.PHONY: clean
clean: ## remove bin/
	rm -rf $(BIN)
