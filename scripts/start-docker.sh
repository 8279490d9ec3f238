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
pidfile=/var/run/docker.pid
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
	log "dockerd is running (pid $(cat "$pidfile")) but does not answer yet; waiting"
else
	[ "$(id -u)" = 0 ] || die "dockerd is not running and starting it needs root"
	rm -f "$pidfile" # stale from a machine that was stopped: dockerd refuses to start over it
	log "starting dockerd in the background, logging to $logfile"
	mkdir -p "$(dirname "$logfile")"
	# setsid + nohup: the daemon outlives this script and the CI step that ran it.
	setsid nohup dockerd >>"$logfile" 2>&1 </dev/null &
fi

wait="${DOCKER_WAIT_SECONDS:-60}"
for ((i = 0; i < wait; i++)); do
	if answers; then
		log "Docker daemon answers after ${i}s ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
		exit 0
	fi
	sleep 1
done
log "the last lines of $logfile:"
tail -n 30 "$logfile" >&2 || true
die "no Docker daemon answers after ${wait}s"
