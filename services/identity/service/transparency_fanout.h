// Gathering a person's audit records from the four services for the
// transparency report (transparency_handlers.cc): identity's own chains read
// locally, the other services' through their AuditService.ListAuditRecords
// with identity's service certificate.
//
// Every source is asked on a thread of its own, all at once, for every
// person id the report covers, page by page, until its last page or the
// deadline. A source that has not delivered all its pages by the deadline,
// or that failed, is missing: none of its records are used (a partial
// answer would look complete), and the report names it.
#ifndef LOTSE_SERVICES_IDENTITY_SERVICE_TRANSPARENCY_FANOUT_H_
#define LOTSE_SERVICES_IDENTITY_SERVICE_TRANSPARENCY_FANOUT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/audit/audit_log.h"
#include "common/storage/database.h"
#include "grpcpp/channel.h"
#include "lotse/audit/v1/audit_service.grpc.pb.h"
#include "lotse/audit/v1/audit_service.pb.h"
#include "services/identity/domain/transparency.h"

namespace lotse::identity {

// One service's audit records, one page per call. Implementations must be
// thread-safe; they should honour `deadline` (the gathering does not wait
// past it either way).
class AuditRecordSource {
 public:
  virtual ~AuditRecordSource() = default;
  // The same contract as lotse.audit.v1.AuditService.ListAuditRecords.
  virtual absl::StatusOr<lotse::audit::v1::ListAuditRecordsResponse> List(
      const lotse::audit::v1::ListAuditRecordsRequest& request,
      absl::Time deadline) = 0;
};

// A named source: "cases" and the channel to it.
struct AuditPeer {
  std::string service;
  std::shared_ptr<AuditRecordSource> source;
};

// Asks another service over gRPC. Calls carry x-lotse-actor "svc-identity"
// and x-lotse-purpose "transparency-report"; the channel carries identity's
// service certificate.
class GrpcAuditRecordSource final : public AuditRecordSource {
 public:
  explicit GrpcAuditRecordSource(std::shared_ptr<grpc::Channel> channel);
  absl::StatusOr<lotse::audit::v1::ListAuditRecordsResponse> List(
      const lotse::audit::v1::ListAuditRecordsRequest& request,
      absl::Time deadline) override;

 private:
  std::unique_ptr<lotse::audit::v1::AuditService::Stub> stub_;
};

// Reads identity's own chains in-process: the change chain in `changes`,
// the read chain in `reads` (null: in `changes` too). Both databases must
// outlive the source. Records are about a person when they name the person
// (audit::AuditRecord::persons); merged ids are not resolved here: the
// report asks for each of them.
class LocalAuditRecordSource final : public AuditRecordSource {
 public:
  LocalAuditRecordSource(storage::Database& changes, storage::Database* reads);
  absl::StatusOr<lotse::audit::v1::ListAuditRecordsResponse> List(
      const lotse::audit::v1::ListAuditRecordsRequest& request,
      absl::Time deadline) override;

 private:
  storage::Database& changes_;
  storage::Database* reads_;
};

// An audit record of common/audit as the contract's message.
lotse::audit::v1::AuditRecord ToProto(const audit::AuditRecord& record,
                                      absl::string_view service,
                                      audit::Chain chain);

struct GatheredRecords {
  // The services that delivered every page, with their records.
  std::vector<ServiceRecords> records;
  std::vector<std::string> answered;
  // The services that did not, in the order of `peers`.
  std::vector<std::string> missing;
};

// Asks every peer for the records about each of `persons`
// ("persons/{person}") between `start` and `end` (InfinitePast /
// InfiniteFuture: unbounded), as described at the top of this file, and
// returns by `deadline` at the latest.
GatheredRecords GatherAuditRecords(const std::vector<AuditPeer>& peers,
                                   const std::vector<std::string>& persons,
                                   absl::Time start, absl::Time end,
                                   absl::Time deadline);

// Parses "--audit_peers": "cases=host:port,courses=host:port,...". Empty
// text is no peer. INVALID_ARGUMENT for a malformed entry, a name given
// twice or a name that is not one of cases, courses, placement.
struct AuditPeerAddress {
  std::string service;
  std::string address;
};
absl::StatusOr<std::vector<AuditPeerAddress>> ParseAuditPeers(
    absl::string_view text);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_SERVICE_TRANSPARENCY_FANOUT_H_
