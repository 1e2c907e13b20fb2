#include "tests/support/audit_trail.h"

#include <algorithm>
#include <iterator>

#include "gtest/gtest.h"

namespace lotse::testing {

std::vector<audit::AuditRecord> BothChainsAbout(storage::Database& db,
                                                const std::string& resource) {
  std::vector<audit::AuditRecord> out;
  for (audit::Chain chain : {audit::Chain::kChanges, audit::Chain::kReads}) {
    audit::ListAuditOptions options;
    options.page_size = 1000;
    options.chain = chain;
    auto records = audit::ListAuditForResource(db, resource, options);
    EXPECT_TRUE(records.ok()) << records.status();
    if (!records.ok()) continue;
    out.insert(out.end(), std::make_move_iterator(records->begin()),
               std::make_move_iterator(records->end()));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const audit::AuditRecord& a,
                      const audit::AuditRecord& b) { return a.time < b.time; });
  return out;
}

void ExpectBothChainsIntact(storage::Database& db) {
  for (audit::Chain chain : {audit::Chain::kChanges, audit::Chain::kReads}) {
    audit::VerifyOptions options;
    options.chain = chain;
    auto report = audit::VerifyAuditChain(db, options);
    EXPECT_TRUE(report.ok()) << report.status();
    if (report.ok()) {
      EXPECT_TRUE(report->intact)
          << audit::ChainName(chain) << ": " << report->problem;
    }
  }
}

}  // namespace lotse::testing
