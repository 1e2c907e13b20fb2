// lotse_seed_demo: registers the demo agencies of tools/dev-pki.sh with the
// identity service, acting as the administering agency (lotse-admin), so
// that every demo client certificate can call Lotse right away. A real
// client of the public API: mutual TLS, actor and purpose metadata, a
// request_id per agency so that running it again creates nothing twice.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "common/errors/status.h"
#include "common/server/request_context.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"

ABSL_FLAG(std::string, identity, "127.0.0.1:50051", "identity service");
ABSL_FLAG(std::string, tls_dir, ".dev/pki", "dev-pki directory");
ABSL_FLAG(std::string, admin, "lotse-admin", "administering agency's cert");

namespace {

using ::lotse::type::v1::LegalDomain;

struct DemoAgency {
  const char* id;
  const char* display_name;
  LegalDomain domain;
  const char* municipality_code;  // AGS; Köln is 05315000
};

// Mirrors the client certificates tools/dev-pki.sh issues.
const std::vector<DemoAgency>& DemoAgencies() {
  static const auto* agencies = new std::vector<DemoAgency>{
      {"kim-koeln", "Kommunales Integrationsmanagement Köln",
       lotse::type::v1::LEGAL_DOMAIN_KOMMUNE, "05315000"},
      {"abh-koeln", "Ausländerbehörde Köln",
       lotse::type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE, "05315000"},
      {"bamf-nuernberg", "Bundesamt für Migration und Flüchtlinge",
       lotse::type::v1::LEGAL_DOMAIN_BAMF, ""},
      {"jobcenter-koeln", "Jobcenter Köln",
       lotse::type::v1::LEGAL_DOMAIN_JOBCENTER, "05315000"},
      {"aa-koeln", "Agentur für Arbeit Köln",
       lotse::type::v1::LEGAL_DOMAIN_ARBEITSAGENTUR, "05315000"},
      {"vhs-koeln", "Volkshochschule Köln (Integrationskurse)",
       lotse::type::v1::LEGAL_DOMAIN_KURSTRAEGER, "05315000"},
      {"ihk-koeln", "IHK Köln", lotse::type::v1::LEGAL_DOMAIN_KAMMER,
       "05315000"},
      {"caritas-koeln", "Caritasverband Köln (Migrationsberatung)",
       lotse::type::v1::LEGAL_DOMAIN_FREIER_TRAEGER, "05315000"},
      {"jugendamt-koeln", "Jugendamt Köln",
       lotse::type::v1::LEGAL_DOMAIN_JUGENDAMT, "05315000"},
      {"sozialamt-koeln", "Sozialamt Köln",
       lotse::type::v1::LEGAL_DOMAIN_SOZIALAMT, "05315000"},
  };
  return *agencies;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto creds = lotse::server::ClientCredentialsFromDir(
      absl::GetFlag(FLAGS_tls_dir), absl::GetFlag(FLAGS_admin));
  if (!creds.ok()) {
    std::fprintf(stderr, "%s\n", creds.status().ToString().c_str());
    return 2;
  }
  auto stub = lotse::identity::v1::IdentityService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_identity), *creds));
  int failures = 0;
  for (const DemoAgency& demo : DemoAgencies()) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    context.AddMetadata(lotse::server::kActorMetadataKey, "demo-seed");
    context.AddMetadata(lotse::server::kPurposeMetadataKey,
                        "register demo agencies");
    lotse::identity::v1::RegisterAgencyRequest request;
    request.set_request_id(absl::StrCat("demo-seed-", demo.id));
    request.set_agency_id(demo.id);
    auto* agency = request.mutable_agency();
    agency->set_display_name(demo.display_name);
    agency->set_legal_domain(demo.domain);
    agency->set_municipality_code(demo.municipality_code);
    agency->set_certificate_identity(demo.id);
    lotse::identity::v1::Agency response;
    grpc::Status status = stub->RegisterAgency(&context, request, &response);
    const auto reason = lotse::ReasonOf(lotse::FromGrpcStatus(status));
    if (status.ok()) {
      std::printf("registered %s\n", response.name().c_str());
    } else if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS &&
               reason.value_or("") == "AGENCY_EXISTS") {
      std::printf("agencies/%s already registered\n", demo.id);
    } else {
      std::fprintf(stderr, "agencies/%s: %s (%s)\n", demo.id,
                   status.error_message().c_str(),
                   reason.value_or("no reason").c_str());
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}
