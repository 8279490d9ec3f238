#!/usr/bin/env bash
# Runs postman/kub-demo.postman_collection.json with newman against auth, users and tasks
# from bin/, started by scripts/run-local.sh on free loopback ports (never make run's 8090,
# 8080, 8000) with a throwaway data folder, and stops them whatever happens.
# make postman-test builds the binaries and installs newman first, then runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

NEWMAN=${NEWMAN:?set NEWMAN to the newman binary (make postman-test does)}
for f in bin/auth bin/users bin/tasks "$NEWMAN"; do
	[[ -x $f ]] || { echo "postman-test: $f is missing: run make postman-test, which builds and installs it" >&2; exit 1; }
done

# Six distinct ports the kernel hands out now (public and metrics of each service), all held
# at once so none repeats. Metrics on port 0 would let one service take a port picked here
# for another before that one binds it (CI saw tasks' metrics take users' port).
pick_ports() {
	read -r AUTH_PORT USERS_PORT TASKS_PORT AUTH_METRICS_PORT USERS_METRICS_PORT TASKS_METRICS_PORT < <(node -e '
		const net = require("net"), servers = [0, 1, 2, 3, 4, 5].map(() => net.createServer());
		Promise.all(servers.map(s => new Promise(ok => s.listen(0, "127.0.0.1", ok)))).then(() => {
			console.log(servers.map(s => s.address().port).join(" "));
			servers.forEach(s => s.close());
		});')
	export AUTH_PORT USERS_PORT TASKS_PORT AUTH_METRICS_PORT USERS_METRICS_PORT TASKS_METRICS_PORT
}

work=$(mktemp -d "${TMPDIR:-/tmp}/kub-demo-postman.XXXXXX")
export DATA=$work/data
# A key of this run's own; nothing outside this run sees the tokens.
export JWT_SECRET=postman-test-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
export AUTH_API_KEY=postman-test-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
log=$work/services.log

pid=
stop() {
	local status=$?
	trap - EXIT INT TERM
	if [[ -n $pid ]]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if ((status != 0)); then
		echo "--- last lines the services logged ($log) ---" >&2
		tail -n 40 "$log" >&2 || true
	fi
	rm -rf "$work"
	exit "$status"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# healthy PORT: the service on PORT answers /healthz (the binaries probe themselves).
healthy() { PORT=$1 bin/users -healthcheck 2>/dev/null; }
# start_services: the three on fresh ports, healthy within 15s; 1 if they stopped at start (a port
# taken by another process between pick_ports and the bind, say).
start_services() {
	pick_ports
	scripts/run-local.sh >>"$log" 2>&1 </dev/null &
	pid=$!
	for _ in $(seq 150); do
		if healthy "$AUTH_PORT" && healthy "$USERS_PORT" && healthy "$TASKS_PORT"; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null || true
			pid=
			return 1
		fi
		sleep 0.1
	done
	echo "postman-test: users or tasks not healthy after 15s" >&2
	exit 1
}
for attempt in 1 2 3; do
	start_services && break
	((attempt < 3)) || { echo "postman-test: the services stopped at start, 3 times" >&2; exit 1; }
	echo "postman-test: the services stopped at start (attempt $attempt); again on other ports" >&2
done
echo "postman-test: auth :$AUTH_PORT, users :$USERS_PORT, tasks :$TASKS_PORT, data in $DATA, TASKS_SHARED=${TASKS_SHARED:-false}"

start=$(date +%s%N)
"$NEWMAN" run postman/kub-demo.postman_collection.json \
	--environment postman/local.postman_environment.json \
	--env-var "users=http://127.0.0.1:$USERS_PORT" \
	--env-var "tasks=http://127.0.0.1:$TASKS_PORT" \
	--timeout-request 10000 --timeout 120000 \
	--color off --no-insecure-file-read
echo "postman-test: newman passed in $((($(date +%s%N) - start) / 1000000)) ms"
