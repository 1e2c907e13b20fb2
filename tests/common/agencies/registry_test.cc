#include "common/agencies/registry.h"

#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/storage/migrations.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/events.pb.h"
#include "tests/support/test_database.h"

namespace lotse::agencies {
namespace {

using ::lotse::storage::Transaction;

identity::v1::Agency MakeAgency(const std::string& id,
                                type::v1::LegalDomain domain,
                                int64_t update_seconds) {
  identity::v1::Agency a;
  a.set_name("agencies/" + id);
  a.set_legal_domain(domain);
  a.set_municipality_code("05315000");
  a.set_certificate_identity(id);
  a.set_state(identity::v1::AGENCY_STATE_ACTIVE);
  a.mutable_update_time()->set_seconds(update_seconds);
  return a;
}

class RegistryTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    ASSERT_TRUE(storage::ApplyMigrations(db(), {RegistryMigration()}).ok());
  }

  absl::StatusOr<bool> Apply(const google::protobuf::Message& event) {
    google::protobuf::Any any;
    any.PackFrom(event);
    absl::StatusOr<bool> applied = false;
    absl::Status s = storage::RunInTransaction(db(), [&](Transaction& tx) {
      applied = ApplyAgencyEvent(tx, any);
      return applied.status();
    });
    if (!s.ok()) return s;
    return applied;
  }

  absl::StatusOr<LocalAgency> Resolve(const std::string& id,
                                      const std::string& domain) {
    absl::StatusOr<LocalAgency> out = absl::UnknownError("not run");
    absl::Status s = storage::RunInTransaction(
        db(),
        [&](Transaction& tx) {
          out = ResolveCaller(tx, {id, domain});
          return absl::OkStatus();
        },
        storage::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return out;
  }
};

TEST_P(RegistryTest, RegisteredAgencyResolvesWithItsDomainAndMunicipality) {
  identity::v1::AgencyRegistered e;
  *e.mutable_agency() =
      MakeAgency("jobcenter-koeln", type::v1::LEGAL_DOMAIN_JOBCENTER, 100);
  ASSERT_EQ(Apply(e).value(), true);
  absl::StatusOr<LocalAgency> a = Resolve("jobcenter-koeln", "JOBCENTER");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->id, "jobcenter-koeln");
  EXPECT_EQ(a->name(), "agencies/jobcenter-koeln");
  EXPECT_EQ(a->legal_domain, "JOBCENTER");
  EXPECT_EQ(a->municipality_code, "05315000");
  EXPECT_FALSE(a->suspended);
}

TEST_P(RegistryTest, UnknownMismatchedAndSuspendedCallersAreRefused) {
  identity::v1::AgencyRegistered e;
  *e.mutable_agency() =
      MakeAgency("abh-koeln", type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE, 100);
  ASSERT_TRUE(Apply(e).ok());

  absl::StatusOr<LocalAgency> unknown = Resolve("nobody", "JOBCENTER");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(unknown.status()).value_or(""), "UNKNOWN_AGENCY");

  absl::StatusOr<LocalAgency> mismatch = Resolve("abh-koeln", "JOBCENTER");
  EXPECT_EQ(ReasonOf(mismatch.status()).value_or(""), "LEGAL_DOMAIN_MISMATCH");

  identity::v1::AgencySuspended s;
  *s.mutable_agency() = e.agency();
  s.mutable_agency()->set_state(identity::v1::AGENCY_STATE_SUSPENDED);
  s.mutable_agency()->mutable_update_time()->set_seconds(200);
  ASSERT_TRUE(Apply(s).ok());
  absl::StatusOr<LocalAgency> suspended =
      Resolve("abh-koeln", "AUSLAENDERBEHOERDE");
  EXPECT_EQ(ReasonOf(suspended.status()).value_or(""), "AGENCY_SUSPENDED");
}

TEST_P(RegistryTest, AnOlderEventDoesNotUndoANewerOne) {
  identity::v1::AgencySuspended newer;
  *newer.mutable_agency() =
      MakeAgency("vhs-bonn", type::v1::LEGAL_DOMAIN_KURSTRAEGER, 300);
  newer.mutable_agency()->set_state(identity::v1::AGENCY_STATE_SUSPENDED);
  identity::v1::AgencyRegistered older;
  *older.mutable_agency() =
      MakeAgency("vhs-bonn", type::v1::LEGAL_DOMAIN_KURSTRAEGER, 100);
  ASSERT_TRUE(Apply(newer).ok());
  ASSERT_TRUE(Apply(older).ok());
  EXPECT_EQ(ReasonOf(Resolve("vhs-bonn", "KURSTRAEGER").status()).value_or(""),
            "AGENCY_SUSPENDED");
}

TEST_P(RegistryTest, OtherPayloadsAreNotAgencyEvents) {
  identity::v1::PersonMerged merged;
  merged.set_merged("persons/x");
  EXPECT_EQ(Apply(merged).value(), false);
}

TEST_P(RegistryTest, ListsActiveAgenciesOfADomainInAMunicipality) {
  for (const char* id : {"abh-b", "abh-a"}) {
    identity::v1::AgencyRegistered e;
    *e.mutable_agency() =
        MakeAgency(id, type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE, 100);
    ASSERT_TRUE(Apply(e).ok());
  }
  identity::v1::AgencyRegistered elsewhere;
  *elsewhere.mutable_agency() =
      MakeAgency("abh-bonn", type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE, 100);
  elsewhere.mutable_agency()->set_municipality_code("05314000");
  ASSERT_TRUE(Apply(elsewhere).ok());
  identity::v1::AgencySuspended gone;
  *gone.mutable_agency() =
      MakeAgency("abh-c", type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE, 100);
  gone.mutable_agency()->set_state(identity::v1::AGENCY_STATE_SUSPENDED);
  ASSERT_TRUE(Apply(gone).ok());

  absl::StatusOr<std::vector<LocalAgency>> listed;
  ASSERT_TRUE(storage::RunInTransaction(db(), [&](Transaction& tx) {
                listed =
                    ListActiveAgencies(tx, "AUSLAENDERBEHOERDE", "05315000");
                return listed.status();
              }).ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, "abh-a");
  EXPECT_EQ((*listed)[1].id, "abh-b");
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(RegistryTest);

}  // namespace
}  // namespace lotse::agencies
