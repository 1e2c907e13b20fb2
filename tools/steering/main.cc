// lotse_steering_report: writes the steering report (steering_report.h) of
// one municipality and period as a self-contained HTML page or as JSON.
// A client of the public API with an agency's certificate; by default the
// demo municipality's case manager, who may see all of its figures.
//
//   lotse_steering_report --from=2026-06-01 --to=2026-11-30 --out=report.html
//
// Exit status: 0 written, 1 a service call failed, 2 bad flags or the
// output could not be written.
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/server/server.h"
#include "common/server/usage.h"
#include "grpcpp/create_channel.h"
#include "tools/steering/steering_report.h"

ABSL_FLAG(std::string, cases, "127.0.0.1:50052", "cases service");
ABSL_FLAG(std::string, courses, "127.0.0.1:50053", "courses service");
ABSL_FLAG(std::string, placement, "127.0.0.1:50054", "placement service");
ABSL_FLAG(std::string, tls_dir, ".dev/pki", "dev-pki directory");
ABSL_FLAG(std::string, client, "kim-lindenbrueck",
          "agency whose client certificate is used");
ABSL_FLAG(std::string, actor, "steering-report", "acting person (audited)");
ABSL_FLAG(std::string, municipality, "05978044", "municipality key (AGS)");
ABSL_FLAG(std::string, from, "",
          "first day, YYYY-MM-DD (default: 6 months "
          "before --to, first of that month)");
ABSL_FLAG(std::string, to, "", "last day, YYYY-MM-DD (default: today)");
ABSL_FLAG(std::string, out, "-", "output file; - is standard output");
ABSL_FLAG(std::string, format, "",
          "html or json; default: json when --out ends in .json, else html");

namespace {

bool ParseDay(const std::string& text, absl::CivilDay* day) {
  return absl::ParseCivilTime(text, day);
}

}  // namespace

int main(int argc, char** argv) {
  lotse::server::ParseToolFlags(
      argc, argv,
      "Usage: lotse_steering_report [--flag=value ...]\n\n"
      "Writes the steering report of a municipality for a period: waiting\n"
      "times per step kind and agency by month, time to course start, seat\n"
      "use and waitlists, placements by outcome. HTML (self-contained,\n"
      "printable) or JSON.\n",
      {{"Report", {"municipality", "from", "to", "out", "format"}},
       {"Services", {"cases", "courses", "placement"}},
       {"Caller", {"tls_dir", "client", "actor"}}});
  lotse::steering::CollectOptions options;
  options.municipality_code = absl::GetFlag(FLAGS_municipality);
  options.actor = absl::GetFlag(FLAGS_actor);
  const absl::CivilDay today =
      absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
  options.to = today;
  if (!absl::GetFlag(FLAGS_to).empty() &&
      !ParseDay(absl::GetFlag(FLAGS_to), &options.to)) {
    std::fprintf(stderr, "--to: not a date (YYYY-MM-DD)\n");
    return 2;
  }
  options.from = absl::CivilDay(absl::CivilMonth(options.to) - 5);
  if (!absl::GetFlag(FLAGS_from).empty() &&
      !ParseDay(absl::GetFlag(FLAGS_from), &options.from)) {
    std::fprintf(stderr, "--from: not a date (YYYY-MM-DD)\n");
    return 2;
  }
  std::string format = absl::GetFlag(FLAGS_format);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (format.empty()) format = absl::EndsWith(out, ".json") ? "json" : "html";
  if (format != "html" && format != "json") {
    std::fprintf(stderr, "--format: html or json\n");
    return 2;
  }
  auto creds = lotse::server::ClientCredentialsFromDir(
      absl::GetFlag(FLAGS_tls_dir), absl::GetFlag(FLAGS_client));
  if (!creds.ok()) {
    std::fprintf(stderr, "%s\n", creds.status().ToString().c_str());
    return 2;
  }
  options.cases = grpc::CreateChannel(absl::GetFlag(FLAGS_cases), *creds);
  options.courses = grpc::CreateChannel(absl::GetFlag(FLAGS_courses), *creds);
  options.placement =
      grpc::CreateChannel(absl::GetFlag(FLAGS_placement), *creds);
  const absl::Time began = absl::Now();
  absl::StatusOr<lotse::steering::SteeringReport> report =
      lotse::steering::CollectSteeringReport(options);
  if (!report.ok()) {
    std::fprintf(stderr, "%s\n", report.status().ToString().c_str());
    return report.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  const std::string text = format == "json"
                               ? lotse::steering::RenderSteeringJson(*report)
                               : lotse::steering::RenderSteeringHtml(*report);
  if (out == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    std::ofstream file(out, std::ios::binary | std::ios::trunc);
    file << text;
    if (!file.good()) {
      std::fprintf(stderr, "cannot write %s\n", out.c_str());
      return 2;
    }
  }
  std::fprintf(stderr,
               "steering report %s..%s: %zu months, %zu groups, %zu "
               "courses in %.2f s\n",
               absl::FormatCivilTime(options.from).c_str(),
               absl::FormatCivilTime(options.to).c_str(), report->months.size(),
               report->waiting.size(), report->courses.size(),
               absl::ToDoubleSeconds(absl::Now() - began));
  return 0;
}
