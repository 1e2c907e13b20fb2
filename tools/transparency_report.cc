// lotse_transparency_report: asks identity for a person's transparency
// report (GetTransparencyReport) over mutual TLS and writes it to stdout as
// JSON: the proto3 JSON mapping of lotse.identity.v1.TransparencyReport,
// whose JSON Schema is docs/transparency-report.schema.json. Exit 0 with
// the report (also when services are missing: the report names them), 1
// when identity refuses or fails (the status on stderr), 2 when the client
// certificate cannot be read.
#include <chrono>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "common/server/server.h"
#include "common/server/usage.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "host:port of identity");
ABSL_FLAG(std::string, tls_dir, "", "dev-pki directory (ca.crt, clients/)");
ABSL_FLAG(std::string, client, "kim-koeln",
          "client certificate name under clients/ (the case owner or a "
          "DATA_PROTECTION agency)");
ABSL_FLAG(std::string, server_name, "",
          "name the server certificate must carry, when it differs from the "
          "host in --target");
ABSL_FLAG(std::string, person, "", "the person, persons/{id}");
ABSL_FLAG(std::string, actor, "", "x-lotse-actor: the acting caseworker");
ABSL_FLAG(std::string, purpose, "access-request", "x-lotse-purpose");
ABSL_FLAG(std::string, start_time, "",
          "only accesses at or after this RFC 3339 time");
ABSL_FLAG(std::string, end_time, "", "only accesses before this time");
ABSL_FLAG(absl::Duration, service_timeout, absl::Seconds(5),
          "how long identity waits for each service");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline of the call");

namespace {

bool ParseTime(const std::string& text, const char* flag,
               google::protobuf::Timestamp* out) {
  if (google::protobuf::util::TimeUtil::FromString(text, out)) return true;
  std::fprintf(stderr, "--%s: not an RFC 3339 time: %s\n", flag, text.c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  lotse::server::ParseToolFlags(
      argc, argv,
      "Usage: lotse_transparency_report --person=persons/ID [--flag=value "
      "...]\n\n"
      "Writes a person's transparency report from identity to stdout as\n"
      "JSON (schema: docs/transparency-report.schema.json).\n",
      {{"Report",
        {"person", "start_time", "end_time", "service_timeout", "actor",
         "purpose"}},
       {"Target", {"target", "server_name", "timeout"}},
       {"TLS", {"tls_dir", "client"}}});
  lotse::identity::v1::GetTransparencyReportRequest request;
  request.set_person(absl::GetFlag(FLAGS_person));
  if (!absl::GetFlag(FLAGS_start_time).empty() &&
      !ParseTime(absl::GetFlag(FLAGS_start_time), "start_time",
                 request.mutable_start_time())) {
    return 1;
  }
  if (!absl::GetFlag(FLAGS_end_time).empty() &&
      !ParseTime(absl::GetFlag(FLAGS_end_time), "end_time",
                 request.mutable_end_time())) {
    return 1;
  }
  request.set_service_timeout_ms(static_cast<int32_t>(
      absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_service_timeout))));

  auto creds = lotse::server::ClientCredentialsFromDir(
      absl::GetFlag(FLAGS_tls_dir), absl::GetFlag(FLAGS_client));
  if (!creds.ok()) {
    std::fprintf(stderr, "%s\n", creds.status().ToString().c_str());
    return 2;
  }
  grpc::ChannelArguments args;
  if (!absl::GetFlag(FLAGS_server_name).empty()) {
    args.SetSslTargetNameOverride(absl::GetFlag(FLAGS_server_name));
  }
  auto stub = lotse::identity::v1::IdentityService::NewStub(
      grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), *creds, args));
  grpc::ClientContext context;
  context.set_deadline(
      absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
  const std::string actor = absl::GetFlag(FLAGS_actor).empty()
                                ? absl::GetFlag(FLAGS_client)
                                : absl::GetFlag(FLAGS_actor);
  context.AddMetadata("x-lotse-actor", actor);
  context.AddMetadata("x-lotse-purpose", absl::GetFlag(FLAGS_purpose));
  lotse::identity::v1::TransparencyReport report;
  grpc::Status status = stub->GetTransparencyReport(&context, request, &report);
  if (!status.ok()) {
    std::fprintf(stderr, "%d %s\n", static_cast<int>(status.error_code()),
                 status.error_message().c_str());
    return 1;
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  // Every field of the schema is present, also when empty or zero, so a
  // consumer never has to tell "absent" from "none".
  options.always_print_primitive_fields = true;
  if (auto s =
          google::protobuf::util::MessageToJsonString(report, &json, options);
      !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::fwrite(json.data(), 1, json.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}
