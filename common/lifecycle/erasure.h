// A service's share of erasing a person (DESIGN.md section 4: "Erasure of a
// person reaches every service as an event").
//
// Identity's PersonErased reaches every service through its inbox; the
// service's event handler calls ApplyPersonErased in the inbox transaction
// with its own EraseFn. In that one transaction: the service erases or
// anonymises the person's records (keeping those whose kind the retention
// rules mark erasure=keep, and rows that aggregates need with the person
// removed), the person's data key is shredded (person_keys.h), an audit
// record is appended (operation "lotse.lifecycle/ErasePerson", the person,
// agency the requesting agency, legal domain SERVICE since the service acts
// on the agency's request, the categories of the service's resource kinds,
// each with basis DATA_PROTECTION), and ErasureReported is enqueued for
// identity (ordering key the person's name, source the service). A redelivered
// PersonErased is dropped by the inbox before any of this, so the report is
// sent once.
#ifndef LOTSE_COMMON_LIFECYCLE_ERASURE_H_
#define LOTSE_COMMON_LIFECYCLE_ERASURE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/lifecycle/retention.h"
#include "common/storage/database.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/identity/v1/lifecycle.pb.h"

namespace lotse::lifecycle {

// What a service's EraseFn did.
struct ErasureResult {
  // Records deleted or anonymised.
  int64_t erased = 0;
  // Records kept because their kind's rule says erasure=keep: per kind,
  // how many and the latest time one of them is due (RetentionRule::DueAt
  // of its anchor, or absl::InfiniteFuture() while the anchor has not
  // happened yet, e.g. a booking whose course has not finished).
  struct Kept {
    std::string kind;
    int64_t count = 0;
    absl::Time keep_until = absl::InfinitePast();
  };
  std::vector<Kept> kept;
};

// Erases the person (id without "persons/") from the service's own tables
// in `tx`, consulting `rules` for the kinds to keep.
using EraseFn = std::function<absl::StatusOr<ErasureResult>(
    storage::Transaction& tx, const std::string& person,
    const RetentionRules& rules, absl::Time now)>;

// Applies `event` as described above, for service `service` ("courses").
// INVALID_ARGUMENT for an event without a person "persons/{id}".
absl::Status ApplyPersonErased(storage::Transaction& tx,
                               const lotse::identity::v1::PersonErased& event,
                               const std::string& service,
                               const RetentionRules& rules,
                               const EraseFn& erase, absl::Time now);

// The report ApplyPersonErased enqueues (exposed for tests): state DONE
// when nothing is kept, else KEPT_BY_RULE with one KeptData per kind (the
// kind's category and the rule's basis as legal reference). Kinds kept with
// a count of 0 are left out; keep_until is left unset for a kind whose
// keep_until is infinite (its anchor has not happened yet). `person` may be
// the id or "persons/{id}".
lotse::identity::v1::ErasureReported MakeErasureReport(
    const std::string& person, const std::string& service,
    const ErasureResult& result, const RetentionRules& rules);

}  // namespace lotse::lifecycle

#endif  // LOTSE_COMMON_LIFECYCLE_ERASURE_H_
