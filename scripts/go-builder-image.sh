#!/usr/bin/env bash
# Makes a Go builder image from this machine's own Go toolchain, with no registry:
# `docker import` of a tiny root filesystem holding the Go tree, a static busybox
# for /bin/sh and its applets, the CA certificates, /etc/passwd and /etc/group.
#
# The Dockerfiles build FROM ${GO_IMAGE} (golang:1.26-alpine by default); behind a
# firewall with no container registry, build with GO_IMAGE set to this image instead:
#
#   scripts/go-builder-image.sh                       # prints the tag, e.g. local/go-builder:1.26
#   GO_IMAGE=local/go-builder:1.26 make images
#
# Settings (environment):
#   GO_BUILDER_IMAGE  tag to create (default local/go-builder:<major.minor of the host's go>)
#   GOROOT            toolchain to copy (default: `go env GOROOT`)
#   FORCE=1           rebuild even when an image made from the same toolchain exists
# The image keeps the host's GOPROXY/GOSUMDB/GOPRIVATE/GONOSUMDB/GOINSECURE, so a
# corporate module proxy configured here is used inside the build as well.
# Only the tag is printed on stdout; progress goes to stderr.
set -euo pipefail

log() { printf 'go-builder-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
. "$(dirname "$0")/local-image.sh"

command -v docker >/dev/null || die "docker not found"
command -v go >/dev/null || [ -n "${GOROOT:-}" ] || die "go not found (set GOROOT to a Go tree)"

goroot="${GOROOT:-$(go env GOROOT)}"
gobin="$goroot/bin/go"
[ -x "$gobin" ] || die "no Go toolchain at $goroot"
# GOTOOLCHAIN=local: ask the tree itself, never a toolchain it would download.
goversion="$(GOTOOLCHAIN=local "$gobin" env GOVERSION)"          # go1.26.8
goarch="$(GOTOOLCHAIN=local "$gobin" env GOARCH)"
short="${goversion#go}"; short="${short%.*}"                       # 1.26
tag="${GO_BUILDER_IMAGE:-local/go-builder:$short}"

# Idempotent: the image records the exact Go version and the recipe's revision.
recipe=3
stamp="$goversion/$goarch/r$recipe"
image_current org.kub-demo.go-builder "$tag" "$stamp" && exit 0

# busybox must be static: the image has no libc.
busybox="$(static_busybox)"
if [ -z "$busybox" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing Debian's busybox-static"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2 ||
			{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2; }
		busybox=/bin/busybox
	else
		die "a static busybox is needed: apt-get install busybox-static (Debian/Ubuntu)"
	fi
fi
cacerts=""
for c in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
	if [ -s "$c" ]; then cacerts="$c"; break; fi
done
[ -n "$cacerts" ] || die "no CA bundle found (apt-get install ca-certificates)"

root="$(mktemp -d "${TMPDIR:-/tmp}/go-builder.XXXXXX")"
trap 'rm -rf "$root"' EXIT
log "staging $goversion ($goroot) in $root"

mkdir -p "$root"/{bin,etc/ssl/certs,usr/local,root,src}
# World-writable (sticky) like /tmp, so a build may also run as a non-root user.
install -d -m 1777 "$root/tmp" "$root/home/nonroot" "$root/go" "$root/go/bin" "$root/go/cache" "$root/go/pkg"
# The Go tree without its own test suite (not needed to build, ~20 MB).
tar -C "$goroot" --exclude=./test -cf - . | (mkdir -p "$root/usr/local/go" && tar -C "$root/usr/local/go" -xf -)
stage_busybox "$root" "$busybox"
cp "$cacerts" "$root/etc/ssl/certs/ca-certificates.crt"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
nonroot:x:65532:65532:nonroot:/home/nonroot:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

changes=(
	--change "ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	--change "ENV GOLANG_VERSION=${goversion#go}"
	--change "ENV GOTOOLCHAIN=local"
	--change "ENV GOPATH=/go"
	--change "ENV GOCACHE=/go/cache"
	--change "ENV CGO_ENABLED=0"
	--change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
	--change "LABEL org.kub-demo.go-builder=$stamp"
	--change "WORKDIR /src"
	--change 'CMD ["/bin/sh"]'
)
for v in GOPROXY GOSUMDB GOPRIVATE GONOSUMDB GONOPROXY GOINSECURE; do
	val="$(GOTOOLCHAIN=local "$gobin" env "$v")"
	[ -n "$val" ] && changes+=(--change "ENV $v=$val")
done

log "importing as $tag"
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . |
	docker import "${changes[@]}" -m "Go $goversion from $goroot, busybox, CA certificates" - "$tag" >/dev/null

# Smoke test: the shell, the toolchain and a writable cache, as root and as a non-root user.
docker run --rm "$tag" sh -c 'go version && go env GOROOT GOTOOLCHAIN >/dev/null' >&2 ||
	die "the new image $tag does not run go"
docker run --rm --user 65532:65532 "$tag" sh -c 'cd /tmp && printf "package main\nfunc main(){}\n" >m.go && go build -o /tmp/m m.go' >&2 ||
	die "the new image $tag cannot build as a non-root user"
log "made $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$tag"
