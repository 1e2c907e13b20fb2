// Tables of the courses service (see migrations.cc): the local agency
// registry fed by identity's events, person merges, courses, entitlements,
// bookings, waitlist entries, attendance and results.
//
// Each record is kept as its protobuf message plus the columns it is
// searched, constrained and counted by; Write* functions derive the columns
// from the record, so both always agree. Callers hold the locks (see
// LockCourse) and compute versions; the store only reads and writes.
#ifndef LOTSE_SERVICES_COURSES_STORE_COURSE_STORE_H_
#define LOTSE_SERVICES_COURSES_STORE_COURSE_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/agencies/registry.h"
#include "common/geo/geo.h"
#include "common/storage/database.h"
#include "lotse/courses/v1/booking.pb.h"
#include "lotse/courses/v1/course.pb.h"
#include "lotse/courses/v1/entitlement.pb.h"

namespace lotse::courses {

// --- Agencies (from identity's events) ---
// The local agency registry is common/agencies (table local_agencies).
using agencies::FindAgencyByCertificate;
using agencies::UpsertAgency;

// --- Person merges (identity's PersonMerged) ---
absl::Status RecordMerge(storage::Transaction& tx, absl::string_view merged,
                         absl::string_view survivor);
// The survivor of `person` ("persons/x") if it was merged, else `person`.
absl::StatusOr<std::string> ResolveMerged(storage::Transaction& tx,
                                          const std::string& person);

// --- Courses ---
struct CourseRow {
  std::string id;
  v1::Course course;  // name, provider, booked/free/waitlist, state: current
  int64_t version = 1;
  std::optional<geo::GeoPoint> position;
};
// Serialises all writers of one course (seat counts, waitlist order) until
// the transaction ends: PostgreSQL runs READ COMMITTED, so every
// read-modify-write of a course and its bookings takes this first.
absl::Status LockCourse(storage::Transaction& tx, absl::string_view id);
absl::Status InsertCourse(storage::Transaction& tx, const CourseRow& row);
absl::Status WriteCourse(storage::Transaction& tx, const CourseRow& row);
// Writes a course whose seat counts (booked, waitlist length), version and
// record changed and nothing else: the caller guarantees that every other
// column WriteCourse sets is unchanged. SQLite then rewrites only the
// indexes that hold the counts (the search indexes), not the ones by start,
// provider and municipality.
absl::Status WriteCourseSeats(storage::Transaction& tx, const CourseRow& row);
absl::StatusOr<std::optional<CourseRow>> ReadCourse(storage::Transaction& tx,
                                                    absl::string_view id);

struct CourseListFilter {
  std::string provider;           // agency id; empty = any
  std::vector<int> states;        // empty = any
  std::string municipality_code;  // empty = any
};
// Ordered by (start_day, id), strictly after (after_day, after_id) when
// after_id is set.
absl::StatusOr<std::vector<CourseRow>> ListCourseRows(
    storage::Transaction& tx, const CourseListFilter& filter, int64_t after_day,
    const std::string& after_id, int limit);

struct CourseSearch {
  std::vector<int> kinds;  // empty = any
  int target_level = 0;    // 0 = any
  std::string municipality_code;
  std::optional<geo::GeoBox> box;  // only courses with a position inside
  int64_t start_min = 0;
  std::optional<int64_t> start_max;
  std::vector<int> day_periods;  // empty = any
  // (The weekday subset filter is applied by the caller on the rows.)
  bool childcare_required = false;
  bool include_full = false;
};
// A course found by SearchCourseCandidates: its sort and filter columns.
struct CourseCandidate {
  std::string id;
  int64_t start_day = 0;
  std::optional<geo::GeoPoint> position;
  int booked = 0;
  int capacity = 0;
  int64_t weekdays = 0;  // bit d set for lotse.type.v1.DayOfWeek d
};
// PLANNED or RUNNING courses matching `q` except the exact distance and
// the weekday subset, ordered by (start_day, id), strictly after
// (after_day, after_id) when after_id is set. Reads only the covering
// search indexes (or the municipality index), never the course records.
absl::StatusOr<std::vector<CourseCandidate>> SearchCourseCandidates(
    storage::Transaction& tx, const CourseSearch& q, int64_t after_day,
    const std::string& after_id, int limit);
// The courses with these ids (in no particular order; unknown ids are
// left out).
absl::StatusOr<std::vector<CourseRow>> ReadCourses(
    storage::Transaction& tx, const std::vector<std::string>& ids);

// --- Entitlements ---
struct EntitlementRow {
  std::string id;
  v1::Entitlement entitlement;  // state not stored: computed at reading
  int64_t version = 1;
  int64_t create_us = 0;
  bool revoked = false;
};
absl::Status InsertEntitlement(storage::Transaction& tx,
                               const EntitlementRow& row);
absl::Status WriteEntitlement(storage::Transaction& tx,
                              const EntitlementRow& row);
// Writes an entitlement whose used units, version and record changed and
// nothing else (the caller guarantees it), leaving its indexes by person
// and issuer alone.
absl::Status WriteEntitlementUse(storage::Transaction& tx,
                                 const EntitlementRow& row);
absl::StatusOr<std::optional<EntitlementRow>> ReadEntitlement(
    storage::Transaction& tx, absl::string_view id);
// Newest first ((create_us, id) descending), strictly before the key when
// before_id is set. By person ("persons/x") or issuer (agency id).
absl::StatusOr<std::vector<EntitlementRow>> ListEntitlementRows(
    storage::Transaction& tx, const std::string& person,
    const std::string& issuer, int64_t before_us, const std::string& before_id,
    int limit);

// --- Bookings ---
struct BookingRow {
  std::string id;
  std::string course_id;
  std::string entitlement_id;
  v1::Booking booking;
  int64_t units = 0;  // units taken from the entitlement
  int64_t version = 1;
  int64_t create_us = 0;
  int64_t hold_expire_us = 0;  // 0 unless HELD
};
absl::Status InsertBooking(storage::Transaction& tx, const BookingRow& row);
absl::Status WriteBooking(storage::Transaction& tx, const BookingRow& row);
absl::StatusOr<std::optional<BookingRow>> ReadBooking(storage::Transaction& tx,
                                                      absl::string_view id);
// The HELD, CONFIRMED or ATTENDING booking of `person` in the course.
absl::StatusOr<std::optional<BookingRow>> ActiveBooking(
    storage::Transaction& tx, absl::string_view course_id,
    absl::string_view person);
struct BookingFilter {
  std::string course_id;  // empty = any
  std::string person;     // empty = any
  std::string agency;     // booking agency id; empty = any
  std::vector<int> states;
};
// Oldest first ((create_us, id)), strictly after the key when after_id set.
absl::StatusOr<std::vector<BookingRow>> ListBookingRows(
    storage::Transaction& tx, const BookingFilter& filter, int64_t after_us,
    const std::string& after_id, int limit);
// Ids of HELD bookings whose hold ended at or before `now_us`.
absl::StatusOr<std::vector<std::string>> ExpiredHoldIds(
    storage::Transaction& tx, int64_t now_us, int limit);
// True when `agency` provides a course `person` has a booking in, or issued
// an entitlement of `person` (the relation "serves the person").
absl::StatusOr<bool> AgencyServesPerson(storage::Transaction& tx,
                                        absl::string_view agency,
                                        absl::string_view person);

// --- Waitlist ---
struct WaitlistRow {
  std::string id;
  std::string course_id;
  v1::WaitlistEntry entry;  // position not stored: computed at reading
  int64_t seq = 0;
  int64_t version = 1;
  int64_t create_us = 0;
};
absl::Status InsertWaitlist(storage::Transaction& tx, const WaitlistRow& row);
absl::Status WriteWaitlist(storage::Transaction& tx, const WaitlistRow& row);
absl::StatusOr<std::optional<WaitlistRow>> ReadWaitlist(
    storage::Transaction& tx, absl::string_view id);
absl::StatusOr<std::optional<WaitlistRow>> WaitingEntry(
    storage::Transaction& tx, absl::string_view course_id,
    absl::string_view person);
// The next entry to promote: obligations first, then by arrival.
absl::StatusOr<std::optional<WaitlistRow>> WaitlistHead(
    storage::Transaction& tx, absl::string_view course_id);
// 1-based position of a WAITING entry.
absl::StatusOr<int> WaitlistPosition(storage::Transaction& tx,
                                     const WaitlistRow& row);
absl::StatusOr<int64_t> NextWaitlistSeq(storage::Transaction& tx,
                                        absl::string_view course_id);
// Of a course in waitlist order ((priority, seq) after the key), or of a
// person by arrival ((create_us, id) after the key); key = (a, b, id).
absl::StatusOr<std::vector<WaitlistRow>> ListWaitlistRows(
    storage::Transaction& tx, const std::string& course_id,
    const std::string& person, const std::vector<int>& states, int64_t after_a,
    int64_t after_b, const std::string& after_id, int limit);

// --- Attendance and results ---
// False (nothing written) when the booking already has a record that day.
absl::StatusOr<bool> InsertAttendance(storage::Transaction& tx,
                                      absl::string_view booking_id, int64_t day,
                                      const v1::AttendanceRecord& record);
absl::StatusOr<std::vector<v1::AttendanceRecord>> ListAttendance(
    storage::Transaction& tx, absl::string_view booking_id, int64_t after_day,
    int limit);
struct AttendanceTotals {
  int64_t units = 0;
  int64_t unexcused_days = 0;
};
absl::StatusOr<AttendanceTotals> AttendanceTotalsOf(
    storage::Transaction& tx, absl::string_view booking_id);

// False when the booking already has a result.
absl::StatusOr<bool> InsertResult(storage::Transaction& tx,
                                  absl::string_view booking_id,
                                  int64_t exam_day, int64_t create_us,
                                  const v1::CourseResult& result);
absl::StatusOr<std::optional<v1::CourseResult>> ReadResult(
    storage::Transaction& tx, absl::string_view booking_id);
absl::Status WriteResultPerson(storage::Transaction& tx,
                               absl::string_view booking_id,
                               const v1::CourseResult& result);
// Newest exam first ((exam_day, booking_id) descending) before the key.
struct ResultRow {
  std::string booking_id;
  int64_t exam_day = 0;
  v1::CourseResult result;
};
absl::StatusOr<std::vector<ResultRow>> ListResultRows(
    storage::Transaction& tx, absl::string_view person, int64_t before_day,
    const std::string& before_id, int limit);

// Every record of `person` ("persons/x"), for merges.
absl::StatusOr<std::vector<std::string>> EntitlementIdsOf(
    storage::Transaction& tx, absl::string_view person);
absl::StatusOr<std::vector<std::string>> BookingIdsOf(storage::Transaction& tx,
                                                      absl::string_view person);
absl::StatusOr<std::vector<std::string>> WaitlistIdsOf(
    storage::Transaction& tx, absl::string_view person);

// --- Lifecycle (erasure and retention purge) ---
//
// Anchor columns (migration courses.0004_lifecycle) that the purge tasks
// date records by; the Write* functions above keep them: courses.finish_us
// (when the course became FINISHED), course_bookings.end_us (when it was
// CANCELLED or EXPIRED), course_waitlist.end_us (when it left WAITING),
// course_entitlements.revoke_us (when it was revoked). Each is the
// record's update time at that change, NULL while the record has not
// ended, and NULL for records that ended before the column existed (their
// time is not known: they are never due, see migrations.cc).

// The person column of an anonymised booking starts with this.
inline constexpr char kAnonymisedPrefix[] = "erased:";
// SQL of an entitlement's END anchor in microseconds (revoked: revoke_us;
// else the end of its valid_until day), over course_entitlements' columns.
inline constexpr char kEntitlementEndSql[] =
    "(CASE WHEN revoked <> 0 THEN revoke_us ELSE (valid_until + 1) * "
    "86400000000 END)";

// Whether a booking was anonymised (its person erased).
bool IsAnonymised(const BookingRow& row);
// Removes the person from a booking and everything that leads to them
// (case step, entitlement, waitlist entry), keeping its course, state,
// booking agency and units: the row still counts for the course's seats
// and stays the anchor of kept attendance and results. Updates `row`.
absl::Status AnonymiseBooking(storage::Transaction& tx, BookingRow* row);
absl::Status DeleteBooking(storage::Transaction& tx, absl::string_view id);
absl::Status DeleteWaitlist(storage::Transaction& tx, absl::string_view id);
absl::Status DeleteEntitlement(storage::Transaction& tx, absl::string_view id);
absl::StatusOr<int64_t> CountAttendance(storage::Transaction& tx,
                                        absl::string_view booking_id);
// Returns how many attendance records were deleted.
absl::StatusOr<int64_t> DeleteAttendanceOf(storage::Transaction& tx,
                                           absl::string_view booking_id);
// The create time of the booking's result, if it has one.
absl::StatusOr<std::optional<int64_t>> ResultCreateUs(
    storage::Transaction& tx, absl::string_view booking_id);
absl::Status DeleteResult(storage::Transaction& tx,
                          absl::string_view booking_id);
// When the course finished, if it did (and the time is known).
absl::StatusOr<std::optional<int64_t>> CourseFinishUs(storage::Transaction& tx,
                                                      absl::string_view id);
// The entitlement's END anchor (kEntitlementEndSql), if known.
absl::StatusOr<std::optional<int64_t>> EntitlementEndUs(
    storage::Transaction& tx, absl::string_view id);
// Forgets the merges `person` ("persons/x") took part in.
absl::Status DeleteMergesOf(storage::Transaction& tx, absl::string_view person);

}  // namespace lotse::courses

#endif  // LOTSE_SERVICES_COURSES_STORE_COURSE_STORE_H_
