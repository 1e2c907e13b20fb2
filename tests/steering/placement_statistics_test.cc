// GetPlacementStatistics through the placement service's real mTLS server:
// counts by outcome over all agencies and per proposing agency, small
// groups suppressed, rows limited by who asks, bad requests refused.
#include <string>

#include "gtest/gtest.h"
#include "tests/placement/service/placement_server_fixture.h"

namespace lotse::placement {
namespace {

class PlacementStatisticsTest : public PlacementServerTest {
 protected:
  // Eight placements to an offer in Köln: six proposed by the Jobcenter
  // (one hired, two applied, one withdrawn, one rejected, one proposed)
  // and two by the employment agency (proposed).
  void ProposeSome() {
    const v1::Offer offer = MustCreateOffer(ValidOffer(v1::OFFER_KIND_JOB, 3));
    for (int i = 0; i < 8; ++i) {
      const std::string person = NewPerson();
      MustCreateProfile(person);
      v1::Placement p;
      grpc::Status s =
          Propose(i < 6 ? "jobcenter-koeln" : "aa-koeln", offer, person, &p);
      ASSERT_TRUE(s.ok()) << s.error_message();
      if (i == 0) {
        ASSERT_TRUE(Apply("jobcenter-koeln", &p).ok());
        ASSERT_TRUE(Hire("jobcenter-koeln", &p).ok());
      } else if (i == 1 || i == 2) {
        ASSERT_TRUE(Apply("jobcenter-koeln", &p).ok());
      } else if (i == 3) {
        v1::WithdrawPlacementRequest r;
        r.set_name(p.name());
        r.set_etag(p.etag());
        r.set_reason(v1::PLACEMENT_END_REASON_CANDIDATE_DECLINED);
        auto ctx = Ctx();
        ASSERT_TRUE(
            As("jobcenter-koeln")->WithdrawPlacement(ctx.get(), r, &p).ok());
      } else if (i == 4) {
        v1::RejectPlacementRequest r;
        r.set_name(p.name());
        r.set_etag(p.etag());
        r.set_reason(v1::PLACEMENT_END_REASON_EMPLOYER_DECLINED);
        auto ctx = Ctx();
        ASSERT_TRUE(
            As("jobcenter-koeln")->RejectPlacement(ctx.get(), r, &p).ok());
      }
    }
  }

  grpc::Status Statistics(const std::string& as, v1::PlacementStatistics* out,
                          const std::string& code = "05315000", int from = -1,
                          int to = 1) {
    v1::GetPlacementStatisticsRequest r;
    r.set_municipality_code(code);
    *r.mutable_period_start() = InDays(from);
    *r.mutable_period_end() = InDays(to);
    auto ctx = Ctx();
    return As(as)->GetPlacementStatistics(ctx.get(), r, out);
  }
};

TEST_P(PlacementStatisticsTest,
       MunicipalitySeesOutcomesBySmallGroupsSuppressed) {
  ProposeSome();
  v1::PlacementStatistics stats;
  grpc::Status s = Statistics("kim-koeln", &stats);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stats.suppression_threshold(), 5);
  ASSERT_EQ(stats.rows_size(), 3) << stats.DebugString();
  const v1::PlacementOutcomeRow& all = stats.rows(0);
  EXPECT_EQ(all.proposing_agency(), "");
  EXPECT_FALSE(all.suppressed());
  EXPECT_EQ(all.proposed_count(), 8);
  EXPECT_EQ(all.hired_count(), 1);
  EXPECT_EQ(all.withdrawn_count(), 1);
  EXPECT_EQ(all.rejected_count(), 1);
  EXPECT_EQ(all.open_count(), 5);
  // The employment agency proposed two: too few to show.
  EXPECT_EQ(stats.rows(1).proposing_agency(), "agencies/aa-koeln");
  EXPECT_TRUE(stats.rows(1).suppressed());
  EXPECT_EQ(stats.rows(1).proposed_count(), 0);
  const v1::PlacementOutcomeRow& jc = stats.rows(2);
  EXPECT_EQ(jc.proposing_agency(), "agencies/jobcenter-koeln");
  EXPECT_EQ(jc.proposed_count(), 6);
  EXPECT_EQ(jc.open_count(), 3);
  EXPECT_EQ(jc.hired_count(), 1);

  // A period before the proposals counts none.
  s = Statistics("kim-koeln", &stats, "05315000", -30, -10);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(stats.rows_size(), 1);
  EXPECT_TRUE(stats.rows(0).suppressed());
}

TEST_P(PlacementStatisticsTest, OthersSeeTheirOwnRowOrNothing) {
  ProposeSome();
  v1::PlacementStatistics stats;
  grpc::Status s = Statistics("jobcenter-koeln", &stats);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(stats.rows_size(), 1) << stats.DebugString();
  EXPECT_EQ(stats.rows(0).proposing_agency(), "agencies/jobcenter-koeln");
  EXPECT_EQ(stats.rows(0).proposed_count(), 6);

  s = Statistics("vhs-koeln", &stats);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "STATISTICS_NOT_ALLOWED");
  // Another municipality's case manager is no KOMMUNE of Köln here.
  s = Statistics("kim-koeln", &stats, "05314000");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_P(PlacementStatisticsTest, BadRequestsAreRefusedWithFieldViolations) {
  v1::PlacementStatistics stats;
  grpc::Status s = Statistics("kim-koeln", &stats, "5315");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(s), (std::set<std::string>{"municipality_code"}));
  s = Statistics("kim-koeln", &stats, "05315000", 5, 1);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(s), (std::set<std::string>{"period_end"}));
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(PlacementStatisticsTest);

}  // namespace
}  // namespace lotse::placement
