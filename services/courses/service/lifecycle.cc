// The courses service's share of the data lifecycle: erasing a person
// (EraseCoursesPerson, the EraseFn of lifecycle::ApplyPersonErased) and
// the retention purge tasks (CoursesPurgeTasks). See courses_service.h.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/lifecycle/holds.h"
#include "common/storage/rows.h"
#include "services/courses/domain/seats.h"
#include "services/courses/service/internal.h"

namespace lotse::courses {

using ::lotse::lifecycle::ErasureResult;
using ::lotse::lifecycle::PurgeBatch;
using ::lotse::lifecycle::PurgeTask;
using ::lotse::lifecycle::RetentionRule;
using ::lotse::lifecycle::RetentionRules;
using ::lotse::storage::Rows;
using ::lotse::storage::Transaction;

namespace {

constexpr char kPersonPrefix[] = "persons/";

// Kept records of one kind, as the erasure reports them.
class KeptCounter {
 public:
  KeptCounter(std::string kind, const RetentionRule* rule)
      : kind_(std::move(kind)), rule_(rule) {}

  bool keeps() const { return rule_ != nullptr && rule_->keep_on_erasure; }

  // One more kept record anchored at `anchor_us` (unknown: the anchor has
  // not happened yet, so the record is kept for now without an end).
  void Add(int64_t count, std::optional<int64_t> anchor_us) {
    if (count <= 0) return;
    count_ += count;
    const absl::Time until =
        anchor_us ? rule_->DueAt(absl::FromUnixMicros(*anchor_us))
                  : absl::InfiniteFuture();
    until_ = std::max(until_, until);
  }

  void AppendTo(ErasureResult* result) const {
    if (count_ == 0) return;
    result->kept.push_back({kind_, count_, until_});
  }

 private:
  std::string kind_;
  const RetentionRule* rule_;
  int64_t count_ = 0;
  absl::Time until_ = absl::InfinitePast();
};

// Takes a WAITING entry off its course's list (the course's waitlist
// length follows) and deletes it, or deletes an entry that left the list.
absl::Status EraseWaitlistEntry(Transaction& tx, const WaitlistRow& w,
                                absl::Time now) {
  if (w.entry.state() == v1::WAITLIST_ENTRY_STATE_WAITING) {
    if (absl::Status s = LockCourse(tx, w.course_id); !s.ok()) return s;
    absl::StatusOr<std::optional<CourseRow>> course =
        ReadCourse(tx, w.course_id);
    if (!course.ok()) return course.status();
    if (course->has_value()) {
      CourseRow c = **course;
      c.course.set_waitlist_length(std::max(0, c.course.waitlist_length() - 1));
      Bump(&c, now);
      if (absl::Status s = WriteCourseSeats(tx, c); !s.ok()) return s;
    }
  }
  return DeleteWaitlist(tx, w.id);
}

}  // namespace

absl::StatusOr<ErasureResult> EraseCoursesPerson(Transaction& tx,
                                                 const std::string& person_id,
                                                 const RetentionRules& rules,
                                                 absl::Time now) {
  const std::string person = absl::StrCat(kPersonPrefix, person_id);
  ErasureResult result;
  KeptCounter kept_bookings("booking", rules.Find("booking"));
  KeptCounter kept_waitlist("waitlist-entry", rules.Find("waitlist-entry"));
  KeptCounter kept_attendance("attendance", rules.Find("attendance"));
  KeptCounter kept_results("course-result", rules.Find("course-result"));
  KeptCounter kept_entitlements("entitlement", rules.Find("entitlement"));

  // Bookings, with their attendance and results.
  absl::StatusOr<std::vector<std::string>> bookings = BookingIdsOf(tx, person);
  if (!bookings.ok()) return bookings.status();
  for (const std::string& id : *bookings) {
    absl::StatusOr<std::optional<BookingRow>> found = ReadBooking(tx, id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) continue;
    BookingRow b = **found;
    absl::StatusOr<std::optional<int64_t>> finish =
        CourseFinishUs(tx, b.course_id);
    if (!finish.ok()) return finish.status();

    absl::StatusOr<int64_t> attendance = CountAttendance(tx, id);
    if (!attendance.ok()) return attendance.status();
    bool records_stay = false;
    if (*attendance > 0) {
      if (kept_attendance.keeps()) {
        kept_attendance.Add(*attendance, *finish);
        records_stay = true;
      } else {
        absl::StatusOr<int64_t> gone = DeleteAttendanceOf(tx, id);
        if (!gone.ok()) return gone.status();
        result.erased += *gone;
      }
    }
    absl::StatusOr<std::optional<int64_t>> result_us = ResultCreateUs(tx, id);
    if (!result_us.ok()) return result_us.status();
    if (result_us->has_value()) {
      if (kept_results.keeps()) {
        kept_results.Add(1, **result_us);
        records_stay = true;
      } else {
        if (absl::Status s = DeleteResult(tx, id); !s.ok()) return s;
        ++result.erased;
      }
    }

    if (kept_bookings.keeps()) {
      const bool ended = b.booking.state() == v1::BOOKING_STATE_CANCELLED ||
                         b.booking.state() == v1::BOOKING_STATE_EXPIRED;
      std::optional<int64_t> end_us = *finish;
      if (ended) end_us = ToMicros(api::FromTimestamp(b.booking.update_time()));
      kept_bookings.Add(1, end_us);
      continue;
    }
    // The course's seat count and the kept records count this row: it
    // stays without the person. Otherwise it goes.
    if (absl::Status s = LockCourse(tx, b.course_id); !s.ok()) return s;
    if (records_stay || HoldsSeat(b.booking.state()) ||
        b.booking.state() == v1::BOOKING_STATE_COMPLETED) {
      if (absl::Status s = AnonymiseBooking(tx, &b); !s.ok()) return s;
    } else {
      if (absl::Status s = DeleteBooking(tx, id); !s.ok()) return s;
    }
    ++result.erased;
  }

  // Waitlist entries.
  absl::StatusOr<std::vector<std::string>> entries = WaitlistIdsOf(tx, person);
  if (!entries.ok()) return entries.status();
  for (const std::string& id : *entries) {
    absl::StatusOr<std::optional<WaitlistRow>> found = ReadWaitlist(tx, id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) continue;
    const WaitlistRow& w = **found;
    if (kept_waitlist.keeps()) {
      std::optional<int64_t> end_us;
      if (w.entry.state() != v1::WAITLIST_ENTRY_STATE_WAITING) {
        end_us = ToMicros(api::FromTimestamp(w.entry.update_time()));
      }
      kept_waitlist.Add(1, end_us);
      continue;
    }
    if (absl::Status s = EraseWaitlistEntry(tx, w, now); !s.ok()) return s;
    ++result.erased;
  }

  // Entitlements.
  absl::StatusOr<std::vector<std::string>> ents = EntitlementIdsOf(tx, person);
  if (!ents.ok()) return ents.status();
  for (const std::string& id : *ents) {
    if (kept_entitlements.keeps()) {
      absl::StatusOr<std::optional<int64_t>> end = EntitlementEndUs(tx, id);
      if (!end.ok()) return end.status();
      kept_entitlements.Add(1, *end);
      continue;
    }
    if (absl::Status s = DeleteEntitlement(tx, id); !s.ok()) return s;
    ++result.erased;
  }

  if (absl::Status s = DeleteMergesOf(tx, person); !s.ok()) return s;
  for (const KeptCounter* k : {&kept_bookings, &kept_waitlist, &kept_attendance,
                               &kept_results, &kept_entitlements}) {
    k->AppendTo(&result);
  }
  return result;
}

namespace {

// One kind's purge: the records due are those `from_where` selects (a FROM
// and WHERE clause whose anchor test compares with $2, the cutoff), with
// `id_sql` and `person_sql` ("persons/x", or an anonymised marker) as the
// columns; `purge` removes one and returns how many records went.
struct PurgeQuery {
  std::string kind;
  std::string id_sql;
  std::string person_sql;
  std::string from_where;
  std::function<absl::StatusOr<int64_t>(Transaction&, const std::string& id)>
      purge;
};

absl::StatusOr<PurgeBatch> RunPurge(const PurgeQuery& q, Transaction& tx,
                                    absl::Time cutoff, absl::Time now,
                                    int limit) {
  // The hold condition binds $1 (now).
  const std::string not_held = lifecycle::NotHeldCondition(
      absl::StrCat("substr(", q.person_sql, ", 9)"));
  const std::vector<storage::Value> params = {ToMicros(now), ToMicros(cutoff),
                                              static_cast<int64_t>(limit)};
  absl::StatusOr<Rows> rows =
      tx.Query(absl::StrCat("SELECT ", q.id_sql, ", ", q.person_sql, " ",
                            q.from_where, " AND $1 >= 0 AND (", not_held,
                            ") ORDER BY ", q.id_sql, " LIMIT $3"),
               params);
  if (!rows.ok()) return rows.status();
  PurgeBatch batch;
  for (const storage::Row& r : *rows) {
    absl::StatusOr<std::string> id = r.GetText(0);
    absl::StatusOr<std::string> person = r.GetText(1);
    if (!id.ok()) return id.status();
    if (!person.ok()) return person.status();
    absl::StatusOr<int64_t> purged = q.purge(tx, *id);
    if (!purged.ok()) return purged.status();
    batch.purged += *purged;
    absl::string_view p = *person;
    if (absl::ConsumePrefix(&p, kPersonPrefix) &&
        std::find(batch.persons.begin(), batch.persons.end(), p) ==
            batch.persons.end()) {
      batch.persons.emplace_back(p);
    }
  }
  batch.more = static_cast<int>(rows->size()) >= limit;
  if (!batch.more) {
    absl::StatusOr<Rows> held =
        tx.Query(absl::StrCat("SELECT COUNT(*) ", q.from_where,
                              " AND $1 >= 0 AND NOT (", not_held, ")"),
                 {ToMicros(now), ToMicros(cutoff)});
    if (!held.ok()) return held.status();
    absl::StatusOr<int64_t> n = held->front().GetInt(0);
    if (!n.ok()) return n.status();
    batch.held = *n;
  }
  return batch;
}

PurgeTask TaskOf(PurgeQuery q) {
  PurgeTask task;
  task.kind = q.kind;
  task.run = [q = std::move(q)](Transaction& tx, absl::Time cutoff,
                                absl::Time now, int limit) {
    return RunPurge(q, tx, cutoff, now, limit);
  };
  return task;
}

}  // namespace

std::vector<PurgeTask> CoursesPurgeTasks() {
  std::vector<PurgeTask> tasks;
  // A booking ends when it is cancelled or expires, or when its course
  // finishes. One whose attendance or result is still kept stays as their
  // anchor, anonymised, like an erased person's.
  tasks.push_back(TaskOf(
      {"booking", "b.id", "b.person",
       absl::StrCat("FROM course_bookings b JOIN courses c ON c.id = "
                    "b.course_id WHERE b.person LIKE '",
                    kPersonPrefix,
                    "%' AND COALESCE(b.end_us, CASE WHEN c.state = 3 THEN "
                    "c.finish_us END) <= $2"),
       [](Transaction& tx, const std::string& id) -> absl::StatusOr<int64_t> {
         absl::StatusOr<std::optional<BookingRow>> b = ReadBooking(tx, id);
         if (!b.ok()) return b.status();
         if (!b->has_value()) return 0;
         absl::StatusOr<int64_t> attendance = CountAttendance(tx, id);
         if (!attendance.ok()) return attendance.status();
         absl::StatusOr<std::optional<int64_t>> result = ResultCreateUs(tx, id);
         if (!result.ok()) return result.status();
         if (*attendance > 0 || result->has_value()) {
           BookingRow row = **b;
           if (absl::Status s = AnonymiseBooking(tx, &row); !s.ok()) return s;
         } else if (absl::Status s = DeleteBooking(tx, id); !s.ok()) {
           return s;
         }
         return 1;
       }}));
  tasks.push_back(TaskOf(
      {"waitlist-entry", "w.id", "w.person",
       "FROM course_waitlist w WHERE w.end_us <= $2",
       [](Transaction& tx, const std::string& id) -> absl::StatusOr<int64_t> {
         if (absl::Status s = DeleteWaitlist(tx, id); !s.ok()) return s;
         return 1;
       }}));
  // Attendance is dated by its course's finish and purged per booking.
  tasks.push_back(TaskOf(
      {"attendance", "b.id", "b.person",
       "FROM course_bookings b JOIN courses c ON c.id = b.course_id WHERE "
       "c.state = 3 AND c.finish_us <= $2 AND EXISTS (SELECT 1 FROM "
       "course_attendance a WHERE a.booking_id = b.id)",
       [](Transaction& tx, const std::string& id) -> absl::StatusOr<int64_t> {
         return DeleteAttendanceOf(tx, id);
       }}));
  tasks.push_back(TaskOf(
      {"course-result", "r.booking_id", "r.person",
       "FROM course_results r WHERE r.create_us <= $2",
       [](Transaction& tx, const std::string& id) -> absl::StatusOr<int64_t> {
         if (absl::Status s = DeleteResult(tx, id); !s.ok()) return s;
         return 1;
       }}));
  tasks.push_back(TaskOf(
      {"entitlement", "e.id", "e.person",
       absl::StrCat("FROM course_entitlements e WHERE ", kEntitlementEndSql,
                    " <= $2"),
       [](Transaction& tx, const std::string& id) -> absl::StatusOr<int64_t> {
         if (absl::Status s = DeleteEntitlement(tx, id); !s.ok()) return s;
         return 1;
       }}));
  return tasks;
}

}  // namespace lotse::courses
