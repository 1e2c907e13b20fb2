// Shared by the handler files of the courses service: the per-call
// transaction and audit scaffolding (Call), names, conversions, access
// checks, events and the seat logic. Not a public API.
#ifndef LOTSE_SERVICES_COURSES_SERVICE_INTERNAL_H_
#define LOTSE_SERVICES_COURSES_SERVICE_INTERNAL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/agencies/audited_call.h"
#include "common/api/names.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "common/server/request_context.h"
#include "common/storage/database.h"
#include "google/protobuf/timestamp.pb.h"
#include "lotse/courses/v1/events.pb.h"
#include "services/courses/service/courses_service.h"
#include "services/courses/store/course_store.h"

namespace lotse::courses {

// One RPC's transactions and audit trail (see courses_service.h): an
// AuditedCall whose personal data is always LANGUAGE.
class CoursesServiceImpl::Call : public agencies::AuditedCall {
 public:
  // `resource`: what the request targets, for the audit record of a call
  // refused before it touched anything (e.g. "courses/x" or "courses").
  Call(CoursesServiceImpl* service, const server::RequestContext& rc,
       absl::string_view method, std::string resource)
      : AuditedCall(service->call_env(), rc, method, std::move(resource)) {}

  // Records that the call read or wrote LANGUAGE data of `person`
  // ("persons/x") in `record` (a resource name).
  // A record whose person was erased (anonymised) is audited by its name
  // alone.
  void Touch(const std::string& person, const std::string& record) {
    if (person.empty()) {
      AuditedCall::TouchResource(record, {"LANGUAGE"}, "");
      return;
    }
    AuditedCall::Touch(person, record, {"LANGUAGE"});
  }
  void set_resource(std::string resource) { set_target(std::move(resource)); }
  // The target is a person's record: a call refused before it touched
  // anything is audited as LANGUAGE access to `person`.
  void set_person_target(const std::string& person, const std::string& record) {
    AuditedCall::set_person_target(person, record, {"LANGUAGE"});
  }
};

// --- names ---
std::string CourseName(absl::string_view id);
std::string BookingName(absl::string_view course, absl::string_view id);
std::string WaitlistName(absl::string_view course, absl::string_view id);
std::string EntitlementName(absl::string_view id);
std::string AgencyName(absl::string_view id);
std::string ResultName(absl::string_view course, absl::string_view booking);
// Names are checked with common/api/names.h, like every service's.
// "agencies/x" -> "x" (empty when malformed).
std::string AgencyIdOf(absl::string_view name);
// Parses "<collection>/{id}"; "is required" or a form violation otherwise.
// Returns the id or "".
std::string ParseSimpleName(absl::string_view name,
                            absl::string_view collection,
                            const std::string& field,
                            FieldViolations* violations);
// Parses "courses/{c}/<sub>/{id}[/<tail>]" into course and id.
bool ParseChildName(absl::string_view name, absl::string_view sub,
                    absl::string_view tail, const std::string& field,
                    FieldViolations* violations, std::string* course,
                    std::string* id);
// "persons/{id}" -> the name itself, "" with a violation when malformed.
std::string ParsePerson(absl::string_view name, const std::string& field,
                        FieldViolations* violations, bool required = true);

// --- time ---
// Timestamps: common/api/time.h (api::ToTimestamp, api::FromTimestamp).
int64_t ToMicros(absl::Time t);

// --- errors ---
absl::Status NotFound(absl::string_view what, absl::string_view name);
absl::Status Precondition(absl::string_view reason, absl::string_view message);
absl::Status Denied(absl::string_view reason, absl::string_view message);

// --- conversions ---
void CourseOut(const CourseRow& row, v1::Course* out);
void BookingOut(const BookingRow& row, v1::Booking* out);
v1::EntitlementState EntitlementStateAt(const EntitlementRow& row,
                                        int64_t today);
void EntitlementOut(const EntitlementRow& row, int64_t today,
                    v1::Entitlement* out);
absl::Status WaitlistOut(storage::Transaction& tx, const WaitlistRow& row,
                         v1::WaitlistEntry* out);

// --- access ---
// OK when the caller of `call` may read LANGUAGE data of `person`: it owns
// the record (`owner`), or identity's CheckAccess allows it (asserting the
// relation SERVES_PERSON when `serves`). The ground (OWNER, or the rule or
// consent identity named) goes on the call's records about the person.
// PERMISSION_DENIED with the denial reason otherwise; CHECK_UNAVAILABLE when
// identity gave no answer (fail closed).
absl::Status AuthorizeLanguageRead(CoursesServiceImpl& service,
                                   agencies::AuditedCall& call,
                                   const std::string& person, bool owner,
                                   bool serves);
// OK when `caller` has standing towards `person` (identity's
// RequireStanding: it may read the person's core identity). The writes that
// would give the caller a relation to the person (booking, waitlist entry,
// entitlement) ask this first, so that no agency books or admits a stranger
// to read them. PERMISSION_DENIED NO_RELATION otherwise, also for a person
// identity does not know; UNAVAILABLE CHECK_UNAVAILABLE when identity gave
// no answer (fail closed).
absl::Status RequireStanding(CoursesServiceImpl& service,
                             const server::RequestContext& rc,
                             const agencies::LocalAgency& caller,
                             const std::string& person);

// --- events ---
absl::Status Enqueue(storage::Transaction& tx,
                     const google::protobuf::Message& payload,
                     const std::string& ordering_key);
// The context of a booking-related event. `booking` may be empty (waitlist
// events before promotion). The entitlement's issuing agency is read
// unless given.
absl::StatusOr<v1::BookingContext> ContextFor(
    storage::Transaction& tx, const CourseRow& course,
    const std::string& booking, const std::string& person,
    const std::string& booking_agency, const std::string& case_step,
    const std::string& entitlement,
    const std::optional<std::string>& issuing_agency = std::nullopt);

// --- seats ---
// Advances a course's version and update time.
void Bump(CourseRow* course, absl::Time now);
// Units of a course an entitlement must have left.
int64_t UnitsOf(const CourseRow& course);
// Picks the entitlement for a booking or waitlist entry of `person`
// (survivor id) in `course`: `requested` (an entitlement id, may be empty)
// if usable, else the best usable one (EntitlementUsable and
// BestEntitlement, domain/seats.h). FAILED_PRECONDITION
// NO_ENTITLEMENT otherwise; NOT_FOUND for an unknown requested id.
absl::StatusOr<EntitlementRow> PickEntitlement(storage::Transaction& tx,
                                               const std::string& person,
                                               const CourseRow& course,
                                               const std::string& requested,
                                               int64_t today);
// Ends an active booking (CANCELLED with `reason`, or EXPIRED): the seat
// and the entitlement's units are released, events enqueued. The caller
// holds the course lock and writes `course` afterwards.
absl::Status ReleaseBooking(storage::Transaction& tx, CourseRow* course,
                            BookingRow* booking, v1::BookingState state,
                            v1::BookingCancelReason reason, absl::Time now);
// Gives every free seat of `course` (locked; PLANNED or RUNNING) to the
// head of its waitlist as a HELD booking (WaitlistPromoted), skipping
// entries that can no longer be served (REMOVED, WaitlistLeft). Adds each
// (person, record) touched to `touched`. Writes `course`.
absl::Status FillFreeSeats(
    storage::Transaction& tx, CourseRow* course, absl::Time now,
    absl::Duration default_hold,
    std::vector<std::pair<std::string, std::string>>* touched);
// The hold length of `course`.
absl::Duration HoldOf(const CourseRow& course, absl::Duration default_hold);

// --- bookings and waitlist (seats.cc) ---
// Adds `units` to the entitlement's used units and writes it.
absl::Status TakeUnits(storage::Transaction& tx, EntitlementRow* e,
                       int64_t units, absl::Time now);
// Callers allowed to book and join waitlists: case managers, Jobcenter,
// immigration office, BAMF, and the course's own provider.
// PERMISSION_DENIED WRONG_LEGAL_DOMAIN otherwise.
absl::Status RequireBookingCaller(const agencies::LocalAgency& caller,
                                  const CourseRow& course);
// OK when the course takes bookings (TakesBookings); FAILED_PRECONDITION
// COURSE_CANCELLED or COURSE_NOT_BOOKABLE otherwise.
absl::Status RequireBookable(const CourseRow& course);
// ALREADY_EXISTS ACTIVE_BOOKING_EXISTS naming `b`.
absl::Status ActiveBookingExists(const BookingRow& b);
// An optional step of a case, named as the cases service issued it.
void ValidateCaseStep(absl::string_view step, const std::string& field,
                      FieldViolations* v);
// An optional "entitlements/{id}"; returns the id ("" when empty).
std::string ParseEntitlementRef(absl::string_view name,
                                const std::string& field, FieldViolations* v);
// Parses "courses/{id}" or "courses/-" (returns "-").
std::string ParseCourseParent(absl::string_view parent,
                              const std::string& field, FieldViolations* v);
// Parses a page token's key "<a> <b> <id>".
bool ParseKey(absl::string_view token, int64_t* a, int64_t* b, std::string* id);

// Whether the caller owns a record's LANGUAGE data (booking or requesting
// agency, course provider, issuer of the entitlement used) and whether it
// serves the person.
struct ReadRight {
  bool owner = false;
  bool serves = false;
};

// Decides LANGUAGE reads of several persons for one list call, asking
// identity at most once per person.
class ReadDecider {
 public:
  ReadDecider(CoursesServiceImpl& service, agencies::AuditedCall& call)
      : service_(service), call_(call) {}
  bool Allowed(const std::string& person, const ReadRight& right);

 private:
  CoursesServiceImpl& service_;
  agencies::AuditedCall& call_;
  std::map<std::string, bool> decided_;
};

}  // namespace lotse::courses

#endif  // LOTSE_SERVICES_COURSES_SERVICE_INTERNAL_H_
