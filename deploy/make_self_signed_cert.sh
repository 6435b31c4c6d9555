#!/usr/bin/env bash
# A self-signed certificate for trying the production stack locally.
#   deploy/make_self_signed_cert.sh [DIR] [NAME ...]
# writes DIR/cert.pem and DIR/key.pem (default DIR: var/tls; names: localhost)
# valid for the names given plus 127.0.0.1 and ::1. Browsers will warn: use a
# real certificate (e.g. certbot) for a public site.
set -euo pipefail
dir=${1:-"$(dirname "$0")/../var/tls"}
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localhost)

command -v openssl >/dev/null || { echo "make_self_signed_cert: openssl is not installed (apt-get install openssl)" >&2; exit 1; }

san=""
for name in "${names[@]}"; do
  case "$name" in
    *[!A-Za-z0-9.*-]*) echo "make_self_signed_cert: not a host name: $name" >&2; exit 2 ;;
  esac
  san+="DNS:${name},"
done
san+="IP:127.0.0.1,IP:::1"

mkdir -p "$dir"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 \
  -subj "/CN=${names[0]}" \
  -addext "subjectAltName=${san}" \
  -addext "basicConstraints=critical,CA:true" \
  -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 600 "$dir/key.pem"
chmod 644 "$dir/cert.pem"
echo "certificate: $dir/cert.pem (${san})"
echo "key:         $dir/key.pem"
