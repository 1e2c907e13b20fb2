// MatchIndex: ranking order, filters, limits, updates, agreement with the
// reference Evaluate(), and concurrent use.
#include "services/placement/domain/match_index.h"

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/placement/domain/matching.h"
#include "tests/placement/domain/test_facts.h"

namespace lotse::placement {
namespace {

using ::lotse::placement::testing::Candidate;
using ::lotse::placement::testing::kStart;
using ::lotse::placement::testing::kToday;
using ::lotse::placement::testing::Offer;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

RankOptions Options() {
  RankOptions o;
  o.today = kToday;
  return o;
}

std::vector<std::string> OfferIds(const std::vector<RankedOffer>& ranked) {
  std::vector<std::string> ids;
  for (const RankedOffer& r : ranked) ids.push_back(r.offer_id);
  return ids;
}

std::vector<std::string> PersonIds(const std::vector<RankedCandidate>& ranked) {
  std::vector<std::string> ids;
  for (const RankedCandidate& r : ranked) ids.push_back(r.person_id);
  return ids;
}

TEST(MatchIndexTest, OffersRankedByTierThenScoreThenStartThenId) {
  MatchIndex index;
  OfferFacts best = Offer("best");
  OfferFacts weaker = Offer("weaker");
  weaker.required_skills = {"gabelstapler", "schweissen"};  // 1 of 2
  OfferFacts unverified = Offer("unverified");
  unverified.recognition_required = true;  // PARTIAL below -> UNVERIFIED
  unverified.required_skills.clear();      // higher score than "weaker"
  OfferFacts excluded = Offer("excluded");
  excluded.required_language_level = type::v1::CEFR_LEVEL_C1;
  // Same score as "best": the earlier start first, then by id.
  OfferFacts earlier = Offer("zz-earlier");
  earlier.start_day = kStart - 1;
  OfferFacts same_a = Offer("aa-same");
  for (const OfferFacts& o :
       {best, weaker, unverified, excluded, earlier, same_a}) {
    index.UpsertOffer(o);
  }
  CandidateFacts c = Candidate("p1");
  c.qualifications = {{"51312", v1::RECOGNITION_STATE_PARTIAL}};

  std::vector<RankedOffer> ranked = index.RankOffers(c, Options());
  EXPECT_THAT(OfferIds(ranked), ElementsAre("zz-earlier", "aa-same", "best",
                                            "weaker", "unverified"));
  EXPECT_EQ(ranked[0].eligibility, v1::ELIGIBILITY_ELIGIBLE);
  EXPECT_EQ(ranked.back().eligibility, v1::ELIGIBILITY_UNVERIFIED);
  EXPECT_GT(ranked.back().score, ranked[3].score);  // tier beats score

  RankOptions with_excluded = Options();
  with_excluded.include_excluded = true;
  ranked = index.RankOffers(c, with_excluded);
  ASSERT_EQ(ranked.size(), 6u);
  EXPECT_EQ(ranked.back().offer_id, "excluded");
  EXPECT_EQ(ranked.back().eligibility, v1::ELIGIBILITY_EXCLUDED);
  EXPECT_EQ(ranked.back().score, 0);
}

TEST(MatchIndexTest, NeedsApprovalRanksWithEligibleByScore) {
  // matching.proto: "ELIGIBLE and NEEDS_APPROVAL together by score"; at an
  // equal score ELIGIBLE comes first.
  MatchIndex index;
  CandidateFacts approval_strong = Candidate("approval-strong");
  approval_strong.work_permission = type::v1::WORK_PERMISSION_NEEDS_APPROVAL;
  CandidateFacts eligible_weak = Candidate("eligible-weak");
  eligible_weak.skills.pop_back();
  CandidateFacts approval_equal = Candidate("a-approval-equal");
  approval_equal.work_permission = type::v1::WORK_PERMISSION_NEEDS_APPROVAL;
  approval_equal.skills.pop_back();
  CandidateFacts unknown = Candidate("unknown");
  unknown.work_permission = type::v1::WORK_PERMISSION_UNSPECIFIED;
  CandidateFacts not_permitted = Candidate("not-permitted");
  not_permitted.work_permission = type::v1::WORK_PERMISSION_NOT_PERMITTED;
  for (const CandidateFacts& c : {approval_strong, eligible_weak,
                                  approval_equal, unknown, not_permitted}) {
    index.UpsertCandidate(c);
  }
  const std::vector<RankedCandidate> ranked =
      index.RankCandidates(Offer("o1"), Options(), nullptr);
  EXPECT_THAT(PersonIds(ranked), ElementsAre("approval-strong", "eligible-weak",
                                             "a-approval-equal", "unknown"));
  EXPECT_EQ(ranked[0].eligibility, v1::ELIGIBILITY_NEEDS_APPROVAL);
  EXPECT_EQ(ranked[1].eligibility, v1::ELIGIBILITY_ELIGIBLE);
  EXPECT_EQ(ranked[1].score, ranked[2].score);
  EXPECT_EQ(ranked[3].eligibility, v1::ELIGIBILITY_UNVERIFIED);
}

TEST(MatchIndexTest, NotPermittedRanksNoOffers) {
  MatchIndex index;
  index.UpsertOffer(Offer("o1"));
  CandidateFacts c = Candidate("p1");
  c.work_permission = type::v1::WORK_PERMISSION_NOT_PERMITTED;
  EXPECT_THAT(index.RankOffers(c, Options()), IsEmpty());
  RankOptions with_excluded = Options();
  with_excluded.include_excluded = true;
  const std::vector<RankedOffer> ranked = index.RankOffers(c, with_excluded);
  ASSERT_EQ(ranked.size(), 1u);
  EXPECT_EQ(ranked[0].eligibility, v1::ELIGIBILITY_EXCLUDED);
}

TEST(MatchIndexTest, CertifiedLevelAgainstRequirement) {
  MatchIndex index;
  OfferFacts b1 = Offer("b1");
  b1.required_language_level = type::v1::CEFR_LEVEL_B1;
  index.UpsertOffer(b1);
  CandidateFacts c = Candidate("p1");
  c.certified_language_level = type::v1::CEFR_LEVEL_B1;
  EXPECT_THAT(OfferIds(index.RankOffers(c, Options())), ElementsAre("b1"));
  c.certified_language_level = type::v1::CEFR_LEVEL_A2;
  EXPECT_THAT(index.RankOffers(c, Options()), IsEmpty());
}

TEST(MatchIndexTest, WithheldCategoriesAreNotUsed) {
  MatchIndex index;
  OfferFacts c1 = Offer("c1");
  c1.required_language_level = type::v1::CEFR_LEVEL_C1;
  index.UpsertOffer(c1);
  CandidateFacts c = Candidate("p1");  // B1: excluded when seen
  c.work_permission = type::v1::WORK_PERMISSION_NOT_PERMITTED;
  RankOptions blind = Options();
  blind.see_language = false;
  blind.see_residence = false;
  std::vector<RankedOffer> ranked = index.RankOffers(c, blind);
  ASSERT_EQ(ranked.size(), 1u);
  EXPECT_EQ(ranked[0].eligibility, v1::ELIGIBILITY_UNVERIFIED);
  // The same through a WithheldFor copy.
  ranked = index.RankOffers(c.WithheldFor(false, false), Options());
  ASSERT_EQ(ranked.size(), 1u);
  EXPECT_EQ(ranked[0].eligibility, v1::ELIGIBILITY_UNVERIFIED);

  index.UpsertCandidate(c);
  const std::vector<RankedCandidate> candidates =
      index.RankCandidates(c1, blind, nullptr);
  ASSERT_EQ(candidates.size(), 1u);
  EXPECT_EQ(candidates[0].eligibility, v1::ELIGIBILITY_UNVERIFIED);
  EXPECT_THAT(index.RankCandidates(c1, Options(), nullptr), IsEmpty());
}

TEST(MatchIndexTest, KindFilter) {
  MatchIndex index;
  OfferFacts job = Offer("job");
  OfferFacts apprenticeship = Offer("apprenticeship");
  apprenticeship.kind = v1::OFFER_KIND_APPRENTICESHIP;
  apprenticeship.start_day = kStart + 1;
  index.UpsertOffer(job);
  index.UpsertOffer(apprenticeship);
  CandidateFacts c = Candidate("p1");
  EXPECT_THAT(OfferIds(index.RankOffers(c, Options())),
              ElementsAre("job", "apprenticeship"));
  c.wanted_kinds = {v1::OFFER_KIND_APPRENTICESHIP};
  EXPECT_THAT(OfferIds(index.RankOffers(c, Options())),
              ElementsAre("apprenticeship"));
  RankOptions jobs = Options();
  jobs.kinds = {v1::OFFER_KIND_JOB};  // the request's kind wins
  EXPECT_THAT(OfferIds(index.RankOffers(c, jobs)), ElementsAre("job"));
  RankOptions unspecified = Options();
  unspecified.kinds = {v1::OFFER_KIND_UNSPECIFIED};  // = the candidate's
  EXPECT_THAT(OfferIds(index.RankOffers(c, unspecified)),
              ElementsAre("apprenticeship"));

  index.UpsertCandidate(c);
  EXPECT_THAT(index.RankCandidates(job, Options(), nullptr), IsEmpty());
  EXPECT_THAT(
      PersonIds(index.RankCandidates(apprenticeship, Options(), nullptr)),
      ElementsAre("p1"));
}

TEST(MatchIndexTest, PlaceDistanceRanksNearerFirst) {
  MatchIndex index;
  OfferFacts koeln = Offer("koeln");
  OfferFacts bonn = Offer("bonn");
  bonn.postal_code = "53111";
  bonn.place_centre = geo::PostalCodeCentre("53111");
  OfferFacts berlin = Offer("berlin");
  berlin.postal_code = "10115";
  berlin.place_centre = geo::PostalCodeCentre("10115");
  ASSERT_TRUE(bonn.place_centre && berlin.place_centre);
  index.UpsertOffer(berlin);
  index.UpsertOffer(bonn);
  index.UpsertOffer(koeln);
  CandidateFacts c = Candidate("p1");
  PlaceFacts place;
  place.postal_code = "50733";  // Köln-Nippes, a few km from 50667
  place.centre = geo::PostalCodeCentre("50733");
  place.max_distance_km = 30;
  c.preferred_places = {place};
  const std::vector<RankedOffer> ranked = index.RankOffers(c, Options());
  EXPECT_THAT(OfferIds(ranked), ElementsAre("koeln", "bonn", "berlin"));
  for (const RankedOffer& r : ranked) {
    EXPECT_FLOAT_EQ(r.score,
                    Evaluate(c, *index.GetOffer(r.offer_id), kToday).score);
  }
}

TEST(MatchIndexTest, LimitKeepsTheBest) {
  MatchIndex index;
  for (int i = 0; i < 50; ++i) {
    OfferFacts o = Offer(absl::StrCat("o", 100 + i));
    o.start_day = kStart + i;  // equal scores: earlier start first
    index.UpsertOffer(o);
  }
  RankOptions options = Options();
  options.limit = 3;
  EXPECT_THAT(OfferIds(index.RankOffers(Candidate("p1"), options)),
              ElementsAre("o100", "o101", "o102"));
  options.limit = 0;
  EXPECT_THAT(index.RankOffers(Candidate("p1"), options), IsEmpty());
}

TEST(MatchIndexTest, UpsertReplacesAndRemoveForgets) {
  MatchIndex index;
  for (const char* id : {"a", "b", "c", "d"}) index.UpsertOffer(Offer(id));
  EXPECT_EQ(index.offer_count(), 4u);

  OfferFacts changed = Offer("b");
  changed.required_language_level = type::v1::CEFR_LEVEL_C2;
  index.UpsertOffer(changed);
  EXPECT_EQ(index.offer_count(), 4u);
  EXPECT_EQ(index.GetOffer("b")->required_language_level,
            type::v1::CEFR_LEVEL_C2);
  EXPECT_THAT(OfferIds(index.RankOffers(Candidate("p1"), Options())),
              ElementsAre("a", "c", "d"));

  index.RemoveOffer("a");  // the last slot moves into the hole
  index.RemoveOffer("nope");
  EXPECT_EQ(index.offer_count(), 3u);
  EXPECT_FALSE(index.GetOffer("a"));
  EXPECT_TRUE(index.GetOffer("d"));
  EXPECT_THAT(OfferIds(index.RankOffers(Candidate("p1"), Options())),
              ElementsAre("c", "d"));

  index.UpsertCandidate(Candidate("p1"));
  index.UpsertCandidate(Candidate("p2"));
  EXPECT_EQ(index.candidate_count(), 2u);
  CandidateFacts inactive = Candidate("p1");
  inactive.active = false;
  index.UpsertCandidate(inactive);  // removes
  EXPECT_FALSE(index.GetCandidate("p1"));
  index.RemoveCandidate("p2");
  EXPECT_EQ(index.candidate_count(), 0u);
}

TEST(MatchIndexTest, VisibleFiltersCandidates) {
  MatchIndex index;
  for (const char* id : {"p1", "p2", "p3"})
    index.UpsertCandidate(Candidate(id));
  int asked = 0;
  const std::vector<RankedCandidate> ranked = index.RankCandidates(
      Offer("o1"), Options(), [&](const CandidateFacts& c) {
        ++asked;
        return c.person_id != "p2";
      });
  EXPECT_THAT(PersonIds(ranked), ElementsAre("p1", "p3"));
  EXPECT_EQ(asked, 3);
}

// Random facts over small vocabularies, so that codes, skills and places
// collide often.
OfferFacts RandomOffer(std::mt19937& rng, int i) {
  static const char* const kCodes[] = {"51312", "51313", "51322", "51412",
                                       "26112", "81302", "81303", "xx"};
  static const char* const kPostal[] = {"50667", "53111", "10115", "99999",
                                        "45127"};
  static const char* const kSkills[] = {"sap",        "excel",  "gabelstapler",
                                        "schweissen", "pflege", "kasse"};
  auto pick = [&rng](int n) { return static_cast<int>(rng() % n); };
  OfferFacts o = Offer(absl::StrCat("o", i));
  o.kind = pick(2) ? v1::OFFER_KIND_JOB : v1::OFFER_KIND_APPRENTICESHIP;
  o.occupation_code = kCodes[pick(8)];
  o.postal_code = kPostal[pick(5)];
  o.place_centre = geo::PostalCodeCentre(o.postal_code);
  o.municipality_code = absl::StrCat("0531", pick(3), "000");
  o.hours = {static_cast<float>(pick(30)), static_cast<float>(30 + pick(11)),
             static_cast<DayPeriodMask>(pick(4) << 1)};
  o.start_day = kStart + pick(60);
  o.required_language_level = static_cast<type::v1::CefrLevel>(pick(5));
  o.required_skills.clear();
  for (int k = pick(4); k > 0; --k)
    o.required_skills.push_back(kSkills[pick(6)]);
  for (int k = pick(3); k > 0; --k) {
    o.required_qualification_codes.push_back(kCodes[pick(8)]);
  }
  o.recognition_required = pick(4) == 0;
  return o;
}

CandidateFacts RandomCandidate(std::mt19937& rng, int i) {
  static const char* const kCodes[] = {"51312", "51311", "51323",
                                       "26112", "81304", "yy"};
  static const char* const kPostal[] = {"50667", "53111", "10115", "99999",
                                        "40210"};
  static const char* const kSkills[] = {"sap",        "excel",  "gabelstapler",
                                        "schweissen", "pflege", "unbekannt"};
  auto pick = [&rng](int n) { return static_cast<int>(rng() % n); };
  CandidateFacts c;
  c.person_id = absl::StrCat("p", i);
  if (pick(3) == 0) c.wanted_kinds = {v1::OFFER_KIND_JOB};
  c.work_permission = static_cast<type::v1::WorkPermission>(pick(4));
  if (pick(4) == 0) c.work_permission_valid_until_day = kToday - 5 + pick(10);
  c.certified_language_level = static_cast<type::v1::CefrLevel>(pick(6));
  c.stated_language_level = static_cast<type::v1::CefrLevel>(pick(6));
  for (int k = pick(3); k > 0; --k) {
    c.experience.push_back({kCodes[pick(6)], pick(60)});
  }
  for (int k = pick(5); k > 0; --k) {
    c.skills.push_back(
        {kSkills[pick(6)], static_cast<v1::SkillLevel>(pick(4))});
  }
  for (int k = pick(3); k > 0; --k) {
    c.qualifications.push_back(
        {kCodes[pick(6)], static_cast<v1::RecognitionState>(pick(7))});
  }
  for (int k = pick(3); k > 0; --k) {
    PlaceFacts p;
    if (pick(3) == 0) {
      p.municipality_code = absl::StrCat("0531", pick(3), "000");
    } else {
      p.postal_code = kPostal[pick(5)];
      p.centre = geo::PostalCodeCentre(p.postal_code);
      p.max_distance_km = pick(60);
    }
    c.preferred_places.push_back(p);
  }
  if (pick(2)) {
    c.preferred_hours = {static_cast<float>(pick(30)),
                         static_cast<float>(20 + pick(21)),
                         static_cast<DayPeriodMask>(pick(8) << 1)};
  }
  if (pick(2)) c.available_from_day = kStart - 30 + pick(150);
  return c;
}

// Ranks for the first `queries` candidates and offers and checks every
// result against Evaluate(); returns how many were compared.
int ExpectAgreesWithEvaluate(const MatchIndex& index,
                             const std::vector<CandidateFacts>& candidates,
                             const std::vector<OfferFacts>& offers,
                             int queries) {
  RankOptions all = Options();
  all.include_excluded = true;
  int compared = 0;
  for (int q = 0; q < queries; ++q) {
    const CandidateFacts& c = candidates[q];
    for (const RankedOffer& r : index.RankOffers(c, all)) {
      const OfferFacts o = *index.GetOffer(r.offer_id);
      EXPECT_TRUE(WantsKind(c, o.kind));
      const MatchOutcome expected = Evaluate(c, o, kToday);
      EXPECT_EQ(r.eligibility, expected.eligibility)
          << c.person_id << " " << o.offer_id;
      EXPECT_EQ(r.score, expected.score) << c.person_id << " " << o.offer_id;
      EXPECT_FLOAT_EQ(static_cast<float>(Explain(c, o, kToday).score),
                      expected.score);
      ++compared;
    }
    const OfferFacts& o = offers[q];
    std::vector<RankedCandidate> ranked = index.RankCandidates(o, all, nullptr);
    for (size_t k = 0; k < ranked.size(); ++k) {
      const MatchOutcome expected =
          Evaluate(*index.GetCandidate(ranked[k].person_id), o, kToday);
      EXPECT_EQ(ranked[k].eligibility, expected.eligibility);
      EXPECT_EQ(ranked[k].score, expected.score);
      if (k > 0) {  // in ranking order
        EXPECT_LE(RankTier(ranked[k - 1].eligibility),
                  RankTier(ranked[k].eligibility));
        if (RankTier(ranked[k - 1].eligibility) ==
            RankTier(ranked[k].eligibility)) {
          EXPECT_GE(ranked[k - 1].score, ranked[k].score);
        }
      }
      ++compared;
    }
  }
  return compared;
}

TEST(MatchIndexTest, AgreesWithEvaluateOnRandomPairs) {
  std::mt19937 rng(7);
  MatchIndex index;
  std::vector<OfferFacts> offers;
  std::vector<CandidateFacts> candidates;
  for (int i = 0; i < 300; ++i) {
    offers.push_back(RandomOffer(rng, i));
    index.UpsertOffer(offers.back());
    candidates.push_back(RandomCandidate(rng, i));
    index.UpsertCandidate(candidates.back());
  }
  EXPECT_GT(ExpectAgreesWithEvaluate(index, candidates, offers, 40), 5000);
}

TEST(MatchIndexTest, AgreesWithEvaluateAfterReplacingAndRemoving) {
  // Enough churn that the pools of skills, places etc. are compacted
  // several times.
  std::mt19937 rng(8);
  MatchIndex index;
  std::vector<OfferFacts> offers;
  std::vector<CandidateFacts> candidates;
  for (int i = 0; i < 300; ++i) {
    offers.push_back(RandomOffer(rng, i));
    candidates.push_back(RandomCandidate(rng, i));
  }
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 300; ++i) {
      offers[i] = RandomOffer(rng, i);
      index.UpsertOffer(offers[i]);
      candidates[i] = RandomCandidate(rng, i);
      index.UpsertCandidate(candidates[i]);
    }
    for (int i = round % 7; i < 300; i += 7) {
      index.RemoveOffer(offers[i].offer_id);
      index.RemoveCandidate(candidates[i].person_id);
    }
  }
  // The last round removed every seventh, from 39 % 7 = 4 on: 43 of 300.
  EXPECT_EQ(index.offer_count(), 257u);
  EXPECT_EQ(index.candidate_count(), 257u);
  EXPECT_GT(ExpectAgreesWithEvaluate(index, candidates, offers, 40), 3000);
}

TEST(MatchIndexTest, ConcurrentReadersAndWriter) {
  MatchIndex index;
  std::mt19937 rng(11);
  for (int i = 0; i < 500; ++i) {
    index.UpsertOffer(RandomOffer(rng, i));
    index.UpsertCandidate(RandomCandidate(rng, i));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> rankings{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937 local(100 + t);
      while (!stop.load()) {
        RankOptions options = Options();
        options.limit = 20;
        const std::vector<RankedOffer> offers =
            index.RankOffers(RandomCandidate(local, 9999), options);
        EXPECT_LE(offers.size(), 20u);
        const std::vector<RankedCandidate> candidates =
            index.RankCandidates(RandomOffer(local, 9999), options, nullptr);
        EXPECT_LE(candidates.size(), 20u);
        rankings.fetch_add(1);
      }
    });
  }
  std::mt19937 writer_rng(12);
  for (int i = 0; i < 2000; ++i) {
    const int id = static_cast<int>(writer_rng() % 700);
    if (writer_rng() % 3 == 0) {
      index.RemoveOffer(absl::StrCat("o", id));
      index.RemoveCandidate(absl::StrCat("p", id));
    } else {
      index.UpsertOffer(RandomOffer(writer_rng, id));
      index.UpsertCandidate(RandomCandidate(writer_rng, id));
    }
  }
  while (rankings.load() < 30) std::this_thread::yield();
  stop.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(index.offer_count(), index.candidate_count());
  EXPECT_LE(index.offer_count(), 700u);
}

}  // namespace
}  // namespace lotse::placement
