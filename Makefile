# kub-demo: the course's three services in Go. `make help` lists the targets.
SHELL := /bin/bash
SERVICES := auth users tasks
VERSION ?= 0.1.0
GO ?= go

.PHONY: help build run test vet clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## static binaries in bin/: bin/auth, bin/users, bin/tasks
	@mkdir -p bin
	@for svc in $(SERVICES); do \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o bin/$$svc ./services/$$svc/cmd/$$svc || exit 1; \
	done
	@ls -l bin/ | tail -n +2

run: build ## run all three locally without Docker (Ctrl-C stops them)
	@scripts/run-local.sh

vet: ## go vet every module
	$(GO) vet work

test: vet ## every test of every module
	$(GO) test -race -count=1 -timeout 30m work

clean: ## remove binaries and local data
	rm -rf bin .data

-include mk/*.mk
