#include "common/lifecycle/holds.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"

namespace lotse::lifecycle {
namespace {

using ::lotse::identity::v1::LegalHold;
using ::lotse::storage::Transaction;
using ::testing::UnorderedElementsAre;

absl::Time Berlin(int y, int m, int d, int hh = 0) {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone("Europe/Berlin", &zone));
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, 0, 0), zone);
}

LegalHold Hold(const std::string& name, const std::string& subject,
               const std::string& person, int y, int m, int d) {
  LegalHold hold;
  hold.set_name(name);
  hold.set_subject(subject);
  hold.set_person(person);
  hold.mutable_end_date()->set_year(y);
  hold.mutable_end_date()->set_month(m);
  hold.mutable_end_date()->set_day(d);
  return hold;
}

TEST(HoldEndTest, EndsAtBerlinMidnightAfterTheEndDate) {
  type::v1::Date summer;
  summer.set_year(2027);
  summer.set_month(6);
  summer.set_day(30);
  absl::StatusOr<absl::Time> end = HoldEnd(summer);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, Berlin(2027, 7, 1));
  // Summer time: 22:00 UTC.
  EXPECT_EQ(*end, absl::FromCivil(absl::CivilSecond(2027, 6, 30, 22, 0, 0),
                                  absl::UTCTimeZone()));
  type::v1::Date winter = summer;
  winter.set_month(12);
  winter.set_day(31);
  end = HoldEnd(winter);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, absl::FromCivil(absl::CivilSecond(2027, 12, 31, 23, 0, 0),
                                  absl::UTCTimeZone()));
}

TEST(HoldEndTest, RejectsDatesThatDoNotExist) {
  for (auto [y, m, d] : std::vector<std::tuple<int, int, int>>{{2027, 2, 29},
                                                               {2027, 13, 1},
                                                               {2027, 4, 31},
                                                               {0, 0, 0},
                                                               {2027, 1, 0},
                                                               {10000, 1, 1}}) {
    type::v1::Date date;
    date.set_year(y);
    date.set_month(m);
    date.set_day(d);
    absl::StatusOr<absl::Time> end = HoldEnd(date);
    EXPECT_EQ(end.status().code(), absl::StatusCode::kInvalidArgument)
        << y << "-" << m << "-" << d;
  }
  type::v1::Date leap;
  leap.set_year(2028);
  leap.set_month(2);
  leap.set_day(29);
  EXPECT_TRUE(HoldEnd(leap).ok());
}

class HoldsTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    ASSERT_TRUE(storage::ApplyMigrations(db(), HoldMigrations()).ok());
  }

  absl::Status Apply(const LegalHold& hold) {
    return storage::RunInTransaction(
        db(), [&](Transaction& tx) { return ApplyHold(tx, hold); });
  }

  bool PersonHeld(const std::string& person, absl::Time now) {
    bool held = false;
    EXPECT_TRUE(storage::RunInTransaction(db(), [&](Transaction& tx) {
                  absl::StatusOr<bool> h = IsPersonHeld(tx, person, now);
                  if (!h.ok()) return h.status();
                  held = *h;
                  return absl::OkStatus();
                }).ok());
    return held;
  }

  bool SubjectHeld(const std::string& subject, absl::Time now) {
    bool held = false;
    EXPECT_TRUE(storage::RunInTransaction(db(), [&](Transaction& tx) {
                  absl::StatusOr<bool> h = IsSubjectHeld(tx, subject, now);
                  if (!h.ok()) return h.status();
                  held = *h;
                  return absl::OkStatus();
                }).ok());
    return held;
  }

  int64_t Count() {
    int64_t n = -1;
    EXPECT_TRUE(storage::RunInTransaction(db(), [&](Transaction& tx) {
                  absl::StatusOr<storage::Rows> rows =
                      tx.Query("SELECT COUNT(*) FROM lifecycle_holds");
                  if (!rows.ok()) return rows.status();
                  n = *(*rows)[0].GetInt(0);
                  return absl::OkStatus();
                }).ok());
    return n;
  }
};

TEST_P(HoldsTest, PersonHoldCoversThePersonUntilItsEnd) {
  ASSERT_TRUE(
      Apply(Hold("legalHolds/h1", "persons/p1", "persons/p1", 2027, 6, 30))
          .ok());
  EXPECT_TRUE(PersonHeld("p1", Berlin(2027, 6, 30, 23)));
  EXPECT_FALSE(PersonHeld("p1", Berlin(2027, 7, 1)));
  EXPECT_FALSE(PersonHeld("p2", Berlin(2026, 1, 1)));
  EXPECT_TRUE(SubjectHeld("persons/p1", Berlin(2026, 1, 1)));
  EXPECT_FALSE(SubjectHeld("cases/c1", Berlin(2026, 1, 1)));
}

TEST_P(HoldsTest, CaseHoldCoversTheCaseAndItsPerson) {
  ASSERT_TRUE(
      Apply(Hold("legalHolds/h2", "cases/c1", "persons/p1", 2027, 1, 1)).ok());
  const absl::Time now = Berlin(2026, 5, 1);
  EXPECT_TRUE(PersonHeld("p1", now));
  EXPECT_TRUE(SubjectHeld("cases/c1", now));
  EXPECT_FALSE(SubjectHeld("cases/c2", now));
  EXPECT_FALSE(SubjectHeld("persons/p1", now));
}

TEST_P(HoldsTest, ApplyIsIdempotentAndReleaseSticks) {
  LegalHold hold =
      Hold("legalHolds/h3", "persons/p1", "persons/p1", 2030, 1, 1);
  ASSERT_TRUE(Apply(hold).ok());
  ASSERT_TRUE(Apply(hold).ok());
  EXPECT_EQ(Count(), 1);
  const absl::Time now = Berlin(2026, 5, 1);
  EXPECT_TRUE(PersonHeld("p1", now));

  LegalHold released = hold;
  released.mutable_release_time()->set_seconds(absl::ToUnixSeconds(now));
  ASSERT_TRUE(Apply(released).ok());
  EXPECT_EQ(Count(), 1);
  EXPECT_FALSE(PersonHeld("p1", now));
  // The placement delivered again after the release does not revive it.
  ASSERT_TRUE(Apply(hold).ok());
  EXPECT_FALSE(PersonHeld("p1", now));
  EXPECT_FALSE(SubjectHeld("persons/p1", now));
}

TEST_P(HoldsTest, BadHoldsChangeNothing) {
  const std::vector<LegalHold> bad = {
      Hold("", "persons/p1", "persons/p1", 2030, 1, 1),
      Hold("legalHolds/x", "", "persons/p1", 2030, 1, 1),
      Hold("legalHolds/x", "steps/s1", "persons/p1", 2030, 1, 1),
      Hold("legalHolds/x", "cases/", "persons/p1", 2030, 1, 1),
      Hold("legalHolds/x", "cases/c1", "", 2030, 1, 1),
      Hold("legalHolds/x", "cases/c1", "p1", 2030, 1, 1),
      Hold("legalHolds/x", "cases/c1", "persons/p1/x", 2030, 1, 1),
      Hold("legalHolds/x", "persons/p2", "persons/p1", 2030, 1, 1),
      Hold("legalHolds/x", "cases/c1", "persons/p1", 2030, 2, 30),
  };
  for (const LegalHold& hold : bad) {
    EXPECT_EQ(Apply(hold).code(), absl::StatusCode::kInvalidArgument)
        << hold.ShortDebugString();
  }
  LegalHold no_date = Hold("legalHolds/x", "cases/c1", "persons/p1", 1, 1, 1);
  no_date.clear_end_date();
  EXPECT_EQ(Apply(no_date).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Count(), 0);
}

TEST_P(HoldsTest, NotHeldConditionSelectsOnlyUnheldRows) {
  ASSERT_TRUE(storage::RunInTransaction(db(), [](Transaction& tx) {
                return tx.ExecuteScript(
                    "CREATE TABLE rows_t (id TEXT PRIMARY KEY, person TEXT, "
                    "case_id TEXT, anchor_us BIGINT);"
                    "INSERT INTO rows_t VALUES ('a', 'p1', 'c1', 10);"
                    "INSERT INTO rows_t VALUES ('b', 'p1', 'c2', 10);"
                    "INSERT INTO rows_t VALUES ('c', 'p2', 'c3', 10);"
                    "INSERT INTO rows_t VALUES ('d', 'p3', 'c4', 10);"
                    "INSERT INTO rows_t VALUES ('e', 'p4', 'c5', 99);");
              }).ok());
  // p1's case c1 held; p2 held as a person; p3's hold has ended; p4 not due.
  ASSERT_TRUE(
      Apply(Hold("legalHolds/1", "cases/c1", "persons/p1", 2030, 1, 1)).ok());
  ASSERT_TRUE(
      Apply(Hold("legalHolds/2", "persons/p2", "persons/p2", 2030, 1, 1)).ok());
  ASSERT_TRUE(
      Apply(Hold("legalHolds/3", "persons/p3", "persons/p3", 2025, 1, 1)).ok());
  const absl::Time now = Berlin(2026, 5, 1);

  auto select = [&](const std::string& sql,
                    std::vector<storage::Value> params) {
    std::vector<std::string> ids;
    EXPECT_TRUE(storage::RunInTransaction(db(),
                                          [&](Transaction& tx) {
                                            ids.clear();
                                            absl::StatusOr<storage::Rows> rows =
                                                tx.Query(sql, params);
                                            if (!rows.ok())
                                              return rows.status();
                                            for (const storage::Row& row :
                                                 *rows) {
                                              ids.push_back(*row.GetText(0));
                                            }
                                            return absl::OkStatus();
                                          })
                    .ok())
        << sql;
    return ids;
  };
  const int64_t now_us = absl::ToUnixMicros(now);
  EXPECT_THAT(
      select(
          absl::StrCat("SELECT id FROM rows_t r WHERE r.anchor_us <= $1 AND ",
                       NotHeldCondition("r.person", "'cases/' || r.case_id", 2),
                       " ORDER BY id LIMIT $3"),
          {int64_t{50}, now_us, int64_t{10}}),
      UnorderedElementsAre("b", "d"));
  // Without a subject column only person holds count; the default number.
  EXPECT_THAT(select(absl::StrCat("SELECT id FROM rows_t r WHERE ",
                                  NotHeldCondition("r.person"), " ORDER BY id"),
                     {now_us}),
              UnorderedElementsAre("a", "b", "d", "e"));
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(HoldsTest);

}  // namespace
}  // namespace lotse::lifecycle
