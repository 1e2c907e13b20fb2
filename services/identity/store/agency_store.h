// Storage of the agency registry (table identity_agencies). Every function
// runs inside a transaction the caller owns, so that a registry change, its
// event and its audit record commit together.
//
// Writers serialise on the named lock "identity.agencies" (LockAgencies)
// before they read what they are about to change: PostgreSQL runs at READ
// COMMITTED, and the registry is small and rarely written, so one lock is
// simpler and safer than per-row locking.
#ifndef LOTSE_SERVICES_IDENTITY_STORE_AGENCY_STORE_H_
#define LOTSE_SERVICES_IDENTITY_STORE_AGENCY_STORE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "services/identity/domain/agency.h"

namespace lotse::identity {

// Migration "identity.0001_agencies".
storage::Migration AgencyMigration();

// Takes the registry's write lock until the transaction ends.
absl::Status LockAgencies(storage::Transaction& tx);

// The agency with `id`, or nullopt.
absl::StatusOr<std::optional<AgencyRecord>> ReadAgency(storage::Transaction& tx,
                                                       absl::string_view id);

// The agency bound to `certificate_identity`, or nullopt.
absl::StatusOr<std::optional<AgencyRecord>> FindAgencyByCertificate(
    storage::Transaction& tx, absl::string_view certificate_identity);

// Inserts `record` unless its id or certificate identity is taken. Returns
// false (and changes nothing) when taken: the statement uses ON CONFLICT
// DO NOTHING so a conflict does not abort the caller's transaction.
absl::StatusOr<bool> InsertAgency(storage::Transaction& tx,
                                  const AgencyRecord& record);

// Overwrites the mutable fields of the row `record.id` if its version is
// still `expected_version`; record.version must be the new version.
// Returns false when the row is gone or its version moved on.
absl::StatusOr<bool> WriteAgency(storage::Transaction& tx,
                                 const AgencyRecord& record,
                                 int64_t expected_version);

struct AgencyFilter {
  std::string legal_domain;       // empty: all
  std::string municipality_code;  // empty: all
  std::optional<AgencyState> state;
};

// Up to `limit` agencies matching `filter` with id > `after_id`, by id.
absl::StatusOr<std::vector<AgencyRecord>> QueryAgencies(
    storage::Transaction& tx, const AgencyFilter& filter,
    absl::string_view after_id, int limit);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_AGENCY_STORE_H_
