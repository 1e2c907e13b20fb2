// Storage of residence status records: one row per
// recorded status, never changed afterwards. The record recorded last for a
// person is the current one; the others are its history.
//
// Schema (ResidenceMigrations), table identity_residence_statuses:
//   seq               global insertion order ({{AUTO_ID}}): "recorded last"
//                     is the highest seq, and stays so when a merge moves
//                     another person's records over (no per-person counter
//                     to renumber).
//   id                the {residence_status} of the resource name.
//   person_id         the person it belongs to (a merge re-points it).
//   recording_agency  "agencies/{id}", a column so the owner check
//                     (did this agency write the data?) is one indexed read.
//   create_us         recording time, microseconds since the epoch.
//   data              the client fields as a serialized
//                     lotse.identity.v1.ResidenceStatus.
//
// Concurrency: writers of one person's records first take the named lock
// "identity.residence.{person}" (LockResidence), then read the current
// record and compare etags; PostgreSQL runs at READ COMMITTED.
#ifndef LOTSE_SERVICES_IDENTITY_STORE_RESIDENCE_STORE_H_
#define LOTSE_SERVICES_IDENTITY_STORE_RESIDENCE_STORE_H_

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
#include "lotse/identity/v1/residence.pb.h"

namespace lotse::identity {

// Migration "identity.0201_residence".
storage::Migration ResidenceMigration();

struct ResidenceRecord {
  int64_t seq = 0;  // assigned on insert
  std::string id;
  std::string person_id;
  std::string recording_agency;  // "agencies/{id}"
  absl::Time create_time = absl::UnixEpoch();
  // The client-supplied fields only (no name, agency, time, flags, etag).
  lotse::identity::v1::ResidenceStatus fields;
};

// "persons/{person}/residenceStatuses/{id}".
std::string ResidenceResourceName(absl::string_view person_id,
                                  absl::string_view id);

// The etag of a record. Records never change, so it depends on the name
// only; it still changes when a newer record becomes current because the
// current record is then another one.
std::string ResidenceEtag(absl::string_view person_id, absl::string_view id);

// Serialises writers of person `person_id`'s records until the transaction
// ends.
absl::Status LockResidence(storage::Transaction& tx,
                           absl::string_view person_id);

// The person's current (latest) record, or nullopt if none was recorded.
absl::StatusOr<std::optional<ResidenceRecord>> ReadCurrentResidence(
    storage::Transaction& tx, absl::string_view person_id);

// The record `id`, whoever it belongs to, or nullopt (for request_id
// retries, which name the record they created).
absl::StatusOr<std::optional<ResidenceRecord>> ReadResidenceById(
    storage::Transaction& tx, absl::string_view id);

// Inserts `record` (seq is ignored and assigned).
absl::Status InsertResidence(storage::Transaction& tx,
                             const ResidenceRecord& record);

// The person's records newest first, at most `limit`, only those with
// seq < `before_seq` when it is > 0 (keyset paging).
absl::StatusOr<std::vector<ResidenceRecord>> ListResidence(
    storage::Transaction& tx, absl::string_view person_id, int64_t before_seq,
    int limit);

// Whether `agency` ("agencies/{id}") recorded any residence status of the
// person: it then owns that data (basis OWNER).
absl::StatusOr<bool> AgencyRecordedResidence(storage::Transaction& tx,
                                             absl::string_view person_id,
                                             absl::string_view agency);

// Moves every record of `from_person` to `to_person` (MergePersons). The
// survivor's current record is then the one recorded last of both.
absl::Status MoveResidence(storage::Transaction& tx,
                           absl::string_view from_person,
                           absl::string_view to_person);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_RESIDENCE_STORE_H_
