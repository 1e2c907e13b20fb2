#include "fuzz/support/service_input.h"

#include "absl/strings/str_cat.h"
#include "lotse/type/v1/legal_domain.pb.h"
#include "tests/support/service_server_fixture.h"

namespace lotse::fuzz {

std::vector<std::string> FuzzCalls(
    const google::protobuf::ServiceDescriptor& service) {
  std::vector<std::string> calls;
  for (int i = 0; i < service.method_count(); ++i) {
    const google::protobuf::MethodDescriptor* m = service.method(i);
    if (m->client_streaming() || m->server_streaming()) continue;
    calls.push_back(m->name());
  }
  calls.push_back(kDeliverEvent);
  return calls;
}

const std::vector<server::CallerIdentity>& FuzzCallers() {
  static const auto* const kCallers = [] {
    auto* callers = new std::vector<server::CallerIdentity>;
    constexpr absl::string_view kPrefix = "LEGAL_DOMAIN_";
    for (const testing::DevAgency& a : testing::DevAgencies()) {
      std::string domain = type::v1::LegalDomain_Name(a.legal_domain);
      if (absl::string_view(domain).substr(0, kPrefix.size()) == kPrefix) {
        domain = domain.substr(kPrefix.size());
      }
      callers->push_back({a.id, domain});
    }
    callers->push_back({"courses", server::kServiceDomain});
    return callers;
  }();
  return *kCallers;
}

ServiceInput DecodeServiceInput(const std::vector<std::string>& calls,
                                const uint8_t* data, size_t size) {
  ServiceInput input;
  if (size < 2 || calls.empty()) return input;
  input.call = calls[data[0] % calls.size()];
  input.caller = &FuzzCallers()[data[1] % FuzzCallers().size()];
  input.payload =
      absl::string_view(reinterpret_cast<const char*>(data) + 2, size - 2);
  return input;
}

absl::StatusOr<std::string> EncodeServiceInput(
    const std::vector<std::string>& calls, absl::string_view call,
    absl::string_view caller, absl::string_view payload) {
  int call_index = -1;
  for (size_t i = 0; i < calls.size(); ++i) {
    if (calls[i] == call) call_index = static_cast<int>(i);
  }
  if (call_index < 0) {
    return absl::InvalidArgumentError(absl::StrCat("no call ", call));
  }
  int caller_index = -1;
  for (size_t i = 0; i < FuzzCallers().size(); ++i) {
    if (FuzzCallers()[i].agency_id == caller)
      caller_index = static_cast<int>(i);
  }
  if (caller_index < 0) {
    return absl::InvalidArgumentError(absl::StrCat("no caller ", caller));
  }
  std::string out;
  out.push_back(static_cast<char>(call_index));
  out.push_back(static_cast<char>(caller_index));
  out.append(payload.data(), payload.size());
  return out;
}

}  // namespace lotse::fuzz
