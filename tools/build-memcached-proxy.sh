#!/usr/bin/env bash
# Builds memcached with its built-in proxy (--enable-proxy) from Debian's own
# source package, into a cache folder outside the source tree, and prints the
# binary's path. Idempotent: when the cached binary is there and answers with
# the right version, it only prints the path.
#
# Debian 12's memcached binary is built without the proxy; Debian 13's
# (trixie) source package 1.6.38 carries the proxy with its vendored Lua,
# mcmc and routelib. Nothing is fetched from anywhere but the Debian mirror
# this machine already uses (a deb-src entry for trixie, source only: no
# binary package ever comes from it). The binary is never committed.
#
#   RINGWATCH_CACHE_DIR  where it goes (default /var/cache/ringwatch)
#
# Needs root (apt-get) the first time, and dpkg-dev, libevent-dev and a
# compiler (tools/install-deps.sh installs them and then calls this).
set -euo pipefail
version=1.6.38
debian_version=1.6.38-1
cache=${RINGWATCH_CACHE_DIR:-/var/cache/ringwatch}
dest=$cache/memcached-proxy-$version
binary=$dest/memcached

if [[ -x $binary ]] && "$binary" -V 2>/dev/null | grep -qx "memcached $version" &&
   [[ -f $dest/routelib.lua ]]; then
  echo "$binary"
  exit 0
fi

sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)

# Source only, from the mirror the machine's own Debian entries use.
sources=/etc/apt/sources.list.d/ringwatch-trixie-src.sources
known=$(apt-cache showsrc "memcached=$debian_version" 2>/dev/null || true)
if ! grep -q "^Version: $debian_version" <<<"$known"; then
  mirror=$(grep -hoE '^URIs:[[:space:]]*[^[:space:]]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null |
           head -n 1 | awk '{print $2}')
  if [[ -z $mirror ]]; then
    mirror=$(grep -hoE '^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+/debian/?[[:space:]]' \
               /etc/apt/sources.list 2>/dev/null | head -n 1 | awk '{print $NF}')
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "build-memcached-proxy: adding deb-src for trixie from $mirror (source packages only)" >&2
  printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" | "${sudo_cmd[@]}" tee "$sources" >/dev/null
  "${sudo_cmd[@]}" apt-get update -q >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "build-memcached-proxy: fetching memcached $debian_version source from Debian" >&2
apt-get source -q --download-only -o APT::Sandbox::User=root "memcached=$debian_version" >/dev/null 2>&1 ||
  apt-get source -q --download-only "memcached=$debian_version" >/dev/null
# apt-get checked the files against the signed Sources index; the .dsc's own
# signature is the uploader's, whose key is not on this machine: say nothing of it.
dpkg-source -x "memcached_$debian_version.dsc" src >extract.log 2>&1 || { cat extract.log >&2; exit 1; }
cd src
echo "build-memcached-proxy: building with --enable-proxy (about 20 s on 2 cores)" >&2
./configure -q --enable-proxy >configure.log 2>&1 || { tail -n 20 configure.log >&2; exit 1; }
make -s -j"${RINGWATCH_JOBS:-2}" >make.log 2>&1 || { tail -n 20 make.log >&2; exit 1; }
"${sudo_cmd[@]}" mkdir -p "$dest"
"${sudo_cmd[@]}" install -m 755 memcached "$dest/memcached"
"${sudo_cmd[@]}" install -m 644 vendor/routelib/routelib.lua "$dest/routelib.lua"
"$binary" -V | grep -qx "memcached $version" || { echo "build-memcached-proxy: the built binary does not say $version" >&2; exit 1; }
echo "$binary"
