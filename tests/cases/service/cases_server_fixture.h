// The cases service running in-process behind a real mTLS server, on the
// test's backend (SQLite or PostgreSQL), with a StaticAccessChecker in
// place of identity and the dev PKI's agencies in the local registry
// (delivered as identity's AgencyRegistered events). Service tests derive
// from it and call the service as the dev PKI's agencies.
#ifndef LOTSE_TESTS_CASES_SERVICE_CASES_SERVER_FIXTURE_H_
#define LOTSE_TESTS_CASES_SERVICE_CASES_SERVER_FIXTURE_H_

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errors/status.h"
#include "common/server/handler.h"
#include "common/server/server.h"
#include "common/server/service_main.h"
#include "common/storage/migrations.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "services/cases/domain/access_checker.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/store/migrations.h"
#include "tests/support/dev_pki.h"
#include "tests/support/test_database.h"

namespace lotse::cases {

inline constexpr char kPerson[] = "persons/p-anna";
inline constexpr char kOtherPerson[] = "persons/p-bela";
inline constexpr char kKim[] = "agencies/kim-koeln";
inline constexpr char kVhs[] = "agencies/vhs-koeln";
inline constexpr char kJobcenter[] = "agencies/jobcenter-koeln";
inline constexpr char kCaritas[] = "agencies/caritas-koeln";
inline constexpr char kKimBonn[] = "agencies/kim-bonn";

inline std::string Reason(const grpc::Status& status) {
  return ReasonOf(FromGrpcStatus(status)).value_or("");
}

inline std::set<std::string> ViolatedFields(const grpc::Status& status) {
  std::set<std::string> fields;
  for (const FieldViolation& v : FieldViolationsOf(FromGrpcStatus(status))) {
    fields.insert(v.field);
  }
  return fields;
}

inline lotse::events::v1::Event AgencyEvent(const std::string& id,
                                            type::v1::LegalDomain domain,
                                            const std::string& municipality,
                                            bool suspended = false,
                                            const std::string& event_id = "") {
  identity::v1::Agency agency;
  agency.set_name(absl::StrCat("agencies/", id));
  agency.set_legal_domain(domain);
  agency.set_municipality_code(municipality);
  agency.set_certificate_identity(id);
  agency.set_state(suspended ? identity::v1::AGENCY_STATE_SUSPENDED
                             : identity::v1::AGENCY_STATE_ACTIVE);
  lotse::events::v1::Event e;
  e.set_event_id(event_id.empty() ? absl::StrCat("agency-", id) : event_id);
  e.set_source("identity");
  if (suspended) {
    identity::v1::AgencySuspended m;
    *m.mutable_agency() = agency;
    e.mutable_payload()->PackFrom(m);
  } else {
    identity::v1::AgencyRegistered m;
    *m.mutable_agency() = agency;
    e.mutable_payload()->PackFrom(m);
  }
  return e;
}

class CasesServerTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    pki_ = testing::DevPkiDir();
    ASSERT_FALSE(pki_.empty()) << "dev PKI could not be generated";
    ASSERT_TRUE(storage::ApplyMigrations(db(), CasesMigrations()).ok());
    access_.AddPerson(kPerson);
    access_.AddPerson(kOtherPerson);
    // The case manager registered the persons: it has standing to open
    // their cases.
    access_.Grant("agencies/kim-koeln", type::v1::DATA_CATEGORY_CORE_IDENTITY);
    StartServer();
    for (const auto& e :
         {AgencyEvent("kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE, "05315000"),
          AgencyEvent("vhs-koeln", type::v1::LEGAL_DOMAIN_KURSTRAEGER,
                      "05315000"),
          AgencyEvent("jobcenter-koeln", type::v1::LEGAL_DOMAIN_JOBCENTER,
                      "05315000"),
          AgencyEvent("caritas-koeln", type::v1::LEGAL_DOMAIN_FREIER_TRAEGER,
                      "05315000"),
          AgencyEvent("lotse-admin", type::v1::LEGAL_DOMAIN_ADMINISTRATION, ""),
          AgencyEvent("kim-bonn", type::v1::LEGAL_DOMAIN_KOMMUNE,
                      "05314000")}) {
      auto applied = service_->ApplyEvent(e);
      ASSERT_TRUE(applied.ok()) << applied.status();
    }
  }

  // The port to identity the service is built with; tests that drive a
  // fake IdentityClient through the production adapter override it.
  virtual AccessChecker* Checker() { return &access_; }

  // Options a test may change before StartServer (e.g. a restart).
  virtual CasesOptions Options() {
    CasesOptions options;
    options.suppression_threshold = 2;
    options.watch.poll = absl::Milliseconds(100);
    return options;
  }

  void StartServer() {
    pool_ = std::make_unique<server::WorkerPool>(4, 256);
    runtime_.database = &db();
    runtime_.env.pool = pool_.get();
    runtime_.env.error_domain = "cases.lotse";
    service_ =
        std::make_unique<CasesServiceImpl>(runtime_, Checker(), Options());
    server::ServerOptions options;
    options.service_name = "cases";
    options.listen = "127.0.0.1:0";
    options.log_calls = false;
    options.drain_grace = absl::ZeroDuration();
    options.shutdown_deadline = absl::Milliseconds(500);
    options.tls = server::TlsFilesFromDir(pki_, "cases");
    auto started = server::Server::Start(options, {service_.get()});
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    server_->SetServing(true);
    stubs_.clear();
  }

  void StopServer() {
    if (service_) service_->DrainWatchers();
    if (server_) server_->Drain();
    server_.reset();
    service_.reset();
    pool_.reset();
    stubs_.clear();
  }

  void TearDown() override { StopServer(); }

  v1::CasesService::Stub* As(const std::string& client) {
    auto it = stubs_.find(client);
    if (it != stubs_.end()) return it->second.get();
    auto creds = server::ClientCredentialsFromDir(pki_, client);
    EXPECT_TRUE(creds.ok()) << creds.status();
    grpc::ChannelArguments args;
    // A fresh connection per stub, so tests do not share flow control.
    args.SetInt("lotse.test.client", static_cast<int>(stubs_.size()));
    auto stub = v1::CasesService::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", server_->port()), *creds, args));
    auto* raw = stub.get();
    stubs_[client] = std::move(stub);
    return raw;
  }

  static void Prepare(grpc::ClientContext* context, int seconds = 10) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(seconds));
    context->AddMetadata("x-lotse-actor", "cm-42");
    context->AddMetadata("x-lotse-purpose", "case-management");
  }

  // ---- Shortcuts; each asserts nothing, returns the status ----
  grpc::Status Open(const std::string& as, const std::string& person,
                    v1::Case* out, const std::string& request_id = "") {
    grpc::ClientContext context;
    Prepare(&context);
    v1::OpenCaseRequest req;
    req.set_request_id(request_id.empty() ? absl::StrCat("open-", ++counter_)
                                          : request_id);
    req.mutable_case_record()->set_person(person);
    req.mutable_case_record()->set_responsible_actor("cm-42");
    return As(as)->OpenCase(&context, req, out);
  }

  grpc::Status Refer(const std::string& as, const std::string& case_name,
                     v1::StepKind kind, const std::string& receiver,
                     v1::Step* out,
                     const std::vector<std::string>& depends_on = {}) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::CreateStepRequest req;
    req.set_parent(case_name);
    req.set_request_id(absl::StrCat("step-", ++counter_));
    req.mutable_step()->set_kind(kind);
    req.mutable_step()->set_receiving_agency(receiver);
    req.mutable_step()->set_description("Integrationskurs bis B1");
    for (const auto& d : depends_on) req.mutable_step()->add_depends_on(d);
    return As(as)->CreateStep(&context, req, out);
  }

  grpc::Status GetStep(const std::string& as, const std::string& name,
                       v1::Step* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetStepRequest req;
    req.set_name(name);
    return As(as)->GetStep(&context, req, out);
  }

  grpc::Status Accept(const std::string& as, const v1::Step& step,
                      v1::Step* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::AcceptStepRequest req;
    req.set_name(step.name());
    req.set_etag(step.etag());
    return As(as)->AcceptStep(&context, req, out);
  }

  grpc::Status Start(const std::string& as, const v1::Step& step,
                     v1::Step* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::StartStepRequest req;
    req.set_name(step.name());
    req.set_etag(step.etag());
    return As(as)->StartStep(&context, req, out);
  }

  grpc::Status Complete(const std::string& as, const v1::Step& step,
                        v1::Step* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::CompleteStepRequest req;
    req.set_name(step.name());
    req.set_etag(step.etag());
    req.set_outcome(v1::STEP_OUTCOME_ACHIEVED);
    return As(as)->CompleteStep(&context, req, out);
  }

  grpc::Status Cancel(const std::string& as, const v1::Step& step,
                      v1::Step* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::CancelStepRequest req;
    req.set_name(step.name());
    req.set_etag(step.etag());
    req.set_reason(v1::STEP_CANCEL_REASON_NO_LONGER_NEEDED);
    return As(as)->CancelStep(&context, req, out);
  }

  std::string pki_;
  StaticAccessChecker access_;
  std::unique_ptr<server::WorkerPool> pool_;
  server::ServiceRuntime runtime_;
  std::unique_ptr<CasesServiceImpl> service_;
  std::unique_ptr<server::Server> server_;
  std::map<std::string, std::unique_ptr<v1::CasesService::Stub>> stubs_;
  int counter_ = 0;
};

}  // namespace lotse::cases

#endif  // LOTSE_TESTS_CASES_SERVICE_CASES_SERVER_FIXTURE_H_
