#include "services/courses/store/course_store.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/storage/rows.h"
#include "services/courses/domain/dates.h"

namespace lotse::courses {
namespace {

using ::lotse::storage::Blob;
using ::lotse::storage::Bytes;
using ::lotse::storage::FirstRow;
using ::lotse::storage::MapRows;
using ::lotse::storage::ParseBlob;
using ::lotse::storage::Row;
using ::lotse::storage::Rows;
using ::lotse::storage::Sql;
using ::lotse::storage::Transaction;
using ::lotse::storage::Value;

absl::StatusOr<int64_t> Int(const Row& row, size_t column) {
  return row.GetInt(column);
}

absl::StatusOr<std::vector<std::string>> Ids(const absl::StatusOr<Rows>& rows) {
  return MapRows<std::string>(
      rows,
      [](const Row& r) -> absl::StatusOr<std::string> { return r.GetText(0); });
}

// `values` with one more: the time a record changed state, for the
// lifecycle anchor columns (migrations.cc, courses.0004): the record's
// update time, or `fallback_us` when it has none.
std::vector<Value> WithTime(std::vector<Value> values,
                            const google::protobuf::Timestamp& update,
                            int64_t fallback_us) {
  const int64_t us = update.seconds() == 0 && update.nanos() == 0
                         ? fallback_us
                         : update.seconds() * 1000000 + update.nanos() / 1000;
  values.push_back(us);
  return values;
}

// --- courses ---

constexpr char kCourseColumns[] = "id, version, lat, lon, data";

int64_t WeekdayMask(const v1::CourseSchedule& s) {
  int64_t mask = 0;
  for (int d : s.weekdays()) {
    if (d >= 1 && d <= 7) mask |= int64_t{1} << d;
  }
  return mask;
}

std::vector<Value> CourseValues(const CourseRow& row) {
  const v1::Course& c = row.course;
  const std::optional<int64_t> start = DayNumber(c.schedule().start_date());
  Value lat, lon;
  if (row.position) lat = row.position->lat, lon = row.position->lon;
  return {row.id,
          c.provider_agency().substr(sizeof("agencies/") - 1),
          static_cast<int64_t>(c.kind()),
          static_cast<int64_t>(c.target_level()),
          c.place().municipality_code(),
          c.place().postal_code(),
          lat,
          lon,
          start.value_or(0),
          WeekdayMask(c.schedule()),
          static_cast<int64_t>(c.schedule().day_period()),
          int64_t{c.childcare_offered() ? 1 : 0},
          static_cast<int64_t>(c.capacity()),
          static_cast<int64_t>(c.booked_seats()),
          static_cast<int64_t>(c.waitlist_length()),
          static_cast<int64_t>(c.state()),
          row.version,
          Blob(c)};
}

absl::StatusOr<CourseRow> ParseCourse(const Row& r) {
  CourseRow row;
  absl::StatusOr<std::string> id = r.GetText(0);
  if (!id.ok()) return id.status();
  row.id = *id;
  absl::StatusOr<int64_t> version = r.GetInt(1);
  if (!version.ok()) return version.status();
  row.version = *version;
  if (!r.IsNull(2) && !r.IsNull(3)) {
    absl::StatusOr<double> lat = r.GetDouble(2), lon = r.GetDouble(3);
    if (!lat.ok()) return lat.status();
    if (!lon.ok()) return lon.status();
    row.position = geo::GeoPoint{*lat, *lon};
  }
  if (absl::Status s = ParseBlob(r, 4, &row.course); !s.ok()) return s;
  return row;
}

// --- entitlements ---

constexpr char kEntitlementColumns[] = "id, version, create_us, revoked, data";

absl::StatusOr<EntitlementRow> ParseEntitlement(const Row& r) {
  EntitlementRow row;
  absl::StatusOr<std::string> id = r.GetText(0);
  if (!id.ok()) return id.status();
  row.id = *id;
  absl::StatusOr<int64_t> version = Int(r, 1), create = Int(r, 2),
                          revoked = Int(r, 3);
  if (!version.ok()) return version.status();
  if (!create.ok()) return create.status();
  if (!revoked.ok()) return revoked.status();
  row.version = *version;
  row.create_us = *create;
  row.revoked = *revoked != 0;
  if (absl::Status s = ParseBlob(r, 4, &row.entitlement); !s.ok()) return s;
  return row;
}

std::vector<Value> EntitlementValues(const EntitlementRow& row) {
  const v1::Entitlement& e = row.entitlement;
  int64_t kinds = 0;
  for (int k : e.course_kinds()) kinds |= int64_t{1} << k;
  return {row.id,
          e.person(),
          static_cast<int64_t>(e.kind()),
          e.issuing_agency().substr(sizeof("agencies/") - 1),
          kinds,
          static_cast<int64_t>(e.units()),
          static_cast<int64_t>(e.units_used()),
          DayNumber(e.valid_from()).value_or(0),
          DayNumber(e.valid_until()).value_or(0),
          int64_t{row.revoked ? 1 : 0},
          row.version,
          row.create_us,
          Blob(e)};
}

// --- bookings ---

constexpr char kBookingColumns[] =
    "id, course_id, entitlement_id, units, version, create_us, "
    "hold_expire_us, data";

absl::StatusOr<BookingRow> ParseBooking(const Row& r) {
  BookingRow row;
  absl::StatusOr<std::string> id = r.GetText(0), course = r.GetText(1),
                              ent = r.GetText(2);
  if (!id.ok()) return id.status();
  if (!course.ok()) return course.status();
  if (!ent.ok()) return ent.status();
  row.id = *id;
  row.course_id = *course;
  row.entitlement_id = *ent;
  absl::StatusOr<int64_t> units = Int(r, 3), version = Int(r, 4),
                          create = Int(r, 5), hold = Int(r, 6);
  if (!units.ok()) return units.status();
  if (!version.ok()) return version.status();
  if (!create.ok()) return create.status();
  if (!hold.ok()) return hold.status();
  row.units = *units;
  row.version = *version;
  row.create_us = *create;
  row.hold_expire_us = *hold;
  if (absl::Status s = ParseBlob(r, 7, &row.booking); !s.ok()) return s;
  return row;
}

std::vector<Value> BookingValues(const BookingRow& row) {
  const v1::Booking& b = row.booking;
  return {row.id,
          row.course_id,
          b.person(),
          row.entitlement_id,
          b.booking_agency().substr(sizeof("agencies/") - 1),
          static_cast<int64_t>(b.state()),
          row.hold_expire_us,
          row.units,
          row.version,
          row.create_us,
          Blob(b)};
}

// --- waitlist ---

constexpr char kWaitlistColumns[] =
    "id, course_id, seq, version, create_us, data";

absl::StatusOr<WaitlistRow> ParseWaitlist(const Row& r) {
  WaitlistRow row;
  absl::StatusOr<std::string> id = r.GetText(0), course = r.GetText(1);
  if (!id.ok()) return id.status();
  if (!course.ok()) return course.status();
  row.id = *id;
  row.course_id = *course;
  absl::StatusOr<int64_t> seq = Int(r, 2), version = Int(r, 3),
                          create = Int(r, 4);
  if (!seq.ok()) return seq.status();
  if (!version.ok()) return version.status();
  if (!create.ok()) return create.status();
  row.seq = *seq;
  row.version = *version;
  row.create_us = *create;
  if (absl::Status s = ParseBlob(r, 5, &row.entry); !s.ok()) return s;
  return row;
}

std::vector<Value> WaitlistValues(const WaitlistRow& row) {
  const v1::WaitlistEntry& w = row.entry;
  return {row.id,
          row.course_id,
          w.person(),
          w.requesting_agency().substr(sizeof("agencies/") - 1),
          static_cast<int64_t>(w.priority()),
          row.seq,
          static_cast<int64_t>(w.state()),
          row.version,
          row.create_us,
          Blob(w)};
}

}  // namespace

// --- agencies ---

// --- merges ---

absl::Status RecordMerge(Transaction& tx, absl::string_view merged,
                         absl::string_view survivor) {
  return tx
      .Execute(
          "INSERT INTO course_person_merges (merged, survivor) VALUES ($1, "
          "$2) ON CONFLICT (merged) DO UPDATE SET survivor = $2",
          {std::string(merged), std::string(survivor)})
      .status();
}

absl::StatusOr<std::string> ResolveMerged(Transaction& tx,
                                          const std::string& person) {
  std::string current = person;
  // Merges chain (a into b, later b into c); a chain is short.
  for (int hop = 0; hop < 16; ++hop) {
    absl::StatusOr<Rows> rows =
        tx.Query("SELECT survivor FROM course_person_merges WHERE merged = $1",
                 {current});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return current;
    absl::StatusOr<std::string> next = rows->front().GetText(0);
    if (!next.ok()) return next.status();
    current = *next;
  }
  return current;
}

// --- courses ---

absl::Status LockCourse(Transaction& tx, absl::string_view id) {
  return tx.LockNamed(absl::StrCat("course/", id));
}

absl::Status InsertCourse(Transaction& tx, const CourseRow& row) {
  return tx
      .Execute(
          "INSERT INTO courses (id, provider, kind, target_level, "
          "municipality_code, postal_code, lat, lon, start_day, weekdays, "
          "day_period, childcare, capacity, booked, waitlist_length, state, "
          "version, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
          "$11, $12, $13, $14, $15, $16, $17, $18)",
          CourseValues(row))
      .status();
}

absl::Status WriteCourse(Transaction& tx, const CourseRow& row) {
  return storage::ExpectOneRow(
      tx.Execute("UPDATE courses SET provider = $2, kind = $3, "
                 "target_level = $4, municipality_code = $5, postal_code = "
                 "$6, lat = $7, lon = $8, start_day = $9, weekdays = $10, "
                 "day_period = $11, childcare = $12, capacity = $13, booked "
                 "= $14, waitlist_length = $15, state = $16, version = $17, "
                 "data = $18, finish_us = CASE WHEN $16 = 3 THEN "
                 "COALESCE(finish_us, $19) ELSE NULL END WHERE id = $1",
                 WithTime(CourseValues(row), row.course.update_time(), 0)),
      "course update");
}

absl::Status WriteCourseSeats(Transaction& tx, const CourseRow& row) {
  const v1::Course& c = row.course;
  return storage::ExpectOneRow(
      tx.Execute(
          "UPDATE courses SET booked = $2, waitlist_length = $3, "
          "version = $4, data = $5 WHERE id = $1",
          {row.id, static_cast<int64_t>(c.booked_seats()),
           static_cast<int64_t>(c.waitlist_length()), row.version, Blob(c)}),
      "course update");
}

absl::StatusOr<std::optional<CourseRow>> ReadCourse(Transaction& tx,
                                                    absl::string_view id) {
  return FirstRow<CourseRow>(
      tx.Query(absl::StrCat("SELECT ", kCourseColumns,
                            " FROM courses WHERE id = $1"),
               {std::string(id)}),
      ParseCourse);
}

absl::StatusOr<std::vector<CourseRow>> ListCourseRows(
    Transaction& tx, const CourseListFilter& filter, int64_t after_day,
    const std::string& after_id, int limit) {
  Sql q(absl::StrCat("SELECT ", kCourseColumns, " FROM courses WHERE 1 = 1"));
  if (!filter.provider.empty()) q.S(" AND provider = ").P(filter.provider);
  if (!filter.municipality_code.empty()) {
    q.S(" AND municipality_code = ").P(filter.municipality_code);
  }
  q.In("state", filter.states);
  if (!after_id.empty()) {
    q.S(" AND (start_day > ").P(after_day).S(" OR (start_day = ");
    q.P(after_day).S(" AND id > ").P(after_id).S("))");
  }
  q.S(" ORDER BY start_day, id LIMIT ").P(int64_t{limit});
  return MapRows<CourseRow>(tx.Query(q.text(), q.params()), ParseCourse);
}

absl::StatusOr<std::vector<CourseCandidate>> SearchCourseCandidates(
    Transaction& tx, const CourseSearch& s, int64_t after_day,
    const std::string& after_id, int limit) {
  // "state IN (1, 2)" exactly as in the partial search indexes.
  Sql q(
      "SELECT id, start_day, lat, lon, booked, capacity, weekdays FROM "
      "courses WHERE state IN (1, 2)");
  if (s.kinds.size() == 1) {
    q.S(" AND kind = ").P(static_cast<int64_t>(s.kinds[0]));
  } else {
    q.In("kind", s.kinds);
  }
  if (s.target_level != 0) {
    q.S(" AND target_level = ").P(static_cast<int64_t>(s.target_level));
  }
  if (!s.municipality_code.empty()) {
    q.S(" AND municipality_code = ").P(s.municipality_code);
  }
  if (s.box) {
    q.S(" AND lat BETWEEN ").P(s.box->min_lat).S(" AND ").P(s.box->max_lat);
    q.S(" AND lon BETWEEN ").P(s.box->min_lon).S(" AND ").P(s.box->max_lon);
  }
  q.S(" AND start_day >= ").P(s.start_min);
  if (s.start_max) q.S(" AND start_day <= ").P(*s.start_max);
  q.In("day_period", s.day_periods);
  if (s.childcare_required) q.S(" AND childcare = 1");
  if (!s.include_full) q.S(" AND booked < capacity");
  if (!after_id.empty()) {
    q.S(" AND (start_day > ").P(after_day).S(" OR (start_day = ");
    q.P(after_day).S(" AND id > ").P(after_id).S("))");
  }
  q.S(" ORDER BY start_day, id LIMIT ").P(int64_t{limit});
  return MapRows<CourseCandidate>(
      tx.Query(q.text(), q.params()),
      [](const Row& r) -> absl::StatusOr<CourseCandidate> {
        CourseCandidate c;
        absl::StatusOr<std::string> id = r.GetText(0);
        absl::StatusOr<int64_t> day = r.GetInt(1), booked = r.GetInt(4),
                                capacity = r.GetInt(5), weekdays = r.GetInt(6);
        if (!id.ok()) return id.status();
        if (!day.ok()) return day.status();
        if (!booked.ok()) return booked.status();
        if (!capacity.ok()) return capacity.status();
        if (!weekdays.ok()) return weekdays.status();
        c.id = *id;
        c.start_day = *day;
        c.booked = static_cast<int>(*booked);
        c.capacity = static_cast<int>(*capacity);
        c.weekdays = *weekdays;
        if (!r.IsNull(2) && !r.IsNull(3)) {
          absl::StatusOr<double> lat = r.GetDouble(2), lon = r.GetDouble(3);
          if (!lat.ok()) return lat.status();
          if (!lon.ok()) return lon.status();
          c.position = geo::GeoPoint{*lat, *lon};
        }
        return c;
      });
}

absl::StatusOr<std::vector<CourseRow>> ReadCourses(
    Transaction& tx, const std::vector<std::string>& ids) {
  if (ids.empty()) return std::vector<CourseRow>{};
  Sql q(absl::StrCat("SELECT ", kCourseColumns, " FROM courses WHERE id IN ("));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) q.S(", ");
    q.P(ids[i]);
  }
  q.S(")");
  return MapRows<CourseRow>(tx.Query(q.text(), q.params()), ParseCourse);
}

// --- entitlements ---

absl::Status InsertEntitlement(Transaction& tx, const EntitlementRow& row) {
  return tx
      .Execute(
          "INSERT INTO course_entitlements (id, person, kind, issuer, "
          "course_kinds, units, units_used, valid_from, valid_until, revoked, "
          "version, create_us, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
          "$9, $10, $11, $12, $13)",
          EntitlementValues(row))
      .status();
}

absl::Status WriteEntitlement(Transaction& tx, const EntitlementRow& row) {
  return storage::ExpectOneRow(
      tx.Execute("UPDATE course_entitlements SET person = $2, kind = $3, "
                 "issuer = $4, course_kinds = $5, units = $6, units_used = "
                 "$7, valid_from = $8, valid_until = $9, revoked = $10, "
                 "version = $11, create_us = $12, data = $13, revoke_us = "
                 "CASE WHEN $10 <> 0 THEN COALESCE(revoke_us, $14) ELSE NULL "
                 "END WHERE id = $1",
                 WithTime(EntitlementValues(row), row.entitlement.update_time(),
                          row.create_us)),
      "entitlement update");
}

absl::Status WriteEntitlementUse(Transaction& tx, const EntitlementRow& row) {
  return storage::ExpectOneRow(
      tx.Execute("UPDATE course_entitlements SET units_used = $2, "
                 "version = $3, data = $4 WHERE id = $1",
                 {row.id, static_cast<int64_t>(row.entitlement.units_used()),
                  row.version, Blob(row.entitlement)}),
      "entitlement update");
}

absl::StatusOr<std::optional<EntitlementRow>> ReadEntitlement(
    Transaction& tx, absl::string_view id) {
  return FirstRow<EntitlementRow>(
      tx.Query(absl::StrCat("SELECT ", kEntitlementColumns,
                            " FROM course_entitlements WHERE id = $1"),
               {std::string(id)}),
      ParseEntitlement);
}

absl::StatusOr<std::vector<EntitlementRow>> ListEntitlementRows(
    Transaction& tx, const std::string& person, const std::string& issuer,
    int64_t before_us, const std::string& before_id, int limit) {
  Sql q(absl::StrCat("SELECT ", kEntitlementColumns,
                     " FROM course_entitlements WHERE 1 = 1"));
  if (!person.empty()) q.S(" AND person = ").P(person);
  if (!issuer.empty()) q.S(" AND issuer = ").P(issuer);
  if (!before_id.empty()) {
    q.S(" AND (create_us < ").P(before_us).S(" OR (create_us = ");
    q.P(before_us).S(" AND id < ").P(before_id).S("))");
  }
  q.S(" ORDER BY create_us DESC, id DESC LIMIT ").P(int64_t{limit});
  return MapRows<EntitlementRow>(tx.Query(q.text(), q.params()),
                                 ParseEntitlement);
}

// --- bookings ---

absl::Status InsertBooking(Transaction& tx, const BookingRow& row) {
  return tx
      .Execute(
          "INSERT INTO course_bookings (id, course_id, person, "
          "entitlement_id, booking_agency, state, hold_expire_us, units, "
          "version, create_us, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
          "$9, $10, $11)",
          BookingValues(row))
      .status();
}

absl::Status WriteBooking(Transaction& tx, const BookingRow& row) {
  return storage::ExpectOneRow(
      tx.Execute("UPDATE course_bookings SET course_id = $2, person = $3, "
                 "entitlement_id = $4, booking_agency = $5, state = $6, "
                 "hold_expire_us = $7, units = $8, version = $9, create_us = "
                 "$10, data = $11, end_us = CASE WHEN $6 IN (5, 6) THEN "
                 "COALESCE(end_us, $12) ELSE NULL END WHERE id = $1",
                 WithTime(BookingValues(row), row.booking.update_time(),
                          row.create_us)),
      "booking update");
}

absl::StatusOr<std::optional<BookingRow>> ReadBooking(Transaction& tx,
                                                      absl::string_view id) {
  return FirstRow<BookingRow>(
      tx.Query(absl::StrCat("SELECT ", kBookingColumns,
                            " FROM course_bookings WHERE id = $1"),
               {std::string(id)}),
      ParseBooking);
}

absl::StatusOr<std::optional<BookingRow>> ActiveBooking(
    Transaction& tx, absl::string_view course_id, absl::string_view person) {
  return FirstRow<BookingRow>(
      tx.Query(absl::StrCat("SELECT ", kBookingColumns,
                            " FROM course_bookings WHERE course_id = $1 AND "
                            "person = $2 AND state IN (1, 2, 3)"),
               {std::string(course_id), std::string(person)}),
      ParseBooking);
}

absl::StatusOr<std::vector<BookingRow>> ListBookingRows(
    Transaction& tx, const BookingFilter& f, int64_t after_us,
    const std::string& after_id, int limit) {
  Sql q(absl::StrCat("SELECT ", kBookingColumns,
                     " FROM course_bookings WHERE 1 = 1"));
  if (!f.course_id.empty()) q.S(" AND course_id = ").P(f.course_id);
  if (!f.person.empty()) q.S(" AND person = ").P(f.person);
  if (!f.agency.empty()) q.S(" AND booking_agency = ").P(f.agency);
  q.In("state", f.states);
  if (!after_id.empty()) {
    q.S(" AND (create_us > ").P(after_us).S(" OR (create_us = ");
    q.P(after_us).S(" AND id > ").P(after_id).S("))");
  }
  q.S(" ORDER BY create_us, id LIMIT ").P(int64_t{limit});
  return MapRows<BookingRow>(tx.Query(q.text(), q.params()), ParseBooking);
}

absl::StatusOr<std::vector<std::string>> ExpiredHoldIds(Transaction& tx,
                                                        int64_t now_us,
                                                        int limit) {
  return Ids(tx.Query(
      "SELECT id FROM course_bookings WHERE state = 1 AND hold_expire_us <= "
      "$1 ORDER BY hold_expire_us LIMIT $2",
      {now_us, int64_t{limit}}));
}

absl::StatusOr<bool> AgencyServesPerson(Transaction& tx,
                                        absl::string_view agency,
                                        absl::string_view person) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT 1 FROM course_bookings b JOIN courses c ON c.id = b.course_id "
      "WHERE b.person = $1 AND c.provider = $2 UNION ALL SELECT 1 FROM "
      "course_entitlements WHERE person = $1 AND issuer = $2 LIMIT 1",
      {std::string(person), std::string(agency)});
  if (!rows.ok()) return rows.status();
  return !rows->empty();
}

// --- waitlist ---

absl::Status InsertWaitlist(Transaction& tx, const WaitlistRow& row) {
  return tx
      .Execute(
          "INSERT INTO course_waitlist (id, course_id, person, "
          "requesting_agency, priority, seq, state, version, create_us, "
          "data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
          WaitlistValues(row))
      .status();
}

absl::Status WriteWaitlist(Transaction& tx, const WaitlistRow& row) {
  return storage::ExpectOneRow(
      tx.Execute("UPDATE course_waitlist SET course_id = $2, person = $3, "
                 "requesting_agency = $4, priority = $5, seq = $6, state = "
                 "$7, version = $8, create_us = $9, data = $10, end_us = CASE "
                 "WHEN $7 <> 1 THEN COALESCE(end_us, $11) ELSE NULL END WHERE "
                 "id = $1",
                 WithTime(WaitlistValues(row), row.entry.update_time(),
                          row.create_us)),
      "waitlist update");
}

absl::StatusOr<std::optional<WaitlistRow>> ReadWaitlist(Transaction& tx,
                                                        absl::string_view id) {
  return FirstRow<WaitlistRow>(
      tx.Query(absl::StrCat("SELECT ", kWaitlistColumns,
                            " FROM course_waitlist WHERE id = $1"),
               {std::string(id)}),
      ParseWaitlist);
}

absl::StatusOr<std::optional<WaitlistRow>> WaitingEntry(
    Transaction& tx, absl::string_view course_id, absl::string_view person) {
  return FirstRow<WaitlistRow>(
      tx.Query(absl::StrCat("SELECT ", kWaitlistColumns,
                            " FROM course_waitlist WHERE course_id = $1 AND "
                            "person = $2 AND state = 1"),
               {std::string(course_id), std::string(person)}),
      ParseWaitlist);
}

absl::StatusOr<std::optional<WaitlistRow>> WaitlistHead(
    Transaction& tx, absl::string_view course_id) {
  return FirstRow<WaitlistRow>(
      tx.Query(absl::StrCat("SELECT ", kWaitlistColumns,
                            " FROM course_waitlist WHERE course_id = $1 AND "
                            "state = 1 ORDER BY priority, seq LIMIT 1"),
               {std::string(course_id)}),
      ParseWaitlist);
}

absl::StatusOr<int> WaitlistPosition(Transaction& tx, const WaitlistRow& row) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT COUNT(*) FROM course_waitlist WHERE course_id = $1 AND state = "
      "1 AND (priority < $2 OR (priority = $2 AND seq < $3))",
      {row.course_id, static_cast<int64_t>(row.entry.priority()), row.seq});
  if (!rows.ok()) return rows.status();
  absl::StatusOr<int64_t> ahead = rows->front().GetInt(0);
  if (!ahead.ok()) return ahead.status();
  return static_cast<int>(*ahead) + 1;
}

absl::StatusOr<int64_t> NextWaitlistSeq(Transaction& tx,
                                        absl::string_view course_id) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT COALESCE(MAX(seq), 0) FROM course_waitlist WHERE course_id = $1",
      {std::string(course_id)});
  if (!rows.ok()) return rows.status();
  absl::StatusOr<int64_t> max = rows->front().GetInt(0);
  if (!max.ok()) return max.status();
  return *max + 1;
}

absl::StatusOr<std::vector<WaitlistRow>> ListWaitlistRows(
    Transaction& tx, const std::string& course_id, const std::string& person,
    const std::vector<int>& states, int64_t after_a, int64_t after_b,
    const std::string& after_id, int limit) {
  Sql q(absl::StrCat("SELECT ", kWaitlistColumns,
                     " FROM course_waitlist WHERE 1 = 1"));
  if (!course_id.empty()) q.S(" AND course_id = ").P(course_id);
  if (!person.empty()) q.S(" AND person = ").P(person);
  q.In("state", states);
  // A course's list in waitlist order; a person's by arrival.
  const char* a = course_id.empty() ? "create_us" : "priority";
  const char* b = course_id.empty() ? "create_us" : "seq";
  if (!after_id.empty()) {
    q.S(absl::StrCat(" AND (", a, " > ")).P(after_a);
    q.S(absl::StrCat(" OR (", a, " = ")).P(after_a);
    q.S(absl::StrCat(" AND (", b, " > ")).P(after_b);
    q.S(absl::StrCat(" OR (", b, " = ")).P(after_b);
    q.S(" AND id > ").P(after_id).S("))))");
  }
  q.S(absl::StrCat(" ORDER BY ", a, ", ", b, ", id LIMIT ")).P(int64_t{limit});
  return MapRows<WaitlistRow>(tx.Query(q.text(), q.params()), ParseWaitlist);
}

// --- attendance ---

absl::StatusOr<bool> InsertAttendance(Transaction& tx,
                                      absl::string_view booking_id, int64_t day,
                                      const v1::AttendanceRecord& record) {
  absl::StatusOr<int64_t> changed = tx.Execute(
      "INSERT INTO course_attendance (booking_id, day, id, status, units, "
      "data) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (booking_id, day) "
      "DO NOTHING",
      {std::string(booking_id), day,
       std::string(record.name().substr(record.name().rfind('/') + 1)),
       static_cast<int64_t>(record.status()),
       static_cast<int64_t>(record.units_attended()), Blob(record)});
  if (!changed.ok()) return changed.status();
  return *changed == 1;
}

absl::StatusOr<std::vector<v1::AttendanceRecord>> ListAttendance(
    Transaction& tx, absl::string_view booking_id, int64_t after_day,
    int limit) {
  return MapRows<v1::AttendanceRecord>(
      tx.Query("SELECT data FROM course_attendance WHERE booking_id = $1 AND "
               "day > $2 ORDER BY day LIMIT $3",
               {std::string(booking_id), after_day, int64_t{limit}}),
      [](const Row& r) -> absl::StatusOr<v1::AttendanceRecord> {
        v1::AttendanceRecord out;
        if (absl::Status s = ParseBlob(r, 0, &out); !s.ok()) return s;
        return out;
      });
}

absl::StatusOr<AttendanceTotals> AttendanceTotalsOf(
    Transaction& tx, absl::string_view booking_id) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT COALESCE(SUM(units), 0), COALESCE(SUM(CASE WHEN status = 3 "
      "THEN 1 ELSE 0 END), 0) FROM course_attendance WHERE booking_id = $1",
      {std::string(booking_id)});
  if (!rows.ok()) return rows.status();
  AttendanceTotals totals;
  absl::StatusOr<int64_t> units = rows->front().GetInt(0),
                          unexcused = rows->front().GetInt(1);
  if (!units.ok()) return units.status();
  if (!unexcused.ok()) return unexcused.status();
  totals.units = *units;
  totals.unexcused_days = *unexcused;
  return totals;
}

// --- results ---

absl::StatusOr<bool> InsertResult(Transaction& tx, absl::string_view booking_id,
                                  int64_t exam_day, int64_t create_us,
                                  const v1::CourseResult& result) {
  absl::StatusOr<int64_t> changed = tx.Execute(
      "INSERT INTO course_results (booking_id, person, exam_day, create_us, "
      "data) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (booking_id) DO NOTHING",
      {std::string(booking_id), result.person(), exam_day, create_us,
       Blob(result)});
  if (!changed.ok()) return changed.status();
  return *changed == 1;
}

absl::StatusOr<std::optional<v1::CourseResult>> ReadResult(
    Transaction& tx, absl::string_view booking_id) {
  return FirstRow<v1::CourseResult>(
      tx.Query("SELECT data FROM course_results WHERE booking_id = $1",
               {std::string(booking_id)}),
      [](const Row& r) -> absl::StatusOr<v1::CourseResult> {
        v1::CourseResult out;
        if (absl::Status s = ParseBlob(r, 0, &out); !s.ok()) return s;
        return out;
      });
}

absl::Status WriteResultPerson(Transaction& tx, absl::string_view booking_id,
                               const v1::CourseResult& result) {
  return tx
      .Execute(
          "UPDATE course_results SET person = $2, data = $3 WHERE "
          "booking_id = $1",
          {std::string(booking_id), result.person(), Blob(result)})
      .status();
}

absl::StatusOr<std::vector<ResultRow>> ListResultRows(
    Transaction& tx, absl::string_view person, int64_t before_day,
    const std::string& before_id, int limit) {
  Sql q(
      "SELECT booking_id, exam_day, data FROM course_results WHERE person = ");
  q.P(std::string(person));
  if (!before_id.empty()) {
    q.S(" AND (exam_day < ").P(before_day).S(" OR (exam_day = ");
    q.P(before_day).S(" AND booking_id < ").P(before_id).S("))");
  }
  q.S(" ORDER BY exam_day DESC, booking_id DESC LIMIT ").P(int64_t{limit});
  return MapRows<ResultRow>(tx.Query(q.text(), q.params()),
                            [](const Row& r) -> absl::StatusOr<ResultRow> {
                              ResultRow out;
                              absl::StatusOr<std::string> id = r.GetText(0);
                              absl::StatusOr<int64_t> day = r.GetInt(1);
                              if (!id.ok()) return id.status();
                              if (!day.ok()) return day.status();
                              out.booking_id = *id;
                              out.exam_day = *day;
                              if (absl::Status s = ParseBlob(r, 2, &out.result);
                                  !s.ok())
                                return s;
                              return out;
                            });
}

absl::StatusOr<std::vector<std::string>> EntitlementIdsOf(
    Transaction& tx, absl::string_view person) {
  return Ids(tx.Query(
      "SELECT id FROM course_entitlements WHERE person = $1 ORDER BY id",
      {std::string(person)}));
}

absl::StatusOr<std::vector<std::string>> BookingIdsOf(
    Transaction& tx, absl::string_view person) {
  return Ids(tx.Query(
      "SELECT id FROM course_bookings WHERE person = $1 ORDER BY create_us, id",
      {std::string(person)}));
}

absl::StatusOr<std::vector<std::string>> WaitlistIdsOf(
    Transaction& tx, absl::string_view person) {
  return Ids(tx.Query(
      "SELECT id FROM course_waitlist WHERE person = $1 ORDER BY create_us, id",
      {std::string(person)}));
}

// --- lifecycle ---

bool IsAnonymised(const BookingRow& row) {
  return row.booking.person().empty();
}

absl::Status AnonymiseBooking(Transaction& tx, BookingRow* row) {
  row->booking.clear_person();
  row->booking.clear_case_step();
  row->booking.clear_entitlement();
  row->booking.clear_waitlist_entry();
  row->entitlement_id.clear();
  ++row->version;
  // The person column takes a value no person name has and no other row
  // shares, so the one-active-booking index holds for anonymised rows too.
  return storage::ExpectOneRow(
      tx.Execute("UPDATE course_bookings SET person = $2, entitlement_id = "
                 "'', version = $3, data = $4 WHERE id = $1",
                 {row->id, absl::StrCat(kAnonymisedPrefix, row->id),
                  row->version, Blob(row->booking)}),
      "booking anonymisation");
}

absl::Status DeleteBooking(Transaction& tx, absl::string_view id) {
  return tx
      .Execute("DELETE FROM course_bookings WHERE id = $1", {std::string(id)})
      .status();
}

absl::Status DeleteWaitlist(Transaction& tx, absl::string_view id) {
  return tx
      .Execute("DELETE FROM course_waitlist WHERE id = $1", {std::string(id)})
      .status();
}

absl::Status DeleteEntitlement(Transaction& tx, absl::string_view id) {
  return tx
      .Execute("DELETE FROM course_entitlements WHERE id = $1",
               {std::string(id)})
      .status();
}

absl::StatusOr<int64_t> CountAttendance(Transaction& tx,
                                        absl::string_view booking_id) {
  absl::StatusOr<Rows> rows =
      tx.Query("SELECT COUNT(*) FROM course_attendance WHERE booking_id = $1",
               {std::string(booking_id)});
  if (!rows.ok()) return rows.status();
  return rows->front().GetInt(0);
}

absl::StatusOr<int64_t> DeleteAttendanceOf(Transaction& tx,
                                           absl::string_view booking_id) {
  return tx.Execute("DELETE FROM course_attendance WHERE booking_id = $1",
                    {std::string(booking_id)});
}

absl::StatusOr<std::optional<int64_t>> ResultCreateUs(
    Transaction& tx, absl::string_view booking_id) {
  absl::StatusOr<Rows> rows =
      tx.Query("SELECT create_us FROM course_results WHERE booking_id = $1",
               {std::string(booking_id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<int64_t>();
  absl::StatusOr<int64_t> us = rows->front().GetInt(0);
  if (!us.ok()) return us.status();
  return std::optional<int64_t>(*us);
}

absl::Status DeleteResult(Transaction& tx, absl::string_view booking_id) {
  return tx
      .Execute("DELETE FROM course_results WHERE booking_id = $1",
               {std::string(booking_id)})
      .status();
}

absl::StatusOr<std::optional<int64_t>> CourseFinishUs(Transaction& tx,
                                                      absl::string_view id) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT finish_us FROM courses WHERE id = $1", {std::string(id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty() || rows->front().IsNull(0)) {
    return std::optional<int64_t>();
  }
  absl::StatusOr<int64_t> us = rows->front().GetInt(0);
  if (!us.ok()) return us.status();
  return std::optional<int64_t>(*us);
}

absl::StatusOr<std::optional<int64_t>> EntitlementEndUs(Transaction& tx,
                                                        absl::string_view id) {
  absl::StatusOr<Rows> rows =
      tx.Query(absl::StrCat("SELECT ", kEntitlementEndSql,
                            " FROM course_entitlements WHERE id = $1"),
               {std::string(id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty() || rows->front().IsNull(0)) {
    return std::optional<int64_t>();
  }
  absl::StatusOr<int64_t> us = rows->front().GetInt(0);
  if (!us.ok()) return us.status();
  return std::optional<int64_t>(*us);
}

absl::Status DeleteMergesOf(Transaction& tx, absl::string_view person) {
  return tx
      .Execute(
          "DELETE FROM course_person_merges WHERE merged = $1 OR survivor = $1",
          {std::string(person)})
      .status();
}

}  // namespace lotse::courses
