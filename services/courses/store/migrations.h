// The schema of the courses service's database, in the order it is applied.
#ifndef LOTSE_SERVICES_COURSES_STORE_MIGRATIONS_H_
#define LOTSE_SERVICES_COURSES_STORE_MIGRATIONS_H_

#include <vector>

#include "common/storage/migrations.h"

namespace lotse::courses {

// The shared tables (audit chain, event outbox) followed
// by the service's own.
std::vector<storage::Migration> CoursesMigrations();

}  // namespace lotse::courses

#endif  // LOTSE_SERVICES_COURSES_STORE_MIGRATIONS_H_
