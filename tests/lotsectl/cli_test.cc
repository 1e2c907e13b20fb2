// lotsectl without services: the verb table against the contracts, the
// command-line parsing, field conversion, usage errors and their exit
// codes, and the bash completion loaded into a real bash.
#include "tools/lotsectl/internal/cli.h"

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "lotse/audit/v1/audit_service.pb.h"
#include "lotse/cases/v1/cases_service.pb.h"
#include "lotse/identity/v1/identity_service.pb.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"
#include "tools/lotsectl/internal/client.h"
#include "tools/lotsectl/internal/exit_codes.h"
#include "tools/lotsectl/internal/fields.h"
#include "tools/lotsectl/internal/options.h"
#include "tools/lotsectl/internal/output.h"
#include "tools/lotsectl/internal/verb.h"

namespace lotse::lotsectl {
namespace {

namespace pb = ::google::protobuf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

// Runs a command line in-process with only `env` as environment.
Outcome Lotsectl(std::vector<std::string> args,
                 std::map<std::string, std::string> env = {}) {
  std::istringstream in;
  std::ostringstream out, err;
  int code = RunCommandLine(
      std::move(args),
      [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      in, out, err);
  return {code, out.str(), err.str()};
}

const pb::Descriptor* RowType(const pb::Descriptor* response,
                              const std::string& rows) {
  if (rows.empty()) return response;
  const pb::FieldDescriptor* f = response->FindFieldByName(rows);
  return f == nullptr ? nullptr : f->message_type();
}

TEST(VerbTableTest, EveryVerbNamesAnRpcAndFieldsOfItsMessages) {
  ASSERT_FALSE(AllVerbs().empty());
  std::set<std::string> seen;
  for (const Verb& verb : AllVerbs()) {
    const std::string id = absl::StrCat(verb.group, " ", verb.name);
    EXPECT_TRUE(seen.insert(id).second) << "twice: " << id;
    EXPECT_FALSE(verb.summary.empty()) << id;
    EXPECT_FALSE(verb.purpose.empty()) << id;
    auto method = FindMethod(verb.service, verb.method);
    ASSERT_TRUE(method.ok()) << id << ": " << method.status();
    std::set<std::string> flags;
    for (const VerbFlag& f : verb.flags) {
      EXPECT_TRUE(flags.insert(f.name).second) << id << " --" << f.name;
      EXPECT_FALSE(f.help.empty()) << id << " --" << f.name;
      if (f.path.empty()) {
        EXPECT_TRUE(verb.handler != nullptr || f.name == kAllFlag)
            << id << " --" << f.name << " is read by no one";
        continue;
      }
      EXPECT_TRUE(ResolvePath((*method)->input_type(), f.path).ok())
          << id << " --" << f.name << " -> " << f.path;
    }
    for (const auto& [path, value] : verb.fixed) {
      auto request = NewMessage((*method)->input_type());
      EXPECT_TRUE(SetField(request.get(), path, value).ok()) << id << path;
    }
    const pb::Descriptor* row =
        RowType((*method)->output_type(), verb.table.rows);
    ASSERT_NE(row, nullptr) << id << " rows " << verb.table.rows;
    for (const Column& c : verb.table.columns) {
      EXPECT_TRUE(ResolvePath(row, c.path).ok()) << id << " column " << c.path;
    }
  }
}

TEST(VerbTableTest, CoversTheCommonWork) {
  std::set<std::string> verbs;
  for (const Verb& v : AllVerbs()) verbs.insert(v.group + " " + v.name);
  for (const char* wanted : {"agencies register",
                             "agencies suspend",
                             "agencies list",
                             "persons create",
                             "persons find-duplicates",
                             "persons show",
                             "persons link-id",
                             "persons transparency",
                             "cases open",
                             "cases view",
                             "cases refer",
                             "cases transition",
                             "cases watch",
                             "courses search",
                             "courses book",
                             "courses waitlist",
                             "offers match",
                             "audit verify",
                             "audit head",
                             "audit list"}) {
    EXPECT_THAT(verbs, Contains(wanted));
  }
}

TEST(FieldsTest, SetsEnumsDatesAndRepeatedFieldsFromText) {
  identity::v1::CreatePersonRequest request;
  EXPECT_TRUE(SetField(&request, "person.sex", "female").ok());
  EXPECT_TRUE(SetField(&request, "person.birth_date", "1990-04").ok());
  EXPECT_TRUE(SetField(&request, "person.nationality_codes", "SY, TR").ok());
  EXPECT_TRUE(SetField(&request, "person.names.given_names", "Amina").ok());
  EXPECT_TRUE(
      SetField(&request, "person.names.kind", "NAME_KIND_CURRENT").ok());
  EXPECT_TRUE(SetField(&request, "confirm_new_person", "true").ok());
  EXPECT_EQ(request.person().sex(), identity::v1::SEX_FEMALE);
  EXPECT_EQ(request.person().birth_date().year(), 1990);
  EXPECT_EQ(request.person().birth_date().month(), 4);
  EXPECT_EQ(request.person().birth_date().day(), 0);
  EXPECT_THAT(request.person().nationality_codes(), ElementsAre("SY", "TR"));
  ASSERT_EQ(request.person().names_size(), 1);
  EXPECT_EQ(request.person().names(0).kind(), identity::v1::NAME_KIND_CURRENT);
  EXPECT_TRUE(request.confirm_new_person());
  EXPECT_EQ(FieldText(request, "person.birth_date").value_or(""), "1990-04-??");
  EXPECT_EQ(FieldText(request, "person.sex").value_or(""), "FEMALE");
}

TEST(FieldsTest, RefusesTextThatDoesNotFitTheField) {
  cases::v1::WatchCaseEventsRequest request;
  absl::Status not_a_number = SetField(&request, "after_cursor", "soon");
  EXPECT_EQ(not_a_number.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(not_a_number.message()), HasSubstr("after_cursor"));
  absl::Status no_such_value = SetField(&request, "start", "yesterday");
  EXPECT_EQ(no_such_value.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_such_value.message()), HasSubstr("EARLIEST"));
  EXPECT_FALSE(SetField(&request, "no_such_field", "1").ok());
  EXPECT_EQ(request.after_cursor(), 0);
}

TEST(OutputTest, NameOutputPrintsOnlyResourceNames) {
  identity::v1::ListAgenciesResponse list;
  list.add_agencies()->set_name("agencies/kim-koeln");
  list.add_agencies()->set_name("agencies/vhs-koeln");
  list.set_next_page_token("more");
  std::ostringstream out, err;
  PrintResponse(list, {"agencies", {{"NAME", "name"}, {"STATE", "state"}}},
                OutputFormat::kName, out, err);
  EXPECT_EQ(out.str(), "agencies/kim-koeln\nagencies/vhs-koeln\n");

  std::ostringstream record;
  PrintResponse(list.agencies(1), {}, OutputFormat::kName, record, err);
  EXPECT_EQ(record.str(), "agencies/vhs-koeln\n");

  std::ostringstream table;
  PrintResponse(list, {"agencies", {{"NAME", "name"}, {"STATE", "state"}}},
                OutputFormat::kTable, table, err);
  EXPECT_EQ(table.str(),
            "NAME                STATE\n"
            "agencies/kim-koeln  UNSPECIFIED\n"
            "agencies/vhs-koeln  UNSPECIFIED\n");
  EXPECT_EQ(err.str(), "more: --page-token more\n");
}

TEST(OutputTest, ARefusedCallShowsReasonAndRetryDelay) {
  google::rpc::Status details;
  details.set_code(static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  details.set_message("too many calls");
  google::rpc::ErrorInfo info;
  info.set_reason("AGENCY_RATE_LIMITED");
  info.set_domain("identity.lotse");
  details.add_details()->PackFrom(info);
  google::rpc::RetryInfo retry;
  retry.mutable_retry_delay()->set_seconds(1);
  retry.mutable_retry_delay()->set_nanos(250000000);
  details.add_details()->PackFrom(retry);
  const grpc::Status status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "too many calls", details.SerializeAsString());

  std::ostringstream text;
  EXPECT_EQ(ReportRpcError(status, OutputFormat::kTable, text), kExitRpcError);
  EXPECT_EQ(text.str(),
            "error: RESOURCE_EXHAUSTED: too many calls\n"
            "  reason: AGENCY_RATE_LIMITED (identity.lotse)\n"
            "  retry after: 1.25s\n");

  std::ostringstream json;
  ReportRpcError(status, OutputFormat::kJson, json);
  EXPECT_THAT(json.str(),
              HasSubstr("\"retry_info\": {\"retry_delay\":\"1.250s\"}"))
      << json.str();

  std::ostringstream without;
  ReportRpcError(grpc::Status(grpc::StatusCode::NOT_FOUND, "gone"),
                 OutputFormat::kTable, without);
  EXPECT_EQ(without.str(), "error: NOT_FOUND: gone\n");
}

TEST(OutputTest, AuditVerifyListsTheRestoresUnderItsTable) {
  const Verb* verify = nullptr;
  for (const Verb& verb : AllVerbs()) {
    if (verb.group == "audit" && verb.name == "verify") verify = &verb;
  }
  ASSERT_NE(verify, nullptr);
  audit::v1::VerifyAuditChainResponse response;
  response.set_service("identity");
  audit::v1::ChainVerification* changes = response.add_chains();
  changes->set_chain(audit::v1::AUDIT_CHAIN_CHANGES);
  changes->set_intact(true);
  changes->set_records_checked(40);
  audit::v1::ChainRestore* restore = changes->add_restores();
  restore->set_seq(31);
  restore->mutable_time()->set_seconds(1796637600);  // 2026-12-07T10:00:00Z
  restore->set_source("/var/backups/identity.db");
  restore->set_lost_checkpoints(2);
  audit::v1::ChainVerification* reads = response.add_chains();
  reads->set_chain(audit::v1::AUDIT_CHAIN_READS);
  reads->set_intact(true);

  std::ostringstream table, err;
  PrintResponse(response, verify->table, OutputFormat::kTable, table, err);
  EXPECT_THAT(table.str(), HasSubstr("CHANGES"));
  EXPECT_THAT(table.str(),
              HasSubstr("restored: CHANGES seq 31 at 2026-12-07T10:00:00Z "
                        "from /var/backups/identity.db; explains 2 "
                        "witnessed checkpoint(s) of the lost time\n"));
  EXPECT_THAT(table.str(), Not(HasSubstr("restored: READS")));

  // JSON carries the restores as fields, with no extra lines.
  std::ostringstream json;
  PrintResponse(response, verify->table, OutputFormat::kJson, json, err);
  EXPECT_THAT(json.str(), Not(HasSubstr("restored:")));
  EXPECT_THAT(json.str(), HasSubstr("\"lost_checkpoints\": \"2\""));
  EXPECT_THAT(json.str(),
              HasSubstr("\"source\": \"/var/backups/identity.db\""));
  EXPECT_TRUE(err.str().empty()) << err.str();
}

TEST(OptionsTest, FlagsBeatEnvironmentAndMayStandAfterTheVerb) {
  std::vector<std::string> args = {
      "persons", "show", "persons/x", "--client=vhs-koeln", "-o", "json"};
  auto options = ExtractGlobalOptions(args, [](const char* name) {
    const std::string n = name;
    if (n == "LOTSE_CLIENT") return "kim-koeln";
    if (n == "LOTSE_TLS_DIR") return "/pki";
    if (n == "LOTSE_CASES") return "cases.example:1";
    return static_cast<const char*>(nullptr);
  });
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->client, "vhs-koeln");
  EXPECT_EQ(options->tls_dir, "/pki");
  EXPECT_EQ(options->output, OutputFormat::kJson);
  EXPECT_EQ(options->targets["cases"], "cases.example:1");
  EXPECT_EQ(options->targets["identity"], "127.0.0.1:50051");
  EXPECT_EQ(options->actor, "lotsectl");
  EXPECT_THAT(args, ElementsAre("persons", "show", "persons/x"));
}

TEST(CommandLineTest, UsageErrorsExitTwoAndSendNothing) {
  // No certificates anywhere: a usage error must be found before any
  // connection is attempted, or the exit code would be 3.
  Outcome unknown_group = Lotsectl({"peoples", "list"});
  EXPECT_EQ(unknown_group.code, kExitUsage);
  EXPECT_THAT(unknown_group.err, HasSubstr("unknown command \"peoples\""));
  Outcome unknown_verb = Lotsectl({"persons", "delete", "persons/x"});
  EXPECT_EQ(unknown_verb.code, kExitUsage);
  EXPECT_THAT(unknown_verb.err, HasSubstr("find-duplicates"));
  Outcome unknown_flag = Lotsectl({"persons", "show", "persons/x", "--colour"});
  EXPECT_EQ(unknown_flag.code, kExitUsage);
  EXPECT_THAT(unknown_flag.err, HasSubstr("--colour"));
  Outcome missing = Lotsectl({"persons", "show"});
  EXPECT_EQ(missing.code, kExitUsage);
  EXPECT_THAT(missing.err, HasSubstr("--name"));
  Outcome bad_enum = Lotsectl({"cases", "refer", "cases/x", "--kind", "picnic",
                               "--to", "agencies/vhs-koeln"});
  EXPECT_EQ(bad_enum.code, kExitUsage);
  EXPECT_THAT(bad_enum.err, HasSubstr("INTEGRATION_COURSE"));
  Outcome bad_output = Lotsectl({"-o", "yaml", "agencies", "list"});
  EXPECT_EQ(bad_output.code, kExitUsage);
  Outcome unknown_method = Lotsectl({"call", "identity", "DeleteEverything"});
  EXPECT_EQ(unknown_method.code, kExitUsage);
  EXPECT_THAT(unknown_method.err, HasSubstr("GetPerson"));
  Outcome bad_json =
      Lotsectl({"call", "identity", "GetPerson", "--json", "{\"person\": 1}"});
  EXPECT_EQ(bad_json.code, kExitUsage);
  EXPECT_THAT(bad_json.err, HasSubstr("GetPersonRequest"));
}

TEST(CommandLineTest, ReportSteeringRefusesBadFlagsBeforeConnecting) {
  // The steering report checks its flags before it connects.
  Outcome report = Lotsectl({"report", "steering", "--from", "2026-01-01"});
  EXPECT_EQ(report.code, kExitUsage);
  EXPECT_THAT(report.err, HasSubstr("eight-digit AGS"));
  report = Lotsectl({"report", "steering", "--municipality", "05978044",
                     "--from", "2026-01"});
  EXPECT_EQ(report.code, kExitUsage);
  EXPECT_THAT(report.err, HasSubstr("--from must be a day"));
  report = Lotsectl({"report", "steering", "--municipality", "05978044",
                     "--from", "2026-06-01", "--to", "2026-01-01"});
  EXPECT_EQ(report.code, kExitUsage);
  EXPECT_THAT(report.err, HasSubstr("before --from"));
  report = Lotsectl({"report", "weekly"});
  EXPECT_EQ(report.code, kExitUsage);
  EXPECT_THAT(report.err, HasSubstr("report steering"));
  // A file to write to is for reports only.
  report = Lotsectl({"-o", "out.html", "agencies", "list"});
  EXPECT_EQ(report.code, kExitUsage);
  EXPECT_THAT(report.err, HasSubstr("for reports"));
  report = Lotsectl({"-o", "out.txt", "agencies", "list"});
  EXPECT_EQ(report.code, kExitUsage);
}

TEST(CommandLineTest, MissingCertificatesExitThree) {
  Outcome no_pki = Lotsectl({"agencies", "list"});
  EXPECT_EQ(no_pki.code, kExitConnection);
  EXPECT_THAT(no_pki.err, HasSubstr("--tls_dir"));
  Outcome unreadable = Lotsectl(
      {"agencies", "list"},
      {{"LOTSE_TLS_DIR", "/nonexistent"}, {"LOTSE_CLIENT", "kim-koeln"}});
  EXPECT_EQ(unreadable.code, kExitConnection);
  EXPECT_THAT(unreadable.err, HasSubstr("/nonexistent"));
}

TEST(CommandLineTest, HelpListsVerbsOptionsAndExitCodes) {
  Outcome help = Lotsectl({"--help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_THAT(help.out, HasSubstr("persons create"));
  EXPECT_THAT(help.out, HasSubstr("LOTSE_TLS_DIR"));
  EXPECT_THAT(help.out, HasSubstr("Exit status"));
  Outcome verb = Lotsectl({"cases", "watch", "--help"});
  EXPECT_EQ(verb.code, kExitOk);
  EXPECT_THAT(verb.out, HasSubstr("--cursor"));
  EXPECT_THAT(verb.out, HasSubstr("WatchCaseEvents"));
}

TEST(CompletionTest, CandidatesFollowTheVerbTable) {
  EXPECT_THAT(CompletionCandidates({}), Contains("persons"));
  EXPECT_THAT(CompletionCandidates({}), Contains("call"));
  EXPECT_THAT(CompletionCandidates({"persons"}), Contains("find-duplicates"));
  EXPECT_THAT(CompletionCandidates({"--client", "kim-koeln", "cases"}),
              Contains("watch"));
  EXPECT_THAT(CompletionCandidates({"cases", "watch"}), Contains("--cursor"));
  EXPECT_THAT(CompletionCandidates({"cases", "refer", "--kind"}),
              Contains("INTEGRATION_COURSE"));
  EXPECT_THAT(CompletionCandidates({"call", "cases"}),
              Contains("WatchCaseEvents"));
  EXPECT_THAT(CompletionCandidates({"call"}), Not(IsEmpty()));
}

// The script as bash loads it, completing through the real binary.
TEST(CompletionTest, BashLoadsTheScriptAndCompletesVerbs) {
  const std::string binary =
      absl::StrCat(testing::BinaryDir(), "/tools/lotsectl/lotsectl");
  const std::string script = absl::StrCat(
      "set -e\n"
      // eval rather than source <(...): no /dev/fd needed, as in a chroot.
      "eval \"$('",
      binary, "' completion bash)\"\n",
      "complete -p lotsectl\n"
      "COMP_WORDS=('",
      binary,
      "' per); COMP_CWORD=1; _lotsectl\n"
      "echo \"groups: ${COMPREPLY[*]}\"\n"
      "COMP_WORDS=('",
      binary,
      "' cases w); COMP_CWORD=2; _lotsectl\n"
      "echo \"verbs: ${COMPREPLY[*]}\"\n"
      "COMP_WORDS=('",
      binary,
      "' cases refer --kind INTEGRATION_C); "
      "COMP_CWORD=4; _lotsectl\n"
      "echo \"values: ${COMPREPLY[*]}\"\n");
  auto result =
      testing::RunCommand("/bin/bash", {"-c", script}, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->err;
  EXPECT_THAT(result->out, HasSubstr("-F _lotsectl lotsectl"));
  EXPECT_THAT(result->out, HasSubstr("groups: persons\n"));
  EXPECT_THAT(result->out, HasSubstr("verbs: watch\n"));
  EXPECT_THAT(result->out, HasSubstr("values: INTEGRATION_COURSE\n"));
}

}  // namespace
}  // namespace lotse::lotsectl
