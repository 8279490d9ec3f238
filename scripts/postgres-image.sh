#!/usr/bin/env bash
# Makes a PostgreSQL server image with no registry: `docker import` of a small root file
# system holding this machine's PostgreSQL server (Debian's postgresql package: postgres,
# initdb, pg_isready, psql, their modules and data files), the shared libraries they load, a
# static busybox for /bin/sh, and an entrypoint that sets up a new database the way the
# official `postgres` image does (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB,
# POSTGRES_HOST_AUTH_METHOD, POSTGRES_INITDB_ARGS). It runs as uid 999, as the official
# Debian-based image's server does, and never as root.
#
# deploy/compose/docker-compose.postgres.yaml uses the official image (postgres:15) by
# default; with no registry reachable, build this one and point POSTGRES_IMAGE at it:
#
#   scripts/postgres-image.sh                 # prints the tag, e.g. local/postgres:15
#   POSTGRES_IMAGE=local/postgres:15 docker compose -f deploy/compose/docker-compose.yaml \
#     -f deploy/compose/docker-compose.postgres.yaml up --build
#
# Its data folder is PGDATA=/var/lib/postgresql/data/pgdata, a folder inside the volume
# (/var/lib/postgresql/data, world-writable with the sticky bit like /tmp), so that a new
# volume needs no chown and the image can be made without root.
#
# Settings (environment):
#   POSTGRES_IMAGE  tag to create (default local/postgres:<major version of the server found>)
#   PG_BIN          the server's bin folder (default: the newest /usr/lib/postgresql/*/bin)
#   FORCE=1         rebuild even when an image made from the same server exists
# Only the tag is printed on stdout; progress goes to stderr.
set -euo pipefail

log() { printf 'postgres-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
. "$(dirname "$0")/local-image.sh"

command -v docker >/dev/null || die "docker not found"
bin="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
[ -x "$bin/postgres" ] && [ -x "$bin/initdb" ] ||
	die "no PostgreSQL server found (Debian/Ubuntu: apt-get install postgresql; or set PG_BIN)"
major="$(basename "$(dirname "$bin")")"                       # 15
version="$("$bin/postgres" --version | awk '{print $3}')"      # 15.18
lib="/usr/lib/postgresql/$major/lib"
share="/usr/share/postgresql/$major"
[ -d "$lib" ] && [ -d "$share" ] || die "expected $lib and $share (Debian's layout)"
tag="${POSTGRES_IMAGE:-local/postgres:$major}"

# Idempotent: the image records the exact server version and the recipe's revision.
recipe=1
stamp="$version/$(uname -m)/r$recipe"
image_current org.kub-demo.postgres "$tag" "$stamp" && exit 0

busybox="$(static_busybox)"
[ -n "$busybox" ] || die "a static busybox is needed: apt-get install busybox-static (Debian/Ubuntu)"

root="$(mktemp -d "${TMPDIR:-/tmp}/postgres-image.XXXXXX")"
trap 'rm -rf "$root"' EXIT
log "staging PostgreSQL $version ($bin) in $root"

# The server and its tools, its modules (not the JIT: it would need LLVM, ~100 MB, and is
# off unless asked for) and its data files, at the paths the binaries were built with.
mkdir -p "$root$bin" "$root$lib" "$root$share" "$root/usr/share" "$root/bin" "$root/etc" "$root/usr/local/bin"
for tool in postgres initdb pg_ctl pg_isready psql pg_dump pg_restore; do
	cp "$bin/$tool" "$root$bin/"
done
find "$lib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' -exec cp {} "$root$lib/" \;
tar -C "$share" --exclude=./man -cf - . | tar -C "$root$share" -xf -
# Time zones (Debian's server reads the system's), without the leap-second variants.
tar -C /usr/share --exclude=zoneinfo/right --exclude=zoneinfo/posix -cf - zoneinfo | tar -C "$root/usr/share" -xf -

# Every shared library those load, and the dynamic loader, at their own paths.
stage_libs "$root" "$root$bin"/* "$root$lib"/*.so

stage_busybox "$root" "$busybox"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
postgres:x:999:
nobody:x:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
# Written to by the server (its socket, the volume) and the entrypoint (/tmp): sticky and
# world-writable, so that uid 999 (or any uid a platform picks) can use them without a chown.
install -d -m 1777 "$root/tmp" "$root/var/run/postgresql" "$root/var/lib/postgresql" "$root/var/lib/postgresql/data"

cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# Sets up a new database on first start, as the official postgres image does, then runs the
# server (or whatever command was given) in its place.
set -eu
: "${PGDATA:=/var/lib/postgresql/data/pgdata}"
export PGDATA
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	user="${POSTGRES_USER:-postgres}"
	db="${POSTGRES_DB:-$user}"
	method="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
		echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set;" \
			"set it (or POSTGRES_HOST_AUTH_METHOD=trust, which lets anyone who can connect in)" >&2
		exit 1
	fi
	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA"
	pwfile="$(mktemp)"
	printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments
	initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$method" \
		--encoding=UTF8 --locale=C ${POSTGRES_INITDB_ARGS:-} >&2
	rm -f "$pwfile"
	printf '\nhost all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"
	printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
	if [ "$db" != postgres ]; then
		# Single-user mode: no server to start and stop, nothing listening meanwhile.
		printf 'CREATE DATABASE "%s"\n' "$(printf '%s' "$db" | sed 's/"/""/g')" |
			postgres --single -D "$PGDATA" -c listen_addresses='' postgres >/dev/null
	fi
	echo "PostgreSQL init process complete; ready for start up." >&2
fi
exec "$@"
EOF
chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"

changes=(
	--change "ENV PATH=$bin:/usr/local/bin:/usr/bin:/bin"
	--change "ENV PGDATA=/var/lib/postgresql/data/pgdata"
	--change "ENV PG_MAJOR=$major"
	--change "ENV PG_VERSION=$version"
	--change "LABEL org.kub-demo.postgres=$stamp"
	--change "USER 999:999"
	--change "WORKDIR /var/lib/postgresql"
	--change "VOLUME /var/lib/postgresql/data"
	--change "EXPOSE 5432"
	--change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
	--change 'CMD ["postgres"]'
)

old="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
log "importing as $tag"
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . |
	docker import "${changes[@]}" -m "PostgreSQL $version from $bin, busybox" - "$tag" >/dev/null
# SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for every client to leave), as in the
# official image; docker import cannot set it, a build on top of the image can (no pull).
printf 'FROM %s\nSTOPSIGNAL SIGINT\n' "$tag" | docker build -q -t "$tag" - >/dev/null

# Smoke test: a new database is set up and answers, as uid 999 with a read-only root.
name="postgres-image-check-$$"
docker run -d --name "$name" --read-only --tmpfs /tmp --tmpfs /var/run/postgresql \
	-e POSTGRES_PASSWORD=check -e POSTGRES_DB=check "$tag" >/dev/null
trap 'docker rm -f -v "$name" >/dev/null 2>&1; rm -rf "$root"' EXIT
for _ in $(seq 1 60); do
	if docker exec "$name" pg_isready -q -d check -U postgres 2>/dev/null; then break; fi
	sleep 0.5
done
docker exec "$name" psql -qtA -U postgres -d check -c 'SELECT 1' >/dev/null ||
	{ docker logs "$name" >&2; die "the new image $tag does not serve a database"; }
# The image this one replaces, if nothing else uses it.
if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
	docker image rm "$old" >/dev/null 2>&1 || true
fi
log "made $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$tag"
