#!/usr/bin/env bash
# Builds a Debian package of Torca from the npm tarball (docs/deploy.md):
#   scripts/build-deb.sh [TARBALL] [OUTDIR]
# Without TARBALL it runs `npm pack` first. The package installs the tarball's
# contents in /usr/lib/torca, the `torca` command as /usr/bin/torca (where the
# systemd units look for it), the units in /lib/systemd/system (not enabled) and
# the example configs in /usr/share/doc/torca/examples. Its ZooKeeper addon is
# the one built into the tarball: build on the distribution and architecture
# you deploy to.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p "require('./package.json').version")
tarball=${1:-}
out=${2:-.}
mkdir -p "$out"
if [ -z "$tarball" ]; then
  npm pack --pack-destination "$out" >/dev/null
  tarball=$out/torca-$version.tgz
fi
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/usr/lib/torca" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/usr/share/doc/torca" "$stage/DEBIAN"
tar xzf "$tarball" -C "$stage/usr/lib/torca" --strip-components=1 --no-same-owner
ln -s ../lib/torca/bin/torca.js "$stage/usr/bin/torca"
cp "$stage"/usr/lib/torca/config/systemd/*.service "$stage/lib/systemd/system/"
cp -r "$stage/usr/lib/torca/config" "$stage/usr/share/doc/torca/examples"
cp "$stage/usr/lib/torca/docs/deploy.md" "$stage/usr/share/doc/torca/"

cat >"$stage/DEBIAN/control" <<CONTROL
Package: torca
Version: $version
Architecture: $arch
Maintainer: Torca developers <torca@example.net>
Depends: nodejs (>= 20), openssl
Recommends: lxc
Suggests: zookeeperd, postgresql
Section: admin
Priority: optional
Installed-Size: $(du -sk "$stage" | cut -f1)
Description: cluster task manager (Borg/HTCondor style) on ZooKeeper
 Central managers, execute-server agents, naming and alerting, and the
 torca command line. See /usr/share/doc/torca/deploy.md.
CONTROL

# The managers' unit runs as the system user torca.
cat >"$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  getent passwd torca >/dev/null || useradd --system --home-dir /var/lib/torca --shell /usr/sbin/nologin torca
  if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi
POSTINST
chmod 755 "$stage/DEBIAN/postinst"

deb=$out/torca_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb" >/dev/null
echo "$deb"
