#!/usr/bin/env bash
# Creates the TLS Secrets the manifests mount, from a tools/dev-pki.sh
# directory (made if missing). DEVELOPMENT ONLY: the dev CA's key sits next
# to its certificates. Production certificates come from your own PKI (or
# cert-manager) in the same shape: see README.md, "Kubernetes".
#
# Usage: deploy/k8s/dev-secrets.sh [PKI_DIR]   (default .dev/pki)
# Needs kubectl with access to the cluster; the namespace "lotse" must exist
# (kubectl apply -k deploy/k8s/overlays/dev creates it; pods wait for the
# Secrets).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PKI=${1:-$ROOT/.dev/pki}
"$ROOT/tools/dev-pki.sh" "$PKI" >/dev/null

secret() {  # NAME CERT KEY: a kubernetes.io/tls Secret with ca.crt
  kubectl -n lotse create secret generic "$1" --type=kubernetes.io/tls \
    --from-file=tls.crt="$2" --from-file=tls.key="$3" --from-file=ca.crt="$PKI/ca.crt" \
    --dry-run=client -o yaml | kubectl apply -f -
}
# The dev CA's CRL (tools/dev-pki.sh revoke NAME, then run this again):
# services re-read it in place, no restart.
kubectl -n lotse create secret generic lotse-tls-crl \
  --from-file=ca.crl="$PKI/crl/ca.crl" --dry-run=client -o yaml | kubectl apply -f -
for s in identity cases courses placement; do
  secret "lotse-$s-server-tls" "$PKI/servers/$s.crt" "$PKI/servers/$s.key"
  secret "lotse-$s-client-tls" "$PKI/clients/svc-$s.crt" "$PKI/clients/svc-$s.key"
done
