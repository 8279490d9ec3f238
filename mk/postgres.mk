# PostgreSQL (issue 13). Included by the root Makefile (include mk/*.mk).
#
#   make postgres-image      local/postgres:15 from this machine's PostgreSQL (no registry needed)
#   make up-postgres         compose with docker-compose.postgres.yaml; make down-postgres
#   make postgres-test       the PostgreSQL tests only (make test runs them all)
#   make k8s-postgres-base   copy deploy/k8s/*.yaml into the overlay's base after changing them
#
# POSTGRES_IMAGE is the database's image: postgres:15 from Docker Hub, or, when that is not
# here and the local one is, local/postgres:15 (nothing to pull).

POSTGRES_LOCAL_IMAGE  ?= local/postgres:15
POSTGRES_PUBLIC_IMAGE := postgres:15
POSTGRES_IMAGE ?= $(eval POSTGRES_IMAGE := $(shell \
	if ! docker image inspect $(POSTGRES_PUBLIC_IMAGE) >/dev/null 2>&1 && \
	   docker image inspect $(POSTGRES_LOCAL_IMAGE) >/dev/null 2>&1; \
	then echo $(POSTGRES_LOCAL_IMAGE); else echo $(POSTGRES_PUBLIC_IMAGE); fi))$(POSTGRES_IMAGE)
COMPOSE_POSTGRES = POSTGRES_IMAGE=$(POSTGRES_IMAGE) $(COMPOSE_RUN) -f deploy/compose/docker-compose.postgres.yaml

.PHONY: postgres-image up-postgres down-postgres postgres-test k8s-postgres-base

postgres-image: ## local/postgres:15 from this machine's PostgreSQL, for compose with no registry
	POSTGRES_IMAGE=$(POSTGRES_LOCAL_IMAGE) scripts/postgres-image.sh

up-postgres: images ## compose up with PostgreSQL for users and tasks; returns once all four are healthy
	@echo "database image: $(POSTGRES_IMAGE)"
	$(COMPOSE_POSTGRES) up -d --no-build
	@scripts/wait-healthy.sh -t $(UP_TIMEOUT) $$($(COMPOSE_POSTGRES) ps -q)
	@echo "users: http://localhost:$${USERS_HOST_PORT:-8080}  tasks: http://localhost:$${TASKS_HOST_PORT:-8000}  (auth, postgres: internal only)"

down-postgres: ## stop the PostgreSQL stack; the volumes (the database's too) are kept
	$(COMPOSE_POSTGRES) down

postgres-test: ## the contract suites on both stores, the PostgreSQL stores and e2e/postgres
	cd services/tasks && $(GO) test -count=1 ./internal/contract/ ./internal/pgstore/ ./cmd/...
	cd services/users && $(GO) test -count=1 ./internal/contract/ ./internal/pgstore/ ./cmd/...
	cd platform && $(GO) test -count=1 ./pgtest/ ./pgdb/
	cd e2e && GO_IMAGE=$(GO_IMAGE) $(GO) test -count=1 -v ./postgres/
	cd e2e && $(GO) test -count=1 -run Overlay ./kubernetes/

k8s-postgres-base: ## copy deploy/k8s/*.yaml into deploy/k8s/postgres/base (the overlay's base)
	scripts/k8s-postgres-base.sh
