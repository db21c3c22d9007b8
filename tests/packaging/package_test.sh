#!/usr/bin/env bash
# The Debian package, end to end: CPack builds it, dpkg-deb inspects it, dpkg
# installs it into a throwaway root (chrootless maintainer scripts, so the
# postinst makes the ringwatch user there and not on this machine), the unit
# passes `systemd-analyze verify`, and the installed programs run: --version,
# a probe of a lab, ringwatchd on the shipped example fleet pointed at that
# lab, the shipped migration plan run on it. Then a purge removes it all.
# CTest label `package` (skipped in the ASan pass).
#
# Usage: package_test.sh BUILD_DIR VERSION
set -euo pipefail
build=$(cd "$1" && pwd) version=$2
if [[ $(id -u) -ne 0 ]]; then
  echo "skipped: dpkg --root and useradd --prefix need root"
  exit 77
fi
scratch=$(mktemp -d /tmp/ringwatch-package-test.XXXXXX)
root=$scratch/root
lab=$scratch/lab
daemon_pid="" lab_up=0
cleanup() {
  if [[ -n $daemon_pid ]]; then kill "$daemon_pid" 2>/dev/null || true; fi
  if [[ $lab_up == 1 ]]; then "$root/usr/bin/ringwatch" lab down --dir "$lab" >/dev/null 2>&1 || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }

step "cpack"
cpack --config "$build/CPackConfig.cmake" -B "$scratch/out" >"$scratch/cpack.log" 2>&1 ||
  { cat "$scratch/cpack.log"; fail "cpack failed"; }
deb=$scratch/out/ringwatch_${version}_amd64.deb
[[ -f $deb ]] || fail "no $(basename "$deb") in $(ls "$scratch/out")"

step "dpkg-deb -f / -c"
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == ringwatch && $(field Version) == "$version" ]] || fail "control: $(field Package) $(field Version)"
depends=$(field Depends)
for package in libc6 libstdc++6 libc-ares2 libboost-program-options passwd; do
  [[ $depends == *"$package"* ]] || fail "Depends lacks $package: $depends"
done
recommends=$(field Recommends)
for package in memcached nutcracker; do
  [[ $recommends == *"$package"* ]] || fail "Recommends lacks $package: $recommends"
done
dpkg-deb -c "$deb" | awk '{print $6}' >"$scratch/files"
for file in ./usr/bin/ringwatch ./usr/bin/ringwatchd ./lib/systemd/system/ringwatchd.service \
  ./etc/ringwatch/fleet.json ./etc/default/ringwatchd \
  ./usr/share/man/man1/ringwatch.1.gz ./usr/share/man/man8/ringwatchd.8.gz \
  ./usr/share/man/man5/ringwatch-spec.5.gz \
  ./usr/share/bash-completion/completions/ringwatch ./usr/share/bash-completion/completions/ringwatchd \
  ./usr/share/ringwatch/alerts/ringwatch.rules.yml ./usr/share/ringwatch/alerts/ringwatch-migration.rules.yml \
  ./usr/share/ringwatch/examples/fleet.json \
  ./usr/share/ringwatch/examples/replace-backend-plan.json \
  ./usr/share/ringwatch/examples/twemproxy-ip-only.json \
  ./usr/share/ringwatch/examples/twemproxy-cluster.json ./usr/share/doc/ringwatch/README.md; do
  grep -qxF "$file" "$scratch/files" || fail "the package lacks $file"
done
dpkg-deb -e "$deb" "$scratch/control"
[[ $(sort "$scratch/control/conffiles") == $'/etc/default/ringwatchd\n/etc/ringwatch/fleet.json' ]] ||
  fail "conffiles: $(cat "$scratch/control/conffiles")"

step "dpkg --root (chrootless maintainer scripts)"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/etc" "$root/bin"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
grep -E '^(root|nobody):' /etc/passwd >"$root/etc/passwd"
grep -E '^(root|nogroup):' /etc/group >"$root/etc/group"
: >"$root/etc/shadow"
: >"$root/etc/gshadow"
cp /etc/login.defs "$root/etc/login.defs"
host_users=$(md5sum /etc/passwd /etc/group)
dpkg_root() {
  dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null "$@" \
    >>"$scratch/dpkg.log" 2>&1 || { cat "$scratch/dpkg.log"; fail "dpkg $*"; }
}
dpkg_root -i "$deb"
dpkg_root -i "$deb" # again: the postinst must not add the user twice
[[ $(grep -c '^ringwatch:' "$root/etc/passwd") == 1 ]] || fail "passwd: $(cat "$root/etc/passwd")"
grep -q '^ringwatch:x:[0-9]*:[0-9]*:[^:]*:/var/lib/ringwatch:/usr/sbin/nologin$' "$root/etc/passwd" ||
  fail "the ringwatch user: $(grep '^ringwatch:' "$root/etc/passwd")"
grep -q '^ringwatch:' "$root/etc/group" || fail "no ringwatch group"
[[ $(md5sum /etc/passwd /etc/group) == "$host_users" ]] || fail "the install changed this machine's users"

step "systemd-analyze verify"
unit=$root/lib/systemd/system/ringwatchd.service
grep -qxF 'ExecStart=/usr/bin/ringwatchd $ARGS' "$unit" || fail "ExecStart: $(grep ExecStart "$unit")"
grep -qxF 'EnvironmentFile=-/etc/default/ringwatchd' "$unit" || fail "EnvironmentFile"
grep -qx 'ARGS="--fleet /etc/ringwatch/fleet.json"' "$root/etc/default/ringwatchd" || fail "ARGS="
# What verify resolves besides the unit: its ExecReload program and the
# targets it is ordered after.
cp /bin/kill "$root/bin/kill"
cp -a /lib/systemd/system/*.target "$root/lib/systemd/system/"
verify=$(systemd-analyze --root="$root" verify --man=no "$unit" 2>&1) || fail "verify: $verify"
[[ -z $verify ]] || fail "systemd-analyze verify: $verify"
security=$(systemd-analyze security --offline=true --root="$root" --threshold=20 "$unit" 2>&1) ||
  fail "exposure above 2.0: $(tail -n 1 <<<"$security")"
echo "$(tail -n 1 <<<"$security")"

step "the installed programs"
ringwatch=$root/usr/bin/ringwatch
ringwatchd=$root/usr/bin/ringwatchd
[[ $("$ringwatch" --version) == "ringwatch $version" ]] || fail "ringwatch --version: $("$ringwatch" --version)"
[[ $("$ringwatchd" --version) == "ringwatchd $version" ]] || fail "ringwatchd --version"
zcat "$root/usr/share/man/man1/ringwatch.1.gz" | groff -man -Tutf8 -P-cbou 2>/dev/null >"$scratch/ringwatch.1.txt"
grep -q 'ringwatch lab fault' "$scratch/ringwatch.1.txt" || fail "man ringwatch lacks the lab fault command"

"$ringwatch" lab up --dir "$lab" >/dev/null
lab_up=1
"$ringwatch" probe --cluster "$lab/cluster.json" --format nagios >"$scratch/probe.out" ||
  fail "probe of a healthy lab: $(cat "$scratch/probe.out")"
grep -q '^RINGWATCH OK' "$scratch/probe.out" || fail "probe: $(cat "$scratch/probe.out")"

step "ringwatchd --fleet (the shipped example, pointed at the lab)"
# The example's own cluster, schedule and checks, with the lab's proxies,
# backends and DNS instead of its documentation addresses; no alert sink.
jq --slurpfile lab "$lab/cluster.json" \
  '.listen = "127.0.0.1:0" | del(.alerts.alertmanager)
   | .clusters[0].inline = ($lab[0] + {name: .clusters[0].inline.name})' \
  "$root/etc/ringwatch/fleet.json" >"$scratch/fleet.json"
cluster=$(jq -r '.clusters[0].inline.name' "$scratch/fleet.json")
"$ringwatchd" --fleet "$scratch/fleet.json" 2>"$scratch/daemon.log" &
daemon_pid=$!
wait_for() {
  local what=$1 test=$2
  for _ in $(seq 1 150); do
    eval "$test" && return 0
    kill -0 "$daemon_pid" 2>/dev/null || fail "ringwatchd exited: $(cat "$scratch/daemon.log")"
    sleep 0.1
  done
  fail "$what: $(cat "$scratch/daemon.log")"
}
wait_for "ringwatchd listening" 'grep -q "event=listening" "$scratch/daemon.log"'
address=$(sed -n 's/.*event=listening address=\([0-9.:]*\).*/\1/p' "$scratch/daemon.log" | head -n 1)
wait_for "a first round of $cluster" \
  'curl -fsS "http://$address/v1/clusters/$cluster" -o "$scratch/report.json" 2>/dev/null'
[[ $(jq -r .status "$scratch/report.json") == OK ]] || fail "report: $(cat "$scratch/report.json")"
curl -fsS "http://$address/metrics" -o "$scratch/metrics.txt"
grep -q "ringwatch_build_info{version=\"$version\"}" "$scratch/metrics.txt" ||
  fail "ringwatch_build_info lacks version $version"
kill -HUP "$daemon_pid" # what `systemctl reload ringwatchd` sends
wait_for "a reload" 'grep -q "event=reload outcome=success" "$scratch/daemon.log"'
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "ringwatchd exited $? on SIGTERM"
daemon_pid=""

step "the shipped twemproxy spec's settings on the lab"
# Its canary and deadlines, with the lab's nodes instead of documentation addresses.
jq --slurpfile example "$root/usr/share/ringwatch/examples/twemproxy-cluster.json" \
  '. + {canary: $example[0].canary, timeouts: $example[0].timeouts}' \
  "$lab/cluster.json" >"$scratch/example-settings.json"
"$ringwatch" probe --cluster "$scratch/example-settings.json" --format nagios \
  >"$scratch/example-settings.out" || fail "probe: $(cat "$scratch/example-settings.out")"

step "the shipped IP-only spec's shape on the lab (backends without DNS names)"
jq '{name, proxies: [.proxies[] | del(.dns_vantage)], backends: [.backends[] | {name, address, port}],
    canary, timeouts}' "$lab/cluster.json" >"$scratch/ip-only.json"
fields='[.backends[] | keys] | unique'
lab_fields=$(jq -c "$fields" "$scratch/ip-only.json")
example_fields=$(jq -c "$fields" "$root/usr/share/ringwatch/examples/twemproxy-ip-only.json")
# Quoted: unquoted, the right side of == is a glob pattern, and [[...]] is a bracket expression.
[[ $lab_fields == "$example_fields" ]] ||
  fail "the IP-only example's backends have fields $example_fields, the lab copy $lab_fields"
"$ringwatch" probe --cluster "$scratch/ip-only.json" --checks canary,connections --format nagios \
  >"$scratch/ip-only.out" || fail "IP-only probe: $(cat "$scratch/ip-only.out")"

step "the shipped migration plan on the lab"
# The plan's blackout hours would make the run wait at some times of day.
jq '.schedule.blackouts = []' "$root/usr/share/ringwatch/examples/replace-backend-plan.json" \
  >"$scratch/plan.json"
RINGWATCH=$ringwatch RINGWATCH_LAB_DIR=$lab "$ringwatch" migrate run --plan "$scratch/plan.json" \
  --state "$scratch/migration" --var cluster=lab --var spec="$lab/cluster.json" \
  --var deploy="$(dirname "$0")/lab-deploy.sh" --var new=b4 --var old=b1 >"$scratch/migrate.log" 2>&1 ||
  fail "migrate run: $(tail -n 20 "$scratch/migrate.log")"
jq -e '[.backends[].name] == ["b2", "b3", "b4"]' "$lab/cluster.json" >/dev/null ||
  fail "after the plan the lab has $(jq -c '[.backends[].name]' "$lab/cluster.json")"
"$ringwatch" lab down --dir "$lab" >/dev/null
lab_up=0

step "dpkg --purge"
dpkg_root --purge ringwatch
left=$(cd "$root" && find etc/ringwatch etc/default/ringwatchd usr/bin lib/systemd/system/ringwatchd.service \
  usr/share/ringwatch -print 2>/dev/null || true)
[[ -z $left ]] || fail "left after purge: $left"
echo "package: all checks pass"
