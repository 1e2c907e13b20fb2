// Online backup and restore of SQLite files (common/storage/backup.h).
#include "common/storage/backup.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lotse::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

#define ASSERT_OK(expr)                          \
  do {                                           \
    const absl::Status _s = (expr);              \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s; \
  } while (0)

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat(
               "backup_test_", ::getpid(), "_",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ / name; }

  static std::unique_ptr<Database> Open(const std::string& path) {
    SqliteOptions options;
    options.path = path;
    absl::StatusOr<std::unique_ptr<Database>> db = OpenSqlite(options);
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? *std::move(db) : nullptr;
  }

  // Two tables a writer always changes together: a copy that holds one
  // row in `a` without its partner in `b` is not a snapshot.
  static void CreatePairs(Database& db, int rows) {
    ASSERT_OK(RunInTransaction(db, [&](Transaction& tx) -> absl::Status {
      if (absl::Status s = tx.ExecuteScript(
              "CREATE TABLE a (id BIGINT PRIMARY KEY, pad TEXT NOT NULL);"
              "CREATE TABLE b (id BIGINT PRIMARY KEY, pad TEXT NOT NULL);");
          !s.ok()) {
        return s;
      }
      for (int i = 1; i <= rows; ++i) {
        for (const char* table : {"a", "b"}) {
          absl::StatusOr<int64_t> n = tx.Execute(
              absl::StrCat("INSERT INTO ", table, " VALUES ($1, $2)"),
              {int64_t{i}, std::string(200, 'x')});
          if (!n.ok()) return n.status();
        }
      }
      return absl::OkStatus();
    }));
  }

  static absl::Status InsertPair(Database& db, int64_t id) {
    return RunInTransaction(db, [&](Transaction& tx) -> absl::Status {
      for (const char* table : {"a", "b"}) {
        absl::StatusOr<int64_t> n =
            tx.Execute(absl::StrCat("INSERT INTO ", table, " VALUES ($1, $2)"),
                       {id, std::string(200, 'y')});
        if (!n.ok()) return n.status();
      }
      return absl::OkStatus();
    });
  }

  static int64_t Count(Database& db, const char* table) {
    int64_t count = -1;
    EXPECT_TRUE(RunInTransaction(
                    db,
                    [&](Transaction& tx) -> absl::Status {
                      absl::StatusOr<Rows> rows = tx.Query(
                          absl::StrCat("SELECT COUNT(*) FROM ", table));
                      if (!rows.ok()) return rows.status();
                      absl::StatusOr<int64_t> v = rows->front().GetInt(0);
                      if (v.ok()) count = *v;
                      return v.status();
                    },
                    TxMode::kReadOnly)
                    .ok());
    return count;
  }

  fs::path dir_;
};

TEST_F(BackupTest, CopyIsAConsistentSnapshotWhileWritesGoOn) {
  const std::string live = Path("live.db");
  std::unique_ptr<Database> db = Open(live);
  ASSERT_NE(db, nullptr);
  CreatePairs(*db, 5000);

  std::atomic<bool> stop{false};
  std::atomic<int64_t> written{0};
  std::thread writer([&] {
    for (int64_t id = 100000; !stop.load(); ++id) {
      if (InsertPair(*db, id).ok()) written.fetch_add(1);
    }
  });
  // Several copies while the writer runs, each small steps with pauses,
  // so that many commits land in the middle of each copy.
  SqliteBackupOptions options;
  options.pages_per_step = 16;
  options.pause = absl::Milliseconds(1);
  const int64_t before = written.load();
  int64_t last_rows = 0;
  for (int round = 0; round < 3; ++round) {
    const std::string copy = Path(absl::StrCat("copy", round, ".db"));
    absl::StatusOr<SqliteBackupResult> result =
        BackupSqlite(live, copy, options);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_GT(result->steps, 1);
    EXPECT_GT(result->pages, 0);
    EXPECT_EQ(result->bytes, static_cast<int64_t>(fs::file_size(copy)));
    ASSERT_OK(CheckSqliteIntegrity(copy));
    // A single file: no WAL beside it.
    EXPECT_FALSE(fs::exists(copy + "-wal"));
    EXPECT_FALSE(fs::exists(copy + ".tmp-" + std::to_string(::getpid())));
    std::unique_ptr<Database> copied = Open(copy);
    ASSERT_NE(copied, nullptr);
    const int64_t a = Count(*copied, "a");
    EXPECT_EQ(a, Count(*copied, "b")) << "round " << round;
    EXPECT_GE(a, 5000);
    EXPECT_GE(a, last_rows);
    last_rows = a;
  }
  stop = true;
  writer.join();
  // The writer was not stopped by the copies.
  EXPECT_GT(written.load(), before);
  EXPECT_GT(last_rows, 5000);
}

TEST_F(BackupTest, MissingOrForeignSourceLeavesDestinationAlone) {
  const std::string destination = Path("dest.db");
  {
    std::ofstream out(destination);
    out << "previous";
  }
  absl::StatusOr<SqliteBackupResult> missing =
      BackupSqlite(Path("nope.db"), destination);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  const std::string foreign = Path("foreign.db");
  {
    std::ofstream out(foreign);
    out << std::string(8192, 'z');
  }
  absl::StatusOr<SqliteBackupResult> not_sqlite =
      BackupSqlite(foreign, destination);
  EXPECT_EQ(not_sqlite.status().code(), absl::StatusCode::kFailedPrecondition)
      << not_sqlite.status();

  std::ifstream in(destination);
  std::string content((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "previous");
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_THAT(entry.path().filename().string(),
                ::testing::Not(HasSubstr(".tmp-")));
  }
}

TEST_F(BackupTest, IntegrityCheckFindsDamage) {
  const std::string live = Path("live.db");
  {
    std::unique_ptr<Database> db = Open(live);
    ASSERT_NE(db, nullptr);
    CreatePairs(*db, 2000);
  }
  const std::string copy = Path("copy.db");
  ASSERT_TRUE(BackupSqlite(live, copy).ok());
  ASSERT_OK(CheckSqliteIntegrity(copy));
  // Overwrite a stretch in the middle of the file (table pages).
  {
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(copy) / 2));
    const std::string junk(8192, '\x5a');
    f.write(junk.data(), junk.size());
  }
  const absl::Status damaged = CheckSqliteIntegrity(copy);
  EXPECT_TRUE(damaged.code() == absl::StatusCode::kDataLoss ||
              damaged.code() == absl::StatusCode::kFailedPrecondition)
      << damaged;
  EXPECT_EQ(CheckSqliteIntegrity(Path("absent.db")).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(BackupTest, NotInUseOnlyWhenNoConnectionIsOpen) {
  const std::string live = Path("live.db");
  std::unique_ptr<Database> db = Open(live);
  ASSERT_NE(db, nullptr);
  CreatePairs(*db, 10);
  const absl::Status in_use = EnsureSqliteNotInUse(live);
  EXPECT_EQ(in_use.code(), absl::StatusCode::kFailedPrecondition) << in_use;
  EXPECT_THAT(in_use.message(), HasSubstr("stop every process"));
  // The live database is untouched and still writable.
  ASSERT_OK(InsertPair(*db, 99));
  db.reset();
  ASSERT_OK(EnsureSqliteNotInUse(live));
  EXPECT_FALSE(fs::exists(live + "-wal"));
  ASSERT_OK(EnsureSqliteNotInUse(Path("absent.db")));
  std::unique_ptr<Database> reopened = Open(live);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(Count(*reopened, "a"), 11);
}

TEST_F(BackupTest, InstallReplacesTheDatabaseAndDropsItsStaleWal) {
  const std::string live = Path("live.db");
  const std::string backup = Path("backup.db");
  {
    std::unique_ptr<Database> db = Open(live);
    ASSERT_NE(db, nullptr);
    CreatePairs(*db, 100);
    ASSERT_TRUE(BackupSqlite(live, backup).ok());
    ASSERT_OK(InsertPair(*db, 1000));
  }
  // Leftovers of the replaced database that must not reach the new one.
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    std::ofstream out(live + suffix);
    out << "stale";
  }
  const std::string prepared = Path("live.db.restoring");
  ASSERT_OK(CopyFileAtomically(backup, prepared));
  ASSERT_OK(InstallSqliteFile(prepared, live, Path("live.db.old")));
  EXPECT_FALSE(fs::exists(prepared));
  EXPECT_FALSE(fs::exists(live + "-journal"));
  EXPECT_TRUE(fs::exists(Path("live.db.old")));
  ASSERT_OK(CheckSqliteIntegrity(live));
  {
    std::unique_ptr<Database> db = Open(live);
    ASSERT_NE(db, nullptr);
    EXPECT_EQ(Count(*db, "a"), 100);  // the pair written after the backup
    EXPECT_EQ(Count(*db, "b"), 100);  // is gone, as restored
  }
  {
    std::unique_ptr<Database> old = Open(Path("live.db.old"));
    ASSERT_NE(old, nullptr);
    EXPECT_EQ(Count(*old, "a"), 101);
  }
  EXPECT_EQ(InstallSqliteFile(Path("none"), live, "").code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace lotse::storage
