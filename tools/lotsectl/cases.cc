// cases and steps: case management in the cases service (open, show, view,
// list, refer a step, change state, close, watch the event stream), and
// the step transitions of the receiving agency.
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tools/lotsectl/internal/exit_codes.h"
#include "tools/lotsectl/internal/fields.h"
#include "tools/lotsectl/internal/verb.h"

namespace lotse::lotsectl {
namespace {

namespace pb = ::google::protobuf;

constexpr char kPurpose[] = "case-management";

const TableSpec kCaseRecord = {"",
                               {{"name", "name"},
                                {"person", "person"},
                                {"owner", "owner_agency"},
                                {"responsible", "responsible_actor"},
                                {"state", "state"},
                                {"municipality", "municipality_code"},
                                {"participants", "participating_agencies"},
                                {"closing reason", "closing_reason"},
                                {"etag", "etag"}}};

const TableSpec kStepRecord = {"",
                               {{"name", "name"},
                                {"kind", "kind"},
                                {"state", "state"},
                                {"receiving", "receiving_agency"},
                                {"referring", "referring_agency"},
                                {"description", "description"},
                                {"due", "due_date"},
                                {"outcome", "outcome"},
                                {"etag", "etag"}}};

const std::vector<Column> kStepColumns = {
    {"STEP", "name"},    {"KIND", "kind"},
    {"STATE", "state"},  {"RECEIVING", "receiving_agency"},
    {"DUE", "due_date"}, {"DESCRIPTION", "description"}};

std::string Text(const pb::Message& m, const std::string& path) {
  absl::StatusOr<std::string> text = FieldText(m, path);
  return text.ok() ? *text : "";
}

// The responsible case manager defaults to the acting caseworker.
int Open(const Verb& verb, Invocation& run) {
  absl::StatusOr<const pb::MethodDescriptor*> method =
      FindMethod(verb.service, verb.method);
  if (!method.ok()) return ReportUsage(method.status(), run.err());
  std::unique_ptr<pb::Message> request = NewMessage((*method)->input_type());
  absl::Status filled = FillRequest(verb, run.args(), request.get());
  if (filled.ok() && !run.Has("responsible")) {
    filled = SetField(request.get(), "case_record.responsible_actor",
                      run.options().actor);
  }
  if (!filled.ok()) return ReportUsage(filled, run.err());
  return CallAndPrint(verb, run, **method, *request);
}

// The case view reads as a case header, the service chain as a table and
// the withheld fields, rather than one long record.
int View(const Verb& verb, Invocation& run) {
  if (run.options().output != OutputFormat::kTable) {
    return RunDeclared(verb, run);
  }
  absl::StatusOr<const pb::MethodDescriptor*> method =
      FindMethod(verb.service, verb.method);
  if (!method.ok()) return ReportUsage(method.status(), run.err());
  std::unique_ptr<pb::Message> request = NewMessage((*method)->input_type());
  absl::Status filled = FillRequest(verb, run.args(), request.get());
  if (!filled.ok()) return ReportUsage(filled, run.err());
  absl::StatusOr<Client*> client = run.client();
  if (!client.ok()) {
    run.err() << "lotsectl: " << client.status().message() << "\n";
    return kExitConnection;
  }
  std::unique_ptr<pb::Message> view = NewMessage((*method)->output_type());
  grpc::Status status = (*client)->Unary(verb.service, **method, *request,
                                         view.get(), verb.purpose);
  if (!status.ok()) {
    return ReportRpcError(status, run.options().output, run.err());
  }
  std::ostream& out = run.out();
  out << "case:      " << Text(*view, "case_record.name") << " ("
      << Text(*view, "case_record.state") << ", owner "
      << Text(*view, "case_record.owner_agency") << ", responsible "
      << Text(*view, "case_record.responsible_actor") << ")\n";
  out << "person:    " << Text(*view, "person.person") << "  "
      << Text(*view, "person.given_names") << " "
      << Text(*view, "person.family_names") << "  born "
      << Text(*view, "person.birth_date") << "\n";
  if (const std::string title = Text(*view, "residence.title_kind");
      !title.empty()) {
    out << "residence: " << title << " until "
        << Text(*view, "residence.valid_until") << "\n";
  }
  if (const std::string language = Text(*view, "language"); !language.empty()) {
    out << "language:  " << language << "\n";
  }
  std::vector<std::vector<std::string>> steps;
  const pb::FieldDescriptor* steps_field =
      view->GetDescriptor()->FindFieldByName("steps");
  const pb::Reflection* r = view->GetReflection();
  for (int i = 0; i < r->FieldSize(*view, steps_field); ++i) {
    const pb::Message& step = r->GetRepeatedMessage(*view, steps_field, i);
    std::vector<std::string> row;
    for (const Column& c : kStepColumns) row.push_back(Text(step, c.path));
    steps.push_back(std::move(row));
  }
  std::vector<std::string> headers;
  for (const Column& c : kStepColumns) headers.push_back(c.header);
  out << "\n" << RenderTable(headers, steps);
  // What the caller may not see is said, not silently missing.
  const std::string withheld = Text(*view, "withheld");
  if (!withheld.empty()) out << "\nwithheld: " << withheld << "\n";
  return kExitOk;
}

// The name of the field set in oneof `oneof` of `message`; empty if none.
std::string OneofCase(const pb::Message& message, const char* oneof) {
  const pb::OneofDescriptor* d =
      message.GetDescriptor()->FindOneofByName(oneof);
  if (d == nullptr) return "";
  const pb::FieldDescriptor* set =
      message.GetReflection()->GetOneofFieldDescriptor(message, d);
  return set == nullptr ? "" : set->name();
}

// What the event of a watch response is about: its payload's name.
std::string EventKind(const pb::Message& response) {
  if (OneofCase(response, "kind") != "event") return "";
  const pb::FieldDescriptor* event =
      response.GetDescriptor()->FindFieldByName("event");
  return OneofCase(response.GetReflection()->GetMessage(response, event),
                   "payload");
}

// Streams case events until --max-events, --for, Ctrl-C or the server ends
// the stream. Progress (events seen, the cursor to resume from) goes to
// stderr, the events to stdout, so that stdout stays parseable.
int Watch(const Verb& verb, Invocation& run) {
  absl::StatusOr<const pb::MethodDescriptor*> method =
      FindMethod(verb.service, verb.method);
  if (!method.ok()) return ReportUsage(method.status(), run.err());
  std::unique_ptr<pb::Message> request = NewMessage((*method)->input_type());
  absl::Status filled = FillRequest(verb, run.args(), request.get());
  if (!filled.ok()) return ReportUsage(filled, run.err());
  int64_t max_events = 0;
  if (run.Has("max-events") &&
      (!absl::SimpleAtoi(run.Flag("max-events"), &max_events) ||
       max_events <= 0)) {
    return ReportUsage(
        absl::InvalidArgumentError("--max-events must be a positive number"),
        run.err());
  }
  absl::Duration duration = absl::InfiniteDuration();
  if (run.Has("for") && (!absl::ParseDuration(run.Flag("for"), &duration) ||
                         duration <= absl::ZeroDuration())) {
    return ReportUsage(
        absl::InvalidArgumentError("--for must be a duration such as 30s"),
        run.err());
  }
  absl::StatusOr<Client*> client = run.client();
  if (!client.ok()) {
    run.err() << "lotsectl: " << client.status().message() << "\n";
    return kExitConnection;
  }
  const bool json = run.options().output == OutputFormat::kJson;
  int64_t events = 0;
  std::string cursor = Text(*request, "after_cursor");
  grpc::Status status = (*client)->ServerStream(
      verb.service, **method, *request,
      [&](const pb::Message& message) {
        if (OneofCase(message, "kind") == "heartbeat") {
          cursor = Text(message, "heartbeat.cursor");
          run.err() << "watch: " << events << " events, at cursor " << cursor
                    << " (heartbeat)\n";
          return true;
        }
        cursor = Text(message, "event.cursor");
        ++events;
        if (json) {
          run.out() << JsonOf(message, false) << "\n";
        } else {
          run.out() << cursor << "  " << Text(message, "event.occur_time")
                    << "  " << Text(message, "event.case_name") << "  "
                    << EventKind(message) << "\n";
        }
        run.out().flush();
        run.err() << "watch: " << events << " events, at cursor " << cursor
                  << "\n";
        return max_events == 0 || events < max_events;
      },
      verb.purpose, duration);
  // A watch that ran for its --for duration ended as planned.
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
      duration != absl::InfiniteDuration()) {
    status = grpc::Status::OK;
  }
  if (!cursor.empty() && cursor != "0") {
    run.err() << "watch: resume with --cursor " << cursor << "\n";
  }
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::CANCELLED && Interrupted()) {
      return kExitOk;
    }
    return ReportRpcError(status, run.options().output, run.err());
  }
  return kExitOk;
}

Verb StepTransition(const std::string& name, const std::string& method,
                    const std::string& summary, std::vector<VerbFlag> extra) {
  std::vector<VerbFlag> flags = {
      {"step", "name", "cases/{case}/steps/{step}", true, true},
      {"etag", "etag", "expected etag (default: the current one)"}};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return {"steps",  name,  summary, "cases",     method,
          kPurpose, flags, {},      kStepRecord, "GetStep"};
}

}  // namespace

std::vector<Verb> CaseVerbs() {
  std::vector<Verb> verbs;
  verbs.push_back(
      {"cases",
       "open",
       "open a case for a person (KOMMUNE case management)",
       "cases",
       "OpenCase",
       kPurpose,
       {{"person", "case_record.person", "persons/{id}", true, true},
        {"responsible", "case_record.responsible_actor",
         "responsible case manager (default: --actor)"}},
       {},
       kCaseRecord,
       "",
       Open});
  verbs.push_back({"cases",
                   "show",
                   "show a case",
                   "cases",
                   "GetCase",
                   kPurpose,
                   {{"case", "name", "cases/{id}", true, true}},
                   {},
                   kCaseRecord});
  verbs.push_back({"cases",
                   "view",
                   "the case view: person, residence, language, service "
                   "chain (withheld parts marked)",
                   "cases",
                   "GetCaseView",
                   kPurpose,
                   {{"case", "name", "cases/{id}", true, true}},
                   {},
                   {},
                   "",
                   View});
  verbs.push_back(
      {"cases",
       "list",
       "list cases you own or take part in",
       "cases",
       "ListCases",
       kPurpose,
       {{"state", "states", "INTAKE, ASSESSMENT, ACTIVE, CLOSED (repeatable)"},
        {"owner", "owner_agency", "agencies/{id}"},
        {"participant", "participating_agency", "agencies/{id}"},
        {"person", "person", "persons/{id}"},
        {"page-size", "page_size", "at most this many"},
        {"page-token", "page_token", "continue a listing"}},
       {},
       {"cases",
        {{"CASE", "name"},
         {"PERSON", "person"},
         {"STATE", "state"},
         {"OWNER", "owner_agency"},
         {"RESPONSIBLE", "responsible_actor"}}}});
  verbs.push_back(
      {"cases",
       "refer",
       "refer a step of the service chain to an agency",
       "cases",
       "CreateStep",
       kPurpose,
       {{"case", "parent", "cases/{id}", true, true},
        {"kind", "step.kind",
         "INTEGRATION_COURSE, JOB_PLACEMENT, COUNSELLING, ...", true},
        {"to", "step.receiving_agency", "receiving agency, agencies/{id}",
         true},
        {"description", "step.description", "what is asked for"},
        {"goal", "step.goal_id", "goal of the integration plan"},
        {"depends-on", "step.depends_on", "steps that must be done first"},
        {"due", "step.due_date", "YYYY-MM-DD"}},
       {},
       kStepRecord});
  verbs.push_back(
      {"cases",
       "transition",
       "move a case to another state (INTAKE, ASSESSMENT, "
       "ACTIVE)",
       "cases",
       "ChangeCaseState",
       kPurpose,
       {{"case", "name", "cases/{id}", true, true},
        {"to", "state", "the new state", true},
        {"etag", "etag", "expected etag (default: the current one)"}},
       {},
       kCaseRecord,
       "GetCase"});
  verbs.push_back(
      {"cases",
       "close",
       "close a case",
       "cases",
       "CloseCase",
       kPurpose,
       {{"case", "name", "cases/{id}", true, true},
        {"reason", "closing_reason",
         "GOALS_REACHED, MOVED_AWAY, PERSON_DECLINED, ...", true},
        {"comment", "closing_comment", "free text"},
        {"etag", "etag", "expected etag (default: the current one)"}},
       {},
       kCaseRecord,
       "GetCase"});
  verbs.push_back(
      {"cases",
       "watch",
       "follow case events; resume after a disconnect with --cursor",
       "cases",
       "WatchCaseEvents",
       kPurpose,
       {{"case", "case_name", "only this case, cases/{id}", false, true},
        {"cursor", "after_cursor", "resume after this cursor"},
        {"from-start", "", "replay the retained history (without --cursor)",
         false, false, false},
        {"max-events", "", "stop after this many events"},
        {"for", "", "stop after this long, e.g. 30s"}},
       {},
       {},
       "",
       [](const Verb& verb, Invocation& run) {
         if (run.Has("from-start") && !run.Has("cursor")) {
           Verb from_start = verb;
           from_start.fixed.push_back({"start", "EARLIEST"});
           return Watch(from_start, run);
         }
         return Watch(verb, run);
       }});
  verbs.push_back({"steps",
                   "list",
                   "list the steps of a case",
                   "cases",
                   "ListSteps",
                   kPurpose,
                   {{"case", "parent", "cases/{id}", true, true},
                    {"state", "states", "only these states (repeatable)"},
                    {"kind", "kinds", "only these kinds (repeatable)"},
                    {"receiving", "receiving_agency", "agencies/{id}"}},
                   {},
                   {"steps", kStepColumns}});
  verbs.push_back({"steps",
                   "show",
                   "show a step with its history",
                   "cases",
                   "GetStep",
                   kPurpose,
                   {{"step", "name", "cases/{case}/steps/{step}", true, true}},
                   {},
                   kStepRecord});
  verbs.push_back(StepTransition(
      "accept", "AcceptStep", "accept a referred step (receiving agency)", {}));
  verbs.push_back(StepTransition(
      "decline", "DeclineStep", "decline a referred step",
      {{"reason", "reason", "NO_CAPACITY, NOT_RESPONSIBLE, ...", true},
       {"comment", "comment", "free text"}}));
  verbs.push_back(
      StepTransition("start", "StartStep", "start an accepted step", {}));
  verbs.push_back(
      StepTransition("complete", "CompleteStep", "complete a step in progress",
                     {{"outcome", "outcome",
                       "ACHIEVED, PARTIALLY_ACHIEVED, NOT_ACHIEVED", true},
                      {"comment", "comment", "free text"}}));
  verbs.push_back(StepTransition(
      "cancel", "CancelStep", "cancel a step",
      {{"reason", "reason", "NO_LONGER_NEEDED, PERSON_WITHDREW, ...", true},
       {"comment", "comment", "free text"}}));
  return verbs;
}

}  // namespace lotse::lotsectl
