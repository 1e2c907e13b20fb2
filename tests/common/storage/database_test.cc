// The storage contract, run against SQLite and PostgreSQL alike.
#include "common/storage/database.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace lotse::storage {
namespace {

using ::lotse::testing::BothBackendsTest;
using ::lotse::testing::NewTestDatabase;
using ::lotse::testing::NewTestDatabaseUrl;
using ::testing::HasSubstr;
using ::testing::Not;

#define ASSERT_OK(expr)                          \
  do {                                           \
    const absl::Status _s = (expr);              \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s; \
  } while (0)

// Unwraps a StatusOr or fails the test.
template <typename T>
T Must(absl::StatusOr<T> v) {
  EXPECT_TRUE(v.ok()) << v.status();
  if (!v.ok()) return T();
  return *std::move(v);
}

std::unique_ptr<Transaction> MustBegin(Database& db,
                                       TxMode mode = TxMode::kReadWrite) {
  absl::StatusOr<std::unique_ptr<Transaction>> tx = db.Begin(mode);
  EXPECT_TRUE(tx.ok()) << tx.status();
  return tx.ok() ? *std::move(tx) : nullptr;
}

constexpr char kItemsTable[] =
    "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE)";

class DatabaseTest : public BothBackendsTest {
 protected:
  void CreateItems() {
    ASSERT_OK(RunInTransaction(
        db(), [](Transaction& tx) { return tx.ExecuteScript(kItemsTable); }));
  }

  int64_t CountItems() {
    int64_t n = -1;
    EXPECT_TRUE(RunInTransaction(
                    db(),
                    [&](Transaction& tx) -> absl::Status {
                      absl::StatusOr<Rows> rows =
                          tx.Query("SELECT COUNT(*) FROM items");
                      if (!rows.ok()) return rows.status();
                      absl::StatusOr<int64_t> v = (*rows)[0].GetInt(0);
                      if (v.ok()) n = *v;
                      return v.status();
                    },
                    TxMode::kReadOnly)
                    .ok());
    return n;
  }
};

TEST_P(DatabaseTest, DialectMatchesBackend) {
  EXPECT_EQ(db().dialect(), GetParam());
  auto tx = MustBegin(db());
  ASSERT_NE(tx, nullptr);
  EXPECT_EQ(tx->dialect(), GetParam());
}

TEST_P(DatabaseTest, EveryValueTypeRoundTrips) {
  ASSERT_OK(RunInTransaction(db(), [&](Transaction& tx) {
    return tx.ExecuteScript(ExpandDialect(
        "CREATE TABLE t (k BIGINT PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, "
        "s TEXT, b {{BLOB}})",
        dialect()));
  }));
  const std::string with_zeros("a\0b\0\xff\x80\x01", 7);
  struct Case {
    Value i, d, s, b;
  };
  std::vector<Case> cases = {
      {int64_t{0}, 0.0, std::string(""), Bytes{""}},
      {std::numeric_limits<int64_t>::max(), 0.1, std::string("plain"),
       Bytes{with_zeros}},
      {std::numeric_limits<int64_t>::min(), -1e300,
       std::string("Ünïcødé ✓ 'quote' \"dq\" \\ $1"), Bytes{"\\x00"}},
      {int64_t{-1}, 1.0 / 3.0, std::string(1000, 'x'),
       Bytes{std::string(256, '\0')}},
      {std::monostate{}, std::monostate{}, std::monostate{}, std::monostate{}},
  };
  ASSERT_OK(RunInTransaction(db(), [&](Transaction& tx) -> absl::Status {
    for (size_t k = 0; k < cases.size(); ++k) {
      const Case& c = cases[k];
      absl::StatusOr<int64_t> n = tx.Execute(
          "INSERT INTO t (k, i, d, s, b) VALUES ($1, $2, $3, $4, $5)",
          {static_cast<int64_t>(k), c.i, c.d, c.s, c.b});
      if (!n.ok()) return n.status();
      EXPECT_EQ(*n, 1);
    }
    return absl::OkStatus();
  }));

  auto tx = MustBegin(db(), TxMode::kReadOnly);
  ASSERT_NE(tx, nullptr);
  Rows rows = Must(tx->Query("SELECT k, i, d, s, b FROM t ORDER BY k"));
  ASSERT_EQ(rows.size(), cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    SCOPED_TRACE(absl::StrCat("row ", k));
    const Row& row = rows[k];
    ASSERT_EQ(row.size(), 5u);
    EXPECT_EQ(Must(row.GetInt(0)), static_cast<int64_t>(k));
    EXPECT_EQ(row.cell(1), cases[k].i);
    EXPECT_EQ(row.cell(2), cases[k].d);
    EXPECT_EQ(row.cell(3), cases[k].s);
    EXPECT_EQ(row.cell(4), cases[k].b);
  }

  // Parameters in WHERE, including bytes with zeros, match exactly.
  Rows found = Must(tx->Query("SELECT k FROM t WHERE b = $1 AND s = $2",
                              {Bytes{with_zeros}, std::string("plain")}));
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(Must(found[0].GetInt(0)), 1);

  // Typed accessors and their errors.
  const Row& nulls = rows[4];
  EXPECT_TRUE(nulls.IsNull(1));
  EXPECT_FALSE(rows[1].IsNull(1));
  EXPECT_FALSE(nulls.GetInt(1).ok());
  EXPECT_FALSE(rows[1].GetInt(99).ok());
  EXPECT_EQ(Must(rows[1].GetText(3)), "plain");
  EXPECT_EQ(Must(rows[1].GetBytes(4)), with_zeros);
  EXPECT_DOUBLE_EQ(Must(rows[1].GetDouble(2)), 0.1);
  EXPECT_FALSE(rows[1].GetInt(3).ok());   // text is not an integer
  EXPECT_FALSE(rows[1].GetText(1).ok());  // nor is an integer text
}

TEST_P(DatabaseTest, ParameterMayBeUsedTwiceAndUnboundIsAnError) {
  auto tx = MustBegin(db());
  ASSERT_NE(tx, nullptr);
  Rows rows = Must(tx->Query("SELECT $1 + $1", {int64_t{21}}));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(Must(rows[0].GetInt(0)), 42);
  // $2 referenced but only one parameter given.
  EXPECT_FALSE(tx->Query("SELECT $1 + $2", {int64_t{1}}).ok());
}

TEST_P(DatabaseTest, RollbackOnDestructionLeavesNothing) {
  CreateItems();
  {
    auto tx = MustBegin(db());
    ASSERT_NE(tx, nullptr);
    EXPECT_EQ(Must(tx->Execute("INSERT INTO items (id, name) VALUES ($1, $2)",
                               {int64_t{1}, std::string("a")})),
              1);
    EXPECT_EQ(Must(tx->Query("SELECT id FROM items")).size(), 1u);
  }  // no Commit
  EXPECT_EQ(CountItems(), 0);
}

TEST_P(DatabaseTest, ExecuteCountsChangedRows) {
  CreateItems();
  auto tx = MustBegin(db());
  ASSERT_NE(tx, nullptr);
  for (int64_t i = 1; i <= 3; ++i) {
    ASSERT_EQ(Must(tx->Execute("INSERT INTO items (id, name) VALUES ($1, $2)",
                               {i, absl::StrCat("n", i)})),
              1);
  }
  EXPECT_EQ(
      Must(tx->Execute("UPDATE items SET name = name || 'x' WHERE id > $1",
                       {int64_t{1}})),
      2);
  EXPECT_EQ(Must(tx->Execute("SELECT id FROM items")), 0);
  EXPECT_EQ(Must(tx->Execute("CREATE TABLE other (x BIGINT)")), 0);
  EXPECT_EQ(Must(tx->Execute("DELETE FROM items WHERE id = $1", {int64_t{9}})),
            0);
  Rows returned = Must(
      tx->Query("INSERT INTO items (id, name) VALUES ($1, $2) RETURNING id",
                {int64_t{7}, std::string("seven")}));
  ASSERT_EQ(returned.size(), 1u);
  EXPECT_EQ(Must(returned[0].GetInt(0)), 7);
  ASSERT_OK(tx->Commit());
}

TEST_P(DatabaseTest, CommitPersistsAcrossReopen) {
  absl::StatusOr<std::string> url = NewTestDatabaseUrl(GetParam());
  ASSERT_TRUE(url.ok()) << url.status();
  {
    auto db = Must(OpenDatabase(*url));
    ASSERT_NE(db, nullptr);
    auto tx = MustBegin(*db);
    ASSERT_NE(tx, nullptr);
    ASSERT_OK(tx->ExecuteScript(kItemsTable));
    ASSERT_TRUE(tx->Execute("INSERT INTO items (id, name) VALUES ($1, $2)",
                            {int64_t{5}, std::string("kept")})
                    .ok());
    ASSERT_OK(tx->Commit());
  }
  auto db = Must(OpenDatabase(*url));
  ASSERT_NE(db, nullptr);
  auto tx = MustBegin(*db, TxMode::kReadOnly);
  ASSERT_NE(tx, nullptr);
  Rows rows = Must(tx->Query("SELECT id, name FROM items"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(Must(rows[0].GetInt(0)), 5);
  EXPECT_EQ(Must(rows[0].GetText(1)), "kept");
}

TEST_P(DatabaseTest, UniqueViolationIsAlreadyExistsAndRollsBackTheRest) {
  CreateItems();
  ASSERT_OK(RunInTransaction(db(), [](Transaction& tx) {
    return tx.Execute("INSERT INTO items (id, name) VALUES (1, 'a')").status();
  }));

  auto tx = MustBegin(db());
  ASSERT_NE(tx, nullptr);
  ASSERT_TRUE(tx->Execute("INSERT INTO items (id, name) VALUES (2, 'b')").ok());
  absl::StatusOr<int64_t> dup =
      tx->Execute("INSERT INTO items (id, name) VALUES ($1, $2)",
                  {int64_t{3}, std::string("a")});
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists)
      << dup.status();
  // The transaction is now unusable on both backends, with a clear message.
  absl::StatusOr<Rows> after = tx->Query("SELECT 1");
  EXPECT_EQ(after.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(after.status().message(), HasSubstr("earlier error"));
  // Commit reports the error that aborted the transaction.
  EXPECT_EQ(tx->Commit().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(tx->Commit().code(), absl::StatusCode::kFailedPrecondition);
  tx.reset();

  EXPECT_EQ(CountItems(), 1);  // row 2 is gone with the rollback

  // Primary key duplicates are ALREADY_EXISTS too.
  absl::Status pk = RunInTransaction(db(), [](Transaction& tx) {
    return tx.Execute("INSERT INTO items (id, name) VALUES (1, 'other')")
        .status();
  });
  EXPECT_EQ(pk.code(), absl::StatusCode::kAlreadyExists) << pk;
}

TEST_P(DatabaseTest, OtherConstraintsAreFailedPrecondition) {
  ASSERT_OK(RunInTransaction(db(), [](Transaction& tx) {
    return tx.ExecuteScript(
        "CREATE TABLE parent (id BIGINT PRIMARY KEY);"
        "CREATE TABLE child (id BIGINT PRIMARY KEY, "
        "  parent_id BIGINT NOT NULL REFERENCES parent(id), "
        "  n BIGINT CHECK (n > 0));");
  }));
  for (const char* sql : {
           "INSERT INTO child (id, parent_id, n) VALUES (1, 42, 1)",  // FK
           "INSERT INTO child (id, parent_id, n) VALUES (1, NULL, 1)",
       }) {
    absl::Status s = RunInTransaction(
        db(), [&](Transaction& tx) { return tx.Execute(sql).status(); });
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << sql << s;
  }
  absl::Status check = RunInTransaction(db(), [](Transaction& tx) {
    if (auto s = tx.Execute("INSERT INTO parent (id) VALUES (1)"); !s.ok()) {
      return s.status();
    }
    return tx.Execute("INSERT INTO child (id, parent_id, n) VALUES (1, 1, 0)")
        .status();
  });
  EXPECT_EQ(check.code(), absl::StatusCode::kFailedPrecondition) << check;
}

TEST_P(DatabaseTest, ReadOnlyTransactionRefusesWrites) {
  CreateItems();
  auto tx = MustBegin(db(), TxMode::kReadOnly);
  ASSERT_NE(tx, nullptr);
  absl::StatusOr<int64_t> n =
      tx->Execute("INSERT INTO items (id, name) VALUES (1, 'a')");
  EXPECT_EQ(n.status().code(), absl::StatusCode::kFailedPrecondition)
      << n.status();
  tx.reset();
  // The connection is writable again for the next user.
  ASSERT_OK(RunInTransaction(db(), [](Transaction& tx) {
    return tx.Execute("INSERT INTO items (id, name) VALUES (1, 'a')").status();
  }));
  auto ro = MustBegin(db(), TxMode::kReadOnly);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->LockNamed("x").code(), absl::StatusCode::kFailedPrecondition);
  ro.reset();
  // Also a statement a read-write transaction prepared (and the connection
  // cached) moments before, DDL and settings.
  for (const char* write :
       {"INSERT INTO items (id, name) VALUES (1, 'a')",
        "UPDATE items SET name = 'b'", "CREATE TABLE other (id BIGINT)"}) {
    auto again = MustBegin(db(), TxMode::kReadOnly);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->Execute(write).status().code(),
              absl::StatusCode::kFailedPrecondition)
        << write;
  }
  auto reads = MustBegin(db(), TxMode::kReadOnly);
  ASSERT_NE(reads, nullptr);
  Rows rows = Must(reads->Query("SELECT name FROM items"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(Must(rows[0].GetText(0)), "a");
}

TEST_P(DatabaseTest, BadSqlIsAnErrorAndTheConnectionStaysClean) {
  // One connection, so the next transaction reuses the one that failed.
  auto db = Must(NewTestDatabase(GetParam(), /*pool_size=*/1));
  ASSERT_NE(db, nullptr);
  {
    auto tx = MustBegin(*db);
    ASSERT_NE(tx, nullptr);
    absl::StatusOr<Rows> bad = tx->Query("SELEC 1");
    EXPECT_FALSE(bad.ok());
    EXPECT_FALSE(tx->Query("SELECT 1").ok());
  }
  for (const char* sql :
       {"SELECT * FROM no_such_table", "", "SELECT 1; SELECT 2", "SELECT ?"}) {
    auto tx = MustBegin(*db);
    ASSERT_NE(tx, nullptr);
    EXPECT_FALSE(tx->Query(sql).ok()) << sql;
  }
  {
    auto tx = MustBegin(*db);
    ASSERT_NE(tx, nullptr);
    EXPECT_FALSE(
        tx->ExecuteScript("CREATE TABLE x (a BIGINT); NONSENSE;").ok());
  }
  {
    auto tx = MustBegin(*db);
    ASSERT_NE(tx, nullptr);
    // Too many parameters for the statement.
    EXPECT_FALSE(tx->Query("SELECT 1", {int64_t{1}}).ok());
  }
  // After all that, the single connection works and holds no open transaction
  // (no table x from the failed script).
  auto tx = MustBegin(*db);
  ASSERT_NE(tx, nullptr);
  Rows rows = Must(tx->Query("SELECT 40 + $1", {int64_t{2}}));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(Must(rows[0].GetInt(0)), 42);
  EXPECT_FALSE(tx->Query("SELECT a FROM x").ok());
}

TEST_P(DatabaseTest, UseAfterCommitIsRefused) {
  auto tx = MustBegin(db());
  ASSERT_NE(tx, nullptr);
  ASSERT_OK(tx->Commit());
  EXPECT_EQ(tx->Query("SELECT 1").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tx->Commit().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(DatabaseTest, CommitHooksRunOnlyAfterACommitAndSeeItsWrites) {
  CreateItems();
  std::vector<std::string> ran;
  {
    auto tx = MustBegin(db());
    ASSERT_NE(tx, nullptr);
    tx->OnCommit([&] { ran.push_back("rolled back"); });
  }  // no Commit
  {
    auto tx = MustBegin(db());
    ASSERT_NE(tx, nullptr);
    ASSERT_OK(
        tx->Execute("INSERT INTO items (id, name) VALUES (1, 'a')").status());
    tx->OnCommit([&] {
      // The write is visible to others, and the connection is free again.
      ran.push_back(absl::StrCat("first, items=", CountItems()));
    });
    tx->OnCommit([&] { ran.push_back("second"); });
    EXPECT_TRUE(ran.empty());
    ASSERT_OK(tx->Commit());
  }
  {
    // A failed statement makes the commit fail: no hook.
    auto tx = MustBegin(db());
    ASSERT_NE(tx, nullptr);
    tx->OnCommit([&] { ran.push_back("failed"); });
    EXPECT_FALSE(
        tx->Execute("INSERT INTO items (id, name) VALUES (1, 'a')").ok());
    EXPECT_FALSE(tx->Commit().ok());
  }
  EXPECT_THAT(ran, ::testing::ElementsAre("first, items=1", "second"));
}

TEST_P(DatabaseTest, CommitHooksGoWithTheirSavepoint) {
  std::vector<std::string> ran;
  auto tx = MustBegin(db());
  ASSERT_NE(tx, nullptr);
  tx->OnCommit([&] { ran.push_back("outside"); });
  ASSERT_OK(tx->BeginSavepoint());
  tx->OnCommit([&] { ran.push_back("undone"); });
  ASSERT_OK(tx->EndSavepoint(/*keep=*/false));
  ASSERT_OK(tx->BeginSavepoint());
  tx->OnCommit([&] { ran.push_back("kept"); });
  ASSERT_OK(tx->BeginSavepoint());
  tx->OnCommit([&] { ran.push_back("kept inner"); });
  ASSERT_OK(tx->EndSavepoint(/*keep=*/true));
  ASSERT_OK(tx->EndSavepoint(/*keep=*/true));
  // A kept inner scope belongs to its outer one: undoing that drops it.
  ASSERT_OK(tx->BeginSavepoint());
  ASSERT_OK(tx->BeginSavepoint());
  tx->OnCommit([&] { ran.push_back("inner of undone"); });
  ASSERT_OK(tx->EndSavepoint(/*keep=*/true));
  ASSERT_OK(tx->EndSavepoint(/*keep=*/false));
  EXPECT_TRUE(ran.empty());
  ASSERT_OK(tx->Commit());
  EXPECT_THAT(ran, ::testing::ElementsAre("outside", "kept", "kept inner"));
}

TEST_P(DatabaseTest, RunInTransactionRetriesOnlyConflicts) {
  int calls = 0;
  {
    absl::Status s = RunInTransaction(db(), [&](Transaction&) {
      return ++calls < 3 ? ConflictError("conflict") : absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(calls, 3);
  }
  calls = 0;
  absl::Status other = RunInTransaction(db(), [&](Transaction&) {
    ++calls;
    return absl::NotFoundError("nope");
  });
  EXPECT_EQ(other, absl::NotFoundError("nope"));
  EXPECT_EQ(calls, 1);

  // An ABORTED the body chose to return (a stale etag) is an answer, not a
  // conflict: it comes back at once, unchanged.
  calls = 0;
  absl::Status stale = RunInTransaction(db(), [&](Transaction&) {
    ++calls;
    return absl::AbortedError("etag mismatch");
  });
  EXPECT_EQ(stale, absl::AbortedError("etag mismatch"));
  EXPECT_EQ(calls, 1);

  calls = 0;
  absl::Status forever = RunInTransaction(db(), [&](Transaction&) {
    ++calls;
    return ConflictError("always");
  });
  EXPECT_EQ(forever.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(calls, 10);
}

TEST(ConflictErrorTest, OnlyMarkedAbortsAreRetryable) {
  absl::Status conflict = ConflictError("busy");
  EXPECT_EQ(conflict.code(), absl::StatusCode::kAborted);
  absl::Status copy = conflict;
  EXPECT_TRUE(IsRetryableConflict(copy));
  EXPECT_FALSE(IsRetryableConflict(absl::AbortedError("busy")));
  EXPECT_FALSE(IsRetryableConflict(absl::OkStatus()));
}

TEST(StorageUnavailableTest, MarkedOnlyOnStorageOutages) {
  absl::Status copy = StorageUnavailableError("postgres: connection lost");
  EXPECT_EQ(copy.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsStorageUnavailable(copy));
  EXPECT_FALSE(IsStorageUnavailable(absl::UnavailableError("down")));
  EXPECT_FALSE(IsStorageUnavailable(absl::OkStatus()));
}

TEST(StorageUnavailableTest, ADatabaseThatCannotBeOpenedIsMarked) {
  SqliteOptions options;
  options.path = "/nonexistent-lotse-directory/for-this-test/db.sqlite";
  absl::StatusOr<std::unique_ptr<Database>> db = OpenSqlite(options);
  ASSERT_FALSE(db.ok());
  EXPECT_TRUE(IsStorageUnavailable(db.status())) << db.status();

  PostgresOptions pg;
  // A port on loopback that nothing listens on: the connection is refused.
  pg.conninfo = "host=127.0.0.1 port=1 dbname=none connect_timeout=2";
  absl::StatusOr<std::unique_ptr<Database>> refused = OpenPostgres(pg);
  if (refused.ok()) {
    // Connections open lazily: the first transaction finds out.
    absl::StatusOr<std::unique_ptr<Transaction>> tx = (*refused)->Begin();
    ASSERT_FALSE(tx.ok());
    EXPECT_TRUE(IsStorageUnavailable(tx.status())) << tx.status();
  } else {
    EXPECT_TRUE(IsStorageUnavailable(refused.status())) << refused.status();
  }
}

TEST_P(DatabaseTest, ConcurrentIncrementsAreSerialised) {
  ASSERT_OK(RunInTransaction(db(), [](Transaction& tx) {
    if (auto s = tx.ExecuteScript(
            "CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)");
        !s.ok()) {
      return s;
    }
    return tx.Execute("INSERT INTO counter (id, n) VALUES (1, 0)").status();
  }));
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        absl::Status s = RunInTransaction(db(), [](Transaction& tx) {
          // A read-modify-write: without the lock two PostgreSQL
          // transactions could read the same value.
          if (auto s = tx.LockNamed("counter"); !s.ok()) return s;
          absl::StatusOr<Rows> rows =
              tx.Query("SELECT n FROM counter WHERE id = 1");
          if (!rows.ok()) return rows.status();
          absl::StatusOr<int64_t> n = (*rows)[0].GetInt(0);
          if (!n.ok()) return n.status();
          return tx.Execute("UPDATE counter SET n = $1 WHERE id = 1", {*n + 1})
              .status();
        });
        if (!s.ok()) {
          ++failures;
          ADD_FAILURE() << s;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto tx = MustBegin(db(), TxMode::kReadOnly);
  ASSERT_NE(tx, nullptr);
  Rows rows = Must(tx->Query("SELECT n FROM counter WHERE id = 1"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(Must(rows[0].GetInt(0)), kThreads * kPerThread);
}

TEST_P(DatabaseTest, BeginWaitsWhenThePoolIsExhausted) {
  auto db = Must(NewTestDatabase(GetParam(), /*pool_size=*/2));
  ASSERT_NE(db, nullptr);
  // Read-only, so that on SQLite the held transactions do not also hold the
  // write lock; the waiting is the pool's.
  auto a = MustBegin(*db, TxMode::kReadOnly);
  auto b = MustBegin(*db, TxMode::kReadOnly);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  absl::Notification got_one;
  std::thread waiter([&] {
    auto c = MustBegin(*db, TxMode::kReadOnly);
    EXPECT_NE(c, nullptr);
    got_one.Notify();
  });
  EXPECT_FALSE(got_one.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  a.reset();  // gives its connection back
  EXPECT_TRUE(got_one.WaitForNotificationWithTimeout(absl::Seconds(30)));
  waiter.join();
}

TEST_P(DatabaseTest, TransactionMayOutliveTheDatabase) {
  auto db = Must(NewTestDatabase(GetParam()));
  ASSERT_NE(db, nullptr);
  auto tx = MustBegin(*db);
  ASSERT_NE(tx, nullptr);
  db.reset();
  EXPECT_TRUE(tx->Query("SELECT 1").ok());
  EXPECT_TRUE(tx->Commit().ok());
}

TEST_P(DatabaseTest, SqliteFileIsWalWithForeignKeysAndMemoryTempStore) {
  if (GetParam() != Dialect::kSqlite) GTEST_SKIP() << "SQLite only";
  auto tx = MustBegin(db(), TxMode::kReadOnly);
  ASSERT_NE(tx, nullptr);
  Rows mode = Must(tx->Query("PRAGMA journal_mode"));
  ASSERT_EQ(mode.size(), 1u);
  EXPECT_EQ(Must(mode[0].GetText(0)), "wal");
  Rows fk = Must(tx->Query("PRAGMA foreign_keys"));
  ASSERT_EQ(fk.size(), 1u);
  EXPECT_EQ(Must(fk[0].GetInt(0)), 1);
  // Savepoint journals in memory, not in temporary files (see sqlite.cc).
  Rows temp_store = Must(tx->Query("PRAGMA temp_store"));
  ASSERT_EQ(temp_store.size(), 1u);
  EXPECT_EQ(Must(temp_store[0].GetInt(0)), 2);
}

// Commits never copy the WAL back themselves (see sqlite.cc): a thread of
// the database does, while the connections stay open.
TEST_P(DatabaseTest, SqliteWalIsCheckpointedInTheBackground) {
  if (GetParam() != Dialect::kSqlite) GTEST_SKIP() << "SQLite only";
  ASSERT_OK(RunInTransaction(db(), [](Transaction& tx) {
    return tx.ExecuteScript("CREATE TABLE blobs (id BIGINT, data BLOB)");
  }));
  const std::string path = url().substr(sizeof("sqlite:") - 1);
  const auto initial = std::filesystem::file_size(path);
  const std::string blob(4000, 'x');
  // About 3,000 pages, one small transaction each: three times the WAL
  // limit.
  for (int64_t i = 0; i < 3000; ++i) {
    ASSERT_OK(RunInTransaction(db(), [&](Transaction& tx) {
      return tx
          .Execute("INSERT INTO blobs (id, data) VALUES ($1, $2)",
                   {i, Bytes{blob}})
          .status();
    }));
  }
  // Without a checkpoint the pages would all still be in the WAL only.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (std::filesystem::file_size(path) < initial + 4'000'000 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_GE(std::filesystem::file_size(path), initial + 4'000'000);
  auto tx = MustBegin(db(), TxMode::kReadOnly);
  ASSERT_NE(tx, nullptr);
  Rows count = Must(tx->Query("SELECT COUNT(*) FROM blobs"));
  EXPECT_EQ(Must(count[0].GetInt(0)), 3000);
}

TEST_P(DatabaseTest, ProcessLockIsExclusiveAcrossDatabaseObjects) {
  auto other = Must(OpenDatabase(url(), /*pool_size=*/1));
  ASSERT_NE(other, nullptr);
  std::unique_ptr<ProcessLock> held = Must(db().TryLockForProcess("relay/a"));
  ASSERT_NE(held, nullptr);
  EXPECT_TRUE(held->Held());
  // Neither this Database nor another one (as another replica would have)
  // gets it while it is held; another name is independent.
  EXPECT_EQ(Must(db().TryLockForProcess("relay/a")), nullptr);
  EXPECT_EQ(Must(other->TryLockForProcess("relay/a")), nullptr);
  std::unique_ptr<ProcessLock> b = Must(other->TryLockForProcess("relay/b"));
  EXPECT_NE(b, nullptr);
  // Released with the object; transactions meanwhile are unaffected.
  ASSERT_OK(RunInTransaction(
      db(), [](Transaction& tx) { return tx.Query("SELECT 1").status(); }));
  held.reset();
  std::unique_ptr<ProcessLock> taken =
      Must(other->TryLockForProcess("relay/a"));
  ASSERT_NE(taken, nullptr);
  EXPECT_TRUE(taken->Held());
}

TEST_P(DatabaseTest, ProcessLockOfALostPostgresConnectionIsGone) {
  if (GetParam() != Dialect::kPostgres) GTEST_SKIP() << "PostgreSQL only";
  auto other = Must(OpenDatabase(url(), /*pool_size=*/1));
  ASSERT_NE(other, nullptr);
  std::unique_ptr<ProcessLock> held = Must(db().TryLockForProcess("relay/a"));
  ASSERT_NE(held, nullptr);
  // The holder's connection dies, as when its process is killed: the
  // server frees the lock, and the holder learns it has lost it.
  ASSERT_OK(RunInTransaction(*other, [](Transaction& tx) {
    return tx
        .Query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) "
            "AND pid <> pg_backend_pid()")
        .status();
  }));
  ASSERT_TRUE(::lotse::testing::Eventually(
      [&] { return Must(other->TryLockForProcess("relay/a")) != nullptr; },
      absl::Seconds(5)));
  EXPECT_FALSE(held->Held());
}

TEST_P(DatabaseTest, LostPostgresConnectionIsUnavailableAndReplaced) {
  if (GetParam() != Dialect::kPostgres) GTEST_SKIP() << "PostgreSQL only";
  auto db = Must(OpenDatabase(url(), /*pool_size=*/1));
  ASSERT_NE(db, nullptr);
  auto pid_of = [](Transaction& tx) {
    Rows rows = Must(tx.Query("SELECT pg_backend_pid()"));
    return rows.empty() ? int64_t{-1} : Must(rows[0].GetInt(0));
  };
  auto kill = [&](int64_t pid) {
    ASSERT_OK(RunInTransaction(this->db(), [&](Transaction& tx) {
      return tx.Query("SELECT pg_terminate_backend($1::int)", {pid}).status();
    }));
    // pg_terminate_backend only signals; give the backend time to exit.
    absl::SleepFor(absl::Milliseconds(200));
  };

  // Killed while idle in the pool: Begin notices and reconnects.
  int64_t first = -1;
  {
    auto tx = MustBegin(*db);
    ASSERT_NE(tx, nullptr);
    first = pid_of(*tx);
  }
  kill(first);
  int64_t second = -1;
  {
    auto tx = MustBegin(*db);
    ASSERT_NE(tx, nullptr);
    second = pid_of(*tx);
    EXPECT_NE(second, first);

    // Killed inside a transaction: the statement says UNAVAILABLE.
    kill(second);
    absl::StatusOr<Rows> rows = tx->Query("SELECT 1");
    EXPECT_EQ(rows.status().code(), absl::StatusCode::kUnavailable)
        << rows.status();
  }
  auto tx = MustBegin(*db);
  ASSERT_NE(tx, nullptr);
  int64_t third = pid_of(*tx);
  EXPECT_NE(third, second);
  EXPECT_NE(third, -1);
}

INSTANTIATE_TEST_SUITE_P(Backends, DatabaseTest,
                         ::testing::Values(Dialect::kSqlite,
                                           Dialect::kPostgres),
                         ::lotse::testing::DialectParamName());

// --- OpenDatabase URLs (no server needed beyond the SQLite file system) ---

TEST(OpenDatabaseTest, AcceptsSqlitePaths) {
  absl::StatusOr<std::string> url = NewTestDatabaseUrl(Dialect::kSqlite);
  ASSERT_TRUE(url.ok()) << url.status();
  std::string path = url->substr(std::string("sqlite:").size());
  auto db = Must(OpenDatabase(*url));
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->dialect(), Dialect::kSqlite);
  EXPECT_TRUE(std::filesystem::exists(path));

  // The URI spelling with three slashes.
  EXPECT_TRUE(OpenDatabase("sqlite://" + path + "2").ok());
  EXPECT_TRUE(std::filesystem::exists(path + "2"));

  // A relative path, relative to the working directory.
  std::string relative =
      std::filesystem::relative(path + "3", std::filesystem::current_path())
          .string();
  ASSERT_FALSE(relative.empty());
  ASSERT_NE(relative[0], '/');
  EXPECT_TRUE(OpenDatabase("sqlite:" + relative).ok()) << relative;
  EXPECT_TRUE(std::filesystem::exists(path + "3"));
}

TEST(OpenDatabaseTest, RefusesBadUrls) {
  for (const char* url :
       {"", "sqlite:", "sqlite::memory:", "sqlite://host/x.db", "mysql://x",
        "postgres", "postgresql:/x", "file:/tmp/x.db", "SQLITE:/tmp/x.db"}) {
    absl::StatusOr<std::unique_ptr<Database>> db = OpenDatabase(url);
    EXPECT_EQ(db.status().code(), absl::StatusCode::kInvalidArgument)
        << "'" << url << "': " << db.status();
  }
  absl::StatusOr<std::string> url = NewTestDatabaseUrl(Dialect::kSqlite);
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(OpenDatabase(*url, /*pool_size=*/0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenDatabase("postgresql://h/db?nosuchoption=1").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(OpenDatabaseTest, UnreachableServerOrDirectoryIsUnavailable) {
  // Port 1 on loopback: nobody listens, the connection is refused at once.
  EXPECT_EQ(
      OpenDatabase("postgresql://postgres@127.0.0.1:1/x?connect_timeout=2")
          .status()
          .code(),
      absl::StatusCode::kUnavailable);
  EXPECT_EQ(OpenDatabase("sqlite:/nonexistent-dir/sub/x.db").status().code(),
            absl::StatusCode::kUnavailable);
}

// Under commits without a pause the WAL must still be reused from its start
// now and then; a checkpoint that only ever runs beside the writer never
// reaches the newest commit, and the WAL file grew to tens of gigabytes
// during a bulk load.
TEST(SqliteWalTest, StaysBoundedUnderWritesWithoutPause) {
  absl::StatusOr<std::string> url = NewTestDatabaseUrl(Dialect::kSqlite);
  ASSERT_TRUE(url.ok()) << url.status();
  SqliteOptions options;
  options.path = url->substr(std::string("sqlite:").size());
  options.pool_size = 1;
  options.wal_checkpoint_pages = 50;
  options.wal_restart_pages = 200;
  auto db = Must(OpenSqlite(options));
  ASSERT_TRUE(RunInTransaction(*db, [](Transaction& tx) {
                return tx
                    .Execute(
                        "CREATE TABLE blobs (id INTEGER PRIMARY "
                        "KEY, body BLOB NOT NULL)")
                    .status();
              }).ok());
  const std::string wal = options.path + "-wal";
  const std::string body(6000, 'x');  // two pages per row
  std::uintmax_t largest = 0;
  for (int i = 0; i < 5000; ++i) {
    absl::Status written = RunInTransaction(*db, [&](Transaction& tx) {
      return tx.Execute("INSERT INTO blobs (body) VALUES ($1)", {Bytes{body}})
          .status();
    });
    ASSERT_TRUE(written.ok()) << written;
    std::error_code error;
    std::uintmax_t size = std::filesystem::file_size(wal, error);
    if (!error) largest = std::max(largest, size);
  }
  // 5000 commits of two pages each leave a WAL of 10000 pages and more when
  // it is never reused. Reused, it stays near the restart limit, plus what
  // the writer commits before the checkpoint thread gets its turn (more on
  // a loaded machine, hence the margin).
  const std::uintmax_t page = 4096;
  EXPECT_GT(largest, 0u);
  EXPECT_LT(largest, 2500 * page)
      << "largest WAL: " << largest / page << " pages";
  absl::StatusOr<Rows> rows = [&]() -> absl::StatusOr<Rows> {
    std::unique_ptr<Transaction> tx = Must(db->Begin(TxMode::kReadOnly));
    return tx->Query("SELECT count(*) FROM blobs");
  }();
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(Must((*rows)[0].GetInt(0)), 5000);
}

// The bytes of `path` and of its WAL, if any.
std::string FileAndWal(const std::string& path) {
  std::string out;
  for (const std::string& name : {path, path + "-wal"}) {
    std::FILE* f = std::fopen(name.c_str(), "rb");
    if (f == nullptr) continue;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    std::fclose(f);
  }
  return out;
}

TEST(SqliteSecureDeleteTest, DeletedRowsAreGoneFromTheFileAfterCheckpoint) {
  absl::StatusOr<std::string> url = NewTestDatabaseUrl(Dialect::kSqlite);
  ASSERT_TRUE(url.ok()) << url.status();
  SqliteOptions options;
  options.path = url->substr(std::string("sqlite:").size());
  const std::string marker = "Marker-Nachname-Yilmaz-1987-04-01";
  {
    auto db = Must(OpenSqlite(options));
    ASSERT_TRUE(RunInTransaction(*db, [&](Transaction& tx) -> absl::Status {
                  absl::StatusOr<Rows> mode = tx.Query("PRAGMA secure_delete");
                  if (!mode.ok()) return mode.status();
                  EXPECT_EQ(Must((*mode)[0].GetInt(0)), 1);
                  absl::Status s = tx.ExecuteScript(
                      "CREATE TABLE people (id BIGINT PRIMARY KEY, "
                      "name TEXT NOT NULL)");
                  if (!s.ok()) return s;
                  // Rows on the same pages as the erased ones stay.
                  for (int64_t i = 0; i < 200; ++i) {
                    const std::string name =
                        i % 10 == 3 ? absl::StrCat(marker, "-", i)
                                    : absl::StrCat("kept-person-", i);
                    auto n = tx.Execute(
                        "INSERT INTO people (id, name) VALUES ($1, $2)",
                        {i, name});
                    if (!n.ok()) return n.status();
                  }
                  return absl::OkStatus();
                }).ok());
  }  // Closing the last connection checkpoints the WAL into the file.
  // The test could fail: the rows are in the file now.
  ASSERT_THAT(FileAndWal(options.path), HasSubstr(marker));
  {
    auto db = Must(OpenSqlite(options));
    ASSERT_TRUE(RunInTransaction(*db, [&](Transaction& tx) {
                  return tx
                      .Execute("DELETE FROM people WHERE name LIKE $1",
                               {absl::StrCat(marker, "%")})
                      .status();
                }).ok());
  }
  const std::string bytes = FileAndWal(options.path);
  EXPECT_THAT(bytes, Not(HasSubstr(marker)));
  EXPECT_THAT(bytes, HasSubstr("kept-person-199"));
}

TEST(TestSupportTest, DialectNames) {
  EXPECT_EQ(::lotse::testing::DialectName(Dialect::kSqlite), "Sqlite");
  EXPECT_EQ(::lotse::testing::DialectName(Dialect::kPostgres), "Postgres");
  EXPECT_EQ(::testing::PrintToString(Dialect::kPostgres), "Postgres");
}

}  // namespace
}  // namespace lotse::storage
