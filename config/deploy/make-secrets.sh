#!/bin/sh
# Makes a cell's secrets in DIR, once, on one machine, and fills their digests
# into the configs named after it (the AGENT_TOKEN_SHA256, MANAGER_TOKEN_SHA256
# and ADMIN_TOKEN_SHA256 placeholders of manager.yaml and agent.yaml).
#   make-secrets.sh /etc/torca /etc/torca/manager.yaml /etc/torca/agent.yaml
# Existing secrets are kept, so it is safe to run again. Which machine gets
# which file: docs/deploy.md ("Secrets").
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR [CONFIG...]" >&2; exit 2; }
dir=$1
shift
umask 077
mkdir -p "$dir"
for t in admin-token manager-token agent-token; do
  [ -s "$dir/$t" ] || openssl rand -hex 32 >"$dir/$t"
done
[ -s "$dir/zookeeper-auth" ] || printf 'torca:%s\n' "$(openssl rand -hex 24)" >"$dir/zookeeper-auth"
# A daemon checks a token against the SHA-256 of its text without the trailing newline.
digest() { printf %s "$(cat "$dir/$1")" | sha256sum | cut -d' ' -f1; }
for config in "$@"; do
  sed -i -e "s/AGENT_TOKEN_SHA256/$(digest agent-token)/" \
    -e "s/MANAGER_TOKEN_SHA256/$(digest manager-token)/" \
    -e "s/ADMIN_TOKEN_SHA256/$(digest admin-token)/" "$config"
done
