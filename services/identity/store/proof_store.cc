#include "services/identity/store/proof_store.h"

#include <string>

namespace lotse::identity {

storage::Migration ProofFailureMigration() {
  return {"identity.0501_proof_failures", R"sql(
CREATE TABLE identity_proof_failures (
  agency_id TEXT NOT NULL,
  person_id TEXT NOT NULL,
  at_us BIGINT NOT NULL
);
CREATE INDEX identity_proof_failures_by_pair
  ON identity_proof_failures (agency_id, person_id, at_us);
)sql"};
}

absl::Status RecordFailedProof(storage::Transaction& tx,
                               absl::string_view agency_id,
                               absl::string_view person_id, absl::Time now) {
  const int64_t horizon = absl::ToUnixMicros(now - kProofFailureWindow);
  absl::StatusOr<int64_t> forgotten = tx.Execute(
      "DELETE FROM identity_proof_failures WHERE agency_id = $1 "
      "AND person_id = $2 AND at_us < $3",
      {std::string(agency_id), std::string(person_id), horizon});
  if (!forgotten.ok()) return forgotten.status();
  return tx
      .Execute(
          "INSERT INTO identity_proof_failures (agency_id, person_id, at_us) "
          "VALUES ($1, $2, $3)",
          {std::string(agency_id), std::string(person_id),
           absl::ToUnixMicros(now)})
      .status();
}

absl::StatusOr<int64_t> CountFailedProofs(storage::Transaction& tx,
                                          absl::string_view agency_id,
                                          absl::string_view person_id,
                                          absl::Time now) {
  absl::StatusOr<storage::Rows> rows = tx.Query(
      "SELECT COUNT(*) FROM identity_proof_failures WHERE agency_id = $1 "
      "AND person_id = $2 AND at_us >= $3",
      {std::string(agency_id), std::string(person_id),
       absl::ToUnixMicros(now - kProofFailureWindow)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return 0;
  return (*rows)[0].GetInt(0);
}

}  // namespace lotse::identity
