#!/usr/bin/env bash
# Installs everything ringwatch needs to build, test and run its lab on Debian 12.
# Idempotent: when every package is already present it only runs dpkg-query and exits.
# Must run as root (or with sudo available) because it uses apt-get.
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config clang-format
  libboost-dev libboost-program-options-dev rapidjson-dev prometheus-cpp-dev libc-ares-dev
  libgtest-dev libgmock-dev
  # `ringwatch spec import` reads nutcracker's YAML configs (issue 11).
  libyaml-cpp-dev
  # memcached's built-in proxy is built from Debian's source package
  # (tools/build-memcached-proxy.sh): apt-get source, then configure and make.
  dpkg-dev libevent-dev
  # Packaging (issue 14): man pages from the programs' --help; CPack finds the
  # binaries for dpkg-shlibdeps (dpkg-dev) with file.
  help2man file
  # The migration journal's header names the plan file by its SHA-256
  # (OpenSSL's libcrypto; issue 12, the engine's journal integrity).
  libssl-dev
  # ringwatchd's --web-config (issue 13): TLS over Boost.Beast (libssl-dev above)
  # and bcrypt hashes checked by libxcrypt's crypt_r.
  libcrypt-dev
)
# tools/test.sh's second pass builds with clang: the tests under ASan+UBSan and
# the libFuzzer targets in fuzz/ (issue 12), linked by lld.
build_packages+=(clang-14 libfuzzer-14-dev lld-14)
# Programs the lab, the tests and the benchmarks start on loopback.
# dnsmasq-base is the binary without the system service (we never want a
# resolver taking over port 53 on the host).
runtime_packages=(
  memcached nutcracker dnsmasq-base prometheus prometheus-alertmanager
  iproute2 procps curl
  # Packaging tests (issue 14): the completion with bash-completion loaded,
  # groff to check the man pages, jq and systemd-analyze in the package test.
  bash-completion groff-base jq systemd
  # ringwatchd's status page is tested in a real headless browser, its TLS
  # with certificates made by openssl (issue 13).
  chromium fonts-dejavu-core openssl
)

missing=()
for pkg in "${build_packages[@]}" "${runtime_packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

root=$(cd "$(dirname "$0")/.." && pwd)
memcached_proxy() {
  local binary
  binary=$("$root/tools/build-memcached-proxy.sh")
  echo "install-deps: memcached with its proxy: $binary"
}

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#build_packages[@]} build and ${#runtime_packages[@]} runtime packages present"
  memcached_proxy
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 3; }
  sudo_cmd=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
# The memcached, prometheus and alertmanager packages start system services on
# install; ringwatch starts its own instances on free ports, so keep apt from
# starting any (policy-rc.d exit 101 = "action forbidden"), and restore the
# previous policy afterwards.
policy=/usr/sbin/policy-rc.d
placed_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod 755 "$policy"
  placed_policy=1
fi
cleanup() { [[ $placed_policy -eq 1 ]] && "${sudo_cmd[@]}" rm -f "$policy"; true; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only if they are missing or older than a day.
if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1) ]]; then
  "${sudo_cmd[@]}" apt-get update -q
fi
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

# Packaged services may still have been started by a postinst that ignores
# policy-rc.d; the lab and tests need none of them.
for svc in memcached prometheus prometheus-alertmanager; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    "${sudo_cmd[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done
memcached_proxy
echo "install-deps: done"
