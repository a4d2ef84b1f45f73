#!/bin/sh
# build-deb.sh builds the Debian package with dpkg-deb:
#   dist/tollguard_<version>_<arch>.deb   (DEB_DIR overrides dist)
# It holds the binary, the systemd unit, the example config as the conffile
# /etc/tollguard/tollguard.yaml (data_dir set to /var/lib/tollguard), the
# fail2ban filter, the maintainer scripts of packaging/debian, and the
# Prometheus rules and Grafana dashboard as documentation. DEB_VERSION
# overrides the version worked out from `git describe`.
set -eu
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${DEB_DIR:-dist}
ARCH=$(dpkg --print-architecture)
RAW=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
# A Debian version starts with a digit and has no '-' without a revision:
# v1.2.3-4-gabc → 1.2.3+4+gabc; no release tag → 0.0.0~git<commit>.
if TAG=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null); then
	VER=${TAG#v}
else
	VER=0.0.0~git$RAW
fi
VER=$(printf '%s' "$VER" | tr -- '-' '+' | tr -c 'A-Za-z0-9.+~' '.')
VER=${DEB_VERSION:-$VER}

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
root=$STAGE/tollguard
doc=$root/usr/share/doc/tollguard
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/tollguard" \
	"$root/etc/fail2ban/filter.d" "$doc/examples/prometheus" "$doc/examples/grafana" "$doc/examples/fail2ban/jail.d"

$GO build -ldflags "-X github.com/tollguard/tollguard/internal/cli.Version=$RAW" \
	-o "$root/usr/bin/tollguard" ./cmd/tollguard
install -m 0644 packaging/tollguard.service "$root/lib/systemd/system/tollguard.service"
sed 's|^data_dir: \./data$|data_dir: /var/lib/tollguard|' examples/tollguard.yaml >"$root/etc/tollguard/tollguard.yaml"
if ! grep -q '^data_dir: /var/lib/tollguard$' "$root/etc/tollguard/tollguard.yaml"; then
	echo "build-deb: examples/tollguard.yaml has no 'data_dir: ./data' line to rewrite" >&2
	exit 1
fi
chmod 0640 "$root/etc/tollguard/tollguard.yaml"
install -m 0644 examples/fail2ban/filter.d/tollguard.conf "$root/etc/fail2ban/filter.d/tollguard.conf"
install -m 0644 examples/fail2ban/jail.d/tollguard.local "$doc/examples/fail2ban/jail.d/"
install -m 0644 examples/prometheus/tollguard.rules.yml "$doc/examples/prometheus/"
install -m 0644 examples/grafana/tollguard.json "$doc/examples/grafana/"
install -m 0644 README.md "$doc/"
[ ! -f README.zh-CN.md ] || install -m 0644 README.zh-CN.md "$doc/"
for s in postinst prerm postrm; do
	install -m 0755 "packaging/debian/$s" "$root/DEBIAN/$s"
done
printf '%s\n' /etc/tollguard/tollguard.yaml /etc/fail2ban/filter.d/tollguard.conf >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: tollguard
Version: $VER
Architecture: $ARCH
Maintainer: tollguard maintainers <maintainers@tollguard.invalid>
Installed-Size: $size
Depends: adduser
Recommends: nftables
Suggests: fail2ban, prometheus
Section: net
Priority: optional
Description: SIP toll-fraud guard for FreeSWITCH and other PBXs
 tollguard stops scanners, password guessing and fraudulent calls before
 they reach the PBX: an inline SIP edge proxy or a sidecar that bans in
 nftables, with an audited event store, an admin API and alerts to
 DingTalk, WeCom, webhooks and mail.
CONTROL

mkdir -p "$OUT"
deb="$OUT/tollguard_${VER}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
