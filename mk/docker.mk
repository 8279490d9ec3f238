# Containers and docker compose. Included by the root Makefile (include mk/*.mk).
#
#   make images          kub-demo-{auth,users,tasks,frontend}:$(VERSION), built FROM $(GO_IMAGE)
#   make up              compose up -d, returns once all three are healthy; make down, make logs
#   make builder-image   local/go-builder:1.26 from this machine's Go (no registry needed)
#
# GO_IMAGE is the build stage's image: golang:1.26-alpine from Docker Hub, or, when
# that is not here and the local builder image is, the local builder image (nothing to pull).

COMPOSE_YAML     := deploy/compose/docker-compose.yaml
GO_BUILDER_IMAGE ?= local/go-builder:1.26
GO_PUBLIC_IMAGE  := golang:1.26-alpine
# Evaluated once, and only when a target below needs them.
GO_IMAGE ?= $(eval GO_IMAGE := $(shell \
	if ! docker image inspect $(GO_PUBLIC_IMAGE) >/dev/null 2>&1 && \
	   docker image inspect $(GO_BUILDER_IMAGE) >/dev/null 2>&1; \
	then echo $(GO_BUILDER_IMAGE); else echo $(GO_PUBLIC_IMAGE); fi))$(GO_IMAGE)
# The compose v2 plugin when present, else Debian's docker-compose 1.29 (which reads the file too).
COMPOSE ?= $(eval COMPOSE := $(shell \
	if docker compose version >/dev/null 2>&1; then echo docker compose; \
	elif command -v docker-compose >/dev/null; then echo docker-compose; \
	else echo docker compose; fi))$(COMPOSE)
# The compose file reads these for image tags and build args.
COMPOSE_RUN = VERSION=$(VERSION) GO_IMAGE=$(GO_IMAGE) $(COMPOSE) -f $(COMPOSE_YAML)
UP_TIMEOUT ?= 180

.PHONY: images builder-image up down logs compose-test

builder-image: ## local/go-builder:1.26 from this machine's Go, for builds with no registry
	GO_BUILDER_IMAGE=$(GO_BUILDER_IMAGE) scripts/go-builder-image.sh

images: ## build kub-demo-{auth,users,tasks,frontend}:VERSION (0.1.0); GO_IMAGE=... picks the build image
	@echo "building with GO_IMAGE=$(GO_IMAGE)"
	@for svc in $(SERVICES); do \
		echo "--- kub-demo-$$svc:$(VERSION)"; \
		docker build --force-rm -f services/$$svc/Dockerfile \
			--build-arg GO_IMAGE=$(GO_IMAGE) --build-arg VERSION=$(VERSION) \
			-t kub-demo-$$svc:$(VERSION) . || exit 1; \
	done
	@docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^kub-demo-.*:$(VERSION) '

up: images ## docker compose up -d with the images above; returns once all four are healthy
	$(COMPOSE_RUN) up -d --no-build
	@scripts/wait-healthy.sh -t $(UP_TIMEOUT) $$($(COMPOSE_RUN) ps -q)
	@echo "users: http://localhost:$${USERS_HOST_PORT:-8080}  tasks: http://localhost:$${TASKS_HOST_PORT:-8000}  (auth: internal only)"
	@echo "web UI (frontend): http://localhost:$${FRONTEND_HOST_PORT:-3000}"

down: ## stop and remove the containers; the users and tasks volumes are kept
	$(COMPOSE_RUN) down

logs: ## follow the logs of all four
	$(COMPOSE_RUN) logs -f --tail=100

compose-test: ## only the compose end-to-end test (builds, runs and removes its own stack)
	cd e2e && GO_IMAGE=$(GO_IMAGE) go test -count=1 -v -run TestComposeStack ./compose/
