#!/bin/sh
# Regenerates the TLS test fixtures: a CA, a server certificate for localhost and
# 127.0.0.1, and a client certificate, all ECDSA P-256, valid for 100 years.
# Test-only keys: never use them for anything else.
set -eu
cd "$(dirname "$0")"
days=36500
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout ca.key -out ca.pem -days $days -subj "/CN=Girder test CA"
for who in server client; do
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$who.key" -out "$who.csr" -subj "/CN=girder-test-$who"
  if [ "$who" = server ]; then
    ext="subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
  else
    ext="extendedKeyUsage=clientAuth"
  fi
  printf '%s\n' "$ext" > "$who.ext"
  openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$who.pem" -days $days -extfile "$who.ext"
  rm "$who.csr" "$who.ext"
done
rm -f ca.srl
# A second CA that signed nothing here: a client trusting only it must fail.
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout other-ca.key -out other-ca.pem -days $days -subj "/CN=Unrelated CA"
rm other-ca.key
