// GroupCommitter and the savepoints it stands on, on SQLite and PostgreSQL.
#include "common/storage/group_commit.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"

namespace lotse::storage {
namespace {

using ::lotse::testing::BothBackendsTest;

#define ASSERT_OK(expr)                          \
  do {                                           \
    const absl::Status _s = (expr);              \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s; \
  } while (0)

absl::Status Insert(Transaction& tx, int64_t id, const std::string& name) {
  return tx.Execute("INSERT INTO items (id, name) VALUES ($1, $2)", {id, name})
      .status();
}

class GroupCommitTest : public BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    ASSERT_OK(RunInTransaction(db(), [](Transaction& tx) {
      return tx.ExecuteScript(
          "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL "
          "UNIQUE)");
    }));
  }

  std::vector<int64_t> Ids() {
    std::vector<int64_t> ids;
    EXPECT_TRUE(RunInTransaction(
                    db(),
                    [&](Transaction& tx) -> absl::Status {
                      ids.clear();
                      absl::StatusOr<Rows> rows =
                          tx.Query("SELECT id FROM items ORDER BY id");
                      if (!rows.ok()) return rows.status();
                      for (const Row& row : *rows)
                        ids.push_back(*row.GetInt(0));
                      return absl::OkStatus();
                    },
                    TxMode::kReadOnly)
                    .ok());
    return ids;
  }

  // Holds the committer's (only) writer inside a body until `release` is
  // notified, so that the bodies submitted meanwhile queue up and form one
  // batch. Returns the thread running the blocking body.
  std::thread HoldWriter(GroupCommitter& committer, absl::Notification& entered,
                         absl::Notification& release) {
    return std::thread([&] {
      EXPECT_TRUE(committer
                      .Run([&](Transaction& tx) {
                        entered.Notify();
                        release.WaitForNotification();
                        return Insert(tx, 1000, "holder");
                      })
                      .ok());
    });
  }

  static void WaitQueued(GroupCommitter& committer, int64_t n) {
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (committer.stats().queued < n && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_EQ(committer.stats().queued, n);
  }
};

TEST_P(GroupCommitTest, SavepointRollbackUndoesOnlyItsScopeAfterAFailure) {
  absl::StatusOr<std::unique_ptr<Transaction>> tx = db().Begin();
  ASSERT_TRUE(tx.ok()) << tx.status();
  ASSERT_OK(Insert(**tx, 1, "one"));
  ASSERT_OK((*tx)->BeginSavepoint());
  ASSERT_OK(Insert(**tx, 2, "two"));
  // A unique violation aborts the transaction (on both backends) ...
  EXPECT_EQ(Insert(**tx, 3, "one").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Insert(**tx, 4, "four").code(),
            absl::StatusCode::kFailedPrecondition);
  // ... and rolling back to the savepoint makes it usable again.
  ASSERT_OK((*tx)->EndSavepoint(/*keep=*/false));
  ASSERT_OK(Insert(**tx, 5, "five"));
  ASSERT_OK((*tx)->BeginSavepoint());
  ASSERT_OK(Insert(**tx, 6, "six"));
  ASSERT_OK((*tx)->EndSavepoint(/*keep=*/true));
  ASSERT_OK((*tx)->Commit());
  EXPECT_EQ(Ids(), (std::vector<int64_t>{1, 5, 6}));
}

TEST_P(GroupCommitTest, SavepointCannotUndoAFailureFromBeforeIt) {
  absl::StatusOr<std::unique_ptr<Transaction>> tx = db().Begin();
  ASSERT_TRUE(tx.ok()) << tx.status();
  ASSERT_OK(Insert(**tx, 1, "one"));
  EXPECT_FALSE(Insert(**tx, 2, "one").ok());
  EXPECT_FALSE((*tx)->BeginSavepoint().ok());
  EXPECT_EQ((*tx)->EndSavepoint(/*keep=*/false).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE((*tx)->Commit().ok());
  EXPECT_TRUE(Ids().empty());
}

TEST_P(GroupCommitTest, ConcurrentBodiesAllCommitInFewerTransactions) {
  GroupCommitter committer(db());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int64_t id = t * kPerThread + i;
        absl::Status s = committer.Run([&](Transaction& tx) {
          return Insert(tx, id, absl::StrCat("n", id));
        });
        if (!s.ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Ids().size(), static_cast<size_t>(kThreads * kPerThread));
  const GroupCommitter::Stats stats = committer.stats();
  EXPECT_EQ(stats.bodies, kThreads * kPerThread);
  EXPECT_LE(stats.batches, stats.bodies);
  EXPECT_EQ(stats.queued, 0);
}

TEST_P(GroupCommitTest, AFailingBodyIsUndoneAloneAndKeepsItsError) {
  GroupCommitter::Options options;
  options.writers = 1;
  GroupCommitter committer(db(), options);
  absl::Notification entered, release;
  std::thread holder = HoldWriter(committer, entered, release);
  entered.WaitForNotification();

  absl::Status ok_before, dup, own_error, stale, ok_after;
  std::vector<std::thread> callers;
  // Submitted in this order, so the batch runs them in this order.
  callers.emplace_back([&] {
    ok_before =
        committer.Run([](Transaction& tx) { return Insert(tx, 1, "alpha"); });
  });
  WaitQueued(committer, 1);
  callers.emplace_back([&] {
    dup = committer.Run([](Transaction& tx) -> absl::Status {
      if (absl::Status s = Insert(tx, 2, "beta"); !s.ok()) return s;
      return Insert(tx, 3, "alpha");  // unique violation after a write
    });
  });
  WaitQueued(committer, 2);
  callers.emplace_back([&] {
    own_error = committer.Run([](Transaction& tx) -> absl::Status {
      if (absl::Status s = Insert(tx, 4, "gamma"); !s.ok()) return s;
      return absl::InvalidArgumentError("bad request");
    });
  });
  WaitQueued(committer, 3);
  callers.emplace_back([&] {
    // An ABORTED answer (a stale etag) is not a storage conflict.
    stale = committer.Run(
        [](Transaction&) { return absl::AbortedError("etag is stale"); });
  });
  WaitQueued(committer, 4);
  callers.emplace_back([&] {
    ok_after =
        committer.Run([](Transaction& tx) { return Insert(tx, 5, "delta"); });
  });
  WaitQueued(committer, 5);
  release.Notify();
  holder.join();
  for (std::thread& t : callers) t.join();

  EXPECT_TRUE(ok_before.ok()) << ok_before;
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_EQ(own_error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(own_error.message(), "bad request");
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(stale.message(), "etag is stale");
  EXPECT_TRUE(ok_after.ok()) << ok_after;
  EXPECT_EQ(Ids(), (std::vector<int64_t>{1, 5, 1000}));
  const GroupCommitter::Stats stats = committer.stats();
  // The holder's batch, then one batch of the five queued behind it.
  EXPECT_EQ(stats.batches, 2);
  EXPECT_EQ(stats.bodies, 6);
  EXPECT_EQ(stats.rerun_alone, 0);
}

TEST_P(GroupCommitTest, CommitHooksOfAFailedBodyAreDroppedOthersRunFirst) {
  GroupCommitter::Options options;
  options.writers = 1;
  GroupCommitter committer(db(), options);
  absl::Notification entered, release;
  std::thread holder = HoldWriter(committer, entered, release);
  entered.WaitForNotification();

  std::atomic<int> kept_hooks{0}, failed_hooks{0};
  int kept_hooks_at_return = -1;
  absl::Status kept, failed;
  std::thread kept_caller([&] {
    kept = committer.Run([&](Transaction& tx) {
      tx.OnCommit([&] { ++kept_hooks; });
      return Insert(tx, 1, "alpha");
    });
    kept_hooks_at_return = kept_hooks.load();
  });
  WaitQueued(committer, 1);
  std::thread failed_caller([&] {
    failed = committer.Run([&](Transaction& tx) -> absl::Status {
      tx.OnCommit([&] { ++failed_hooks; });
      if (absl::Status s = Insert(tx, 2, "beta"); !s.ok()) return s;
      return absl::InvalidArgumentError("bad request");
    });
  });
  WaitQueued(committer, 2);
  release.Notify();
  holder.join();
  kept_caller.join();
  failed_caller.join();

  EXPECT_TRUE(kept.ok()) << kept;
  EXPECT_EQ(failed.code(), absl::StatusCode::kInvalidArgument);
  // The hook ran before its caller's Run returned; the failed body's never.
  EXPECT_EQ(kept_hooks_at_return, 1);
  EXPECT_EQ(failed_hooks.load(), 0);
  EXPECT_EQ(committer.stats().batches, 2);
}

TEST_P(GroupCommitTest, BodiesOfOneBatchSeeEarlierBodiesWrites) {
  GroupCommitter::Options options;
  options.writers = 1;
  GroupCommitter committer(db(), options);
  absl::Notification entered, release;
  std::thread holder = HoldWriter(committer, entered, release);
  entered.WaitForNotification();
  absl::Status first, second;
  std::thread a([&] {
    first = committer.Run(
        [](Transaction& tx) { return Insert(tx, 1, "shared-name"); });
  });
  WaitQueued(committer, 1);
  std::thread b([&] {
    second = committer.Run([](Transaction& tx) -> absl::Status {
      absl::StatusOr<Rows> rows = tx.Query(
          "SELECT COUNT(*) FROM items WHERE name = $1", {"shared-name"});
      if (!rows.ok()) return rows.status();
      if (*(*rows)[0].GetInt(0) != 0) {
        return absl::AlreadyExistsError("name taken");
      }
      return Insert(tx, 2, "shared-name");
    });
  });
  WaitQueued(committer, 2);
  release.Notify();
  holder.join();
  a.join();
  b.join();
  EXPECT_TRUE(first.ok()) << first;
  EXPECT_EQ(second.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(second.message(), "name taken");
  EXPECT_EQ(Ids(), (std::vector<int64_t>{1, 1000}));
}

TEST_P(GroupCommitTest, AConflictingBodyRunsAgainAlone) {
  GroupCommitter committer(db());
  int attempts = 0;
  absl::Status s = committer.Run([&](Transaction& tx) -> absl::Status {
    ++attempts;
    if (absl::Status w = Insert(tx, attempts, "x"); !w.ok()) return w;
    if (attempts == 1) return ConflictError("simulated lock time-out");
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(attempts, 2);
  // The first attempt's write was undone with its savepoint.
  EXPECT_EQ(Ids(), (std::vector<int64_t>{2}));
  EXPECT_EQ(committer.stats().rerun_alone, 1);
}

TEST_P(GroupCommitTest, DestructionRunsWhatIsQueued) {
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  {
    GroupCommitter::Options options;
    options.writers = 1;
    GroupCommitter committer(db(), options);
    absl::Notification entered, release;
    std::thread holder = HoldWriter(committer, entered, release);
    entered.WaitForNotification();
    for (int i = 0; i < 3; ++i) {
      callers.emplace_back([&, i] {
        if (committer
                .Run([&](Transaction& tx) {
                  return Insert(tx, i, absl::StrCat("q", i));
                })
                .ok()) {
          ++ok;
        }
      });
    }
    WaitQueued(committer, 3);
    release.Notify();
    holder.join();
    for (std::thread& t : callers) t.join();
  }
  EXPECT_EQ(ok.load(), 3);
  EXPECT_EQ(Ids(), (std::vector<int64_t>{0, 1, 2, 1000}));
}

TEST_P(GroupCommitTest, ConcurrentWritersLoseNoIncrement) {
  GroupCommitter::Options options;
  options.writers = GetParam() == Dialect::kSqlite ? 1 : 3;
  GroupCommitter committer(db(), options);
  // Every body increments one counter row under a named lock: batches of
  // different writers serialise on it, and no increment may be lost.
  ASSERT_OK(RunInTransaction(db(), [](Transaction& tx) -> absl::Status {
    if (absl::Status s = tx.ExecuteScript(
            "CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)");
        !s.ok()) {
      return s;
    }
    return tx.Execute("INSERT INTO counter (id, n) VALUES (1, 0)").status();
  }));
  constexpr int kThreads = 6;
  constexpr int kPerThread = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        absl::Status s = committer.Run([](Transaction& tx) -> absl::Status {
          if (absl::Status l = tx.LockNamed("counter"); !l.ok()) return l;
          return tx.Execute("UPDATE counter SET n = n + 1 WHERE id = 1")
              .status();
        });
        if (!s.ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  int64_t n = -1;
  ASSERT_OK(RunInTransaction(
      db(),
      [&](Transaction& tx) -> absl::Status {
        absl::StatusOr<Rows> rows = tx.Query("SELECT n FROM counter");
        if (!rows.ok()) return rows.status();
        n = *(*rows)[0].GetInt(0);
        return absl::OkStatus();
      },
      TxMode::kReadOnly));
  EXPECT_EQ(n, kThreads * kPerThread);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(GroupCommitTest);

}  // namespace
}  // namespace lotse::storage
