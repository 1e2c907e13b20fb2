// The schema of the identity service's database, in the order it is applied.
#ifndef LOTSE_SERVICES_IDENTITY_STORE_MIGRATIONS_H_
#define LOTSE_SERVICES_IDENTITY_STORE_MIGRATIONS_H_

#include <vector>

#include "common/storage/migrations.h"

namespace lotse::identity {

// The shared tables (audit chain, event outbox) followed
// by the service's own.
std::vector<storage::Migration> IdentityMigrations();

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_MIGRATIONS_H_
