// Storage of consents, table identity_consents.
//
// Columns: id, person_id (a merge re-points it), version (etag; bumped by
// a withdrawal, the only change a consent ever sees), create_us,
// withdraw_us (NULL while not withdrawn), valid_until_us (the end of
// validity, NULL when open; added by the lifecycle migration, see
// lifecycle_store.h) and data, the consent's fields as
// a serialized lotse.identity.v1.Consent (client fields plus recording and
// withdrawal facts; name, state and etag are derived on read). Like the
// person record it is nested and read whole; nothing queries inside it.
//
// A consent's state depends on the time of the question, so it is never
// stored: readers compute it (ConsentStateAt) on every call, which is what
// makes an expiry effective on the very next call.
//
// Concurrency: writers of one person's consents take the named lock
// "identity.consents.{person}" (LockConsents) before they read.
#ifndef LOTSE_SERVICES_IDENTITY_STORE_CONSENT_STORE_H_
#define LOTSE_SERVICES_IDENTITY_STORE_CONSENT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "lotse/identity/v1/consent.pb.h"

namespace lotse::identity {

// Migration "identity.0301_consents".
storage::Migration ConsentMigration();

struct ConsentRecord {
  std::string id;
  std::string person_id;
  int64_t version = 1;
  absl::Time create_time = absl::UnixEpoch();
  // Everything but name, state and etag.
  lotse::identity::v1::Consent fields;
};

// "persons/{person}/consents/{id}".
std::string ConsentResourceName(absl::string_view person_id,
                                absl::string_view id);

absl::Status LockConsents(storage::Transaction& tx,
                          absl::string_view person_id);

absl::Status InsertConsent(storage::Transaction& tx,
                           const ConsentRecord& record);

// Consent `id` of person `person_id`, or nullopt.
absl::StatusOr<std::optional<ConsentRecord>> ReadConsent(
    storage::Transaction& tx, absl::string_view person_id,
    absl::string_view id);

// Consent `id`, whoever it belongs to (request_id retries), or nullopt.
absl::StatusOr<std::optional<ConsentRecord>> ReadConsentById(
    storage::Transaction& tx, absl::string_view id);

// Writes the withdrawal recorded in record.fields if the stored version is
// still `expected_version` (record.version is the new one). False when it
// moved on.
absl::StatusOr<bool> WriteWithdrawal(storage::Transaction& tx,
                                     const ConsentRecord& record,
                                     int64_t expected_version);

// All consents of the person, newest first (create time, then id). A
// person has a handful, so callers filter and page in memory.
absl::StatusOr<std::vector<ConsentRecord>> ListPersonConsents(
    storage::Transaction& tx, absl::string_view person_id);

// The consents of all of `person_ids` (in any order; ids may repeat or be
// unknown), for decisions about many persons at once.
absl::StatusOr<std::vector<ConsentRecord>> ListConsentsOfPersons(
    storage::Transaction& tx, const std::vector<std::string>& person_ids);

// Moves every consent of `from_person` to `to_person` (MergePersons).
absl::Status MoveConsents(storage::Transaction& tx,
                          absl::string_view from_person,
                          absl::string_view to_person);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_CONSENT_STORE_H_
