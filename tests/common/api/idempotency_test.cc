#include "common/api/idempotency.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/storage/migrations.h"
#include "google/protobuf/timestamp.pb.h"
#include "gtest/gtest.h"
#include "lotse/placement/v1/placement_service.pb.h"
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

TEST_P(IdempotencyTest, IdempotentCreateKeysByCallerMethodAndRequestId) {
  placement::v1::CreateOfferRequest request;
  request.set_request_id("r-7");
  request.mutable_offer()->set_title("Lagerhelfer");
  const IdempotentCreate once("kim-koeln", "svc/CreateOffer", request);
  EXPECT_EQ(once.key().agency_id, "kim-koeln");
  EXPECT_EQ(once.key().method, "svc/CreateOffer");
  EXPECT_EQ(once.key().request_id, "r-7");

  ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                auto first = once.Lookup(tx);
                if (!first.ok()) return first.status();
                EXPECT_FALSE(first->has_value());
                return once.Record(tx, "offers/1");
              }).ok());

  // A retry with another request_id field value is another key; the same
  // one finds the first call's resource, whatever the request_id's value
  // contributes to the fingerprint (nothing).
  const IdempotentCreate retry("kim-koeln", "svc/CreateOffer", request);
  ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                auto first = retry.Lookup(tx);
                if (!first.ok()) return first.status();
                EXPECT_EQ(first->value_or(""), "offers/1");
                return absl::OkStatus();
              }).ok());

  placement::v1::CreateOfferRequest changed = request;
  changed.mutable_offer()->set_title("Staplerfahrer");
  const IdempotentCreate reuse("kim-koeln", "svc/CreateOffer", changed);
  absl::Status reused = storage::RunInTransaction(
      db(),
      [&](storage::Transaction& tx) { return reuse.Lookup(tx).status(); });
  EXPECT_EQ(reused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReasonOf(reused), "REQUEST_ID_REUSED");
}

TEST_P(IdempotencyTest, IdempotentCreateFingerprintsWithoutTheRequestId) {
  placement::v1::CreateOfferRequest request;
  request.set_request_id("r-1");
  request.mutable_offer()->set_title("Lagerhelfer");
  const IdempotentCreate once("a", "m", request);
  EXPECT_EQ(request.request_id(), "r-1");  // the request itself is untouched
  ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                return once.Record(tx, "offers/1");
              }).ok());
  // The documented hand-made fingerprint (request_id cleared) matches what
  // the helper recorded; the fingerprint of the request with its id does
  // not.
  placement::v1::CreateOfferRequest content = request;
  content.clear_request_id();
  ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                auto seen = LookupRequestId(tx, once.key(),
                                            RequestFingerprint(content));
                if (!seen.ok()) return seen.status();
                EXPECT_EQ(seen->value_or(""), "offers/1");
                return absl::OkStatus();
              }).ok());
  absl::Status with_id =
      storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
        return LookupRequestId(tx, once.key(), RequestFingerprint(request))
            .status();
      });
  EXPECT_EQ(ReasonOf(with_id), "REQUEST_ID_REUSED");
}

TEST_P(IdempotencyTest, IdempotentCreateOfARequestWithoutRequestIdIsInternal) {
  const IdempotentCreate once("a", "m", Request(1));
  absl::Status status = storage::RunInTransaction(
      db(), [&](storage::Transaction& tx) { return once.Lookup(tx).status(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace lotse::api
