#!/usr/bin/env bash
# make run: builds auth, users and tasks into bin/ and runs them on this machine, wired the
# way docker compose wires them (AUTH_ADDRESS), with their data under .data/. Ctrl-C stops
# all three. Every setting below can be changed from the environment, e.g.
# USERS_PORT=8180 make run; docs/configuration.md lists them.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS_PORT=${USERS_PORT:-8080}
TASKS_PORT=${TASKS_PORT:-8000}
AUTH_PORT=${AUTH_PORT:-8090}
# Metrics ports: each service needs its own on one machine.
USERS_METRICS_PORT=${USERS_METRICS_PORT:-9090}
TASKS_METRICS_PORT=${TASKS_METRICS_PORT:-9091}
AUTH_METRICS_PORT=${AUTH_METRICS_PORT:-9092}
DATA=${DATA:-.data}
BIN=${BIN:-bin}
READY_TIMEOUT=${READY_TIMEOUT:-30}
# DEVELOPMENT VALUES ONLY: anyone who reads this file can forge tokens (JWT_SECRET) or call
# auth as users and tasks do (AUTH_API_KEY) on this local run.
export JWT_SECRET=${JWT_SECRET:-local-development-key-not-for-production-use}
export AUTH_API_KEY=${AUTH_API_KEY:-local-development-service-credential-not-a-secret}
# Ctrl-C stops at once: no load balancer to wait for here.
export SHUTDOWN_DELAY=${SHUTDOWN_DELAY:-0s}

PORT_VARS=(USERS_PORT TASKS_PORT AUTH_PORT USERS_METRICS_PORT TASKS_METRICS_PORT AUTH_METRICS_PORT)

# --- frontend (issue 24): the web UI, its /api/ forwarded to users and tasks.
FRONTEND_PORT=${FRONTEND_PORT:-3000}
FRONTEND_METRICS_PORT=${FRONTEND_METRICS_PORT:-9093}
PORT_VARS+=(FRONTEND_PORT FRONTEND_METRICS_PORT)
# ---

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# check_ports: every port this run will listen on, before a build that can take minutes.
# On a conflict it names each variable to change and prints a command whose ports are all
# free now (each taken one moved up by 100, or further).
check_ports() {
	local var port other taken=() chosen=() suggestion=()
	for var in "${PORT_VARS[@]}"; do
		port=${!var}
		if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
			echo "make run: $var=$port is not a port (1 to 65535)" >&2
			exit 1
		fi
		for other in "${PORT_VARS[@]}"; do
			[[ $other == "$var" ]] && break
			if [[ ${!other} == "$port" ]]; then
				echo "make run: $other and $var are both $port: each needs a port of its own" >&2
				exit 1
			fi
		done
	done
	for var in "${PORT_VARS[@]}"; do
		port=${!var}
		if in_use "$port"; then
			echo "make run: port $port ($var) is already in use" >&2
			taken+=("$var")
		fi
		chosen+=("$port")
	done
	((${#taken[@]} == 0)) && return 0
	for var in "${taken[@]}"; do
		port=$((${!var} + 100))
		while in_use "$port" || [[ " ${chosen[*]} " == *" $port "* ]]; do
			port=$((port + 100))
		done
		chosen+=("$port")
		suggestion+=("$var=$port")
	done
	cat >&2 <<MSG
Another make run, a compose stack or a port-forward is probably running (ss -ltnp names it).
Stop it, or give this run other ports; these are free now:

  ${suggestion[*]} make run
MSG
	exit 1
}

# build: the three binaries, as make build makes them, saying what takes time on a first
# build (go's own "go: downloading" lines, then a count of packages compiled).
build() {
	echo "building $BIN/auth, $BIN/users and $BIN/tasks (the first build downloads and compiles every module: several minutes; later builds take seconds)"
	local line compiled=0
	"${MAKE:-make}" --no-print-directory build BIN="$BIN" BUILDFLAGS=-v 2>&1 | while IFS= read -r line; do
		if [[ $line =~ ^[A-Za-z0-9._~/-]+$ ]]; then # a package that go build -v compiled
			compiled=$((compiled + 1))
			if ((compiled % 50 == 0)); then # (a bare (( )) would end the loop, and make run, with 1)
				echo "  $compiled packages compiled…"
			fi
		else
			echo "  $line"
		fi
	done
}

check_ports
build || { echo "make run: the build failed (its errors are above)" >&2; exit 1; }
mkdir -p "$DATA"
logs=$(mktemp -d)
names=() pipes=()
declare -A pipe_of

# A service's output goes to the terminal, prefixed with its name, and to a file kept for its
# last words. Each service runs at the head of a pipeline that ends when the service has
# exited and its last line is out: waiting for the pipeline waits for both. (Run in the
# background, the pipeline ignores Ctrl-C; the services act on it all the same.)
start() {
	local name=$1
	shift
	{
		env "$@" "$BIN/$name" 2>&1 &
		echo $! >"$logs/$name.pid"
		wait $!
	} | tee "$logs/$name" | sed -u "s/^/$(printf '%-5s' "$name") | /" &
	names+=("$name")
	pipes+=($!)
	pipe_of[$name]=$!
}
stop_all() {
	# shellcheck disable=SC2046 # one pid a word
	kill -TERM $(cat "$logs"/*.pid 2>/dev/null) 2>/dev/null || true
	wait "${pipes[@]}" 2>/dev/null || true
}
# cause NAME: the line that says why NAME stopped (its "error: …", or its last line).
cause() {
	grep '^error:' "$logs/$1" | tail -n 1 || tail -n 1 "$logs/$1"
}
# failed NAME WHAT: NAME's cause, last on the screen, then out at once.
failed() {
	trap - INT TERM EXIT
	stop_all
	echo >&2
	echo "make run: $1 $2:" >&2
	echo "  $(cause "$1")" >&2
	echo "docs/troubleshooting.md says what each message means." >&2
	rm -rf "$logs"
	exit 1
}
# readyz PORT: whether the service on PORT answers its GET /readyz with 200.
readyz() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
		IFS= read -r -t 2 status <&3 && [[ $status == *" 200 "* ]]
	) 2>/dev/null
}
# wait_ready NAME PORT [MSG]: until NAME is ready, or stops, or READY_TIMEOUT seconds pass.
# With MSG, /readyz is asked only once NAME has logged it (the step of its start that
# readiness waits for): a probe before would log a "not ready" warning for nothing.
wait_ready() {
	local i
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		kill -0 "${pipe_of[$1]}" 2>/dev/null || failed "$1" "stopped at start"
		if [[ -z ${3:-} ]] || grep -qsF "\"msg\":\"$3\"" "$logs/$1"; then
			readyz "$2" && return 0
		fi
		sleep 0.1
	done
	failed "$1" "was not ready after ${READY_TIMEOUT}s (its last line)"
}

trap 'stop_all; rm -rf "$logs"' EXIT
trap 'trap - INT TERM EXIT; stop_all; rm -rf "$logs"; echo; echo "make run: stopped"; exit 0' INT TERM

start auth PORT="$AUTH_PORT" METRICS_PORT="$AUTH_METRICS_PORT"
wait_ready auth "$AUTH_PORT"
start users PORT="$USERS_PORT" METRICS_PORT="$USERS_METRICS_PORT" AUTH_ADDRESS="127.0.0.1:$AUTH_PORT" USERS_FOLDER="$DATA/users"
start tasks PORT="$TASKS_PORT" METRICS_PORT="$TASKS_METRICS_PORT" AUTH_ADDRESS="127.0.0.1:$AUTH_PORT" TASKS_FOLDER="$DATA/tasks"
if [[ ${DEMO_USER-x} ]]; then
	wait_ready users "$USERS_PORT" "demo user ready"
else
	wait_ready users "$USERS_PORT" "auth answered: ready"
fi
wait_ready tasks "$TASKS_PORT" "auth answered: ready"
# --- frontend (issue 24)
# The network page shows every service's discovery view, read from its metrics port: on one
# machine each has its own, so they are named (docs/see-the-network.md).
start frontend PORT="$FRONTEND_PORT" METRICS_PORT="$FRONTEND_METRICS_PORT" USERS_ADDRESS="127.0.0.1:$USERS_PORT" TASKS_ADDRESS="127.0.0.1:$TASKS_PORT" \
	USERS_DISCOVERY_URL="http://127.0.0.1:$USERS_METRICS_PORT/discovery" TASKS_DISCOVERY_URL="http://127.0.0.1:$TASKS_METRICS_PORT/discovery" \
	AUTH_DISCOVERY_URL="http://127.0.0.1:$AUTH_METRICS_PORT/discovery"
wait_ready frontend "$FRONTEND_PORT"
echo "  web UI: http://localhost:$FRONTEND_PORT  (frontend: the page, /api/ forwarded to users and tasks; metrics :$FRONTEND_METRICS_PORT)"
echo "  the network: http://localhost:$FRONTEND_PORT/network.html  (how each service found the next)"
# ---
cat <<MSG

  kub-demo is running. users: http://localhost:$USERS_PORT  tasks: http://localhost:$TASKS_PORT
  (auth: 127.0.0.1:$AUTH_PORT, internal; metrics: users :$USERS_METRICS_PORT, tasks :$TASKS_METRICS_PORT, auth :$AUTH_METRICS_PORT; data: $DATA/)
  Try, in another terminal:

    curl -s -X POST localhost:$USERS_PORT/login -H 'Content-Type: application/json' -d '{"email":"test@gmail.com","password":"testers"}'; echo
    curl -s localhost:$TASKS_PORT/tasks -H "Authorization: Bearer <the token it printed>"; echo

  Ctrl-C stops all three.

MSG
stopped=
wait -n -p stopped "${pipes[@]}" || true
for i in "${!pipes[@]}"; do [[ ${pipes[i]} == "$stopped" ]] && failed "${names[i]}" "stopped"; done
failed "${names[0]}" "stopped"
