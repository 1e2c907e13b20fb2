// The demo municipality's plan: deterministic, varied and covering every
// stage the steering report and the guided tour need.
#include "tools/demo/plan.h"

#include <map>
#include <set>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/api/time.h"
#include "gtest/gtest.h"

namespace lotse::demo {
namespace {

constexpr int64_t kDay = 24 * 60;

TEST(DemoPlanTest, SameSeedSamePlan) {
  const Plan a = MakePlan(PlanOptions{});
  const Plan b = MakePlan(PlanOptions{});
  ASSERT_EQ(a.persons.size(), b.persons.size());
  for (size_t i = 0; i < a.persons.size(); ++i) {
    EXPECT_EQ(a.persons[i].key, b.persons[i].key);
    EXPECT_EQ(a.persons[i].given_names, b.persons[i].given_names);
    EXPECT_EQ(a.persons[i].family_names, b.persons[i].family_names);
    EXPECT_EQ(a.persons[i].registered, b.persons[i].registered);
    EXPECT_EQ(a.persons[i].steps.size(), b.persons[i].steps.size());
    EXPECT_EQ(a.persons[i].course, b.persons[i].course);
  }
  PlanOptions other;
  other.seed = 18;
  const Plan c = MakePlan(other);
  int differ = 0;
  for (size_t i = 0; i < a.persons.size() && i < c.persons.size(); ++i) {
    differ += a.persons[i].family_names != c.persons[i].family_names;
  }
  EXPECT_GT(differ, 100) << "another seed gives other persons";
}

TEST(DemoPlanTest, PersonsAreVariedAndKeysUnique) {
  const Plan plan = MakePlan(PlanOptions{});
  const PlanOptions& o = plan.options;
  // The tour person's second registration comes on top.
  EXPECT_EQ(plan.persons.size(),
            static_cast<size_t>(o.persons + o.near_duplicates + 1));
  std::set<std::string> keys, nationalities, names;
  int year_only = 0, year_month = 0, full = 0, duplicates = 0;
  for (const PersonPlan& p : plan.persons) {
    keys.insert(p.key);
    nationalities.insert(p.nationality);
    names.insert(p.given_names + " " + p.family_names);
    if (p.birth_month == 0) {
      ++year_only;
    } else if (p.birth_day == 0) {
      ++year_month;
    } else {
      ++full;
    }
    if (p.duplicate_of >= 0) {
      ++duplicates;
      const PersonPlan& original = plan.persons[p.duplicate_of];
      EXPECT_EQ(p.birth_year, original.birth_year);
      EXPECT_EQ(p.nationality, original.nationality);
    }
    EXPECT_GE(p.birth_year, 1960);
  }
  EXPECT_EQ(keys.size(), plan.persons.size());
  EXPECT_EQ(nationalities,
            (std::set<std::string>{"AF", "ER", "IQ", "SY", "TR", "UA"}));
  EXPECT_GT(names.size(), 500u);
  EXPECT_GT(year_only, 100);
  EXPECT_GT(year_month, 20);
  EXPECT_GT(full, 1000);
  EXPECT_EQ(duplicates, o.near_duplicates + 1);
  const PersonPlan& tour = plan.persons[TourPerson(plan)];
  EXPECT_EQ(tour.given_names + " " + tour.family_names, "Rasha Al-Hassan");
  EXPECT_EQ(plan.persons.back().duplicate_of, tour.index);
}

// At the end of the history (the day of loading) there are steps in every
// state, overdue ones among the open, full courses with waitlists, and
// placements with every outcome.
TEST(DemoPlanTest, HistoryReachesEveryStage) {
  const Plan plan = MakePlan(PlanOptions{});
  const int64_t now = plan.options.history_days * kDay + 12 * 60;
  auto happened = [&](int64_t t) { return t >= 0 && t < now; };
  std::map<std::string, int> stages;
  int overdue = 0, cases = 0, closed = 0;
  std::set<std::string> kinds, agencies;
  for (const PersonPlan& p : plan.persons) {
    if (!p.has_case) continue;
    ++cases;
    closed += happened(p.case_closed);
    for (const StepPlan& s : p.steps) {
      if (!happened(s.refer)) continue;
      kinds.insert(cases::v1::StepKind_Name(s.kind));
      agencies.insert(s.agency);
      EXPECT_LE(s.refer, s.accept < 0 ? s.refer : s.accept);
      if (happened(s.done)) {
        ++stages["done"];
      } else if (happened(s.start)) {
        ++stages["started"];
      } else if (happened(s.accept)) {
        ++stages["accepted"];
      } else if (happened(s.decline)) {
        ++stages["declined"];
      } else {
        ++stages["referred"];
      }
      if (!happened(s.done) && !happened(s.decline) && s.due_day >= 0 &&
          s.due_day * kDay < now) {
        ++overdue;
      }
    }
  }
  EXPECT_EQ(cases, plan.options.cases);
  for (const char* stage :
       {"referred", "accepted", "started", "done", "declined"}) {
    EXPECT_GT(stages[stage], 5) << stage;
  }
  EXPECT_GT(overdue, 10);
  EXPECT_GT(closed, 5);
  EXPECT_GE(kinds.size(), 4u);
  EXPECT_GE(agencies.size(), 9u);

  int full = 0, waitlisted = 0;
  for (const CoursePlan& c : plan.courses) {
    EXPECT_LE(c.booked, c.capacity) << c.title;
    full += c.booked == c.capacity;
    waitlisted += c.waitlisted > 0;
  }
  EXPECT_GT(full, 2);
  EXPECT_GT(waitlisted, 0);

  std::map<std::string, int> outcomes;
  for (const PersonPlan& p : plan.persons) {
    for (const PlacementPlan& pl : p.placements) {
      outcomes[pl.hired >= 0       ? "hired"
               : pl.rejected >= 0  ? "rejected"
               : pl.withdrawn >= 0 ? "withdrawn"
                                   : "open"] += 1;
    }
  }
  for (const char* outcome : {"hired", "rejected", "withdrawn", "open"}) {
    EXPECT_GT(outcomes[outcome], 0) << outcome;
  }
  EXPECT_GE(TourPerson(plan), 0);
}

TEST(DemoPlanTest, AgenciesCoverTheMunicipalityRoles) {
  std::set<type::v1::LegalDomain> domains;
  for (const Agency& a : Agencies()) {
    domains.insert(a.domain);
    if (a.domain != type::v1::LEGAL_DOMAIN_BAMF) {
      EXPECT_STREQ(a.municipality_code, kMunicipalityCode) << a.id;
    }
  }
  EXPECT_EQ(domains.size(), 7u);
  EXPECT_EQ(std::string(kMunicipalityCode).size(), 8u);
}

// The seed's history rests on this: inside a DevClockScope StoreNow() is
// the scope's time, outside it the real clock again.
TEST(DevClockTest, ScopeSetsStoreNowOnThisThreadOnly) {
  const absl::Time past = absl::FromUnixSeconds(1767225600);  // 2026-01-01
  {
    const api::DevClockScope scope(past);
    EXPECT_EQ(api::StoreNow(), past);
    {
      const api::DevClockScope inner(past + absl::Hours(1));
      EXPECT_EQ(api::StoreNow(), past + absl::Hours(1));
    }
    EXPECT_EQ(api::StoreNow(), past);
  }
  EXPECT_GT(api::StoreNow(), absl::Now() - absl::Minutes(1));
}

}  // namespace
}  // namespace lotse::demo
