#!/bin/sh
# The cell's TLS: a CA (DIR/ca.crt, DIR/ca.key, made on the first run) and a
# certificate for one daemon (DIR/NAME.crt, DIR/NAME.key) naming its addresses
# (host names and IP addresses clients reach it by).
#   make-certs.sh /etc/torca/tls manager-1 manager-1.example.net 10.0.0.5
# Run it where the CA key is kept and copy each daemon its own pair and ca.crt
# (docs/deploy.md, "TLS"). Existing files are kept.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 DIR NAME ADDRESS..." >&2; exit 2; }
dir=$1
name=$2
shift 2
umask 077
mkdir -p "$dir"
if [ ! -s "$dir/ca.crt" ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 3650 -subj "/CN=Torca cell CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 644 "$dir/ca.crt"
fi
[ -s "$dir/$name.crt" ] && exit 0
sans=""
for a in "$@"; do
  case $a in
    *[!0-9.]* ) kind=DNS ;;
    * ) kind=IP ;;
  esac
  case $a in *:*) kind=IP ;; esac
  sans="${sans:+$sans,}$kind:$a"
done
ext=$(mktemp)
trap 'rm -f "$ext" "$dir/$name.csr"' EXIT
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\nauthorityKeyIdentifier=keyid\n' "$sans" >"$ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
# Under 825 days: clients refuse longer-lived server certificates.
openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -days 825 -out "$dir/$name.crt" -extfile "$ext" 2>/dev/null
chmod 644 "$dir/$name.crt"
