#include "services/identity/service/identity_service.h"

#include <optional>
#include <utility>

#include "common/errors/status.h"
#include "services/identity/store/agency_store.h"

namespace lotse::identity {

using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

absl::StatusOr<AgencyRecord> CheckCaller(Transaction& tx,
                                         const RequestContext& rc) {
  absl::StatusOr<std::optional<AgencyRecord>> found =
      FindAgencyByCertificate(tx, rc.caller.agency_id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                           "UNKNOWN_AGENCY",
                           "the client certificate belongs to no registered "
                           "agency");
  }
  const AgencyRecord& agency = **found;
  if (agency.legal_domain != rc.caller.legal_domain) {
    return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                           "LEGAL_DOMAIN_MISMATCH",
                           "the client certificate's legal domain differs "
                           "from the registered one");
  }
  if (agency.state == AgencyState::kSuspended) {
    return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                           "AGENCY_SUSPENDED", "the agency is suspended");
  }
  return agency;
}

absl::Status IdentityServiceImpl::CommitWrite(
    const std::function<absl::Status(Transaction&)>& body) {
  return runtime_.Write(body);
}

IdentityServiceImpl::IdentityServiceImpl(server::ServiceRuntime& runtime)
    : UnaryService(runtime.env, v1::IdentityService::service_full_name()),
      runtime_(runtime) {
  call_env_.service = v1::IdentityService::service_full_name();
  call_env_.db = runtime_.database;
  call_env_.commit_write =
      [this](const std::function<absl::Status(Transaction&)>& body) {
        return runtime_.Write(body);
      };
  // Identity is the registry: its callers are resolved from its own table.
  call_env_.resolve_caller = ResolveRegistryCaller;
  RegisterAgencyRpcs();
  RegisterPersonRpcs();
  RegisterAccessRpcs();
}

void IdentityServiceImpl::RegisterAgencyRpcs() {
  Handle("RegisterAgency", this, &IdentityServiceImpl::DoRegister);
  Handle("GetAgency", this, &IdentityServiceImpl::DoGet);
  Handle("ListAgencies", this, &IdentityServiceImpl::DoList);
  Handle("UpdateAgency", this, &IdentityServiceImpl::DoUpdate);
  Handle("SuspendAgency",
         [this](const RequestContext& rc, const v1::SuspendAgencyRequest& r,
                v1::Agency* out) {
           return DoChangeState(rc, "SuspendAgency", r.name(), r.etag(),
                                /*suspend=*/true, r.reason(), out);
         });
  Handle("ReactivateAgency",
         [this](const RequestContext& rc, const v1::ReactivateAgencyRequest& r,
                v1::Agency* out) {
           return DoChangeState(rc, "ReactivateAgency", r.name(), r.etag(),
                                /*suspend=*/false, "", out);
         });
}

void IdentityServiceImpl::RegisterPersonRpcs() {
  Handle("CreatePerson", this, &IdentityServiceImpl::DoCreatePerson);
  Handle("GetPerson", this, &IdentityServiceImpl::DoGetPerson);
  Handle("UpdatePerson", this, &IdentityServiceImpl::DoUpdatePerson);
  Handle("ListPersons", this, &IdentityServiceImpl::DoListPersons);
  Handle("SearchPersons", this, &IdentityServiceImpl::DoSearchPersons);
  Handle("FindDuplicates", this, &IdentityServiceImpl::DoFindDuplicates);
  Handle("MergePersons", this, &IdentityServiceImpl::DoMergePersons);
  Handle("LinkAgencyId", this, &IdentityServiceImpl::DoLinkAgencyId);
  Handle("UnlinkAgencyId", this, &IdentityServiceImpl::DoUnlinkAgencyId);
  Handle("ListAgencyIds", this, &IdentityServiceImpl::DoListAgencyIds);
  Handle("LookupPersonByAgencyId",
         [this](const RequestContext& rc,
                const v1::LookupPersonByAgencyIdRequest& r, v1::Person* out) {
           return DoLookupPersonByAgencyId(rc, r, out);
         });
}

}  // namespace lotse::identity
