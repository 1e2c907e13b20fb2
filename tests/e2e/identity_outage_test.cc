// Identity out of reach under a steady mix of calls to the four service
// processes: first hung (SIGSTOP, the process keeps its socket but answers
// nothing), then dead (SIGKILL, connections refused), each for about 15 s,
// 30 s in all. What must hold throughout:
//  - a call that needs identity (a standing check in cases, courses and
//    placement) answers UNAVAILABLE with reason CHECK_UNAVAILABLE, never
//    INTERNAL, and never runs past its deadline;
//  - calls that need no identity (creates and reads of a service's own
//    resources) keep answering OK;
//  - once identity answers again (SIGCONT, or a restart on the same port
//    and database), the services use it again by themselves, within a
//    bound;
//  - every event the three services queued for identity meanwhile reaches
//    identity's inbox, each once.
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/server/server.h"
#include "common/storage/database.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"
#include "tests/e2e/calls.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

using e2e::Describe;
using e2e::Reason;

// The deadline every call of the load carries.
constexpr absl::Duration kCallDeadline = absl::Seconds(5);
// How long identity stays hung, then dead.
constexpr absl::Duration kHung = absl::Seconds(15);
constexpr absl::Duration kDead = absl::Seconds(15);
// How soon after identity answers again the services must use it again.
// gRPC notices a returning peer only at its next reconnect attempt; the
// identity client keeps that backoff short.
constexpr absl::Duration kRecoveryBound = absl::Seconds(20);

const char* const kServices[] = {"identity", "cases", "courses", "placement"};

// One call of the load and what it answered.
struct Outcome {
  std::string probe;
  bool needs_identity = false;
  absl::Time start;
  absl::Duration took;
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string reason;
  std::string message;
};

// A kind of call the load makes over and over; `n` numbers its calls.
struct Probe {
  std::string name;
  bool needs_identity = false;
  std::function<grpc::Status(grpc::ClientContext*, int n)> call;
};

void Prepare(grpc::ClientContext* context, absl::Duration deadline) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  context->AddMetadata("x-lotse-actor", "cw-1");
  context->AddMetadata("x-lotse-purpose", "case-management");
}

class IdentityOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-outage.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    // Identity is restarted on the same port, and the others must know
    // every port before they start: all are picked now.
    for (const char* s : kServices) ports_[s] = FreeLocalPort();
  }

  std::string Address(const std::string& service) {
    return absl::StrCat("127.0.0.1:", ports_[service]);
  }

  // Starts `service` on its port and database; every service sends its
  // events to the three others, as tools/lotse.sh wires them.
  absl::StatusOr<ServiceProcess> Start(const std::string& service) {
    std::string destinations;
    for (const char* other : kServices) {
      if (other == service) continue;
      if (!destinations.empty()) destinations += ",";
      absl::StrAppend(&destinations, other, "=", Address(other));
    }
    std::vector<std::string> args = {
        absl::StrCat("--listen=", Address(service)),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=sqlite:", dir_, "/", service, ".db"),
        absl::StrCat("--event_destinations=", destinations),
        "--drain_grace=100ms",
        "--shutdown_deadline=1s"};
    if (service != "identity") {
      args.push_back(absl::StrCat("--identity_target=", Address("identity")));
    }
    return ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, "-", ++starts_, ".log"));
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& service,
                                         const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(Address(service), *creds);
  }

  std::string Logs() {
    std::string out;
    for (auto& [name, process] : processes_) {
      absl::StrAppend(&out, "--- ", name, "\n", process->ReadLog());
    }
    return out;
  }

  // Retries `call` until it succeeds: a service learns the demo agencies
  // from identity's events some time after the seed registered them.
  static grpc::Status UntilOk(const std::function<grpc::Status()>& call) {
    grpc::Status last;
    Eventually(
        [&] {
          last = call();
          return last.ok();
        },
        absl::Seconds(60));
    return last;
  }

  // A person registered by `agency`, which thereby has standing towards
  // them.
  identity::v1::Person RegisterPerson(const std::string& agency,
                                      const std::string& given,
                                      const std::string& family) {
    identity::v1::CreatePersonRequest create;
    create.set_request_id(absl::StrCat("outage-person-", agency));
    create.set_confirm_new_person(true);
    *create.mutable_person() = SamplePerson(given, family, 1990);
    identity::v1::Person person;
    auto stub =
        identity::v1::IdentityService::NewStub(Channel("identity", agency));
    grpc::Status s = UntilOk([&] {
      grpc::ClientContext context;
      Prepare(&context, absl::Seconds(10));
      return stub->CreatePerson(&context, create, &person);
    });
    EXPECT_TRUE(s.ok()) << Describe(s);
    return person;
  }

  // Every event in `producer`'s outbox, by id.
  absl::flat_hash_set<std::string> OutboxIds(const std::string& producer) {
    absl::flat_hash_set<std::string> ids;
    auto db = storage::OpenDatabase(
        absl::StrCat("sqlite:", dir_, "/", producer, ".db"), 1);
    EXPECT_TRUE(db.ok()) << db.status();
    if (!db.ok()) return ids;
    auto tx = (*db)->Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok()) << tx.status();
    if (!tx.ok()) return ids;
    auto rows = (*tx)->Query("SELECT event_id FROM event_outbox");
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok()) return ids;
    for (const storage::Row& r : *rows) ids.insert(*r.GetText(0));
    return ids;
  }

  // How many of `ids` `receiver`'s inbox holds, and how many rows it holds
  // for them (the inbox keys rows by event id; a second row for one id
  // would be a second application).
  struct InboxCount {
    int64_t distinct = 0;
    int64_t rows = 0;
  };
  InboxCount Received(const std::string& receiver,
                      const absl::flat_hash_set<std::string>& ids) {
    InboxCount count;
    auto db = storage::OpenDatabase(
        absl::StrCat("sqlite:", dir_, "/", receiver, ".db"), 1);
    EXPECT_TRUE(db.ok()) << db.status();
    if (!db.ok()) return count;
    auto tx = (*db)->Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok()) << tx.status();
    if (!tx.ok()) return count;
    auto rows = (*tx)->Query("SELECT event_id FROM event_inbox");
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok()) return count;
    absl::flat_hash_set<std::string> seen;
    for (const storage::Row& r : *rows) {
      std::string id = *r.GetText(0);
      if (!ids.contains(id)) continue;
      ++count.rows;
      seen.insert(id);
    }
    count.distinct = static_cast<int64_t>(seen.size());
    return count;
  }

  // Whether every needs-identity probe answers OK now.
  bool IdentityCallsOk(const std::vector<Probe>& probes) {
    for (const Probe& p : probes) {
      if (!p.needs_identity) continue;
      grpc::ClientContext context;
      Prepare(&context, kCallDeadline);
      if (!p.call(&context, -1).ok()) return false;
    }
    return true;
  }

  std::string pki_;
  std::string dir_;
  absl::flat_hash_map<std::string, int> ports_;
  std::vector<std::pair<std::string, std::unique_ptr<ServiceProcess>>>
      processes_;
  int starts_ = 0;
};

TEST_F(IdentityOutageTest, HungAndDeadIdentityUnderMixedLoad) {
  std::unique_ptr<ServiceProcess> identity;
  for (const char* s : kServices) {
    absl::StatusOr<ServiceProcess> p = Start(s);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_TRUE(p->WaitServing(absl::Seconds(30)).ok()) << p->ReadLog();
    processes_.emplace_back(s, std::make_unique<ServiceProcess>(*std::move(p)));
  }
  auto seed =
      ServiceProcess::Start(absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
                            {absl::StrCat("--identity=", Address("identity")),
                             absl::StrCat("--tls_dir=", pki_)},
                            absl::StrCat(dir_, "/seed.log"));
  ASSERT_TRUE(seed.ok()) << seed.status();
  ASSERT_EQ(seed->WaitExit(absl::Seconds(60)).value_or(-1), 0)
      << seed->ReadLog();

  // One person in each calling agency's remit (it registered them), and
  // the municipality's case of its person.
  const identity::v1::Person resident =
      RegisterPerson("kim-koeln", "Amira", "Haddad");
  const identity::v1::Person admitted =
      RegisterPerson("bamf-nuernberg", "Yusuf", "Demir");
  const identity::v1::Person seeker =
      RegisterPerson("jobcenter-koeln", "Olena", "Shevchenko");
  ASSERT_FALSE(HasFailure());

  auto cases_kim =
      cases::v1::CasesService::NewStub(Channel("cases", "kim-koeln"));
  auto courses_bamf = courses::v1::CoursesService::NewStub(
      Channel("courses", "bamf-nuernberg"));
  auto courses_vhs =
      courses::v1::CoursesService::NewStub(Channel("courses", "vhs-koeln"));
  auto placement_jc = placement::v1::PlacementService::NewStub(
      Channel("placement", "jobcenter-koeln"));
  auto placement_aa = placement::v1::PlacementService::NewStub(
      Channel("placement", "aa-koeln"));

  cases::v1::OpenCaseRequest open;
  open.set_request_id("outage-case");
  open.mutable_case_record()->set_person(resident.name());
  open.mutable_case_record()->set_responsible_actor("cm-1");
  cases::v1::Case opened;
  grpc::Status s = UntilOk([&] {
    grpc::ClientContext context;
    Prepare(&context, absl::Seconds(10));
    return cases_kim->OpenCase(&context, open, &opened);
  });
  ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();

  courses::v1::RecordEntitlementRequest entitle;
  entitle.set_request_id("outage-entitlement");
  courses::v1::Entitlement* e = entitle.mutable_entitlement();
  e->set_person(admitted.name());
  e->set_kind(courses::v1::ENTITLEMENT_KIND_ADMISSION);
  e->add_course_kinds(courses::v1::COURSE_KIND_INTEGRATION_GENERAL);
  e->set_units(700);
  *e->mutable_valid_from() = DateInDays(0);
  *e->mutable_valid_until() = DateInDays(365);

  placement::v1::CreateCandidateProfileRequest profile;
  profile.set_request_id("outage-profile");
  placement::v1::CandidateProfile* p = profile.mutable_candidate_profile();
  p->set_person(seeker.name());
  p->add_wanted_offer_kinds(placement::v1::OFFER_KIND_JOB);
  p->set_stated_language_level(type::v1::CEFR_LEVEL_A2);
  p->mutable_preferred_hours()->set_min_hours_per_week(20);
  p->mutable_preferred_hours()->set_max_hours_per_week(40);

  // Calls that need identity repeat one create (each time the standing
  // check runs first; the replay answers the first result). Calls that
  // do not create something new each time.
  const std::vector<Probe> probes = {
      {"cases.OpenCase", true,
       [&](grpc::ClientContext* c, int) {
         cases::v1::Case out;
         return cases_kim->OpenCase(c, open, &out);
       }},
      {"courses.RecordEntitlement", true,
       [&](grpc::ClientContext* c, int) {
         courses::v1::Entitlement out;
         return courses_bamf->RecordEntitlement(c, entitle, &out);
       }},
      {"placement.CreateCandidateProfile", true,
       [&](grpc::ClientContext* c, int) {
         placement::v1::CandidateProfile out;
         return placement_jc->CreateCandidateProfile(c, profile, &out);
       }},
      {"cases.CreateStep", false,
       [&](grpc::ClientContext* c, int n) {
         cases::v1::CreateStepRequest request;
         request.set_parent(opened.name());
         request.set_request_id(absl::StrCat("outage-step-", n));
         request.mutable_step()->set_kind(
             cases::v1::STEP_KIND_INTEGRATION_COURSE);
         request.mutable_step()->set_receiving_agency("agencies/vhs-koeln");
         request.mutable_step()->set_description(absl::StrCat("step ", n));
         cases::v1::Step out;
         return cases_kim->CreateStep(c, request, &out);
       }},
      {"cases.GetCase", false,
       [&](grpc::ClientContext* c, int) {
         cases::v1::GetCaseRequest request;
         request.set_name(opened.name());
         cases::v1::Case out;
         return cases_kim->GetCase(c, request, &out);
       }},
      {"courses.CreateCourse", false,
       [&](grpc::ClientContext* c, int n) {
         courses::v1::CreateCourseRequest request;
         request.set_request_id(absl::StrCat("outage-course-", n));
         *request.mutable_course() =
             IntegrationCourse(absl::StrCat("Integrationskurs ", n));
         courses::v1::Course out;
         return courses_vhs->CreateCourse(c, request, &out);
       }},
      {"placement.CreateOffer", false,
       [&](grpc::ClientContext* c, int n) {
         placement::v1::CreateOfferRequest request;
         request.set_request_id(absl::StrCat("outage-offer-", n));
         *request.mutable_offer() = WarehouseOffer(
             absl::StrCat("Lagerhelfer ", n), type::v1::CEFR_LEVEL_A2, 1);
         placement::v1::Offer out;
         return placement_aa->CreateOffer(c, request, &out);
       }},
  };
  // Each kind once before the load, so that every agency is known where
  // it calls (news of agencies travels as events).
  for (const Probe& probe : probes) {
    grpc::Status first = UntilOk([&] {
      grpc::ClientContext context;
      Prepare(&context, absl::Seconds(10));
      return probe.call(&context, 0);
    });
    ASSERT_TRUE(first.ok()) << probe.name << ": " << Describe(first) << "\n"
                            << Logs();
  }

  // The load: one thread per kind, a call every 100 ms.
  absl::Mutex mu;
  std::vector<Outcome> outcomes;
  std::atomic<bool> stop{false};
  std::vector<std::thread> load;
  for (const Probe& probe : probes) {
    load.emplace_back([&, probe] {
      for (int n = 1; !stop.load(); ++n) {
        grpc::ClientContext context;
        Prepare(&context, kCallDeadline);
        Outcome o;
        o.probe = probe.name;
        o.needs_identity = probe.needs_identity;
        o.start = absl::Now();
        grpc::Status s = probe.call(&context, n);
        o.took = absl::Now() - o.start;
        o.code = s.error_code();
        o.reason = Reason(s);
        o.message = s.error_message();
        {
          absl::MutexLock lock(&mu);
          outcomes.push_back(std::move(o));
        }
        absl::SleepFor(absl::Milliseconds(100));
      }
    });
  }

  ServiceProcess& identity_process = *processes_[0].second;
  absl::SleepFor(absl::Seconds(3));

  // Hung: the socket stays open, nothing answers.
  const absl::Time hung_at = absl::Now();
  identity_process.Signal(SIGSTOP);
  absl::SleepFor(kHung);
  const absl::Time resumed_at = absl::Now();
  identity_process.Signal(SIGCONT);
  const bool back_after_hang =
      Eventually([&] { return IdentityCallsOk(probes); }, kRecoveryBound);
  const absl::Duration recovery_after_hang = absl::Now() - resumed_at;

  // Dead: connections are refused until it restarts on the same port and
  // database.
  const absl::Time killed_at = absl::Now();
  identity_process.Signal(SIGKILL);
  ASSERT_EQ(identity_process.WaitExit(absl::Seconds(10)).value_or(-1),
            128 + SIGKILL);
  absl::SleepFor(kDead);
  const absl::Time restart_begun = absl::Now();
  absl::StatusOr<ServiceProcess> restarted = Start("identity");
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  ASSERT_TRUE(restarted->WaitServing(absl::Seconds(30)).ok())
      << restarted->ReadLog();
  const absl::Time restarted_at = absl::Now();
  processes_[0].second =
      std::make_unique<ServiceProcess>(*std::move(restarted));
  const bool back_after_restart =
      Eventually([&] { return IdentityCallsOk(probes); }, kRecoveryBound);
  const absl::Duration recovery_after_restart = absl::Now() - restarted_at;

  absl::SleepFor(absl::Seconds(3));
  stop.store(true);
  for (std::thread& t : load) t.join();

  EXPECT_TRUE(back_after_hang) << "identity calls still failing "
                               << recovery_after_hang << " after SIGCONT\n"
                               << Logs();
  EXPECT_TRUE(back_after_restart)
      << "identity calls still failing " << recovery_after_restart
      << " after the restart\n"
      << Logs();
  std::cout << "identity calls answered again " << recovery_after_hang
            << " after SIGCONT, " << recovery_after_restart
            << " after the restart\n";
  ::testing::Test::RecordProperty(
      "recovery_after_hang_ms",
      static_cast<int>(absl::ToInt64Milliseconds(recovery_after_hang)));
  ::testing::Test::RecordProperty(
      "recovery_after_restart_ms",
      static_cast<int>(absl::ToInt64Milliseconds(recovery_after_restart)));

  // Every call answered within its deadline, OK or UNAVAILABLE with a
  // reason; only calls that need identity failed, and those that started
  // while identity was out of reach all did.
  int refused_in_outage = 0;
  int ok_without_identity_in_outage = 0;
  for (const Outcome& o : outcomes) {
    const std::string what = absl::StrCat(
        o.probe, " at +", absl::FormatDuration(o.start - hung_at), " took ",
        absl::FormatDuration(o.took), ": ", static_cast<int>(o.code), " ",
        o.message, " (", o.reason, ")");
    EXPECT_LE(o.took, kCallDeadline + absl::Milliseconds(500)) << what;
    if (!o.needs_identity) {
      EXPECT_EQ(o.code, grpc::StatusCode::OK) << what;
      const bool in_outage = (o.start >= hung_at && o.start < resumed_at) ||
                             (o.start >= killed_at && o.start < restart_begun);
      if (in_outage && o.code == grpc::StatusCode::OK) {
        ++ok_without_identity_in_outage;
      }
      continue;
    }
    if (o.code == grpc::StatusCode::OK) {
      // Answered by identity: it must have been reachable for some of the
      // call's time.
      const absl::Time end = o.start + o.took;
      EXPECT_FALSE(o.start >= hung_at && end <= resumed_at) << what;
      EXPECT_FALSE(o.start >= killed_at + absl::Milliseconds(500) &&
                   end <= restart_begun)
          << what;
      continue;
    }
    EXPECT_EQ(o.code, grpc::StatusCode::UNAVAILABLE) << what;
    EXPECT_EQ(o.reason, "CHECK_UNAVAILABLE") << what;
    ++refused_in_outage;
  }
  EXPECT_GT(refused_in_outage, 0);
  std::cout << outcomes.size() << " calls, " << refused_in_outage
            << " refused UNAVAILABLE (CHECK_UNAVAILABLE), "
            << ok_without_identity_in_outage
            << " answered OK without identity while it was away\n";
  EXPECT_GT(ok_without_identity_in_outage, 0);

  // The events the three services committed, also while identity was out
  // of reach, each reach identity once.
  for (const char* producer : {"cases", "courses", "placement"}) {
    const absl::flat_hash_set<std::string> sent = OutboxIds(producer);
    // The placement calls of the load emit no events; the others do.
    if (std::string(producer) != "placement") {
      EXPECT_FALSE(sent.empty()) << producer;
    }
    InboxCount got;
    Eventually(
        [&] {
          got = Received("identity", sent);
          return got.distinct == static_cast<int64_t>(sent.size());
        },
        absl::Seconds(60));
    EXPECT_EQ(got.distinct, static_cast<int64_t>(sent.size()))
        << producer << "'s events missing at identity\n"
        << Logs();
    EXPECT_EQ(got.rows, got.distinct) << producer;
  }
  // And identity's own, from before the kill, reach the others.
  const absl::flat_hash_set<std::string> from_identity = OutboxIds("identity");
  for (const char* receiver : {"cases", "courses", "placement"}) {
    InboxCount got;
    Eventually(
        [&] {
          got = Received(receiver, from_identity);
          return got.distinct == static_cast<int64_t>(from_identity.size());
        },
        absl::Seconds(60));
    EXPECT_EQ(got.distinct, static_cast<int64_t>(from_identity.size()))
        << receiver;
  }

  for (auto& [name, process] : processes_) {
    process->Signal(SIGTERM);
    EXPECT_EQ(process->WaitExit(absl::Seconds(15)).value_or(-1), 0)
        << name << "\n"
        << process->ReadLog();
  }
}

}  // namespace
}  // namespace lotse::testing
