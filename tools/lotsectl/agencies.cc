// agencies: the agency registry in the identity service (register,
// suspend, reactivate, list, show). Registering and suspending are for the
// administering agency (lotse-admin in the dev PKI).
#include <memory>

#include "absl/strings/str_cat.h"
#include "tools/lotsectl/internal/fields.h"
#include "tools/lotsectl/internal/verb.h"

namespace lotse::lotsectl {
namespace {

constexpr char kPurpose[] = "agency-administration";

const TableSpec kAgencyRecord = {"",
                                 {{"name", "name"},
                                  {"display name", "display_name"},
                                  {"legal domain", "legal_domain"},
                                  {"municipality", "municipality_code"},
                                  {"certificate", "certificate_identity"},
                                  {"state", "state"},
                                  {"suspension reason", "suspension_reason"},
                                  {"etag", "etag"}}};

// The certificate identity defaults to the agency id: the services bind a
// caller to its agency by the client certificate's CN (request_context.h),
// and tools/dev-pki.sh issues CN=<id>. Any other default would register an
// agency that can never call.
int Register(const Verb& verb, Invocation& run) {
  absl::StatusOr<const google::protobuf::MethodDescriptor*> method =
      FindMethod(verb.service, verb.method);
  if (!method.ok()) return ReportUsage(method.status(), run.err());
  std::unique_ptr<google::protobuf::Message> request =
      NewMessage((*method)->input_type());
  absl::Status filled = FillRequest(verb, run.args(), request.get());
  if (filled.ok() && !run.Has("certificate-identity")) {
    filled =
        SetField(request.get(), "agency.certificate_identity", run.Flag("id"));
  }
  if (!filled.ok()) return ReportUsage(filled, run.err());
  return CallAndPrint(verb, run, **method, *request);
}

}  // namespace

std::vector<Verb> AgencyVerbs() {
  std::vector<Verb> verbs;
  verbs.push_back(
      {"agencies",
       "register",
       "register an agency (administering agency only)",
       "identity",
       "RegisterAgency",
       kPurpose,
       {{"id", "agency_id", "agency id, e.g. kim-duesseldorf", true, true},
        {"display-name", "agency.display_name", "human-readable name", true},
        {"legal-domain", "agency.legal_domain",
         "KOMMUNE, JOBCENTER, KURSTRAEGER, ...", true},
        {"municipality", "agency.municipality_code",
         "AGS of the municipality served (required for KOMMUNE)"},
        {"certificate-identity", "agency.certificate_identity",
         "the CN of its client certificate (default: the id)"}},
       {},
       kAgencyRecord,
       "",
       Register});
  verbs.push_back(
      {"agencies",
       "suspend",
       "suspend an agency: its calls are refused",
       "identity",
       "SuspendAgency",
       kPurpose,
       {{"name", "name", "agencies/{id}", true, true},
        {"reason", "reason", "why, kept with the agency", true},
        {"etag", "etag", "expected etag (default: the current one)"}},
       {},
       kAgencyRecord,
       "GetAgency"});
  verbs.push_back(
      {"agencies",
       "reactivate",
       "lift an agency's suspension",
       "identity",
       "ReactivateAgency",
       kPurpose,
       {{"name", "name", "agencies/{id}", true, true},
        {"etag", "etag", "expected etag (default: the current one)"}},
       {},
       kAgencyRecord,
       "GetAgency"});
  verbs.push_back(
      {"agencies",
       "list",
       "list registered agencies",
       "identity",
       "ListAgencies",
       kPurpose,
       {{"legal-domain", "legal_domain", "only this legal domain"},
        {"municipality", "municipality_code", "only this municipality (AGS)"},
        {"state", "state", "ACTIVE or SUSPENDED"},
        {"page-size", "page_size", "at most this many"},
        {"page-token", "page_token", "continue a listing"}},
       {},
       {"agencies",
        {{"NAME", "name"},
         {"DOMAIN", "legal_domain"},
         {"MUNICIPALITY", "municipality_code"},
         {"STATE", "state"},
         {"DISPLAY NAME", "display_name"}}}});
  verbs.push_back({"agencies",
                   "show",
                   "show one agency",
                   "identity",
                   "GetAgency",
                   kPurpose,
                   {{"name", "name", "agencies/{id}", true, true}},
                   {},
                   kAgencyRecord});
  return verbs;
}

}  // namespace lotse::lotsectl
