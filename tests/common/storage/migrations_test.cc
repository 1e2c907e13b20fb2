// Migrations on SQLite and PostgreSQL.
#include "common/storage/migrations.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/storage/database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"

namespace lotse::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class MigrationsTest : public ::lotse::testing::BothBackendsTest {
 protected:
  // Ids in schema_migrations, in the order they were applied.
  std::vector<std::string> Recorded() {
    std::vector<std::string> ids;
    absl::StatusOr<std::unique_ptr<Transaction>> tx =
        db().Begin(TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok()) << tx.status();
    if (!tx.ok()) return ids;
    absl::StatusOr<Rows> rows = (*tx)->Query(
        "SELECT id, applied_at FROM schema_migrations ORDER BY applied_at, id");
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok()) return ids;
    for (const Row& row : *rows) {
      ids.push_back(row.GetText(0).value_or("?"));
      EXPECT_GT(row.GetInt(1).value_or(0), 1600000000000);  // unix millis
    }
    return ids;
  }

  bool TableExists(const std::string& table) {
    absl::StatusOr<std::unique_ptr<Transaction>> tx =
        db().Begin(TxMode::kReadOnly);
    if (!tx.ok()) return false;
    return (*tx)->Query("SELECT COUNT(*) FROM " + table).ok();
  }
};

const Migration kFirst{"test.0001_items",
                       "CREATE TABLE items (id {{AUTO_ID}}, name TEXT NOT "
                       "NULL, payload {{BLOB}});"
                       "CREATE INDEX items_by_name ON items (name);"};
const Migration kSecond{"test.0002_tags",
                        "CREATE TABLE tags ("
                        "  item_id BIGINT NOT NULL REFERENCES items(id),"
                        "  tag TEXT NOT NULL, UNIQUE (item_id, tag));"
                        "INSERT INTO items (name) VALUES ('seed');"};
const Migration kThird{"test.0003_notes", "CREATE TABLE notes (k {{TEXT_PK}})"};

TEST(ExpandDialectTest, ReplacesMacrosPerDialect) {
  const char* sql =
      "CREATE TABLE t (id {{AUTO_ID}}, b {{BLOB}}, k {{TEXT_PK}})";
  EXPECT_EQ(ExpandDialect(sql, Dialect::kSqlite),
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, b BLOB, k "
            "TEXT PRIMARY KEY)");
  EXPECT_EQ(ExpandDialect(sql, Dialect::kPostgres),
            "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, b BYTEA, k TEXT "
            "PRIMARY KEY)");
  EXPECT_EQ(ExpandDialect("SELECT 1", Dialect::kPostgres), "SELECT 1");
}

TEST_P(MigrationsTest, AppliesOnceInOrderAndRecords) {
  ASSERT_TRUE(ApplyMigrations(db(), {kFirst, kSecond}).ok());
  EXPECT_THAT(Recorded(), ElementsAre(kFirst.id, kSecond.id));
  EXPECT_TRUE(TableExists("items"));
  EXPECT_TRUE(TableExists("tags"));

  // Running again is a no-op: the CREATE TABLEs would fail if re-run, and
  // the seed row is not inserted twice.
  absl::Status again = ApplyMigrations(db(), {kFirst, kSecond});
  ASSERT_TRUE(again.ok()) << again;
  EXPECT_THAT(Recorded(), ElementsAre(kFirst.id, kSecond.id));

  // A later release adds a migration: only it runs.
  ASSERT_TRUE(ApplyMigrations(db(), {kFirst, kSecond, kThird}).ok());
  EXPECT_THAT(Recorded(), ElementsAre(kFirst.id, kSecond.id, kThird.id));

  auto tx = db().Begin(TxMode::kReadOnly);
  ASSERT_TRUE(tx.ok());
  absl::StatusOr<Rows> rows = (*tx)->Query("SELECT name FROM items");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->size(), 1u);
}

TEST_P(MigrationsTest, EmptyListOnFreshDatabaseCreatesBookkeeping) {
  ASSERT_TRUE(ApplyMigrations(db(), {}).ok());
  EXPECT_TRUE(Recorded().empty());
  EXPECT_TRUE(TableExists("schema_migrations"));
}

TEST_P(MigrationsTest, FailingMigrationLeavesNoTraceAndStopsLaterOnes) {
  // Its first statement would succeed on its own; the second fails.
  const Migration broken{"test.0002_broken",
                         "CREATE TABLE half (x BIGINT);"
                         "INSERT INTO half (x) VALUES (1);"
                         "INSERT INTO no_such_table (x) VALUES (1);"};
  absl::Status s = ApplyMigrations(db(), {kFirst, broken, kThird});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("test.0002_broken"));

  EXPECT_THAT(Recorded(), ElementsAre(kFirst.id));
  EXPECT_TRUE(TableExists("items"));
  EXPECT_FALSE(TableExists("half"));   // DDL rolled back on both backends
  EXPECT_FALSE(TableExists("notes"));  // later migration never ran

  // Once fixed, the rest applies.
  const Migration fixed{"test.0002_broken", "CREATE TABLE half (x BIGINT)"};
  ASSERT_TRUE(ApplyMigrations(db(), {kFirst, fixed, kThird}).ok());
  EXPECT_THAT(Recorded(), ElementsAre(kFirst.id, fixed.id, kThird.id));
}

TEST_P(MigrationsTest, RefusesDatabaseMigratedByNewerRelease) {
  ASSERT_TRUE(ApplyMigrations(db(), {kFirst, kSecond}).ok());
  absl::Status s = ApplyMigrations(db(), {kFirst});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr(kSecond.id));
  // Nothing new was applied either.
  s = ApplyMigrations(db(), {kFirst, kThird});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_FALSE(TableExists("notes"));
}

TEST_P(MigrationsTest, RefusesDuplicateOrEmptyIds) {
  EXPECT_EQ(ApplyMigrations(db(), {kFirst, kFirst}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyMigrations(db(), {Migration{"", "SELECT 1"}}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(MigrationsTest, ConcurrentAppliersRunEachMigrationOnce) {
  // Several "replicas" start together, each with its own pool.
  constexpr int kReplicas = 4;
  std::vector<std::unique_ptr<Database>> pools;
  for (int i = 0; i < kReplicas; ++i) {
    absl::StatusOr<std::unique_ptr<Database>> p = OpenDatabase(url(), 2);
    ASSERT_TRUE(p.ok()) << p.status();
    pools.push_back(*std::move(p));
  }
  std::vector<absl::Status> results(kReplicas);
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&, i] {
      results[i] = ApplyMigrations(*pools[i], {kFirst, kSecond, kThird});
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& r : results) EXPECT_TRUE(r.ok()) << r;
  EXPECT_THAT(Recorded(), ElementsAre(kFirst.id, kSecond.id, kThird.id));
  auto tx = db().Begin(TxMode::kReadOnly);
  ASSERT_TRUE(tx.ok());
  absl::StatusOr<Rows> rows = (*tx)->Query("SELECT name FROM items");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 1u);  // the seed row of kSecond, once
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(MigrationsTest);

}  // namespace
}  // namespace lotse::storage
