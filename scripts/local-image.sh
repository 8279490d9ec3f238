# shellcheck shell=bash
# What the scripts that make an image with `docker import` share (go-builder-image.sh,
# postgres-image.sh, nginx-image.sh). Sourced once they have defined log and die.

# image_current LABEL TAG STAMP prints TAG and succeeds when TAG exists and was made by the
# same recipe from the same input (its label LABEL is STAMP), unless FORCE=1.
image_current() {
	local have
	[ "${FORCE:-0}" != 1 ] || return 1
	have="$(docker image inspect -f "{{index .Config.Labels \"$1\"}}" "$2" 2>/dev/null)" || return 1
	[ "$have" = "$3" ] || return 1
	log "$2 is up to date ($3)"
	echo "$2"
}

# static_busybox prints the path of a static busybox, or nothing. It must be static: it is
# the image's shell, before any library is found.
static_busybox() {
	local b
	for b in /bin/busybox /usr/bin/busybox; do
		if [ -x "$b" ] && ! LC_ALL=C ldd "$b" >/dev/null 2>&1; then
			echo "$b"
			return 0
		fi
	done
}

# stage_busybox ROOT BUSYBOX puts BUSYBOX at ROOT/bin/busybox, with a link for each applet.
stage_busybox() {
	local applet
	mkdir -p "$1/bin"
	cp "$2" "$1/bin/busybox"
	for applet in $("$2" --list); do
		[ -e "$1/bin/$applet" ] || ln -s busybox "$1/bin/$applet"
	done
}

# stage_libs ROOT FILE... copies every shared library the files load, and the dynamic
# loader, under ROOT at their own paths.
stage_libs() {
	local root=$1 libs l f
	shift
	libs="$(for f in "$@"; do ldd "$f"; done | awk '/=> not found/ {print "MISSING " $1} /=> \// {print $3} /^\t\/lib/ {print $1}' | sort -u)"
	if grep -q '^MISSING' <<<"$libs"; then die "libraries not found: $(grep '^MISSING' <<<"$libs" | tr '\n' ' ')"; fi
	for l in $libs; do
		mkdir -p "$root$(dirname "$l")"
		cp -L "$l" "$root$l"
	done
}
