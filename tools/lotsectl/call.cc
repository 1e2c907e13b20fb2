// call: any RPC of the compiled-in contracts, the request in protobuf JSON,
// so that what no verb covers is still one command away.
#include <algorithm>
#include <fstream>
#include <istream>
#include <memory>
#include <ostream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "tools/lotsectl/internal/cli.h"
#include "tools/lotsectl/internal/client.h"
#include "tools/lotsectl/internal/exit_codes.h"
#include "tools/lotsectl/internal/fields.h"
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

// The purpose of a generic call unless --purpose names one.
constexpr char kCallPurpose[] = "case-management";

// A bulk run: one request per line of `text`. Every line is parsed before
// the first is sent, so a malformed file sends nothing (exit 2). Then the
// requests go out one after another; a refusal is reported with its line
// number and the run goes on. Progress goes to stderr once a second and at
// the end. With --request_id K, line N is sent with request_id "K-N", so
// running the same file with the same K again creates nothing twice.
int RunEach(const std::string& service, const pb::MethodDescriptor& method,
            const std::string& text, const GlobalOptions& options,
            std::ostream& out, std::ostream& err) {
  std::vector<std::pair<int, std::unique_ptr<pb::Message>>> requests;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::unique_ptr<pb::Message> request = NewMessage(method.input_type());
    auto parsed =
        pb::util::JsonStringToMessage(std::string(line), request.get());
    if (!parsed.ok()) {
      return ReportUsage(absl::InvalidArgumentError(absl::StrCat(
                             "--each line ", line_number, " is not a ",
                             method.input_type()->full_name(), ": ",
                             parsed.message().ToString())),
                         err);
    }
    requests.emplace_back(line_number, std::move(request));
  }
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
  if (!client.ok()) {
    err << "lotsectl: " << client.status().message() << "\n";
    return kExitConnection;
  }
  const pb::FieldDescriptor* request_id =
      method.input_type()->FindFieldByName("request_id");
  int exit_code = kExitOk;
  size_t done = 0, refused = 0;
  absl::Time next_progress = absl::Now() + absl::Seconds(1);
  for (auto& [number, request] : requests) {
    if (Interrupted()) break;
    const pb::Reflection* r = request->GetReflection();
    if (request_id != nullptr &&
        request_id->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING &&
        r->GetString(*request, request_id).empty()) {
      r->SetString(request.get(), request_id,
                   options.request_id.empty()
                       ? NewRequestId()
                       : absl::StrCat(options.request_id, "-", number));
    }
    std::unique_ptr<pb::Message> response = NewMessage(method.output_type());
    grpc::Status status = (*client)->Unary(service, method, *request,
                                           response.get(), kCallPurpose);
    ++done;
    if (status.ok()) {
      if (options.output == OutputFormat::kJson) {
        out << JsonOf(*response, false) << "\n";
      } else if (options.output == OutputFormat::kName) {
        PrintResponse(*response, {}, options.output, out, err);
      } else {
        absl::StatusOr<std::string> name = FieldText(*response, "name");
        out << "line " << number << ": OK"
            << (name.ok() && !name->empty() ? " " + *name : "") << "\n";
      }
    } else {
      ++refused;
      err << "line " << number << ": ";
      exit_code =
          std::max(exit_code, ReportRpcError(status, options.output, err));
    }
    if (absl::Now() >= next_progress || done == requests.size()) {
      err << "each: " << done << "/" << requests.size() << " sent, " << refused
          << " refused\n";
      next_progress = absl::Now() + absl::Seconds(1);
    }
  }
  return exit_code;
}

}  // namespace

int RunCall(const std::vector<std::string>& args, const GlobalOptions& options,
            std::istream& in, std::ostream& out, std::ostream& err) {
  absl::StatusOr<VerbArgs> parsed = ParseVerbArgs(
      args,
      {{"json", true}, {"each", true}, {"for", true}, {"max-messages", true}});
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
  auto each = parsed->flags.find("each");
  if (each != parsed->flags.end()) {
    if (json_flag != parsed->flags.end() || (*method)->server_streaming()) {
      return ReportUsage(absl::InvalidArgumentError(
                             "--each goes with a unary method and no --json"),
                         err);
    }
    absl::StatusOr<std::string> text = JsonText(
        each->second.back() == "-" ? "-" : "@" + each->second.back(), in);
    if (!text.ok()) return ReportUsage(text.status(), err);
    return RunEach(words[0], **method, *text, options, out, err);
  }
  Verb verb;
  verb.service = words[0];
  verb.method = (*method)->name();
  verb.purpose = kCallPurpose;
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
