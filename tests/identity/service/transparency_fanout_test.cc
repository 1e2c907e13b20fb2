#include "services/identity/service/transparency_fanout.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace lotse::identity {
namespace {

namespace pb = ::lotse::audit::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Serves `total` records about each person in pages of `page`, after an
// optional delay; remembers what it was asked.
class FakeSource : public AuditRecordSource {
 public:
  FakeSource(int total, int page, absl::Duration delay = absl::ZeroDuration())
      : total_(total), page_(page), delay_(delay) {}

  absl::StatusOr<pb::ListAuditRecordsResponse> List(
      const pb::ListAuditRecordsRequest& request,
      absl::Time deadline) override {
    (void)deadline;  // a slow peer that ignores it
    ++calls;
    {
      absl::MutexLock lock(&mu_);
      asked_.push_back(request.person());
    }
    if (!fail.ok()) return fail;
    absl::SleepFor(delay_);
    int from = 0;
    if (!request.page_token().empty() &&
        !absl::SimpleAtoi(request.page_token(), &from)) {
      return absl::InvalidArgumentError("token");
    }
    pb::ListAuditRecordsResponse response;
    for (int i = from; i < std::min(total_, from + page_); ++i) {
      pb::AuditRecord* r = response.add_records();
      r->set_seq(i + 1);
      r->set_resource(request.person());
      *r->mutable_time() =
          google::protobuf::util::TimeUtil::SecondsToTimestamp(i);
    }
    if (from + page_ < total_) {
      response.set_next_page_token(absl::StrCat(from + page_));
    }
    return response;
  }

  std::vector<std::string> asked() {
    absl::MutexLock lock(&mu_);
    return asked_;
  }

  std::atomic<int> calls{0};
  absl::Status fail;

 private:
  const int total_;
  const int page_;
  const absl::Duration delay_;
  absl::Mutex mu_;
  std::vector<std::string> asked_ ABSL_GUARDED_BY(mu_);
};

TEST(GatherAuditRecordsTest, ReadsEveryPageOfEveryPeerForEveryPerson) {
  auto cases = std::make_shared<FakeSource>(25, 10);
  auto courses = std::make_shared<FakeSource>(0, 10);
  GatheredRecords got = GatherAuditRecords(
      {{"cases", cases}, {"courses", courses}}, {"persons/a", "persons/m"},
      absl::InfinitePast(), absl::InfiniteFuture(),
      absl::Now() + absl::Seconds(10));
  EXPECT_THAT(got.answered, ElementsAre("cases", "courses"));
  EXPECT_THAT(got.missing, IsEmpty());
  ASSERT_EQ(got.records.size(), 2u);
  EXPECT_EQ(got.records[0].service, "cases");
  EXPECT_EQ(got.records[0].records.size(), 50u);  // 3 pages x 2 persons
  EXPECT_EQ(cases->calls.load(), 6);
  EXPECT_TRUE(got.records[1].records.empty());
}

TEST(GatherAuditRecordsTest, NamesASlowPeerMissingAndDoesNotWaitForIt) {
  auto fast = std::make_shared<FakeSource>(3, 10);
  auto slow = std::make_shared<FakeSource>(3, 10, absl::Seconds(3));
  const absl::Time begin = absl::Now();
  GatheredRecords got =
      GatherAuditRecords({{"cases", fast}, {"placement", slow}}, {"persons/a"},
                         absl::InfinitePast(), absl::InfiniteFuture(),
                         begin + absl::Milliseconds(300));
  EXPECT_LT(absl::Now() - begin, absl::Seconds(2));
  EXPECT_THAT(got.answered, ElementsAre("cases"));
  EXPECT_THAT(got.missing, ElementsAre("placement"));
  ASSERT_EQ(got.records.size(), 1u);
  EXPECT_EQ(got.records[0].records.size(), 3u);
}

TEST(GatherAuditRecordsTest, AFailingPeerIsMissingWithNoneOfItsRecords) {
  auto ok = std::make_shared<FakeSource>(2, 10);
  auto failing = std::make_shared<FakeSource>(2, 10);
  failing->fail = absl::PermissionDeniedError("no");
  GatheredRecords got = GatherAuditRecords(
      {{"courses", failing}, {"cases", ok}, {"placement", nullptr}},
      {"persons/a"}, absl::InfinitePast(), absl::InfiniteFuture(),
      absl::Now() + absl::Seconds(5));
  EXPECT_THAT(got.answered, ElementsAre("cases"));
  EXPECT_THAT(got.missing, ElementsAre("courses", "placement"));
}

TEST(GatherAuditRecordsTest, AsksForEachPersonId) {
  auto cases = std::make_shared<FakeSource>(1, 10);
  GatherAuditRecords({{"cases", cases}}, {"persons/s", "persons/m"},
                     absl::InfinitePast(), absl::InfiniteFuture(),
                     absl::Now() + absl::Seconds(5));
  EXPECT_THAT(cases->asked(), ElementsAre("persons/s", "persons/m"));
}

TEST(ParseAuditPeersTest, ReadsTheThreeOtherServices) {
  absl::StatusOr<std::vector<AuditPeerAddress>> peers = ParseAuditPeers(
      "cases=127.0.0.1:50052,courses=c:50053, placement=p:50054");
  ASSERT_TRUE(peers.ok()) << peers.status();
  ASSERT_EQ(peers->size(), 3u);
  EXPECT_EQ((*peers)[2].service, "placement");
  EXPECT_EQ((*peers)[2].address, "p:50054");
  EXPECT_TRUE(ParseAuditPeers("")->empty());
}

TEST(ParseAuditPeersTest, RefusesUnknownAndMalformedPeers) {
  for (const char* bad :
       {"identity=x:1", "cases", "cases=a:1,cases=b:2", "billing=x:1"}) {
    EXPECT_EQ(ParseAuditPeers(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace lotse::identity
