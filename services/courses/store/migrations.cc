#include "services/courses/store/migrations.h"

#include "common/audit/audit_log.h"
#include "common/events/outbox.h"

namespace lotse::courses {

std::vector<storage::Migration> CoursesMigrations() {
  std::vector<storage::Migration> all;
  auto append = [&all](std::vector<storage::Migration> more) {
    for (auto& m : more) all.push_back(std::move(m));
  };
  append(audit::AuditMigrations());
  append(events::OutboxMigrations());
  return all;
}

}  // namespace lotse::courses
