// Relations between agencies and persons that other services establish
// (DESIGN.md §4: an agency that participates in a case of the person or
// serves them may read their core identity), table identity_relations.
//
// Identity learns them from the events of cases, courses and placement
// (relation_events.h). Each row is grounded in one resource of the
// producing service — a case, a booking, an entitlement, a placement — so
// that the event ending that resource (a case closed, a booking cancelled)
// removes exactly the relations it had granted.
//
// Columns: person_id, agency_id (ids, not resource names), relation (the
// domain Relation enum's number), source (the grounding resource's name,
// e.g. "cases/abc"), since_us.
#ifndef LOTSE_SERVICES_IDENTITY_STORE_RELATION_STORE_H_
#define LOTSE_SERVICES_IDENTITY_STORE_RELATION_STORE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "services/identity/domain/access_policy.h"

namespace lotse::identity {

// Migration "identity.0401_relations".
storage::Migration RelationMigration();

// Records that `agency_id` has `relation` to `person_id` because of
// `source`. Recording it again changes nothing.
absl::Status GrantRelation(storage::Transaction& tx,
                           absl::string_view person_id,
                           absl::string_view agency_id, Relation relation,
                           absl::string_view source);

// Removes the relations `source` grounds: all of them, or only those of
// `agency_id` with `relation` (a case moving to another owner).
absl::Status RevokeSource(storage::Transaction& tx, absl::string_view source);
absl::Status RevokeSourceRelation(storage::Transaction& tx,
                                  absl::string_view source,
                                  absl::string_view agency_id,
                                  Relation relation);

// Moves the relations grounded in `source` from one person to another
// (a case corrected to name another person).
absl::Status MoveSourcePerson(storage::Transaction& tx,
                              absl::string_view source,
                              absl::string_view from_person,
                              absl::string_view to_person);

// Moves every relation of `from_person` to `to_person` (MergePersons).
absl::Status MoveRelations(storage::Transaction& tx,
                           absl::string_view from_person,
                           absl::string_view to_person);

// The distinct relations `agency_id` has to `person_id`, in enum order.
absl::StatusOr<std::vector<Relation>> RelationsBetween(
    storage::Transaction& tx, absl::string_view person_id,
    absl::string_view agency_id);

// Persons `agency_id` has any relation to, in id order, after
// `after_person_id`, at most `limit`.
absl::StatusOr<std::vector<std::string>> PersonsRelatedTo(
    storage::Transaction& tx, absl::string_view agency_id,
    absl::string_view after_person_id, int limit);

// Whether `agency_id` owns a case of `person_id` (CASE_OWNER), or, when
// `source` is given ("cases/{c}"), that case.
absl::StatusOr<bool> OwnsCaseOf(storage::Transaction& tx,
                                absl::string_view person_id,
                                absl::string_view agency_id,
                                absl::string_view source = "");

// The agencies owning a case of `person_id`, in id order.
absl::StatusOr<std::vector<std::string>> CaseOwnersOf(
    storage::Transaction& tx, absl::string_view person_id);

// The persons the relations grounded in `source` are about, in id order
// (empty when identity knows of none, e.g. for a closed case).
absl::StatusOr<std::vector<std::string>> PersonsOfSource(
    storage::Transaction& tx, absl::string_view source);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_RELATION_STORE_H_
