#include "common/api/idempotency.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/storage/migrations.h"
#include "google/protobuf/timestamp.pb.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"

namespace lotse::api {
namespace {

class IdempotencyTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    ASSERT_TRUE(storage::ApplyMigrations(db(), ApiMigrations()).ok());
  }
};

google::protobuf::Timestamp Request(int64_t seconds) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  return t;
}

TEST(RequestFingerprintTest, DependsOnContentOnly) {
  EXPECT_EQ(RequestFingerprint(Request(1)), RequestFingerprint(Request(1)));
  EXPECT_NE(RequestFingerprint(Request(1)), RequestFingerprint(Request(2)));
  EXPECT_EQ(RequestFingerprint(Request(1)).size(), 32u);
}

TEST_P(IdempotencyTest, FirstCallRecordsRetryFindsReuseFails) {
  const RequestKey key{"kim-koeln", "svc/Create", "r-1"};
  const std::string hash = RequestFingerprint(Request(1));
  ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                auto seen = LookupRequestId(tx, key, hash);
                if (!seen.ok()) return seen.status();
                EXPECT_FALSE(seen->has_value());
                return RecordRequestId(tx, key, hash, "things/1");
              }).ok());
  ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                auto seen = LookupRequestId(tx, key, hash);
                if (!seen.ok()) return seen.status();
                EXPECT_EQ(seen->value_or(""), "things/1");
                return absl::OkStatus();
              }).ok());
  absl::Status reused =
      storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
        return LookupRequestId(tx, key, RequestFingerprint(Request(2)))
            .status();
      });
  EXPECT_EQ(reused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReasonOf(reused), "REQUEST_ID_REUSED");

  // The same request_id from another agency or method is another key.
  ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                auto seen = LookupRequestId(
                    tx, {"jobcenter-koeln", "svc/Create", "r-1"},
                    RequestFingerprint(Request(2)));
                if (!seen.ok()) return seen.status();
                EXPECT_FALSE(seen->has_value());
                return absl::OkStatus();
              }).ok());
}

TEST_P(IdempotencyTest, PurgeDeletesOnlyRecordsOlderThanTheCutoff) {
  const std::string hash = RequestFingerprint(Request(1));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                  return RecordRequestId(
                      tx, {"kim-koeln", "svc/Create", absl::StrCat("old-", i)},
                      hash, "things/1");
                }).ok());
  }
  const absl::Time cutoff = absl::Now();
  absl::SleepFor(absl::Milliseconds(2));
  ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                return RecordRequestId(tx, {"kim-koeln", "svc/Create", "new"},
                                       hash, "things/2");
              }).ok());

  // In batches: 2 + 2 + 1, then nothing is left to purge.
  EXPECT_EQ(PurgeRequestIds(db(), cutoff, 2).value_or(-1), 2);
  EXPECT_EQ(PurgeRequestIds(db(), cutoff, 2).value_or(-1), 2);
  EXPECT_EQ(PurgeRequestIds(db(), cutoff, 2).value_or(-1), 1);
  EXPECT_EQ(PurgeRequestIds(db(), cutoff, 2).value_or(-1), 0);

  auto seen = [&](const std::string& id) {
    std::optional<std::string> out;
    EXPECT_TRUE(
        storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
          auto r = LookupRequestId(tx, {"kim-koeln", "svc/Create", id}, hash);
          if (!r.ok()) return r.status();
          out = *r;
          return absl::OkStatus();
        }).ok());
    return out;
  };
  EXPECT_FALSE(seen("old-0").has_value());
  EXPECT_EQ(seen("new").value_or(""), "things/2");
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(IdempotencyTest);

}  // namespace
}  // namespace lotse::api
