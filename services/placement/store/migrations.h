// The schema of the placement service's database, in the order it is applied.
#ifndef LOTSE_SERVICES_PLACEMENT_STORE_MIGRATIONS_H_
#define LOTSE_SERVICES_PLACEMENT_STORE_MIGRATIONS_H_

#include <vector>

#include "common/storage/migrations.h"

namespace lotse::placement {

// The shared tables (audit chain, event outbox, event inbox) followed
// by the service's own.
std::vector<storage::Migration> PlacementMigrations();

}  // namespace lotse::placement

#endif  // LOTSE_SERVICES_PLACEMENT_STORE_MIGRATIONS_H_
