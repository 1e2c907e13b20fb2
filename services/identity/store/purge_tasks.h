// Identity's purge tasks (common/lifecycle/purge.h): the kinds of record
// identity owns that the retention rules may name.
//
//   person-revision   a version of a core record that a correction
//                     replaced; anchor SUPERSEDED: the correction's time.
//   residence-status  a residence status record; anchor SUPERSEDED: a newer
//                     record of the person was recorded (the current one is
//                     never purged by this anchor), or END: its valid_until
//                     passed.
//   consent           a consent; anchor END: it was withdrawn, or its
//                     valid_until passed (also the consents an erasure kept
//                     as proof).
//
// Each task deletes the due records of persons no active legal hold covers
// (lifecycle::NotHeldCondition on the record's person), oldest first, and in
// the batch that finds no more due records counts the due ones a hold keeps.
#ifndef LOTSE_SERVICES_IDENTITY_STORE_PURGE_TASKS_H_
#define LOTSE_SERVICES_IDENTITY_STORE_PURGE_TASKS_H_

#include <vector>

#include "common/lifecycle/purge.h"
#include "common/lifecycle/retention.h"

namespace lotse::identity {

// The three tasks. `rules` (which must outlive the tasks; null: no rules)
// says which anchor a residence-status rule names.
std::vector<lifecycle::PurgeTask> IdentityPurgeTasks(
    const lifecycle::RetentionRules* rules);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_PURGE_TASKS_H_
