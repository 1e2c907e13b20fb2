// The placement service's share of the data lifecycle, on SQLite and
// PostgreSQL: identity's PersonErased through the event handler (profile,
// facts and notices gone, placements anonymised with the statistics
// unchanged, the match index without the candidate), events about an
// erased person dropped, and the purge tasks (due, not due, held).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/events/outbox.h"
#include "common/lifecycle/erasure.h"
#include "common/lifecycle/purge.h"
#include "common/lifecycle/retention.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/identity/v1/lifecycle.pb.h"
#include "tests/placement/service/placement_server_fixture.h"

namespace lotse::placement {
namespace {

using ::lotse::identity::v1::ErasureReported;
using ::lotse::identity::v1::ServiceErasure;

// The placement lines of config/retention.conf.
constexpr char kRules[] = R"(
retain candidate-profile category=EMPLOYMENT keep=2y from=LAST_CHANGE basis="profiles"
retain placement category=EMPLOYMENT keep=3y from=END basis="SGB II 61"
retain offer category=EMPLOYMENT keep=1y from=WITHDRAW basis="offers"
)";

class PlacementLifecycleTest : public PlacementServerTest {
 protected:
  void SetUp() override {
    PlacementServerTest::SetUp();
    if (HasFatalFailure()) return;
    absl::StatusOr<lifecycle::RetentionRules> rules =
        lifecycle::RetentionRules::Parse(kRules);
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    runtime_.retention = &rules_;
  }

  absl::Status Erase(const std::string& person) {
    identity::v1::PersonErased erased;
    erased.set_person(person);
    erased.set_requesting_agency("agencies/jobcenter-koeln");
    return Deliver(erased, "identity");
  }

  absl::Status Hold(const std::string& person) {
    identity::v1::LegalHoldPlaced placed;
    identity::v1::LegalHold* hold = placed.mutable_hold();
    hold->set_name(absl::StrCat("legalHolds/h", ++counter_));
    hold->set_subject(person);
    hold->set_person(person);
    hold->set_reason("court case");
    *hold->mutable_end_date() = InDays(3650);
    return Deliver(placed, "identity");
  }

  std::vector<ErasureReported> Reports() {
    std::vector<ErasureReported> out;
    const int64_t last =
        Count("SELECT COALESCE(MAX(seq), 0) FROM event_outbox");
    for (int64_t seq = 1; seq <= last; ++seq) {
      auto tx = db().Begin(storage::TxMode::kReadOnly);
      EXPECT_TRUE(tx.ok());
      if (!tx.ok()) return out;
      absl::StatusOr<lotse::events::v1::Event> e =
          events::ReadOutboxEvent(**tx, seq);
      if (!e.ok()) continue;  // sealed under a shredded key, or no row
      ErasureReported r;
      if (e->payload().UnpackTo(&r)) out.push_back(r);
    }
    return out;
  }

  v1::PlacementStatistics Statistics() {
    v1::GetPlacementStatisticsRequest r;
    r.set_municipality_code("05315000");
    *r.mutable_period_start() = InDays(-1);
    *r.mutable_period_end() = InDays(1);
    v1::PlacementStatistics out;
    auto ctx = Ctx();
    grpc::Status s =
        As("kim-koeln")->GetPlacementStatistics(ctx.get(), r, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // The persons the match index offers for `offer`.
  std::vector<std::string> MatchedCandidates(const v1::Offer& offer) {
    v1::MatchCandidatesForOfferRequest r;
    r.set_offer(offer.name());
    r.set_page_size(100);
    v1::MatchCandidatesForOfferResponse out;
    auto ctx = Ctx();
    grpc::Status s =
        As("jobcenter-koeln")->MatchCandidatesForOffer(ctx.get(), r, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> persons;
    for (const v1::CandidateMatch& m : out.matches()) {
      persons.push_back(m.candidate().person());
    }
    return persons;
  }

  static bool Contains(const std::vector<std::string>& v,
                       const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }

  lifecycle::PurgeBatch Purge(const std::string& kind, absl::Time now) {
    lifecycle::PurgeBatch batch;
    for (const lifecycle::PurgeTask& task : PlacementPurgeTasks()) {
      if (task.kind != kind) continue;
      const absl::Time cutoff = rules_.Find(kind)->Cutoff(now);
      absl::Status s = storage::RunInTransaction(
          db(), [&](storage::Transaction& tx) -> absl::Status {
            absl::StatusOr<lifecycle::PurgeBatch> b =
                task.run(tx, cutoff, now, 100);
            if (!b.ok()) return b.status();
            batch = *b;
            return absl::OkStatus();
          });
      EXPECT_TRUE(s.ok()) << s;
    }
    return batch;
  }

  lifecycle::RetentionRules rules_;
};

TEST_P(PlacementLifecycleTest, ErasureLeavesStatisticsAndOffersAlone) {
  v1::Offer offer = MustCreateOffer(ValidOffer(v1::OFFER_KIND_JOB, 5));
  std::vector<std::string> persons;
  std::vector<v1::Placement> placements;
  for (int i = 0; i < 6; ++i) {
    persons.push_back(NewPerson());
    MustCreateProfile(persons.back());
    placements.push_back(MustPropose(offer, persons.back()));
  }
  ASSERT_TRUE(Apply("jobcenter-koeln", &placements[0]).ok());
  ASSERT_TRUE(Hire("jobcenter-koeln", &placements[0]).ok());
  ASSERT_TRUE(ResultEvent(persons[0], type::v1::CEFR_LEVEL_B2).ok());
  const std::string gone = persons[0];
  const v1::PlacementStatistics before = Statistics();
  const v1::Offer other_offer = MustCreateOffer(ValidOffer());
  ASSERT_TRUE(Contains(MatchedCandidates(other_offer), gone));

  ASSERT_TRUE(Erase(gone).ok());

  // The statistics count the anonymised placement as before.
  const v1::PlacementStatistics after = Statistics();
  ASSERT_EQ(after.rows_size(), before.rows_size());
  for (int i = 0; i < after.rows_size(); ++i) {
    EXPECT_EQ(after.rows(i).proposing_agency(),
              before.rows(i).proposing_agency());
    EXPECT_EQ(after.rows(i).proposed_count(), before.rows(i).proposed_count());
    EXPECT_EQ(after.rows(i).hired_count(), before.rows(i).hired_count());
    EXPECT_EQ(after.rows(i).open_count(), before.rows(i).open_count());
  }
  EXPECT_EQ(after.rows(0).hired_count(), 1);
  // The offer stays, with its positions.
  EXPECT_EQ(GetOffer(offer.name()).positions_open(), 4);
  // The match index no longer knows the candidate.
  const std::vector<std::string> matched = MatchedCandidates(other_offer);
  EXPECT_FALSE(Contains(matched, gone));
  EXPECT_TRUE(Contains(matched, persons[1]));
  // Profile and placement answer as unknown ones.
  v1::GetCandidateProfileRequest get_profile;
  get_profile.set_name(absl::StrCat("candidates/", gone.substr(8)));
  v1::GetCandidateProfileResponse profile;
  auto ctx = Ctx();
  EXPECT_EQ(As("jobcenter-koeln")
                ->GetCandidateProfile(ctx.get(), get_profile, &profile)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::GetPlacementRequest get_placement;
  get_placement.set_name(placements[0].name());
  v1::Placement placement;
  auto ctx2 = Ctx();
  EXPECT_EQ(As("jobcenter-koeln")
                ->GetPlacement(ctx2.get(), get_placement, &placement)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::ListPlacementsRequest list;
  list.set_offer(offer.name());
  v1::ListPlacementsResponse listed;
  auto ctx3 = Ctx();
  ASSERT_TRUE(
      As("jobcenter-koeln")->ListPlacements(ctx3.get(), list, &listed).ok());
  EXPECT_EQ(listed.placements_size(), 5);
  // No row names the person.
  const std::string id = gone.substr(8);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM placement_placements "
                               "WHERE person_id = '",
                               id, "'")),
            0);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM placement_person_facts "
                               "WHERE person_id = '",
                               id, "'")),
            0);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM placement_notices "
                               "WHERE person_id = '",
                               id, "'")),
            0);
  // Reported once, all erased: profile, facts, placement (notices when a
  // hire made one).
  std::vector<ErasureReported> reports = Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].service(), "placement");
  EXPECT_EQ(reports[0].state(), ServiceErasure::STATE_DONE);
  EXPECT_GE(reports[0].erased_records(), 3);
}

TEST_P(PlacementLifecycleTest, EventsAboutAnErasedPersonAreDropped) {
  const std::string gone = NewPerson();
  MustCreateProfile(gone);
  ASSERT_TRUE(Erase(gone).ok());
  const std::string id = gone.substr(8);
  // A residence change or course result arriving late writes nothing.
  ASSERT_TRUE(ResidenceEvent(gone, type::v1::WORK_PERMISSION_PERMITTED).ok());
  ASSERT_TRUE(ResultEvent(gone, type::v1::CEFR_LEVEL_C1).ok());
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM placement_person_facts "
                               "WHERE person_id = '",
                               id, "'")),
            0);
  // A second erasure reports nothing more; corrections change nothing.
  ASSERT_TRUE(Erase(gone).ok());
  identity::v1::PersonRectified rectified;
  rectified.set_person(gone);
  ASSERT_TRUE(Deliver(rectified, "identity").ok());
  EXPECT_EQ(Reports().size(), 1u);
  // A malformed erasure is refused.
  absl::Status bad = Erase("persons");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(PlacementLifecycleTest, PurgeTakesWhatIsDueAndSkipsHeldPersons) {
  v1::Offer offer = MustCreateOffer(ValidOffer(v1::OFFER_KIND_JOB, 5));
  const std::string due = NewPerson(), held = NewPerson(), open = NewPerson();
  MustCreateProfile(due);
  MustCreateProfile(held);
  MustCreateProfile(open);
  const absl::Time t0 = clock_->Now();
  std::vector<v1::Placement> ps;
  for (const std::string& p : {due, held, open}) {
    ps.push_back(MustPropose(offer, p));
  }
  for (int i = 0; i < 2; ++i) {
    v1::WithdrawPlacementRequest r;
    r.set_name(ps[i].name());
    r.set_etag(ps[i].etag());
    r.set_reason(v1::PLACEMENT_END_REASON_CANDIDATE_DECLINED);
    auto ctx = Ctx();
    ASSERT_TRUE(
        As("jobcenter-koeln")->WithdrawPlacement(ctx.get(), r, &ps[i]).ok());
  }
  ASSERT_TRUE(Hold(held).ok());
  const v1::PlacementStatistics before = Statistics();

  // Two years on: the placements ended too recently, the profiles (last
  // changed at t0) are due except the held one.
  const absl::Time two_years = t0 + absl::Hours(24 * (365 * 2 + 2));
  EXPECT_EQ(Purge("placement", two_years).purged, 0);
  lifecycle::PurgeBatch profiles = Purge("candidate-profile", two_years);
  EXPECT_EQ(profiles.purged, 2);
  EXPECT_EQ(profiles.held, 1);
  const std::vector<std::string> matched =
      MatchedCandidates(MustCreateOffer(ValidOffer()));
  EXPECT_FALSE(Contains(matched, due));
  EXPECT_TRUE(Contains(matched, held));
  // Three years on: the ended placement of the unheld person loses its
  // person; the open one has not ended; the statistics stay the same.
  const absl::Time three_years = t0 + absl::Hours(24 * (365 * 3 + 2));
  lifecycle::PurgeBatch placements = Purge("placement", three_years);
  EXPECT_EQ(placements.purged, 1);
  EXPECT_EQ(placements.held, 1);
  ASSERT_EQ(placements.persons.size(), 1u);
  EXPECT_EQ(absl::StrCat("persons/", placements.persons[0]), due);
  const v1::PlacementStatistics after = Statistics();
  ASSERT_GT(after.rows_size(), 0);
  EXPECT_EQ(after.rows(0).proposed_count(), before.rows(0).proposed_count());
  EXPECT_EQ(after.rows(0).withdrawn_count(), before.rows(0).withdrawn_count());
}

TEST_P(PlacementLifecycleTest, WithdrawnOfferIsPurgedAYearLater) {
  v1::Offer unused = MustCreateOffer(ValidOffer());
  v1::Offer used = MustCreateOffer(ValidOffer());
  const std::string person = NewPerson();
  MustCreateProfile(person);
  MustPropose(used, person);
  for (v1::Offer* o : {&unused, &used}) {
    v1::WithdrawOfferRequest r;
    r.set_name(o->name());
    r.set_etag(GetOffer(o->name()).etag());
    r.set_reason("filled elsewhere");
    auto ctx = Ctx();
    ASSERT_TRUE(As("aa-koeln")->WithdrawOffer(ctx.get(), r, o).ok());
  }
  const absl::Time now = clock_->Now();
  EXPECT_EQ(Purge("offer", now + absl::Hours(24 * 300)).purged, 0);
  // Due a year later; the offer placements were made to stays for the
  // statistics.
  EXPECT_EQ(Purge("offer", now + absl::Hours(24 * 370)).purged, 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM placement_offers"), 1);
  v1::GetOfferRequest get;
  get.set_name(unused.name());
  v1::Offer out;
  auto ctx = Ctx();
  EXPECT_EQ(As("kim-koeln")->GetOffer(ctx.get(), get, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(PlacementLifecycleTest);

}  // namespace
}  // namespace lotse::placement
