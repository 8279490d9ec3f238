#!/usr/bin/env bash
# Waits until every given container is running and healthy (those without a
# healthcheck: running). Fails at once when one exits or turns unhealthy, and
# after the timeout, printing the last log lines of the ones that are not ready.
#
#   scripts/wait-healthy.sh [-t SECONDS] CONTAINER...     (default 120 s)
set -euo pipefail

timeout=120
if [ "${1:-}" = -t ]; then timeout="$2"; shift 2; fi
[ $# -gt 0 ] || { echo "wait-healthy: no containers given (is the stack up?)" >&2; exit 2; }

status() { docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}}' "$1"; }
explain() {
	echo "wait-healthy: $1" >&2
	for c in "${@:2}"; do
		echo "--- $(status "$c") ---" >&2
		docker logs --tail 20 "$c" 2>&1 | sed 's/^/    /' >&2
	done
	exit 1
}

deadline=$((SECONDS + timeout))
while :; do
	pending=()
	for c in "$@"; do
		read -r name state health restarts < <(status "$c")
		# A restart policy would hide a crash loop behind "starting": fail on the first one.
		[ "$restarts" = 0 ] || explain "${name#/} restarted $restarts time(s)" "$c"
		case "$state/$health" in
		running/healthy | running/none) ;;
		running/unhealthy) explain "${name#/} is unhealthy" "$c" ;;
		running/*) pending+=("$c") ;;
		created/* | restarting/*) pending+=("$c") ;;
		*) explain "${name#/} is $state" "$c" ;;
		esac
	done
	if [ ${#pending[@]} -eq 0 ]; then
		echo "wait-healthy: all $# healthy after $((SECONDS + timeout - deadline))s" >&2
		exit 0
	fi
	[ "$SECONDS" -lt "$deadline" ] || explain "not healthy after ${timeout}s" "${pending[@]}"
	sleep 1
done
