#include "tools/lotsectl/internal/verb.h"

#include <ostream>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/lotsectl/internal/exit_codes.h"
#include "tools/lotsectl/internal/fields.h"

namespace lotse::lotsectl {
namespace {

namespace pb = ::google::protobuf;

constexpr char kNextPageTokenField[] = "next_page_token";

// The string field `name` of `message` when it has one, else nullptr.
const pb::FieldDescriptor* StringField(const pb::Message& message,
                                       const char* name) {
  const pb::FieldDescriptor* f = message.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr || f->is_repeated() ||
      f->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING) {
    return nullptr;
  }
  return f;
}

}  // namespace

std::string Invocation::Flag(const std::string& name,
                             const std::string& fallback) const {
  auto it = args_.flags.find(name);
  if (it == args_.flags.end() || it->second.empty()) return fallback;
  return it->second.back();
}

absl::StatusOr<Client*> Invocation::client() {
  if (client_ == nullptr) {
    absl::StatusOr<std::unique_ptr<Client>> made = Client::Create(options_);
    if (!made.ok()) return made.status();
    client_ = *std::move(made);
  }
  return client_.get();
}

std::string NewRequestId() {
  absl::BitGen gen;
  return absl::StrFormat("lotsectl-%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

absl::Status FillRequest(const Verb& verb, const VerbArgs& args,
                         pb::Message* request) {
  for (const auto& [path, value] : verb.fixed) {
    absl::Status s = SetField(request, path, value);
    if (!s.ok()) return s;
  }
  for (const VerbFlag& flag : verb.flags) {
    if (flag.path.empty()) continue;
    auto it = args.flags.find(flag.name);
    if (it == args.flags.end()) continue;
    for (const std::string& value : it->second) {
      absl::Status s = SetField(request, flag.path, value);
      if (!s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", flag.name, ": ", s.message()));
      }
    }
  }
  return absl::OkStatus();
}

int CallAndPrint(const Verb& verb, Invocation& run,
                 const pb::MethodDescriptor& method, pb::Message& request) {
  absl::StatusOr<Client*> client = run.client();
  if (!client.ok()) {
    run.err() << "lotsectl: " << client.status().message() << "\n";
    return kExitConnection;
  }
  const pb::Reflection* r = request.GetReflection();
  if (const pb::FieldDescriptor* f = StringField(request, "request_id");
      f != nullptr && r->GetString(request, f).empty()) {
    r->SetString(&request, f,
                 run.options().request_id.empty() ? NewRequestId()
                                                  : run.options().request_id);
  }
  const pb::FieldDescriptor* etag = StringField(request, "etag");
  const pb::FieldDescriptor* name = StringField(request, "name");
  if (!verb.etag_from.empty() && etag != nullptr && name != nullptr &&
      r->GetString(request, etag).empty()) {
    absl::StatusOr<const pb::MethodDescriptor*> get =
        FindMethod(verb.service, verb.etag_from);
    if (!get.ok()) return ReportUsage(get.status(), run.err());
    std::unique_ptr<pb::Message> get_request = NewMessage((*get)->input_type());
    absl::Status set =
        SetField(get_request.get(), "name", r->GetString(request, name));
    if (!set.ok()) return ReportUsage(set, run.err());
    std::unique_ptr<pb::Message> current = NewMessage((*get)->output_type());
    grpc::Status status = (*client)->Unary(verb.service, **get, *get_request,
                                           current.get(), verb.purpose);
    if (!status.ok()) {
      return ReportRpcError(status, run.options().output, run.err());
    }
    absl::StatusOr<std::string> current_etag = FieldText(*current, "etag");
    if (current_etag.ok()) r->SetString(&request, etag, *current_etag);
  }
  std::unique_ptr<pb::Message> response = NewMessage(method.output_type());
  grpc::Status status = (*client)->Unary(verb.service, method, request,
                                         response.get(), verb.purpose);
  if (!status.ok()) {
    return ReportRpcError(status, run.options().output, run.err());
  }
  // --all: the following pages, merged into one answer.
  const pb::FieldDescriptor* next = StringField(*response, kNextPageTokenField);
  const pb::FieldDescriptor* token = StringField(request, "page_token");
  if (run.Has(kAllFlag) && next != nullptr && token != nullptr) {
    int pages = 1;
    const pb::Reflection* out = response->GetReflection();
    while (!out->GetString(*response, next).empty() && !Interrupted()) {
      r->SetString(&request, token, out->GetString(*response, next));
      std::unique_ptr<pb::Message> page = NewMessage(method.output_type());
      status = (*client)->Unary(verb.service, method, request, page.get(),
                                verb.purpose);
      if (!status.ok()) {
        return ReportRpcError(status, run.options().output, run.err());
      }
      // An empty token on the last page must end the loop; MergeFrom
      // would keep the previous one.
      out->ClearField(response.get(), next);
      response->MergeFrom(*page);
      run.err() << "all: " << ++pages << " pages read\n";
    }
  }
  PrintResponse(*response, verb.table, run.options().output, run.out(),
                run.err());
  return kExitOk;
}

int RunDeclared(const Verb& verb, Invocation& run) {
  absl::StatusOr<const pb::MethodDescriptor*> method =
      FindMethod(verb.service, verb.method);
  if (!method.ok()) return ReportUsage(method.status(), run.err());
  std::unique_ptr<pb::Message> request = NewMessage((*method)->input_type());
  absl::Status filled = FillRequest(verb, run.args(), request.get());
  if (!filled.ok()) return ReportUsage(filled, run.err());
  return CallAndPrint(verb, run, **method, *request);
}

const std::vector<Verb>& AllVerbs() {
  static const auto* const kVerbs = [] {
    auto* verbs = new std::vector<Verb>();
    for (auto group : {AgencyVerbs, PersonVerbs, LifecycleVerbs, CaseVerbs,
                       CourseVerbs, OfferVerbs, AuditVerbs}) {
      std::vector<Verb> more = group();
      verbs->insert(verbs->end(), more.begin(), more.end());
    }
    // Every listing verb can follow its pages to the end.
    for (Verb& verb : *verbs) {
      absl::StatusOr<const pb::MethodDescriptor*> method =
          FindMethod(verb.service, verb.method);
      if (method.ok() &&
          (*method)->input_type()->FindFieldByName("page_token") != nullptr &&
          (*method)->output_type()->FindFieldByName(kNextPageTokenField) !=
              nullptr) {
        verb.flags.push_back({kAllFlag, "",
                              "read every page (progress on stderr)", false,
                              false, false});
      }
    }
    return verbs;
  }();
  return *kVerbs;
}

}  // namespace lotse::lotsectl
