#include "tools/lotsectl/internal/client.h"

#include <atomic>
#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/server/request_context.h"
#include "common/server/server.h"
#include "google/protobuf/dynamic_message.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "lotse/audit/v1/audit_service.pb.h"
#include "lotse/cases/v1/cases_service.pb.h"
#include "lotse/courses/v1/courses_service.pb.h"
#include "lotse/identity/v1/identity_service.pb.h"
#include "lotse/placement/v1/placement_service.pb.h"

namespace lotse::lotsectl {
namespace {

namespace pb = ::google::protobuf;

std::atomic<bool> interrupted{false};

// The generated descriptors live in a static library: naming one message
// of each contract file here is what links them (and their imports) into
// the binary, so that the generated pool can find every service by name.
const pb::ServiceDescriptor* Service(absl::string_view full_name) {
  static const bool linked = [] {
    (void)identity::v1::GetPersonRequest::descriptor();
    (void)cases::v1::GetCaseRequest::descriptor();
    (void)courses::v1::GetCourseRequest::descriptor();
    (void)placement::v1::GetOfferRequest::descriptor();
    (void)audit::v1::GetAuditHeadRequest::descriptor();
    (void)grpc::health::v1::HealthCheckRequest::descriptor();
    return true;
  }();
  (void)linked;
  return pb::DescriptorPool::generated_pool()->FindServiceByName(
      std::string(full_name));
}

grpc::ByteBuffer Serialize(const pb::Message& message) {
  std::string bytes = message.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

bool Parse(const grpc::ByteBuffer& buffer, pb::Message* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return message->ParseFromString(bytes);
}

std::string RpcPath(const pb::MethodDescriptor& method) {
  return absl::StrCat("/", method.service()->full_name(), "/", method.name());
}

// Waits for the next completion, cancelling the call when Ctrl-C was
// pressed. Returns the completion's ok flag.
bool Await(grpc::CompletionQueue& cq, grpc::ClientContext& context) {
  void* tag = nullptr;
  bool ok = false;
  bool cancelled = false;
  while (true) {
    auto deadline =
        std::chrono::system_clock::now() + std::chrono::milliseconds(200);
    switch (cq.AsyncNext(&tag, &ok, deadline)) {
      case grpc::CompletionQueue::GOT_EVENT:
        return ok;
      case grpc::CompletionQueue::SHUTDOWN:
        return false;
      case grpc::CompletionQueue::TIMEOUT:
        if (!cancelled && Interrupted()) {
          context.TryCancel();
          cancelled = true;
        }
        break;
    }
  }
}

void Drain(grpc::CompletionQueue& cq) {
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace

void RequestInterrupt() { interrupted = true; }
bool Interrupted() { return interrupted; }

std::string MainServiceOf(absl::string_view service) {
  if (service == "identity") return "lotse.identity.v1.IdentityService";
  if (service == "cases") return "lotse.cases.v1.CasesService";
  if (service == "courses") return "lotse.courses.v1.CoursesService";
  if (service == "placement") return "lotse.placement.v1.PlacementService";
  return "";
}

std::vector<const pb::ServiceDescriptor*> ServicesOf(
    absl::string_view service) {
  std::vector<const pb::ServiceDescriptor*> services;
  const std::string main = MainServiceOf(service);
  if (main.empty()) return services;
  for (const std::string& name :
       {main, std::string("lotse.audit.v1.AuditService"),
        std::string("grpc.health.v1.Health")}) {
    if (const pb::ServiceDescriptor* s = Service(name)) services.push_back(s);
  }
  return services;
}

absl::StatusOr<const pb::MethodDescriptor*> FindMethod(
    absl::string_view service, absl::string_view method) {
  std::vector<const pb::ServiceDescriptor*> services = ServicesOf(service);
  if (services.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown service \"", service,
                     "\"; one of identity, cases, courses, placement"));
  }
  // "Service/Method" or "pkg.Service.Method" narrow the search to one
  // service, matched by its short or full name.
  absl::string_view wanted_service;
  absl::string_view wanted_method = method;
  size_t split = method.find_last_of("/.");
  if (split != absl::string_view::npos) {
    wanted_service = method.substr(0, split);
    wanted_method = method.substr(split + 1);
  }
  std::vector<std::string> known;
  for (const pb::ServiceDescriptor* s : services) {
    const bool service_matches = wanted_service.empty() ||
                                 wanted_service == s->full_name() ||
                                 wanted_service == s->name();
    for (int i = 0; i < s->method_count(); ++i) {
      const pb::MethodDescriptor* m = s->method(i);
      if (service_matches && m->name() == wanted_method) return m;
      known.push_back(s == services.front()
                          ? m->name()
                          : absl::StrCat(s->name(), "/", m->name()));
    }
  }
  return absl::NotFoundError(absl::StrCat("no method \"", method, "\" on ",
                                          service, "; it has ",
                                          absl::StrJoin(known, ", ")));
}

std::unique_ptr<pb::Message> NewMessage(const pb::Descriptor* descriptor) {
  const pb::Message* prototype =
      pb::MessageFactory::generated_factory()->GetPrototype(descriptor);
  return std::unique_ptr<pb::Message>(prototype->New());
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(
    const GlobalOptions& options) {
  if (!options.cert.empty() || !options.key.empty() || !options.ca.empty()) {
    if (options.cert.empty() || options.key.empty() || options.ca.empty()) {
      return absl::FailedPreconditionError(
          "--cert, --key and --ca go together; one of them is missing");
    }
    grpc::SslCredentialsOptions ssl;
    for (auto [path, field] :
         {std::make_pair(&options.ca, &ssl.pem_root_certs),
          std::make_pair(&options.cert, &ssl.pem_cert_chain),
          std::make_pair(&options.key, &ssl.pem_private_key)}) {
      absl::StatusOr<std::string> pem = server::ReadFile(*path);
      if (!pem.ok()) {
        return absl::FailedPreconditionError(pem.status().message());
      }
      *field = *std::move(pem);
    }
    return grpc::SslCredentials(ssl);
  }
  if (options.tls_dir.empty() || options.client.empty()) {
    return absl::FailedPreconditionError(
        "no client certificate: give --tls_dir and --client (or "
        "LOTSE_TLS_DIR and LOTSE_CLIENT), or --cert, --key and --ca");
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
      server::ClientCredentialsFromDir(options.tls_dir, options.client);
  if (!creds.ok()) {
    return absl::FailedPreconditionError(creds.status().message());
  }
  return creds;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(
    const GlobalOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
      Credentials(options);
  if (!creds.ok()) return creds.status();
  return std::unique_ptr<Client>(new Client(options, *std::move(creds)));
}

std::shared_ptr<grpc::Channel> Client::ChannelFor(absl::string_view service) {
  auto it = channels_.find(std::string(service));
  if (it != channels_.end()) return it->second;
  grpc::ChannelArguments args;
  if (!options_.server_name.empty()) {
    args.SetSslTargetNameOverride(options_.server_name);
  }
  auto target = options_.targets.find(std::string(service));
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      target == options_.targets.end() ? "" : target->second, credentials_,
      args);
  channels_.emplace(std::string(service), channel);
  return channel;
}

namespace {

void PrepareContext(grpc::ClientContext& context, const GlobalOptions& options,
                    absl::string_view purpose, absl::Duration deadline) {
  if (deadline != absl::InfiniteDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  }
  context.AddMetadata(server::kActorMetadataKey, options.actor);
  context.AddMetadata(server::kPurposeMetadataKey, options.purpose.empty()
                                                       ? std::string(purpose)
                                                       : options.purpose);
}

}  // namespace

grpc::Status Client::Unary(absl::string_view service,
                           const pb::MethodDescriptor& method,
                           const pb::Message& request, pb::Message* response,
                           absl::string_view purpose) {
  grpc::GenericStub stub(ChannelFor(service));
  grpc::ClientContext context;
  PrepareContext(context, options_, purpose, options_.timeout);
  grpc::CompletionQueue cq;
  auto call =
      stub.PrepareUnaryCall(&context, RpcPath(method), Serialize(request), &cq);
  call->StartCall();
  grpc::ByteBuffer reply;
  grpc::Status status;
  call->Finish(&reply, &status, reinterpret_cast<void*>(1));
  Await(cq, context);
  Drain(cq);
  if (status.ok() && !Parse(reply, response)) {
    return grpc::Status(
        grpc::StatusCode::INTERNAL,
        "the response does not parse as " + method.output_type()->full_name());
  }
  return status;
}

grpc::Status Client::ServerStream(
    absl::string_view service, const pb::MethodDescriptor& method,
    const pb::Message& request,
    const std::function<bool(const pb::Message&)>& on_message,
    absl::string_view purpose, absl::Duration deadline) {
  grpc::GenericStub stub(ChannelFor(service));
  grpc::ClientContext context;
  PrepareContext(context, options_, purpose, deadline);
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&context, RpcPath(method), &cq);
  void* const tag = reinterpret_cast<void*>(1);
  call->StartCall(tag);
  bool ok = Await(cq, context);
  if (ok) {
    call->Write(Serialize(request), tag);
    ok = Await(cq, context);
  }
  if (ok) {
    call->WritesDone(tag);
    ok = Await(cq, context);
  }
  bool ended_early = false;
  bool unparsable = false;
  std::unique_ptr<pb::Message> message = NewMessage(method.output_type());
  while (ok) {
    grpc::ByteBuffer buffer;
    call->Read(&buffer, tag);
    if (!Await(cq, context)) break;
    message->Clear();
    if (!Parse(buffer, message.get())) {
      context.TryCancel();
      unparsable = true;
      break;
    }
    if (!on_message(*message)) {
      context.TryCancel();
      ended_early = true;
      break;
    }
  }
  grpc::Status status;
  call->Finish(&status, tag);
  Await(cq, context);
  Drain(cq);
  if (unparsable) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "a stream message does not parse as " +
                            method.output_type()->full_name());
  }
  if (ended_early && status.error_code() == grpc::StatusCode::CANCELLED) {
    return grpc::Status::OK;
  }
  return status;
}

}  // namespace lotse::lotsectl
