// The calling conventions every contract states, checked against each
// service as a real process, on every RPC of its contract: a call without
// x-lotse-actor or x-lotse-purpose, or with a malformed one, is
// UNAUTHENTICATED with reason MISSING_ACTOR / MISSING_PURPOSE /
// INVALID_ACTOR / INVALID_PURPOSE, and a message that names the metadata
// key (and, when malformed, the allowed form).
#include <stdlib.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errors/status.h"
#include "common/server/server.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
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

using ::testing::HasSubstr;

struct ServiceCase {
  std::string name;
  // The service's descriptor, reached through one of its request messages
  // so the linker keeps the generated descriptor tables.
  const google::protobuf::ServiceDescriptor* (*descriptor)();
};

template <typename RequestMessage>
const google::protobuf::ServiceDescriptor* ServiceOf() {
  return RequestMessage::descriptor()->file()->service(0);
}

void PrintTo(const ServiceCase& service, std::ostream* os) {
  *os << service.name;
}

// One way of getting the metadata wrong, and the answer the contracts
// document for it.
struct BadMetadata {
  std::string what;
  std::optional<std::string> actor;    // nullopt: not sent
  std::optional<std::string> purpose;  // nullopt: not sent
  std::string reason;
  std::vector<std::string> message_mentions;
};

const std::vector<BadMetadata>& BadMetadataCases() {
  static const auto* cases = new std::vector<BadMetadata>{
      {"no actor",
       std::nullopt,
       "case-management",
       "MISSING_ACTOR",
       {"x-lotse-actor"}},
      {"empty actor",
       "",
       "case-management",
       "MISSING_ACTOR",
       {"x-lotse-actor"}},
      {"no purpose",
       "cw-1",
       std::nullopt,
       "MISSING_PURPOSE",
       {"x-lotse-purpose"}},
      {"actor of 129 characters",
       std::string(129, 'a'),
       "case-management",
       "INVALID_ACTOR",
       {"x-lotse-actor", "1..128"}},
      {"purpose with spaces",
       "cw-1",
       "register demo agencies",
       "INVALID_PURPOSE",
       {"x-lotse-purpose", "1..64 characters of [a-z0-9-]"}},
      {"purpose in capitals",
       "cw-1",
       "CASE-MANAGEMENT",
       "INVALID_PURPOSE",
       {"x-lotse-purpose", "1..64 characters of [a-z0-9-]"}},
      {"purpose of 65 characters",
       "cw-1",
       std::string(65, 'p'),
       "INVALID_PURPOSE",
       {"x-lotse-purpose"}},
  };
  return *cases;
}

class CallingConventionsTest : public ::testing::TestWithParam<ServiceCase> {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
  }

  // Calls `method` with an empty request as raw bytes over a generic
  // stream, which serves unary and streaming RPCs alike.
  grpc::Status CallRaw(const std::shared_ptr<grpc::Channel>& channel,
                       const std::string& method, const BadMetadata& bad) {
    grpc::GenericStub stub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    if (bad.actor) context.AddMetadata("x-lotse-actor", *bad.actor);
    if (bad.purpose) context.AddMetadata("x-lotse-purpose", *bad.purpose);
    grpc::CompletionQueue cq;
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
        stub.PrepareCall(&context, method, &cq);
    void* tag = nullptr;
    bool ok = false;
    auto step = [&](int id) {
      cq.Next(&tag, &ok);
      EXPECT_EQ(tag, reinterpret_cast<void*>(id));
      return ok;
    };
    call->StartCall(reinterpret_cast<void*>(1));
    if (step(1)) {
      grpc::Slice empty_message("");
      grpc::ByteBuffer request(&empty_message, 1);
      call->Write(request, reinterpret_cast<void*>(2));
      if (step(2)) {
        call->WritesDone(reinterpret_cast<void*>(3));
        step(3);
      }
      grpc::ByteBuffer response;
      call->Read(&response, reinterpret_cast<void*>(4));
      step(4);
    }
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(5));
    step(5);
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return status;
  }

  std::string pki_;
  std::string dir_;
};

TEST_P(CallingConventionsTest, BadMetadataIsRefusedAsTheContractsSay) {
  const std::string binary = absl::StrCat(
      BinaryDir(), "/services/", GetParam().name, "/lotse_", GetParam().name);
  auto process = ServiceProcess::Start(
      binary,
      {"--listen=127.0.0.1:0", absl::StrCat("--tls_dir=", pki_),
       absl::StrCat("--database=sqlite:", dir_, "/db.sqlite"),
       "--drain_grace=100ms", "--shutdown_deadline=1s"},
      dir_ + "/log");
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> port = process->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  auto creds = server::ClientCredentialsFromDir(pki_, "kim-koeln");
  ASSERT_TRUE(creds.ok()) << creds.status();
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), *creds);

  const google::protobuf::ServiceDescriptor* service = GetParam().descriptor();
  ASSERT_NE(service, nullptr);
  ASSERT_GT(service->method_count(), 0);
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string method = absl::StrCat("/", service->full_name(), "/",
                                            service->method(i)->name());
    for (const BadMetadata& bad : BadMetadataCases()) {
      SCOPED_TRACE(absl::StrCat(method, ", ", bad.what));
      grpc::Status status = CallRaw(channel, method, bad);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << status.error_message();
      EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), bad.reason);
      for (const std::string& mention : bad.message_mentions) {
        EXPECT_THAT(status.error_message(), HasSubstr(mention));
      }
    }
  }
  process->Signal(SIGTERM);
  EXPECT_TRUE(process->WaitExit(absl::Seconds(10)).ok());
}

INSTANTIATE_TEST_SUITE_P(
    Services, CallingConventionsTest,
    ::testing::Values(
        ServiceCase{"identity",
                    &ServiceOf<lotse::identity::v1::RegisterAgencyRequest>},
        ServiceCase{"cases", &ServiceOf<lotse::cases::v1::OpenCaseRequest>},
        ServiceCase{"courses",
                    &ServiceOf<lotse::courses::v1::CreateCourseRequest>},
        ServiceCase{"placement",
                    &ServiceOf<lotse::placement::v1::CreateOfferRequest>}),
    [](const ::testing::TestParamInfo<ServiceCase>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace lotse::testing
