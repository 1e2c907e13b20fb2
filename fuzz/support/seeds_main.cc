// lotse_fuzz_seeds: turns a fuzz target's checked-in seeds into the inputs
// the target reads, at build time.
//
//   lotse_fuzz_seeds [--service=lotse.cases.v1.CasesService] SRC_DIR OUT_DIR
//
// With --service, each SRC_DIR/*.txtpb is a request in protobuf text format
// whose first lines name the call and the caller:
//   # call: OpenCase        (an RPC of the service, or DeliverEvent, whose
//                            text is a lotse.events.v1.Event)
//   # caller: kim-koeln     (an agency of the dev PKI, or "courses")
// and becomes OUT_DIR/<name without .txtpb> in the encoding of
// fuzz/support/service_input.h. Every other file (text seeds, and inputs
// the fuzzer once crashed on, kept as they were) is copied unchanged.
// Exits non-zero, naming the file, on a seed that does not convert, so a
// broken seed fails the build.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "fuzz/support/service_input.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"
#include "lotse/cases/v1/cases_service.pb.h"
#include "lotse/courses/v1/courses_service.pb.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/identity_service.pb.h"
#include "lotse/placement/v1/placement_service.pb.h"

namespace {

namespace fs = std::filesystem;
namespace pb = google::protobuf;

absl::StatusOr<std::string> Convert(const pb::ServiceDescriptor& service,
                                    const std::string& text) {
  std::string call, caller;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, "#")) break;
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "call:")) {
      call = std::string(absl::StripAsciiWhitespace(line));
    } else if (absl::ConsumePrefix(&line, "caller:")) {
      caller = std::string(absl::StripAsciiWhitespace(line));
    }
  }
  if (call.empty() || caller.empty()) {
    return absl::InvalidArgumentError(
        "the first lines must name the call and the caller");
  }
  const pb::Descriptor* type = nullptr;
  if (call == lotse::fuzz::kDeliverEvent) {
    type = lotse::events::v1::Event::descriptor();
  } else if (const pb::MethodDescriptor* m = service.FindMethodByName(call)) {
    type = m->input_type();
  } else {
    return absl::InvalidArgumentError(absl::StrCat("no RPC ", call));
  }
  std::unique_ptr<pb::Message> message(
      pb::MessageFactory::generated_factory()->GetPrototype(type)->New());
  if (!pb::TextFormat::ParseFromString(text, message.get())) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a ", type->full_name(), " in text format"));
  }
  return lotse::fuzz::EncodeServiceInput(lotse::fuzz::FuzzCalls(service), call,
                                         caller, message->SerializeAsString());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string service_name;
  if (!args.empty() && absl::StartsWith(args[0], "--service=")) {
    service_name = args[0].substr(std::string("--service=").size());
    args.erase(args.begin());
  }
  if (args.size() != 2) {
    std::fprintf(stderr, "usage: %s [--service=NAME] SRC_DIR OUT_DIR\n",
                 argv[0]);
    return 2;
  }
  // Naming a message of each contract links it in (a static library's
  // generated code registers its descriptors only when something refers
  // to it).
  const pb::Descriptor* const linked[] = {
      lotse::identity::v1::RegisterAgencyRequest::descriptor(),
      lotse::cases::v1::OpenCaseRequest::descriptor(),
      lotse::courses::v1::CreateCourseRequest::descriptor(),
      lotse::placement::v1::CreateOfferRequest::descriptor()};
  (void)linked;
  const pb::ServiceDescriptor* service = nullptr;
  if (!service_name.empty()) {
    service =
        pb::DescriptorPool::generated_pool()->FindServiceByName(service_name);
    if (service == nullptr) {
      std::fprintf(stderr, "no service %s is linked in\n",
                   service_name.c_str());
      return 2;
    }
  }
  const fs::path src(args[0]), out(args[1]);
  std::error_code error;
  fs::remove_all(out, error);
  fs::create_directories(out);
  int seeds = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(src)) {
    if (!e.is_regular_file()) continue;
    std::ifstream file(e.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << file.rdbuf();
    std::string content = bytes.str();
    fs::path target = out / e.path().filename();
    if (service != nullptr && e.path().extension() == ".txtpb") {
      absl::StatusOr<std::string> input = Convert(*service, content);
      if (!input.ok()) {
        std::fprintf(stderr, "%s: %s\n", e.path().c_str(),
                     input.status().ToString().c_str());
        return 1;
      }
      content = *std::move(input);
      target = out / e.path().stem();
    }
    std::ofstream(target, std::ios::binary) << content;
    ++seeds;
  }
  if (seeds == 0) {
    std::fprintf(stderr, "%s: no seeds\n", src.c_str());
    return 1;
  }
  return 0;
}
