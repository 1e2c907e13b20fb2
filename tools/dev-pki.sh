#!/usr/bin/env bash
# Creates the development PKI for Lotse: a dev CA, one server certificate per
# service, one client certificate per demo agency (one per legal domain, see
# DESIGN.md section 2), one client certificate per service for
# service-to-service calls, and negative test material (an expired client and
# a client signed by a rogue CA).
#
# Usage: tools/dev-pki.sh OUT_DIR
#        tools/dev-pki.sh revoke NAME [OUT_DIR]
#
# Idempotent: an existing, valid OUT_DIR/ca.crt (with its key) is kept, and
# only missing leaf files are created, so re-running the run command does not
# churn certificates. If the CA is missing or broken, everything is rebuilt,
# since leaves signed by an old CA would no longer verify.
#
# Revocation: OUT_DIR/crl/ca.crl is the dev CA's certificate revocation list
# (PEM, valid for CRL_DAYS; re-issued by a run when it is missing, broken or
# within a week of its nextUpdate), for the services' --tls_crl. `revoke NAME`
# revokes the client certificate OUT_DIR/clients/NAME.crt (an agency or a
# svc-* service certificate; OUT_DIR defaults to .dev/pki, where
# `tools/lotse.sh run` keeps its PKI) and re-issues the CRL at once; running
# services refuse NAME's new connections within their --tls_reload_interval.
# What the CA has revoked is recorded in OUT_DIR/ca-db/index.txt (the
# `openssl ca` database). A revoked certificate stays in place (and stays
# revoked); delete clients/NAME.* and run again to issue a fresh one.
#
# Identity binding: a client certificate names its agency as CN=<agency id>,
# its legal domain as OU=<LEGAL_DOMAIN>, and repeats the agency id as the SAN
# URI urn:lotse:agency:<id>. Servers derive the calling agency from the
# verified certificate only; never from request metadata.
#
# Needs only the openssl CLI (OpenSSL 3). DEVELOPMENT ONLY: keys are
# unencrypted and the CA key sits next to the certificates.
set -euo pipefail

usage() {
  echo "usage: $0 OUT_DIR" >&2
  echo "       $0 revoke NAME [OUT_DIR]" >&2
  exit 2
}
MODE=create
if [[ "${1:-}" == revoke ]]; then
  [[ $# -ge 2 && $# -le 3 && -n "$2" ]] || usage
  MODE=revoke
  REVOKE_NAME="$2"
  OUT="${3:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.dev/pki}"
else
  [[ $# -eq 1 && -n "$1" ]] || usage
  OUT="$1"
fi

# Services that get a server certificate (and a svc-<name> client cert).
SERVICES=(identity cases courses placement echo)

# Demo agencies: id -> legal domain. lotse-admin administers the agency
# registry (registers / suspends agencies) and is the platform's own caller;
# dsb-nrw is the deployment's data-protection officer (AuditService).
AGENCIES=(
  kim-koeln:KOMMUNE
  kim-bonn:KOMMUNE
  abh-koeln:AUSLAENDERBEHOERDE
  bamf-nuernberg:BAMF
  jobcenter-koeln:JOBCENTER
  aa-koeln:ARBEITSAGENTUR
  vhs-koeln:KURSTRAEGER
  ihk-koeln:KAMMER
  caritas-koeln:FREIER_TRAEGER
  jugendamt-koeln:JUGENDAMT
  sozialamt-koeln:SOZIALAMT
  lotse-admin:ADMINISTRATION
  dsb-nrw:DATA_PROTECTION
  # The demo municipality Lindenbrück (tools/demo/plan.h, Agencies()).
  kim-lindenbrueck:KOMMUNE
  abh-lindenbrueck:AUSLAENDERBEHOERDE
  jobcenter-lindenbrueck:JOBCENTER
  aa-lindenbrueck:ARBEITSAGENTUR
  bamf-dortmund:BAMF
  vhs-lindenbrueck:KURSTRAEGER
  sprachinstitut-lindenbrueck:KURSTRAEGER
  bildungswerk-lindenbrueck:KURSTRAEGER
  awo-lindenbrueck:FREIER_TRAEGER
  diakonie-lindenbrueck:FREIER_TRAEGER
)

ORG="Lotse Dev"
CA_DAYS=3650
LEAF_DAYS=825  # The maximum lifetime common TLS clients accept for leaves.
CRL_DAYS=30    # A CRL's nextUpdate; a run re-issues it in its last week.

command -v openssl >/dev/null || { echo "openssl not found" >&2; exit 1; }

# --- certificate revocation ---------------------------------------------------
# The `openssl ca` configuration for revoking and issuing CRLs; the database
# lives in OUT/ca-db, the CRL alone in OUT/crl (so that the directory can be
# given to --tls_crl as well as the file).
crl_config() {
  mkdir -p "$OUT/ca-db" "$OUT/crl"
  chmod 755 "$OUT/crl"
  [[ -f "$OUT/ca-db/index.txt" ]] || : >"$OUT/ca-db/index.txt"
  [[ -s "$OUT/ca-db/crlnumber" ]] || echo 1000 >"$OUT/ca-db/crlnumber"
  cat >"$OUT/ca-db/ca.cnf" <<EOF
[ca]
default_ca = dev
[dev]
database = $OUT/ca-db/index.txt
crlnumber = $OUT/ca-db/crlnumber
certificate = $OUT/ca.crt
private_key = $OUT/ca.key
default_md = sha256
default_crl_days = $CRL_DAYS
unique_subject = no
crl_extensions = crl_ext
[crl_ext]
authorityKeyIdentifier = keyid:always
EOF
}

# Issues OUT/crl/ca.crl from the database; written beside it and renamed,
# so a service re-reading it never sees half a file.
issue_crl() {
  crl_config
  local tmp="$OUT/crl/.ca.crl.tmp"
  openssl ca -batch -config "$OUT/ca-db/ca.cnf" -gencrl -out "$tmp" 2>/dev/null
  chmod 644 "$tmp"
  mv -f "$tmp" "$OUT/crl/ca.crl"
}

# True if OUT/crl/ca.crl is signed by the current CA and is not within a
# week of its nextUpdate.
crl_ok() {
  local crl="$OUT/crl/ca.crl"
  [[ -s "$crl" ]] || return 1
  openssl crl -in "$crl" -CAfile "$OUT/ca.crt" -noout >/dev/null 2>&1 || return 1
  local next
  next="$(openssl crl -in "$crl" -noout -nextupdate 2>/dev/null)" || return 1
  next="${next#nextUpdate=}"
  [[ -n "$next" ]] || return 1
  (( $(date -u -d "$next" +%s) > $(date -u +%s) + 7 * 86400 ))
}

if [[ $MODE == revoke ]]; then
  command -v openssl >/dev/null || { echo "openssl not found" >&2; exit 1; }
  umask 077
  crt="$OUT/clients/$REVOKE_NAME.crt"
  if [[ ! "$REVOKE_NAME" =~ ^[A-Za-z0-9._-]+$ || ! -s "$crt" ]]; then
    echo "no client certificate $crt" >&2
    exit 1
  fi
  if ! openssl verify -CAfile "$OUT/ca.crt" -no_check_time "$crt" >/dev/null 2>&1; then
    echo "$crt is not signed by the CA in $OUT" >&2
    exit 1
  fi
  crl_config
  serial="$(openssl x509 -in "$crt" -noout -serial)"
  serial="${serial#serial=}"
  if grep -q "^R.*[[:space:]]$serial[[:space:]]" "$OUT/ca-db/index.txt"; then
    echo "$REVOKE_NAME (serial $serial) was already revoked"
  else
    openssl ca -batch -config "$OUT/ca-db/ca.cnf" -revoke "$crt" \
      -crl_reason keyCompromise >/dev/null 2>&1 || {
      echo "openssl ca -revoke $crt failed" >&2
      exit 1
    }
    echo "revoked $REVOKE_NAME (serial $serial)"
  fi
  issue_crl
  echo "CRL: $OUT/crl/ca.crl ($(openssl crl -in "$OUT/crl/ca.crl" -noout -nextupdate))"
  exit 0
fi

# Keys must never be world- or group-readable, including while being written.
umask 077
mkdir -p "$OUT/servers" "$OUT/clients" "$OUT/test"
# Certificates are public; only the key files are private.
chmod 755 "$OUT" "$OUT/servers" "$OUT/clients" "$OUT/test"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

created=()
kept=()

# EC P-256: small, fast handshakes, universally supported by gRPC/BoringSSL
# and OpenSSL alike.
new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# True if $1 is a parseable certificate that has not expired and whose public
# key matches private key $2.
cert_ok() {
  local crt="$1" key="$2"
  [[ -s "$crt" && -s "$key" ]] || return 1
  openssl x509 -in "$crt" -noout -checkend 0 >/dev/null 2>&1 || return 1
  local a b
  a="$(openssl x509 -in "$crt" -noout -pubkey 2>/dev/null)" || return 1
  b="$(openssl pkey -in "$key" -pubout 2>/dev/null)" || return 1
  [[ "$a" == "$b" ]]
}

# A leaf is kept if it is sound and chains to the current CA.
leaf_ok() {
  local crt="$1" key="$2" cafile="${3:-$OUT/ca.crt}"
  cert_ok "$crt" "$key" || return 1
  openssl verify -CAfile "$cafile" "$crt" >/dev/null 2>&1
}

# sign_leaf NAME KEY CRT SUBJECT EXTFILE [CA_CRT CA_KEY]
# Issues a leaf from a CSR; extensions come from EXTFILE section "ext".
sign_leaf() {
  local name="$1" key="$2" crt="$3" subj="$4" ext="$5"
  local ca_crt="${6:-$OUT/ca.crt}" ca_key="${7:-$OUT/ca.key}"
  new_key "$key"
  openssl req -new -key "$key" -subj "$subj" -out "$WORK/$name.csr" 2>/dev/null
  # Random serials (-set_serial with 16 random bytes) avoid a serial file and
  # never collide across re-runs.
  openssl x509 -req -in "$WORK/$name.csr" -CA "$ca_crt" -CAkey "$ca_key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$LEAF_DAYS" -sha256 \
    -extfile "$ext" -extensions ext -out "$crt" 2>/dev/null
  chmod 644 "$crt"
  created+=("$crt")
}

# --- CA ---------------------------------------------------------------------
make_ca() {
  local key="$1" crt="$2" cn="$3"
  new_key "$key"
  cat >"$WORK/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = ca_ext
prompt = no
[dn]
[ca_ext]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
  openssl req -x509 -new -key "$key" -config "$WORK/ca.cnf" \
    -subj "/O=$ORG/CN=$cn" -days "$CA_DAYS" -sha256 \
    -set_serial "0x$(openssl rand -hex 16)" -out "$crt" 2>/dev/null
  chmod 644 "$crt"
  created+=("$crt")
}

if cert_ok "$OUT/ca.crt" "$OUT/ca.key" &&
  openssl verify -CAfile "$OUT/ca.crt" "$OUT/ca.crt" >/dev/null 2>&1; then
  kept+=("$OUT/ca.crt")
else
  # A new CA invalidates every leaf and what the old one revoked; remove
  # them so they are re-issued.
  rm -f "$OUT"/servers/* "$OUT"/clients/* "$OUT"/test/expired-client.*
  rm -rf "$OUT/ca-db" "$OUT/crl"
  make_ca "$OUT/ca.key" "$OUT/ca.crt" "Lotse Dev CA"
fi

# --- server certificates ------------------------------------------------------
for svc in "${SERVICES[@]}"; do
  key="$OUT/servers/$svc.key" crt="$OUT/servers/$svc.crt"
  if leaf_ok "$crt" "$key"; then kept+=("$crt"); continue; fi
  cat >"$WORK/$svc-server.ext" <<EOF
[ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
# clientAuth too: a service process also calls other services.
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, DNS:$svc, DNS:$svc.lotse.svc, DNS:$svc.lotse.svc.cluster.local, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  sign_leaf "$svc-server" "$key" "$crt" "/O=$ORG/OU=SERVICE/CN=$svc" \
    "$WORK/$svc-server.ext"
done

# --- client certificates ------------------------------------------------------
# client_ext FILE SAN_URI
client_ext() {
  cat >"$1" <<EOF
[ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:$2
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

for entry in "${AGENCIES[@]}"; do
  id="${entry%%:*}" domain="${entry#*:}"
  key="$OUT/clients/$id.key" crt="$OUT/clients/$id.crt"
  if leaf_ok "$crt" "$key"; then kept+=("$crt"); continue; fi
  client_ext "$WORK/$id.ext" "urn:lotse:agency:$id"
  sign_leaf "$id" "$key" "$crt" "/O=$ORG/OU=$domain/CN=$id" "$WORK/$id.ext"
done

for svc in "${SERVICES[@]}"; do
  id="svc-$svc"
  key="$OUT/clients/$id.key" crt="$OUT/clients/$id.crt"
  if leaf_ok "$crt" "$key"; then kept+=("$crt"); continue; fi
  # A different URI scheme than agencies, so a service identity can never be
  # mistaken for an agency (and vice versa).
  client_ext "$WORK/$id.ext" "urn:lotse:service:$svc"
  sign_leaf "$id" "$key" "$crt" "/O=$ORG/OU=SERVICE/CN=$id" "$WORK/$id.ext"
done

# --- test material --------------------------------------------------------------
# Expired client: signed by the real dev CA, but its validity ended in the
# past. The OpenSSL 3.0 x509 command cannot set explicit dates, so we use
# `openssl ca` with a throwaway config and database in the temp dir.
exp_key="$OUT/test/expired-client.key" exp_crt="$OUT/test/expired-client.crt"
if [[ -s "$exp_crt" && -s "$exp_key" ]] &&
  ! openssl x509 -in "$exp_crt" -noout -checkend 0 >/dev/null 2>&1 &&
  openssl verify -CAfile "$OUT/ca.crt" -no_check_time "$exp_crt" >/dev/null 2>&1; then
  kept+=("$exp_crt")
else
  mkdir -p "$WORK/ca-db"
  : >"$WORK/ca-db/index.txt"
  # A random starting serial, so this cert never repeats a serial of an
  # earlier run.
  openssl rand -hex 16 >"$WORK/ca-db/serial"
  cat >"$WORK/ca-expired.cnf" <<EOF
[ca]
default_ca = dev
[dev]
database = $WORK/ca-db/index.txt
new_certs_dir = $WORK/ca-db
serial = $WORK/ca-db/serial
certificate = $OUT/ca.crt
private_key = $OUT/ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
# The policy's order is the order of the issued subject; keep it the same
# as every other leaf (O, OU, CN).
[any]
organizationName = supplied
organizationalUnitName = supplied
commonName = supplied
[ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:urn:lotse:agency:kim-koeln
EOF
  new_key "$exp_key"
  openssl req -new -key "$exp_key" -subj "/O=$ORG/OU=KOMMUNE/CN=kim-koeln" \
    -out "$WORK/expired.csr" 2>/dev/null
  # Valid for one day, one year ago (UTCTime, YYMMDDHHMMSSZ).
  start="$(date -u -d '-366 days' +%y%m%d%H%M%SZ)"
  end="$(date -u -d '-365 days' +%y%m%d%H%M%SZ)"
  openssl ca -batch -notext -config "$WORK/ca-expired.cnf" \
    -in "$WORK/expired.csr" -out "$exp_crt" -extensions ext \
    -startdate "$start" -enddate "$end" >/dev/null 2>&1
  chmod 644 "$exp_crt"
  created+=("$exp_crt")
fi

# Rogue CA and a client it signed, with a subject that imitates a real agency:
# a server must reject it because it does not chain to the dev CA.
rogue_ca_key="$OUT/test/rogue-ca.key" rogue_ca_crt="$OUT/test/rogue-ca.crt"
if cert_ok "$rogue_ca_crt" "$rogue_ca_key"; then
  kept+=("$rogue_ca_crt")
else
  rm -f "$OUT/test/rogue-client."*
  # Same subject as the real dev CA on purpose: a check that trusts issuer
  # names instead of signatures would accept the rogue client.
  make_ca "$rogue_ca_key" "$rogue_ca_crt" "Lotse Dev CA"
fi
rogue_key="$OUT/test/rogue-client.key" rogue_crt="$OUT/test/rogue-client.crt"
if leaf_ok "$rogue_crt" "$rogue_key" "$rogue_ca_crt"; then
  kept+=("$rogue_crt")
else
  client_ext "$WORK/rogue.ext" "urn:lotse:agency:kim-koeln"
  sign_leaf rogue "$rogue_key" "$rogue_crt" "/O=$ORG/OU=KOMMUNE/CN=kim-koeln" \
    "$WORK/rogue.ext" "$rogue_ca_crt" "$rogue_ca_key"
fi

# --- CRL ------------------------------------------------------------------------
if crl_ok; then
  kept+=("$OUT/crl/ca.crl")
else
  issue_crl
  created+=("$OUT/crl/ca.crl")
fi

# Belt and braces: tighten permissions on every key, including kept ones.
chmod 600 "$OUT"/ca.key "$OUT"/servers/*.key "$OUT"/clients/*.key "$OUT"/test/*.key

# --- verification -----------------------------------------------------------------
fail=0
for crt in "$OUT"/servers/*.crt "$OUT"/clients/*.crt; do
  if ! openssl verify -CAfile "$OUT/ca.crt" "$crt" >/dev/null 2>&1; then
    echo "FAIL: $crt does not verify against the dev CA" >&2
    fail=1
  fi
done
if openssl verify -CAfile "$OUT/ca.crt" "$exp_crt" >/dev/null 2>&1; then
  echo "FAIL: $exp_crt verifies but must be expired" >&2
  fail=1
fi
if ! openssl verify -CAfile "$OUT/ca.crt" -no_check_time "$exp_crt" >/dev/null 2>&1; then
  echo "FAIL: $exp_crt is not signed by the dev CA" >&2
  fail=1
fi
if openssl verify -CAfile "$OUT/ca.crt" "$rogue_crt" >/dev/null 2>&1; then
  echo "FAIL: $rogue_crt verifies against the dev CA but must not" >&2
  fail=1
fi
if ! openssl crl -in "$OUT/crl/ca.crl" -CAfile "$OUT/ca.crt" -noout >/dev/null 2>&1; then
  echo "FAIL: $OUT/crl/ca.crl is not signed by the dev CA" >&2
  fail=1
fi
if [[ $fail -ne 0 ]]; then exit 1; fi

echo "dev PKI in $OUT: ${#created[@]} certificate(s) created, ${#kept[@]} kept"
echo "  CA:      $OUT/ca.crt ($(openssl x509 -in "$OUT/ca.crt" -noout -enddate))"
echo "  servers: ${SERVICES[*]}"
printf '  clients:'
for entry in "${AGENCIES[@]}"; do printf ' %s(%s)' "${entry%%:*}" "${entry#*:}"; done
printf '\n'
echo "           ${SERVICES[*]/#/svc-}"
echo "  test:    expired-client, rogue-ca, rogue-client"
echo "  CRL:     $OUT/crl/ca.crl ($(openssl crl -in "$OUT/crl/ca.crl" -noout -nextupdate)); revoke with: $0 revoke NAME $OUT"
echo "  verify:  all good certs chain to the dev CA; expired and rogue are rejected"
