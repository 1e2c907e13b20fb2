// Every service binary, started as a real process the way the run command
// and Kubernetes start it: mutual TLS from the dev PKI, embedded SQLite,
// health over mTLS, the not-yet-implemented contract answering
// UNIMPLEMENTED, metrics, a graceful SIGTERM, and a restart after kill -9.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/server/server.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

struct ServiceCase {
  std::string name;
  std::string full_service_name;
  // The service's descriptor, reached through one of its request messages
  // so the linker keeps the generated descriptor tables.
  const google::protobuf::ServiceDescriptor* (*descriptor)();
};

template <typename RequestMessage>
const google::protobuf::ServiceDescriptor* ServiceOf() {
  return RequestMessage::descriptor()->file()->service(0);
}

// Names the parameter in test output instead of dumping its bytes.
void PrintTo(const ServiceCase& service, std::ostream* os) {
  *os << service.name;
}

std::string PrintName(const ::testing::TestParamInfo<ServiceCase>& info) {
  return info.param.name;
}

class ServiceProcessTest : public ::testing::TestWithParam<ServiceCase> {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    binary_ = absl::StrCat(BinaryDir(), "/services/", GetParam().name,
                           "/lotse_", GetParam().name);
    // Services start from the repository root in deployment; tests run in
    // the build tree, so point identity at the rules file (other services
    // do not register the flag and ignore the variable).
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
  }

  std::vector<std::string> Args() {
    return {"--listen=127.0.0.1:0",
            "--metrics_listen=127.0.0.1:0",
            absl::StrCat("--tls_dir=", pki_),
            absl::StrCat("--database=sqlite:", dir_, "/db.sqlite"),
            "--drain_grace=300ms",
            "--shutdown_deadline=2s"};
  }

  std::shared_ptr<grpc::Channel> Channel(int port) {
    auto creds = server::ClientCredentialsFromDir(pki_, "kim-koeln");
    EXPECT_TRUE(creds.ok());
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds);
  }

  HealthCheckResponse::ServingStatus Health(int port,
                                            const std::string& service) {
    auto stub = grpc::health::v1::Health::NewStub(Channel(port));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    if (!stub->Check(&context, request, &response).ok()) {
      return HealthCheckResponse::UNKNOWN;
    }
    return response.status();
  }

  // Calls `method` with an empty request as raw bytes, so one test covers
  // every method of every contract without knowing the message types.
  grpc::Status CallRaw(int port, const std::string& method) {
    grpc::GenericStub stub(Channel(port));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    context.AddMetadata("x-lotse-actor", "cw-1");
    context.AddMetadata("x-lotse-purpose", "e2e");
    grpc::CompletionQueue cq;
    // One empty slice: a valid, empty serialized message (a ByteBuffer
    // without slices is no message at all and fails to parse).
    grpc::Slice empty_message("");
    grpc::ByteBuffer request(&empty_message, 1);
    auto call = stub.PrepareUnaryCall(&context, method, request, &cq);
    call->StartCall();
    grpc::ByteBuffer response;
    grpc::Status status;
    call->Finish(&response, &status, reinterpret_cast<void*>(1));
    void* tag = nullptr;
    bool ok = false;
    cq.Next(&tag, &ok);
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return status;
  }

  // Runs tools/lotse_health_probe with `args`; its exit code.
  int RunProbe(const std::vector<std::string>& args) {
    auto probe = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/tools/lotse_health_probe"), args,
        dir_ + "/probe.log");
    if (!probe.ok()) return -1;
    return probe->WaitExit(absl::Seconds(20)).value_or(-1);
  }

  std::string pki_;
  std::string dir_;
  std::string binary_;
};

TEST_P(ServiceProcessTest, ServesHealthOverMutualTlsAndDrainsOnSigterm) {
  std::vector<std::string> args = Args();
  const int health_port = FreeLocalPort();
  const int metrics_port = FreeLocalPort();
  args.push_back(absl::StrCat("--health_listen=127.0.0.1:", health_port));
  for (std::string& arg : args) {
    if (absl::StartsWith(arg, "--metrics_listen=")) {
      arg = absl::StrCat("--metrics_listen=127.0.0.1:", metrics_port);
    }
  }
  auto process = ServiceProcess::Start(binary_, args, dir_ + "/log");
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> port = process->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();

  EXPECT_EQ(Health(*port, ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(*port, GetParam().full_service_name),
            HealthCheckResponse::SERVING);
  // The probe tool, as the run command and exec probes use it: over mTLS
  // checking the certificate's name, and on the plaintext health port.
  const std::string target = absl::StrCat("--target=127.0.0.1:", *port);
  EXPECT_EQ(
      RunProbe({target, absl::StrCat("--tls_dir=", pki_),
                absl::StrCat("--server_name=", GetParam().name, ".lotse.svc")}),
      0);
  EXPECT_EQ(RunProbe({target, absl::StrCat("--tls_dir=", pki_),
                      "--server_name=elsewhere.example"}),
            1);
  EXPECT_EQ(
      RunProbe({absl::StrCat("--target=127.0.0.1:", health_port), "--insecure",
                absl::StrCat("--service=", GetParam().full_service_name)}),
      0);
  // Without a certificate, only health answers on the mTLS port: nothing.
  EXPECT_EQ(RunProbe({target, "--insecure"}), 1);
  // Metrics a service registers itself reach the endpoint too.
  if (GetParam().name == "identity") {
    EXPECT_THAT(HttpGet(metrics_port, "/metrics"),
                ::testing::HasSubstr(
                    "lotse_identity_match_form_cache_budget_bytes 268435456"));
  }

  process->Signal(SIGTERM);
  absl::StatusOr<int> code = process->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << process->ReadLog();
  const std::string log = process->ReadLog();
  EXPECT_NE(log.find("\"msg\":\"draining\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"msg\":\"stopped\""), std::string::npos) << log;
}

// Every unary RPC of the contract is implemented: a call with an empty
// request gets an answer of its own (typically INVALID_ARGUMENT), never
// UNIMPLEMENTED.
TEST_P(ServiceProcessTest, EveryRpcOfTheContractIsImplemented) {
  auto process = ServiceProcess::Start(binary_, Args(), dir_ + "/log");
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> port = process->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();

  const google::protobuf::ServiceDescriptor* service = GetParam().descriptor();
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(service->full_name(), GetParam().full_service_name);
  ASSERT_GT(service->method_count(), 0);
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* method = service->method(i);
    if (method->client_streaming() || method->server_streaming()) continue;
    grpc::Status status = CallRaw(
        *port, absl::StrCat("/", service->full_name(), "/", method->name()));
    EXPECT_NE(status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << method->full_name() << ": " << status.error_message();
  }
  // The call log names method and agency, and nothing from the request.
  process->Signal(SIGTERM);
  ASSERT_TRUE(process->WaitExit(absl::Seconds(10)).ok());
  const std::string log = process->ReadLog();
  EXPECT_NE(log.find("\"agency\":\"kim-koeln\""), std::string::npos) << log;
  EXPECT_EQ(log.find("\"code\":\"UNIMPLEMENTED\""), std::string::npos) << log;
  EXPECT_EQ(log.find("cw-1"), std::string::npos)
      << "the actor is personal data and belongs in the audit trail only";
}

TEST_P(ServiceProcessTest, RestartsOnTheSameDatabaseAfterKill9) {
  {
    auto process = ServiceProcess::Start(binary_, Args(), dir_ + "/log1");
    ASSERT_TRUE(process.ok()) << process.status();
    ASSERT_TRUE(process->WaitServing(absl::Seconds(20)).ok());
    process->Signal(SIGKILL);
    absl::StatusOr<int> code = process->WaitExit(absl::Seconds(10));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 128 + SIGKILL);
  }
  auto process = ServiceProcess::Start(binary_, Args(), dir_ + "/log2");
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> port = process->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(Health(*port, ""), HealthCheckResponse::SERVING);
}

TEST_P(ServiceProcessTest, RefusesToStartWithoutTlsMaterial) {
  auto process = ServiceProcess::Start(
      binary_,
      {"--listen=127.0.0.1:0",
       absl::StrCat("--database=sqlite:", dir_, "/db.sqlite")},
      dir_ + "/log");
  ASSERT_TRUE(process.ok());
  absl::StatusOr<int> code = process->WaitExit(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_NE(process->ReadLog().find("mutual TLS"), std::string::npos)
      << process->ReadLog();
}

TEST_P(ServiceProcessTest, RefusesAMaxConnectionAgeOfZero) {
  std::vector<std::string> args = Args();
  args.push_back("--max_connection_age=0s");
  auto process = ServiceProcess::Start(binary_, args, dir_ + "/log");
  ASSERT_TRUE(process.ok());
  absl::StatusOr<int> code = process->WaitExit(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_NE(process->ReadLog().find("max_connection_age"), std::string::npos)
      << process->ReadLog();
}

TEST_P(ServiceProcessTest, EnvironmentConfiguresLikeFlags) {
  // LOTSE_TLS_DIR and LOTSE_DATABASE instead of flags, as in Kubernetes.
  setenv("LOTSE_TLS_DIR", pki_.c_str(), 1);
  setenv("LOTSE_DATABASE", absl::StrCat("sqlite:", dir_, "/env.sqlite").c_str(),
         1);
  auto process = ServiceProcess::Start(
      binary_, {"--listen=127.0.0.1:0", "--drain_grace=0s"}, dir_ + "/log");
  unsetenv("LOTSE_TLS_DIR");
  unsetenv("LOTSE_DATABASE");
  ASSERT_TRUE(process.ok());
  absl::StatusOr<int> port = process->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(Health(*port, ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(access(absl::StrCat(dir_, "/env.sqlite").c_str(), F_OK), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Services, ServiceProcessTest,
    ::testing::Values(
        ServiceCase{"identity",
                    lotse::identity::v1::IdentityService::service_full_name(),
                    &ServiceOf<lotse::identity::v1::RegisterAgencyRequest>},
        ServiceCase{"cases",
                    lotse::cases::v1::CasesService::service_full_name(),
                    &ServiceOf<lotse::cases::v1::OpenCaseRequest>},
        ServiceCase{"courses",
                    lotse::courses::v1::CoursesService::service_full_name(),
                    &ServiceOf<lotse::courses::v1::CreateCourseRequest>},
        ServiceCase{"placement",
                    lotse::placement::v1::PlacementService::service_full_name(),
                    &ServiceOf<lotse::placement::v1::CreateOfferRequest>}),
    PrintName);

}  // namespace
}  // namespace lotse::testing
