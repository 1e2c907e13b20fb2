// Signed checkpoints of a service's audit chains (lotse.audit.v1.
// SignedCheckpoint): the head of a chain (seq and hash) at a moment, signed
// with the private key of the service's own TLS certificate, with that
// certificate attached. Other services keep the checkpoints they receive
// (witness_store.h), so that a chain later truncated or rewritten, even
// consistently with recomputed hashes, no longer matches what they hold
// (witness.h).
//
// Canonical bytes, version 1 (what is signed; every field has a fixed
// position and a fixed width or a length prefix, so two checkpoints that
// differ in any signed field sign different bytes):
//   "LOTSE-CHECKPOINT-1"          18 bytes, encoding version
//   head.service                  4-byte big-endian length, bytes
//   head.chain                    1 byte: 1 changes, 2 reads
//   head.seq                      8 bytes, big-endian two's complement
//   head.hash                     4-byte big-endian length, bytes
//   time (unix microseconds)      8 bytes, big-endian two's complement
// The signature is EVP_DigestSign with SHA-256 over these bytes (for an EC
// key, as in the dev PKI: a DER-encoded ECDSA signature; for RSA, PKCS #1
// v1.5; Ed25519 keys sign the bytes themselves).
//
// A checkpoint is valid for a witness when: its head names a service the
// witness knows (not the witness itself) and a chain; its hash is 32 bytes;
// its certificate chains to the deployment's CA (the witness's --tls_ca),
// is valid now, and names that service (subject OU=SERVICE, CN=<service>,
// as tools/dev-pki.sh issues servers/<service>.crt); and the signature
// verifies with the certificate's key.
#ifndef LOTSE_COMMON_AUDIT_CHECKPOINT_H_
#define LOTSE_COMMON_AUDIT_CHECKPOINT_H_

#include <openssl/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/audit/audit_log.h"
#include "lotse/audit/v1/audit_service.pb.h"

namespace lotse::audit {

// Conversions between Chain and the contract's AuditChain. nullopt for
// AUDIT_CHAIN_UNSPECIFIED or an unknown value.
lotse::audit::v1::AuditChain ChainToProto(Chain chain);
std::optional<Chain> ChainFromProto(lotse::audit::v1::AuditChain chain);

// The bytes signed for `checkpoint` (header comment): its head and time;
// signature and certificate are not part of them.
std::string CanonicalCheckpointBytes(
    const lotse::audit::v1::SignedCheckpoint& checkpoint);

// Reasons (google.rpc.ErrorInfo, see common/errors) of a checkpoint that
// CheckpointVerifier refuses; also the `reason` label of the rejection
// metric.
inline constexpr char kMalformedCheckpoint[] = "MALFORMED_CHECKPOINT";
inline constexpr char kUnknownService[] = "UNKNOWN_SERVICE";
inline constexpr char kUntrustedCertificate[] = "UNTRUSTED_CERTIFICATE";
inline constexpr char kWrongService[] = "WRONG_SERVICE";
inline constexpr char kBadSignature[] = "BAD_SIGNATURE";

// Signs checkpoints of one service's chains. Thread-safe.
class CheckpointSigner {
 public:
  // `certificate_pem` is the service's certificate (the first PEM block is
  // the one attached to checkpoints), `key_pem` its private key.
  // INVALID_ARGUMENT when either does not parse or they do not belong
  // together.
  static absl::StatusOr<std::unique_ptr<CheckpointSigner>> FromPem(
      std::string service, absl::string_view certificate_pem,
      absl::string_view key_pem);
  // The same from files (e.g. --tls_cert and --tls_key). NOT_FOUND when a
  // file cannot be read.
  static absl::StatusOr<std::unique_ptr<CheckpointSigner>> FromFiles(
      std::string service, const std::string& certificate_path,
      const std::string& key_path);
  ~CheckpointSigner();

  const std::string& service() const { return service_; }

  // A checkpoint of `head` of `chain`, taken at `time` (kept to
  // microseconds, as signed). INTERNAL when OpenSSL fails to sign.
  absl::StatusOr<lotse::audit::v1::SignedCheckpoint> Sign(
      Chain chain, const AuditHead& head, absl::Time time) const;

 private:
  CheckpointSigner(std::string service, std::string certificate_pem,
                   EVP_PKEY* key)
      : service_(std::move(service)),
        certificate_pem_(std::move(certificate_pem)),
        key_(key) {}
  const std::string service_;
  const std::string certificate_pem_;
  EVP_PKEY* const key_;  // owned
};

// Checks checkpoints against the deployment's CA. Thread-safe.
class CheckpointVerifier {
 public:
  // `ca_pem`: one or more CA certificates (PEM) that service certificates
  // must chain to. `services`: the services whose checkpoints are accepted
  // (a witness leaves itself out). INVALID_ARGUMENT when no CA certificate
  // parses.
  static absl::StatusOr<std::unique_ptr<CheckpointVerifier>> FromPem(
      absl::string_view ca_pem, absl::flat_hash_set<std::string> services);
  // The same with the CA bundle read from a file (e.g. --tls_ca).
  static absl::StatusOr<std::unique_ptr<CheckpointVerifier>> FromFile(
      const std::string& ca_path, absl::flat_hash_set<std::string> services);
  ~CheckpointVerifier();

  // OK when `checkpoint` is valid (header comment). Otherwise
  // INVALID_ARGUMENT with reason kMalformedCheckpoint, or
  // PERMISSION_DENIED with reason kUnknownService, kUntrustedCertificate,
  // kWrongService or kBadSignature. Messages name no personal data (a
  // checkpoint holds none).
  absl::Status Verify(
      const lotse::audit::v1::SignedCheckpoint& checkpoint) const;

 private:
  CheckpointVerifier(X509_STORE* store,
                     absl::flat_hash_set<std::string> services)
      : store_(store), services_(std::move(services)) {}
  X509_STORE* const store_;  // owned
  const absl::flat_hash_set<std::string> services_;
};

// The four Lotse services, whose checkpoints witnesses accept by default.
absl::flat_hash_set<std::string> LotseServices();

}  // namespace lotse::audit

#endif  // LOTSE_COMMON_AUDIT_CHECKPOINT_H_
