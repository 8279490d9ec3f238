#!/usr/bin/env bash
# Runs auth, users and tasks from bin/ on this machine, wired the way docker compose wires
# them (AUTH_ADDRESS), with their data under .data/. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."

AUTH_PORT=${AUTH_PORT:-8090}
USERS_PORT=${USERS_PORT:-8080}
TASKS_PORT=${TASKS_PORT:-8000}
DATA=${DATA:-.data}
# Metrics ports (0: any free one). Each service needs its own on one machine.
AUTH_METRICS_PORT=${AUTH_METRICS_PORT:-9092}
USERS_METRICS_PORT=${USERS_METRICS_PORT:-9090}
TASKS_METRICS_PORT=${TASKS_METRICS_PORT:-9091}
# DEVELOPMENT VALUES ONLY: anyone who reads this file can forge tokens (JWT_SECRET) or call
# auth as users and tasks do (AUTH_API_KEY) on this local run.
export JWT_SECRET=${JWT_SECRET:-local-development-key-not-for-production-use}
export AUTH_API_KEY=${AUTH_API_KEY:-local-development-service-credential-not-a-secret}
# Ctrl-C stops at once: no load balancer to wait for here.
export SHUTDOWN_DELAY=${SHUTDOWN_DELAY:-0s}

for port in "$AUTH_PORT" "$USERS_PORT" "$TASKS_PORT"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "port $port is already in use: stop what runs there, or set AUTH_PORT, USERS_PORT or TASKS_PORT" >&2
		exit 1
	fi
done

mkdir -p "$DATA"
pids=()
stop() {
	trap - INT TERM EXIT
	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

# wait_healthy PORT: until the service on PORT answers /healthz (the binaries probe themselves).
wait_healthy() {
	for _ in $(seq 50); do
		PORT=$1 bin/auth -healthcheck 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing healthy on port $1 after 5s" >&2
	return 1
}

PORT=$AUTH_PORT METRICS_PORT=$AUTH_METRICS_PORT bin/auth > >(sed -u 's/^/auth  | /') 2>&1 &
pids+=($!)
wait_healthy "$AUTH_PORT"
PORT=$USERS_PORT METRICS_PORT=$USERS_METRICS_PORT AUTH_ADDRESS=127.0.0.1:$AUTH_PORT USERS_FOLDER=$DATA/users bin/users > >(sed -u 's/^/users | /') 2>&1 &
pids+=($!)
PORT=$TASKS_PORT METRICS_PORT=$TASKS_METRICS_PORT AUTH_ADDRESS=127.0.0.1:$AUTH_PORT TASKS_FOLDER=$DATA/tasks bin/tasks > >(sed -u 's/^/tasks | /') 2>&1 &
pids+=($!)
wait_healthy "$USERS_PORT"
wait_healthy "$TASKS_PORT"
cat <<MSG

  users: http://localhost:$USERS_PORT   (POST /signup, POST /login)
  tasks: http://localhost:$TASKS_PORT   (GET and POST /tasks)
  auth:  internal, on 127.0.0.1:$AUTH_PORT
  metrics: users :$USERS_METRICS_PORT, tasks :$TASKS_METRICS_PORT, auth :$AUTH_METRICS_PORT (GET /metrics)
  data:  $DATA/   Ctrl-C stops all three.

MSG
wait -n "${pids[@]}" || true
echo "a service stopped; stopping the others" >&2
