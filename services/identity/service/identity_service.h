// The gRPC face of the identity service: lotse.identity.v1.IdentityService.
//
// Implemented so far: the agency registry (RegisterAgency, GetAgency,
// ListAgencies, UpdateAgency, SuspendAgency, ReactivateAgency). Every other
// RPC answers UNIMPLEMENTED (the generated base class's behaviour) until its
// issue is done.
//
// Every implemented RPC, in one read-write transaction:
//   1. resolves the caller against the registry (CheckCaller): the client
//      certificate's identity must belong to a registered, ACTIVE agency of
//      the certificate's legal domain;
//   2. checks the caller's domain where the RPC demands one, validates the
//      request (all bad fields at once), does the work, enqueues the event;
//   3. appends an ALLOWED audit record in the same transaction.
// A call that fails at any step rolls back and is audited on its own
// (DENIED for PERMISSION_DENIED, ERROR otherwise, with the reason code).
#ifndef LOTSE_SERVICES_IDENTITY_SERVICE_IDENTITY_SERVICE_H_
#define LOTSE_SERVICES_IDENTITY_SERVICE_IDENTITY_SERVICE_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/server/request_context.h"
#include "common/server/service_main.h"
#include "common/storage/database.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "services/identity/domain/agency.h"

namespace lotse::identity {

// The calling agency of `rc`, looked up in the registry by its certificate
// identity (for now the certificate's CN, which the server runtime reports
// as rc.caller.agency_id). PERMISSION_DENIED with reason UNKNOWN_AGENCY
// when no agency is bound to it, LEGAL_DOMAIN_MISMATCH when the
// certificate's domain (OU) is not the registered one, AGENCY_SUSPENDED
// when the agency is suspended. Every identity RPC calls this first, in its
// own transaction, so a suspension takes effect on the very next call.
absl::StatusOr<AgencyRecord> CheckCaller(storage::Transaction& tx,
                                         const server::RequestContext& rc);

// Registers the deployment's first administering agency: id and
// certificate identity `agency_id`, domain ADMINISTRATION, so that its
// certificate (dev PKI: clients/lotse-admin) can register all others.
// Does nothing when an agency with that id exists — in particular it never
// reactivates a suspended one. Emits AgencyRegistered and audits the
// registration (agency "identity", actor "startup"). FAILED_PRECONDITION
// when another agency already holds the certificate identity.
absl::Status BootstrapAdminAgency(storage::Database& db,
                                  const std::string& agency_id);

class IdentityServiceImpl final : public v1::IdentityService::CallbackService {
 public:
  explicit IdentityServiceImpl(server::ServiceRuntime& runtime)
      : runtime_(runtime) {}

  grpc::ServerUnaryReactor* RegisterAgency(
      grpc::CallbackServerContext* context,
      const v1::RegisterAgencyRequest* request, v1::Agency* response) override;
  grpc::ServerUnaryReactor* GetAgency(grpc::CallbackServerContext* context,
                                      const v1::GetAgencyRequest* request,
                                      v1::Agency* response) override;
  grpc::ServerUnaryReactor* ListAgencies(
      grpc::CallbackServerContext* context,
      const v1::ListAgenciesRequest* request,
      v1::ListAgenciesResponse* response) override;
  grpc::ServerUnaryReactor* UpdateAgency(grpc::CallbackServerContext* context,
                                         const v1::UpdateAgencyRequest* request,
                                         v1::Agency* response) override;
  grpc::ServerUnaryReactor* SuspendAgency(
      grpc::CallbackServerContext* context,
      const v1::SuspendAgencyRequest* request, v1::Agency* response) override;
  grpc::ServerUnaryReactor* ReactivateAgency(
      grpc::CallbackServerContext* context,
      const v1::ReactivateAgencyRequest* request,
      v1::Agency* response) override;

 private:
  // Work of one RPC inside its transaction, given the resolved caller.
  // Sets *resource to the resource it touched, for the audit record.
  using Body = std::function<absl::Status(storage::Transaction& tx,
                                          const AgencyRecord& caller,
                                          std::string* resource)>;

  // Steps 1-3 of the header comment around `body`, with the audit records.
  // `resource` names what the request targets for the audit record of a
  // call refused before `body` ran (e.g. an unknown caller).
  absl::Status RunAudited(const server::RequestContext& rc,
                          absl::string_view method, const std::string& resource,
                          const Body& body);

  absl::Status DoRegister(const server::RequestContext& rc,
                          const v1::RegisterAgencyRequest& request,
                          v1::Agency* response);
  absl::Status DoGet(const server::RequestContext& rc,
                     const v1::GetAgencyRequest& request, v1::Agency* response);
  absl::Status DoList(const server::RequestContext& rc,
                      const v1::ListAgenciesRequest& request,
                      v1::ListAgenciesResponse* response);
  absl::Status DoUpdate(const server::RequestContext& rc,
                        const v1::UpdateAgencyRequest& request,
                        v1::Agency* response);
  // SuspendAgency (suspend = true) and ReactivateAgency.
  absl::Status DoChangeState(const server::RequestContext& rc,
                             absl::string_view method, absl::string_view name,
                             absl::string_view etag, bool suspend,
                             absl::string_view reason, v1::Agency* response);

  server::ServiceRuntime& runtime_;
};

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_SERVICE_IDENTITY_SERVICE_H_
