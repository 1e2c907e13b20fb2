// The rules of a person's transparency report (transparency.proto): how
// the audit records the four services hold about the person become one
// chronological list a citizen can read.
//
// Free of gRPC and storage: the handler (transparency_handlers.h) gathers
// the records and the agency registry's facts and passes them in here.
//
// Wording: every audited operation gets a stable machine code and an
// English description. For an RPC the code is "<what>.<verb>" derived from
// the method name, which the contracts never rename (buf breaking), e.g.
// GetCurrentResidenceStatus -> "residence_status.read", "read your
// residence status". A few methods have a wording of their own
// (CheckAccess, MergePersons, the searches). A disclosure by event
// ("event:{type}") is "event.disclosed". An operation the rules cannot
// parse is "other", described with the operation itself, so an entry is
// never dropped for want of words.
#ifndef LOTSE_SERVICES_IDENTITY_DOMAIN_TRANSPARENCY_H_
#define LOTSE_SERVICES_IDENTITY_DOMAIN_TRANSPARENCY_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lotse/audit/v1/audit_service.pb.h"
#include "lotse/identity/v1/transparency.pb.h"
#include "lotse/type/v1/legal_domain.pb.h"

namespace lotse::identity {

// The services whose audit records a report gathers, in the order reports
// list them: "identity", "cases", "courses", "placement".
const std::vector<std::string>& ReportServices();

// What one operation means to the person.
struct OperationWords {
  std::string code;         // e.g. "residence_status.read"
  std::string description;  // e.g. "read your residence status"
};

// The wording of an audited operation: an RPC method
// ("lotse.identity.v1.IdentityService/GetPerson") or a disclosure by event
// ("event:lotse.courses.v1.CourseResultRecorded", with `recipient` the
// record's agency, "services/{service}"). Never fails (see the file
// comment).
OperationWords DescribeOperation(absl::string_view operation,
                                 absl::string_view recipient = "");

// What the registry says about one agency, for the report's entries.
struct AgencyFacts {
  std::string display_name;
  lotse::type::v1::LegalDomain legal_domain =
      lotse::type::v1::LEGAL_DOMAIN_UNSPECIFIED;
};

// Keyed by the agency's resource name, "agencies/{agency}".
using AgencyDirectory = absl::flat_hash_map<std::string, AgencyFacts>;

// The records one service returned.
struct ServiceRecords {
  std::string service;  // "cases"
  std::vector<lotse::audit::v1::AuditRecord> records;
};

// The agencies ("agencies/{agency}") named by any record, each once, in
// first-seen order: what the handler looks up in the registry.
std::vector<std::string> AgenciesNamed(const std::vector<ServiceRecords>& all);

// The entries of a report from every service's records: one entry per
// distinct record (a record is identified by service, chain and seq, so one
// returned twice — asked under a person and under an id merged into it —
// appears once), oldest first, ties broken by the order of
// ReportServices(), then chain, then seq. The entry's service is the one
// that returned the record. Agencies are described from `agencies`; a
// record's own legal domain is kept when the directory does not know the
// agency. A record whose operation starts with "event:" is a disclosure by
// event. Left out: the records of identity asking a service for a report's
// records (ListAuditRecords by "services/svc-identity"), which are part of
// that report's own entry (GetTransparencyReport, recorded by identity)
// and would otherwise add four entries to every later report.
std::vector<v1::TransparencyEntry> BuildReportEntries(
    const std::vector<ServiceRecords>& all, const AgencyDirectory& agencies);

// Who may have a person's report (the RPC's contract in
// identity_service.proto). `caller_domain` is the caller's legal domain
// name ("KOMMUNE"); `person_exists` whether the id names a person (merged
// ids do); `owns_open_case` whether the caller owns an open case of the
// person (relation CASE_OWNER). OK for a DATA_PROTECTION caller about an
// existing person and for the case owner. Otherwise, in this order:
// PERMISSION_DENIED (reason WRONG_LEGAL_DOMAIN) for any other domain,
// whether or not the person exists; NOT_FOUND (reason PERSON_NOT_FOUND) for
// a DATA_PROTECTION caller about an unknown person, whose office is to
// answer access requests and who may learn that an id is wrong;
// PERMISSION_DENIED (reason NOT_CASE_OWNER) for a KOMMUNE that does not own
// an open case of the person, one message whether or not the person
// exists (no existence oracle).
absl::Status DecideReportAccess(absl::string_view caller_domain,
                                bool person_exists, bool owns_open_case);

// The services of ReportServices() not in `answered`, in that order.
std::vector<std::string> MissingServices(
    const std::vector<std::string>& answered);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_DOMAIN_TRANSPARENCY_H_
