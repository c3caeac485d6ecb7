#!/usr/bin/env bash
# Installs what Torca needs on a fresh Debian 12 machine with Node 20, then builds.
# Idempotent: each step runs only when its result is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
[ -f /usr/share/java/zookeeper.jar ] || need_pkgs+=(zookeeper)
command -v lxc-execute >/dev/null 2>&1 || need_pkgs+=(lxc)
command -v java >/dev/null 2>&1 || need_pkgs+=(default-jre-headless)
# `torca up --tls` makes the cell's CA and certificates with it (src/cell/certificates.ts).
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# The history store's tests run a real PostgreSQL server (test/harness/postgres.ts); the manager itself needs none.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_pkgs+=(postgresql)
# The partition tests cut loopback traffic with nftables.
[ -x /usr/sbin/nft ] || need_pkgs+=(nftables)
# The metrics tests check the manager's and agents' /metrics with promtool (Debian ships it in prometheus).
[ -x /usr/bin/promtool ] || need_pkgs+=(prometheus)
# The naming tests compare `dig` over UDP and TCP against the DNS server.
command -v dig >/dev/null 2>&1 || need_pkgs+=(bind9-dnsutils)
if [ "${TORCA_BROWSER_TESTS:-1}" != "0" ] && ! command -v chromium >/dev/null 2>&1; then need_pkgs+=(chromium); fi

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${need_pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
  else
    echo "setup: missing Debian packages: ${need_pkgs[*]}" >&2
    echo "setup: install them with: sudo apt-get install ${need_pkgs[*]}" >&2
    exit 1
  fi
fi

if [ -L node_modules ]; then
  # A shared install (a worktree linking another checkout's node_modules): npm ci here would empty it for everyone.
  [ -f node_modules/.package-lock.json ] || { echo "setup: node_modules links to an empty install; run npm ci where it points" >&2; exit 1; }
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies" >&2
  npm ci --no-audit --no-fund >&2
fi
if [ ! -f node_modules/zookeeper/build/Release/zookeeper.node ]; then
  npm rebuild zookeeper >&2
fi
# npm ci runs it too (postinstall); here it covers an install made before the patch existed. A no-op once applied.
node scripts/patch-zookeeper-binding.js >&2

echo "setup: building" >&2
rm -rf dist
npx tsc -p tsconfig.json >&2
