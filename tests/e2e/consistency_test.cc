// What a client sees right after a call returned OK in one process, when the
// next call goes to another: identity's agency registry and the relations
// cases reports to identity travel as events, and "not heard of it yet"
// must not come back as PERMISSION_DENIED, which clients must not retry.
//
// Each test also measures how long the effect took to become usable in the
// other process (polled every few milliseconds) and prints the figures.
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/server/server.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

namespace iv1 = ::lotse::identity::v1;
namespace cv1 = ::lotse::cases::v1;

void Prepare(grpc::ClientContext* context, const char* purpose) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  context->AddMetadata("x-lotse-actor", "cw-1");
  context->AddMetadata("x-lotse-purpose", purpose);
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " ", status.error_message(), " (",
                      ReasonOf(FromGrpcStatus(status)).value_or("no reason"),
                      ")");
}

// Waits a different fraction of the relays' 1 s poll before each sample, so
// the figures do not depend on the phase the samples happen to hit.
void Stagger(int i) { absl::SleepFor(absl::Milliseconds((i * 379) % 1000)); }

// How long after `start` `call` first returned OK, asking every 5 ms for at
// most 10 s; the first answer is kept in *first.
absl::Duration TimeUntilOk(absl::Time start,
                           const std::function<grpc::Status()>& call,
                           grpc::Status* first) {
  *first = call();
  grpc::Status last = *first;
  while (!last.ok() && absl::Now() - start < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(5));
    last = call();
  }
  return last.ok() ? absl::Now() - start : absl::InfiniteDuration();
}

void Report(const char* what, std::vector<absl::Duration> samples) {
  if (samples.empty()) {
    std::printf("%s: no samples\n", what);
    return;
  }
  std::sort(samples.begin(), samples.end());
  const auto at = [&](double q) {
    return absl::FormatDuration(
        samples[static_cast<size_t>(q * (samples.size() - 1))]);
  };
  std::printf("%s: n=%zu min=%s p50=%s max=%s\n", what, samples.size(),
              at(0).c_str(), at(0.5).c_str(), at(1).c_str());
}

// The demo agencies of tools/dev-pki.sh (lotse-admin is bootstrapped).
struct Demo {
  const char* id;
  type::v1::LegalDomain domain;
};
const std::vector<Demo>& DemoAgencies() {
  static const auto* agencies = new std::vector<Demo>{
      {"kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE},
      {"abh-koeln", type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE},
      {"bamf-nuernberg", type::v1::LEGAL_DOMAIN_BAMF},
      {"jobcenter-koeln", type::v1::LEGAL_DOMAIN_JOBCENTER},
      {"aa-koeln", type::v1::LEGAL_DOMAIN_ARBEITSAGENTUR},
      {"vhs-koeln", type::v1::LEGAL_DOMAIN_KURSTRAEGER},
      {"ihk-koeln", type::v1::LEGAL_DOMAIN_KAMMER},
      {"caritas-koeln", type::v1::LEGAL_DOMAIN_FREIER_TRAEGER},
      {"jugendamt-koeln", type::v1::LEGAL_DOMAIN_JUGENDAMT},
      {"sozialamt-koeln", type::v1::LEGAL_DOMAIN_SOZIALAMT},
  };
  return *agencies;
}

class ConsistencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-consistency.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    cases_port_ = FreeLocalPort();

    auto identity = Start(
        "identity", 0,
        {absl::StrCat("--event_destinations=cases=127.0.0.1:", cases_port_)});
    ASSERT_TRUE(identity.ok()) << identity.status();
    identity_.push_back(*std::move(identity));
    absl::StatusOr<int> port = identity_[0].WaitServing(absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << identity_[0].ReadLog();
    identity_port_ = *port;
    auto cases =
        Start("cases", cases_port_,
              {absl::StrCat("--identity_target=127.0.0.1:", identity_port_),
               absl::StrCat("--event_destinations=identity=127.0.0.1:",
                            identity_port_)});
    ASSERT_TRUE(cases.ok()) << cases.status();
    cases_.push_back(*std::move(cases));
    ASSERT_TRUE(cases_[0].WaitServing(absl::Seconds(20)).ok())
        << cases_[0].ReadLog();
  }

  void TearDown() override {
    for (auto* group : {&others_, &cases_, &identity_}) {
      for (ServiceProcess& p : *group) {
        p.Signal(SIGTERM);
        EXPECT_EQ(p.WaitExit(absl::Seconds(10)).value_or(-1), 0);
      }
    }
  }

  absl::StatusOr<ServiceProcess> Start(const std::string& service, int port,
                                       std::vector<std::string> extra) {
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", port),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=sqlite:", dir_, "/", service, ".db"),
        "--drain_grace=100ms", "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, "-", ++starts_, ".log"));
  }

  std::shared_ptr<grpc::Channel> Channel(int port, const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds);
  }
  std::unique_ptr<iv1::IdentityService::Stub> Identity(const std::string& as) {
    return iv1::IdentityService::NewStub(Channel(identity_port_, as));
  }
  std::unique_ptr<cv1::CasesService::Stub> Cases(const std::string& as) {
    return cv1::CasesService::NewStub(Channel(cases_port_, as));
  }

  grpc::Status Register(const Demo& demo) {
    iv1::RegisterAgencyRequest request;
    request.set_request_id(absl::StrCat("e2e-", demo.id));
    request.set_agency_id(demo.id);
    request.mutable_agency()->set_display_name(demo.id);
    request.mutable_agency()->set_legal_domain(demo.domain);
    request.mutable_agency()->set_municipality_code("05315000");
    request.mutable_agency()->set_certificate_identity(demo.id);
    iv1::Agency agency;
    grpc::ClientContext context;
    Prepare(&context, "register-agency");
    return Identity("lotse-admin")->RegisterAgency(&context, request, &agency);
  }

  // Registers every demo agency, then waits until cases knows the case
  // owner (kim-koeln) by its event.
  void RegisterAll() {
    for (const Demo& demo : DemoAgencies()) {
      grpc::Status registered = Register(demo);
      ASSERT_TRUE(registered.ok()) << Describe(registered);
    }
    // One connection each, as a client keeps them, so that the timings
    // measure the services rather than TLS handshakes.
    registrar_ = Identity("abh-koeln");
    owner_in_identity_ = Identity("kim-koeln");
    owner_in_cases_ = Cases("kim-koeln");
    ASSERT_TRUE(Eventually([&] { return ListCases(*owner_in_cases_).ok(); },
                           absl::Seconds(10)));
  }

  // The case owner's read of the person's residence status (allowed to a
  // KOMMUNE only as the person's case owner), as a status: PERMISSION_DENIED
  // until identity knows of the case.
  grpc::Status ReadResidence(const std::string& person) {
    iv1::GetCurrentResidenceStatusRequest request;
    request.set_person(person);
    iv1::ResidenceStatus status;
    grpc::ClientContext context;
    Prepare(&context, "case-management");
    return owner_in_identity_->GetCurrentResidenceStatus(&context, request,
                                                         &status);
  }

  // The immigration office registers a person and records the residence
  // status; the case manager, who has the person's papers in front of it,
  // takes the person into its remit (its file number, with the papers),
  // opens a case in cases and at once reads the residence status in
  // identity, which only the case makes it entitled to. Returns how long
  // after OpenCase's OK the read was first allowed; *first is identity's
  // first answer.
  absl::Duration OpenCaseThenReadResidence(const std::string& tag,
                                           grpc::Status* first,
                                           std::string* person_name = nullptr) {
    iv1::CreatePersonRequest create;
    create.set_request_id(absl::StrCat("e2e-person-", tag));
    *create.mutable_person() = SamplePersonWithPapers(
        "Oleksandr", absl::StrCat("Kovalenko-", tag), 1980);
    // The names differ by a tag only; these are different persons.
    create.set_confirm_new_person(true);
    iv1::Person person;
    {
      grpc::ClientContext context;
      Prepare(&context, "residence-status");
      grpc::Status s = registrar_->CreatePerson(&context, create, &person);
      EXPECT_TRUE(s.ok()) << Describe(s);
      if (!s.ok()) return absl::InfiniteDuration();
    }
    if (person_name != nullptr) *person_name = person.name();
    {
      iv1::RecordResidenceStatusRequest record;
      record.set_parent(person.name());
      record.set_request_id(absl::StrCat("e2e-residence-", tag));
      iv1::ResidenceStatus* rs = record.mutable_residence_status();
      rs->set_title_kind(iv1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT);
      rs->set_legal_basis("§ 25 Abs. 2 AufenthG");
      *rs->mutable_valid_from() = DateInDays(-30);
      *rs->mutable_valid_until() = DateInDays(365);
      rs->set_work_permission(type::v1::WORK_PERMISSION_PERMITTED);
      iv1::ResidenceStatus recorded;
      grpc::ClientContext context;
      Prepare(&context, "residence-status");
      grpc::Status s =
          registrar_->RecordResidenceStatus(&context, record, &recorded);
      EXPECT_TRUE(s.ok()) << Describe(s);
      if (!s.ok()) return absl::InfiniteDuration();
    }
    {
      iv1::LinkAgencyIdRequest link;
      link.set_parent(person.name());
      link.set_request_id(absl::StrCat("e2e-link-", tag));
      link.mutable_agency_id()->set_kind(
          iv1::AGENCY_ID_KIND_MUNICIPAL_FILE_NUMBER);
      link.mutable_agency_id()->set_value(absl::StrCat("KIM-", tag));
      *link.mutable_proof() = PapersOf(person);
      iv1::AgencyId linked;
      grpc::ClientContext context;
      Prepare(&context, "case-management");
      grpc::Status s =
          owner_in_identity_->LinkAgencyId(&context, link, &linked);
      EXPECT_TRUE(s.ok()) << Describe(s);
      if (!s.ok()) return absl::InfiniteDuration();
    }
    // The file number alone does not open the residence status.
    EXPECT_EQ(ReadResidence(person.name()).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    cv1::OpenCaseRequest open;
    open.set_request_id(absl::StrCat("e2e-case-", tag));
    open.mutable_case_record()->set_person(person.name());
    open.mutable_case_record()->set_responsible_actor("cm-1");
    cv1::Case opened;
    {
      grpc::ClientContext context;
      Prepare(&context, "case-management");
      const absl::Time start = absl::Now();
      grpc::Status s = owner_in_cases_->OpenCase(&context, open, &opened);
      EXPECT_TRUE(s.ok()) << Describe(s);
      if (!s.ok()) return absl::InfiniteDuration();
      absl::MutexLock lock(&open_case_mu_);
      open_case_.push_back(absl::Now() - start);
    }
    const absl::Time ok = absl::Now();
    return TimeUntilOk(
        ok, [&] { return ReadResidence(person.name()); }, first);
  }

  // The longest a write may take when identity is down: the wait for
  // identity (2 s at most) and the write itself.
  static absl::Duration server_wait_bound() { return absl::Seconds(3); }

  grpc::Status ListCases(cv1::CasesService::Stub& stub) {
    cv1::ListCasesRequest request;
    cv1::ListCasesResponse response;
    grpc::ClientContext context;
    Prepare(&context, "case-management");
    return stub.ListCases(&context, request, &response);
  }

  std::string pki_;
  std::string dir_;
  int cases_port_ = 0;
  int identity_port_ = 0;
  int starts_ = 0;
  std::vector<ServiceProcess> identity_;
  std::vector<ServiceProcess> cases_;
  std::vector<ServiceProcess> others_;  // started by a test
  // Set by RegisterAll.
  std::unique_ptr<iv1::IdentityService::Stub> registrar_;
  std::unique_ptr<iv1::IdentityService::Stub> owner_in_identity_;
  std::unique_ptr<cv1::CasesService::Stub> owner_in_cases_;
  // How long each OpenCase call took.
  absl::Mutex open_case_mu_;
  std::vector<absl::Duration> open_case_ ABSL_GUARDED_BY(open_case_mu_);
};

TEST_F(ConsistencyTest, AnAgencyMayCallCasesAsSoonAsIdentityRegisteredIt) {
  std::vector<absl::Duration> visible;
  int i = 0;
  for (const Demo& demo : DemoAgencies()) {
    Stagger(i++);
    auto cases = Cases(demo.id);
    // The channel is connected first, so only the registry is measured.
    ASSERT_EQ(ListCases(*cases).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    grpc::Status registered = Register(demo);
    ASSERT_TRUE(registered.ok()) << Describe(registered);
    const absl::Time ok = absl::Now();
    grpc::Status first;
    visible.push_back(TimeUntilOk(
        ok, [&] { return ListCases(*cases); }, &first));
    EXPECT_TRUE(first.ok()) << demo.id << ": " << Describe(first);
  }
  Report("RegisterAgency OK -> cases accepts the agency", visible);
}

TEST_F(ConsistencyTest, ACaseOwnerReadsTheResidenceAsSoonAsTheCaseIsOpen) {
  ASSERT_NO_FATAL_FAILURE(RegisterAll());
  std::vector<absl::Duration> visible;
  for (int i = 0; i < 10; ++i) {
    Stagger(i);
    grpc::Status first;
    visible.push_back(
        OpenCaseThenReadResidence(absl::StrCat("seq-", i), &first));
    EXPECT_TRUE(first.ok()) << Describe(first);
  }
  Report("OpenCase OK -> identity lets the case owner read the residence",
         visible);
  absl::MutexLock lock(&open_case_mu_);
  Report("OpenCase call, one client", open_case_);
}

// Many clients at once: the relay to identity sends one event at a time,
// so without waiting for it a case's relation can lag behind the answer.
TEST_F(ConsistencyTest, ResidenceRightAfterOpenCaseAlsoUnderConcurrentLoad) {
  ASSERT_NO_FATAL_FAILURE(RegisterAll());
  constexpr int kClients = 8;
  constexpr int kEach = 4;
  absl::Mutex mu;
  std::vector<absl::Duration> visible;
  std::vector<std::string> refused;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        grpc::Status first;
        const absl::Duration took =
            OpenCaseThenReadResidence(absl::StrCat("load-", c, "-", i), &first);
        absl::MutexLock lock(&mu);
        visible.push_back(took);
        if (!first.ok()) refused.push_back(Describe(first));
      }
    });
  }
  for (std::thread& t : clients) t.join();
  Report("OpenCase OK -> residence read, 8 clients at once", visible);
  {
    absl::MutexLock lock(&open_case_mu_);
    Report("OpenCase call, 8 clients at once", open_case_);
  }
  EXPECT_THAT(refused, ::testing::IsEmpty());
}

// The demo seed registers the agencies in identity and at once creates
// placement data as them; placement has not heard of them (no events from
// identity reach it here), so it must ask identity rather than refuse.
TEST_F(ConsistencyTest, TheDemoSeedNeedsNoRetriesOfRefusedCalls) {
  auto placement =
      Start("placement", 0,
            {absl::StrCat("--identity_target=127.0.0.1:", identity_port_)});
  ASSERT_TRUE(placement.ok()) << placement.status();
  others_.push_back(*std::move(placement));
  absl::StatusOr<int> port = others_.back().WaitServing(absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << others_.back().ReadLog();
  const absl::Time start = absl::Now();
  auto seed = ServiceProcess::Start(
      absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
      {absl::StrCat("--identity=127.0.0.1:", identity_port_),
       absl::StrCat("--placement=127.0.0.1:", *port),
       absl::StrCat("--tls_dir=", pki_)},
      absl::StrCat(dir_, "/seed.log"));
  ASSERT_TRUE(seed.ok()) << seed.status();
  ASSERT_EQ(seed->WaitExit(absl::Seconds(60)).value_or(-1), 0)
      << seed->ReadLog();
  std::printf("demo seed with placement data took %s\n",
              absl::FormatDuration(absl::Now() - start).c_str());
}

// With identity down the write is still committed and answered in bounded
// time; identity learns of it when it is back.
TEST_F(ConsistencyTest, ACaseClosesWhileIdentityIsDownAndIdentityLearnsLater) {
  ASSERT_NO_FATAL_FAILURE(RegisterAll());
  grpc::Status first;
  std::string person;
  OpenCaseThenReadResidence("down", &first, &person);
  ASSERT_TRUE(first.ok()) << Describe(first);
  cv1::ListCasesResponse listed;
  {
    grpc::ClientContext context;
    Prepare(&context, "case-management");
    ASSERT_TRUE(
        owner_in_cases_->ListCases(&context, cv1::ListCasesRequest(), &listed)
            .ok());
    ASSERT_EQ(listed.cases_size(), 1);
  }

  identity_[0].Signal(SIGTERM);
  ASSERT_EQ(identity_[0].WaitExit(absl::Seconds(10)).value_or(-1), 0);
  cv1::CloseCaseRequest close;
  close.set_name(listed.cases(0).name());
  close.set_etag(listed.cases(0).etag());
  close.set_closing_reason(cv1::CASE_CLOSING_REASON_GOALS_REACHED);
  cv1::Case closed;
  const absl::Time start = absl::Now();
  {
    grpc::ClientContext context;
    Prepare(&context, "case-management");
    grpc::Status s = owner_in_cases_->CloseCase(&context, close, &closed);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }
  const absl::Duration took = absl::Now() - start;
  std::printf("CloseCase with identity down answered in %s\n",
              absl::FormatDuration(took).c_str());
  EXPECT_LT(took, server_wait_bound());

  // Back on its database and port: the case's end reaches it, and the
  // former owner may no longer read the person's residence status.
  auto back = Start(
      "identity", identity_port_,
      {absl::StrCat("--event_destinations=cases=127.0.0.1:", cases_port_)});
  ASSERT_TRUE(back.ok()) << back.status();
  identity_.clear();
  identity_.push_back(*std::move(back));
  ASSERT_TRUE(identity_[0].WaitServing(absl::Seconds(20)).ok())
      << identity_[0].ReadLog();
  grpc::Status last;
  EXPECT_TRUE(Eventually(
      [&] {
        last = ReadResidence(person);
        return last.error_code() == grpc::StatusCode::PERMISSION_DENIED;
      },
      absl::Seconds(30)))
      << Describe(last);
}
}  // namespace
}  // namespace lotse::testing
