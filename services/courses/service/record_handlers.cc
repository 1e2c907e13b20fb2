// Attendance and results: RecordAttendance, ListAttendanceRecords,
// RecordCourseResult, GetCourseResult, ListCourseResults.
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "services/courses/domain/dates.h"
#include "services/courses/service/internal.h"

namespace lotse::courses {

using ::lotse::storage::Transaction;

namespace {

// A booking and its course, loaded for a provider's record.
struct Participant {
  BookingRow booking;
  CourseRow course;
};

absl::StatusOr<Participant> LoadParticipant(Transaction& tx,
                                            const std::string& course_id,
                                            const std::string& booking_id,
                                            const std::string& name) {
  absl::StatusOr<std::optional<BookingRow>> b = ReadBooking(tx, booking_id);
  if (!b.ok()) return b.status();
  absl::StatusOr<std::optional<CourseRow>> c = ReadCourse(tx, course_id);
  if (!c.ok()) return c.status();
  if (!b->has_value() || !c->has_value() || (*b)->course_id != course_id) {
    return NotFound("BOOKING", name);
  }
  return Participant{**b, **c};
}

// Owner of a booking's records: booking agency, provider, entitlement
// issuer; else whether the caller serves the person.
absl::Status DecideRead(CoursesServiceImpl& service,
                        const server::RequestContext& rc, Transaction& tx,
                        const agencies::LocalAgency& caller,
                        const Participant& p, bool* owner, bool* serves) {
  *owner = p.booking.booking.booking_agency() == caller.name() ||
           p.course.course.provider_agency() == caller.name();
  *serves = false;
  if (!*owner) {
    absl::StatusOr<std::optional<EntitlementRow>> e =
        ReadEntitlement(tx, p.booking.entitlement_id);
    if (!e.ok()) return e.status();
    *owner =
        e->has_value() && (*e)->entitlement.issuing_agency() == caller.name();
  }
  if (!*owner) {
    absl::StatusOr<bool> s =
        AgencyServesPerson(tx, caller.id, p.booking.booking.person());
    if (!s.ok()) return s.status();
    *serves = *s;
  }
  return absl::OkStatus();
}

bool ScaledExam(int exam) {
  return exam == v1::EXAM_KIND_DTZ || exam == v1::EXAM_KIND_DTB;
}

// Validates a result (every bad field at once): exam, level and pass
// agree; an exam has a date, not in the future. Returns the exam's day
// number, if any.
std::optional<int64_t> ValidateResult(const v1::CourseResult& in, int64_t today,
                                      FieldViolations* v) {
  const int exam = in.exam();
  if (exam == v1::EXAM_KIND_UNSPECIFIED) {
    v->Add("result.exam", "is required");
  } else if (!v1::ExamKind_IsValid(exam)) {
    v->Add("result.exam", "unknown exam kind");
  }
  const int level = in.achieved_level();
  if (!type::v1::CefrLevel_IsValid(level)) {
    v->Add("result.achieved_level", "unknown level");
  } else if (exam == v1::EXAM_KIND_NONE) {
    if (in.passed()) v->Add("result.passed", "must be false without an exam");
    if (level != 0) {
      v->Add("result.achieved_level", "must be unset without an exam");
    }
  } else if (!in.passed() && level != 0 && !ScaledExam(exam)) {
    v->Add("result.achieved_level",
           "must be unset when the exam was not passed (except DTZ, DTB)");
  } else if (in.passed() && level == 0 &&
             exam != v1::EXAM_KIND_LEBEN_IN_DEUTSCHLAND) {
    v->Add("result.achieved_level", "is required for a passed language exam");
  }
  std::optional<int64_t> exam_day;
  if (exam != v1::EXAM_KIND_NONE) {
    exam_day = ValidateDate(in.exam_date(), in.has_exam_date(), true,
                            "result.exam_date", v);
    if (exam_day && *exam_day > today) {
      v->Add("result.exam_date", "must not be in the future");
    }
  } else if (in.has_exam_date()) {
    exam_day = ValidateDate(in.exam_date(), true, false, "result.exam_date", v);
  }
  api::ValidateText(in.certificate_reference(), "result.certificate_reference",
                    {0, 64}, v);
  return exam_day;
}

// A participant with a result has completed the course: the booking
// becomes COMPLETED and no longer holds a seat. Writes both.
absl::Status CompleteParticipant(Transaction& tx, BookingRow* b, CourseRow* c,
                                 absl::Time now) {
  b->booking.set_state(v1::BOOKING_STATE_COMPLETED);
  *b->booking.mutable_update_time() = api::ToTimestamp(now);
  ++b->version;
  if (absl::Status s = WriteBooking(tx, *b); !s.ok()) return s;
  c->course.set_booked_seats(std::max(0, c->course.booked_seats() - 1));
  Bump(c, now);
  return WriteCourse(tx, *c);
}

// Validates an attendance record (every bad field at once): a day not in
// the future, a status, 0..12 units. Returns the day number, if valid.
std::optional<int64_t> ValidateAttendance(const v1::AttendanceRecord& in,
                                          int64_t today, FieldViolations* v) {
  std::optional<int64_t> day =
      ValidateDate(in.date(), in.has_date(), true, "attendance_record.date", v);
  if (day && *day > today) {
    v->Add("attendance_record.date", "must not be in the future");
  }
  if (in.status() == v1::ATTENDANCE_STATUS_UNSPECIFIED) {
    v->Add("attendance_record.status", "is required");
  } else if (!v1::AttendanceStatus_IsValid(in.status())) {
    v->Add("attendance_record.status", "unknown attendance status");
  }
  if (in.units_attended() < 0 || in.units_attended() > 12) {
    v->Add("attendance_record.units_attended", "must be 0..12");
  }
  return day;
}

// Answers a repeated RecordAttendance with the record `name` the first one
// wrote for the booking's `day`.
absl::Status ReplayAttendance(Transaction& tx, const std::string& booking_id,
                              int64_t day, const std::string& name,
                              v1::AttendanceRecord* out) {
  absl::StatusOr<std::vector<v1::AttendanceRecord>> rows =
      ListAttendance(tx, booking_id, day - 1, 1);
  if (!rows.ok()) return rows.status();
  if (rows->empty() || rows->front().name() != name) {
    return NotFound("ATTENDANCE", name);
  }
  *out = rows->front();
  return absl::OkStatus();
}

// Attendance is recorded for an ATTENDING booking, for a day from the
// course's start on.
absl::Status CheckAttendanceDay(const Participant& p, int64_t day) {
  if (p.booking.booking.state() != v1::BOOKING_STATE_ATTENDING) {
    return Precondition("TRANSITION_NOT_ALLOWED",
                        "attendance is recorded for ATTENDING bookings");
  }
  const int64_t start =
      DayNumber(p.course.course.schedule().start_date()).value_or(0);
  if (day < start) {
    FieldViolations late;
    late.Add("attendance_record.date",
             "must not be before the course's start date");
    return late.ToStatus();
  }
  return absl::OkStatus();
}

// The event of a new attendance `record` of the booking `parent`, with the
// booking's totals so far (the record included).
absl::StatusOr<v1::AttendanceRecorded> AttendanceRecordedEvent(
    Transaction& tx, const Participant& p, const std::string& parent,
    const std::string& booking_id, const v1::AttendanceRecord& record) {
  absl::StatusOr<AttendanceTotals> totals = AttendanceTotalsOf(tx, booking_id);
  if (!totals.ok()) return totals.status();
  v1::AttendanceRecorded event;
  const v1::Booking& b = p.booking.booking;
  absl::StatusOr<v1::BookingContext> context =
      ContextFor(tx, p.course, parent, b.person(), b.booking_agency(),
                 b.case_step(), b.entitlement());
  if (!context.ok()) return context.status();
  *event.mutable_context() = *context;
  *event.mutable_record() = record;
  event.set_units_attended_total(static_cast<int32_t>(totals->units));
  event.set_unexcused_absence_days_total(
      static_cast<int32_t>(totals->unexcused_days));
  return event;
}

}  // namespace

absl::Status CoursesServiceImpl::DoRecordAttendance(
    const Rc& rc, const v1::RecordAttendanceRequest& request,
    v1::AttendanceRecord* out) {
  Call call(this, rc, "RecordAttendance", "courses");
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  const int64_t today = DayOf(now);
  FieldViolations v;
  std::string course_id, booking_id;
  ParseChildName(request.parent(), "bookings", "", "parent", &v, &course_id,
                 &booking_id);
  api::ValidateRequestId(request.request_id(), "request_id", &v);
  const v1::AttendanceRecord& in = request.attendance_record();
  const std::optional<int64_t> day = ValidateAttendance(in, today, &v);
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.parent());
  return call.Finish(
      call.Write([&](Transaction& tx,
                     const agencies::LocalAgency& caller) -> absl::Status {
        absl::StatusOr<Participant> p =
            LoadParticipant(tx, course_id, booking_id, request.parent());
        if (!p.ok()) return p.status();
        // Nothing new is recorded about an erased person.
        if (IsAnonymised(p->booking)) {
          return NotFound("BOOKING", request.parent());
        }
        const std::string& person = p->booking.booking.person();
        call.Touch(person, request.parent());
        if (p->course.course.provider_agency() != caller.name()) {
          return Denied("NOT_COURSE_PROVIDER",
                        "only the course's provider records attendance");
        }
        const api::IdempotentCreate once(caller.id, rc.method, request);
        absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
        if (!seen.ok()) return seen.status();
        if (seen->has_value()) {
          return ReplayAttendance(tx, booking_id, *day, **seen, out);
        }
        if (absl::Status s = CheckAttendanceDay(*p, *day); !s.ok()) return s;
        absl::StatusOr<std::string> id = api::NewId();
        if (!id.ok()) return id.status();
        v1::AttendanceRecord record;
        record.set_name(absl::StrCat(request.parent(), "/attendance/", *id));
        *record.mutable_date() = in.date();
        record.set_status(in.status());
        record.set_units_attended(in.units_attended());
        record.set_recording_actor(rc.actor);
        *record.mutable_create_time() = api::ToTimestamp(now);
        absl::StatusOr<bool> inserted =
            InsertAttendance(tx, booking_id, *day, record);
        if (!inserted.ok()) return inserted.status();
        if (!*inserted) {
          return ErrorWithReason(absl::StatusCode::kAlreadyExists,
                                 "ATTENDANCE_EXISTS",
                                 "attendance for this day is already recorded");
        }
        absl::StatusOr<v1::AttendanceRecorded> event = AttendanceRecordedEvent(
            tx, *p, request.parent(), booking_id, record);
        if (!event.ok()) return event.status();
        if (absl::Status s = Enqueue(tx, *event, person); !s.ok()) return s;
        if (absl::Status s = once.Record(tx, record.name()); !s.ok()) {
          return s;
        }
        call.Touch(person, record.name());
        *out = record;
        return absl::OkStatus();
      }));
}

absl::Status CoursesServiceImpl::DoListAttendanceRecords(
    const Rc& rc, const v1::ListAttendanceRecordsRequest& request,
    v1::ListAttendanceRecordsResponse* out) {
  Call call(this, rc, "ListAttendanceRecords", "courses");
  FieldViolations v;
  std::string course_id, booking_id;
  ParseChildName(request.parent(), "bookings", "", "parent", &v, &course_id,
                 &booking_id);
  const int page_size =
      api::NormalizePageSize(request.page_size(), "page_size", &v);
  const std::string token = api::DecodePageToken(
      request.page_token(), request.parent(), "page_token", &v);
  int64_t after_day = -1000000;
  if (!token.empty() && !absl::SimpleAtoi(token, &after_day)) {
    v.Add("page_token", "is malformed");
  }
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.parent());
  bool owner = false, serves = false;
  std::string person;
  absl::Status status = call.Read([&](Transaction& tx,
                                      const agencies::LocalAgency& caller) {
    out->Clear();
    absl::StatusOr<Participant> p =
        LoadParticipant(tx, course_id, booking_id, request.parent());
    if (!p.ok()) return p.status();
    person = p->booking.booking.person();
    call.Touch(person, request.parent());
    if (absl::Status s = DecideRead(*this, rc, tx, caller, *p, &owner, &serves);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::vector<v1::AttendanceRecord>> rows =
        ListAttendance(tx, booking_id, after_day, page_size + 1);
    if (!rows.ok()) return rows.status();
    const bool more = static_cast<int>(rows->size()) > page_size;
    if (more) rows->resize(page_size);
    for (const v1::AttendanceRecord& r : *rows) {
      *out->add_attendance_records() = r;
    }
    if (more) {
      out->set_next_page_token(api::EncodePageToken(
          request.parent(),
          absl::StrCat(DayNumber(rows->back().date()).value_or(0))));
    }
    return absl::OkStatus();
  });
  if (status.ok()) {
    status = AuthorizeLanguageRead(*this, call, person, owner, serves);
    if (!status.ok()) out->Clear();
  }
  return call.Finish(status);
}

absl::Status CoursesServiceImpl::DoRecordCourseResult(
    const Rc& rc, const v1::RecordCourseResultRequest& request,
    v1::CourseResult* out) {
  Call call(this, rc, "RecordCourseResult", "courses");
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  const int64_t today = DayOf(now);
  FieldViolations v;
  std::string course_id, booking_id;
  ParseChildName(request.parent(), "bookings", "", "parent", &v, &course_id,
                 &booking_id);
  api::ValidateRequestId(request.request_id(), "request_id", &v);
  const v1::CourseResult& in = request.result();
  const std::optional<int64_t> exam_day = ValidateResult(in, today, &v);
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.parent());
  return call.Finish(
      call.Write([&](Transaction& tx,
                     const agencies::LocalAgency& caller) -> absl::Status {
        if (absl::Status s = LockCourse(tx, course_id); !s.ok()) return s;
        absl::StatusOr<Participant> p =
            LoadParticipant(tx, course_id, booking_id, request.parent());
        if (!p.ok()) return p.status();
        if (IsAnonymised(p->booking)) {
          return NotFound("BOOKING", request.parent());
        }
        const std::string person = p->booking.booking.person();
        const std::string name = ResultName(course_id, booking_id);
        call.Touch(person, name);
        if (p->course.course.provider_agency() != caller.name()) {
          return Denied("NOT_COURSE_PROVIDER",
                        "only the course's provider records results");
        }
        const api::IdempotentCreate once(caller.id, rc.method, request);
        absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
        if (!seen.ok()) return seen.status();
        if (seen->has_value()) {
          absl::StatusOr<std::optional<v1::CourseResult>> first =
              ReadResult(tx, booking_id);
          if (!first.ok()) return first.status();
          if (!first->has_value()) return NotFound("RESULT", name);
          *out = **first;
          return absl::OkStatus();
        }
        const v1::BookingState state = p->booking.booking.state();
        if (state != v1::BOOKING_STATE_ATTENDING &&
            state != v1::BOOKING_STATE_COMPLETED) {
          return Precondition("TRANSITION_NOT_ALLOWED",
                              "results are recorded for ATTENDING or COMPLETED "
                              "bookings");
        }
        v1::CourseResult result;
        result.set_name(name);
        result.set_person(person);
        result.set_exam(in.exam());
        result.set_passed(in.passed());
        result.set_achieved_level(in.achieved_level());
        if (in.has_exam_date()) *result.mutable_exam_date() = in.exam_date();
        result.set_certificate_reference(in.certificate_reference());
        *result.mutable_create_time() = api::ToTimestamp(now);
        absl::StatusOr<bool> inserted = InsertResult(
            tx, booking_id, exam_day.value_or(today), ToMicros(now), result);
        if (!inserted.ok()) return inserted.status();
        if (!*inserted) {
          return ErrorWithReason(
              absl::StatusCode::kAlreadyExists, "RESULT_EXISTS",
              "the booking already has a result", {{"result", name}});
        }
        BookingRow b = p->booking;
        CourseRow c = p->course;
        if (state == v1::BOOKING_STATE_ATTENDING) {
          if (absl::Status s = CompleteParticipant(tx, &b, &c, now); !s.ok()) {
            return s;
          }
        }
        v1::CourseResultRecorded event;
        absl::StatusOr<v1::BookingContext> context = ContextFor(
            tx, c, request.parent(), person, b.booking.booking_agency(),
            b.booking.case_step(), b.booking.entitlement());
        if (!context.ok()) return context.status();
        *event.mutable_context() = *context;
        event.set_result(name);
        event.set_exam(result.exam());
        event.set_passed(result.passed());
        event.set_achieved_level(result.achieved_level());
        *event.mutable_exam_date() = result.exam_date();
        if (absl::Status s = Enqueue(tx, event, person); !s.ok()) return s;
        if (absl::Status s = once.Record(tx, name); !s.ok()) {
          return s;
        }
        *out = result;
        return absl::OkStatus();
      }));
}

absl::Status CoursesServiceImpl::DoGetCourseResult(
    const Rc& rc, const v1::GetCourseResultRequest& request,
    v1::CourseResult* out) {
  Call call(this, rc, "GetCourseResult", "courses");
  FieldViolations v;
  std::string course_id, booking_id;
  ParseChildName(request.name(), "bookings", "result", "name", &v, &course_id,
                 &booking_id);
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.name());
  bool owner = false, serves = false;
  absl::Status status = call.Read([&](Transaction& tx,
                                      const agencies::LocalAgency& caller) {
    absl::StatusOr<Participant> p = LoadParticipant(
        tx, course_id, booking_id, BookingName(course_id, booking_id));
    if (!p.ok()) return p.status();
    call.Touch(p->booking.booking.person(), request.name());
    if (absl::Status s = DecideRead(*this, rc, tx, caller, *p, &owner, &serves);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::optional<v1::CourseResult>> r =
        ReadResult(tx, booking_id);
    if (!r.ok()) return r.status();
    if (!r->has_value()) return NotFound("RESULT", request.name());
    *out = **r;
    return absl::OkStatus();
  });
  if (status.ok()) {
    status = AuthorizeLanguageRead(*this, call, out->person(), owner, serves);
    if (!status.ok()) out->Clear();
  }
  return call.Finish(status);
}

absl::Status CoursesServiceImpl::DoListCourseResults(
    const Rc& rc, const v1::ListCourseResultsRequest& request,
    v1::ListCourseResultsResponse* out) {
  Call call(this, rc, "ListCourseResults", "courses");
  FieldViolations v;
  std::string person = ParsePerson(request.person(), "person", &v);
  const int page_size =
      api::NormalizePageSize(request.page_size(), "page_size", &v);
  const std::string token = api::DecodePageToken(
      request.page_token(), request.person(), "page_token", &v);
  int64_t before_day = 0;
  std::string before_id;
  if (!token.empty()) {
    std::vector<std::string> parts = absl::StrSplit(token, ' ');
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &before_day)) {
      v.Add("page_token", "is malformed");
    } else {
      before_id = parts[1];
    }
  }
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_person_target(person, "results");
  std::vector<std::pair<v1::CourseResult, bool>> rows;  // (result, owner)
  bool serves = false;
  std::string last_key;
  absl::Status status =
      call.Read([&](Transaction& tx, const agencies::LocalAgency& caller) {
        rows.clear();
        last_key.clear();
        absl::StatusOr<std::string> s = ResolveMerged(tx, person);
        if (!s.ok()) return s.status();
        person = *s;
        absl::StatusOr<bool> sv = AgencyServesPerson(tx, caller.id, person);
        if (!sv.ok()) return sv.status();
        serves = *sv;
        absl::StatusOr<std::vector<ResultRow>> found =
            ListResultRows(tx, person, before_day, before_id, page_size + 1);
        if (!found.ok()) return found.status();
        const bool more = static_cast<int>(found->size()) > page_size;
        if (more) found->resize(page_size);
        for (ResultRow& r : *found) {
          std::string course_id, booking_id;
          FieldViolations ignored;
          ParseChildName(r.result.name(), "bookings", "result", "name",
                         &ignored, &course_id, &booking_id);
          absl::StatusOr<Participant> p =
              LoadParticipant(tx, course_id, booking_id, r.result.name());
          bool owner = false, unused = false;
          if (p.ok()) {
            if (absl::Status st =
                    DecideRead(*this, rc, tx, caller, *p, &owner, &unused);
                !st.ok()) {
              return st;
            }
          }
          if (more) last_key = absl::StrCat(r.exam_day, " ", r.booking_id);
          rows.emplace_back(std::move(r.result), owner);
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return call.Finish(status);
  std::optional<bool> allowed;
  for (const auto& [result, owner] : rows) {
    if (!owner) {
      if (!allowed) {
        allowed =
            AuthorizeLanguageRead(*this, call, person, false, serves).ok();
      }
      if (!*allowed) continue;
    }
    *out->add_results() = result;
    call.Touch(person, result.name());
  }
  if (!last_key.empty()) {
    out->set_next_page_token(api::EncodePageToken(request.person(), last_key));
  }
  return call.Finish(absl::OkStatus());
}

}  // namespace lotse::courses
