#include "services/courses/service/courses_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/api/etag.h"
#include "common/audit/audit_log.h"
#include "common/events/outbox.h"
#include "common/server/handler.h"
#include "common/server/log.h"
#include "lotse/events/v1/events.pb.h"
#include "services/courses/domain/dates.h"
#include "services/courses/service/internal.h"

namespace lotse::courses {

using ::lotse::storage::Transaction;

// --- names ---

std::string CourseName(absl::string_view id) {
  return absl::StrCat("courses/", id);
}
std::string BookingName(absl::string_view course, absl::string_view id) {
  return absl::StrCat("courses/", course, "/bookings/", id);
}
std::string WaitlistName(absl::string_view course, absl::string_view id) {
  return absl::StrCat("courses/", course, "/waitlistEntries/", id);
}
std::string EntitlementName(absl::string_view id) {
  return absl::StrCat("entitlements/", id);
}
std::string AgencyName(absl::string_view id) {
  return absl::StrCat("agencies/", id);
}
std::string ResultName(absl::string_view course, absl::string_view booking) {
  return absl::StrCat(BookingName(course, booking), "/result");
}

std::string AgencyIdOf(absl::string_view name) {
  std::vector<std::string> ids;
  if (!api::MatchName(name, api::kAgencyName, &ids)) return "";
  return ids.front();
}

std::string ParseSimpleName(absl::string_view name,
                            absl::string_view collection,
                            const std::string& field,
                            FieldViolations* violations) {
  return api::ParseNameId(name, absl::StrCat(collection, "/{id}"), field,
                          violations);
}

bool ParseChildName(absl::string_view name, absl::string_view sub,
                    absl::string_view tail, const std::string& field,
                    FieldViolations* violations, std::string* course,
                    std::string* id) {
  const std::string pattern = absl::StrCat("courses/{course}/", sub, "/{id}",
                                           tail.empty() ? "" : "/", tail);
  std::vector<std::string> ids =
      api::ParseName(name, pattern, field, violations);
  if (ids.empty()) return false;
  *course = std::move(ids[0]);
  *id = std::move(ids[1]);
  return true;
}

std::string ParsePerson(absl::string_view name, const std::string& field,
                        FieldViolations* violations, bool required) {
  if (name.empty() && !required) return "";
  if (api::ParseName(name, api::kPersonName, field, violations).empty()) {
    return "";
  }
  return std::string(name);
}

// --- time ---

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

// --- errors ---

absl::Status NotFound(absl::string_view what, absl::string_view name) {
  return ErrorWithReason(absl::StatusCode::kNotFound,
                         absl::StrCat(what, "_NOT_FOUND"),
                         absl::StrCat("no ", name));
}

absl::Status Precondition(absl::string_view reason, absl::string_view message) {
  return ErrorWithReason(absl::StatusCode::kFailedPrecondition, reason,
                         message);
}

absl::Status Denied(absl::string_view reason, absl::string_view message) {
  return ErrorWithReason(absl::StatusCode::kPermissionDenied, reason, message);
}

// --- conversions ---

void CourseOut(const CourseRow& row, v1::Course* out) {
  *out = row.course;
  out->set_name(CourseName(row.id));
  out->set_free_seats(
      std::max(0, row.course.capacity() - row.course.booked_seats()));
  out->set_etag(api::ComputeEtag(out->name(), row.version));
}

void BookingOut(const BookingRow& row, v1::Booking* out) {
  *out = row.booking;
  out->set_name(BookingName(row.course_id, row.id));
  out->set_etag(api::ComputeEtag(out->name(), row.version));
}

v1::EntitlementState EntitlementStateAt(const EntitlementRow& row,
                                        int64_t today) {
  const v1::Entitlement& e = row.entitlement;
  if (row.revoked) return v1::ENTITLEMENT_STATE_REVOKED;
  if (DayNumber(e.valid_until()).value_or(0) < today) {
    return v1::ENTITLEMENT_STATE_EXPIRED;
  }
  if (DayNumber(e.valid_from()).value_or(0) > today) {
    return v1::ENTITLEMENT_STATE_PENDING;
  }
  if (e.units_used() >= e.units()) return v1::ENTITLEMENT_STATE_USED_UP;
  return v1::ENTITLEMENT_STATE_ACTIVE;
}

void EntitlementOut(const EntitlementRow& row, int64_t today,
                    v1::Entitlement* out) {
  *out = row.entitlement;
  out->set_name(EntitlementName(row.id));
  out->set_state(EntitlementStateAt(row, today));
  out->set_etag(api::ComputeEtag(out->name(), row.version));
}

absl::Status WaitlistOut(Transaction& tx, const WaitlistRow& row,
                         v1::WaitlistEntry* out) {
  *out = row.entry;
  out->set_name(WaitlistName(row.course_id, row.id));
  out->set_etag(api::ComputeEtag(out->name(), row.version));
  out->set_position(0);
  if (row.entry.state() == v1::WAITLIST_ENTRY_STATE_WAITING) {
    absl::StatusOr<int> position = WaitlistPosition(tx, row);
    if (!position.ok()) return position.status();
    out->set_position(*position);
  }
  return absl::OkStatus();
}

// --- access ---

absl::Status AuthorizeLanguageRead(CoursesServiceImpl& service,
                                   agencies::AuditedCall& call,
                                   const std::string& person, bool owner,
                                   bool serves) {
  if (owner) {
    call.AddLegalBasisFor(person, {"LANGUAGE", audit::BasisKind::kOwner});
    return absl::OkStatus();
  }
  // A record whose person was erased names nobody identity could decide
  // about: only its owners read it.
  if (person.empty()) {
    return Denied("NO_RELATION",
                  "the caller may not read the person's LANGUAGE data");
  }
  clients::AccessQuery query;
  query.agency = call.caller().name();
  query.person = person;
  query.categories = {type::v1::DATA_CATEGORY_LANGUAGE};
  query.purpose = call.rc().purpose;
  if (serves) query.relations = {identity::v1::RELATION_SERVES_PERSON};
  absl::StatusOr<std::vector<identity::v1::AccessDecision>> decisions =
      service.options().identity->CheckAccess(query, call.rc().deadline);
  if (!decisions.ok()) {
    // Fail closed: without a decision the data is withheld; the client
    // may retry.
    return ErrorWithReason(
        absl::StatusCode::kUnavailable, "CHECK_UNAVAILABLE",
        "no access decision could be obtained from identity; try again");
  }
  const identity::v1::AccessDecision& d = decisions->front();
  if (d.allowed()) {
    call.AddLegalBasisFor(person, clients::LegalBasisOf(d));
    return absl::OkStatus();
  }
  const std::string& full =
      type::v1::AccessDenialReason_Name(d.denial_reason());
  absl::string_view short_name = full;
  absl::ConsumePrefix(&short_name, "ACCESS_DENIAL_REASON_");
  std::string reason(short_name);
  if (d.denial_reason() == type::v1::ACCESS_DENIAL_REASON_UNSPECIFIED) {
    reason = "NO_LEGAL_BASIS";
  }
  return Denied(reason, "the caller may not read the person's LANGUAGE data");
}

absl::Status RequireStanding(CoursesServiceImpl& service,
                             const server::RequestContext& rc,
                             const agencies::LocalAgency& caller,
                             const std::string& person) {
  return service.options().identity->RequireStanding(person, caller.name(),
                                                     rc.purpose, rc.deadline);
}

// --- events ---

absl::Status Enqueue(Transaction& tx, const google::protobuf::Message& payload,
                     const std::string& ordering_key) {
  // Events about a record are keyed by its person; an anonymised record
  // (its person erased) has none, and nothing about it leaves the service.
  if (ordering_key.empty()) return absl::OkStatus();
  lotse::events::v1::Event event;
  event.set_ordering_key(ordering_key);
  event.set_source("courses");
  event.mutable_payload()->PackFrom(payload);
  return events::EnqueueEvent(tx, std::move(event));
}

absl::StatusOr<v1::BookingContext> ContextFor(
    Transaction& tx, const CourseRow& course, const std::string& booking,
    const std::string& person, const std::string& booking_agency,
    const std::string& case_step, const std::string& entitlement,
    const std::optional<std::string>& issuing_agency) {
  v1::BookingContext c;
  c.set_booking(booking);
  c.set_course(CourseName(course.id));
  c.set_person(person);
  c.set_provider_agency(course.course.provider_agency());
  c.set_booking_agency(booking_agency);
  c.set_case_step(case_step);
  c.set_course_kind(course.course.kind());
  c.set_target_level(course.course.target_level());
  *c.mutable_start_date() = course.course.schedule().start_date();
  c.set_entitlement(entitlement);
  if (issuing_agency) {
    c.set_entitlement_issuing_agency(*issuing_agency);
    return c;
  }
  if (absl::string_view id = entitlement;
      absl::ConsumePrefix(&id, "entitlements/")) {
    absl::StatusOr<std::optional<EntitlementRow>> e = ReadEntitlement(tx, id);
    if (!e.ok()) return e.status();
    if (e->has_value()) {
      c.set_entitlement_issuing_agency((*e)->entitlement.issuing_agency());
    }
  }
  return c;
}

// --- the service ---

CoursesServiceImpl::CoursesServiceImpl(server::ServiceRuntime& runtime,
                                       CoursesOptions options)
    : UnaryService(runtime.env, v1::CoursesService::service_full_name()),
      runtime_(runtime),
      options_(std::move(options)) {
  // A caller whose registration has not reached this service yet is looked
  // up in identity rather than refused (common/agencies/registry.h).
  call_env_ = agencies::CallEnvironment::ForRuntime(
      v1::CoursesService::service_full_name(), runtime_,
      clients::AgencyLookupOf(options_.identity));
  RegisterRpcs();
}

CoursesServiceImpl::~CoursesServiceImpl() {
  {
    absl::MutexLock lock(&sweeper_mu_);
    stopping_ = true;
  }
  if (sweeper_.joinable()) sweeper_.join();
}

void CoursesServiceImpl::StartSweeper() {
  if (sweeper_.joinable()) return;
  sweeper_ = std::thread([this] { SweeperLoop(); });
}

void CoursesServiceImpl::SweeperLoop() {
  while (true) {
    {
      absl::MutexLock lock(&sweeper_mu_);
      auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(sweeper_mu_) {
        return stopping_;
      };
      sweeper_mu_.AwaitWithTimeout(absl::Condition(&stop),
                                   options_.sweep_interval);
      if (stopping_) return;
    }
    absl::StatusOr<int> swept = SweepExpiredHolds();
    if (!swept.ok()) {
      server::Log(server::LogLevel::kError, "hold sweep failed",
                  {{"error", std::string(swept.status().message())}});
    } else if (*swept > 0) {
      server::Log(server::LogLevel::kInfo, "holds expired",
                  {{"count", static_cast<int64_t>(*swept)}});
    }
  }
}

// --- RPC entry points ---

void CoursesServiceImpl::RegisterRpcs() {
  Handle("CreateCourse", this, &CoursesServiceImpl::DoCreateCourse);
  Handle("GetCourse", this, &CoursesServiceImpl::DoGetCourse);
  Handle("ListCourses", this, &CoursesServiceImpl::DoListCourses);
  Handle("UpdateCourse", this, &CoursesServiceImpl::DoUpdateCourse);
  Handle("StartCourse", this, &CoursesServiceImpl::DoStartCourse);
  Handle("FinishCourse", this, &CoursesServiceImpl::DoFinishCourse);
  Handle("CancelCourse", this, &CoursesServiceImpl::DoCancelCourse);
  Handle("SearchCourses", this, &CoursesServiceImpl::DoSearchCourses);
  Handle("RecordEntitlement", this, &CoursesServiceImpl::DoRecordEntitlement);
  Handle("GetEntitlement", this, &CoursesServiceImpl::DoGetEntitlement);
  Handle("ListEntitlements", this, &CoursesServiceImpl::DoListEntitlements);
  Handle("RevokeEntitlement", this, &CoursesServiceImpl::DoRevokeEntitlement);
  Handle("CreateBooking", this, &CoursesServiceImpl::DoCreateBooking);
  Handle("GetBooking", this, &CoursesServiceImpl::DoGetBooking);
  Handle("ListBookings", this, &CoursesServiceImpl::DoListBookings);
  Handle("ConfirmBooking", this, &CoursesServiceImpl::DoConfirmBooking);
  Handle("CancelBooking", this, &CoursesServiceImpl::DoCancelBooking);
  Handle("JoinWaitlist", this, &CoursesServiceImpl::DoJoinWaitlist);
  Handle("GetWaitlistEntry", this, &CoursesServiceImpl::DoGetWaitlistEntry);
  Handle("ListWaitlistEntries", this,
         &CoursesServiceImpl::DoListWaitlistEntries);
  Handle("LeaveWaitlist", this, &CoursesServiceImpl::DoLeaveWaitlist);
  Handle("RecordAttendance", this, &CoursesServiceImpl::DoRecordAttendance);
  Handle("ListAttendanceRecords", this,
         &CoursesServiceImpl::DoListAttendanceRecords);
  Handle("RecordCourseResult", this, &CoursesServiceImpl::DoRecordCourseResult);
  Handle("GetCourseResult", this, &CoursesServiceImpl::DoGetCourseResult);
  Handle("ListCourseResults", this, &CoursesServiceImpl::DoListCourseResults);
}

}  // namespace lotse::courses
