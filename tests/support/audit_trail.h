// What tests read of a service's audit chains (common/audit/audit_log.h)
// when both chains are in one database, as in a runtime built by hand.
#ifndef LOTSE_TESTS_SUPPORT_AUDIT_TRAIL_H_
#define LOTSE_TESTS_SUPPORT_AUDIT_TRAIL_H_

#include <string>
#include <vector>

#include "common/audit/audit_log.h"
#include "common/storage/database.h"

namespace lotse::testing {

// The records of both chains about `resource` and below it, at most 1000
// of each, in time order (the change chain's first where times tie). A
// failed read is a failed expectation and gives no records.
std::vector<audit::AuditRecord> BothChainsAbout(storage::Database& db,
                                                const std::string& resource);

// Expects both chains of `db` to verify.
void ExpectBothChainsIntact(storage::Database& db);

}  // namespace lotse::testing

#endif  // LOTSE_TESTS_SUPPORT_AUDIT_TRAIL_H_
