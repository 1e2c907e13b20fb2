#include "tools/lotsectl/report.h"

#include <fstream>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "tools/lotsectl/internal/client.h"
#include "tools/lotsectl/internal/exit_codes.h"
#include "tools/lotsectl/internal/output.h"
#include "tools/steering/steering_report.h"

namespace lotse::lotsectl {
namespace {

bool ParseDay(const std::string& text, absl::CivilDay* day) {
  return absl::ParseCivilTime(text, day);
}

// The single value of `flag`, or "" when absent.
std::string FlagValue(const VerbArgs& args, const std::string& flag) {
  auto it = args.flags.find(flag);
  return it == args.flags.end() || it->second.empty() ? "" : it->second.back();
}

std::shared_ptr<grpc::Channel> ChannelTo(
    const GlobalOptions& options, const std::string& service,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  grpc::ChannelArguments args;
  if (!options.server_name.empty()) {
    args.SetSslTargetNameOverride(options.server_name);
  }
  auto target = options.targets.find(service);
  return grpc::CreateCustomChannel(
      target == options.targets.end() ? "" : target->second, credentials, args);
}

}  // namespace

std::string ReportHelp() {
  return "Usage: lotsectl report steering --municipality AGS [--from "
         "YYYY-MM-DD]\n"
         "                [--to YYYY-MM-DD] [-o FILE.html|FILE.json|json]\n\n"
         "The steering report of one municipality for a period: waiting\n"
         "times from referral to start per step kind and agency (median and\n"
         "90th percentile by month), course seat use and waitlists, time to\n"
         "the first lesson per provider, placements by outcome. A\n"
         "self-contained HTML page with SVG charts (print it from a\n"
         "browser), or JSON. Reads only aggregates from cases, courses and\n"
         "placement. --to defaults to today, --from to the first day of the\n"
         "month five months before --to.\n";
}

int RunReport(const std::vector<std::string>& args,
              const GlobalOptions& options, std::ostream& out,
              std::ostream& err) {
  if (args.empty() || args[0] != "steering") {
    return ReportUsage(
        absl::InvalidArgumentError("report supports: report steering"), err);
  }
  absl::StatusOr<VerbArgs> parsed =
      ParseVerbArgs(std::vector<std::string>(args.begin() + 1, args.end()),
                    {{"municipality", true}, {"from", true}, {"to", true}});
  if (!parsed.ok()) return ReportUsage(parsed.status(), err);
  if (!parsed->positional.empty()) {
    return ReportUsage(absl::InvalidArgumentError(
                           absl::StrCat("report steering takes no argument \"",
                                        parsed->positional.front(), "\"")),
                       err);
  }
  steering::CollectOptions collect;
  collect.municipality_code = FlagValue(*parsed, "municipality");
  if (collect.municipality_code.size() != 8 ||
      collect.municipality_code.find_first_not_of("0123456789") !=
          std::string::npos) {
    return ReportUsage(
        absl::InvalidArgumentError(
            "report steering needs --municipality with an eight-digit AGS"),
        err);
  }
  collect.to = absl::ToCivilDay(absl::Now(), absl::LocalTimeZone());
  if (const std::string to = FlagValue(*parsed, "to");
      !to.empty() && !ParseDay(to, &collect.to)) {
    return ReportUsage(absl::InvalidArgumentError(absl::StrCat(
                           "--to must be a day YYYY-MM-DD, not \"", to, "\"")),
                       err);
  }
  collect.from = absl::CivilDay(absl::CivilMonth(collect.to) - 5);
  if (const std::string from = FlagValue(*parsed, "from");
      !from.empty() && !ParseDay(from, &collect.from)) {
    return ReportUsage(
        absl::InvalidArgumentError(absl::StrCat(
            "--from must be a day YYYY-MM-DD, not \"", from, "\"")),
        err);
  }
  if (collect.to < collect.from) {
    return ReportUsage(
        absl::InvalidArgumentError("--to must not be before --from"), err);
  }
  if (!options.actor.empty()) collect.actor = options.actor;
  if (!options.purpose.empty()) collect.purpose = options.purpose;
  collect.deadline = options.timeout;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      Credentials(options);
  if (!credentials.ok()) return ReportUsage(credentials.status(), err);
  collect.cases = ChannelTo(options, "cases", *credentials);
  collect.courses = ChannelTo(options, "courses", *credentials);
  collect.placement = ChannelTo(options, "placement", *credentials);

  absl::StatusOr<steering::SteeringReport> report =
      steering::CollectSteeringReport(collect);
  if (!report.ok()) {
    err << "error: " << absl::StatusCodeToString(report.status().code()) << ": "
        << report.status().message() << "\n";
    return report.status().code() == absl::StatusCode::kUnavailable ||
                   report.status().code() == absl::StatusCode::kDeadlineExceeded
               ? kExitConnection
               : kExitRpcError;
  }
  const std::string text = options.output == OutputFormat::kJson
                               ? steering::RenderSteeringJson(*report)
                               : steering::RenderSteeringHtml(*report);
  if (options.output_file.empty()) {
    out << text;
    return kExitOk;
  }
  std::ofstream file(options.output_file, std::ios::binary | std::ios::trunc);
  file << text;
  file.close();
  if (!file) {
    err << "lotsectl: cannot write " << options.output_file << "\n";
    return kExitUsage;
  }
  err << "wrote " << options.output_file << "\n";
  return kExitOk;
}

}  // namespace lotse::lotsectl
