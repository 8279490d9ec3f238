#!/usr/bin/env bash
# Makes sure a Docker daemon answers, for CI and fresh machines (Debian, as root):
# installs Debian's docker.io (and docker-compose, busybox-static) when no daemon
# answers and dockerd is missing, starts dockerd in the background when it is not
# running, and waits for `docker info`. Does nothing when a daemon already answers.
#
# Settings: DOCKERD_LOG (/var/log/dockerd.log), DOCKER_WAIT_SECONDS (60).
set -euo pipefail

log() { printf 'start-docker: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

answers() { command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; }
# A live dockerd with this pid: not a zombie (a killed session's daemon may linger as
# one until reaped, and kill -0 succeeds on zombies) and not a recycled pid.
is_dockerd() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] &&
		[ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ] &&
		[ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ]
}

if answers; then
	log "a Docker daemon answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
	exit 0
fi

if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
	[ "$(id -u)" = 0 ] || die "no Docker daemon answers and dockerd is not installed; as root: apt-get install docker.io"
	command -v apt-get >/dev/null || die "no Docker daemon and no apt-get to install docker.io"
	log "installing Debian's docker.io, docker-compose and busybox-static"
	export DEBIAN_FRONTEND=noninteractive
	# Retried once: a mirror answering mid-sync is the usual transient failure.
	for try in 1 2; do
		if apt-get update -q >&2 &&
			apt-get install -y -q \
				docker.io docker-compose busybox-static ca-certificates iptables >&2; then
			break
		fi
		[ "$try" = 2 ] && die "apt-get install docker.io failed"
		sleep 5
	done
fi

logfile="${DOCKERD_LOG:-/var/log/dockerd.log}"
wait="${DOCKER_WAIT_SECONDS:-60}"
mkdir -p "$(dirname "$logfile")"

# wait_for PID: 0 once the daemon answers; 1 when dockerd PID (if given) exits first;
# 2 after $wait seconds.
wait_for() {
	local i
	for ((i = 0; i < wait; i++)); do
		if answers; then
			log "Docker daemon answers after ${i}s ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
			return 0
		fi
		# A daemon that exited (no privileges, no iptables, ...) will not answer: say so now.
		if [ -n "$1" ] && ! is_dockerd "$1"; then
			log "dockerd exited after ${i}s; the last lines of $logfile:"
			tail -n 15 "$logfile" >&2 || true
			return 1
		fi
		sleep 1
	done
	log "no answer after ${wait}s; the last lines of $logfile:"
	tail -n 30 "$logfile" >&2 || true
	return 2
}

pidfile=/var/run/docker.pid
if [ -s "$pidfile" ] && is_dockerd "$(cat "$pidfile")"; then
	log "dockerd is running (pid $(cat "$pidfile")) but does not answer yet; waiting"
	wait_for "$(cat "$pidfile")" && exit 0
	die "the running dockerd does not answer"
fi
[ "$(id -u)" = 0 ] || die "dockerd is not running and starting it needs root"

# Up to three tries: right after a killed daemon, its containerd may still hold on
# (a zombie not yet reaped), and the new dockerd gives up waiting for it.
for try in 1 2 3; do
	# Pid files of daemons that are gone (a machine or session that was stopped):
	# dockerd refuses to start over its own, and waits on containerd's.
	rm -f "$pidfile"
	cpid=/var/run/docker/containerd/containerd.pid
	if [ -s "$cpid" ] && ! kill -0 "$(cat "$cpid")" 2>/dev/null; then rm -f "$cpid"; fi
	log "starting dockerd in the background (try $try), logging to $logfile"
	# setsid + nohup: the daemon outlives this script and the CI step that ran it.
	setsid nohup dockerd >>"$logfile" 2>&1 </dev/null &
	started=$!
	if wait_for "$started"; then exit 0; else rc=$?; fi
	[ "$rc" = 1 ] || break # still running but silent: another try would not help
	sleep 5
done
die "no Docker daemon answers"
