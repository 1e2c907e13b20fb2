// Seats: CreateBooking, GetBooking, ListBookings, ConfirmBooking,
// CancelBooking; the waitlist: JoinWaitlist, GetWaitlistEntry,
// ListWaitlistEntries, LeaveWaitlist; the hold sweeper; and the seat logic
// they share (entitlement choice, releasing seats, waitlist promotion).
//
// Concurrency: every path that reads or changes a course's seat count or
// waitlist takes LockCourse(id) before reading the course, and the person
// lock ("courses.person/<person>") before reading the person's entitlements
// (units). Lock order is always course, then person, then the outbox and
// audit locks (taken by EnqueueEvent / AppendAudit).
#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/audit/audit_log.h"
#include "common/server/log.h"
#include "services/courses/domain/dates.h"
#include "services/courses/service/internal.h"

namespace lotse::courses {

using ::lotse::storage::Transaction;

namespace {

absl::Status LockPerson(Transaction& tx, absl::string_view person) {
  return tx.LockNamed(absl::StrCat("courses.person/", person));
}

bool IsActive(v1::BookingState s) {
  return s == v1::BOOKING_STATE_HELD || s == v1::BOOKING_STATE_CONFIRMED ||
         s == v1::BOOKING_STATE_ATTENDING;
}

bool Covers(const v1::Entitlement& e, int kind) {
  return std::find(e.course_kinds().begin(), e.course_kinds().end(), kind) !=
         e.course_kinds().end();
}

absl::Status NoEntitlement(absl::string_view why) {
  return Precondition("NO_ENTITLEMENT", why);
}

absl::Status TakeUnits(Transaction& tx, EntitlementRow* e, int64_t units,
                       absl::Time now) {
  e->entitlement.set_units_used(e->entitlement.units_used() +
                                static_cast<int32_t>(units));
  *e->entitlement.mutable_update_time() = api::ToTimestamp(now);
  ++e->version;
  return WriteEntitlement(tx, *e);
}

// Callers allowed to book and join waitlists: case managers, Jobcenter,
// immigration office, BAMF, and the course's own provider.
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
  switch (course.course.state()) {
    case v1::COURSE_STATE_PLANNED:
    case v1::COURSE_STATE_RUNNING:
      return absl::OkStatus();
    case v1::COURSE_STATE_CANCELLED:
      return Precondition("COURSE_CANCELLED", "the course was cancelled");
    default:
      return Precondition("COURSE_NOT_BOOKABLE",
                          "the course is finished; no seats can be booked");
  }
}

absl::Status ActiveBookingExists(const BookingRow& b) {
  const std::string name = BookingName(b.course_id, b.id);
  return ErrorWithReason(absl::StatusCode::kAlreadyExists,
                         "ACTIVE_BOOKING_EXISTS",
                         "the person already has an active booking in this "
                         "course",
                         {{"booking", name}});
}

// An optional step of a case, named as the cases service issued it.
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

// Whether `caller` owns a booking's LANGUAGE data (booking agency, course
// provider, issuer of the entitlement used) and whether it serves the
// person.
struct ReadRight {
  bool owner = false;
  bool serves = false;
};

absl::StatusOr<ReadRight> RightToBooking(Transaction& tx,
                                         const agencies::LocalAgency& caller,
                                         const BookingRow& b,
                                         const CourseRow* course) {
  ReadRight right;
  if (b.booking.booking_agency() == caller.name()) right.owner = true;
  if (!right.owner && course != nullptr &&
      course->course.provider_agency() == caller.name()) {
    right.owner = true;
  }
  if (!right.owner) {
    absl::StatusOr<std::optional<EntitlementRow>> e =
        ReadEntitlement(tx, b.entitlement_id);
    if (!e.ok()) return e.status();
    if (e->has_value() && (*e)->entitlement.issuing_agency() == caller.name()) {
      right.owner = true;
    }
  }
  if (!right.owner) {
    absl::StatusOr<bool> serves =
        AgencyServesPerson(tx, caller.id, b.booking.person());
    if (!serves.ok()) return serves.status();
    right.serves = *serves;
  }
  return right;
}

// Decides LANGUAGE reads of several persons for one list call, asking
// identity at most once per person.
class ReadDecider {
 public:
  ReadDecider(CoursesServiceImpl& service, const server::RequestContext& rc,
              const agencies::LocalAgency& caller)
      : service_(service), rc_(rc), caller_(caller) {}
  bool Allowed(const std::string& person, const ReadRight& right) {
    if (right.owner) return true;
    auto it = decided_.find(person);
    if (it != decided_.end()) return it->second;
    const bool ok = AuthorizeLanguageRead(service_, rc_, caller_, person, false,
                                          right.serves)
                        .ok();
    decided_[person] = ok;
    return ok;
  }

 private:
  CoursesServiceImpl& service_;
  const server::RequestContext& rc_;
  const agencies::LocalAgency& caller_;
  std::map<std::string, bool> decided_;
};

// Parses "courses/{id}" or "courses/-" (returns "-").
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

}  // namespace

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
  if (absl::Status s = LockPerson(tx, person); !s.ok()) return s;
  const int64_t start =
      DayNumber(course.course.schedule().start_date()).value_or(0);
  const int64_t units = UnitsOf(course);
  auto usable = [&](const EntitlementRow& e) {
    const v1::Entitlement& p = e.entitlement;
    const int64_t from = DayNumber(p.valid_from()).value_or(0);
    const int64_t until = DayNumber(p.valid_until()).value_or(0);
    return !e.revoked && p.person() == person &&
           Covers(p, course.course.kind()) && until >= today && from <= start &&
           start <= until && p.units() - p.units_used() >= units;
  };
  if (!requested.empty()) {
    absl::StatusOr<std::optional<EntitlementRow>> e =
        ReadEntitlement(tx, requested);
    if (!e.ok()) return e.status();
    if (!e->has_value()) {
      return NotFound("ENTITLEMENT", EntitlementName(requested));
    }
    if (!usable(**e)) {
      return NoEntitlement(
          "the given entitlement is not the person's, or does not cover the "
          "course's kind on its start date with enough units");
    }
    return **e;
  }
  absl::StatusOr<std::vector<EntitlementRow>> rows =
      ListEntitlementRows(tx, person, "", 0, "", 500);
  if (!rows.ok()) return rows.status();
  const EntitlementRow* best = nullptr;
  auto rank = [](const EntitlementRow& e) {
    return std::make_tuple(
        e.entitlement.kind() == v1::ENTITLEMENT_KIND_OBLIGATION ? 0 : 1,
        DayNumber(e.entitlement.valid_until()).value_or(0), e.create_us, e.id);
  };
  for (const EntitlementRow& e : *rows) {
    if (!usable(e)) continue;
    if (best == nullptr || rank(e) < rank(*best)) best = &e;
  }
  if (best == nullptr) {
    return NoEntitlement(
        "no active entitlement or obligation of the person covers the "
        "course's kind on its start date with enough units");
  }
  return *best;
}

absl::Status ReleaseBooking(Transaction& tx, CourseRow* course, BookingRow* b,
                            v1::BookingState state,
                            v1::BookingCancelReason reason, absl::Time now) {
  if (!IsActive(b->booking.state())) {
    return absl::InternalError("releasing a booking that holds no seat");
  }
  b->booking.set_state(state);
  if (state == v1::BOOKING_STATE_CANCELLED)
    b->booking.set_cancel_reason(reason);
  b->booking.clear_hold_expire_time();
  b->hold_expire_us = 0;
  *b->booking.mutable_update_time() = api::ToTimestamp(now);
  ++b->version;
  if (absl::Status s = WriteBooking(tx, *b); !s.ok()) return s;
  course->course.set_booked_seats(
      std::max(0, course->course.booked_seats() - 1));
  Bump(course, now);
  if (absl::Status s = LockPerson(tx, b->booking.person()); !s.ok()) return s;
  absl::StatusOr<std::optional<EntitlementRow>> e =
      ReadEntitlement(tx, b->entitlement_id);
  if (!e.ok()) return e.status();
  if (e->has_value()) {
    EntitlementRow row = **e;
    row.entitlement.set_units_used(
        std::max<int64_t>(0, row.entitlement.units_used() - b->units));
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

absl::Status FillFreeSeats(
    Transaction& tx, CourseRow* course, absl::Time now,
    absl::Duration default_hold,
    std::vector<std::pair<std::string, std::string>>* touched) {
  const int64_t today = DayOf(now);
  while ((course->course.state() == v1::COURSE_STATE_PLANNED ||
          course->course.state() == v1::COURSE_STATE_RUNNING) &&
         course->course.booked_seats() < course->course.capacity()) {
    absl::StatusOr<std::optional<WaitlistRow>> head =
        WaitlistHead(tx, course->id);
    if (!head.ok()) return head.status();
    if (!head->has_value()) break;
    WaitlistRow w = **head;
    const std::string person = w.entry.person();
    const std::string entry_name = WaitlistName(course->id, w.id);
    touched->emplace_back(person, entry_name);
    // Can the entry still be served? Not with an active booking in the
    // course already, nor without a usable entitlement.
    absl::StatusOr<std::optional<BookingRow>> active =
        ActiveBooking(tx, course->id, person);
    if (!active.ok()) return active.status();
    absl::StatusOr<EntitlementRow> entitlement =
        absl::FailedPreconditionError("active booking");
    if (!active->has_value()) {
      absl::string_view wanted = w.entry.entitlement();
      absl::ConsumePrefix(&wanted, "entitlements/");
      entitlement =
          PickEntitlement(tx, person, *course, std::string(wanted), today);
      if (!entitlement.ok() && !wanted.empty()) {
        entitlement = PickEntitlement(tx, person, *course, "", today);
      }
      if (!entitlement.ok() &&
          entitlement.status().code() !=
              absl::StatusCode::kFailedPrecondition &&
          entitlement.status().code() != absl::StatusCode::kNotFound) {
        return entitlement.status();
      }
    }
    course->course.set_waitlist_length(
        std::max(0, course->course.waitlist_length() - 1));
    Bump(course, now);
    ++w.version;
    *w.entry.mutable_update_time() = api::ToTimestamp(now);
    if (!entitlement.ok()) {
      w.entry.set_state(v1::WAITLIST_ENTRY_STATE_REMOVED);
      if (absl::Status s = WriteWaitlist(tx, w); !s.ok()) return s;
      v1::WaitlistLeft event;
      event.set_waitlist_entry(entry_name);
      event.set_state(v1::WAITLIST_ENTRY_STATE_REMOVED);
      absl::StatusOr<v1::BookingContext> context =
          ContextFor(tx, *course, "", person, w.entry.requesting_agency(),
                     w.entry.case_step(), w.entry.entitlement());
      if (!context.ok()) return context.status();
      *event.mutable_context() = *context;
      if (absl::Status s = Enqueue(tx, event, person); !s.ok()) return s;
      continue;
    }
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
    b.booking.set_case_step(w.entry.case_step());
    b.booking.set_booking_agency(w.entry.requesting_agency());
    b.booking.set_state(v1::BOOKING_STATE_HELD);
    *b.booking.mutable_hold_expire_time() = api::ToTimestamp(expires);
    b.booking.set_waitlist_entry(entry_name);
    *b.booking.mutable_create_time() = api::ToTimestamp(now);
    *b.booking.mutable_update_time() = api::ToTimestamp(now);
    if (absl::Status s = InsertBooking(tx, b); !s.ok()) return s;
    if (absl::Status s = TakeUnits(tx, &*entitlement, b.units, now); !s.ok()) {
      return s;
    }
    course->course.set_booked_seats(course->course.booked_seats() + 1);
    w.entry.set_state(v1::WAITLIST_ENTRY_STATE_PROMOTED);
    w.entry.set_promoted_booking(BookingName(course->id, b.id));
    if (absl::Status s = WriteWaitlist(tx, w); !s.ok()) return s;
    v1::WaitlistPromoted event;
    event.set_waitlist_entry(entry_name);
    absl::StatusOr<v1::BookingContext> context =
        ContextFor(tx, *course, BookingName(course->id, b.id), person,
                   b.booking.booking_agency(), b.booking.case_step(),
                   b.booking.entitlement());
    if (!context.ok()) return context.status();
    *event.mutable_context() = *context;
    *event.mutable_hold_expire_time() = api::ToTimestamp(expires);
    if (absl::Status s = Enqueue(tx, event, person); !s.ok()) return s;
    touched->emplace_back(person, BookingName(course->id, b.id));
  }
  return WriteCourse(tx, *course);
}

// --- CreateBooking ---

absl::Status CoursesServiceImpl::DoCreateBooking(
    const Rc& rc, const v1::CreateBookingRequest& request, v1::Booking* out) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  Call call(this, rc, "CreateBooking", "courses");
  FieldViolations v;
  const std::string course_id =
      ParseSimpleName(request.parent(), "courses", "parent", &v);
  api::ValidateRequestId(request.request_id(), "request_id", &v);
  const v1::Booking& in = request.booking();
  const std::string person = ParsePerson(in.person(), "booking.person", &v);
  const std::string wanted =
      ParseEntitlementRef(in.entitlement(), "booking.entitlement", &v);
  ValidateCaseStep(in.case_step(), "booking.case_step", &v);
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_person_target(person, CourseName(course_id));

  // Read phase: the caller may book this course; the course exists; a
  // merged person id names the survivor.
  absl::StatusOr<std::string> survivor = person;
  absl::Status status =
      call.Read([&](Transaction& tx, const agencies::LocalAgency& caller) {
        absl::StatusOr<std::optional<CourseRow>> course =
            ReadCourse(tx, course_id);
        if (!course.ok()) return course.status();
        if (!course->has_value())
          return NotFound("COURSE", CourseName(course_id));
        survivor = ResolveMerged(tx, person);
        if (!survivor.ok()) return survivor.status();
        return RequireBookingCaller(caller, **course);
      });
  if (!status.ok()) return call.Finish(status);
  // Outside any transaction: may the caller act on the person at all?
  status = RequireStanding(*this, rc, call.caller(), person);
  if (!status.ok()) return call.Finish(status);

  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  const int64_t today = DayOf(now);
  status = call.Write([&](Transaction& tx,
                          const agencies::LocalAgency& caller) -> absl::Status {
    const api::IdempotentCreate once(caller.id, rc.method, request);
    absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
    if (!seen.ok()) return seen.status();
    if (seen->has_value()) {
      std::string c, id;
      FieldViolations ignored;
      if (!ParseChildName(**seen, "bookings", "", "booking", &ignored, &c,
                          &id)) {
        return absl::InternalError("recorded booking name does not parse");
      }
      absl::StatusOr<std::optional<BookingRow>> first = ReadBooking(tx, id);
      if (!first.ok()) return first.status();
      if (!first->has_value()) return NotFound("BOOKING", **seen);
      call.Touch((*first)->booking.person(), **seen);
      BookingOut(**first, out);
      return absl::OkStatus();
    }
    if (absl::Status s = LockCourse(tx, course_id); !s.ok()) return s;
    absl::StatusOr<std::optional<CourseRow>> found = ReadCourse(tx, course_id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return NotFound("COURSE", CourseName(course_id));
    CourseRow course = **found;
    if (absl::Status s = RequireBookingCaller(caller, course); !s.ok()) {
      return s;
    }
    if (absl::Status s = RequireBookable(course); !s.ok()) return s;
    absl::StatusOr<std::optional<BookingRow>> active =
        ActiveBooking(tx, course_id, *survivor);
    if (!active.ok()) return active.status();
    if (active->has_value()) return ActiveBookingExists(**active);
    absl::StatusOr<EntitlementRow> entitlement =
        PickEntitlement(tx, *survivor, course, wanted, today);
    if (!entitlement.ok()) return entitlement.status();
    if (course.course.booked_seats() >= course.course.capacity()) {
      return Precondition("COURSE_FULL",
                          "no free seat; join the waitlist instead");
    }
    absl::StatusOr<std::string> id = api::NewId();
    if (!id.ok()) return id.status();
    const bool confirm =
        request.confirm() && course.course.provider_agency() == caller.name();
    BookingRow b;
    b.id = *id;
    b.course_id = course_id;
    b.entitlement_id = entitlement->id;
    b.units = UnitsOf(course);
    b.create_us = ToMicros(now);
    b.booking.set_person(*survivor);
    b.booking.set_entitlement(EntitlementName(entitlement->id));
    b.booking.set_case_step(in.case_step());
    b.booking.set_booking_agency(caller.name());
    *b.booking.mutable_create_time() = api::ToTimestamp(now);
    *b.booking.mutable_update_time() = api::ToTimestamp(now);
    absl::Time expires;
    const bool running = course.course.state() == v1::COURSE_STATE_RUNNING;
    if (confirm) {
      // A confirmed seat in a running course is a participant at once.
      b.booking.set_state(running ? v1::BOOKING_STATE_ATTENDING
                                  : v1::BOOKING_STATE_CONFIRMED);
    } else {
      expires = now + HoldOf(course, options_.default_hold);
      b.booking.set_state(v1::BOOKING_STATE_HELD);
      b.hold_expire_us = ToMicros(expires);
      *b.booking.mutable_hold_expire_time() = api::ToTimestamp(expires);
    }
    if (absl::Status s = InsertBooking(tx, b); !s.ok()) return s;
    if (absl::Status s = TakeUnits(tx, &*entitlement, b.units, now); !s.ok()) {
      return s;
    }
    course.course.set_booked_seats(course.course.booked_seats() + 1);
    Bump(&course, now);
    if (absl::Status s = WriteCourse(tx, course); !s.ok()) return s;
    const std::string name = BookingName(course_id, b.id);
    v1::CourseBooked event;
    absl::StatusOr<v1::BookingContext> context = ContextFor(
        tx, course, name, *survivor, caller.name(), in.case_step(),
        b.booking.entitlement(), entitlement->entitlement.issuing_agency());
    if (!context.ok()) return context.status();
    *event.mutable_context() = *context;
    event.set_state(b.booking.state());
    if (!confirm) *event.mutable_hold_expire_time() = api::ToTimestamp(expires);
    if (absl::Status s = Enqueue(tx, event, *survivor); !s.ok()) return s;
    if (confirm && running) {
      v1::CourseStarted started;
      *started.mutable_context() = *context;
      if (absl::Status s = Enqueue(tx, started, *survivor); !s.ok()) return s;
    }
    if (absl::Status s = once.Record(tx, name); !s.ok()) {
      return s;
    }
    call.Touch(*survivor, name);
    BookingOut(b, out);
    return absl::OkStatus();
  });
  return call.Finish(status);
}

// --- GetBooking / ListBookings ---

absl::Status CoursesServiceImpl::DoGetBooking(
    const Rc& rc, const v1::GetBookingRequest& request, v1::Booking* out) {
  Call call(this, rc, "GetBooking", "courses");
  FieldViolations v;
  std::string course_id, id;
  ParseChildName(request.name(), "bookings", "", "name", &v, &course_id, &id);
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.name());
  ReadRight right;
  absl::Status status =
      call.Read([&](Transaction& tx, const agencies::LocalAgency& caller) {
        absl::StatusOr<std::optional<BookingRow>> b = ReadBooking(tx, id);
        if (!b.ok()) return b.status();
        if (!b->has_value() || (*b)->course_id != course_id) {
          return NotFound("BOOKING", request.name());
        }
        absl::StatusOr<std::optional<CourseRow>> course =
            ReadCourse(tx, course_id);
        if (!course.ok()) return course.status();
        absl::StatusOr<ReadRight> r = RightToBooking(
            tx, caller, **b, course->has_value() ? &**course : nullptr);
        if (!r.ok()) return r.status();
        right = *r;
        call.Touch((*b)->booking.person(), request.name());
        BookingOut(**b, out);
        return absl::OkStatus();
      });
  if (status.ok()) {
    status = AuthorizeLanguageRead(*this, rc, call.caller(), out->person(),
                                   right.owner, right.serves);
    if (!status.ok()) out->Clear();
  }
  return call.Finish(status);
}

absl::Status CoursesServiceImpl::DoListBookings(
    const Rc& rc, const v1::ListBookingsRequest& request,
    v1::ListBookingsResponse* out) {
  Call call(this, rc, "ListBookings", "courses");
  FieldViolations v;
  const std::string course_id =
      ParseCourseParent(request.parent(), "parent", &v);
  const int page_size =
      api::NormalizePageSize(request.page_size(), "page_size", &v);
  BookingFilter filter;
  if (course_id != "-") filter.course_id = course_id;
  filter.person = ParsePerson(request.person(), "person", &v, false);
  if (!request.booking_agency().empty()) {
    filter.agency = AgencyIdOf(request.booking_agency());
    if (filter.agency.empty()) {
      v.Add("booking_agency", "must be an agency name \"agencies/{id}\"");
    }
  }
  if (course_id == "-" && filter.person.empty() && filter.agency.empty()) {
    v.Add("parent", "\"courses/-\" needs a person or booking_agency filter");
  }
  for (int i = 0; i < request.states_size(); ++i) {
    const int s = request.states(i);
    if (s == 0 || !v1::BookingState_IsValid(s)) {
      v.Add(absl::StrCat("states[", i, "]"), "unknown booking state");
    }
    filter.states.push_back(s);
  }
  const std::string fingerprint = absl::StrCat(
      request.parent(), "|", request.person(), "|", request.booking_agency(),
      "|", absl::StrJoin(filter.states, ","));
  const std::string token =
      api::DecodePageToken(request.page_token(), fingerprint, "page_token", &v);
  int64_t after_us = 0, unused = 0;
  std::string after_id;
  if (!token.empty() && !ParseKey(token, &after_us, &unused, &after_id)) {
    v.Add("page_token", "is malformed");
  }
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.parent());

  std::vector<std::pair<BookingRow, ReadRight>> rows;
  bool more = false;
  absl::Status status =
      call.Read([&](Transaction& tx, const agencies::LocalAgency& caller) {
        rows.clear();
        if (!filter.person.empty()) {
          absl::StatusOr<std::string> s = ResolveMerged(tx, filter.person);
          if (!s.ok()) return s.status();
          filter.person = *s;
        }
        absl::StatusOr<std::vector<BookingRow>> found =
            ListBookingRows(tx, filter, after_us, after_id, page_size + 1);
        if (!found.ok()) return found.status();
        more = static_cast<int>(found->size()) > page_size;
        if (more) found->resize(page_size);
        std::map<std::string, std::optional<CourseRow>> courses;
        for (BookingRow& b : *found) {
          auto it = courses.find(b.course_id);
          if (it == courses.end()) {
            absl::StatusOr<std::optional<CourseRow>> c =
                ReadCourse(tx, b.course_id);
            if (!c.ok()) return c.status();
            it = courses.emplace(b.course_id, *c).first;
          }
          absl::StatusOr<ReadRight> r = RightToBooking(
              tx, caller, b, it->second.has_value() ? &*it->second : nullptr);
          if (!r.ok()) return r.status();
          rows.emplace_back(std::move(b), *r);
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return call.Finish(status);
  ReadDecider decider(*this, rc, call.caller());
  for (const auto& [b, right] : rows) {
    if (!decider.Allowed(b.booking.person(), right)) continue;
    BookingOut(b, out->add_bookings());
    call.Touch(b.booking.person(), BookingName(b.course_id, b.id));
  }
  if (more && !rows.empty()) {
    const BookingRow& last = rows.back().first;
    out->set_next_page_token(api::EncodePageToken(
        fingerprint, absl::StrCat(last.create_us, " 0 ", last.id)));
  }
  return call.Finish(absl::OkStatus());
}

// --- ConfirmBooking / CancelBooking ---

absl::Status CoursesServiceImpl::DoConfirmBooking(
    const Rc& rc, const v1::ConfirmBookingRequest& request, v1::Booking* out) {
  Call call(this, rc, "ConfirmBooking", "courses");
  FieldViolations v;
  std::string course_id, id;
  ParseChildName(request.name(), "bookings", "", "name", &v, &course_id, &id);
  if (request.etag().empty()) v.Add("etag", "is required");
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.name());
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  return call.Finish(call.Write([&](Transaction& tx,
                                    const agencies::LocalAgency& caller)
                                    -> absl::Status {
    if (absl::Status s = LockCourse(tx, course_id); !s.ok()) return s;
    absl::StatusOr<std::optional<CourseRow>> course = ReadCourse(tx, course_id);
    if (!course.ok()) return course.status();
    absl::StatusOr<std::optional<BookingRow>> found = ReadBooking(tx, id);
    if (!found.ok()) return found.status();
    if (!course->has_value() || !found->has_value() ||
        (*found)->course_id != course_id) {
      return NotFound("BOOKING", request.name());
    }
    BookingRow b = **found;
    call.Touch(b.booking.person(), request.name());
    if ((*course)->course.provider_agency() != caller.name()) {
      return Denied("NOT_COURSE_PROVIDER",
                    "only the course's provider confirms bookings");
    }
    if (absl::Status s = api::CheckEtag(
            request.etag(), api::ComputeEtag(request.name(), b.version));
        !s.ok()) {
      return s;
    }
    if (b.booking.state() != v1::BOOKING_STATE_HELD ||
        b.hold_expire_us <= ToMicros(now)) {
      return Precondition("TRANSITION_NOT_ALLOWED",
                          "only a HELD booking whose hold has not expired "
                          "can be confirmed");
    }
    // In a course that is already running, a confirmed seat is a
    // participant at once (StartCourse has passed).
    const bool running = (*course)->course.state() == v1::COURSE_STATE_RUNNING;
    b.booking.set_state(running ? v1::BOOKING_STATE_ATTENDING
                                : v1::BOOKING_STATE_CONFIRMED);
    b.booking.clear_hold_expire_time();
    b.hold_expire_us = 0;
    *b.booking.mutable_update_time() = api::ToTimestamp(now);
    ++b.version;
    if (absl::Status s = WriteBooking(tx, b); !s.ok()) return s;
    CourseRow c = **course;
    Bump(&c, now);
    if (absl::Status s = WriteCourse(tx, c); !s.ok()) return s;
    v1::BookingConfirmed event;
    absl::StatusOr<v1::BookingContext> context = ContextFor(
        tx, c, request.name(), b.booking.person(), b.booking.booking_agency(),
        b.booking.case_step(), b.booking.entitlement());
    if (!context.ok()) return context.status();
    *event.mutable_context() = *context;
    if (absl::Status s = Enqueue(tx, event, b.booking.person()); !s.ok()) {
      return s;
    }
    if (running) {
      v1::CourseStarted started;
      *started.mutable_context() = *context;
      if (absl::Status s = Enqueue(tx, started, b.booking.person()); !s.ok()) {
        return s;
      }
    }
    BookingOut(b, out);
    return absl::OkStatus();
  }));
}

absl::Status CoursesServiceImpl::DoCancelBooking(
    const Rc& rc, const v1::CancelBookingRequest& request, v1::Booking* out) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  Call call(this, rc, "CancelBooking", "courses");
  FieldViolations v;
  std::string course_id, id;
  ParseChildName(request.name(), "bookings", "", "name", &v, &course_id, &id);
  if (request.etag().empty()) v.Add("etag", "is required");
  if (request.reason() == v1::BOOKING_CANCEL_REASON_UNSPECIFIED) {
    v.Add("reason", "is required");
  } else if (!v1::BookingCancelReason_IsValid(request.reason())) {
    v.Add("reason", "unknown cancel reason");
  } else if (request.reason() == v1::BOOKING_CANCEL_REASON_COURSE_CANCELLED) {
    v.Add("reason", "COURSE_CANCELLED is set only by CancelCourse");
  }
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.name());
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  return call.Finish(
      call.Write([&](Transaction& tx,
                     const agencies::LocalAgency& caller) -> absl::Status {
        if (absl::Status s = LockCourse(tx, course_id); !s.ok()) return s;
        absl::StatusOr<std::optional<CourseRow>> course =
            ReadCourse(tx, course_id);
        if (!course.ok()) return course.status();
        absl::StatusOr<std::optional<BookingRow>> found = ReadBooking(tx, id);
        if (!found.ok()) return found.status();
        if (!course->has_value() || !found->has_value() ||
            (*found)->course_id != course_id) {
          return NotFound("BOOKING", request.name());
        }
        BookingRow b = **found;
        CourseRow c = **course;
        call.Touch(b.booking.person(), request.name());
        if (b.booking.booking_agency() != caller.name() &&
            c.course.provider_agency() != caller.name()) {
          return Denied("NOT_BOOKING_AGENCY",
                        "only the booking agency and the course's provider may "
                        "cancel a booking");
        }
        if (absl::Status s = api::CheckEtag(
                request.etag(), api::ComputeEtag(request.name(), b.version));
            !s.ok()) {
          return s;
        }
        if (!IsActive(b.booking.state())) {
          return Precondition(
              "TRANSITION_NOT_ALLOWED",
              "only a HELD, CONFIRMED or ATTENDING booking can be "
              "cancelled");
        }
        if (absl::Status s = ReleaseBooking(
                tx, &c, &b, v1::BOOKING_STATE_CANCELLED, request.reason(), now);
            !s.ok()) {
          return s;
        }
        std::vector<std::pair<std::string, std::string>> promoted;
        if (absl::Status s =
                FillFreeSeats(tx, &c, now, options_.default_hold, &promoted);
            !s.ok()) {
          return s;
        }
        for (const auto& [p, record] : promoted) call.Touch(p, record);
        BookingOut(b, out);
        return absl::OkStatus();
      }));
}

// --- Waitlist ---

absl::Status CoursesServiceImpl::DoJoinWaitlist(
    const Rc& rc, const v1::JoinWaitlistRequest& request,
    v1::WaitlistEntry* out) {
  Call call(this, rc, "JoinWaitlist", "courses");
  FieldViolations v;
  const std::string course_id =
      ParseSimpleName(request.parent(), "courses", "parent", &v);
  api::ValidateRequestId(request.request_id(), "request_id", &v);
  const v1::WaitlistEntry& in = request.waitlist_entry();
  const std::string person =
      ParsePerson(in.person(), "waitlist_entry.person", &v);
  const std::string wanted =
      ParseEntitlementRef(in.entitlement(), "waitlist_entry.entitlement", &v);
  ValidateCaseStep(in.case_step(), "waitlist_entry.case_step", &v);
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_person_target(person, CourseName(course_id));
  absl::Status status =
      call.Read([&](Transaction& tx, const agencies::LocalAgency& caller) {
        absl::StatusOr<std::optional<CourseRow>> course =
            ReadCourse(tx, course_id);
        if (!course.ok()) return course.status();
        if (!course->has_value())
          return NotFound("COURSE", CourseName(course_id));
        return RequireBookingCaller(caller, **course);
      });
  if (!status.ok()) return call.Finish(status);
  status = RequireStanding(*this, rc, call.caller(), person);
  if (!status.ok()) return call.Finish(status);

  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  const int64_t today = DayOf(now);
  status = call.Write([&](Transaction& tx,
                          const agencies::LocalAgency& caller) -> absl::Status {
    const api::IdempotentCreate once(caller.id, rc.method, request);
    absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
    if (!seen.ok()) return seen.status();
    if (seen->has_value()) {
      std::string c, id;
      FieldViolations ignored;
      if (!ParseChildName(**seen, "waitlistEntries", "", "entry", &ignored, &c,
                          &id)) {
        return absl::InternalError("recorded entry name does not parse");
      }
      absl::StatusOr<std::optional<WaitlistRow>> first = ReadWaitlist(tx, id);
      if (!first.ok()) return first.status();
      if (!first->has_value()) return NotFound("WAITLIST_ENTRY", **seen);
      call.Touch((*first)->entry.person(), **seen);
      return WaitlistOut(tx, **first, out);
    }
    absl::StatusOr<std::string> survivor = ResolveMerged(tx, person);
    if (!survivor.ok()) return survivor.status();
    if (absl::Status s = LockCourse(tx, course_id); !s.ok()) return s;
    absl::StatusOr<std::optional<CourseRow>> found = ReadCourse(tx, course_id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return NotFound("COURSE", CourseName(course_id));
    CourseRow course = **found;
    if (absl::Status s = RequireBookingCaller(caller, course); !s.ok()) {
      return s;
    }
    if (absl::Status s = RequireBookable(course); !s.ok()) return s;
    absl::StatusOr<std::optional<BookingRow>> active =
        ActiveBooking(tx, course_id, *survivor);
    if (!active.ok()) return active.status();
    if (active->has_value()) return ActiveBookingExists(**active);
    absl::StatusOr<std::optional<WaitlistRow>> waiting =
        WaitingEntry(tx, course_id, *survivor);
    if (!waiting.ok()) return waiting.status();
    if (waiting->has_value()) {
      return ErrorWithReason(
          absl::StatusCode::kAlreadyExists, "ALREADY_ON_WAITLIST",
          "the person is already waiting for this course",
          {{"waitlist_entry", WaitlistName(course_id, (*waiting)->id)}});
    }
    absl::StatusOr<EntitlementRow> entitlement =
        PickEntitlement(tx, *survivor, course, wanted, today);
    if (!entitlement.ok()) return entitlement.status();
    if (course.course.booked_seats() < course.course.capacity()) {
      return Precondition("COURSE_HAS_FREE_SEATS",
                          "a seat is free; book it instead");
    }
    absl::StatusOr<std::string> id = api::NewId();
    if (!id.ok()) return id.status();
    absl::StatusOr<int64_t> seq = NextWaitlistSeq(tx, course_id);
    if (!seq.ok()) return seq.status();
    WaitlistRow w;
    w.id = *id;
    w.course_id = course_id;
    w.seq = *seq;
    w.create_us = ToMicros(now);
    w.entry.set_person(*survivor);
    w.entry.set_entitlement(EntitlementName(entitlement->id));
    w.entry.set_case_step(in.case_step());
    w.entry.set_requesting_agency(caller.name());
    w.entry.set_priority(entitlement->entitlement.kind() ==
                                 v1::ENTITLEMENT_KIND_OBLIGATION
                             ? v1::WAITLIST_PRIORITY_OBLIGATION
                             : v1::WAITLIST_PRIORITY_ADMISSION);
    w.entry.set_state(v1::WAITLIST_ENTRY_STATE_WAITING);
    *w.entry.mutable_create_time() = api::ToTimestamp(now);
    *w.entry.mutable_update_time() = api::ToTimestamp(now);
    if (absl::Status s = InsertWaitlist(tx, w); !s.ok()) return s;
    course.course.set_waitlist_length(course.course.waitlist_length() + 1);
    Bump(&course, now);
    if (absl::Status s = WriteCourse(tx, course); !s.ok()) return s;
    const std::string name = WaitlistName(course_id, w.id);
    if (absl::Status s = WaitlistOut(tx, w, out); !s.ok()) return s;
    v1::WaitlistJoined event;
    event.set_waitlist_entry(name);
    absl::StatusOr<v1::BookingContext> context =
        ContextFor(tx, course, "", *survivor, caller.name(), in.case_step(),
                   w.entry.entitlement());
    if (!context.ok()) return context.status();
    *event.mutable_context() = *context;
    event.set_priority(w.entry.priority());
    event.set_position(out->position());
    if (absl::Status s = Enqueue(tx, event, *survivor); !s.ok()) return s;
    if (absl::Status s = once.Record(tx, name); !s.ok()) {
      return s;
    }
    call.Touch(*survivor, name);
    return absl::OkStatus();
  });
  return call.Finish(status);
}

absl::Status CoursesServiceImpl::DoGetWaitlistEntry(
    const Rc& rc, const v1::GetWaitlistEntryRequest& request,
    v1::WaitlistEntry* out) {
  Call call(this, rc, "GetWaitlistEntry", "courses");
  FieldViolations v;
  std::string course_id, id;
  ParseChildName(request.name(), "waitlistEntries", "", "name", &v, &course_id,
                 &id);
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.name());
  ReadRight right;
  absl::Status status =
      call.Read([&](Transaction& tx, const agencies::LocalAgency& caller) {
        absl::StatusOr<std::optional<WaitlistRow>> w = ReadWaitlist(tx, id);
        if (!w.ok()) return w.status();
        if (!w->has_value() || (*w)->course_id != course_id) {
          return NotFound("WAITLIST_ENTRY", request.name());
        }
        absl::StatusOr<std::optional<CourseRow>> course =
            ReadCourse(tx, course_id);
        if (!course.ok()) return course.status();
        right.owner = (*w)->entry.requesting_agency() == caller.name() ||
                      (course->has_value() &&
                       (*course)->course.provider_agency() == caller.name());
        if (!right.owner) {
          absl::StatusOr<bool> serves =
              AgencyServesPerson(tx, caller.id, (*w)->entry.person());
          if (!serves.ok()) return serves.status();
          right.serves = *serves;
        }
        call.Touch((*w)->entry.person(), request.name());
        return WaitlistOut(tx, **w, out);
      });
  if (status.ok()) {
    status = AuthorizeLanguageRead(*this, rc, call.caller(), out->person(),
                                   right.owner, right.serves);
    if (!status.ok()) out->Clear();
  }
  return call.Finish(status);
}

absl::Status CoursesServiceImpl::DoListWaitlistEntries(
    const Rc& rc, const v1::ListWaitlistEntriesRequest& request,
    v1::ListWaitlistEntriesResponse* out) {
  Call call(this, rc, "ListWaitlistEntries", "courses");
  FieldViolations v;
  const std::string course_id =
      ParseCourseParent(request.parent(), "parent", &v);
  const int page_size =
      api::NormalizePageSize(request.page_size(), "page_size", &v);
  std::string person = ParsePerson(request.person(), "person", &v, false);
  if (course_id == "-" && person.empty() && request.person().empty()) {
    v.Add("person", "is required with \"courses/-\"");
  }
  std::vector<int> states;
  for (int i = 0; i < request.states_size(); ++i) {
    const int s = request.states(i);
    if (s == 0 || !v1::WaitlistEntryState_IsValid(s)) {
      v.Add(absl::StrCat("states[", i, "]"), "unknown waitlist entry state");
    }
    states.push_back(s);
  }
  if (states.empty()) states.push_back(v1::WAITLIST_ENTRY_STATE_WAITING);
  const std::string fingerprint = absl::StrCat(
      request.parent(), "|", request.person(), "|", absl::StrJoin(states, ","));
  const std::string token =
      api::DecodePageToken(request.page_token(), fingerprint, "page_token", &v);
  int64_t after_a = 0, after_b = 0;
  std::string after_id;
  if (!token.empty() && !ParseKey(token, &after_a, &after_b, &after_id)) {
    v.Add("page_token", "is malformed");
  }
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.parent());
  std::vector<std::pair<v1::WaitlistEntry, ReadRight>> rows;
  std::string last_key;
  bool more = false;
  absl::Status status = call.Read([&](Transaction& tx,
                                      const agencies::LocalAgency& caller) {
    rows.clear();
    if (!person.empty()) {
      absl::StatusOr<std::string> s = ResolveMerged(tx, person);
      if (!s.ok()) return s.status();
      person = *s;
    }
    absl::StatusOr<std::vector<WaitlistRow>> found =
        ListWaitlistRows(tx, course_id == "-" ? "" : course_id, person, states,
                         after_a, after_b, after_id, page_size + 1);
    if (!found.ok()) return found.status();
    more = static_cast<int>(found->size()) > page_size;
    if (more) found->resize(page_size);
    std::map<std::string, std::string> providers;
    for (const WaitlistRow& w : *found) {
      auto it = providers.find(w.course_id);
      if (it == providers.end()) {
        absl::StatusOr<std::optional<CourseRow>> c =
            ReadCourse(tx, w.course_id);
        if (!c.ok()) return c.status();
        it = providers
                 .emplace(w.course_id,
                          c->has_value() ? (*c)->course.provider_agency() : "")
                 .first;
      }
      ReadRight right;
      right.owner = w.entry.requesting_agency() == caller.name() ||
                    it->second == caller.name();
      if (!right.owner) {
        absl::StatusOr<bool> serves =
            AgencyServesPerson(tx, caller.id, w.entry.person());
        if (!serves.ok()) return serves.status();
        right.serves = *serves;
      }
      v1::WaitlistEntry entry;
      if (absl::Status s = WaitlistOut(tx, w, &entry); !s.ok()) return s;
      rows.emplace_back(std::move(entry), right);
      last_key = course_id == "-"
                     ? absl::StrCat(w.create_us, " ", w.create_us, " ", w.id)
                     : absl::StrCat(static_cast<int>(w.entry.priority()), " ",
                                    w.seq, " ", w.id);
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return call.Finish(status);
  ReadDecider decider(*this, rc, call.caller());
  for (const auto& [entry, right] : rows) {
    if (!decider.Allowed(entry.person(), right)) continue;
    *out->add_waitlist_entries() = entry;
    call.Touch(entry.person(), entry.name());
  }
  if (more) {
    out->set_next_page_token(api::EncodePageToken(fingerprint, last_key));
  }
  return call.Finish(absl::OkStatus());
}

absl::Status CoursesServiceImpl::DoLeaveWaitlist(
    const Rc& rc, const v1::LeaveWaitlistRequest& request,
    v1::WaitlistEntry* out) {
  Call call(this, rc, "LeaveWaitlist", "courses");
  FieldViolations v;
  std::string course_id, id;
  ParseChildName(request.name(), "waitlistEntries", "", "name", &v, &course_id,
                 &id);
  if (request.etag().empty()) v.Add("etag", "is required");
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.name());
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  return call.Finish(
      call.Write([&](Transaction& tx,
                     const agencies::LocalAgency& caller) -> absl::Status {
        if (absl::Status s = LockCourse(tx, course_id); !s.ok()) return s;
        absl::StatusOr<std::optional<CourseRow>> course =
            ReadCourse(tx, course_id);
        if (!course.ok()) return course.status();
        absl::StatusOr<std::optional<WaitlistRow>> found = ReadWaitlist(tx, id);
        if (!found.ok()) return found.status();
        if (!course->has_value() || !found->has_value() ||
            (*found)->course_id != course_id) {
          return NotFound("WAITLIST_ENTRY", request.name());
        }
        WaitlistRow w = **found;
        CourseRow c = **course;
        call.Touch(w.entry.person(), request.name());
        if (w.entry.requesting_agency() != caller.name() &&
            c.course.provider_agency() != caller.name()) {
          return Denied("NOT_REQUESTING_AGENCY",
                        "only the requesting agency and the course's provider "
                        "may take a person off the waitlist");
        }
        if (absl::Status s = api::CheckEtag(
                request.etag(), api::ComputeEtag(request.name(), w.version));
            !s.ok()) {
          return s;
        }
        if (w.entry.state() != v1::WAITLIST_ENTRY_STATE_WAITING) {
          return Precondition("TRANSITION_NOT_ALLOWED",
                              "only a WAITING entry can leave the waitlist");
        }
        w.entry.set_state(v1::WAITLIST_ENTRY_STATE_LEFT);
        *w.entry.mutable_update_time() = api::ToTimestamp(now);
        ++w.version;
        if (absl::Status s = WriteWaitlist(tx, w); !s.ok()) return s;
        c.course.set_waitlist_length(
            std::max(0, c.course.waitlist_length() - 1));
        Bump(&c, now);
        if (absl::Status s = WriteCourse(tx, c); !s.ok()) return s;
        v1::WaitlistLeft event;
        event.set_waitlist_entry(request.name());
        event.set_state(v1::WAITLIST_ENTRY_STATE_LEFT);
        absl::StatusOr<v1::BookingContext> context =
            ContextFor(tx, c, "", w.entry.person(), w.entry.requesting_agency(),
                       w.entry.case_step(), w.entry.entitlement());
        if (!context.ok()) return context.status();
        *event.mutable_context() = *context;
        if (absl::Status s = Enqueue(tx, event, w.entry.person()); !s.ok()) {
          return s;
        }
        return WaitlistOut(tx, w, out);
      }));
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
