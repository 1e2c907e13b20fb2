// CreateCourse, GetCourse, ListCourses, UpdateCourse, StartCourse,
// FinishCourse, CancelCourse, SearchCourses.
#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/geo/geo.h"
#include "services/courses/domain/dates.h"
#include "services/courses/service/internal.h"

namespace lotse::courses {
namespace {

using ::lotse::storage::Transaction;

constexpr absl::Duration kMinHold = absl::Hours(1);
constexpr absl::Duration kMaxHold = absl::Hours(24 * 14);

bool IsLanguageCourse(int kind) { return kind != v1::COURSE_KIND_ORIENTATION; }

void ValidateKind(int kind, const std::string& field, FieldViolations* v) {
  if (kind == v1::COURSE_KIND_UNSPECIFIED) {
    v->Add(field, "is required");
  } else if (!v1::CourseKind_IsValid(kind)) {
    v->Add(field, absl::StrCat("unknown course kind ", kind));
  }
}

void ValidateLevel(int kind, int level, const std::string& field,
                   FieldViolations* v) {
  if (!type::v1::CefrLevel_IsValid(level)) {
    v->Add(field, absl::StrCat("unknown level ", level));
  } else if (IsLanguageCourse(kind) &&
             level == type::v1::CEFR_LEVEL_UNSPECIFIED) {
    v->Add(field, "is required for language courses");
  } else if (!IsLanguageCourse(kind) &&
             level != type::v1::CEFR_LEVEL_UNSPECIFIED) {
    v->Add(field, "must be unset for orientation courses");
  }
}

void ValidatePlace(const type::v1::Address& a, bool has, const std::string& f,
                   FieldViolations* v) {
  if (!has) {
    v->Add(f, "is required");
    return;
  }
  if (a.postal_code().empty()) {
    v->Add(f + ".postal_code", "is required");
  } else if (!geo::IsPostalCodeSyntax(a.postal_code())) {
    v->Add(f + ".postal_code", "must be five digits");
  }
  api::ValidateText(a.locality(), f + ".locality", {1, 100}, v);
  api::ValidateToken(a.municipality_code(), f + ".municipality_code", 8, 8,
                     "0123456789", "eight digits", v);
  api::ValidateText(a.street(), f + ".street", {0, 200}, v);
  api::ValidateText(a.house_number(), f + ".house_number", {0, 20}, v);
  api::ValidateText(a.extra_line(), f + ".extra_line", {0, 200}, v);
  if (!a.country_code().empty() && a.country_code() != "DE") {
    v->Add(f + ".country_code", "must be DE or empty");
  }
}

void ValidateSchedule(const v1::CourseSchedule& s, bool has, int64_t today,
                      const std::string& f, FieldViolations* v) {
  if (!has) {
    v->Add(f, "is required");
    return;
  }
  std::optional<int64_t> start = ValidateDate(
      s.start_date(), s.has_start_date(), true, f + ".start_date", v);
  if (start && *start < today) {
    v->Add(f + ".start_date", "must not be in the past");
  }
  std::optional<int64_t> end =
      ValidateDate(s.end_date(), s.has_end_date(), false, f + ".end_date", v);
  if (start && end && *end < *start) {
    v->Add(f + ".end_date", "must not be before start_date");
  }
  if (s.weekdays().empty()) v->Add(f + ".weekdays", "is required");
  std::set<int> seen;
  for (int i = 0; i < s.weekdays_size(); ++i) {
    const int d = s.weekdays(i);
    const std::string field = absl::StrCat(f, ".weekdays[", i, "]");
    if (d < 1 || d > 7) {
      v->Add(field, "must be a day of the week");
    } else if (!seen.insert(d).second) {
      v->Add(field, "is a duplicate");
    }
  }
  if (s.day_period() == type::v1::DAY_PERIOD_UNSPECIFIED) {
    v->Add(f + ".day_period", "is required");
  } else if (!type::v1::DayPeriod_IsValid(s.day_period())) {
    v->Add(f + ".day_period", "unknown day period");
  }
  if (s.units_per_week() < 1 || s.units_per_week() > 40) {
    v->Add(f + ".units_per_week", "must be 1..40");
  }
  if (s.total_units() < 1 || s.total_units() > 1500) {
    v->Add(f + ".total_units", "must be 1..1500");
  }
}

void ValidateCapacity(int capacity, const std::string& f, FieldViolations* v) {
  if (capacity < 1 || capacity > 100) v->Add(f, "must be 1..100");
}

void ValidateHold(const v1::Course& c, const std::string& f,
                  FieldViolations* v) {
  if (!c.has_hold_duration()) return;
  const absl::Duration d = absl::Seconds(c.hold_duration().seconds()) +
                           absl::Nanoseconds(c.hold_duration().nanos());
  if (d < kMinHold || d > kMaxHold) v->Add(f, "must be 1 hour .. 14 days");
}

// Loads a course for a change by its provider, under the course lock.
absl::StatusOr<CourseRow> LoadForChange(Transaction& tx,
                                        const agencies::LocalAgency& caller,
                                        const std::string& id,
                                        absl::string_view etag) {
  if (absl::Status s = LockCourse(tx, id); !s.ok()) return s;
  absl::StatusOr<std::optional<CourseRow>> found = ReadCourse(tx, id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return NotFound("COURSE", CourseName(id));
  CourseRow row = **found;
  if (row.course.provider_agency() != caller.name()) {
    return Denied("NOT_COURSE_PROVIDER",
                  "only the course's provider may change it");
  }
  if (absl::Status s =
          api::CheckEtag(etag, api::ComputeEtag(CourseName(id), row.version));
      !s.ok()) {
    return s;
  }
  return row;
}

absl::Status RequireOpen(const CourseRow& row) {
  if (row.course.state() == v1::COURSE_STATE_CANCELLED) {
    return Precondition("COURSE_CANCELLED", "the course was cancelled");
  }
  if (row.course.state() == v1::COURSE_STATE_FINISHED) {
    return Precondition("COURSE_NOT_BOOKABLE", "the course is finished");
  }
  return absl::OkStatus();
}

// Validates the update mask and the fields it names (every bad field at
// once; fields that depend on the stored course are checked later).
// Returns the mask's paths.
std::set<std::string> ValidateCourseUpdate(
    const v1::UpdateCourseRequest& request, int64_t today, FieldViolations* v) {
  std::set<std::string> paths;
  for (int i = 0; i < request.update_mask().paths_size(); ++i) {
    const std::string& p = request.update_mask().paths(i);
    static const std::set<std::string> kAllowed = {
        "title",    "course_number", "target_level",
        "place",    "schedule",      "childcare_offered",
        "capacity", "hold_duration", "kind"};
    if (kAllowed.count(p) == 0) {
      v->Add(absl::StrCat("update_mask.paths[", i, "]"),
             "is not a field UpdateCourse can change");
    } else {
      paths.insert(p);
    }
  }
  auto has = [&](const char* p) { return paths.count(p) > 0; };
  const v1::Course& c = request.course();
  if (has("title")) api::ValidateText(c.title(), "course.title", {1, 200}, v);
  if (has("course_number")) {
    api::ValidateText(c.course_number(), "course.course_number", {0, 64}, v);
  }
  if (has("kind")) ValidateKind(c.kind(), "course.kind", v);
  if (has("place")) ValidatePlace(c.place(), c.has_place(), "course.place", v);
  if (has("schedule")) {
    ValidateSchedule(c.schedule(), c.has_schedule(), today, "course.schedule",
                     v);
  }
  if (has("capacity")) ValidateCapacity(c.capacity(), "course.capacity", v);
  if (has("hold_duration")) ValidateHold(c, "course.hold_duration", v);
  return paths;
}

// Copies the fields `paths` names from `c` into the stored course.
void ApplyCourseUpdate(const v1::Course& c, const std::set<std::string>& paths,
                       CourseRow* row) {
  auto has = [&](const char* p) { return paths.count(p) > 0; };
  if (has("title")) row->course.set_title(c.title());
  if (has("course_number")) row->course.set_course_number(c.course_number());
  if (has("kind")) row->course.set_kind(c.kind());
  if (has("target_level")) row->course.set_target_level(c.target_level());
  if (has("place")) {
    *row->course.mutable_place() = c.place();
    row->position = geo::PostalCodeCentre(c.place().postal_code());
  }
  if (has("schedule")) *row->course.mutable_schedule() = c.schedule();
  if (has("childcare_offered")) {
    row->course.set_childcare_offered(c.childcare_offered());
  }
  if (has("capacity")) row->course.set_capacity(c.capacity());
  if (has("hold_duration")) {
    if (c.has_hold_duration()) {
      *row->course.mutable_hold_duration() = c.hold_duration();
    } else {
      row->course.clear_hold_duration();
    }
  }
}

}  // namespace

absl::Status CoursesServiceImpl::DoCreateCourse(
    const Rc& rc, const v1::CreateCourseRequest& request, v1::Course* out) {
  Call call(this, rc, "CreateCourse", "courses");
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  const int64_t today = DayOf(now);
  return call.Finish(call.Write([&](Transaction& tx,
                                    const agencies::LocalAgency& caller)
                                    -> absl::Status {
    if (caller.legal_domain != "KURSTRAEGER") {
      return Denied("WRONG_LEGAL_DOMAIN",
                    "only course providers (KURSTRAEGER) publish courses");
    }
    FieldViolations v;
    api::ValidateRequestId(request.request_id(), "request_id", &v);
    const v1::Course& c = request.course();
    if (!request.has_course()) v.Add("course", "is required");
    api::ValidateText(c.title(), "course.title", {1, 200}, &v);
    api::ValidateText(c.course_number(), "course.course_number", {0, 64}, &v);
    ValidateKind(c.kind(), "course.kind", &v);
    ValidateLevel(c.kind(), c.target_level(), "course.target_level", &v);
    ValidatePlace(c.place(), c.has_place(), "course.place", &v);
    ValidateSchedule(c.schedule(), c.has_schedule(), today, "course.schedule",
                     &v);
    ValidateCapacity(c.capacity(), "course.capacity", &v);
    ValidateHold(c, "course.hold_duration", &v);
    if (!v.empty()) return v.ToStatus();

    const api::IdempotentCreate once(caller.id, rc.method, request);
    absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
    if (!seen.ok()) return seen.status();
    if (seen->has_value()) {
      absl::string_view id = **seen;
      absl::ConsumePrefix(&id, "courses/");
      absl::StatusOr<std::optional<CourseRow>> first = ReadCourse(tx, id);
      if (!first.ok()) return first.status();
      if (!first->has_value()) return NotFound("COURSE", **seen);
      call.set_resource(**seen);
      CourseOut(**first, out);
      return absl::OkStatus();
    }

    absl::StatusOr<std::string> id = api::NewId();
    if (!id.ok()) return id.status();
    CourseRow row;
    row.id = *id;
    row.course.set_provider_agency(caller.name());
    row.course.set_title(c.title());
    row.course.set_course_number(c.course_number());
    row.course.set_kind(c.kind());
    row.course.set_target_level(c.target_level());
    *row.course.mutable_place() = c.place();
    *row.course.mutable_schedule() = c.schedule();
    row.course.set_childcare_offered(c.childcare_offered());
    row.course.set_capacity(c.capacity());
    if (c.has_hold_duration()) {
      *row.course.mutable_hold_duration() = c.hold_duration();
    }
    row.course.set_state(v1::COURSE_STATE_PLANNED);
    *row.course.mutable_create_time() = api::ToTimestamp(now);
    *row.course.mutable_update_time() = api::ToTimestamp(now);
    row.position = geo::PostalCodeCentre(c.place().postal_code());
    if (absl::Status s = InsertCourse(tx, row); !s.ok()) return s;
    if (absl::Status s = once.Record(tx, CourseName(row.id)); !s.ok()) {
      return s;
    }
    call.set_resource(CourseName(row.id));
    CourseOut(row, out);
    return absl::OkStatus();
  }));
}

absl::Status CoursesServiceImpl::DoGetCourse(
    const Rc& rc, const v1::GetCourseRequest& request, v1::Course* out) {
  Call call(this, rc, "GetCourse", "courses");
  call.set_audit_personal_only();
  return call.Finish(
      call.Read([&](Transaction& tx, const agencies::LocalAgency&) {
        FieldViolations v;
        const std::string id =
            ParseSimpleName(request.name(), "courses", "name", &v);
        if (!v.empty()) return v.ToStatus();
        call.set_resource(CourseName(id));
        absl::StatusOr<std::optional<CourseRow>> found = ReadCourse(tx, id);
        if (!found.ok()) return found.status();
        if (!found->has_value()) return NotFound("COURSE", CourseName(id));
        CourseOut(**found, out);
        return absl::OkStatus();
      }));
}

absl::Status CoursesServiceImpl::DoListCourses(
    const Rc& rc, const v1::ListCoursesRequest& request,
    v1::ListCoursesResponse* out) {
  Call call(this, rc, "ListCourses", "courses");
  call.set_audit_personal_only();
  return call.Finish(call.Read([&](Transaction& tx,
                                   const agencies::LocalAgency&) {
    FieldViolations v;
    const int page_size =
        api::NormalizePageSize(request.page_size(), "page_size", &v);
    CourseListFilter filter;
    if (!request.provider_agency().empty()) {
      filter.provider = AgencyIdOf(request.provider_agency());
      if (filter.provider.empty()) {
        v.Add("provider_agency", "must be an agency name \"agencies/{id}\"");
      }
    }
    for (int i = 0; i < request.states_size(); ++i) {
      const int s = request.states(i);
      if (s == 0 || !v1::CourseState_IsValid(s)) {
        v.Add(absl::StrCat("states[", i, "]"), "unknown course state");
      }
      filter.states.push_back(s);
    }
    if (!request.municipality_code().empty()) {
      api::ValidateToken(request.municipality_code(), "municipality_code", 8, 8,
                         "0123456789", "eight digits", &v);
      filter.municipality_code = request.municipality_code();
    }
    const std::string fingerprint = absl::StrCat(
        request.provider_agency(), "|", absl::StrJoin(filter.states, ","), "|",
        request.municipality_code());
    const std::string after = api::DecodePageToken(
        request.page_token(), fingerprint, "page_token", &v);
    int64_t after_day = 0;
    std::string after_id;
    if (!after.empty()) {
      std::pair<std::string, std::string> parts =
          absl::StrSplit(after, absl::MaxSplits(' ', 1));
      if (!absl::SimpleAtoi(parts.first, &after_day)) {
        v.Add("page_token", "is malformed");
      }
      after_id = parts.second;
    }
    if (!v.empty()) return v.ToStatus();
    absl::StatusOr<std::vector<CourseRow>> rows =
        ListCourseRows(tx, filter, after_day, after_id, page_size + 1);
    if (!rows.ok()) return rows.status();
    const bool more = static_cast<int>(rows->size()) > page_size;
    if (more) rows->resize(page_size);
    for (const CourseRow& r : *rows) CourseOut(r, out->add_courses());
    if (more) {
      const CourseRow& last = rows->back();
      out->set_next_page_token(api::EncodePageToken(
          fingerprint,
          absl::StrCat(
              DayNumber(last.course.schedule().start_date()).value_or(0), " ",
              last.id)));
    }
    return absl::OkStatus();
  }));
}

absl::Status CoursesServiceImpl::DoUpdateCourse(
    const Rc& rc, const v1::UpdateCourseRequest& request, v1::Course* out) {
  Call call(this, rc, "UpdateCourse", "courses");
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  const int64_t today = DayOf(now);
  std::vector<std::pair<std::string, std::string>> promoted;
  absl::Status status =
      call.Write([&](Transaction& tx,
                     const agencies::LocalAgency& caller) -> absl::Status {
        promoted.clear();
        FieldViolations v;
        const v1::Course& c = request.course();
        if (!request.has_course()) v.Add("course", "is required");
        const std::string id =
            ParseSimpleName(c.name(), "courses", "course.name", &v);
        if (c.etag().empty()) v.Add("course.etag", "is required");
        if (request.update_mask().paths().empty()) {
          v.Add("update_mask", "is required");
        }
        const std::set<std::string> paths =
            ValidateCourseUpdate(request, today, &v);
        auto has = [&](const char* p) { return paths.count(p) > 0; };
        if (!v.empty()) return v.ToStatus();
        call.set_resource(CourseName(id));

        absl::StatusOr<CourseRow> row = LoadForChange(tx, caller, id, c.etag());
        if (!row.ok()) return row.status();
        if (absl::Status s = RequireOpen(*row); !s.ok()) return s;
        v1::Course& stored = row->course;
        const int new_kind = has("kind") ? c.kind() : stored.kind();
        const int new_level =
            has("target_level") ? c.target_level() : stored.target_level();
        if (has("kind") || has("target_level")) {
          ValidateLevel(new_kind, new_level, "course.target_level", &v);
          if (!v.empty()) return v.ToStatus();
        }
        if (has("kind") && c.kind() != stored.kind()) {
          absl::StatusOr<std::vector<BookingRow>> any =
              ListBookingRows(tx, BookingFilter{id, "", "", {}}, 0, "", 1);
          if (!any.ok()) return any.status();
          if (!any->empty()) {
            return Precondition(
                "TRANSITION_NOT_ALLOWED",
                "the kind cannot change after the first booking");
          }
        }
        if (has("capacity") && c.capacity() < stored.booked_seats()) {
          return Precondition(
              "CAPACITY_BELOW_BOOKINGS",
              absl::StrCat("the course has ", stored.booked_seats(),
                           " held and confirmed bookings"));
        }
        v1::CourseUpdated event;
        ApplyCourseUpdate(c, paths, &*row);
        Bump(&*row, now);
        if (absl::Status s = WriteCourse(tx, *row); !s.ok()) return s;
        event.set_course(CourseName(id));
        event.set_provider_agency(stored.provider_agency());
        for (const std::string& p : paths) event.add_changed_fields(p);
        *event.mutable_start_date() = stored.schedule().start_date();
        if (absl::Status s = Enqueue(tx, event, CourseName(id)); !s.ok())
          return s;
        // Raised capacity: the new seats go to the waitlist first.
        if (absl::Status s =
                FillFreeSeats(tx, &*row, now, options_.default_hold, &promoted);
            !s.ok()) {
          return s;
        }
        for (const auto& [person, record] : promoted)
          call.Touch(person, record);
        CourseOut(*row, out);
        return absl::OkStatus();
      });
  return call.Finish(status);
}

absl::Status CoursesServiceImpl::DoStartCourse(
    const Rc& rc, const v1::StartCourseRequest& request, v1::Course* out) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  Call call(this, rc, "StartCourse", "courses");
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  return call.Finish(call.Write([&](Transaction& tx,
                                    const agencies::LocalAgency& caller)
                                    -> absl::Status {
    FieldViolations v;
    const std::string id =
        ParseSimpleName(request.name(), "courses", "name", &v);
    if (request.etag().empty()) v.Add("etag", "is required");
    if (!v.empty()) return v.ToStatus();
    call.set_resource(CourseName(id));
    absl::StatusOr<CourseRow> row =
        LoadForChange(tx, caller, id, request.etag());
    if (!row.ok()) return row.status();
    if (row->course.state() != v1::COURSE_STATE_PLANNED) {
      return Precondition("TRANSITION_NOT_ALLOWED",
                          "only a PLANNED course can start");
    }
    absl::StatusOr<std::vector<BookingRow>> active = ListBookingRows(
        tx,
        BookingFilter{
            id, "", "", {v1::BOOKING_STATE_HELD, v1::BOOKING_STATE_CONFIRMED}},
        0, "", 1000);
    if (!active.ok()) return active.status();
    for (BookingRow& b : *active) {
      if (b.booking.state() != v1::BOOKING_STATE_HELD) continue;
      if (!request.cancel_pending_holds()) {
        return Precondition("HOLDS_PENDING",
                            "held bookings must be confirmed or cancelled "
                            "before the course starts");
      }
      if (absl::Status s =
              ReleaseBooking(tx, &*row, &b, v1::BOOKING_STATE_CANCELLED,
                             v1::BOOKING_CANCEL_REASON_PROVIDER_CANCELLED, now);
          !s.ok()) {
        return s;
      }
      call.Touch(b.booking.person(), BookingName(id, b.id));
    }
    row->course.set_state(v1::COURSE_STATE_RUNNING);
    for (BookingRow& b : *active) {
      if (b.booking.state() != v1::BOOKING_STATE_CONFIRMED) continue;
      b.booking.set_state(v1::BOOKING_STATE_ATTENDING);
      *b.booking.mutable_update_time() = api::ToTimestamp(now);
      ++b.version;
      if (absl::Status s = WriteBooking(tx, b); !s.ok()) return s;
      v1::CourseStarted event;
      absl::StatusOr<v1::BookingContext> context =
          ContextFor(tx, *row, BookingName(id, b.id), b.booking.person(),
                     b.booking.booking_agency(), b.booking.case_step(),
                     b.booking.entitlement());
      if (!context.ok()) return context.status();
      *event.mutable_context() = *context;
      if (absl::Status s = Enqueue(tx, event, b.booking.person()); !s.ok()) {
        return s;
      }
      call.Touch(b.booking.person(), BookingName(id, b.id));
    }
    Bump(&*row, now);
    std::vector<std::pair<std::string, std::string>> promoted;
    if (absl::Status s =
            FillFreeSeats(tx, &*row, now, options_.default_hold, &promoted);
        !s.ok()) {
      return s;
    }
    for (const auto& [person, record] : promoted) call.Touch(person, record);
    CourseOut(*row, out);
    return absl::OkStatus();
  }));
}

absl::Status CoursesServiceImpl::DoFinishCourse(
    const Rc& rc, const v1::FinishCourseRequest& request, v1::Course* out) {
  Call call(this, rc, "FinishCourse", "courses");
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  return call.Finish(
      call.Write([&](Transaction& tx,
                     const agencies::LocalAgency& caller) -> absl::Status {
        FieldViolations v;
        const std::string id =
            ParseSimpleName(request.name(), "courses", "name", &v);
        if (request.etag().empty()) v.Add("etag", "is required");
        if (!v.empty()) return v.ToStatus();
        call.set_resource(CourseName(id));
        absl::StatusOr<CourseRow> row =
            LoadForChange(tx, caller, id, request.etag());
        if (!row.ok()) return row.status();
        if (row->course.state() != v1::COURSE_STATE_RUNNING) {
          return Precondition("TRANSITION_NOT_ALLOWED",
                              "only a RUNNING course can finish");
        }
        absl::StatusOr<std::vector<BookingRow>> attending = ListBookingRows(
            tx, BookingFilter{id, "", "", {v1::BOOKING_STATE_ATTENDING}}, 0, "",
            1000);
        if (!attending.ok()) return attending.status();
        for (BookingRow& b : *attending) {
          b.booking.set_state(v1::BOOKING_STATE_COMPLETED);
          *b.booking.mutable_update_time() = api::ToTimestamp(now);
          ++b.version;
          if (absl::Status s = WriteBooking(tx, b); !s.ok()) return s;
          call.Touch(b.booking.person(), BookingName(id, b.id));
        }
        row->course.set_booked_seats(row->course.booked_seats() -
                                     static_cast<int>(attending->size()));
        absl::StatusOr<std::vector<WaitlistRow>> waiting = ListWaitlistRows(
            tx, id, "", {v1::WAITLIST_ENTRY_STATE_WAITING}, 0, 0, "", 1000);
        if (!waiting.ok()) return waiting.status();
        for (WaitlistRow& w : *waiting) {
          w.entry.set_state(v1::WAITLIST_ENTRY_STATE_REMOVED);
          *w.entry.mutable_update_time() = api::ToTimestamp(now);
          ++w.version;
          if (absl::Status s = WriteWaitlist(tx, w); !s.ok()) return s;
          v1::WaitlistLeft event;
          event.set_waitlist_entry(WaitlistName(id, w.id));
          event.set_state(v1::WAITLIST_ENTRY_STATE_REMOVED);
          absl::StatusOr<v1::BookingContext> context = ContextFor(
              tx, *row, "", w.entry.person(), w.entry.requesting_agency(),
              w.entry.case_step(), w.entry.entitlement());
          if (!context.ok()) return context.status();
          *event.mutable_context() = *context;
          if (absl::Status s = Enqueue(tx, event, w.entry.person()); !s.ok()) {
            return s;
          }
          call.Touch(w.entry.person(), WaitlistName(id, w.id));
        }
        row->course.set_waitlist_length(0);
        row->course.set_state(v1::COURSE_STATE_FINISHED);
        Bump(&*row, now);
        if (absl::Status s = WriteCourse(tx, *row); !s.ok()) return s;
        CourseOut(*row, out);
        return absl::OkStatus();
      }));
}

absl::Status CoursesServiceImpl::DoCancelCourse(
    const Rc& rc, const v1::CancelCourseRequest& request, v1::Course* out) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  Call call(this, rc, "CancelCourse", "courses");
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  return call.Finish(
      call.Write([&](Transaction& tx,
                     const agencies::LocalAgency& caller) -> absl::Status {
        FieldViolations v;
        const std::string id =
            ParseSimpleName(request.name(), "courses", "name", &v);
        if (request.etag().empty()) v.Add("etag", "is required");
        api::ValidateText(request.reason(), "reason", {1, 500}, &v);
        if (!v.empty()) return v.ToStatus();
        call.set_resource(CourseName(id));
        absl::StatusOr<CourseRow> row =
            LoadForChange(tx, caller, id, request.etag());
        if (!row.ok()) return row.status();
        if (row->course.state() != v1::COURSE_STATE_PLANNED &&
            row->course.state() != v1::COURSE_STATE_RUNNING) {
          return Precondition(
              "TRANSITION_NOT_ALLOWED",
              "only a PLANNED or RUNNING course can be cancelled");
        }
        // The course is CANCELLED first, so no freed seat goes to the waitlist.
        row->course.set_state(v1::COURSE_STATE_CANCELLED);
        row->course.set_cancel_reason(request.reason());
        absl::StatusOr<std::vector<BookingRow>> active = ListBookingRows(
            tx,
            BookingFilter{id,
                          "",
                          "",
                          {v1::BOOKING_STATE_HELD, v1::BOOKING_STATE_CONFIRMED,
                           v1::BOOKING_STATE_ATTENDING}},
            0, "", 1000);
        if (!active.ok()) return active.status();
        for (BookingRow& b : *active) {
          if (absl::Status s = ReleaseBooking(
                  tx, &*row, &b, v1::BOOKING_STATE_CANCELLED,
                  v1::BOOKING_CANCEL_REASON_COURSE_CANCELLED, now);
              !s.ok()) {
            return s;
          }
          call.Touch(b.booking.person(), BookingName(id, b.id));
        }
        absl::StatusOr<std::vector<WaitlistRow>> waiting = ListWaitlistRows(
            tx, id, "", {v1::WAITLIST_ENTRY_STATE_WAITING}, 0, 0, "", 1000);
        if (!waiting.ok()) return waiting.status();
        for (WaitlistRow& w : *waiting) {
          w.entry.set_state(v1::WAITLIST_ENTRY_STATE_REMOVED);
          *w.entry.mutable_update_time() = api::ToTimestamp(now);
          ++w.version;
          if (absl::Status s = WriteWaitlist(tx, w); !s.ok()) return s;
          v1::WaitlistLeft event;
          event.set_waitlist_entry(WaitlistName(id, w.id));
          event.set_state(v1::WAITLIST_ENTRY_STATE_REMOVED);
          absl::StatusOr<v1::BookingContext> context = ContextFor(
              tx, *row, "", w.entry.person(), w.entry.requesting_agency(),
              w.entry.case_step(), w.entry.entitlement());
          if (!context.ok()) return context.status();
          *event.mutable_context() = *context;
          if (absl::Status s = Enqueue(tx, event, w.entry.person()); !s.ok()) {
            return s;
          }
          call.Touch(w.entry.person(), WaitlistName(id, w.id));
        }
        row->course.set_waitlist_length(0);
        Bump(&*row, now);
        if (absl::Status s = WriteCourse(tx, *row); !s.ok()) return s;
        v1::CourseCancelled event;
        event.set_course(CourseName(id));
        event.set_provider_agency(row->course.provider_agency());
        event.set_reason(request.reason());
        event.set_cancelled_booking_count(static_cast<int>(active->size()));
        event.set_removed_waitlist_count(static_cast<int>(waiting->size()));
        if (absl::Status s = Enqueue(tx, event, CourseName(id)); !s.ok())
          return s;
        CourseOut(*row, out);
        return absl::OkStatus();
      }));
}

// --- SearchCourses ---
//
// Order: start date, then (with include_full) courses with free seats
// before full ones, then distance, then name. The store returns candidates
// by (start_day, id) with every filter but the exact distance and the
// weekday subset applied in SQL (by index: state/start, kind, municipality,
// or the lat/lon box around the postal code); the rest is filtered and
// sorted here, one start day at a time, so a page is exact and a page token
// (the last result's sort key) continues strictly after it.

namespace {

struct SearchKey {
  int64_t day = 0;
  int full = 0;
  double distance = 0;
  std::string id;
  bool operator<(const SearchKey& o) const {
    return std::tie(day, full, distance, id) <
           std::tie(o.day, o.full, o.distance, o.id);
  }
};

std::string EncodeKey(const SearchKey& k) {
  return absl::StrCat(k.day, " ", k.full, " ",
                      static_cast<int64_t>(k.distance * 1e6), " ", k.id);
}

bool DecodeKey(absl::string_view s, SearchKey* k) {
  std::vector<std::string> parts = absl::StrSplit(s, ' ');
  int64_t micro_km = 0;
  if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &k->day) ||
      !absl::SimpleAtoi(parts[1], &k->full) ||
      !absl::SimpleAtoi(parts[2], &micro_km)) {
    return false;
  }
  k->distance = static_cast<double>(micro_km) / 1e6;
  k->id = parts[3];
  return true;
}

// A parsed SearchCourses request: the store query and what the store does
// not filter on (distance, weekdays, the page's cursor).
struct SearchPlan {
  CourseSearch query;
  int page_size = 0;
  std::optional<geo::GeoPoint> origin;  // "near" searches
  double max_km = 0;
  int64_t allowed_days = 0;  // bit d set: weekday d allowed; 0: any
  std::string for_person;
  std::string fingerprint;  // of the filters, for page tokens
  bool has_after = false;   // a page token was given
  SearchKey after_key;
};

// Validates the place filter ("municipality_code" or "near") into `plan`.
void ParseSearchPlace(const v1::SearchCoursesRequest& request, SearchPlan* plan,
                      FieldViolations* v) {
  CourseSearch& q = plan->query;
  if (request.place_case() == v1::SearchCoursesRequest::kMunicipalityCode) {
    api::ValidateToken(request.municipality_code(), "municipality_code", 8, 8,
                       "0123456789", "eight digits", v);
    q.municipality_code = request.municipality_code();
  } else if (request.place_case() == v1::SearchCoursesRequest::kNear) {
    const v1::PostalCodeArea& near = request.near();
    if (near.postal_code().empty()) {
      v->Add("near.postal_code", "is required");
    } else if (!geo::IsPostalCodeSyntax(near.postal_code())) {
      v->Add("near.postal_code", "must be five digits");
    } else {
      plan->origin = geo::PostalCodeCentre(near.postal_code());
      if (!plan->origin) v->Add("near.postal_code", "unknown postal code");
    }
    if (near.max_distance_km() < 1 || near.max_distance_km() > 200) {
      v->Add("near.max_distance_km", "must be 1..200");
    }
    plan->max_km = near.max_distance_km();
    if (plan->origin) q.box = geo::BoxAround(*plan->origin, plan->max_km);
  }
}

// Validates the date, day-period and weekday filters into `plan`.
void ParseSearchSchedule(const v1::SearchCoursesRequest& request, int64_t today,
                         SearchPlan* plan, FieldViolations* v) {
  CourseSearch& q = plan->query;
  q.start_min = today;
  std::optional<int64_t> after =
      ValidateDate(request.start_after(), request.has_start_after(), false,
                   "start_after", v);
  if (after) q.start_min = std::max(today, *after);
  q.start_max = ValidateDate(request.start_before(), request.has_start_before(),
                             false, "start_before", v);
  if (after && q.start_max && *q.start_max < *after) {
    v->Add("start_before", "must not be before start_after");
  }
  for (int i = 0; i < request.day_periods_size(); ++i) {
    const int p = request.day_periods(i);
    if (p == 0 || !type::v1::DayPeriod_IsValid(p)) {
      v->Add(absl::StrCat("day_periods[", i, "]"), "unknown day period");
    }
    q.day_periods.push_back(p);
  }
  for (int i = 0; i < request.weekdays_size(); ++i) {
    const int d = request.weekdays(i);
    if (d < 1 || d > 7) {
      v->Add(absl::StrCat("weekdays[", i, "]"), "must be a day of the week");
      continue;  // no bit for it: a shift by any int is undefined
    }
    plan->allowed_days |= int64_t{1} << d;
  }
}

// Validates the whole request (every bad field at once) into `plan`.
void ParseSearch(const v1::SearchCoursesRequest& request, int64_t today,
                 SearchPlan* plan, FieldViolations* v) {
  plan->page_size = api::NormalizePageSize(request.page_size(), "page_size", v);
  CourseSearch& q = plan->query;
  for (int i = 0; i < request.kinds_size(); ++i) {
    const int k = request.kinds(i);
    if (k == 0 || !v1::CourseKind_IsValid(k)) {
      v->Add(absl::StrCat("kinds[", i, "]"), "unknown course kind");
    }
    q.kinds.push_back(k);
  }
  if (!type::v1::CefrLevel_IsValid(request.target_level())) {
    v->Add("target_level", "unknown level");
  }
  q.target_level = request.target_level();
  ParseSearchPlace(request, plan, v);
  ParseSearchSchedule(request, today, plan, v);
  q.childcare_required = request.childcare_required();
  q.include_full = request.include_full();
  plan->for_person =
      ParsePerson(request.for_person(), "for_person", v, /*required=*/false);
  v1::SearchCoursesRequest filters = request;
  filters.clear_page_size();
  filters.clear_page_token();
  plan->fingerprint = absl::StrCat(today, "|", filters.SerializeAsString());
  const std::string token = api::DecodePageToken(
      request.page_token(), plan->fingerprint, "page_token", v);
  plan->has_after = !token.empty();
  if (plan->has_after && !DecodeKey(token, &plan->after_key)) {
    v->Add("page_token", "is malformed");
  }
}

// The course kinds the person's ACTIVE or PENDING entitlements cover.
absl::StatusOr<std::set<int>> CoveredKinds(Transaction& tx,
                                           const std::string& person,
                                           int64_t today) {
  absl::StatusOr<std::vector<EntitlementRow>> rows =
      ListEntitlementRows(tx, person, "", 0, "", 500);
  if (!rows.ok()) return rows.status();
  std::set<int> covered;
  for (const EntitlementRow& e : *rows) {
    const v1::EntitlementState st = EntitlementStateAt(e, today);
    if (st != v1::ENTITLEMENT_STATE_ACTIVE &&
        st != v1::ENTITLEMENT_STATE_PENDING) {
      continue;
    }
    for (int k : e.entitlement.course_kinds()) covered.insert(k);
  }
  return covered;
}

// The search keys of the courses matching `plan` after its cursor, in no
// particular order: at least the next page and everything that starts on
// the same day as the page's last course. Candidates (index columns only)
// are read in chunks that start at about a page and double, so a selective
// search reads little and a sparse one few round trips.
absl::StatusOr<std::vector<SearchKey>> ScanSearchKeys(Transaction& tx,
                                                      SearchPlan& plan) {
  CourseSearch& q = plan.query;
  const int page_size = plan.page_size;
  std::vector<SearchKey> found;
  int64_t cursor_day = plan.has_after ? plan.after_key.day : 0;
  std::string cursor_id;
  if (plan.has_after) q.start_min = std::max(q.start_min, plan.after_key.day);
  int chunk = std::max(32, 2 * (page_size + 1));
  while (true) {
    const int limit = chunk;
    chunk = std::min(4096, chunk * 2);
    absl::StatusOr<std::vector<CourseCandidate>> rows =
        SearchCourseCandidates(tx, q, cursor_day, cursor_id, limit);
    if (!rows.ok()) return rows.status();
    for (const CourseCandidate& c : *rows) {
      if (plan.allowed_days != 0 && (c.weekdays & ~plan.allowed_days) != 0) {
        continue;
      }
      SearchKey key;
      key.day = c.start_day;
      key.full = c.booked >= c.capacity ? 1 : 0;
      key.id = c.id;
      if (plan.origin) {
        if (!c.position) continue;
        key.distance = geo::DistanceKm(*plan.origin, *c.position);
        if (key.distance > plan.max_km) continue;
        // Distances are compared at the precision the token keeps.
        key.distance =
            static_cast<double>(static_cast<int64_t>(key.distance * 1e6)) / 1e6;
      }
      if (plan.has_after && !(plan.after_key < key)) continue;
      found.push_back(std::move(key));
    }
    if (static_cast<int>(rows->size()) < limit) break;  // exhausted
    cursor_day = rows->back().start_day;
    cursor_id = rows->back().id;
    // Done once more than a page is found and the scan has moved past
    // the start day of the page's last result (that day is complete).
    if (static_cast<int>(found.size()) > page_size) {
      std::nth_element(found.begin(), found.begin() + page_size, found.end());
      if (cursor_day > found[page_size].day) break;
    }
  }
  return found;
}

// Sorts `found`, reads the page's courses in full (only those) and writes
// the page and its next page token to `out`.
absl::Status WriteSearchPage(Transaction& tx, const SearchPlan& plan,
                             std::vector<SearchKey> found,
                             v1::SearchCoursesResponse* out) {
  std::sort(found.begin(), found.end());
  const bool more = static_cast<int>(found.size()) > plan.page_size;
  if (more) found.resize(plan.page_size);
  std::vector<std::string> ids;
  for (const SearchKey& key : found) ids.push_back(key.id);
  absl::StatusOr<std::vector<CourseRow>> rows = ReadCourses(tx, ids);
  if (!rows.ok()) return rows.status();
  std::map<std::string, const CourseRow*> by_id;
  for (const CourseRow& r : *rows) by_id[r.id] = &r;
  for (const SearchKey& key : found) {
    auto it = by_id.find(key.id);
    if (it == by_id.end()) continue;
    v1::CourseSearchResult* result = out->add_results();
    CourseOut(*it->second, result->mutable_course());
    result->set_distance_km(plan.origin ? key.distance : 0);
  }
  if (more) {
    out->set_next_page_token(
        api::EncodePageToken(plan.fingerprint, EncodeKey(found.back())));
  }
  return absl::OkStatus();
}

// SearchCourses for a person: once the caller may read the person's
// LANGUAGE data, keeps in `query` only the kinds the person's usable
// entitlements cover. False when none is left.
absl::StatusOr<bool> NarrowToPersonKinds(CoursesServiceImpl& service,
                                         CoursesServiceImpl::Call& call,
                                         int64_t today, CourseSearch* query,
                                         const std::string& for_person) {
  std::string survivor = for_person;
  bool serves = false;
  absl::Status read =
      call.Read([&](Transaction& tx, const agencies::LocalAgency& caller) {
        absl::StatusOr<std::string> s = ResolveMerged(tx, for_person);
        if (!s.ok()) return s.status();
        survivor = *s;
        absl::StatusOr<bool> sv = AgencyServesPerson(tx, caller.id, survivor);
        if (!sv.ok()) return sv.status();
        serves = *sv;
        call.Touch(survivor, "entitlements");
        return absl::OkStatus();
      });
  if (!read.ok()) return read;
  absl::Status allowed =
      AuthorizeLanguageRead(service, call, survivor, /*owner=*/false, serves);
  if (!allowed.ok()) return allowed;
  std::set<int> covered;
  read = call.Read([&](Transaction& tx, const agencies::LocalAgency&) {
    absl::StatusOr<std::set<int>> kinds = CoveredKinds(tx, survivor, today);
    if (!kinds.ok()) return kinds.status();
    covered = *std::move(kinds);
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  std::vector<int> kinds;
  for (int k : covered) {
    if (query->kinds.empty() ||
        std::find(query->kinds.begin(), query->kinds.end(), k) !=
            query->kinds.end()) {
      kinds.push_back(k);
    }
  }
  if (kinds.empty()) return false;
  query->kinds = kinds;
  return true;
}

}  // namespace

absl::Status CoursesServiceImpl::DoSearchCourses(
    const Rc& rc, const v1::SearchCoursesRequest& request,
    v1::SearchCoursesResponse* out) {
  Call call(this, rc, "SearchCourses", "courses");
  call.set_audit_personal_only();
  const int64_t today = DayOf(options_.clock());
  SearchPlan plan;
  FieldViolations v;
  ParseSearch(request, today, &plan, &v);
  if (!v.empty()) return call.Finish(v.ToStatus());
  if (!plan.for_person.empty()) {
    absl::StatusOr<bool> any =
        NarrowToPersonKinds(*this, call, today, &plan.query, plan.for_person);
    if (!any.ok()) return call.Finish(any.status());
    if (!*any) return call.Finish(absl::OkStatus());
  }
  absl::Status status =
      call.Read([&](Transaction& tx, const agencies::LocalAgency&) {
        out->Clear();
        absl::StatusOr<std::vector<SearchKey>> found = ScanSearchKeys(tx, plan);
        if (!found.ok()) return found.status();
        return WriteSearchPage(tx, plan, *std::move(found), out);
      });
  return call.Finish(status);
}

}  // namespace lotse::courses
