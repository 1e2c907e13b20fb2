// Bookings: CreateBooking, GetBooking, ListBookings, ConfirmBooking,
// CancelBooking. The seat rules are domain/seats.h; the seat plumbing they
// share with the waitlist (choosing the entitlement, releasing a seat,
// promoting from the waitlist) is seats.cc, which also states the lock
// order.
#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "services/courses/domain/dates.h"
#include "services/courses/domain/seats.h"
#include "services/courses/service/internal.h"

namespace lotse::courses {

using ::lotse::storage::Transaction;

namespace {

// Whether `caller` owns a booking's LANGUAGE data (booking agency, course
// provider, issuer of the entitlement used) and whether it serves the
// person.
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

// The booking a request_id already created (CreateBooking's replay).
absl::Status ReplayBooking(Transaction& tx, const std::string& name,
                           CoursesServiceImpl::Call& call, v1::Booking* out) {
  std::string course, id;
  FieldViolations ignored;
  if (!ParseChildName(name, "bookings", "", "booking", &ignored, &course,
                      &id)) {
    return absl::InternalError("recorded booking name does not parse");
  }
  absl::StatusOr<std::optional<BookingRow>> first = ReadBooking(tx, id);
  if (!first.ok()) return first.status();
  if (!first->has_value() || IsAnonymised(**first)) {
    return NotFound("BOOKING", name);
  }
  call.Touch((*first)->booking.person(), name);
  BookingOut(**first, out);
  return absl::OkStatus();
}

// Who books whom, and whether the course's provider confirms the seat as
// it books it.
struct NewBooking {
  std::string person;  // the survivor of a merged person
  std::string case_step;
  std::string agency;  // "agencies/x"
  bool confirm = false;
};

// Stores a new booking in `course` (locked, with a free seat) paid by
// `entitlement`: takes the seat and the units, writes the course and
// enqueues CourseBooked (and CourseStarted for a participant of a running
// course).
absl::StatusOr<BookingRow> StoreNewBooking(Transaction& tx, CourseRow* course,
                                           EntitlementRow* entitlement,
                                           const NewBooking& nb, absl::Time now,
                                           absl::Duration default_hold) {
  absl::StatusOr<std::string> id = api::NewId();
  if (!id.ok()) return id.status();
  BookingRow b;
  b.id = *id;
  b.course_id = course->id;
  b.entitlement_id = entitlement->id;
  b.units = UnitsOf(*course);
  b.create_us = ToMicros(now);
  b.booking.set_person(nb.person);
  b.booking.set_entitlement(EntitlementName(entitlement->id));
  b.booking.set_case_step(nb.case_step);
  b.booking.set_booking_agency(nb.agency);
  *b.booking.mutable_create_time() = api::ToTimestamp(now);
  *b.booking.mutable_update_time() = api::ToTimestamp(now);
  absl::Time expires;
  const bool running = course->course.state() == v1::COURSE_STATE_RUNNING;
  b.booking.set_state(NewBookingState(nb.confirm, running));
  if (!nb.confirm) {
    expires = now + HoldOf(*course, default_hold);
    b.hold_expire_us = ToMicros(expires);
    *b.booking.mutable_hold_expire_time() = api::ToTimestamp(expires);
  }
  if (absl::Status s = InsertBooking(tx, b); !s.ok()) return s;
  if (absl::Status s = TakeUnits(tx, entitlement, b.units, now); !s.ok()) {
    return s;
  }
  course->course.set_booked_seats(course->course.booked_seats() + 1);
  Bump(course, now);
  if (absl::Status s = WriteCourseSeats(tx, *course); !s.ok()) return s;
  const std::string name = BookingName(course->id, b.id);
  v1::CourseBooked event;
  absl::StatusOr<v1::BookingContext> context = ContextFor(
      tx, *course, name, nb.person, nb.agency, nb.case_step,
      b.booking.entitlement(), entitlement->entitlement.issuing_agency());
  if (!context.ok()) return context.status();
  *event.mutable_context() = *context;
  event.set_state(b.booking.state());
  if (!nb.confirm)
    *event.mutable_hold_expire_time() = api::ToTimestamp(expires);
  if (absl::Status s = Enqueue(tx, event, nb.person); !s.ok()) return s;
  if (nb.confirm && running) {
    v1::CourseStarted started;
    *started.mutable_context() = *context;
    if (absl::Status s = Enqueue(tx, started, nb.person); !s.ok()) return s;
  }
  return b;
}

}  // namespace

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
    if (seen->has_value()) return ReplayBooking(tx, **seen, call, out);
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
    if (FreeSeats(course.course.capacity(), course.course.booked_seats()) ==
        0) {
      return Precondition("COURSE_FULL",
                          "no free seat; join the waitlist instead");
    }
    NewBooking booking;
    booking.person = *survivor;
    booking.case_step = in.case_step();
    booking.agency = caller.name();
    booking.confirm =
        request.confirm() && course.course.provider_agency() == caller.name();
    absl::StatusOr<BookingRow> b = StoreNewBooking(
        tx, &course, &*entitlement, booking, now, options_.default_hold);
    if (!b.ok()) return b.status();
    const std::string name = BookingName(course_id, b->id);
    if (absl::Status s = once.Record(tx, name); !s.ok()) {
      return s;
    }
    call.Touch(*survivor, name);
    BookingOut(*b, out);
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
  absl::Status status = call.Read([&](Transaction& tx,
                                      const agencies::LocalAgency& caller) {
    absl::StatusOr<std::optional<BookingRow>> b = ReadBooking(tx, id);
    if (!b.ok()) return b.status();
    if (!b->has_value() || (*b)->course_id != course_id || IsAnonymised(**b)) {
      return NotFound("BOOKING", request.name());
    }
    absl::StatusOr<std::optional<CourseRow>> course = ReadCourse(tx, course_id);
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
    status = AuthorizeLanguageRead(*this, call, out->person(), right.owner,
                                   right.serves);
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
  ReadDecider decider(*this, call);
  for (const auto& [b, right] : rows) {
    // An anonymised booking (its person erased) is not listed.
    if (IsAnonymised(b)) continue;
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
        (*found)->course_id != course_id || IsAnonymised(**found)) {
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
    const bool running = (*course)->course.state() == v1::COURSE_STATE_RUNNING;
    b.booking.set_state(ConfirmedState(running));
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
            (*found)->course_id != course_id || IsAnonymised(**found)) {
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
        if (!HoldsSeat(b.booking.state())) {
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

}  // namespace lotse::courses
