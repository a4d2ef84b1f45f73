#!/bin/sh
# install-test-deps.sh installs the external programs tollguard's integration
# tests run against: sipp (Debian package sip-tester), Kamailio with its TLS
# modules, SIPVicious, fail2ban, nftables, PostgreSQL, Redis, iproute2,
# util-linux (unshare), openssl, promtool (Debian package prometheus, for the alerting rules), and
# systemd-analyze, dpkg-deb and adduser (for the Debian package test). It is
# idempotent: packages already installed are left alone, and apt-get update
# runs at most once, only when something is missing.
#
# Run as root on Debian 12 (bookworm) or a compatible system:
#   sudo scripts/install-test-deps.sh
# Exit status is non-zero when anything could not be installed.
set -eu

# package:command pairs; the command proves the package is usable.
PKGS="
sip-tester:sipp
kamailio:kamailio
kamailio-tls-modules:
sipvicious:svcrack
fail2ban:fail2ban-client
nftables:nft
postgresql:
redis-server:redis-server
iproute2:ip
util-linux:unshare
openssl:openssl
python3:python3
prometheus:promtool
systemd:systemd-analyze
adduser:adduser
dpkg:dpkg-deb
"

say() { printf 'install-test-deps: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		say "not root, re-running with sudo"
		exec sudo -E sh "$0" "$@"
	fi
	say "must run as root" >&2
	exit 1
fi

missing=""
for pair in $PKGS; do
	pkg=${pair%%:*}
	if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		say "$pkg: already installed"
	else
		say "$pkg: missing"
		missing="$missing $pkg"
	fi
done

if [ -n "$missing" ]; then
	export DEBIAN_FRONTEND=noninteractive
	say "apt-get update"
	apt-get update
	say "apt-get install -y --no-install-recommends$missing"
	# shellcheck disable=SC2086 # word splitting of the package list is wanted
	apt-get install -y --no-install-recommends $missing
fi

# The packaged services are not needed by the tests (each test starts its own
# instance); stopping them frees the well-known ports. Failure is harmless.
for svc in kamailio redis-server postgresql fail2ban prometheus; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		say "stopping service $svc (tests start their own)"
		systemctl stop "$svc" || true
	fi
done

status=0
for pair in $PKGS; do
	cmd=${pair#*:}
	[ -n "$cmd" ] || continue
	if command -v "$cmd" >/dev/null 2>&1; then
		say "ok: $cmd"
	else
		say "still missing: $cmd (package ${pair%%:*})" >&2
		status=1
	fi
done
if ! ls /usr/lib/*/kamailio/modules/tls.so >/dev/null 2>&1; then
	say "still missing: kamailio tls module" >&2
	status=1
fi
exit $status
