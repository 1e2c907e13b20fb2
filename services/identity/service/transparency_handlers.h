// GetTransparencyReport of lotse.identity.v1.IdentityService: a person's
// transparency report (transparency.proto; who may ask: DecideReportAccess
// in services/identity/domain/transparency.h).
//
// One call:
//   1. a read phase (AuditedCall::Read) validates the request, resolves the
//      person (a merged id to its survivor, plus every id merged into it)
//      and decides whether the caller may have the report: the case owner
//      is found in identity's relations (relation CASE_OWNER, which the
//      cases service's events keep current);
//   2. outside any transaction, GatherAuditRecords asks identity's own
//      chains and the other services' AuditService (transparency_fanout.h)
//      for the records about every covered id, within the request's
//      service timeout and the call's deadline;
//   3. a second read phase looks up the agencies named by the records in
//      the registry (display name, legal domain);
//   4. BuildReportEntries merges and words the records; Finish() audits the
//      call against the person (read chain).
// A service that did not answer is named in missing_services; the call
// still succeeds.
#ifndef LOTSE_SERVICES_IDENTITY_SERVICE_TRANSPARENCY_HANDLERS_H_
#define LOTSE_SERVICES_IDENTITY_SERVICE_TRANSPARENCY_HANDLERS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/agencies/audited_call.h"
#include "common/server/request_context.h"
#include "lotse/identity/v1/transparency.pb.h"
#include "services/identity/domain/name_matching.h"
#include "services/identity/service/transparency_fanout.h"

// "cases=host:port,courses=host:port,placement=host:port": where identity
// asks the other services for a report's audit records (their gRPC ports,
// which serve lotse.audit.v1.AuditService). A service left out is named
// missing in every report.
ABSL_DECLARE_FLAG(std::string, audit_peers);

namespace lotse::identity {

class TransparencyReports {
 public:
  // How long a service is waited for when the request does not say, and
  // the most a request may ask for.
  static constexpr absl::Duration kDefaultServiceTimeout = absl::Seconds(5);
  static constexpr absl::Duration kMaxServiceTimeout = absl::Seconds(60);

  // `env` (identity's call environment, whose database holds the registry
  // and the persons) and `matcher` must outlive this. `peers` are asked
  // for records, identity's own chains among them (LocalAuditRecordSource).
  TransparencyReports(const agencies::CallEnvironment& env,
                      std::shared_ptr<const DuplicateMatcher> matcher,
                      std::vector<AuditPeer> peers);

  absl::Status Get(const server::RequestContext& rc,
                   const v1::GetTransparencyReportRequest& request,
                   v1::TransparencyReport* response) const;

 private:
  const agencies::CallEnvironment& env_;
  const std::shared_ptr<const DuplicateMatcher> matcher_;
  const std::vector<AuditPeer> peers_;
};

// The peers of the identity process: its own chains in `changes` and
// `reads` (null: in `changes`), and one GrpcAuditRecordSource per
// --audit_peers entry, calling with identity's service certificate
// (clients/svc-identity under --tls_dir, or plaintext with --insecure_dev).
// INVALID_ARGUMENT for a malformed --audit_peers; the certificate files'
// errors.
absl::StatusOr<std::vector<AuditPeer>> AuditPeersFromFlags(
    storage::Database& changes, storage::Database* reads);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_SERVICE_TRANSPARENCY_HANDLERS_H_
