// The gRPC face of the courses service: lotse.courses.v1.CoursesService
// (proto/lotse/courses/v1/), every RPC implemented.
//
// Every RPC:
//   1. resolves the caller in the local agency registry (CheckCaller): the
//      certificate's identity must belong to a known, active agency of the
//      certificate's legal domain. The registry is a copy fed by identity's
//      Agency* events (see EventHandler); a caller not in it yet is looked
//      up in identity before it is refused (UNAVAILABLE, reason
//      AGENCY_REGISTRY_UNAVAILABLE, when identity does not answer in time);
//   2. checks the caller's legal domain or role, validates the request (all
//      bad fields at once), asks identity what only identity knows (does the
//      person exist; may a non-owner read LANGUAGE data of the person) —
//      never while holding a transaction open;
//   3. does the work and enqueues its events in one short read-write
//      transaction (reads in kReadOnly transactions), and appends the audit
//      records: one per person whose LANGUAGE data was read or written
//      (resource "persons/{p}/<record name>", so a person's transparency
//      report finds them), or one for the course for catalogue calls.
// A call that fails is audited on its own (DENIED / ERROR, with reason).
//
// Seats: every change of a course's seats (booking, cancel, expiry,
// capacity, waitlist promotion) takes the course's named lock first
// (LockCourse) and then reads the seat count, so concurrent bookers on
// SQLite and on PostgreSQL (READ COMMITTED) never overbook; a partial unique
// index keeps one active booking per person and course.
//
// Erased persons (EraseCoursesPerson): their entitlements, waitlist entries
// and bookings answer NOT_FOUND like unknown ones (anonymised bookings
// included, also for RecordAttendance and RecordCourseResult). Attendance
// and results the retention rules keep (erasure=keep) stay readable, by
// the owners of the record only: the course's provider and the booking
// agency (GetCourseResult, ListCourseResults, ListAttendanceRecords). Any
// other caller would need identity's access decision about a person that
// no longer exists there; identity refuses it, so they get
// PERMISSION_DENIED (fail closed), as for a person they cannot see.
//
// Automatic work: a sweeper thread (StartSweeper) turns holds past their
// expiry into EXPIRED and gives freed seats to the waitlist's head.
#ifndef LOTSE_SERVICES_COURSES_SERVICE_COURSES_SERVICE_H_
#define LOTSE_SERVICES_COURSES_SERVICE_COURSES_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/agencies/audited_call.h"
#include "common/api/time.h"
#include "common/clients/identity_client.h"
#include "common/events/inbox.h"
#include "common/lifecycle/erasure.h"
#include "common/lifecycle/purge.h"
#include "common/lifecycle/retention.h"
#include "common/server/request_context.h"
#include "common/server/service_main.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"

namespace lotse::courses {

// The courses service's share of erasing a person (the EraseFn of
// lifecycle::ApplyPersonErased; `person` is the id without "persons/").
// Kinds the retention rules mark erasure=keep stay as they are and are
// counted as kept, until their rule's period ends from their anchor (never
// reached yet: kept without end). Otherwise:
//   - attendance and results of the person's bookings are deleted;
//   - a booking that holds a seat (HELD, CONFIRMED, ATTENDING), is
//     COMPLETED, or still anchors kept attendance or a kept result is
//     anonymised (course_store.h, AnonymiseBooking): the course's seats
//     taken and its occupancy do not change, and every RPC naming it
//     answers NOT_FOUND; other bookings are deleted;
//   - waitlist entries are deleted; a WAITING one leaves its course's list
//     as if the person had left it (the others keep their order; those
//     behind move up by one);
//   - entitlements, and the person's merge records, are deleted.
// Nothing is sent about it: events about anonymised records carry no
// person and are not enqueued.
absl::StatusOr<lifecycle::ErasureResult> EraseCoursesPerson(
    storage::Transaction& tx, const std::string& person,
    const lifecycle::RetentionRules& rules, absl::Time now);

// The purge tasks of the courses service (lifecycle/purge.h), one per kind
// it owns, each skipping the records of held persons:
//   booking         END: cancelled or expired (course_bookings.end_us), or
//                   its course finished (courses.finish_us); deleted, or
//                   anonymised while attendance or a result of it is kept;
//   waitlist-entry  END: it left the list (course_waitlist.end_us);
//   attendance      END: its course finished; all of a booking at once;
//   course-result   CREATE;
//   entitlement     END: revoked (revoke_us) or the end of valid_until.
std::vector<lifecycle::PurgeTask> CoursesPurgeTasks();

struct CoursesOptions {
  // Persons and access decisions. Required.
  std::shared_ptr<clients::IdentityClient> identity;
  // The service's clock (holds, "today"); injectable for tests. The
  // default is api::StoreNow(), so a --dev_clock call is stored at its
  // x-lotse-dev-time.
  std::function<absl::Time()> clock = [] { return api::StoreNow(); };
  // Hold length of courses that set none (contract: 72 hours).
  absl::Duration default_hold = absl::Hours(72);
  // How often the sweeper looks for expired holds.
  absl::Duration sweep_interval = absl::Seconds(15);
};

class CoursesServiceImpl final : public server::UnaryService {
 public:
  CoursesServiceImpl(server::ServiceRuntime& runtime, CoursesOptions options);
  // Stops the sweeper.
  ~CoursesServiceImpl() override;

  // Starts the background hold sweeper (every options.sweep_interval).
  void StartSweeper();
  // One sweep at clock(): every HELD booking whose hold ended becomes
  // EXPIRED (BookingHoldExpired), its seat goes to the waitlist. Returns the
  // number of holds expired.
  absl::StatusOr<int> SweepExpiredHolds();

  // Applies an event consumed from identity (for events::ApplyEventOnce):
  // AgencyRegistered / AgencyUpdated / AgencySuspended / AgencyReactivated
  // keep the local registry; PersonMerged moves the merged person's
  // records to the survivor (a second active booking in one course is
  // cancelled, the later one; a second waiting entry removed). Other events
  // are ignored.
  //
  // The data lifecycle (identity's lifecycle events): LegalHoldPlaced and
  // LegalHoldReleased go to the local hold table (lifecycle::ApplyHold);
  // PersonErased is applied with lifecycle::ApplyPersonErased and
  // EraseCoursesPerson; PersonRectified needs nothing here (the service
  // keeps no core identity data, only person ids). Events about a person
  // already erased here (their key shredded) are dropped without effect,
  // so that nothing new about them is written.
  events::ApplyFn EventHandler();

 private:
  // The Handle() line of every RPC (UnaryService).
  void RegisterRpcs();

 public:
  // The work of each RPC (public so tests and tools may call it directly).
  using Rc = server::RequestContext;
  absl::Status DoCreateCourse(const Rc& rc, const v1::CreateCourseRequest& r,
                              v1::Course* out);
  absl::Status DoGetCourse(const Rc& rc, const v1::GetCourseRequest& r,
                           v1::Course* out);
  absl::Status DoListCourses(const Rc& rc, const v1::ListCoursesRequest& r,
                             v1::ListCoursesResponse* out);
  absl::Status DoUpdateCourse(const Rc& rc, const v1::UpdateCourseRequest& r,
                              v1::Course* out);
  absl::Status DoStartCourse(const Rc& rc, const v1::StartCourseRequest& r,
                             v1::Course* out);
  absl::Status DoFinishCourse(const Rc& rc, const v1::FinishCourseRequest& r,
                              v1::Course* out);
  absl::Status DoCancelCourse(const Rc& rc, const v1::CancelCourseRequest& r,
                              v1::Course* out);
  absl::Status DoSearchCourses(const Rc& rc, const v1::SearchCoursesRequest& r,
                               v1::SearchCoursesResponse* out);
  absl::Status DoRecordEntitlement(const Rc& rc,
                                   const v1::RecordEntitlementRequest& r,
                                   v1::Entitlement* out);
  absl::Status DoGetEntitlement(const Rc& rc,
                                const v1::GetEntitlementRequest& r,
                                v1::Entitlement* out);
  absl::Status DoListEntitlements(const Rc& rc,
                                  const v1::ListEntitlementsRequest& r,
                                  v1::ListEntitlementsResponse* out);
  absl::Status DoRevokeEntitlement(const Rc& rc,
                                   const v1::RevokeEntitlementRequest& r,
                                   v1::Entitlement* out);
  absl::Status DoCreateBooking(const Rc& rc, const v1::CreateBookingRequest& r,
                               v1::Booking* out);
  absl::Status DoGetBooking(const Rc& rc, const v1::GetBookingRequest& r,
                            v1::Booking* out);
  absl::Status DoListBookings(const Rc& rc, const v1::ListBookingsRequest& r,
                              v1::ListBookingsResponse* out);
  absl::Status DoConfirmBooking(const Rc& rc,
                                const v1::ConfirmBookingRequest& r,
                                v1::Booking* out);
  absl::Status DoCancelBooking(const Rc& rc, const v1::CancelBookingRequest& r,
                               v1::Booking* out);
  absl::Status DoJoinWaitlist(const Rc& rc, const v1::JoinWaitlistRequest& r,
                              v1::WaitlistEntry* out);
  absl::Status DoGetWaitlistEntry(const Rc& rc,
                                  const v1::GetWaitlistEntryRequest& r,
                                  v1::WaitlistEntry* out);
  absl::Status DoListWaitlistEntries(const Rc& rc,
                                     const v1::ListWaitlistEntriesRequest& r,
                                     v1::ListWaitlistEntriesResponse* out);
  absl::Status DoLeaveWaitlist(const Rc& rc, const v1::LeaveWaitlistRequest& r,
                               v1::WaitlistEntry* out);
  absl::Status DoRecordAttendance(const Rc& rc,
                                  const v1::RecordAttendanceRequest& r,
                                  v1::AttendanceRecord* out);
  absl::Status DoListAttendanceRecords(
      const Rc& rc, const v1::ListAttendanceRecordsRequest& r,
      v1::ListAttendanceRecordsResponse* out);
  absl::Status DoRecordCourseResult(const Rc& rc,
                                    const v1::RecordCourseResultRequest& r,
                                    v1::CourseResult* out);
  absl::Status DoGetCourseResult(const Rc& rc,
                                 const v1::GetCourseResultRequest& r,
                                 v1::CourseResult* out);
  absl::Status DoListCourseResults(const Rc& rc,
                                   const v1::ListCourseResultsRequest& r,
                                   v1::ListCourseResultsResponse* out);

  // Shared by the handlers (courses_service.cc); public only so that the
  // handler files' helpers can reach them.
  class Call;
  storage::Database& db() { return *runtime_.database; }
  const agencies::CallEnvironment& call_env() const { return call_env_; }
  const CoursesOptions& options() const { return options_; }

 private:
  void SweeperLoop();

  server::ServiceRuntime& runtime_;
  const CoursesOptions options_;
  agencies::CallEnvironment call_env_;
  absl::Mutex sweeper_mu_;
  bool stopping_ ABSL_GUARDED_BY(sweeper_mu_) = false;
  std::thread sweeper_;
};

}  // namespace lotse::courses

#endif  // LOTSE_SERVICES_COURSES_SERVICE_COURSES_SERVICE_H_
