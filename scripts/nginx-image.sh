#!/usr/bin/env bash
# Makes an nginx image with no registry, the way scripts/postgres-image.sh makes
# local/postgres:15: `docker import` of a small root file system holding this machine's nginx
# (Debian's nginx-light or nginx package), the shared libraries it loads, a static busybox for
# /bin/sh, and an entrypoint for Kubernetes. For the course's lesson "Using a Reverse Proxy
# for the Frontend" (deploy/lessons/frontend-nginx), where the official nginx image
# would be pulled.
#
#   apt-get install nginx-light busybox-static    # once (Debian/Ubuntu)
#   scripts/nginx-image.sh                        # prints the tag, e.g. local/nginx:1.22
#
# The image runs as uid 65532 with a read-only root: nginx writes only to /tmp (a volume).
# It serves /usr/share/nginx/html and includes /etc/nginx/conf.d/*.conf (the lesson mounts
# its server block there from a ConfigMap). At start the entrypoint writes
# /tmp/nginx/resolver.conf, "resolver <the pod's DNS server> valid=10s;", from
# /etc/resolv.conf: nginx has no resolver of its own, and a proxy_pass to a variable needs
# one (the lesson's README says why).
#
# Settings (environment):
#   NGINX_IMAGE  tag to create (default local/nginx:<major.minor of the nginx found>)
#   FORCE=1      rebuild even when an image made from the same nginx exists
# Only the tag is printed on stdout; progress goes to stderr.
set -euo pipefail

log() { printf 'nginx-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
. "$(dirname "$0")/local-image.sh"

command -v docker >/dev/null || die "docker not found"
nginx=/usr/sbin/nginx
[ -x "$nginx" ] || die "no nginx found (Debian/Ubuntu: apt-get install nginx-light)"
version="$("$nginx" -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')"   # 1.22.1
[ -n "$version" ] || die "could not read nginx's version"
tag="${NGINX_IMAGE:-local/nginx:$(cut -d. -f1,2 <<<"$version")}"

recipe=1
stamp="$version/$(uname -m)/r$recipe"
image_current org.kub-demo.nginx "$tag" "$stamp" && exit 0

busybox="$(static_busybox)"
[ -n "$busybox" ] || die "a static busybox is needed: apt-get install busybox-static (Debian/Ubuntu)"

root="$(mktemp -d "${TMPDIR:-/tmp}/nginx-image.XXXXXX")"
trap 'rm -rf "$root"' EXIT
log "staging nginx $version in $root"

mkdir -p "$root/usr/sbin" "$root/etc/nginx/conf.d" "$root/usr/share/nginx/html" "$root/bin" "$root/usr/local/bin"
cp "$nginx" "$root/usr/sbin/"
cp /etc/nginx/mime.types "$root/etc/nginx/"
stage_libs "$root" "$nginx"
stage_busybox "$root" "$busybox"
printf 'root:x:0:0:root:/root:/bin/sh\nnginx:x:65532:65532:nginx:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnginx:x:65532:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
install -d -m 1777 "$root/tmp"
echo '<!doctype html><title>nginx</title><p>nginx from scripts/nginx-image.sh' >"$root/usr/share/nginx/html/index.html"

# Everything nginx writes goes to /tmp; logs go to the container's output.
cat >"$root/etc/nginx/nginx.conf" <<'CONF'
worker_processes 1;
pid /tmp/nginx/nginx.pid;
error_log stderr notice;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    client_body_temp_path /tmp/nginx/client_body;
    proxy_temp_path /tmp/nginx/proxy;
    fastcgi_temp_path /tmp/nginx/fastcgi;
    uwsgi_temp_path /tmp/nginx/uwsgi;
    scgi_temp_path /tmp/nginx/scgi;
    server_tokens off;
    # The pod's DNS server, written at start by the entrypoint.
    include /tmp/nginx/resolver.conf;
    include /etc/nginx/conf.d/*.conf;
}
CONF

cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'SH'
#!/bin/sh
# Writes the resolver nginx needs for a proxy_pass to a variable (the pod's DNS server, from
# /etc/resolv.conf, re-resolved every 10 s), then runs nginx in the foreground.
set -eu
mkdir -p /tmp/nginx
dns="$(awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf 2>/dev/null || true)"
case "$dns" in
*:*) dns="[$dns]" ;; # an IPv6 address
"") dns=127.0.0.11 ;; # Docker's embedded DNS, when resolv.conf names none
esac
echo "resolver $dns valid=10s ipv6=off;" >/tmp/nginx/resolver.conf
exec "$@"
SH
chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"

old="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
log "importing as $tag"
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . |
	docker import \
		--change "LABEL org.kub-demo.nginx=$stamp" \
		--change "USER 65532:65532" \
		--change "EXPOSE 8080" \
		--change "VOLUME /tmp" \
		--change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
		--change 'CMD ["/usr/sbin/nginx", "-g", "daemon off;"]' \
		-m "nginx $version from $nginx, busybox" - "$tag" >/dev/null
# SIGQUIT is nginx's graceful stop, as in the official image; docker import cannot set it.
printf 'FROM %s\nSTOPSIGNAL SIGQUIT\n' "$tag" | docker build -q -t "$tag" - >/dev/null

# Smoke test: it starts as uid 65532 with a read-only root, and serves its page.
name="nginx-image-check-$$"
printf 'server { listen 8080; root /usr/share/nginx/html; }\n' >"$root/check.conf"
docker run -d --name "$name" --read-only --tmpfs /tmp -v "$root/check.conf:/etc/nginx/conf.d/check.conf:ro" "$tag" >/dev/null
trap 'docker rm -f -v "$name" >/dev/null 2>&1; rm -rf "$root"' EXIT
ok=""
for _ in $(seq 1 30); do
	if docker exec "$name" wget -q -O - http://127.0.0.1:8080/ 2>/dev/null | grep -q nginx-image.sh; then ok=1; break; fi
	sleep 0.3
done
[ -n "$ok" ] || { docker logs "$name" >&2; die "the new image $tag does not serve its page"; }
if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
	docker image rm "$old" >/dev/null 2>&1 || true
fi
log "made $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$tag"
