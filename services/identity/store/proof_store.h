// Failed remit proofs (LinkAgencyId), table identity_proof_failures: so that
// an agency cannot find a person's birth date by trying one date after the
// other, identity counts the proofs that did not hold per agency and
// person, and refuses further proofs once kMaxFailedProofs fell within
// kProofFailureWindow.
//
// Rows hold ids only (agency id and the person id as asked, also for an id
// that does not exist), never the attributes presented.
#ifndef LOTSE_SERVICES_IDENTITY_STORE_PROOF_STORE_H_
#define LOTSE_SERVICES_IDENTITY_STORE_PROOF_STORE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"

namespace lotse::identity {

inline constexpr int kMaxFailedProofs = 5;
inline constexpr absl::Duration kProofFailureWindow = absl::Hours(24);

// Migration "identity.0501_proof_failures".
storage::Migration ProofFailureMigration();

// Records a proof of `agency_id` for `person_id` that did not hold, at
// `now`, and forgets this pair's failures older than the window.
absl::Status RecordFailedProof(storage::Transaction& tx,
                               absl::string_view agency_id,
                               absl::string_view person_id, absl::Time now);

// How many proofs of `agency_id` for `person_id` failed within the window
// before `now`.
absl::StatusOr<int64_t> CountFailedProofs(storage::Transaction& tx,
                                          absl::string_view agency_id,
                                          absl::string_view person_id,
                                          absl::Time now);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_PROOF_STORE_H_
