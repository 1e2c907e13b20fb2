#include "common/server/service_main.h"

#include <algorithm>

#include "absl/flags/flag.h"
#include "common/server/flags.h"
#include "gtest/gtest.h"

namespace lotse::server {
namespace {

TEST(ReadAuditDatabaseUrlTest, ASqliteFileGetsAFileBesideIt) {
  EXPECT_EQ(ReadAuditDatabaseUrl("sqlite:/var/lib/lotse/identity.db", ""),
            "sqlite:/var/lib/lotse/identity.reads.db");
  EXPECT_EQ(ReadAuditDatabaseUrl("sqlite:cases.db", ""),
            "sqlite:cases.reads.db");
  EXPECT_EQ(ReadAuditDatabaseUrl("sqlite:/data/courses", ""),
            "sqlite:/data/courses.reads");
}

TEST(ReadAuditDatabaseUrlTest, PostgresAndMemoryKeepItInTheServiceDatabase) {
  EXPECT_EQ(ReadAuditDatabaseUrl("postgresql://lotse@db/identity", ""), "");
  EXPECT_EQ(ReadAuditDatabaseUrl("sqlite::memory:", ""), "");
  EXPECT_EQ(ReadAuditDatabaseUrl("sqlite:file:x?mode=memory", ""), "");
}

TEST(ReadAuditDatabaseUrlTest, TheFlagWins) {
  EXPECT_EQ(ReadAuditDatabaseUrl("sqlite:/d/identity.db", "same"), "");
  EXPECT_EQ(ReadAuditDatabaseUrl("sqlite:/d/identity.db", "sqlite:/a/r.db"),
            "sqlite:/a/r.db");
  EXPECT_EQ(ReadAuditDatabaseUrl("postgresql://h/x", "postgresql://h/audit"),
            "postgresql://h/audit");
}

TEST(ServiceFlagsTest, TheDataLifecycleFlagsHaveAGroupAndSafeDefaults) {
  const std::vector<FlagGroup> groups = ServerFlagGroups();
  auto group = std::find_if(
      groups.begin(), groups.end(),
      [](const FlagGroup& g) { return g.title == "Data lifecycle"; });
  ASSERT_NE(group, groups.end());
  EXPECT_EQ(group->flags,
            (std::vector<std::string>{"retention_rules", "purge_interval",
                                      "purge_batch"}));
  // No rules file unless one is named: nothing is purged by surprise.
  EXPECT_EQ(absl::GetFlag(FLAGS_retention_rules), "");
  EXPECT_EQ(absl::GetFlag(FLAGS_purge_interval), absl::Hours(1));
  EXPECT_EQ(absl::GetFlag(FLAGS_purge_batch), 200);
}

}  // namespace
}  // namespace lotse::server
