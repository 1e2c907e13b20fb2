// The schema of the cases service's database, in the order it is applied.
#ifndef LOTSE_SERVICES_CASES_STORE_MIGRATIONS_H_
#define LOTSE_SERVICES_CASES_STORE_MIGRATIONS_H_

#include <vector>

#include "common/storage/migrations.h"

namespace lotse::cases {

// The shared tables (audit chain, event outbox, event inbox) followed
// by the service's own, then the lifecycle tables (legal holds, person
// keys) and what the service's lifecycle adds to its own.
std::vector<storage::Migration> CasesMigrations();

}  // namespace lotse::cases

#endif  // LOTSE_SERVICES_CASES_STORE_MIGRATIONS_H_
