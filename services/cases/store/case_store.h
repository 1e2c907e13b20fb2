// Tables and queries of the cases service (migration "cases.0001_init"):
//
//   cases_agencies        local copy of identity's agency registry (from
//                         AgencyRegistered/Updated/Suspended/Reactivated)
//   cases                 one row per case: the columns queries filter on,
//                         and the whole lotse.cases.v1.Case as `body`
//   case_participants     (case, agency): owner and step receivers
//   plan_versions         every version of every integration plan (body)
//   steps                 one row per step: state, kind, agency, the
//                         timestamps the statistics read, and the whole
//                         lotse.cases.v1.Step (transitions, activities)
//   step_dependencies     (step, depends_on), for cycle checks
//   unassigned_activities facts about persons that matched no step
//   notes                 agency-private notes
//   person_merges         merged person -> survivor
//   case_events           the case-event log: strictly increasing `seq`
//                         (the watch cursor), drawn under the named lock
//                         "cases.events" so seq order is commit order
//   case_event_audience   (agency, seq): who may see each event (the
//                         case's participants when it was written), so
//                         one agency's events are one index range
//
// Migration "cases.0004_lifecycle" (CaseLifecycleMigrations) adds:
//   cases.close_us        when a closed case was closed (0 while open, and
//                         for cases closed before the column existed until
//                         BackfillCloseTimes fills it), the anchor of the
//                         retention kinds "case" and "note"
//   step_statistics       the timing facts of steps whose case was erased
//                         or purged, without case, step or person: what
//                         the waiting-time statistics read besides `steps`
//
// Migration "cases.0005_case_event_restores" adds:
//   case_event_restores   one row per restore from a backup: where the
//                         restored history ends and new cursors begin
//                         (see "Restores" below)
//
// The body of a case_events row is sealed under the data key of the
// case's person (lifecycle/person_keys.h, context "case_events"); once the
// person is erased here the row stays, with its seq, but cannot be opened,
// and the readers below skip it. Rows written before sealing existed are
// read as they are.
//
// Every function runs inside the caller's transaction. Read-modify-write
// callers take LockCase first (PostgreSQL runs READ COMMITTED).
#ifndef LOTSE_SERVICES_CASES_STORE_CASE_STORE_H_
#define LOTSE_SERVICES_CASES_STORE_CASE_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/agencies/registry.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "lotse/cases/v1/case.pb.h"
#include "lotse/cases/v1/cases_service.pb.h"
#include "lotse/cases/v1/note.pb.h"
#include "lotse/cases/v1/plan.pb.h"
#include "lotse/cases/v1/step.pb.h"

namespace lotse::cases {

std::vector<storage::Migration> CaseStoreMigrations();
// Applied after the lifecycle tables (holds, person keys); see above.
std::vector<storage::Migration> CaseLifecycleMigrations();

// The person ids a resource of this service is about, for its audit
// records (agencies::CallEnvironment::persons_of_resource): the person of
// case x for "cases/x" and "cases/x/...", nothing for other resources or
// an unknown case.
absl::StatusOr<std::vector<std::string>> PersonsOfCaseResource(
    storage::Transaction& tx, const std::string& resource);

// The owner agency ("agencies/x") of the case a resource "cases/x" or
// "cases/x/..." names, for its audit records' legal bases; nullopt for
// other resources or an unknown case.
absl::StatusOr<std::optional<std::string>> OwnerOfCaseResource(
    storage::Transaction& tx, const std::string& resource);

// Serialises writers of one case ("case/<id>").
absl::Status LockCase(storage::Transaction& tx, const std::string& case_id);

// ---- Agencies ----
// The local agency registry is common/agencies (table local_agencies).
using agencies::FindAgencyByCertificate;
using agencies::ReadAgency;
using agencies::UpsertAgency;

// ---- Cases ----
// A case row: `record` holds every field of the Case except name and etag,
// which the service derives from id and version.
struct CaseRow {
  std::string id;
  int64_t version = 0;
  v1::Case record;
};
absl::Status InsertCase(storage::Transaction& tx, const CaseRow& row);
// Writes `row` (its version already advanced) and the participant set.
absl::Status UpdateCase(storage::Transaction& tx, const CaseRow& row);
absl::StatusOr<std::optional<CaseRow>> ReadCase(storage::Transaction& tx,
                                                const std::string& id);
// The open case of `person` owned by `owner_agency` (ids), if any.
absl::StatusOr<std::optional<std::string>> FindOpenCase(
    storage::Transaction& tx, const std::string& person,
    const std::string& owner_agency_name);
// Ids of the open cases of `person`, oldest first.
absl::StatusOr<std::vector<std::string>> OpenCasesOfPerson(
    storage::Transaction& tx, const std::string& person);
// Ids of all cases of `person`.
absl::StatusOr<std::vector<std::string>> CasesOfPerson(
    storage::Transaction& tx, const std::string& person);

struct CaseFilter {
  std::string viewer_agency;  // "agencies/x": must participate
  std::vector<int> states;
  std::string owner_agency;
  std::string participating_agency;
  std::string person;
  // Keyset: newest first by (create_us, id); continue strictly after.
  int64_t after_create_us = 0;
  std::string after_id;
  bool has_after = false;
  int limit = 50;
};
absl::StatusOr<std::vector<CaseRow>> ListCases(storage::Transaction& tx,
                                               const CaseFilter& filter);

// ---- Plans ----
absl::Status InsertPlan(storage::Transaction& tx, const std::string& case_id,
                        const v1::IntegrationPlan& plan);
// version 0 = the newest.
absl::StatusOr<std::optional<v1::IntegrationPlan>> ReadPlan(
    storage::Transaction& tx, const std::string& case_id, int version);
// Newest first, versions below `before_version` (0 = all).
absl::StatusOr<std::vector<v1::IntegrationPlan>> ListPlans(
    storage::Transaction& tx, const std::string& case_id, int before_version,
    int limit);

// ---- Steps ----
struct StepRow {
  std::string id;
  std::string case_id;
  int64_t version = 0;
  std::string municipality_code;  // of the case owner at referral
  v1::Step record;                // without name and etag
};
absl::Status InsertStep(storage::Transaction& tx, const StepRow& row);
// `dependencies_changed`: also rewrites step_dependencies (UpdateStep of
// depends_on); transitions leave them alone.
absl::Status UpdateStep(storage::Transaction& tx, const StepRow& row,
                        bool dependencies_changed = false);
// Writes a step that only moved to another state: its state, accept and
// start times, version and record. The caller guarantees that nothing else
// the table indexes changed (case, kind, receiver, municipality, creation,
// due date), which is what a transition touches; SQLite then leaves the
// indexes on those columns alone instead of rewriting every one of them.
// NOT_FOUND if the step is gone.
absl::Status UpdateStepState(storage::Transaction& tx, const StepRow& row);
absl::StatusOr<std::optional<StepRow>> ReadStep(storage::Transaction& tx,
                                                const std::string& case_id,
                                                const std::string& step_id);
// All steps of a case in referral order.
absl::StatusOr<std::vector<StepRow>> StepsOfCase(storage::Transaction& tx,
                                                 const std::string& case_id);

struct StepFilter {
  std::string case_id;        // empty: all cases of viewer_agency
  std::string viewer_agency;  // "agencies/x"
  std::vector<int> states;
  std::vector<int> kinds;
  std::string receiving_agency;
  // Keyset: oldest referral first by (create_us, id).
  int64_t after_create_us = 0;
  std::string after_id;
  bool has_after = false;
  int limit = 50;
};
absl::StatusOr<std::vector<StepRow>> ListSteps(storage::Transaction& tx,
                                               const StepFilter& filter);

// ---- Activities without a step ----
absl::Status InsertUnassignedActivity(storage::Transaction& tx,
                                      const std::string& person,
                                      const std::string& case_id,
                                      const v1::StepActivity& activity);
// Activities of the case (case_id) or, with an empty case_id, of the person
// without a case; oldest first.
absl::StatusOr<std::vector<v1::StepActivity>> ReadUnassignedActivities(
    storage::Transaction& tx, const std::string& person,
    const std::string& case_id);
// Gives the activities of `person` that have no case to `case_id`.
absl::Status AssignUnassignedActivities(storage::Transaction& tx,
                                        const std::string& person,
                                        const std::string& case_id);
absl::Status MoveUnassignedActivities(storage::Transaction& tx,
                                      const std::string& from_person,
                                      const std::string& to_person);

// ---- Notes ----
struct NoteRow {
  std::string id;
  std::string case_id;
  std::string step_id;  // empty for a note on the case
  int64_t version = 0;
  v1::Note record;  // text, author, times (name and etag derived)
};
absl::Status InsertNote(storage::Transaction& tx, const NoteRow& row);
absl::Status UpdateNote(storage::Transaction& tx, const NoteRow& row);
absl::Status DeleteNote(storage::Transaction& tx, const std::string& id);
absl::StatusOr<std::optional<NoteRow>> ReadNote(storage::Transaction& tx,
                                                const std::string& id);
// The author's notes of a case (step_id empty: case and all its steps),
// newest first by (update_us? no: create_us, id), after the keyset.
absl::StatusOr<std::vector<NoteRow>> ListNotes(
    storage::Transaction& tx, const std::string& case_id,
    const std::string& step_id, bool only_step,
    const std::string& author_agency, bool has_after, int64_t after_create_us,
    const std::string& after_id, int limit);

// ---- Person merges ----
absl::Status RecordMerge(storage::Transaction& tx, const std::string& merged,
                         const std::string& survivor);
// Follows merges to the surviving person name.
absl::StatusOr<std::string> ResolveSurvivor(storage::Transaction& tx,
                                            const std::string& person);

// ---- Case-event log ----
// Appends `event` (cursor ignored) for the case's `audience` agencies
// ("agencies/x"). Takes the lock "cases.events"; returns the cursor. The
// body is sealed under the key of `person` ("persons/x"):
// FAILED_PRECONDITION (PERSON_ERASED) when that person was erased here.
absl::StatusOr<int64_t> AppendCaseEvent(
    storage::Transaction& tx, const v1::CaseEvent& event,
    const std::string& person, const std::vector<std::string>& audience);
// Events `agency` may see with cursor > after_cursor, in cursor order, at
// most `limit`; only of `case_id` when not empty.
absl::StatusOr<std::vector<v1::CaseEvent>> ReadCaseEvents(
    storage::Transaction& tx, const std::string& agency, int64_t after_cursor,
    const std::string& case_id, int limit);
// One page of ReadCaseEventPage: the events that could be opened, and how
// far the page read (rows whose person was erased are read and skipped, so
// a page may hold fewer events than rows).
struct CaseEventPage {
  std::vector<v1::CaseEvent> events;
  int rows_read = 0;
  int64_t last_cursor = 0;  // of the last row read; 0 when none was read
};
// As ReadCaseEvents, with the rows read: a page is the end of the log up
// to now when rows_read < limit.
absl::StatusOr<CaseEventPage> ReadCaseEventPage(storage::Transaction& tx,
                                                const std::string& agency,
                                                int64_t after_cursor,
                                                const std::string& case_id,
                                                int limit);
// Every event with after_cursor < cursor <= upto_cursor, in cursor order,
// with the agencies that may see it (at most `limit` events; the caller
// reads per agency when there are more).
struct LoggedEvent {
  v1::CaseEvent event;
  std::vector<std::string> audience;
};
absl::StatusOr<std::vector<LoggedEvent>> ReadCaseEventRange(
    storage::Transaction& tx, int64_t after_cursor, int64_t upto_cursor);
// The newest cursor (0 when the log is empty): the highest seq, or the
// `resume_after` of the last restore when no event came since. Erasure and
// purge never delete case_events rows, so it never goes back.
absl::StatusOr<int64_t> LatestCursor(storage::Transaction& tx);

// ---- Restores (migration "cases.0005_case_event_restores") ----
// A database restored from a backup lacks the events written after the
// backup, but clients may hold cursors of them. New events must never take
// those positions: a client resuming after such a cursor would silently
// skip them. So a restore records (restored_seq = the newest cursor of the
// restored history, resume_after) in case_event_restores, and new events
// are numbered after resume_after. resume_after is the larger of
// restored_seq and the restore's time in microseconds since the epoch:
// every cursor issued before the restore is below it (the log would need
// more than one event per microsecond to get there), including those of an
// earlier restore of a later backup. Cursors stay below 2^53 (exact in a
// JavaScript number) until the year 2255.
std::vector<storage::Migration> CaseEventRestoreMigrations();
// Records a restore of this database at `now` (the restore command's
// on_restore step). Takes the lock "cases.events".
absl::Status FenceRestoredCaseEvents(storage::Transaction& tx, absl::Time now);
// When `cursor` lies in the void of a restore (restored_seq < cursor <
// resume_after: a position issued before the restore and lost with it),
// that restore's restored_seq; nullopt otherwise.
absl::StatusOr<std::optional<int64_t>> RestoredBefore(storage::Transaction& tx,
                                                      int64_t cursor);

// ---- Statistics ----
struct StepTiming {
  int kind = 0;
  std::string receiving_agency;
  int64_t create_us = 0;
  int64_t accept_us = 0;  // 0 when not accepted
  int64_t start_us = 0;   // 0 when not started
};
// Steps of cases in `municipality` referred in [from_us, to_us), with the
// facts kept in step_statistics of steps whose case is gone.
absl::StatusOr<std::vector<StepTiming>> StepTimings(
    storage::Transaction& tx, const std::string& municipality, int64_t from_us,
    int64_t to_us);
struct OverdueCount {
  int kind = 0;
  std::string receiving_agency;
  int64_t count = 0;
};
// Open steps of the municipality past their due date (due < today_key),
// counting the kept facts of erased cases' steps as they stood then.
absl::StatusOr<std::vector<OverdueCount>> OverdueSteps(
    storage::Transaction& tx, const std::string& municipality,
    int32_t today_key);

int64_t ToMicros(absl::Time t);

}  // namespace lotse::cases

#endif  // LOTSE_SERVICES_CASES_STORE_CASE_STORE_H_
