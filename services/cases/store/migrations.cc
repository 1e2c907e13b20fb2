#include "services/cases/store/migrations.h"

#include "common/api/idempotency.h"
#include "common/audit/audit_log.h"
#include "common/events/inbox.h"
#include "common/events/outbox.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/person_keys.h"
#include "services/cases/store/case_store.h"

namespace lotse::cases {

std::vector<storage::Migration> CasesMigrations() {
  std::vector<storage::Migration> all;
  auto append = [&all](std::vector<storage::Migration> more) {
    for (auto& m : more) all.push_back(std::move(m));
  };
  append(audit::AuditMigrations());
  append(events::OutboxMigrations());
  append(events::InboxMigrations());
  append(api::ApiMigrations());
  append(CaseStoreMigrations());
  append(lifecycle::HoldMigrations());
  append(lifecycle::PersonKeyMigrations());
  append(CaseLifecycleMigrations());
  append(CaseEventRestoreMigrations());
  return all;
}

}  // namespace lotse::cases
