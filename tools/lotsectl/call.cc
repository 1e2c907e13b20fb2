// call: any RPC of the compiled-in contracts, the request in protobuf JSON,
// so that what no verb covers is still one command away.
#include <fstream>
#include <istream>
#include <memory>
#include <ostream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "tools/lotsectl/internal/cli.h"
#include "tools/lotsectl/internal/client.h"
#include "tools/lotsectl/internal/exit_codes.h"
#include "tools/lotsectl/internal/output.h"
#include "tools/lotsectl/internal/verb.h"

namespace lotse::lotsectl {
namespace {

namespace pb = ::google::protobuf;

// The JSON text of --json: inline, @FILE, or - for stdin.
absl::StatusOr<std::string> JsonText(const std::string& value,
                                     std::istream& in) {
  std::stringstream text;
  if (value == "-") {
    text << in.rdbuf();
    return text.str();
  }
  if (!value.empty() && value[0] == '@') {
    std::ifstream file(value.substr(1));
    if (!file) {
      return absl::InvalidArgumentError(
          absl::StrCat("--json: cannot read ", value.substr(1)));
    }
    text << file.rdbuf();
    return text.str();
  }
  return value;
}

}  // namespace

int RunCall(const std::vector<std::string>& args, const GlobalOptions& options,
            std::istream& in, std::ostream& out, std::ostream& err) {
  absl::StatusOr<VerbArgs> parsed = ParseVerbArgs(
      args, {{"json", true}, {"for", true}, {"max-messages", true}});
  if (!parsed.ok()) return ReportUsage(parsed.status(), err);
  const std::vector<std::string>& words = parsed->positional;
  if (words.empty() || words.size() > 2) {
    return ReportUsage(absl::InvalidArgumentError(
                           "call needs <service> <Method>, e.g. call identity "
                           "GetPerson --json '{\"name\": \"persons/...\"}'"),
                       err);
  }
  if (words.size() == 1) {
    std::vector<const pb::ServiceDescriptor*> services = ServicesOf(words[0]);
    if (services.empty()) {
      return ReportUsage(FindMethod(words[0], "").status(), err);
    }
    for (const pb::ServiceDescriptor* s : services) {
      for (int i = 0; i < s->method_count(); ++i) {
        const pb::MethodDescriptor* m = s->method(i);
        out << s->full_name() << "/" << m->name() << "("
            << m->input_type()->full_name() << ") returns ("
            << (m->server_streaming() ? "stream " : "")
            << m->output_type()->full_name() << ")\n";
      }
    }
    return kExitOk;
  }
  absl::StatusOr<const pb::MethodDescriptor*> method =
      FindMethod(words[0], words[1]);
  if (!method.ok()) return ReportUsage(method.status(), err);
  if ((*method)->client_streaming()) {
    return ReportUsage(absl::InvalidArgumentError(absl::StrCat(
                           (*method)->full_name(),
                           " streams requests, which call does not support")),
                       err);
  }
  std::unique_ptr<pb::Message> request = NewMessage((*method)->input_type());
  auto json_flag = parsed->flags.find("json");
  if (json_flag != parsed->flags.end()) {
    absl::StatusOr<std::string> json = JsonText(json_flag->second.back(), in);
    if (!json.ok()) return ReportUsage(json.status(), err);
    auto status = pb::util::JsonStringToMessage(*json, request.get());
    if (!status.ok()) {
      return ReportUsage(
          absl::InvalidArgumentError(absl::StrCat(
              "--json is not a ", (*method)->input_type()->full_name(), ": ",
              status.message().ToString())),
          err);
    }
  }
  Verb verb;
  verb.service = words[0];
  verb.method = (*method)->name();
  verb.purpose = "case-management";
  Invocation run(options, *parsed, out, err);
  if (!(*method)->server_streaming()) {
    return CallAndPrint(verb, run, **method, *request);
  }
  absl::Duration duration = absl::InfiniteDuration();
  if (run.Has("for") && (!absl::ParseDuration(run.Flag("for"), &duration) ||
                         duration <= absl::ZeroDuration())) {
    return ReportUsage(
        absl::InvalidArgumentError("--for must be a duration such as 30s"),
        err);
  }
  int64_t max_messages = 0;
  if (run.Has("max-messages") &&
      (!absl::SimpleAtoi(run.Flag("max-messages"), &max_messages) ||
       max_messages <= 0)) {
    return ReportUsage(
        absl::InvalidArgumentError("--max-messages must be a positive number"),
        err);
  }
  absl::StatusOr<Client*> client = run.client();
  if (!client.ok()) {
    err << "lotsectl: " << client.status().message() << "\n";
    return kExitConnection;
  }
  int64_t count = 0;
  grpc::Status status = (*client)->ServerStream(
      verb.service, **method, *request,
      [&](const pb::Message& message) {
        ++count;
        if (options.output == OutputFormat::kJson) {
          out << JsonOf(message, false) << "\n";
        } else {
          PrintResponse(message, {}, OutputFormat::kTable, out, err);
          out << "\n";
        }
        out.flush();
        err << "stream: " << count << " messages\n";
        return max_messages == 0 || count < max_messages;
      },
      verb.purpose, duration);
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
      duration != absl::InfiniteDuration()) {
    return kExitOk;
  }
  if (status.error_code() == grpc::StatusCode::CANCELLED && Interrupted()) {
    return kExitOk;
  }
  if (!status.ok()) return ReportRpcError(status, options.output, err);
  return kExitOk;
}

}  // namespace lotse::lotsectl
