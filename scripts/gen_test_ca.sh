#!/usr/bin/env bash
# Regenerates the test certificate authority and the loopback server certificate used by the
# fake Jira in tests (and by nothing else). Run it only when the fixtures expire or change;
# the output is committed under tests/fixtures/tls/.
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/tests/fixtures/tls"
mkdir -p "$out"
cd "$out"
days=7300

make_ca() { # name subject
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -keyout "$1-key.pem" -out "$1.pem" -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
make_leaf() { # ca name
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$2-key.pem" -out "$2.csr" -subj "/CN=fake-jira.test"
  openssl x509 -req -in "$2.csr" -CA "$1.pem" -CAkey "$1-key.pem" -CAcreateserial \
    -days "$days" -out "$2.pem" -extfile <(printf '%s\n' \
      "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:fake-jira.test")
  rm -f "$2.csr" "$1.srl"
}

make_ca test-ca "/CN=sosvault test CA"
make_leaf test-ca server
# A second, untrusted authority: a Jira presenting this certificate must fail TLS.
make_ca rogue-ca "/CN=sosvault rogue CA"
make_leaf rogue-ca rogue-server
rm -f test-ca-key.pem.bak
echo "wrote $out"
