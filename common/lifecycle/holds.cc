#include "common/lifecycle/holds.h"

#include <cstdint>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/civil_time.h"

namespace lotse::lifecycle {
namespace {

constexpr absl::string_view kPersonsPrefix = "persons/";
constexpr absl::string_view kCasesPrefix = "cases/";

// Holds end at midnight of the agencies' own time zone, the day after their
// end date: a hold "until 30 June" still holds on 30 June in Germany.
constexpr char kHoldTimeZone[] = "Europe/Berlin";

// The id after `prefix` in `name`, when `name` is exactly "<prefix><id>"
// with a non-empty id without '/'.
bool IdAfter(absl::string_view name, absl::string_view prefix,
             absl::string_view* id) {
  if (!absl::ConsumePrefix(&name, prefix)) return false;
  if (name.empty() || absl::StrContains(name, '/')) return false;
  *id = name;
  return true;
}

absl::StatusOr<bool> AnyRow(storage::Transaction& tx, absl::string_view sql,
                            const std::vector<storage::Value>& params) {
  absl::StatusOr<storage::Rows> rows = tx.Query(sql, params);
  if (!rows.ok()) return rows.status();
  return !rows->empty();
}

}  // namespace

std::vector<storage::Migration> HoldMigrations() {
  return {{"common.lifecycle.0001_holds", R"sql(
CREATE TABLE lifecycle_holds (
  hold TEXT PRIMARY KEY,
  subject TEXT NOT NULL,
  person TEXT NOT NULL,
  end_us BIGINT NOT NULL,
  released_us BIGINT
);
CREATE INDEX lifecycle_holds_person ON lifecycle_holds (person, end_us);
CREATE INDEX lifecycle_holds_subject ON lifecycle_holds (subject, end_us);
)sql"}};
}

absl::StatusOr<absl::Time> HoldEnd(const lotse::type::v1::Date& end_date) {
  const absl::CivilDay day(end_date.year(), end_date.month(), end_date.day());
  // CivilDay normalises 31 February to 3 March: a date that does not come
  // back unchanged does not exist.
  if (end_date.year() < 1900 || end_date.year() > 9999 ||
      day.year() != end_date.year() || day.month() != end_date.month() ||
      day.day() != end_date.day()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid hold end date ", end_date.year(), "-",
                     end_date.month(), "-", end_date.day()));
  }
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(kHoldTimeZone, &zone)) {
    return absl::InternalError(
        absl::StrCat("time zone ", kHoldTimeZone, " is not installed"));
  }
  return absl::FromCivil(day + 1, zone);
}

absl::Status ApplyHold(storage::Transaction& tx,
                       const lotse::identity::v1::LegalHold& hold) {
  if (hold.name().empty()) {
    return absl::InvalidArgumentError("legal hold without name");
  }
  absl::string_view subject_id;
  if (!IdAfter(hold.subject(), kPersonsPrefix, &subject_id) &&
      !IdAfter(hold.subject(), kCasesPrefix, &subject_id)) {
    return absl::InvalidArgumentError(
        "legal hold subject must be persons/{person} or cases/{case}");
  }
  absl::string_view person;
  if (!IdAfter(hold.person(), kPersonsPrefix, &person)) {
    return absl::InvalidArgumentError(
        "legal hold person must be persons/{person}");
  }
  if (absl::StartsWith(hold.subject(), kPersonsPrefix) &&
      hold.subject() != hold.person()) {
    return absl::InvalidArgumentError(
        "legal hold on a person must name that person as its person");
  }
  if (!hold.has_end_date()) {
    return absl::InvalidArgumentError("legal hold without end date");
  }
  absl::StatusOr<absl::Time> end = HoldEnd(hold.end_date());
  if (!end.ok()) return end.status();

  storage::Value released;
  if (hold.has_release_time()) {
    released = hold.release_time().seconds() * 1000000 +
               hold.release_time().nanos() / 1000;
  }
  // A release never comes undone: a hold placed again under the same name
  // (a redelivered LegalHoldPlaced after its release) keeps its release.
  absl::StatusOr<int64_t> changed = tx.Execute(
      "INSERT INTO lifecycle_holds (hold, subject, person, end_us, "
      "released_us) VALUES ($1, $2, $3, $4, $5) "
      "ON CONFLICT (hold) DO UPDATE SET subject = excluded.subject, "
      "person = excluded.person, end_us = excluded.end_us, "
      "released_us = COALESCE(lifecycle_holds.released_us, "
      "excluded.released_us)",
      {hold.name(), hold.subject(), std::string(person),
       absl::ToUnixMicros(*end), std::move(released)});
  return changed.status();
}

absl::StatusOr<bool> IsPersonHeld(storage::Transaction& tx,
                                  const std::string& person, absl::Time now) {
  return AnyRow(tx,
                "SELECT 1 FROM lifecycle_holds WHERE person = $1 "
                "AND end_us > $2 AND released_us IS NULL LIMIT 1",
                {person, absl::ToUnixMicros(now)});
}

absl::StatusOr<bool> IsSubjectHeld(storage::Transaction& tx,
                                   const std::string& subject, absl::Time now) {
  return AnyRow(tx,
                "SELECT 1 FROM lifecycle_holds WHERE subject = $1 "
                "AND end_us > $2 AND released_us IS NULL LIMIT 1",
                {subject, absl::ToUnixMicros(now)});
}

std::string NotHeldCondition(const std::string& person_column,
                             const std::string& subject_column,
                             int now_parameter) {
  const std::string now = absl::StrCat("$", now_parameter);
  // A hold on a case holds that case, not everything else about its person
  // (LegalHold.subject), so rows match holds by subject: the person's own
  // subject "persons/{p}" and, when given, the row's.
  auto not_held = [&now](const std::string& subject) {
    return absl::StrCat(
        "NOT EXISTS (SELECT 1 FROM lifecycle_holds lh WHERE lh.subject = ",
        subject, " AND lh.end_us > ", now, " AND lh.released_us IS NULL)");
  };
  std::string condition =
      not_held(absl::StrCat("'persons/' || ", person_column));
  if (!subject_column.empty()) {
    absl::StrAppend(&condition, " AND ", not_held(subject_column));
  }
  return absl::StrCat("(", condition, ")");
}

}  // namespace lotse::lifecycle
