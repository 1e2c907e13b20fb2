// The cases service's share of the data lifecycle (DESIGN.md section 4,
// "Data leaves"): erasing a person's cases, and the purge tasks of the
// retention kinds "case" and "note".
//
// A case is removed with everything that hangs on it: its plan versions,
// steps with their dependencies, participants, notes, activities, and the
// audience rows of its case events. Its case_events rows stay (their seq
// is the watch cursor): a row sealed under the person's key becomes
// unreadable when the erasure shreds the key; any other row of the case (in
// the clear from before sealing existed, or sealed under a person merged
// away) has its body emptied. What the waiting-time statistics read of its
// steps (kind, receiving agency, municipality, referral, acceptance and
// start times, state and due date) moves to step_statistics without case,
// step or person, so that GetWaitingTimeStatistics answers the same before
// and after.
//
// Every function runs inside the caller's transaction.
#ifndef LOTSE_SERVICES_CASES_STORE_LIFECYCLE_STORE_H_
#define LOTSE_SERVICES_CASES_STORE_LIFECYCLE_STORE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/lifecycle/erasure.h"
#include "common/lifecycle/purge.h"
#include "common/lifecycle/retention.h"
#include "common/storage/database.h"

namespace lotse::cases {

struct RemoveCaseOptions {
  // The person's key is shredded in the same transaction (an erasure):
  // case_events rows sealed under it are left as they are. Otherwise (a
  // purge) every event body of the case is emptied.
  bool key_shredded = false;
  // Keep the case row, its participants and its notes (a rule keeps the
  // notes; the case is their anchor and access check); the rest goes.
  bool keep_notes = false;
};

// Removes case `case_id` as described above (the caller holds LockCase)
// and returns how many records it removed (case, plan versions, steps,
// notes, activities, event bodies). `person` is the case's person id
// without "persons/" (the key its events are sealed under). A case
// already gone removes nothing.
absl::StatusOr<int64_t> RemoveCase(storage::Transaction& tx,
                                   const std::string& case_id,
                                   const std::string& person,
                                   const RemoveCaseOptions& options);

// The cases service's lifecycle::EraseFn: removes every case of `person`
// (id without "persons/") and the activities recorded for the person
// without a case, except cases the rules keep: a case stays when the rule
// of kind "case" says erasure=keep, and also, as the anchor and access
// check of its notes, when the rule of kind "note" says erasure=keep and
// the case has notes. Kept records are reported per kind, due at their
// rule's DueAt of the case's close time (never while the case is open).
absl::StatusOr<lifecycle::ErasureResult> ErasePersonCases(
    storage::Transaction& tx, const std::string& person,
    const lifecycle::RetentionRules& rules, absl::Time now);

// Fills cases.close_us of at most `limit` closed cases that lack it (closed
// before the column existed) from their record's close time; returns how
// many it filled.
absl::StatusOr<int> BackfillCloseTimes(storage::Transaction& tx, int limit);

// The purge tasks of the cases service: "case" removes closed cases whose
// close time is at or before the cutoff (as RemoveCase does, notes
// included: they live in their case), "note" deletes the notes of such
// cases. Both skip cases an active legal hold covers (on the case or on
// its person) and count them as held. Each batch first fills the close
// time of cases closed before it was recorded (BackfillCloseTimes).
std::vector<lifecycle::PurgeTask> CasePurgeTasks();

}  // namespace lotse::cases

#endif  // LOTSE_SERVICES_CASES_STORE_LIFECYCLE_STORE_H_
