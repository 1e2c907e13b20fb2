// The input of a service fuzz target, shared by the targets and by the tool
// that turns the checked-in seeds (text protos) into inputs.
//
// Byte 0 chooses the call, modulo the number of calls: the service's unary
// RPCs in the order the contract declares them, then kDeliverEvent (an event
// delivered to the service's inbox, as EventSinkService.DeliverEvent does).
// Byte 1 chooses the caller, modulo the number of callers (FuzzCallers). The
// remaining bytes are the request (or, for kDeliverEvent, the
// lotse.events.v1.Event) in protobuf wire format; they need not parse.
#ifndef LOTSE_FUZZ_SUPPORT_SERVICE_INPUT_H_
#define LOTSE_FUZZ_SUPPORT_SERVICE_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/server/request_context.h"
#include "google/protobuf/descriptor.h"

namespace lotse::fuzz {

// The pseudo-method that delivers an event instead of calling an RPC.
inline constexpr char kDeliverEvent[] = "DeliverEvent";

// The calls of `service`: its unary RPCs' short names in contract order,
// then kDeliverEvent. Server-streaming RPCs are left out (they are not
// served by UnaryService::CallInProcess).
std::vector<std::string> FuzzCalls(
    const google::protobuf::ServiceDescriptor& service);

// The callers an input may choose: every agency of the dev PKI, as its
// client certificate names it (agency id and legal domain), then one Lotse
// service ("courses", legal domain SERVICE).
const std::vector<server::CallerIdentity>& FuzzCallers();

// One decoded input.
struct ServiceInput {
  std::string call;  // an element of FuzzCalls
  const server::CallerIdentity* caller = nullptr;
  absl::string_view payload;  // the request or event bytes
};

// Decodes `data`; `call` stays empty when `data` has fewer than two
// bytes.
ServiceInput DecodeServiceInput(const std::vector<std::string>& calls,
                                const uint8_t* data, size_t size);

// The input that calls `call` as the caller whose agency id is `caller`
// with `payload`. INVALID_ARGUMENT for a call or caller not in the lists.
absl::StatusOr<std::string> EncodeServiceInput(
    const std::vector<std::string>& calls, absl::string_view call,
    absl::string_view caller, absl::string_view payload);

}  // namespace lotse::fuzz

#endif  // LOTSE_FUZZ_SUPPORT_SERVICE_INPUT_H_
