// Storage of what identity decides about a person's data leaving Lotse:
// legal holds, erasures and the revisions corrections keep (DESIGN.md
// section 4, "Data leaves"; lifecycle.proto).
//
// Tables (LifecycleMigration):
//   identity_legal_holds      one row per hold: id, subject ("persons/{p}"
//                             or "cases/{c}"), person_id, placing_agency
//                             (id), create_us, end_us (the end of the end
//                             date), released_us (NULL unless released),
//                             data (the LegalHold as placed and released;
//                             its state is derived on read).
//   identity_erasures         one row per erased person: person_id,
//                             requesting_agency (id), request_us, owners
//                             (the agency ids that owned a case of the
//                             person at the erasure, comma-separated: they
//                             may still ask for its status), data (the
//                             Erasure with each service's state). No
//                             personal data: ids, the reason the caller
//                             gave, times and counts.
//   identity_person_revisions the versions corrections replaced: person_id,
//                             n (1, 2, ... per person), change_us (when the
//                             next correction replaced it: the anchor
//                             SUPERSEDED of the retention rules),
//                             changing_agency, data (the PersonRevision).
//   identity_consents.valid_until_us  the consent's valid_until (NULL when
//                             unset, and for consents recorded before this
//                             column: those end for retention only when
//                             withdrawn), so the purge finds expired ones.
//   identity_residence_statuses.end_us  the end of the record's valid_until
//                             (midnight UTC after it; NULL when open, and
//                             for records from before this column), for the
//                             retention anchor END.
//
// Every call runs in the caller's transaction.
#ifndef LOTSE_SERVICES_IDENTITY_STORE_LIFECYCLE_STORE_H_
#define LOTSE_SERVICES_IDENTITY_STORE_LIFECYCLE_STORE_H_

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
#include "lotse/identity/v1/events.pb.h"
#include "lotse/identity/v1/lifecycle.pb.h"

namespace lotse::identity {

// Migration "identity.0602_lifecycle".
storage::Migration LifecycleMigration();

// --- Legal holds ---

// "legalHolds/{id}".
std::string HoldResourceName(absl::string_view id);

// The end of a hold's end date: midnight after it in Europe/Berlin. Nullopt
// for a date that is not a real calendar date.
std::optional<absl::Time> HoldEndTime(const lotse::type::v1::Date& end_date);

struct HoldRecord {
  std::string id;
  std::string person_id;
  std::string placing_agency;  // id
  absl::Time create_time;
  absl::Time end_time;  // HoldEndTime of the end date
  // With name, state (at the time of the read), and every output field.
  lotse::identity::v1::LegalHold hold;
};

// Stores a new hold. `record.hold` carries subject, person, reason,
// end_date, placing_agency, create_time and name.
absl::Status InsertHold(storage::Transaction& tx, const HoldRecord& record);

// Hold `id` with its state at `now`, or nullopt.
absl::StatusOr<std::optional<HoldRecord>> ReadHold(storage::Transaction& tx,
                                                   absl::string_view id,
                                                   absl::Time now);

// Records the release in `record.hold` (release_time, releasing_agency,
// release_reason). False when the hold was released meanwhile.
absl::StatusOr<bool> WriteHoldRelease(storage::Transaction& tx,
                                      const HoldRecord& record);

struct HoldFilter {
  std::string person_id;       // only holds on this person and their cases
  std::string placing_agency;  // only holds this agency placed
  bool include_inactive = false;
};

struct HoldPage {
  std::vector<HoldRecord> holds;
  std::string next_cursor;  // empty on the last page
};

// Holds matching `filter`, newest first (create time, then id), at most
// `limit`, after `cursor` ("" for the first page). INVALID_ARGUMENT for a
// cursor this store did not give.
absl::StatusOr<HoldPage> ListHolds(storage::Transaction& tx,
                                   const HoldFilter& filter, absl::Time now,
                                   absl::string_view cursor, int limit);

// An active hold on the person or one of their cases at `now` (the one
// ending last), or nullopt.
absl::StatusOr<std::optional<HoldRecord>> ActiveHoldOn(
    storage::Transaction& tx, absl::string_view person_id, absl::Time now);

// --- Erasures ---

struct ErasureRecord {
  std::string person_id;
  std::vector<std::string> owners;  // agency ids
  lotse::identity::v1::Erasure erasure;
};

absl::Status InsertErasure(storage::Transaction& tx,
                           const ErasureRecord& record);

// The erasure of person `person_id`, or nullopt.
absl::StatusOr<std::optional<ErasureRecord>> ReadErasure(
    storage::Transaction& tx, absl::string_view person_id);

// Records a service's report in the erasure of `report.person` (replacing
// an earlier report of the same service, adding a service that was not
// expected), and recomputes `complete`. NOT_FOUND (reason
// ERASURE_NOT_FOUND) when identity has no erasure of the person;
// INVALID_ARGUMENT for a report without a person "persons/{id}" or a
// service name.
absl::Status RecordErasureReport(
    storage::Transaction& tx,
    const lotse::identity::v1::ErasureReported& report, absl::Time now);

// Whether every service of `erasure` reported.
bool ErasureComplete(const lotse::identity::v1::Erasure& erasure);

// --- Revisions ---

// Appends `revision` (its person, changed_fields, changing agency and
// actor, change_time) as the person's next revision and returns its
// number. The caller holds the person's lock (PersonStore::Update takes it;
// call in the same transaction after it).
absl::StatusOr<int64_t> AppendRevision(
    storage::Transaction& tx, absl::string_view person_id,
    const lotse::identity::v1::PersonRevision& revision);

// "persons/{person}/revisions/{n}".
std::string RevisionResourceName(absl::string_view person_id, int64_t n);

struct RevisionPage {
  std::vector<lotse::identity::v1::PersonRevision> revisions;  // names set
  int64_t next_before = 0;  // 0 on the last page
};

// The person's revisions, newest first, with numbers below `before` (0: from
// the newest), at most `limit`.
absl::StatusOr<RevisionPage> ListRevisions(storage::Transaction& tx,
                                           absl::string_view person_id,
                                           int64_t before, int limit);

// --- Erasing a person's rows (ErasePerson) ---

// Deletes the person's revisions, residence statuses, relations, proof
// failures and, unless `keep_consents`, consents; returns how many rows.
absl::StatusOr<int64_t> DeletePersonRows(storage::Transaction& tx,
                                         absl::string_view person_id,
                                         bool keep_consents);

// The consents of an erased person that a retention rule keeps as proof
// that a consent was given (Art. 7(1) GDPR): each one not yet withdrawn is
// withdrawn at `now` by "services/identity" (it allows nothing from now on,
// and its retention period starts). What stays is what the proof needs and
// no more: categories, recipient, purposes, validity, the recording agency
// and the reference to the signed document in its files; never a name or a
// birth date. No RPC reads it any longer (every consent RPC resolves the
// person first, and the person is gone); the purge job deletes it when its
// period ends. Returns how many are kept and the latest end (withdrawal or
// expiry) among them.
struct KeptConsents {
  int64_t count = 0;
  absl::Time last_end = absl::InfinitePast();
};
absl::StatusOr<KeptConsents> KeepConsentsAsProof(storage::Transaction& tx,
                                                 absl::string_view person_id,
                                                 absl::Time now);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_LIFECYCLE_STORE_H_
