#include "common/agencies/registry.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
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

// Resolves `caller` in a read-only transaction: what a handler's first
// phase does.
absl::Status ResolveIn(storage::Database& db,
                       const server::CallerIdentity& caller) {
  return storage::RunInTransaction(
      db, [&](Transaction& tx) { return ResolveCaller(tx, caller).status(); },
      storage::TxMode::kReadOnly);
}

TEST_P(RegistryTest, ACallerNotHeardOfYetIsLookedUpInIdentityAndStored) {
  std::vector<std::string> asked;
  absl::Time asked_deadline;
  AgencyLookup identity =
      [&](absl::string_view agency,
          absl::Time deadline) -> absl::StatusOr<identity::v1::Agency> {
    asked.emplace_back(agency);
    asked_deadline = deadline;
    return MakeAgency("kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE, 100);
  };
  server::RequestContext rc;
  rc.caller = {"kim-koeln", "KOMMUNE"};
  rc.deadline = absl::Now() + absl::Seconds(3);
  int attempts = 0;
  absl::Status status = RunResolvingCaller(db(), identity, rc, [&] {
    ++attempts;
    return ResolveIn(db(), rc.caller);
  });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(asked, std::vector<std::string>{"agencies/kim-koeln"});
  EXPECT_EQ(asked_deadline, rc.deadline);
  // Stored: the next call resolves without asking.
  status = RunResolvingCaller(db(), identity, rc,
                              [&] { return ResolveIn(db(), rc.caller); });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(asked.size(), 1u);
  // The registration event, arriving later, is older or equal: no change.
  identity::v1::AgencyRegistered e;
  *e.mutable_agency() =
      MakeAgency("kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE, 100);
  ASSERT_TRUE(Apply(e).ok());
  EXPECT_TRUE(Resolve("kim-koeln", "KOMMUNE").ok());
}

TEST_P(RegistryTest, WhatIdentityAnswersDecidesAnUnknownCaller) {
  server::RequestContext rc;
  rc.caller = {"kim-koeln", "KOMMUNE"};
  rc.deadline = absl::Now() + absl::Seconds(3);
  auto run = [&](absl::StatusOr<identity::v1::Agency> answer) {
    return RunResolvingCaller(
        db(), [&](absl::string_view, absl::Time) { return answer; }, rc,
        [&] { return ResolveIn(db(), rc.caller); });
  };
  auto reason = [](const absl::Status& s) { return ReasonOf(s).value_or(""); };

  // Identity does not know it either: still forbidden.
  absl::Status s = run(absl::NotFoundError("no such agency"));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(reason(s), "UNKNOWN_AGENCY");
  // Identity gave no answer in time: retryable, never forbidden.
  for (const absl::Status& failure :
       {absl::DeadlineExceededError("slow"), absl::UnavailableError("down"),
        absl::PermissionDeniedError("refused the service")}) {
    s = run(failure);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << failure;
    EXPECT_EQ(reason(s), "AGENCY_REGISTRY_UNAVAILABLE") << failure;
  }
  // The id's agency moved to another certificate identity: this one is not
  // its (the row is stored all the same).
  identity::v1::Agency rotated =
      MakeAgency("kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE, 100);
  rotated.set_certificate_identity("kim-koeln-2025");
  s = run(rotated);
  EXPECT_EQ(reason(s), "UNKNOWN_AGENCY");
  EXPECT_TRUE(Resolve("kim-koeln-2025", "KOMMUNE").ok());
  // Known now, but suspended (or of another domain): identity's word holds.
  identity::v1::Agency suspended =
      MakeAgency("kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE, 200);
  suspended.set_state(identity::v1::AGENCY_STATE_SUSPENDED);
  s = run(suspended);
  EXPECT_EQ(reason(s), "AGENCY_SUSPENDED");
}

TEST_P(RegistryTest, WithoutALookupOrForOtherRefusalsNothingIsAsked) {
  server::RequestContext rc;
  rc.caller = {"kim-koeln", "KOMMUNE"};
  absl::Status s = RunResolvingCaller(
      db(), AgencyLookup(), rc, [&] { return ResolveIn(db(), rc.caller); });
  EXPECT_EQ(ReasonOf(s).value_or(""), "UNKNOWN_AGENCY");
  int asked = 0;
  AgencyLookup identity =
      [&](absl::string_view,
          absl::Time) -> absl::StatusOr<identity::v1::Agency> {
    ++asked;
    return absl::UnavailableError("down");
  };
  s = RunResolvingCaller(db(), identity, rc, [] {
    return ErrorWithReason(absl::StatusCode::kPermissionDenied, "NO_RELATION",
                           "not yours");
  });
  EXPECT_EQ(ReasonOf(s).value_or(""), "NO_RELATION");
  // A fake identity that cannot tell keeps the old answer.
  s = RunResolvingCaller(
      db(),
      [](absl::string_view,
         absl::Time) -> absl::StatusOr<identity::v1::Agency> {
        return absl::UnimplementedError("cannot read agencies");
      },
      rc, [&] { return ResolveIn(db(), rc.caller); });
  EXPECT_EQ(ReasonOf(s).value_or(""), "UNKNOWN_AGENCY");
  EXPECT_EQ(asked, 0);
}

TEST_P(RegistryTest, AnAgencyARequestNamesIsLearnedFromIdentity) {
  const absl::Status refusal = ErrorWithReason(
      absl::StatusCode::kNotFound, "AGENCY_NOT_FOUND", "no such agency");
  const absl::Time deadline = absl::Now() + absl::Seconds(3);
  std::vector<std::string> asked;
  AgencyLookup identity =
      [&](absl::string_view agency,
          absl::Time) -> absl::StatusOr<identity::v1::Agency> {
    asked.emplace_back(agency);
    if (agency == "agencies/vhs-koeln") {
      return MakeAgency("vhs-koeln", type::v1::LEGAL_DOMAIN_KURSTRAEGER, 50);
    }
    if (agency == "agencies/slow") {
      return absl::DeadlineExceededError("identity too slow");
    }
    return absl::NotFoundError("unknown agency");
  };
  // Known to identity: stored, so the request can run again.
  EXPECT_TRUE(
      LearnNamedAgency(db(), identity, "agencies/vhs-koeln", deadline, refusal)
          .ok());
  EXPECT_TRUE(Resolve("vhs-koeln", "KURSTRAEGER").ok());
  // Unknown to identity too: the refusal stands.
  absl::Status unknown =
      LearnNamedAgency(db(), identity, "agencies/nobody", deadline, refusal);
  EXPECT_EQ(unknown, refusal);
  // No answer in time: retryable, never NOT_FOUND.
  absl::Status slow =
      LearnNamedAgency(db(), identity, "agencies/slow", deadline, refusal);
  EXPECT_EQ(slow.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(slow).value_or(""), "AGENCY_REGISTRY_UNAVAILABLE");
  // Other refusals, and no lookup, ask nobody.
  asked.clear();
  const absl::Status other =
      ErrorWithReason(absl::StatusCode::kNotFound, "CASE_NOT_FOUND", "no");
  EXPECT_EQ(
      LearnNamedAgency(db(), identity, "agencies/vhs-koeln", deadline, other),
      other);
  EXPECT_EQ(LearnNamedAgency(db(), identity, "agencies/vhs-koeln", deadline,
                             absl::OkStatus()),
            absl::OkStatus());
  EXPECT_TRUE(asked.empty());
  EXPECT_EQ(
      LearnNamedAgency(db(), nullptr, "agencies/nobody", deadline, refusal),
      refusal);
}

TEST_P(RegistryTest, AResolvedCallerIsCachedUntilASuspensionIsApplied) {
  identity::v1::AgencyRegistered e;
  *e.mutable_agency() =
      MakeAgency("jc-cache", type::v1::LEGAL_DOMAIN_JOBCENTER, 100);
  ASSERT_TRUE(Apply(e).ok());
  ASSERT_TRUE(Resolve("jc-cache", "JOBCENTER").ok());
  const CallerCache::Stats before = LocalCallerCache().stats();
  ASSERT_TRUE(Resolve("jc-cache", "JOBCENTER").ok());
  const CallerCache::Stats after = LocalCallerCache().stats();
  EXPECT_EQ(after.hits, before.hits + 1);
  EXPECT_EQ(after.loads, before.loads);

  identity::v1::AgencySuspended s;
  *s.mutable_agency() = e.agency();
  s.mutable_agency()->set_state(identity::v1::AGENCY_STATE_SUSPENDED);
  s.mutable_agency()->mutable_update_time()->set_seconds(200);
  ASSERT_TRUE(Apply(s).ok());
  EXPECT_EQ(ReasonOf(Resolve("jc-cache", "JOBCENTER").status()).value_or(""),
            "AGENCY_SUSPENDED");
  // Cached again, suspended: still refused.
  EXPECT_EQ(ReasonOf(Resolve("jc-cache", "JOBCENTER").status()).value_or(""),
            "AGENCY_SUSPENDED");
}

// What a replica that did not apply a change sees: the table changed behind
// the cache's back.
TEST_P(RegistryTest, AChangeMadeElsewhereIsSeenOnceTheEntryExpires) {
  identity::v1::AgencyRegistered e;
  *e.mutable_agency() =
      MakeAgency("jc-ttl", type::v1::LEGAL_DOMAIN_JOBCENTER, 100);
  ASSERT_TRUE(Apply(e).ok());
  absl::Time now = absl::FromUnixSeconds(1000);
  CallerCache cache(absl::Seconds(3), [&now] { return now; });
  auto find = [&]() -> absl::StatusOr<std::optional<LocalAgency>> {
    absl::StatusOr<std::optional<LocalAgency>> out = std::nullopt;
    absl::Status s = storage::RunInTransaction(
        db(),
        [&](Transaction& tx) {
          out = cache.Find(
              "jc-ttl", [&] { return FindAgencyByCertificate(tx, "jc-ttl"); });
          return out.status();
        },
        storage::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return out;
  };
  ASSERT_FALSE(find().value()->suspended);
  ASSERT_TRUE(storage::RunInTransaction(db(), [](Transaction& tx) {
                return tx
                    .Execute(
                        "UPDATE local_agencies SET suspended = 1 WHERE id = "
                        "'jc-ttl'")
                    .status();
              }).ok());
  now += absl::Seconds(2);
  EXPECT_FALSE(find().value()->suspended);  // within the TTL: not noticed
  now += absl::Seconds(2);
  EXPECT_TRUE(find().value()->suspended);
  EXPECT_EQ(cache.stats().loads, 2);
  EXPECT_EQ(cache.stats().hits, 1);
}

TEST_P(RegistryTest, WhileAChangeIsOpenTheCacheIsNeitherUsedNorFilled) {
  LocalAgency active;
  active.id = "x";
  active.legal_domain = "JOBCENTER";
  LocalAgency suspended = active;
  suspended.suspended = true;
  CallerCache cache;
  auto loader = [](const LocalAgency& a) {
    return [a]() -> absl::StatusOr<std::optional<LocalAgency>> { return a; };
  };
  ASSERT_FALSE(cache.Find("x", loader(active)).value()->suspended);
  {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = db().Begin();
    ASSERT_TRUE(tx.ok()) << tx.status();
    cache.InvalidateWith(**tx);
    // The uncommitted change is what the transaction reads: answered, but
    // not kept, and the entry from before is not used either.
    EXPECT_TRUE(cache.Find("x", loader(suspended)).value()->suspended);
    EXPECT_FALSE(cache.Find("x", loader(active)).value()->suspended);
    // Rolled back when dropped.
  }
  EXPECT_FALSE(cache.Find("x", loader(active)).value()->suspended);
  EXPECT_EQ(cache.stats().loads, 4);
  EXPECT_FALSE(cache.Find("x", loader(suspended)).value()->suspended);
  EXPECT_EQ(cache.stats().hits, 1);

  // A committed change empties the cache.
  absl::StatusOr<std::unique_ptr<Transaction>> tx = db().Begin();
  ASSERT_TRUE(tx.ok()) << tx.status();
  cache.InvalidateWith(**tx);
  ASSERT_TRUE((*tx)->Commit().ok());
  tx->reset();
  EXPECT_TRUE(cache.Find("x", loader(suspended)).value()->suspended);
  EXPECT_TRUE(cache.Find("x", loader(active)).value()->suspended);
}

TEST_P(RegistryTest, WhatWasReadWhileAChangeBeganAndEndedIsNotKept) {
  LocalAgency active;
  active.id = "x";
  active.legal_domain = "JOBCENTER";
  CallerCache cache;
  absl::StatusOr<std::optional<LocalAgency>> found = cache.Find("x", [&]() {
    // Another thread's change commits while this read is under way.
    absl::StatusOr<std::unique_ptr<Transaction>> tx = db().Begin();
    if (!tx.ok())
      return absl::StatusOr<std::optional<LocalAgency>>(tx.status());
    cache.InvalidateWith(**tx);
    if (absl::Status s = (*tx)->Commit(); !s.ok()) {
      return absl::StatusOr<std::optional<LocalAgency>>(s);
    }
    return absl::StatusOr<std::optional<LocalAgency>>(active);
  });
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(cache
                  .Find("x",
                        [] {
                          return absl::StatusOr<std::optional<LocalAgency>>(
                              std::nullopt);
                        })
                  .ok());
  EXPECT_EQ(cache.stats().loads, 2);
  EXPECT_EQ(cache.stats().hits, 0);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(RegistryTest);

}  // namespace
}  // namespace lotse::agencies
