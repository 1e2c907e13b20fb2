#include "services/identity/store/migrations.h"

#include "common/api/idempotency.h"
#include "common/audit/audit_log.h"
#include "common/events/inbox.h"
#include "common/events/outbox.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/person_keys.h"
#include "services/identity/store/agency_store.h"
#include "services/identity/store/consent_store.h"
#include "services/identity/store/lifecycle_store.h"
#include "services/identity/store/person_store.h"
#include "services/identity/store/proof_store.h"
#include "services/identity/store/relation_store.h"
#include "services/identity/store/residence_store.h"

namespace lotse::identity {

std::vector<storage::Migration> IdentityMigrations() {
  std::vector<storage::Migration> all;
  auto append = [&all](std::vector<storage::Migration> more) {
    for (auto& m : more) all.push_back(std::move(m));
  };
  append(audit::AuditMigrations());
  append(events::OutboxMigrations());
  append(api::ApiMigrations());
  // The service's own, in id order; never reorder or edit applied ones.
  all.push_back(AgencyMigration());
  append(PersonMigrations());
  all.push_back(ResidenceMigration());
  all.push_back(ConsentMigration());
  // Relations told by other services' events, applied once via the inbox.
  append(events::InboxMigrations());
  all.push_back(RelationMigration());
  all.push_back(ProofFailureMigration());
  // The data lifecycle: erased persons, holds, erasures and revisions, then
  // the hold table and the person keys every service keeps.
  all.push_back(PersonErasureMigration());
  all.push_back(LifecycleMigration());
  append(lifecycle::HoldMigrations());
  append(lifecycle::PersonKeyMigrations());
  return all;
}

}  // namespace lotse::identity
