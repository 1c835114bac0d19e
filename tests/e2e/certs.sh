# certs.sh - make test certificates with the openssl command at test time.
# Sourced after lib.sh; files go under $PC_TMP/certs.
#
#   pc_mkca ca                                  # ca.crt ca.key (self-signed CA, P-256)
#   pc_mkcert leaf ca "DNS:a.test,DNS:*.b.test" # leaf.crt leaf.key, signed by ca
#   PC_KEY=rsa:2048 PC_DAYS=-1 pc_mkcert ...    # key type / validity overrides
#
# PC_KEY: ec:P-256 (default), ec:P-384, rsa:2048, rsa:1024, ed25519.
# PC_DAYS: validity in days from now (negative: already expired).

PC_CERTS=$PC_TMP/certs
mkdir -p "$PC_CERTS"

# _pc_genkey FILE: a private key of type $PC_KEY.
_pc_genkey() {
  local f=$1 k=${PC_KEY:-ec:P-256}
  case $k in
    ec:*) openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${k#ec:}" -out "$f" 2>/dev/null ;;
    rsa:*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${k#rsa:}" -out "$f" 2>/dev/null ;;
    ed25519) openssl genpkey -algorithm ED25519 -out "$f" 2>/dev/null ;;
    *) pc_fail "unknown PC_KEY $k" ;;
  esac
}

# pc_mkca NAME [ISSUER]: CA certificate NAME.crt / NAME.key; self-signed, or
# an intermediate signed by ISSUER.
pc_mkca() {
  local n=$1 issuer=${2:-}
  PC_KEY=${PC_CA_KEY:-ec:P-256} _pc_genkey "$PC_CERTS/$n.key"
  if [ -z "$issuer" ]; then
    openssl req -x509 -new -key "$PC_CERTS/$n.key" -subj "/CN=$n test CA" -days 30 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$PC_CERTS/$n.crt" 2>/dev/null
  else
    openssl req -new -key "$PC_CERTS/$n.key" -subj "/CN=$n test CA" -out "$PC_CERTS/$n.csr" 2>/dev/null
    printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$PC_CERTS/$n.ext"
    openssl x509 -req -in "$PC_CERTS/$n.csr" -CA "$PC_CERTS/$issuer.crt" -CAkey "$PC_CERTS/$issuer.key" \
      -CAcreateserial -days 30 -extfile "$PC_CERTS/$n.ext" -out "$PC_CERTS/$n.crt" 2>/dev/null
  fi
  [ -s "$PC_CERTS/$n.crt" ] || pc_fail "could not make CA $n"
}

# pc_mkcert NAME ISSUER SANS: leaf NAME.crt / NAME.key signed by ISSUER, with
# subjectAltName SANS ("DNS:x,IP:127.0.0.1"); CN is the first SAN's value.
# PC_DAYS (default 30) sets the validity; PC_DAYS=-1 makes it expired
# (not_before 2 days ago, not_after 1 day ago) via a backdated signing.
pc_mkcert() {
  local n=$1 issuer=$2 sans=$3 days=${PC_DAYS:-30} cn
  cn=${sans%%,*}; cn=${cn#*:}
  _pc_genkey "$PC_CERTS/$n.key"
  openssl req -new -key "$PC_CERTS/$n.key" -subj "/CN=$cn" -out "$PC_CERTS/$n.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' \
    "$sans" >"$PC_CERTS/$n.ext"
  if [ "$days" -lt 0 ]; then
    # openssl 3.0's x509 has no -not_before; use a throwaway 'ca' database.
    local d=$PC_CERTS/$n.cadb
    mkdir -p "$d"; : >"$d/index"; echo 01 >"$d/serial"
    cat >"$d/ca.cnf" <<CNF
[ca]
default_ca=c
[c]
database=$d/index
serial=$d/serial
new_certs_dir=$d
default_md=sha256
policy=p
copy_extensions=none
[p]
commonName=supplied
CNF
    openssl ca -batch -config "$d/ca.cnf" -cert "$PC_CERTS/$issuer.crt" -keyfile "$PC_CERTS/$issuer.key" \
      -in "$PC_CERTS/$n.csr" -startdate "$(date -u -d '-2 days' +%Y%m%d%H%M%SZ)" \
      -enddate "$(date -u -d "$((days)) days" +%Y%m%d%H%M%SZ)" -extfile "$PC_CERTS/$n.ext" \
      -out "$PC_CERTS/$n.crt" >/dev/null 2>&1
  else
    openssl x509 -req -in "$PC_CERTS/$n.csr" -CA "$PC_CERTS/$issuer.crt" -CAkey "$PC_CERTS/$issuer.key" \
      -CAcreateserial -days "$days" -extfile "$PC_CERTS/$n.ext" -out "$PC_CERTS/$n.crt" 2>/dev/null
  fi
  [ -s "$PC_CERTS/$n.crt" ] || pc_fail "could not make certificate $n"
}

# pc_cert_json NAME [CHAIN-FILE]: the JSON body of POST /v1/certificates for NAME.
pc_cert_json() {
  local n=$1 chain=${2:-}
  if [ -n "$chain" ]; then
    jq -n --arg name "$n" --rawfile c "$PC_CERTS/$n.crt" --rawfile k "$PC_CERTS/$n.key" \
      --rawfile ch "$chain" '{name:$name, certificate:$c, private_key:$k, certificate_chain:$ch}'
  else
    jq -n --arg name "$n" --rawfile c "$PC_CERTS/$n.crt" --rawfile k "$PC_CERTS/$n.key" \
      '{name:$name, certificate:$c, private_key:$k}'
  fi
}

# pc_fingerprint FILE: SHA-256 fingerprint of a PEM certificate, lower-case hex, no colons.
pc_fingerprint() {
  openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

# pc_served_fingerprint HOST:PORT [SNI]: fingerprint of the certificate a TLS server presents.
pc_served_fingerprint() {
  local sni=()
  [ -n "${2:-}" ] && sni=(-servername "$2")
  echo | timeout 10 openssl s_client -connect "$1" "${sni[@]}" 2>/dev/null \
    | openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}
