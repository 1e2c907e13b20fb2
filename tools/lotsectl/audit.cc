// audit: the AuditService every service offers, for the deployment's
// data-protection officer (dsb-nrw in the dev PKI): chain heads,
// verification, records of a person or an agency. --service picks the
// process whose chains are meant.
#include <ostream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lotse/audit/v1/audit_service.pb.h"
#include "tools/lotsectl/internal/client.h"
#include "tools/lotsectl/internal/fields.h"
#include "tools/lotsectl/internal/verb.h"

namespace lotse::lotsectl {
namespace {

constexpr char kPurpose[] = "audit";

int OnService(const Verb& verb, Invocation& run) {
  Verb on = verb;
  on.service = run.Flag("service", "identity");
  if (MainServiceOf(on.service).empty()) {
    return ReportUsage(
        absl::InvalidArgumentError(absl::StrCat(
            "--service must be identity, cases, courses or placement, not \"",
            on.service, "\"")),
        run.err());
  }
  return RunDeclared(on, run);
}

// Under the verify table: one line per restore a chain records, with the
// witnessed checkpoints of the time it lost that it explains.
void PrintRestores(const google::protobuf::Message& response,
                   std::ostream& out) {
  lotse::audit::v1::VerifyAuditChainResponse verified;
  if (!verified.ParseFromString(response.SerializeAsString())) return;
  for (const lotse::audit::v1::ChainVerification& chain : verified.chains()) {
    for (const lotse::audit::v1::ChainRestore& r : chain.restores()) {
      out << "restored: " << FieldText(chain, "chain").value_or("?") << " seq "
          << r.seq() << " at " << FieldText(r, "time").value_or("?") << " from "
          << r.source() << "; explains " << r.lost_checkpoints()
          << " witnessed checkpoint(s) of the lost time\n";
    }
  }
}

VerbFlag ServiceFlag() {
  return {"service", "",
          "whose chains: identity (default), cases, courses, placement"};
}

}  // namespace

std::vector<Verb> AuditVerbs() {
  std::vector<Verb> verbs;
  verbs.push_back({"audit",
                   "head",
                   "the newest record (seq, hash) of each audit chain",
                   "identity",
                   "GetAuditHead",
                   kPurpose,
                   {ServiceFlag()},
                   {},
                   {"heads",
                    {{"SERVICE", "service"},
                     {"CHAIN", "chain"},
                     {"SEQ", "seq"},
                     {"HASH", "hash"}}},
                   "",
                   OnService});
  verbs.push_back(
      {"audit",
       "verify",
       "recompute the hash chains and check the witnessed checkpoints; "
       "restores from a backup are listed under the table",
       "identity",
       "VerifyAuditChain",
       kPurpose,
       {ServiceFlag(),
        {"chain", "chain", "CHANGES or READS (default: both)"},
        {"witness-timeout-ms", "witness_timeout_ms",
         "how long to wait for witnesses"}},
       {},
       {"chains",
        {{"CHAIN", "chain"},
         {"INTACT", "intact"},
         {"RECORDS", "records_checked"},
         {"CHECKPOINTS", "checkpoints_checked"},
         {"FIRST BAD SEQ", "first_bad_seq"},
         {"PROBLEM", "problem"}},
        PrintRestores},
       "",
       OnService});
  verbs.push_back({"audit",
                   "list",
                   "audit records of a person or an agency",
                   "identity",
                   "ListAuditRecords",
                   kPurpose,
                   {ServiceFlag(),
                    {"person", "person", "persons/{id}"},
                    {"agency", "agency", "agencies/{id}"},
                    {"from", "start_time", "RFC 3339 time"},
                    {"to", "end_time", "RFC 3339 time"},
                    {"chain", "chain", "CHANGES or READS"},
                    {"page-size", "page_size", "at most this many"},
                    {"page-token", "page_token", "continue a listing"}},
                   {},
                   {"records",
                    {{"SEQ", "seq"},
                     {"TIME", "time"},
                     {"AGENCY", "agency"},
                     {"ACTOR", "actor"},
                     {"PURPOSE", "purpose"},
                     {"OPERATION", "operation"},
                     {"RESOURCE", "resource"},
                     {"OUTCOME", "outcome"}}},
                   "",
                   OnService});
  return verbs;
}

}  // namespace lotse::lotsectl
