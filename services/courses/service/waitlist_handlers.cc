// The waitlist: JoinWaitlist, GetWaitlistEntry, ListWaitlistEntries,
// LeaveWaitlist. Entries are promoted to bookings by FillFreeSeats
// (seats.cc) whenever a seat frees up.
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

// The entry a request_id already created (JoinWaitlist's replay).
absl::Status ReplayWaitlistEntry(Transaction& tx, const std::string& name,
                                 CoursesServiceImpl::Call& call,
                                 v1::WaitlistEntry* out) {
  std::string course, id;
  FieldViolations ignored;
  if (!ParseChildName(name, "waitlistEntries", "", "entry", &ignored, &course,
                      &id)) {
    return absl::InternalError("recorded entry name does not parse");
  }
  absl::StatusOr<std::optional<WaitlistRow>> first = ReadWaitlist(tx, id);
  if (!first.ok()) return first.status();
  if (!first->has_value()) return NotFound("WAITLIST_ENTRY", name);
  call.Touch((*first)->entry.person(), name);
  return WaitlistOut(tx, **first, out);
}

// Puts `person` on the waitlist of `course` (locked, full), to be paid by
// `entitlement` when promoted: writes the entry and the course, fills
// `out` and enqueues WaitlistJoined (with the entry's position).
absl::StatusOr<WaitlistRow> StoreWaitlistEntry(
    Transaction& tx, CourseRow* course, const EntitlementRow& entitlement,
    const std::string& person, const std::string& case_step,
    const std::string& agency, absl::Time now, v1::WaitlistEntry* out) {
  absl::StatusOr<std::string> id = api::NewId();
  if (!id.ok()) return id.status();
  absl::StatusOr<int64_t> seq = NextWaitlistSeq(tx, course->id);
  if (!seq.ok()) return seq.status();
  WaitlistRow w;
  w.id = *id;
  w.course_id = course->id;
  w.seq = *seq;
  w.create_us = ToMicros(now);
  w.entry.set_person(person);
  w.entry.set_entitlement(EntitlementName(entitlement.id));
  w.entry.set_case_step(case_step);
  w.entry.set_requesting_agency(agency);
  w.entry.set_priority(PriorityFor(entitlement.entitlement.kind() ==
                                   v1::ENTITLEMENT_KIND_OBLIGATION));
  w.entry.set_state(v1::WAITLIST_ENTRY_STATE_WAITING);
  *w.entry.mutable_create_time() = api::ToTimestamp(now);
  *w.entry.mutable_update_time() = api::ToTimestamp(now);
  if (absl::Status s = InsertWaitlist(tx, w); !s.ok()) return s;
  course->course.set_waitlist_length(course->course.waitlist_length() + 1);
  Bump(course, now);
  if (absl::Status s = WriteCourse(tx, *course); !s.ok()) return s;
  if (absl::Status s = WaitlistOut(tx, w, out); !s.ok()) return s;
  v1::WaitlistJoined event;
  event.set_waitlist_entry(WaitlistName(course->id, w.id));
  absl::StatusOr<v1::BookingContext> context = ContextFor(
      tx, *course, "", person, agency, case_step, w.entry.entitlement());
  if (!context.ok()) return context.status();
  *event.mutable_context() = *context;
  event.set_priority(w.entry.priority());
  event.set_position(out->position());
  if (absl::Status s = Enqueue(tx, event, person); !s.ok()) return s;
  return w;
}

}  // namespace

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
    if (seen->has_value()) return ReplayWaitlistEntry(tx, **seen, call, out);
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
    if (FreeSeats(course.course.capacity(), course.course.booked_seats()) > 0) {
      return Precondition("COURSE_HAS_FREE_SEATS",
                          "a seat is free; book it instead");
    }
    absl::StatusOr<WaitlistRow> w =
        StoreWaitlistEntry(tx, &course, *entitlement, *survivor, in.case_step(),
                           caller.name(), now, out);
    if (!w.ok()) return w.status();
    const std::string name = WaitlistName(course_id, w->id);
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
    status = AuthorizeLanguageRead(*this, call, out->person(), right.owner,
                                   right.serves);
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
  ReadDecider decider(*this, call);
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

}  // namespace lotse::courses
