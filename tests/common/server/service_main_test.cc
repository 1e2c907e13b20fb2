#include "common/server/service_main.h"

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

}  // namespace
}  // namespace lotse::server
