// The cases tables and the case-event log on SQLite and PostgreSQL.
#include "services/cases/store/case_store.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/lifecycle/person_keys.h"
#include "common/storage/migrations.h"
#include "gtest/gtest.h"
#include "services/cases/store/lifecycle_store.h"
#include "services/cases/store/migrations.h"
#include "tests/support/test_database.h"

namespace lotse::cases {
namespace {

using storage::Transaction;

class CaseStoreTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    ASSERT_TRUE(storage::ApplyMigrations(db(), CasesMigrations()).ok());
  }

  absl::Status Write(const std::function<absl::Status(Transaction&)>& body) {
    return storage::RunInTransaction(db(), body);
  }

  static CaseRow NewCase(const std::string& id, const std::string& person,
                         const std::string& owner, int64_t create_seconds) {
    CaseRow row;
    row.id = id;
    row.version = 1;
    row.record.set_person(person);
    row.record.set_owner_agency(owner);
    row.record.set_state(v1::CASE_STATE_INTAKE);
    row.record.add_participating_agencies(owner);
    row.record.mutable_create_time()->set_seconds(create_seconds);
    return row;
  }
};

TEST_P(CaseStoreTest, CasesRoundTripAndOpenLookup) {
  ASSERT_TRUE(Write([](Transaction& tx) {
                return InsertCase(
                    tx, NewCase("c1", "persons/a", "agencies/k", 100));
              }).ok());
  ASSERT_TRUE(Write([](Transaction& tx) -> absl::Status {
                auto open = FindOpenCase(tx, "persons/a", "agencies/k");
                if (!open.ok()) return open.status();
                EXPECT_EQ(open->value_or(""), "c1");
                auto c = ReadCase(tx, "c1");
                if (!c.ok()) return c.status();
                EXPECT_TRUE(c->has_value());
                CaseRow row = **c;
                row.record.set_state(v1::CASE_STATE_CLOSED);
                row.record.add_participating_agencies("agencies/v");
                ++row.version;
                return UpdateCase(tx, row);
              }).ok());
  ASSERT_TRUE(Write([](Transaction& tx) -> absl::Status {
                auto open = FindOpenCase(tx, "persons/a", "agencies/k");
                EXPECT_FALSE(open->has_value());
                CaseFilter f;
                f.viewer_agency = "agencies/v";
                auto list = ListCases(tx, f);
                if (!list.ok()) return list.status();
                EXPECT_EQ(list->size(), 1u);
                EXPECT_EQ(list->front().version, 2);
                f.viewer_agency = "agencies/other";
                list = ListCases(tx, f);
                EXPECT_TRUE(list->empty());
                return absl::OkStatus();
              }).ok());
}

TEST_P(CaseStoreTest, ListCasesPagesNewestFirst) {
  ASSERT_TRUE(Write([](Transaction& tx) -> absl::Status {
                for (int i = 0; i < 5; ++i) {
                  if (absl::Status s = InsertCase(
                          tx, NewCase(absl::StrCat("c", i), "persons/a",
                                      "agencies/k", 100 + i));
                      !s.ok()) {
                    return s;
                  }
                }
                return absl::OkStatus();
              }).ok());
  std::vector<std::string> seen;
  CaseFilter f;
  f.viewer_agency = "agencies/k";
  f.limit = 2;
  for (int page = 0; page < 3; ++page) {
    ASSERT_TRUE(Write([&](Transaction& tx) -> absl::Status {
                  auto rows = ListCases(tx, f);
                  if (!rows.ok()) return rows.status();
                  for (const CaseRow& r : *rows) {
                    seen.push_back(r.id);
                    f.has_after = true;
                    f.after_create_us =
                        r.record.create_time().seconds() * 1000000;
                    f.after_id = r.id;
                  }
                  return absl::OkStatus();
                }).ok());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"c4", "c3", "c2", "c1", "c0"}));
}

TEST_P(CaseStoreTest, PlansKeepEveryVersion) {
  ASSERT_TRUE(Write([](Transaction& tx) -> absl::Status {
                for (int v = 1; v <= 3; ++v) {
                  v1::IntegrationPlan p;
                  p.set_version(v);
                  p.set_summary(absl::StrCat("v", v));
                  if (absl::Status s = InsertPlan(tx, "c1", p); !s.ok()) {
                    return s;
                  }
                }
                return absl::OkStatus();
              }).ok());
  ASSERT_TRUE(Write([](Transaction& tx) -> absl::Status {
                auto current = ReadPlan(tx, "c1", 0);
                EXPECT_EQ((*current)->summary(), "v3");
                auto first = ReadPlan(tx, "c1", 1);
                EXPECT_EQ((*first)->summary(), "v1");
                EXPECT_FALSE(ReadPlan(tx, "c1", 9)->has_value());
                auto older = ListPlans(tx, "c1", 3, 10);
                EXPECT_EQ(older->size(), 2u);
                EXPECT_EQ(older->front().version(), 2);
                return absl::OkStatus();
              }).ok());
}

TEST_P(CaseStoreTest, StepsWithDependenciesAndStatistics) {
  ASSERT_TRUE(Write([](Transaction& tx) -> absl::Status {
                if (absl::Status s = InsertCase(
                        tx, NewCase("c1", "persons/a", "agencies/k", 100));
                    !s.ok()) {
                  return s;
                }
                for (int i = 0; i < 3; ++i) {
                  StepRow row;
                  row.id = absl::StrCat("s", i);
                  row.case_id = "c1";
                  row.version = 1;
                  row.municipality_code = "05315000";
                  row.record.set_kind(v1::STEP_KIND_COUNSELLING);
                  row.record.set_receiving_agency("agencies/v");
                  row.record.set_state(v1::STEP_STATE_REFERRED);
                  row.record.mutable_create_time()->set_seconds(1000 + i);
                  if (i == 1) {
                    row.record.mutable_accept_time()->set_seconds(1100);
                    row.record.add_depends_on("cases/c1/steps/s0");
                  }
                  row.record.mutable_due_date()->set_year(2000);
                  row.record.mutable_due_date()->set_month(1);
                  row.record.mutable_due_date()->set_day(1);
                  if (absl::Status s = InsertStep(tx, row); !s.ok()) return s;
                }
                return absl::OkStatus();
              }).ok());
  ASSERT_TRUE(Write([](Transaction& tx) -> absl::Status {
                auto steps = StepsOfCase(tx, "c1");
                EXPECT_EQ(steps->size(), 3u);
                EXPECT_EQ((*steps)[1].record.depends_on_size(), 1);
                auto timings =
                    StepTimings(tx, "05315000", 0, int64_t{5000} * 1000000);
                EXPECT_EQ(timings->size(), 3u);
                int accepted = 0;
                for (const auto& t : *timings) accepted += t.accept_us > 0;
                EXPECT_EQ(accepted, 1);
                auto overdue = OverdueSteps(tx, "05315000", 20260101);
                EXPECT_EQ(overdue->size(), 1u);
                EXPECT_EQ(overdue->front().count, 3);
                StepFilter f;
                f.viewer_agency = "agencies/k";
                f.states = {v1::STEP_STATE_REFERRED};
                f.limit = 2;
                auto page = ListSteps(tx, f);
                EXPECT_EQ(page->size(), 2u);
                EXPECT_EQ(page->front().id, "s0");
                return absl::OkStatus();
              }).ok());
}

TEST_P(CaseStoreTest, AStateChangeIsStoredAndFoundByItsNewState) {
  StepRow row;
  row.id = "s1";
  row.case_id = "c1";
  row.version = 1;
  row.municipality_code = "05315000";
  row.record.set_kind(v1::STEP_KIND_COUNSELLING);
  row.record.set_receiving_agency("agencies/v");
  row.record.set_state(v1::STEP_STATE_REFERRED);
  row.record.mutable_create_time()->set_seconds(1000);
  ASSERT_TRUE(Write([&](Transaction& tx) -> absl::Status {
                if (absl::Status s = InsertCase(
                        tx, NewCase("c1", "persons/a", "agencies/k", 100));
                    !s.ok()) {
                  return s;
                }
                return InsertStep(tx, row);
              }).ok());
  row.record.set_state(v1::STEP_STATE_ACCEPTED);
  row.record.mutable_accept_time()->set_seconds(1100);
  row.record.set_state_comment("accepted");
  row.version = 2;
  ASSERT_TRUE(
      Write([&](Transaction& tx) { return UpdateStepState(tx, row); }).ok());
  ASSERT_TRUE(
      Write([](Transaction& tx) -> absl::Status {
        auto step = ReadStep(tx, "c1", "s1");
        EXPECT_TRUE(step.ok() && step->has_value());
        if (!step.ok() || !step->has_value()) return step.status();
        EXPECT_EQ((*step)->version, 2);
        EXPECT_EQ((*step)->municipality_code, "05315000");
        EXPECT_EQ((*step)->record.state(), v1::STEP_STATE_ACCEPTED);
        EXPECT_EQ((*step)->record.state_comment(), "accepted");
        auto timings = StepTimings(tx, "05315000", 0, int64_t{5000} * 1000000);
        EXPECT_EQ(timings->size(), 1u);
        if (!timings->empty()) {
          EXPECT_EQ(timings->front().accept_us, int64_t{1100} * 1000000);
        }
        StepFilter f;
        f.viewer_agency = "agencies/k";
        f.states = {v1::STEP_STATE_ACCEPTED};
        auto accepted = ListSteps(tx, f);
        EXPECT_EQ(accepted->size(), 1u);
        f.states = {v1::STEP_STATE_REFERRED};
        auto referred = ListSteps(tx, f);
        EXPECT_EQ(referred->size(), 0u);
        return absl::OkStatus();
      }).ok());
  StepRow gone = row;
  gone.id = "nope";
  EXPECT_EQ(
      Write([&](Transaction& tx) { return UpdateStepState(tx, gone); }).code(),
      absl::StatusCode::kNotFound);
}

TEST_P(CaseStoreTest, CaseEventLogCursorsFollowCommitOrder) {
  // Concurrent writers: cursors are dense and each reader sees a prefix.
  constexpr int kWriters = 4, kPerWriter = 25;
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        absl::Status s = Write([&](Transaction& tx) {
          v1::CaseEvent e;
          e.set_event_id(absl::StrCat("e-", w, "-", i));
          e.set_case_name(absl::StrCat("cases/c", w));
          e.mutable_case_opened()->set_case_name(e.case_name());
          return AppendCaseEvent(tx, e, "persons/a",
                                 {"agencies/k", absl::StrCat("agencies/w", w)})
              .status();
        });
        if (!s.ok()) ++failures;
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(Write([&](Transaction& tx) -> absl::Status {
                EXPECT_EQ(*LatestCursor(tx), kWriters * kPerWriter);
                auto all = ReadCaseEvents(tx, "agencies/k", 0, "", 1000);
                EXPECT_EQ(all->size(),
                          static_cast<size_t>(kWriters * kPerWriter));
                for (size_t i = 0; i < all->size(); ++i) {
                  EXPECT_EQ((*all)[i].cursor(), static_cast<int64_t>(i + 1));
                }
                auto mine = ReadCaseEvents(tx, "agencies/w2", 10, "", 5);
                EXPECT_EQ(mine->size(), 5u);
                for (const auto& e : *mine) {
                  EXPECT_EQ(e.case_name(), "cases/c2");
                  EXPECT_GT(e.cursor(), 10);
                }
                auto range = ReadCaseEventRange(tx, 10, 15);
                EXPECT_EQ(range->size(), 5u);
                EXPECT_EQ(range->front().event.cursor(), 11);
                EXPECT_EQ(range->front().audience.size(), 2u);
                auto one = ReadCaseEvents(tx, "agencies/k", 0, "c3", 1000);
                EXPECT_EQ(one->size(), static_cast<size_t>(kPerWriter));
                return absl::OkStatus();
              }).ok());
}

// A database migrated before the registry moved to common/agencies keeps
// the agencies it had learned.
TEST_P(CaseStoreTest, AgenciesLearnedBeforeTheRegistryMovedAreKept) {
  absl::StatusOr<std::unique_ptr<storage::Database>> old =
      testing::NewTestDatabase(GetParam());
  ASSERT_TRUE(old.ok()) << old.status();
  std::vector<storage::Migration> before;
  for (const storage::Migration& m : CasesMigrations()) {
    if (m.id == "common.agencies.0001_init") break;
    before.push_back(m);
  }
  ASSERT_TRUE(storage::ApplyMigrations(**old, before).ok());
  ASSERT_TRUE(storage::RunInTransaction(**old, [](Transaction& tx) {
                return tx
                    .Execute(
                        "INSERT INTO cases_agencies (id, legal_domain, "
                        "municipality_code, certificate_identity, suspended) "
                        "VALUES ('kim-alt', 'KOMMUNE', '05315000', "
                        "'kim-alt', 1)")
                    .status();
              }).ok());
  ASSERT_TRUE(storage::ApplyMigrations(**old, CasesMigrations()).ok());
  ASSERT_TRUE(storage::RunInTransaction(**old, [](Transaction& tx) {
                absl::StatusOr<std::optional<agencies::LocalAgency>> a =
                    ReadAgency(tx, "kim-alt");
                EXPECT_TRUE(a.ok() && a->has_value());
                if (a.ok() && a->has_value()) {
                  EXPECT_EQ((*a)->legal_domain, "KOMMUNE");
                  EXPECT_EQ((*a)->municipality_code, "05315000");
                  EXPECT_TRUE((*a)->suspended);
                }
                return absl::OkStatus();
              }).ok());
}

TEST_P(CaseStoreTest, AgenciesNotesMergesAndActivities) {
  ASSERT_TRUE(Write([](Transaction& tx) -> absl::Status {
                agencies::LocalAgency a{"kim", "KOMMUNE", "05315000",
                                        "kim-cert", false};
                if (absl::Status s = UpsertAgency(tx, a); !s.ok()) return s;
                a.suspended = true;
                if (absl::Status s = UpsertAgency(tx, a); !s.ok()) return s;
                NoteRow n;
                n.id = "n1";
                n.case_id = "c1";
                n.version = 1;
                n.record.set_text("privat");
                n.record.set_author_agency("agencies/kim");
                if (absl::Status s = InsertNote(tx, n); !s.ok()) return s;
                if (absl::Status s = RecordMerge(tx, "persons/a", "persons/b");
                    !s.ok()) {
                  return s;
                }
                if (absl::Status s = RecordMerge(tx, "persons/b", "persons/c");
                    !s.ok()) {
                  return s;
                }
                v1::StepActivity act;
                act.set_source_event_id("ev");
                return InsertUnassignedActivity(tx, "persons/c", "", act);
              }).ok());
  ASSERT_TRUE(
      Write([](Transaction& tx) -> absl::Status {
        auto a = FindAgencyByCertificate(tx, "kim-cert");
        EXPECT_TRUE((*a)->suspended);
        EXPECT_EQ((*a)->municipality_code, "05315000");
        auto notes =
            ListNotes(tx, "c1", "", false, "agencies/kim", false, 0, "", 10);
        EXPECT_EQ(notes->size(), 1u);
        auto others =
            ListNotes(tx, "c1", "", false, "agencies/x", false, 0, "", 10);
        EXPECT_TRUE(others->empty());
        EXPECT_EQ(*ResolveSurvivor(tx, "persons/a"), "persons/c");
        auto loose = ReadUnassignedActivities(tx, "persons/c", "");
        EXPECT_EQ(loose->size(), 1u);
        if (absl::Status s = AssignUnassignedActivities(tx, "persons/c", "c9");
            !s.ok()) {
          return s;
        }
        EXPECT_EQ(ReadUnassignedActivities(tx, "persons/c", "c9")->size(), 1u);
        return absl::OkStatus();
      }).ok());
}

// Event bodies are sealed under the person's key; once it is shredded the
// rows stay (the cursor does not go back) but are read and skipped, and a
// row from before sealing existed is read as it is.
TEST_P(CaseStoreTest, SealedEventsOfAnErasedPersonAreSkipped) {
  auto event = [](const std::string& id, const std::string& c) {
    v1::CaseEvent e;
    e.set_event_id(id);
    e.set_case_name(absl::StrCat("cases/", c));
    e.mutable_case_opened()->set_case_name(e.case_name());
    return e;
  };
  ASSERT_TRUE(Write([&](Transaction& tx) -> absl::Status {
                // A row written in the clear, as before sealing existed.
                v1::CaseEvent old = event("e0", "c0");
                old.set_cursor(1);
                absl::StatusOr<int64_t> n = tx.Execute(
                    "INSERT INTO case_events (seq, event_id, case_id, person, "
                    "body) VALUES (1, 'e0', 'c0', 'persons/a', $1)",
                    {storage::Bytes{old.SerializeAsString()}});
                if (!n.ok()) return n.status();
                n = tx.Execute(
                    "INSERT INTO case_event_audience (agency, seq, case_id) "
                    "VALUES ('agencies/k', 1, 'c0')");
                if (!n.ok()) return n.status();
                for (const auto& [id, person] :
                     std::vector<std::pair<std::string, std::string>>{
                         {"e1", "persons/a"},
                         {"e2", "persons/b"},
                         {"e3", "persons/a"}}) {
                  absl::StatusOr<int64_t> seq = AppendCaseEvent(
                      tx, event(id, "c1"), person, {"agencies/k"});
                  if (!seq.ok()) return seq.status();
                }
                return absl::OkStatus();
              }).ok());
  // The stored bodies are sealed, not the serialised event.
  ASSERT_TRUE(Write([](Transaction& tx) -> absl::Status {
                absl::StatusOr<storage::Rows> rows =
                    tx.Query("SELECT body FROM case_events WHERE seq = 2");
                EXPECT_TRUE(lifecycle::IsSealed(*rows->front().GetBytes(0)));
                return lifecycle::ShredPersonKey(tx, "a");
              }).ok());
  ASSERT_TRUE(
      Write([](Transaction& tx) -> absl::Status {
        absl::StatusOr<CaseEventPage> page =
            ReadCaseEventPage(tx, "agencies/k", 0, "", 10);
        EXPECT_TRUE(page.ok()) << page.status();
        EXPECT_EQ(page->rows_read, 4);
        EXPECT_EQ(page->last_cursor, 4);
        EXPECT_EQ(page->events.size(), 2u);
        EXPECT_EQ(page->events[0].event_id(), "e0");  // in the clear
        EXPECT_EQ(page->events[1].event_id(), "e2");
        absl::StatusOr<std::vector<LoggedEvent>> range =
            ReadCaseEventRange(tx, 0, 4);
        EXPECT_EQ(range->size(), 2u);
        EXPECT_EQ(range->back().event.cursor(), 3);
        EXPECT_EQ(range->back().audience.size(), 1u);
        EXPECT_EQ(*LatestCursor(tx), 4);
        // Nothing new is written about an erased person.
        v1::CaseEvent e;
        e.set_event_id("e4");
        e.set_case_name("cases/c1");
        EXPECT_EQ(
            AppendCaseEvent(tx, e, "persons/a", {"agencies/k"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
        return absl::OkStatus();
      }).ok());
}

// Cases closed before close_us existed get it from their record.
TEST_P(CaseStoreTest, CloseTimesAreBackfilledFromTheRecord) {
  ASSERT_TRUE(Write([](Transaction& tx) -> absl::Status {
                CaseRow row = NewCase("c1", "persons/a", "agencies/k", 100);
                row.record.set_state(v1::CASE_STATE_CLOSED);
                row.record.mutable_close_time()->set_seconds(500);
                if (absl::Status s = InsertCase(tx, row); !s.ok()) return s;
                CaseRow open = NewCase("c2", "persons/a", "agencies/k", 100);
                return InsertCase(tx, open);
              }).ok());
  ASSERT_TRUE(Write([](Transaction& tx) -> absl::Status {
                absl::StatusOr<int> filled = BackfillCloseTimes(tx, 10);
                EXPECT_EQ(*filled, 1);
                absl::StatusOr<storage::Rows> rows =
                    tx.Query("SELECT id, close_us FROM cases ORDER BY id");
                EXPECT_EQ(*rows->at(0).GetInt(1), int64_t{500} * 1000000);
                EXPECT_EQ(*rows->at(1).GetInt(1), 0);
                EXPECT_EQ(*BackfillCloseTimes(tx, 10), 0);
                return absl::OkStatus();
              }).ok());
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(CaseStoreTest);

}  // namespace
}  // namespace lotse::cases
