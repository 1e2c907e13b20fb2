// Identity's lifecycle tables (holds, erasures, revisions) and its purge
// tasks, against the real schema on SQLite and PostgreSQL.
#include "services/identity/store/lifecycle_store.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/api/time.h"
#include "common/lifecycle/holds.h"
#include "common/storage/migrations.h"
#include "gtest/gtest.h"
#include "services/identity/store/consent_store.h"
#include "services/identity/store/migrations.h"
#include "services/identity/store/purge_tasks.h"
#include "services/identity/store/residence_store.h"
#include "tests/support/test_database.h"

namespace lotse::identity {
namespace {

using ::lotse::identity::v1::LegalHold;
using ::lotse::storage::Transaction;

absl::Time Year(int year) {
  return absl::FromCivil(absl::CivilDay(year, 1, 1), absl::UTCTimeZone());
}

class LifecycleStoreTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(storage::ApplyMigrations(db(), IdentityMigrations()).ok());
  }

  absl::Status Run(const std::function<absl::Status(Transaction&)>& body) {
    return storage::RunInTransaction(db(), body);
  }

  int64_t Count(const std::string& sql) {
    int64_t n = -1;
    EXPECT_TRUE(Run([&](Transaction& tx) -> absl::Status {
                  absl::StatusOr<storage::Rows> rows = tx.Query(sql);
                  if (!rows.ok()) return rows.status();
                  absl::StatusOr<int64_t> v = rows->front().GetInt(0);
                  if (!v.ok()) return v.status();
                  n = *v;
                  return absl::OkStatus();
                }).ok());
    return n;
  }

  // Runs the task of `kind` once with a batch of `limit`.
  lifecycle::PurgeBatch Purge(const std::string& kind, absl::Time cutoff,
                              int limit = 100) {
    lifecycle::PurgeBatch batch;
    for (const lifecycle::PurgeTask& task : IdentityPurgeTasks(nullptr)) {
      if (task.kind != kind) continue;
      EXPECT_TRUE(Run([&](Transaction& tx) -> absl::Status {
                    absl::StatusOr<lifecycle::PurgeBatch> b =
                        task.run(tx, cutoff, absl::Now(), limit);
                    if (!b.ok()) return b.status();
                    batch = *b;
                    return absl::OkStatus();
                  }).ok());
    }
    return batch;
  }

  void HoldPerson(const std::string& person) {
    LegalHold hold;
    hold.set_name(absl::StrCat("legalHolds/h-", person));
    hold.set_subject(absl::StrCat("persons/", person));
    hold.set_person(hold.subject());
    hold.set_reason("inquiry");
    const absl::CivilDay end =
        absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()) + 30;
    hold.mutable_end_date()->set_year(static_cast<int32_t>(end.year()));
    hold.mutable_end_date()->set_month(end.month());
    hold.mutable_end_date()->set_day(end.day());
    ASSERT_TRUE(Run([&](Transaction& tx) {
                  return lifecycle::ApplyHold(tx, hold);
                }).ok());
  }

  void AddRevision(const std::string& person, absl::Time at) {
    v1::PersonRevision revision;
    revision.mutable_person()->set_birth_place("Aleppo");
    revision.set_changing_agency("agencies/kim-koeln");
    *revision.mutable_change_time() = api::ToTimestamp(at);
    ASSERT_TRUE(Run([&](Transaction& tx) -> absl::Status {
                  return AppendRevision(tx, person, revision).status();
                }).ok());
  }
};

TEST_P(LifecycleStoreTest, HoldsListNewestFirstAndEndByThemselves) {
  const absl::Time now = absl::Now();
  for (int i = 0; i < 3; ++i) {
    HoldRecord record;
    record.id = absl::StrCat("h", i);
    record.person_id = i == 2 ? "p2" : "p1";
    record.placing_agency = "kim-koeln";
    record.create_time = now - absl::Hours(3 - i);
    // The first one has ended already.
    record.end_time = i == 0 ? now - absl::Hours(1) : now + absl::Hours(24);
    record.hold.set_name(HoldResourceName(record.id));
    record.hold.set_subject(absl::StrCat("persons/", record.person_id));
    ASSERT_TRUE(
        Run([&](Transaction& tx) { return InsertHold(tx, record); }).ok());
  }
  ASSERT_TRUE(
      Run([&](Transaction& tx) -> absl::Status {
        HoldFilter filter;
        filter.person_id = "p1";
        absl::StatusOr<HoldPage> active = ListHolds(tx, filter, now, "", 10);
        EXPECT_TRUE(active.ok());
        EXPECT_EQ(active->holds.size(), 1u);
        filter.include_inactive = true;
        filter.person_id.clear();
        absl::StatusOr<HoldPage> first = ListHolds(tx, filter, now, "", 2);
        EXPECT_TRUE(first.ok());
        EXPECT_EQ(first->holds.size(), 2u);
        EXPECT_EQ(first->holds[0].id, "h2");
        EXPECT_FALSE(first->next_cursor.empty());
        absl::StatusOr<HoldPage> second =
            ListHolds(tx, filter, now, first->next_cursor, 2);
        EXPECT_TRUE(second.ok());
        EXPECT_EQ(second->holds.size(), 1u);
        EXPECT_EQ(second->holds[0].hold.state(), LegalHold::STATE_ENDED);
        EXPECT_TRUE(second->next_cursor.empty());
        absl::StatusOr<std::optional<HoldRecord>> on =
            ActiveHoldOn(tx, "p1", now);
        EXPECT_TRUE(on.ok() && on->has_value());
        EXPECT_EQ((*on)->id, "h1");
        EXPECT_FALSE(ListHolds(tx, filter, now, "garbage", 2).ok());
        return absl::OkStatus();
      }).ok());
}

TEST_P(LifecycleStoreTest, RevisionsNumberPerPersonAndPageNewestFirst) {
  for (int i = 0; i < 3; ++i) AddRevision("p1", absl::Now());
  AddRevision("p2", absl::Now());
  ASSERT_TRUE(Run([&](Transaction& tx) -> absl::Status {
                absl::StatusOr<RevisionPage> page =
                    ListRevisions(tx, "p1", 0, 2);
                EXPECT_TRUE(page.ok());
                EXPECT_EQ(page->revisions.size(), 2u);
                EXPECT_EQ(page->revisions[0].name(), "persons/p1/revisions/3");
                EXPECT_EQ(page->next_before, 2);
                page = ListRevisions(tx, "p1", 2, 2);
                EXPECT_EQ(page->revisions.size(), 1u);
                EXPECT_EQ(page->revisions[0].name(), "persons/p1/revisions/1");
                EXPECT_EQ(page->next_before, 0);
                page = ListRevisions(tx, "p2", 0, 5);
                EXPECT_EQ(page->revisions.size(), 1u);
                EXPECT_EQ(page->revisions[0].name(), "persons/p2/revisions/1");
                return absl::OkStatus();
              }).ok());
}

TEST_P(LifecycleStoreTest, PurgeDeletesDueRevisionsAndSkipsHeldPersons) {
  AddRevision("p1", Year(2019));
  AddRevision("p1", Year(2024));
  AddRevision("p2", Year(2019));
  HoldPerson("p2");
  const lifecycle::PurgeBatch batch = Purge("person-revision", Year(2021));
  EXPECT_EQ(batch.purged, 1);
  EXPECT_EQ(batch.held, 1);
  EXPECT_FALSE(batch.more);
  EXPECT_EQ(batch.persons, std::vector<std::string>{"p1"});
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_person_revisions"), 2);
}

TEST_P(LifecycleStoreTest, PurgeBatchesAreBounded) {
  for (int i = 0; i < 3; ++i) AddRevision("p1", Year(2019));
  lifecycle::PurgeBatch batch = Purge("person-revision", Year(2021), 2);
  EXPECT_EQ(batch.purged, 2);
  EXPECT_TRUE(batch.more);
  batch = Purge("person-revision", Year(2021), 2);
  EXPECT_EQ(batch.purged, 1);
  EXPECT_FALSE(batch.more);
}

TEST_P(LifecycleStoreTest, PurgeDeletesSupersededResidenceAndEndedConsents) {
  int n = 0;
  for (absl::Time at : {Year(2018), Year(2019), Year(2024)}) {
    ResidenceRecord record;
    record.id = absl::StrCat("r", n++);
    record.person_id = "p1";
    record.recording_agency = "agencies/abh-koeln";
    record.create_time = at;
    ASSERT_TRUE(
        Run([&](Transaction& tx) { return InsertResidence(tx, record); }).ok());
  }
  // r0 was superseded in 2019, r1 in 2024, r2 is current.
  lifecycle::PurgeBatch batch = Purge("residence-status", Year(2021));
  EXPECT_EQ(batch.purged, 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_residence_statuses WHERE "
                  "id = 'r0'"),
            0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_residence_statuses"), 2);

  for (int i = 0; i < 2; ++i) {
    ConsentRecord consent;
    consent.id = absl::StrCat("c", i);
    consent.person_id = "p1";
    consent.create_time = Year(2018);
    // c0 expired in 2020; c1 is open.
    if (i == 0) {
      *consent.fields.mutable_valid_until() = api::ToTimestamp(Year(2020));
    }
    ASSERT_TRUE(
        Run([&](Transaction& tx) { return InsertConsent(tx, consent); }).ok());
  }
  batch = Purge("consent", Year(2021));
  EXPECT_EQ(batch.purged, 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_consents WHERE id = 'c1'"), 1);
}

TEST_P(LifecycleStoreTest, ErasureReportsUpdateTheServiceState) {
  ErasureRecord record;
  record.person_id = "p1";
  record.owners = {"kim-koeln", "kim-bonn"};
  record.erasure.set_name("persons/p1/erasure");
  record.erasure.set_requesting_agency("agencies/dsb-nrw");
  v1::ServiceErasure* cases = record.erasure.add_services();
  cases->set_service("cases");
  cases->set_state(v1::ServiceErasure::STATE_PENDING);
  ASSERT_TRUE(
      Run([&](Transaction& tx) { return InsertErasure(tx, record); }).ok());
  v1::ErasureReported report;
  report.set_person("persons/p1");
  report.set_service("cases");
  report.set_state(v1::ServiceErasure::STATE_KEPT_BY_RULE);
  report.add_kept()->set_resource_kind("case");
  ASSERT_TRUE(Run([&](Transaction& tx) {
                return RecordErasureReport(tx, report, absl::Now());
              }).ok());
  ASSERT_TRUE(Run([&](Transaction& tx) -> absl::Status {
                absl::StatusOr<std::optional<ErasureRecord>> read =
                    ReadErasure(tx, "p1");
                EXPECT_TRUE(read.ok() && read->has_value());
                EXPECT_EQ((*read)->owners,
                          (std::vector<std::string>{"kim-koeln", "kim-bonn"}));
                EXPECT_TRUE((*read)->erasure.complete());
                EXPECT_EQ((*read)->erasure.services(0).kept_size(), 1);
                return absl::OkStatus();
              }).ok());
  report.set_person("persons/p9");
  absl::Status unknown = Run([&](Transaction& tx) {
    return RecordErasureReport(tx, report, absl::Now());
  });
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  report.set_person("p9");
  report.clear_service();
  absl::Status bad = Run([&](Transaction& tx) {
    return RecordErasureReport(tx, report, absl::Now());
  });
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(LifecycleStoreTest);

}  // namespace
}  // namespace lotse::identity
