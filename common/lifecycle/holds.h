// Legal holds as every service keeps them (DESIGN.md section 4: "a legal
// hold stops it"). Identity decides holds (PlaceLegalHold,
// ReleaseLegalHold) and sends LegalHoldPlaced / LegalHoldReleased to every
// service; each service applies them to its own table here, and its purge
// tasks and erasure skip what an active hold covers.
//
// Table (HoldMigrations): lifecycle_holds (hold PRIMARY KEY: the hold's
// resource name; subject: "persons/{p}" or "cases/{c}"; person: the person
// id, without "persons/"; end_us: the end of the hold's end date in
// microseconds since the epoch; released_us: when it was released, or
// NULL), indexed by person and by subject.
//
// A hold is active at `now` when it is not released and now < end_us.
#ifndef LOTSE_COMMON_LIFECYCLE_HOLDS_H_
#define LOTSE_COMMON_LIFECYCLE_HOLDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "lotse/identity/v1/lifecycle.pb.h"

namespace lotse::lifecycle {

// Migration "common.lifecycle.0001_holds".
std::vector<storage::Migration> HoldMigrations();

// The end of a hold's end date (Europe/Berlin midnight after it), as stored
// in end_us. INVALID_ARGUMENT for an invalid date.
absl::StatusOr<absl::Time> HoldEnd(const lotse::type::v1::Date& end_date);

// Records or updates `hold` (from LegalHoldPlaced or LegalHoldReleased: a
// hold with release_time set is stored as released). Idempotent: applying
// the same hold twice leaves one row. INVALID_ARGUMENT for a hold without
// name, subject, person or a valid end date.
absl::Status ApplyHold(storage::Transaction& tx,
                       const lotse::identity::v1::LegalHold& hold);

// Whether an active hold covers the person (a hold on the person itself,
// or on any of their cases). `person` is the id without "persons/".
absl::StatusOr<bool> IsPersonHeld(storage::Transaction& tx,
                                  const std::string& person, absl::Time now);

// Whether an active hold names exactly `subject` ("cases/{c}" or
// "persons/{p}").
absl::StatusOr<bool> IsSubjectHeld(storage::Transaction& tx,
                                   const std::string& subject, absl::Time now);

// An SQL condition, for the WHERE clause of a purge query, that is true
// when no active hold covers the row: no hold on the row's person
// ("persons/{p}") and none on the row's subject (a hold on a case holds
// that case's rows, not the person's other records): `person_column`
// names the column with the person id (without "persons/"), and
// `subject_column`, when not empty, the column with the row's subject
// resource name (e.g. "'cases/' || c.id"). It has one parameter, the time
// `now` in microseconds, written `$<now_parameter>`: the caller binds now at
// that position of its own parameter list, e.g.
//
//   "SELECT id FROM cases c WHERE c.closed_us <= $1 AND " +
//       NotHeldCondition("c.person", "'cases/' || c.id", 2) + " LIMIT $3"
//
// with the parameters {cutoff_us, now_us, limit}. The SQL is the same on
// SQLite and PostgreSQL and reads the indexes of lifecycle_holds.
std::string NotHeldCondition(const std::string& person_column,
                             const std::string& subject_column = "",
                             int now_parameter = 1);

}  // namespace lotse::lifecycle

#endif  // LOTSE_COMMON_LIFECYCLE_HOLDS_H_
