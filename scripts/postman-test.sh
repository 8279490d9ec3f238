#!/usr/bin/env bash
# Runs postman/kub-demo.postman_collection.json with newman against auth, users and tasks
# from bin/, each started on a port the kernel picks as it binds (PORT=0, read back from its
# "listening" log line: no port is chosen ahead, so none can be taken by another process
# first), wired as make run wires them, with a throwaway data folder, and stops them
# whatever happens. make postman-test builds the binaries and installs newman first.
set -euo pipefail
cd "$(dirname "$0")/.."

NEWMAN=${NEWMAN:?set NEWMAN to the newman binary (make postman-test does)}
for f in bin/auth bin/users bin/tasks "$NEWMAN"; do
	[[ -x $f ]] || { echo "postman-test: $f is missing: run make postman-test, which builds and installs it" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kub-demo-postman.XXXXXX")
DATA=$work/data
# A key of this run's own; nothing outside this run sees the tokens.
export JWT_SECRET=postman-test-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
export AUTH_API_KEY=postman-test-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
# Stop at once: no load balancer to wait for here.
export SHUTDOWN_DELAY=0s

pids=()
stop() {
	local status=$?
	trap - EXIT INT TERM
	if ((${#pids[@]})); then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
	if ((status != 0)); then
		for name in auth users tasks; do
			[[ -f $work/$name.log ]] || continue
			echo "--- last lines $name logged ---" >&2
			tail -n 20 "$work/$name.log" >&2 || true
		done
	fi
	rm -rf "$work"
	exit "$status"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME [SETTING=value ...]: runs bin/NAME with its public and metrics ports picked by
# the kernel, and sets port[NAME] from its "listening" line (logged once the port is bound
# and served) within 15s, or fails.
declare -A port
start() {
	local name=$1 log=$work/$1.log p
	shift
	env PORT=0 METRICS_PORT=0 "$@" "bin/$name" >"$log" 2>&1 </dev/null &
	pids+=($!)
	for _ in $(seq 150); do
		p=$(sed -n 's/.*"msg":"listening".*"addr":"[^"]*:\([0-9][0-9]*\)".*/\1/p' "$log")
		if [[ -n $p ]]; then
			port[$name]=$p
			return 0
		fi
		kill -0 "${pids[-1]}" 2>/dev/null || { echo "postman-test: $name stopped at start" >&2; exit 1; }
		sleep 0.1
	done
	echo "postman-test: $name did not listen within 15s" >&2
	exit 1
}
start auth
start users AUTH_ADDRESS="127.0.0.1:${port[auth]}" USERS_FOLDER="$DATA/users"
start tasks AUTH_ADDRESS="127.0.0.1:${port[auth]}" TASKS_FOLDER="$DATA/tasks"
echo "postman-test: auth :${port[auth]}, users :${port[users]}, tasks :${port[tasks]}, data in $DATA, TASKS_SHARED=${TASKS_SHARED:-false}"

began=$(date +%s%N)
"$NEWMAN" run postman/kub-demo.postman_collection.json \
	--environment postman/local.postman_environment.json \
	--env-var "users=http://127.0.0.1:${port[users]}" \
	--env-var "tasks=http://127.0.0.1:${port[tasks]}" \
	--timeout-request 10000 --timeout 120000 \
	--color off --no-insecure-file-read
echo "postman-test: newman passed in $((($(date +%s%N) - began) / 1000000)) ms"
