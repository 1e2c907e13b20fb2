// The cases service running in-process behind a real mTLS server, on the
// test's backend (SQLite or PostgreSQL), with a StaticAccessChecker in
// place of identity and the dev PKI's agencies in the local registry
// (delivered as identity's AgencyRegistered events), on the shared kit
// (testing::ServiceServerTest). Service tests derive from it and call the
// service as the dev PKI's agencies.
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
#include "common/lifecycle/retention.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "services/cases/domain/access_checker.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/store/migrations.h"
#include "tests/support/service_server_fixture.h"

namespace lotse::cases {

using ::lotse::testing::Reason;
using ::lotse::testing::ViolatedFields;

inline constexpr char kPerson[] = "persons/p-anna";
inline constexpr char kOtherPerson[] = "persons/p-bela";
inline constexpr char kKim[] = "agencies/kim-koeln";
inline constexpr char kVhs[] = "agencies/vhs-koeln";
inline constexpr char kJobcenter[] = "agencies/jobcenter-koeln";
inline constexpr char kCaritas[] = "agencies/caritas-koeln";
inline constexpr char kKimBonn[] = "agencies/kim-bonn";

// identity's event about agency `id`: AgencyRegistered, or AgencySuspended
// when `suspended`; its id is "agency-{id}" unless `event_id` is given.
inline lotse::events::v1::Event AgencyEvent(const std::string& id,
                                            type::v1::LegalDomain domain,
                                            const std::string& municipality,
                                            bool suspended = false,
                                            const std::string& event_id = "") {
  return testing::AgencyEventOf(
      testing::AgencyRecord(id, domain, municipality, suspended),
      event_id.empty() ? absl::StrCat("agency-", id) : event_id);
}

class CasesServerTest : public testing::ServiceServerTest {
 protected:
  void SetUp() override {
    ServiceServerTest::SetUp();
    if (HasFatalFailure()) return;
    access_.AddPerson(kPerson);
    access_.AddPerson(kOtherPerson);
    // The case manager registered the persons: it has standing to open
    // their cases.
    access_.Grant("agencies/kim-koeln", type::v1::DATA_CATEGORY_CORE_IDENTITY);
    StartServer();
    if (HasFatalFailure()) return;
    absl::Status registered = testing::RegisterDevAgencies(
        {"kim-koeln", "vhs-koeln", "jobcenter-koeln", "caritas-koeln",
         "lotse-admin", "kim-bonn"},
        [this](const identity::v1::Agency& agency) {
          return service_
              ->ApplyEvent(testing::AgencyEventOf(
                  agency,
                  absl::StrCat("agency-", agency.certificate_identity())))
              .status();
        });
    ASSERT_TRUE(registered.ok()) << registered;
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
    StartRuntime(CasesMigrations(), "cases.lotse",
                 {/*workers=*/4, /*max_queued=*/256});
    if (HasFatalFailure()) return;
    runtime_.retention = &retention_;
    service_ =
        std::make_unique<CasesServiceImpl>(runtime_, Checker(), Options());
    Serve("cases", service_.get());
    stubs_.clear();
  }

  void StopServer() {
    if (service_) service_->DrainWatchers();
    StopServing();
    service_.reset();
    StopRuntime();
    stubs_.clear();
  }

  void TearDown() override {
    StopServer();
    ServiceServerTest::TearDown();
  }

  v1::CasesService::Stub* As(const std::string& client) {
    auto it = stubs_.find(client);
    if (it != stubs_.end()) return it->second.get();
    grpc::ChannelArguments args;
    // A fresh connection per stub, so tests do not share flow control.
    args.SetInt("lotse.test.client", static_cast<int>(stubs_.size()));
    auto stub = Stub<v1::CasesService>(client, args);
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

  StaticAccessChecker access_;
  // The retention rules of the runtime (none unless a test sets them
  // before StartServer).
  lifecycle::RetentionRules retention_;
  std::unique_ptr<CasesServiceImpl> service_;
  std::map<std::string, std::unique_ptr<v1::CasesService::Stub>> stubs_;
  int counter_ = 0;
};

}  // namespace lotse::cases

#endif  // LOTSE_TESTS_CASES_SERVICE_CASES_SERVER_FIXTURE_H_
