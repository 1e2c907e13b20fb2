// A service's share of an erasure (erasure.h), with a fake EraseFn, on
// SQLite and PostgreSQL.
#include "common/lifecycle/erasure.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "common/lifecycle/person_keys.h"
#include "common/lifecycle/retention.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "gtest/gtest.h"
#include "lotse/events/v1/events.pb.h"
#include "tests/support/test_database.h"

namespace lotse::lifecycle {
namespace {

using ::lotse::identity::v1::ErasureReported;
using ::lotse::identity::v1::PersonErased;
using ::lotse::identity::v1::ServiceErasure;
using ::lotse::testing::BothBackendsTest;
using storage::Transaction;

#define ASSERT_OK(expr)                          \
  do {                                           \
    const absl::Status _s = (expr);              \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s; \
  } while (0)

constexpr char kRules[] =
    "retain booking category=LANGUAGE keep=2y from=END basis=\"Bookings\"\n"
    "retain course-result category=LANGUAGE keep=5y from=CREATE "
    "erasure=keep basis=\"Proof of completion, cf. § 17 IntV\"\n";

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

PersonErased Erased(const std::string& person) {
  PersonErased e;
  e.set_person(person);
  e.set_requesting_agency("agencies/kommune-koeln");
  return e;
}

class ErasureTest : public BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    std::vector<storage::Migration> m = events::OutboxMigrations();
    for (auto& x : audit::AuditMigrations()) m.push_back(x);
    for (auto& x : PersonKeyMigrations()) m.push_back(x);
    m.push_back({"test.0001_results",
                 "CREATE TABLE results (id BIGINT PRIMARY KEY, person TEXT NOT "
                 "NULL, kept BIGINT NOT NULL)"});
    ASSERT_OK(storage::ApplyMigrations(db(), m));
    ASSERT_OK(storage::RunInTransaction(db(), [](Transaction& tx) {
      return tx.ExecuteScript(
          "INSERT INTO results VALUES (1, 'p1', 0); "
          "INSERT INTO results VALUES (2, 'p1', 0); "
          "INSERT INTO results VALUES (3, 'p1', 1); "
          "INSERT INTO results VALUES (4, 'p2', 0)");
    }));
    absl::StatusOr<RetentionRules> rules = RetentionRules::Parse(kRules);
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
  }

  // Deletes the person's rows that are not marked kept, and reports the
  // kept ones as course results.
  EraseFn FakeErase() {
    return [this](Transaction& tx, const std::string& person,
                  const RetentionRules& rules,
                  absl::Time now) -> absl::StatusOr<ErasureResult> {
      seen_person_ = person;
      ErasureResult r;
      absl::StatusOr<int64_t> n = tx.Execute(
          "DELETE FROM results WHERE person = $1 AND kept = 0", {person});
      if (!n.ok()) return n.status();
      r.erased = *n;
      absl::StatusOr<storage::Rows> kept =
          tx.Query("SELECT COUNT(*) FROM results WHERE person = $1", {person});
      if (!kept.ok()) return kept.status();
      const int64_t count = (*kept)[0].GetInt(0).value_or(0);
      if (count > 0) {
        const RetentionRule* rule = rules.Find("course-result");
        if (rule == nullptr) return absl::InternalError("no rule");
        r.kept.push_back({"course-result", count, rule->DueAt(now)});
      }
      return r;
    };
  }

  absl::Status Apply(const PersonErased& e, const EraseFn& fn) {
    return storage::RunInTransaction(db(), [&](Transaction& tx) {
      return ApplyPersonErased(tx, e, "courses", rules_, fn, kNow);
    });
  }

  std::vector<lotse::events::v1::Event> OutboxEvents() {
    std::vector<lotse::events::v1::Event> out;
    EXPECT_TRUE(storage::RunInTransaction(db(), [&](Transaction& tx) {
                  absl::StatusOr<storage::Rows> rows =
                      tx.Query("SELECT payload FROM event_outbox ORDER BY seq");
                  if (!rows.ok()) return rows.status();
                  for (const storage::Row& row : *rows) {
                    lotse::events::v1::Event e;
                    e.ParseFromString(row.GetBytes(0).value_or(""));
                    out.push_back(e);
                  }
                  return absl::OkStatus();
                }).ok());
    return out;
  }

  int64_t Count(const std::string& sql) {
    int64_t n = -1;
    EXPECT_TRUE(storage::RunInTransaction(db(), [&](Transaction& tx) {
                  absl::StatusOr<storage::Rows> rows = tx.Query(sql);
                  if (!rows.ok()) return rows.status();
                  n = (*rows)[0].GetInt(0).value_or(-1);
                  return absl::OkStatus();
                }).ok());
    return n;
  }

  RetentionRules rules_;
  std::string seen_person_;
};

TEST_P(ErasureTest, ErasesShredsReportsAndAudits) {
  ASSERT_OK(storage::RunInTransaction(db(), [](Transaction& tx) {
    return SealForPerson(tx, "p1", "ctx", "before").status();
  }));
  ASSERT_OK(Apply(Erased("persons/p1"), FakeErase()));

  EXPECT_EQ(seen_person_, "p1");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM results WHERE person = 'p1'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM results WHERE person = 'p2'"), 1);

  // The key is gone: nothing new can be sealed for the person.
  ASSERT_OK(storage::RunInTransaction(db(), [](Transaction& tx) {
    absl::StatusOr<bool> shredded = IsPersonShredded(tx, "p1");
    EXPECT_TRUE(shredded.ok() && *shredded);
    EXPECT_EQ(SealForPerson(tx, "p1", "ctx", "after").status().code(),
              absl::StatusCode::kFailedPrecondition);
    return shredded.status();
  }));

  std::vector<lotse::events::v1::Event> events = OutboxEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ordering_key(), "persons/p1");
  EXPECT_EQ(events[0].source(), "courses");
  ErasureReported report;
  ASSERT_TRUE(events[0].payload().UnpackTo(&report));
  EXPECT_EQ(report.person(), "persons/p1");
  EXPECT_EQ(report.service(), "courses");
  EXPECT_EQ(report.state(), ServiceErasure::STATE_KEPT_BY_RULE);
  EXPECT_EQ(report.erased_records(), 2);
  ASSERT_EQ(report.kept_size(), 1);
  EXPECT_EQ(report.kept(0).resource_kind(), "course-result");
  EXPECT_EQ(report.kept(0).record_count(), 1);
  EXPECT_EQ(report.kept(0).category(), lotse::type::v1::DATA_CATEGORY_LANGUAGE);
  EXPECT_EQ(report.kept(0).legal_reference(),
            "Proof of completion, cf. § 17 IntV");
  EXPECT_EQ(report.kept(0).keep_until().seconds(),
            absl::ToUnixSeconds(kNow + absl::Hours(24 * (365 * 5 + 1))));

  absl::StatusOr<std::vector<audit::AuditRecord>> records =
      audit::ListAuditForResource(db(), "persons/p1");
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 1u);
  const audit::AuditRecord& r = records->front();
  EXPECT_EQ(r.operation, "lotse.lifecycle/ErasePerson");
  EXPECT_EQ(r.agency_id, "kommune-koeln");
  EXPECT_EQ(r.persons, std::vector<std::string>{"p1"});
  ASSERT_FALSE(r.legal_bases.empty());
  for (const audit::LegalBasis& b : r.legal_bases) {
    EXPECT_EQ(b.kind, audit::BasisKind::kDataProtection) << b.category;
  }
  EXPECT_EQ(r.data_categories, std::vector<std::string>{"LANGUAGE"});
}

TEST_P(ErasureTest, NothingKeptIsDone) {
  ASSERT_OK(Apply(Erased("persons/p2"), FakeErase()));
  std::vector<lotse::events::v1::Event> events = OutboxEvents();
  ASSERT_EQ(events.size(), 1u);
  ErasureReported report;
  ASSERT_TRUE(events[0].payload().UnpackTo(&report));
  EXPECT_EQ(report.state(), ServiceErasure::STATE_DONE);
  EXPECT_EQ(report.erased_records(), 1);
  EXPECT_TRUE(report.kept().empty());
}

TEST_P(ErasureTest, BadPersonChangesNothing) {
  bool called = false;
  EraseFn fn = [&](Transaction&, const std::string&, const RetentionRules&,
                   absl::Time) -> absl::StatusOr<ErasureResult> {
    called = true;
    return ErasureResult{};
  };
  for (const char* bad :
       {"", "p1", "persons/", "persons/p1/cases/x", "agencies/p1"}) {
    absl::Status s = Apply(Erased(bad), fn);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(called);
  EXPECT_TRUE(OutboxEvents().empty());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM lifecycle_person_keys"), 0);
}

TEST_P(ErasureTest, FailingEraseLeavesKeyAndSendsNothing) {
  ASSERT_OK(storage::RunInTransaction(db(), [](Transaction& tx) {
    return SealForPerson(tx, "p1", "ctx", "before").status();
  }));
  EraseFn fn = [](Transaction& tx, const std::string& person,
                  const RetentionRules&,
                  absl::Time) -> absl::StatusOr<ErasureResult> {
    absl::StatusOr<int64_t> n =
        tx.Execute("DELETE FROM results WHERE person = $1", {person});
    if (!n.ok()) return n.status();
    return absl::FailedPreconditionError("cannot erase now");
  };
  EXPECT_EQ(Apply(Erased("persons/p1"), fn).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM results WHERE person = 'p1'"), 3);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM lifecycle_person_keys "
                  "WHERE data_key IS NOT NULL"),
            1);
  EXPECT_TRUE(OutboxEvents().empty());
}

TEST(MakeErasureReportTest, KeptKindsWithoutDateOrCountAreHandled) {
  ErasureResult result;
  result.erased = 4;
  result.kept.push_back({"attendance", 3, absl::InfiniteFuture()});
  result.kept.push_back({"booking", 0, kNow});
  ErasureReported report =
      MakeErasureReport("p9", "courses", result, RetentionRules());
  EXPECT_EQ(report.person(), "persons/p9");
  EXPECT_EQ(report.state(), ServiceErasure::STATE_KEPT_BY_RULE);
  ASSERT_EQ(report.kept_size(), 1);
  EXPECT_EQ(report.kept(0).resource_kind(), "attendance");
  EXPECT_EQ(report.kept(0).category(), lotse::type::v1::DATA_CATEGORY_LANGUAGE);
  EXPECT_FALSE(report.kept(0).has_keep_until());
  EXPECT_EQ(report.kept(0).legal_reference(), "");

  ErasureReported done = MakeErasureReport("persons/p9", "cases",
                                           ErasureResult{}, RetentionRules());
  EXPECT_EQ(done.person(), "persons/p9");
  EXPECT_EQ(done.state(), ServiceErasure::STATE_DONE);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(ErasureTest);

}  // namespace
}  // namespace lotse::lifecycle
