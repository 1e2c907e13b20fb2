// The seat plumbing shared by bookings, the waitlist, the catalogue
// (capacity changes, CancelCourse), person merges and the hold sweeper: it
// loads the facts the seat rules (domain/seats.h) decide on and stores
// their decisions.
//
// Concurrency: every path that reads or changes a course's seat count or
// waitlist takes LockCourse(id) before reading the course, and the person
// lock ("courses.person/<person>") before reading the person's entitlements
// (units). Lock order is always course, then person, then the outbox and
// audit locks (taken by EnqueueEvent / AppendAudit).
#include "services/courses/domain/seats.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/api/names.h"
#include "common/audit/audit_log.h"
#include "services/courses/domain/dates.h"
#include "services/courses/service/internal.h"

namespace lotse::courses {

using ::lotse::storage::Transaction;

namespace {

absl::Status LockPerson(Transaction& tx, absl::string_view person) {
  return tx.LockNamed(absl::StrCat("courses.person/", person));
}

absl::Status NoEntitlement(absl::string_view why) {
  return Precondition("NO_ENTITLEMENT", why);
}

SeatCourseFacts SeatCourseOf(const CourseRow& course) {
  SeatCourseFacts facts;
  facts.kind = course.course.kind();
  facts.start_day =
      DayNumber(course.course.schedule().start_date()).value_or(0);
  facts.units = UnitsOf(course);
  return facts;
}

EntitlementFacts FactsOf(const EntitlementRow& row) {
  const v1::Entitlement& e = row.entitlement;
  EntitlementFacts facts;
  facts.id = row.id;
  facts.person = e.person();
  facts.obligation = e.kind() == v1::ENTITLEMENT_KIND_OBLIGATION;
  facts.course_kinds.assign(e.course_kinds().begin(), e.course_kinds().end());
  facts.valid_from = DayNumber(e.valid_from()).value_or(0);
  facts.valid_until = DayNumber(e.valid_until()).value_or(0);
  facts.units = e.units();
  facts.units_used = e.units_used();
  facts.revoked = row.revoked;
  facts.create_us = row.create_us;
  return facts;
}

// The person's entitlements the rules choose from (at most 500), and
// their facts in the same order. Takes the person lock first.
struct PersonEntitlements {
  std::vector<EntitlementRow> rows;
  std::vector<EntitlementFacts> facts;
};
absl::StatusOr<PersonEntitlements> LoadPersonEntitlements(
    Transaction& tx, const std::string& person) {
  if (absl::Status s = LockPerson(tx, person); !s.ok()) return s;
  absl::StatusOr<std::vector<EntitlementRow>> rows =
      ListEntitlementRows(tx, person, "", 0, "", 500);
  if (!rows.ok()) return rows.status();
  PersonEntitlements out;
  out.rows = *std::move(rows);
  for (const EntitlementRow& row : out.rows) out.facts.push_back(FactsOf(row));
  return out;
}

}  // namespace

// --- shared by the booking and waitlist handlers (internal.h) ---

absl::Status TakeUnits(Transaction& tx, EntitlementRow* e, int64_t units,
                       absl::Time now) {
  e->entitlement.set_units_used(e->entitlement.units_used() +
                                static_cast<int32_t>(units));
  *e->entitlement.mutable_update_time() = api::ToTimestamp(now);
  ++e->version;
  return WriteEntitlementUse(tx, *e);
}

absl::Status RequireBookingCaller(const agencies::LocalAgency& caller,
                                  const CourseRow& course) {
  static const std::set<std::string> kBookers = {"KOMMUNE", "JOBCENTER",
                                                 "AUSLAENDERBEHOERDE", "BAMF"};
  if (kBookers.count(caller.legal_domain) > 0) return absl::OkStatus();
  if (course.course.provider_agency() == caller.name()) return absl::OkStatus();
  return Denied("WRONG_LEGAL_DOMAIN",
                "only KOMMUNE, JOBCENTER, AUSLAENDERBEHOERDE, BAMF and the "
                "course's provider may book seats");
}

absl::Status RequireBookable(const CourseRow& course) {
  if (TakesBookings(course.course.state())) return absl::OkStatus();
  if (course.course.state() == v1::COURSE_STATE_CANCELLED) {
    return Precondition("COURSE_CANCELLED", "the course was cancelled");
  }
  return Precondition("COURSE_NOT_BOOKABLE",
                      "the course is finished; no seats can be booked");
}

absl::Status ActiveBookingExists(const BookingRow& b) {
  const std::string name = BookingName(b.course_id, b.id);
  return ErrorWithReason(absl::StatusCode::kAlreadyExists,
                         "ACTIVE_BOOKING_EXISTS",
                         "the person already has an active booking in this "
                         "course",
                         {{"booking", name}});
}

void ValidateCaseStep(absl::string_view step, const std::string& field,
                      FieldViolations* v) {
  if (step.empty()) return;
  api::ParseName(step, api::kCaseStepName, field, v);
}

std::string ParseEntitlementRef(absl::string_view name,
                                const std::string& field, FieldViolations* v) {
  if (name.empty()) return "";
  return ParseSimpleName(name, "entitlements", field, v);
}

bool ReadDecider::Allowed(const std::string& person, const ReadRight& right) {
  // An owned record needs no decision, and must not stand in for one: the
  // same person's other records may not be the caller's.
  if (right.owner) {
    return AuthorizeLanguageRead(service_, call_, person, /*owner=*/true,
                                 right.serves)
        .ok();
  }
  auto it = decided_.find(person);
  if (it != decided_.end()) return it->second;
  const bool ok =
      AuthorizeLanguageRead(service_, call_, person, false, right.serves).ok();
  decided_[person] = ok;
  return ok;
}

std::string ParseCourseParent(absl::string_view parent,
                              const std::string& field, FieldViolations* v) {
  if (parent == "courses/-") return "-";
  return ParseSimpleName(parent, "courses", field, v);
}

bool ParseKey(absl::string_view token, int64_t* a, int64_t* b,
              std::string* id) {
  std::vector<std::string> parts = absl::StrSplit(token, ' ');
  return parts.size() == 3 && absl::SimpleAtoi(parts[0], a) &&
         absl::SimpleAtoi(parts[1], b) && !(*id = parts[2]).empty();
}

// --- seat logic (internal.h) ---

void Bump(CourseRow* course, absl::Time now) {
  ++course->version;
  *course->course.mutable_update_time() = api::ToTimestamp(now);
}

int64_t UnitsOf(const CourseRow& course) {
  return course.course.schedule().total_units();
}

absl::Duration HoldOf(const CourseRow& course, absl::Duration default_hold) {
  if (!course.course.has_hold_duration()) return default_hold;
  return absl::Seconds(course.course.hold_duration().seconds()) +
         absl::Nanoseconds(course.course.hold_duration().nanos());
}

absl::StatusOr<EntitlementRow> PickEntitlement(Transaction& tx,
                                               const std::string& person,
                                               const CourseRow& course,
                                               const std::string& requested,
                                               int64_t today) {
  const SeatCourseFacts seat = SeatCourseOf(course);
  if (!requested.empty()) {
    if (absl::Status s = LockPerson(tx, person); !s.ok()) return s;
    absl::StatusOr<std::optional<EntitlementRow>> e =
        ReadEntitlement(tx, requested);
    if (!e.ok()) return e.status();
    if (!e->has_value()) {
      return NotFound("ENTITLEMENT", EntitlementName(requested));
    }
    if (!EntitlementUsable(FactsOf(**e), person, seat, today)) {
      return NoEntitlement(
          "the given entitlement is not the person's, or does not cover the "
          "course's kind on its start date with enough units");
    }
    return **e;
  }
  absl::StatusOr<PersonEntitlements> all = LoadPersonEntitlements(tx, person);
  if (!all.ok()) return all.status();
  std::optional<size_t> best = BestEntitlement(all->facts, person, seat, today);
  if (!best) {
    return NoEntitlement(
        "no active entitlement or obligation of the person covers the "
        "course's kind on its start date with enough units");
  }
  return all->rows[*best];
}

absl::Status ReleaseBooking(Transaction& tx, CourseRow* course, BookingRow* b,
                            v1::BookingState state,
                            v1::BookingCancelReason reason, absl::Time now) {
  if (!HoldsSeat(b->booking.state())) {
    return absl::InternalError("releasing a booking that holds no seat");
  }
  b->booking.set_state(state);
  if (state == v1::BOOKING_STATE_CANCELLED) {
    b->booking.set_cancel_reason(reason);
  }
  b->booking.clear_hold_expire_time();
  b->hold_expire_us = 0;
  *b->booking.mutable_update_time() = api::ToTimestamp(now);
  ++b->version;
  if (absl::Status s = WriteBooking(tx, *b); !s.ok()) return s;
  if (absl::Status s = LockPerson(tx, b->booking.person()); !s.ok()) return s;
  absl::StatusOr<std::optional<EntitlementRow>> e =
      ReadEntitlement(tx, b->entitlement_id);
  if (!e.ok()) return e.status();
  const SeatRelease release = ReleaseSeat(
      course->course.booked_seats(),
      e->has_value() ? (*e)->entitlement.units_used() : 0, b->units);
  course->course.set_booked_seats(release.booked_seats);
  Bump(course, now);
  if (e->has_value()) {
    EntitlementRow row = **e;
    row.entitlement.set_units_used(static_cast<int32_t>(release.units_used));
    *row.entitlement.mutable_update_time() = api::ToTimestamp(now);
    ++row.version;
    if (absl::Status s = WriteEntitlement(tx, row); !s.ok()) return s;
  }
  absl::StatusOr<v1::BookingContext> context =
      ContextFor(tx, *course, BookingName(b->course_id, b->id),
                 b->booking.person(), b->booking.booking_agency(),
                 b->booking.case_step(), b->booking.entitlement());
  if (!context.ok()) return context.status();
  if (state == v1::BOOKING_STATE_EXPIRED) {
    v1::BookingHoldExpired event;
    *event.mutable_context() = *context;
    return Enqueue(tx, event, b->booking.person());
  }
  v1::BookingCancelled event;
  *event.mutable_context() = *context;
  event.set_reason(reason);
  return Enqueue(tx, event, b->booking.person());
}

namespace {

// The facts of the waitlist's head `w` (DecideWaitlistHead) and the rows
// they came from. Takes the person lock unless the person already holds a
// seat in the course.
struct LoadedHead {
  WaitlistHeadFacts facts;
  std::optional<EntitlementRow> requested;
  std::vector<EntitlementRow> rows;
};
absl::StatusOr<LoadedHead> LoadWaitlistHead(Transaction& tx,
                                            const CourseRow& course,
                                            const WaitlistRow& w) {
  LoadedHead head;
  head.facts.person = w.entry.person();
  absl::StatusOr<std::optional<BookingRow>> active =
      ActiveBooking(tx, course.id, head.facts.person);
  if (!active.ok()) return active.status();
  head.facts.has_active_booking = active->has_value();
  if (head.facts.has_active_booking) return head;
  absl::string_view wanted = w.entry.entitlement();
  absl::ConsumePrefix(&wanted, "entitlements/");
  absl::StatusOr<PersonEntitlements> all =
      LoadPersonEntitlements(tx, head.facts.person);
  if (!all.ok()) return all.status();
  head.rows = std::move(all->rows);
  head.facts.entitlements = std::move(all->facts);
  if (!wanted.empty()) {
    absl::StatusOr<std::optional<EntitlementRow>> e =
        ReadEntitlement(tx, wanted);
    if (!e.ok()) return e.status();
    if (e->has_value()) {
      head.requested = **e;
      head.facts.requested = FactsOf(**e);
    }
  }
  return head;
}

// Takes a waitlist entry that can no longer be served off the list
// (REMOVED, WaitlistLeft).
absl::Status RemoveWaitlistHead(Transaction& tx, const CourseRow& course,
                                WaitlistRow* w, const std::string& entry_name) {
  w->entry.set_state(v1::WAITLIST_ENTRY_STATE_REMOVED);
  if (absl::Status s = WriteWaitlist(tx, *w); !s.ok()) return s;
  v1::WaitlistLeft event;
  event.set_waitlist_entry(entry_name);
  event.set_state(v1::WAITLIST_ENTRY_STATE_REMOVED);
  absl::StatusOr<v1::BookingContext> context = ContextFor(
      tx, course, "", w->entry.person(), w->entry.requesting_agency(),
      w->entry.case_step(), w->entry.entitlement());
  if (!context.ok()) return context.status();
  *event.mutable_context() = *context;
  return Enqueue(tx, event, w->entry.person());
}

// Gives a free seat of `course` to the waitlist entry `w` as a HELD booking
// paid by `entitlement` (WaitlistPromoted); returns the booking's name.
absl::StatusOr<std::string> PromoteWaitlistHead(
    Transaction& tx, CourseRow* course, WaitlistRow* w,
    EntitlementRow* entitlement, const std::string& entry_name, absl::Time now,
    absl::Duration default_hold) {
  const std::string person = w->entry.person();
  absl::StatusOr<std::string> id = api::NewId();
  if (!id.ok()) return id.status();
  BookingRow b;
  b.id = *id;
  b.course_id = course->id;
  b.entitlement_id = entitlement->id;
  b.units = UnitsOf(*course);
  b.create_us = ToMicros(now);
  const absl::Time expires = now + HoldOf(*course, default_hold);
  b.hold_expire_us = ToMicros(expires);
  b.booking.set_person(person);
  b.booking.set_entitlement(EntitlementName(entitlement->id));
  b.booking.set_case_step(w->entry.case_step());
  b.booking.set_booking_agency(w->entry.requesting_agency());
  b.booking.set_state(NewBookingState(/*confirmed_by_provider=*/false,
                                      /*course_running=*/false));
  *b.booking.mutable_hold_expire_time() = api::ToTimestamp(expires);
  b.booking.set_waitlist_entry(entry_name);
  *b.booking.mutable_create_time() = api::ToTimestamp(now);
  *b.booking.mutable_update_time() = api::ToTimestamp(now);
  if (absl::Status s = InsertBooking(tx, b); !s.ok()) return s;
  if (absl::Status s = TakeUnits(tx, entitlement, b.units, now); !s.ok()) {
    return s;
  }
  course->course.set_booked_seats(course->course.booked_seats() + 1);
  const std::string booking_name = BookingName(course->id, b.id);
  w->entry.set_state(v1::WAITLIST_ENTRY_STATE_PROMOTED);
  w->entry.set_promoted_booking(booking_name);
  if (absl::Status s = WriteWaitlist(tx, *w); !s.ok()) return s;
  v1::WaitlistPromoted event;
  event.set_waitlist_entry(entry_name);
  absl::StatusOr<v1::BookingContext> context =
      ContextFor(tx, *course, booking_name, person, b.booking.booking_agency(),
                 b.booking.case_step(), b.booking.entitlement());
  if (!context.ok()) return context.status();
  *event.mutable_context() = *context;
  *event.mutable_hold_expire_time() = api::ToTimestamp(expires);
  if (absl::Status s = Enqueue(tx, event, person); !s.ok()) return s;
  return booking_name;
}

}  // namespace

absl::Status FillFreeSeats(
    Transaction& tx, CourseRow* course, absl::Time now,
    absl::Duration default_hold,
    std::vector<std::pair<std::string, std::string>>* touched) {
  const int64_t today = DayOf(now);
  while (TakesBookings(course->course.state()) &&
         FreeSeats(course->course.capacity(), course->course.booked_seats()) >
             0) {
    absl::StatusOr<std::optional<WaitlistRow>> found =
        WaitlistHead(tx, course->id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) break;
    WaitlistRow w = **found;
    const std::string person = w.entry.person();
    const std::string entry_name = WaitlistName(course->id, w.id);
    touched->emplace_back(person, entry_name);
    absl::StatusOr<LoadedHead> head = LoadWaitlistHead(tx, *course, w);
    if (!head.ok()) return head.status();
    const WaitlistHeadDecision decision =
        DecideWaitlistHead(head->facts, SeatCourseOf(*course), today);
    // Either way the entry leaves the list.
    course->course.set_waitlist_length(
        std::max(0, course->course.waitlist_length() - 1));
    Bump(course, now);
    ++w.version;
    *w.entry.mutable_update_time() = api::ToTimestamp(now);
    if (!decision.promote) {
      if (absl::Status s = RemoveWaitlistHead(tx, *course, &w, entry_name);
          !s.ok()) {
        return s;
      }
      continue;
    }
    EntitlementRow& entitlement = decision.use_requested
                                      ? *head->requested
                                      : head->rows[decision.entitlement];
    absl::StatusOr<std::string> booking = PromoteWaitlistHead(
        tx, course, &w, &entitlement, entry_name, now, default_hold);
    if (!booking.ok()) return booking.status();
    touched->emplace_back(person, *booking);
  }
  return WriteCourse(tx, *course);
}

// --- the hold sweeper ---

absl::StatusOr<int> CoursesServiceImpl::SweepExpiredHolds() {
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  std::vector<std::string> ids;
  absl::Status listed = storage::RunInTransaction(
      db(),
      [&](Transaction& tx) -> absl::Status {
        absl::StatusOr<std::vector<std::string>> found =
            ExpiredHoldIds(tx, ToMicros(now), 500);
        if (!found.ok()) return found.status();
        ids = *std::move(found);
        return absl::OkStatus();
      },
      storage::TxMode::kReadOnly);
  if (!listed.ok()) return listed;
  int expired = 0;
  for (const std::string& id : ids) {
    bool did = false;
    absl::Status status = runtime_.Write([&](Transaction& tx) -> absl::Status {
      did = false;
      absl::StatusOr<std::optional<BookingRow>> first = ReadBooking(tx, id);
      if (!first.ok()) return first.status();
      if (!first->has_value()) return absl::OkStatus();
      const std::string course_id = (*first)->course_id;
      if (absl::Status s = LockCourse(tx, course_id); !s.ok()) return s;
      // Re-read under the lock: it may have been confirmed or cancelled.
      absl::StatusOr<std::optional<BookingRow>> found = ReadBooking(tx, id);
      if (!found.ok()) return found.status();
      BookingRow b = **found;
      if (b.booking.state() != v1::BOOKING_STATE_HELD ||
          b.hold_expire_us > ToMicros(now)) {
        return absl::OkStatus();
      }
      absl::StatusOr<std::optional<CourseRow>> course =
          ReadCourse(tx, course_id);
      if (!course.ok()) return course.status();
      if (!course->has_value()) return absl::OkStatus();
      CourseRow c = **course;
      if (absl::Status s =
              ReleaseBooking(tx, &c, &b, v1::BOOKING_STATE_EXPIRED,
                             v1::BOOKING_CANCEL_REASON_UNSPECIFIED, now);
          !s.ok()) {
        return s;
      }
      std::vector<std::pair<std::string, std::string>> touched = {
          {b.booking.person(), BookingName(course_id, b.id)}};
      if (absl::Status s =
              FillFreeSeats(tx, &c, now, options_.default_hold, &touched);
          !s.ok()) {
        return s;
      }
      for (const auto& [person, record] : touched) {
        audit::AuditRecord r;
        r.agency_id = "courses";
        r.legal_domain = server::kServiceDomain;
        r.actor = "hold-sweeper";
        r.purpose = "hold-expiry";
        r.operation = "courses/ExpireHold";
        r.resource = absl::StrCat(person, "/", record);
        r.data_categories = {"LANGUAGE"};
        if (absl::Status s = audit::AppendAudit(tx, r); !s.ok()) return s;
      }
      did = true;
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    if (did) ++expired;
  }
  return expired;
}

}  // namespace lotse::courses
