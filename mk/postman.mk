# The Postman collection, run by newman. Included by the root Makefile.
#
#   make postman-test    builds the binaries, installs newman, starts auth, users and tasks on
#                        free loopback ports with a throwaway data folder, runs
#                        postman/kub-demo.postman_collection.json against them, stops them; twice:
#                        private task lists (the default), then TASKS_SHARED=true
#
# newman comes from the npm registry, at the versions postman/package-lock.json pins (with
# their integrity hashes), into bin/tools/newman-<version>; it needs node and npm (Debian 12:
# apt-get install nodejs npm). The services never touch make run's ports or its .data/.

NEWMAN_VERSION := $(shell sed -n 's/.*"newman": "\([^"]*\)".*/\1/p' postman/package.json)
NEWMAN_DIR     := $(CURDIR)/bin/tools/newman-$(NEWMAN_VERSION)
NEWMAN         := $(NEWMAN_DIR)/node_modules/.bin/newman

$(NEWMAN): postman/package.json postman/package-lock.json
	@command -v npm >/dev/null || { echo "newman needs node and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	@mkdir -p $(NEWMAN_DIR)
	cp postman/package.json postman/package-lock.json $(NEWMAN_DIR)/
	npm ci --prefix $(NEWMAN_DIR) --no-audit --no-fund --loglevel=error </dev/null
	@touch $@

.PHONY: postman-tools postman-test

postman-tools: $(NEWMAN) ## install newman (pinned by postman/package-lock.json) into bin/tools

postman-test: build $(NEWMAN) ## run the Postman collection with newman against all three on free ports (private lists, then TASKS_SHARED=true)
	NEWMAN=$(NEWMAN) scripts/postman-test.sh
	NEWMAN=$(NEWMAN) TASKS_SHARED=true scripts/postman-test.sh
