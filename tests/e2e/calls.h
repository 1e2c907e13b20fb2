// How the end-to-end tests call a service as an agency's caseworker, and
// how they read the answer's machine reason.
#ifndef LOTSE_TESTS_E2E_CALLS_H_
#define LOTSE_TESTS_E2E_CALLS_H_

#include <functional>
#include <string>

#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace lotse::testing::e2e {

// Runs `call` with a 10 s deadline and the calling-convention metadata:
// actor "cw-1" and `purpose`.
grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& call,
                  const std::string& purpose = "case-management");

// The google.rpc.ErrorInfo reason of `status`; empty when it carries none.
std::string Reason(const grpc::Status& status);

// "<code> <message> (<reason>)", for failure messages.
std::string Describe(const grpc::Status& status);

}  // namespace lotse::testing::e2e

#endif  // LOTSE_TESTS_E2E_CALLS_H_
