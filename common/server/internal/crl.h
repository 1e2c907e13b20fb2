// Certificate revocation lists (X.509 CRLs) as the server checks client
// certificates against them: read from a file or a directory, each CRL's
// signature verified against the CA bundle the client certificates chain
// to, and its nextUpdate against the clock.
//
// Only full CRLs issued by the CA itself are understood: delta CRLs and
// indirect CRLs (entries naming another issuer) are not. A certificate is
// looked up by its issuer's name and its serial number; a certificate whose
// issuer has no CRL in the set is not revoked.
#ifndef LOTSE_COMMON_SERVER_INTERNAL_CRL_H_
#define LOTSE_COMMON_SERVER_INTERNAL_CRL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lotse::server::internal {

// One file's name and bytes.
struct CrlFile {
  std::string path;
  std::string contents;
};

// Reads `path`: a single file, or every regular file of a directory whose
// name does not start with "." (Kubernetes keeps its `..data` links and
// timestamped directories there), symbolic links followed, in name order.
// NOT_FOUND when the path or a file cannot be read; FAILED_PRECONDITION
// when a directory holds no file.
absl::StatusOr<std::vector<CrlFile>> ReadCrlFiles(const std::string& path);

// The certificates a set of CRLs revokes. Immutable once built; safe to
// read from any thread.
class CrlSet {
 public:
  // Parses every CRL in `files` (PEM, several per file allowed, or one DER
  // CRL per file). Each must be signed by a certificate of `ca_pem` (PEM
  // bundle) whose subject is the CRL's issuer, and its nextUpdate, when it
  // has one, must lie after `now`. FAILED_PRECONDITION naming the file and
  // the fault otherwise (unparsable, unknown issuer, bad signature,
  // expired), or when the files hold no CRL at all.
  static absl::StatusOr<CrlSet> Parse(const std::vector<CrlFile>& files,
                                      absl::string_view ca_pem, absl::Time now);

  // Whether a CRL of the certificate's issuer lists its serial number.
  // `cert_pem` is one PEM certificate (the first of a chain is used);
  // INVALID_ARGUMENT when it does not parse.
  absl::StatusOr<bool> IsRevoked(absl::string_view cert_pem) const;

  // The earliest nextUpdate of the CRLs; InfiniteFuture when none has one.
  absl::Time next_update() const { return next_update_; }
  int crl_count() const { return crl_count_; }
  int64_t revoked_count() const { return revoked_count_; }

 private:
  // Issuer name (DER) -> serial numbers (hex) its CRLs revoke.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> revoked_;
  absl::Time next_update_ = absl::InfiniteFuture();
  int crl_count_ = 0;
  int64_t revoked_count_ = 0;
};

// The serial number (hex) and subject (RFC 2253) of the first certificate
// of `cert_pem`, for log lines; empty strings when it does not parse.
struct CertificateName {
  std::string serial;
  std::string subject;
};
CertificateName NameOf(absl::string_view cert_pem);

}  // namespace lotse::server::internal

#endif  // LOTSE_COMMON_SERVER_INTERNAL_CRL_H_
