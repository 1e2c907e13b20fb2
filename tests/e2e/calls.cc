#include "tests/e2e/calls.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/errors/status.h"

namespace lotse::testing::e2e {

grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& call,
                  const std::string& purpose) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  context.AddMetadata("x-lotse-actor", "cw-1");
  context.AddMetadata("x-lotse-purpose", purpose);
  return call(&context);
}

std::string Reason(const grpc::Status& status) {
  return ReasonOf(FromGrpcStatus(status)).value_or("");
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " ", status.error_message(), " (",
                      Reason(status), ")");
}

}  // namespace lotse::testing::e2e
