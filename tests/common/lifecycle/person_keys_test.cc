// Per-person data keys and sealing, on SQLite and PostgreSQL.
#include "common/lifecycle/person_keys.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "common/errors/status.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"

namespace lotse::lifecycle {
namespace {

using ::lotse::testing::BothBackendsTest;
using storage::Transaction;

#define ASSERT_OK(expr)                          \
  do {                                           \
    const absl::Status _s = (expr);              \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s; \
  } while (0)

class PersonKeysTest : public BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    ASSERT_OK(storage::ApplyMigrations(db(), PersonKeyMigrations()));
  }

  // Seals in a transaction of its own and commits.
  absl::StatusOr<std::string> Seal(const std::string& person,
                                   const std::string& context,
                                   const std::string& plaintext) {
    absl::StatusOr<std::string> out;
    absl::Status s = storage::RunInTransaction(db(), [&](Transaction& tx) {
      out = SealForPerson(tx, person, context, plaintext);
      return out.status();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::string> Open(const std::string& person,
                                   const std::string& context,
                                   const std::string& sealed) {
    absl::StatusOr<std::string> out;
    absl::Status s = storage::RunInTransaction(
        db(),
        [&](Transaction& tx) {
          out = OpenForPerson(tx, person, context, sealed);
          return absl::OkStatus();
        },
        storage::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return out;
  }

  absl::Status Shred(const std::string& person) {
    return storage::RunInTransaction(
        db(), [&](Transaction& tx) { return ShredPersonKey(tx, person); });
  }

  int64_t KeyRows() {
    int64_t n = -1;
    EXPECT_TRUE(storage::RunInTransaction(
                    db(),
                    [&](Transaction& tx) -> absl::Status {
                      absl::StatusOr<storage::Rows> rows = tx.Query(
                          "SELECT COUNT(*) FROM lifecycle_person_keys");
                      if (!rows.ok()) return rows.status();
                      absl::StatusOr<int64_t> v = (*rows)[0].GetInt(0);
                      if (v.ok()) n = *v;
                      return v.status();
                    },
                    storage::TxMode::kReadOnly)
                    .ok());
    return n;
  }
};

TEST_P(PersonKeysTest, SealedValueOpensForTheSamePersonAndContext) {
  const std::string plain = "Ayşe Demir, born 1990-04-01";
  absl::StatusOr<std::string> sealed = Seal("p1", "event_outbox", plain);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_TRUE(IsSealed(*sealed));
  EXPECT_FALSE(absl::StrContains(*sealed, "Demir"));
  EXPECT_EQ(sealed->size(), 4 + 12 + plain.size() + 16);

  absl::StatusOr<std::string> opened = Open("p1", "event_outbox", *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, plain);
  // The resource name and the bare id are the same person.
  opened = Open("persons/p1", "event_outbox", *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, plain);
}

TEST_P(PersonKeysTest, EmptyPlaintextRoundTripsAndNoncesDiffer) {
  absl::StatusOr<std::string> a = Seal("p1", "ctx", "");
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::string> opened = Open("p1", "ctx", *a);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "");
  absl::StatusOr<std::string> b = Seal("p1", "ctx", "same");
  absl::StatusOr<std::string> c = Seal("p1", "ctx", "same");
  ASSERT_TRUE(b.ok() && c.ok());
  EXPECT_NE(*b, *c);
}

TEST_P(PersonKeysTest, WrongPersonContextOrAlteredByteIsDataLoss) {
  absl::StatusOr<std::string> sealed = Seal("p1", "event_outbox", "payload");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  ASSERT_TRUE(Seal("p2", "event_outbox", "other").ok());

  EXPECT_EQ(Open("p2", "event_outbox", *sealed).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Open("p1", "watch_history", *sealed).status().code(),
            absl::StatusCode::kDataLoss);
  for (size_t i : {size_t{4}, size_t{16}, sealed->size() - 1}) {
    std::string altered = *sealed;
    altered[i] = static_cast<char>(altered[i] ^ 0x01);
    EXPECT_EQ(Open("p1", "event_outbox", altered).status().code(),
              absl::StatusCode::kDataLoss)
        << "byte " << i;
  }
  EXPECT_EQ(Open("p1", "event_outbox", sealed->substr(0, 20)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Open("p1", "event_outbox", "plain text").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_P(PersonKeysTest, ShreddedKeyIsNotFoundAndSealingIsRefused) {
  absl::StatusOr<std::string> sealed = Seal("p1", "ctx", "payload");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  ASSERT_OK(Shred("persons/p1"));

  absl::StatusOr<std::string> opened = Open("p1", "ctx", *sealed);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReasonOf(opened.status()), "PERSON_KEY_SHREDDED");

  absl::StatusOr<std::string> again = Seal("p1", "ctx", "new");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(again.status()), "PERSON_ERASED");

  ASSERT_OK(storage::RunInTransaction(db(), [&](Transaction& tx) {
    absl::StatusOr<bool> shredded = IsPersonShredded(tx, "p1");
    EXPECT_TRUE(shredded.ok() && *shredded);
    return shredded.status();
  }));
  // The key's bytes are gone from the table, not only marked.
  ASSERT_OK(storage::RunInTransaction(db(), [&](Transaction& tx) {
    absl::StatusOr<storage::Rows> rows = tx.Query(
        "SELECT COUNT(*) FROM lifecycle_person_keys WHERE data_key IS NULL");
    if (!rows.ok()) return rows.status();
    EXPECT_EQ((*rows)[0].GetInt(0).value_or(-1), 1);
    return absl::OkStatus();
  }));
}

TEST_P(PersonKeysTest, ShreddingIsIdempotentAndWorksWithoutAKey) {
  ASSERT_OK(Shred("never-sealed"));
  ASSERT_OK(Shred("never-sealed"));
  EXPECT_EQ(Seal("never-sealed", "ctx", "x").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(KeyRows(), 1);
  ASSERT_OK(storage::RunInTransaction(db(), [&](Transaction& tx) {
    absl::StatusOr<bool> shredded = IsPersonShredded(tx, "other");
    EXPECT_TRUE(shredded.ok() && !*shredded);
    return shredded.status();
  }));
}

TEST_P(PersonKeysTest, ShreddingOnePersonLeavesAnotherReadable) {
  absl::StatusOr<std::string> a = Seal("pa", "ctx", "about a");
  absl::StatusOr<std::string> b = Seal("pb", "ctx", "about b");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_OK(Shred("pa"));
  EXPECT_EQ(Open("pa", "ctx", *a).status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<std::string> opened = Open("pb", "ctx", *b);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "about b");
  EXPECT_TRUE(Seal("pb", "ctx", "more").ok());
}

TEST_P(PersonKeysTest, ShreddingIsUndoneByRollback) {
  absl::StatusOr<std::string> sealed = Seal("p1", "ctx", "payload");
  ASSERT_TRUE(sealed.ok());
  {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = db().Begin();
    ASSERT_TRUE(tx.ok()) << tx.status();
    ASSERT_OK(ShredPersonKey(**tx, "p1"));
    // Destroyed without commit: rolled back.
  }
  absl::StatusOr<std::string> opened = Open("p1", "ctx", *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "payload");
}

TEST_P(PersonKeysTest, EmptyPersonIsInvalid) {
  EXPECT_EQ(Seal("", "ctx", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Shred("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Open("persons/", "ctx", "LSK1xxxxxxxxxxxxxxxxxxxxxxxxxxxx")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KeyRows(), 0);
}

TEST_P(PersonKeysTest, ConcurrentFirstSealsMakeOneKey) {
  constexpr int kThreads = 6;
  std::vector<std::string> sealed(kThreads);
  std::vector<absl::Status> status(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      absl::StatusOr<std::string> s =
          Seal("shared", "ctx", "value " + std::to_string(i));
      status[i] = s.status();
      if (s.ok()) sealed[i] = *s;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(status[i].ok()) << i << ": " << status[i];
    absl::StatusOr<std::string> opened = Open("shared", "ctx", sealed[i]);
    ASSERT_TRUE(opened.ok()) << i << ": " << opened.status();
    EXPECT_EQ(*opened, "value " + std::to_string(i));
  }
  EXPECT_EQ(KeyRows(), 1);
}

TEST(IsSealedTest, RecognisesTheMarker) {
  EXPECT_TRUE(IsSealed("LSK1abc"));
  EXPECT_FALSE(IsSealed("LSK"));
  EXPECT_FALSE(IsSealed("\x0a\x10lotse"));
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(PersonKeysTest);

}  // namespace
}  // namespace lotse::lifecycle
