// Lotse's error currency: absl::Status inside the process, enriched with the
// details a client can act on, and mapped to grpc::Status only at the RPC
// edge.
//
// Details travel as absl::Status payloads keyed by the google.rpc type URL,
// so they survive being passed up through any layer unchanged:
//   - field violations (google.rpc.BadRequest) for INVALID_ARGUMENT,
//   - a reason code (google.rpc.ErrorInfo) for PERMISSION_DENIED,
//     FAILED_PRECONDITION, ABORTED, UNAUTHENTICATED and others,
//   - a retry delay (google.rpc.RetryInfo) for calls refused before any
//     work was done (RESOURCE_EXHAUSTED): when trying again makes sense.
// At the edge ToGrpcStatus() packs them into the standard
// `grpc-status-details-bin` trailer (google.rpc.Status).
#ifndef LOTSE_COMMON_ERRORS_STATUS_H_
#define LOTSE_COMMON_ERRORS_STATUS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"

namespace lotse {

struct FieldViolation {
  std::string field;        // path in the request, e.g. "person.names[0]"
  std::string description;  // what is wrong, in English, no personal data
  bool operator==(const FieldViolation& o) const {
    return field == o.field && description == o.description;
  }
};

// Collects every invalid field of a request, so that a client learns all of
// them from one call rather than one per retry.
class FieldViolations {
 public:
  void Add(std::string field, std::string description);
  bool empty() const { return violations_.empty(); }
  const std::vector<FieldViolation>& violations() const { return violations_; }
  // OK when nothing was added, otherwise INVALID_ARGUMENT carrying them all.
  absl::Status ToStatus() const;

 private:
  std::vector<FieldViolation> violations_;
};

// INVALID_ARGUMENT with field violations. The message summarises them.
absl::Status InvalidArgumentError(std::vector<FieldViolation> violations);

// A status of `code` carrying a machine-readable reason
// (UPPER_SNAKE_CASE, stable across releases) and optional metadata.
absl::Status ErrorWithReason(
    absl::StatusCode code, absl::string_view reason, absl::string_view message,
    std::vector<std::pair<std::string, std::string>> metadata = {});

// The reason attached by ErrorWithReason, if any.
std::optional<std::string> ReasonOf(const absl::Status& status);
// The metadata value under `key` attached by ErrorWithReason, if any.
std::optional<std::string> MetadataOf(const absl::Status& status,
                                      absl::string_view key);
// `status` with a retry delay (google.rpc.RetryInfo) attached: the client
// may send the call again after `delay` (negative delays count as zero;
// kept to the millisecond). OK stays OK.
absl::Status WithRetryDelay(absl::Status status, absl::Duration delay);
// The retry delay attached by WithRetryDelay, if any.
std::optional<absl::Duration> RetryDelayOf(const absl::Status& status);

// The field violations attached to the status (empty if none).
std::vector<FieldViolation> FieldViolationsOf(const absl::Status& status);

// Maps to a gRPC status with the same code and the details packed as
// google.rpc.Status. `domain` names the producing service in ErrorInfo
// (e.g. "identity.lotse"). INTERNAL and UNKNOWN messages are replaced by a
// generic text: they may carry storage internals, which clients must not
// see; the caller logs the original.
grpc::Status ToGrpcStatus(const absl::Status& status, absl::string_view domain);

// The inverse, for service-to-service calls: keeps code, message, reason,
// field violations and retry delay.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace lotse

#endif  // LOTSE_COMMON_ERRORS_STATUS_H_
