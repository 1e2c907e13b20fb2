// How lotsectl talks to the services: one mutual-TLS channel per service,
// calls by method descriptor (the compiled-in contracts), request and
// response as protobuf messages of the method's types. Every call carries
// the caller's actor and purpose metadata and the --timeout deadline.
//
// Methods are found in the descriptors linked into the binary: each
// service's own API, the AuditService every service offers, and
// grpc.health.v1.Health.
#ifndef LOTSE_TOOLS_LOTSECTL_INTERNAL_CLIENT_H_
#define LOTSE_TOOLS_LOTSECTL_INTERNAL_CLIENT_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/status.h"
#include "tools/lotsectl/internal/options.h"

namespace lotse::lotsectl {

// The full name of the main API of a service ("identity" ->
// "lotse.identity.v1.IdentityService"); empty for an unknown name.
std::string MainServiceOf(absl::string_view service);

// The services whose methods `service` (a process: identity, cases,
// courses, placement) answers, its own API first.
std::vector<const google::protobuf::ServiceDescriptor*> ServicesOf(
    absl::string_view service);

// Finds `method` on the process `service`: "GetPerson" is looked up in the
// services of ServicesOf in order; "AuditService/GetAuditHead" or
// "lotse.audit.v1.AuditService.GetAuditHead" name the service too.
// NOT_FOUND (with the methods there are) when none matches,
// INVALID_ARGUMENT for an unknown service.
absl::StatusOr<const google::protobuf::MethodDescriptor*> FindMethod(
    absl::string_view service, absl::string_view method);

// A fresh, empty message of `descriptor`'s type (a generated one).
std::unique_ptr<google::protobuf::Message> NewMessage(
    const google::protobuf::Descriptor* descriptor);

// The channel credentials the options describe: explicit --cert/--key/--ca
// files, else <tls_dir>/clients/<client>.crt/.key with <tls_dir>/ca.crt.
// FAILED_PRECONDITION when neither is given or a file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(
    const GlobalOptions& options);

// Set by the SIGINT handler; an open call is cancelled within 0.2 s.
void RequestInterrupt();
bool Interrupted();

class Client {
 public:
  // `options` must outlive the client. Reads the certificate files.
  static absl::StatusOr<std::unique_ptr<Client>> Create(
      const GlobalOptions& options);

  // One unary call of `method` on the process `service`. `response` must
  // be of the method's output type. `purpose` is sent unless the options
  // name one.
  grpc::Status Unary(absl::string_view service,
                     const google::protobuf::MethodDescriptor& method,
                     const google::protobuf::Message& request,
                     google::protobuf::Message* response,
                     absl::string_view purpose);

  // A server-streaming call: `on_message` gets each response message in
  // order and returns false to end the stream early (which then counts as
  // OK). `deadline` replaces --timeout (streams run as long as wanted);
  // absl::InfiniteDuration() for none. Ctrl-C ends it as CANCELLED.
  grpc::Status ServerStream(
      absl::string_view service,
      const google::protobuf::MethodDescriptor& method,
      const google::protobuf::Message& request,
      const std::function<bool(const google::protobuf::Message&)>& on_message,
      absl::string_view purpose, absl::Duration deadline);

 private:
  explicit Client(const GlobalOptions& options,
                  std::shared_ptr<grpc::ChannelCredentials> credentials)
      : options_(options), credentials_(std::move(credentials)) {}
  std::shared_ptr<grpc::Channel> ChannelFor(absl::string_view service);

  const GlobalOptions& options_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
};

}  // namespace lotse::lotsectl

#endif  // LOTSE_TOOLS_LOTSECTL_INTERNAL_CLIENT_H_
