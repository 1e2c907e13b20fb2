// The agency registry RPCs of IdentityServiceImpl (RegisterAgency,
// GetAgency, ListAgencies, UpdateAgency, SuspendAgency, ReactivateAgency)
// and the start-up registration of the first administering agency.
//
// Changes run in one write phase (AuditedCall::Write): the registry lock,
// the change, its Agency* event and the audit record commit together.
// Reads run in a read-only transaction and commit their audit record
// before they answer.
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/agencies/audited_call.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/api/time.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/type/v1/legal_domain.pb.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/agency_store.h"

namespace lotse::identity {
namespace {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::api::StoreNow;
using ::lotse::api::ToTimestamp;
using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;
using ::lotse::type::v1::LegalDomain;

constexpr absl::string_view kDomainPrefix = "LEGAL_DOMAIN_";

// Identity's callers by certificate identity: the records of identity's own
// registry, kept in memory like the other services' local registry (see
// agencies::CallerCache for when an entry is believed). Every change to the
// registry below goes through InvalidateWith, so a suspension applied by
// this process refuses the agency's next call; other identity replicas on
// the same PostgreSQL database notice it within agencies::kCallerCacheTtl.
agencies::CallerCache& RegistryCallerCache() {
  static agencies::CallerCache* const cache = new agencies::CallerCache();
  return *cache;
}

// "KOMMUNE" for LEGAL_DOMAIN_KOMMUNE; "" for UNSPECIFIED or unknown values.
std::string ShortDomainName(int value) {
  if (value == type::v1::LEGAL_DOMAIN_UNSPECIFIED ||
      !type::v1::LegalDomain_IsValid(value)) {
    return "";
  }
  const std::string& full =
      type::v1::LegalDomain_Name(static_cast<LegalDomain>(value));
  return full.substr(kDomainPrefix.size());
}

LegalDomain DomainFromShortName(const std::string& name) {
  LegalDomain domain = type::v1::LEGAL_DOMAIN_UNSPECIFIED;
  type::v1::LegalDomain_Parse(absl::StrCat(kDomainPrefix, name), &domain);
  return domain;
}

// Adds a violation when a required domain is missing or not a known value.
std::string ValidateDomain(int value, const std::string& field,
                           FieldViolations* violations) {
  if (value == type::v1::LEGAL_DOMAIN_UNSPECIFIED) {
    violations->Add(field, "is required");
  } else if (!type::v1::LegalDomain_IsValid(value)) {
    violations->Add(field, absl::StrCat("unknown legal domain ", value));
  }
  return ShortDomainName(value);
}

void ToProto(const AgencyRecord& r, v1::Agency* out) {
  out->Clear();
  out->set_name(AgencyResourceName(r.id));
  out->set_display_name(r.display_name);
  out->set_legal_domain(DomainFromShortName(r.legal_domain));
  out->set_municipality_code(r.municipality_code);
  out->set_certificate_identity(r.certificate_identity);
  out->set_state(r.state == AgencyState::kSuspended ? v1::AGENCY_STATE_SUSPENDED
                                                    : v1::AGENCY_STATE_ACTIVE);
  out->set_suspension_reason(r.suspension_reason);
  out->set_etag(api::ComputeEtag(AgencyResourceName(r.id), r.version));
  *out->mutable_create_time() = ToTimestamp(r.create_time);
  *out->mutable_update_time() = ToTimestamp(r.update_time);
}

// Records an agency event in the outbox of `tx` (before the audit record:
// the outbox lock comes first, see outbox.h).
template <typename AgencyEvent>
absl::Status EnqueueAgencyEvent(Transaction& tx, const AgencyRecord& record) {
  AgencyEvent payload;
  ToProto(record, payload.mutable_agency());
  lotse::events::v1::Event event;
  event.set_ordering_key(AgencyResourceName(record.id));
  event.set_source("identity");
  event.mutable_payload()->PackFrom(payload);
  return events::EnqueueEvent(tx, std::move(event));
}

absl::Status RequireAdministration(const LocalAgency& caller) {
  if (caller.legal_domain == kAdministrationDomain) return absl::OkStatus();
  return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                         "WRONG_LEGAL_DOMAIN",
                         "only ADMINISTRATION agencies may change the "
                         "agency registry");
}

absl::Status NotFound(const std::string& id) {
  return ErrorWithReason(absl::StatusCode::kNotFound, "AGENCY_NOT_FOUND",
                         absl::StrCat("no agency ", AgencyResourceName(id)));
}

absl::Status CertificateIdentityTaken(const AgencyRecord& holder) {
  return ErrorWithReason(absl::StatusCode::kAlreadyExists,
                         "CERTIFICATE_IDENTITY_TAKEN",
                         "the certificate identity is bound to another agency",
                         {{"agency", AgencyResourceName(holder.id)}});
}

// Loads the agency `id` for a change under the registry lock, and checks
// the caller's etag against it.
absl::StatusOr<AgencyRecord> LoadForChange(Transaction& tx,
                                           const std::string& id,
                                           absl::string_view etag) {
  if (absl::Status s = LockAgencies(tx); !s.ok()) return s;
  absl::StatusOr<std::optional<AgencyRecord>> found = ReadAgency(tx, id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return NotFound(id);
  AgencyRecord record = **found;
  absl::Status fresh = api::CheckEtag(
      etag, api::ComputeEtag(AgencyResourceName(id), record.version));
  if (!fresh.ok()) return fresh;
  return record;
}

// Writes a changed record (version and update time advanced).
absl::Status StoreChange(Transaction& tx, AgencyRecord* record) {
  RegistryCallerCache().InvalidateWith(tx);
  const int64_t old_version = record->version;
  record->version = old_version + 1;
  record->update_time = StoreNow();
  absl::StatusOr<bool> updated = WriteAgency(tx, *record, old_version);
  if (!updated.ok()) return updated.status();
  if (!*updated) {
    // Cannot happen under the registry lock; treat like a lost race.
    return api::CheckEtag("", "changed");
  }
  return absl::OkStatus();
}

// The resource a request names, for the audit trail: the agency when the
// name is well-formed, else the collection (never unvalidated bytes).
std::string AuditTarget(absl::string_view name) {
  FieldViolations ignored;
  const std::string id = ParseAgencyName(name, "name", &ignored);
  return id.empty() ? "agencies" : AgencyResourceName(id);
}

// RegisterAgency's fields; returns the agency's short legal domain.
std::string ValidateRegistration(const v1::RegisterAgencyRequest& request,
                                 FieldViolations* violations) {
  api::ValidateRequestId(request.request_id(), "request_id", violations);
  ValidateAgencyId(request.agency_id(), "agency_id", violations);
  const v1::Agency& agency = request.agency();
  if (!request.has_agency()) violations->Add("agency", "is required");
  ValidateDisplayName(agency.display_name(), "agency.display_name", violations);
  const std::string domain =
      ValidateDomain(agency.legal_domain(), "agency.legal_domain", violations);
  if (!domain.empty()) {
    ValidateMunicipalityCode(agency.municipality_code(), domain,
                             "agency.municipality_code", violations);
  }
  ValidateCertificateIdentity(agency.certificate_identity(),
                              "agency.certificate_identity", violations);
  return domain;
}

// Which fields an UpdateAgency request changes.
struct AgencyUpdate {
  std::string id;
  bool display_name = false;
  bool municipality_code = false;
  bool certificate_identity = false;
};

AgencyUpdate ValidateUpdate(const v1::UpdateAgencyRequest& request,
                            FieldViolations* violations) {
  AgencyUpdate update;
  const v1::Agency& agency = request.agency();
  if (!request.has_agency()) violations->Add("agency", "is required");
  update.id = ParseAgencyName(agency.name(), "agency.name", violations);
  if (agency.etag().empty()) violations->Add("agency.etag", "is required");
  if (request.update_mask().paths().empty()) {
    violations->Add("update_mask", "is required");
  }
  for (int i = 0; i < request.update_mask().paths_size(); ++i) {
    const std::string& path = request.update_mask().paths(i);
    const std::string field = absl::StrCat("update_mask.paths[", i, "]");
    if (path == "display_name") {
      update.display_name = true;
      ValidateDisplayName(agency.display_name(), "agency.display_name",
                          violations);
    } else if (path == "municipality_code") {
      update.municipality_code = true;
      // Whether it may be empty depends on the stored domain (DoUpdate).
      ValidateMunicipalityCode(agency.municipality_code(), "",
                               "agency.municipality_code", violations);
    } else if (path == "certificate_identity") {
      update.certificate_identity = true;
      ValidateCertificateIdentity(agency.certificate_identity(),
                                  "agency.certificate_identity", violations);
    } else if (path == "legal_domain" || path == "state") {
      violations->Add(field,
                      absl::StrCat(path, " cannot be changed by UpdateAgency"));
    } else {
      violations->Add(field,
                      "must be display_name, municipality_code or "
                      "certificate_identity");
    }
  }
  return update;
}

// ListAgencies' filter from the request.
AgencyFilter ValidateFilter(const v1::ListAgenciesRequest& request,
                            FieldViolations* violations) {
  AgencyFilter filter;
  if (request.legal_domain() != type::v1::LEGAL_DOMAIN_UNSPECIFIED) {
    filter.legal_domain =
        ValidateDomain(request.legal_domain(), "legal_domain", violations);
  }
  if (!request.municipality_code().empty()) {
    ValidateMunicipalityCode(request.municipality_code(), "",
                             "municipality_code", violations);
    filter.municipality_code = request.municipality_code();
  }
  switch (request.state()) {
    case v1::AGENCY_STATE_UNSPECIFIED:
      break;
    case v1::AGENCY_STATE_ACTIVE:
      filter.state = AgencyState::kActive;
      break;
    case v1::AGENCY_STATE_SUSPENDED:
      filter.state = AgencyState::kSuspended;
      break;
    default:
      violations->Add("state", absl::StrCat("unknown agency state ",
                                            static_cast<int>(request.state())));
  }
  return filter;
}

}  // namespace

agencies::LocalAgency ToLocalAgency(const AgencyRecord& record) {
  agencies::LocalAgency agency;
  agency.id = record.id;
  agency.legal_domain = record.legal_domain;
  agency.municipality_code = record.municipality_code;
  agency.certificate_identity = record.certificate_identity;
  agency.suspended = record.state == AgencyState::kSuspended;
  agency.update_us = absl::ToUnixMicros(record.update_time);
  return agency;
}

absl::StatusOr<agencies::LocalAgency> ResolveRegistryCaller(
    Transaction& tx, const server::CallerIdentity& caller) {
  absl::StatusOr<std::optional<LocalAgency>> found = RegistryCallerCache().Find(
      caller.agency_id, [&]() -> absl::StatusOr<std::optional<LocalAgency>> {
        absl::StatusOr<std::optional<AgencyRecord>> record =
            FindAgencyByCertificate(tx, caller.agency_id);
        if (!record.ok()) return record.status();
        if (!record->has_value()) return std::nullopt;
        return std::optional<LocalAgency>(ToLocalAgency(**record));
      });
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                           "UNKNOWN_AGENCY",
                           "the client certificate belongs to no registered "
                           "agency");
  }
  const LocalAgency& agency = **found;
  if (agency.legal_domain != caller.legal_domain) {
    return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                           "LEGAL_DOMAIN_MISMATCH",
                           "the client certificate's legal domain differs "
                           "from the registered one");
  }
  if (agency.suspended) {
    return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                           "AGENCY_SUSPENDED", "the agency is suspended");
  }
  return **std::move(found);
}

absl::Status BootstrapAdminAgency(storage::Database& db,
                                  const std::string& agency_id) {
  FieldViolations violations;
  if (!ValidateAgencyId(agency_id, "bootstrap_admin_agency", &violations)) {
    return violations.ToStatus();
  }
  return storage::RunInTransaction(db, [&](Transaction& tx) -> absl::Status {
    if (absl::Status s = LockAgencies(tx); !s.ok()) return s;
    absl::StatusOr<std::optional<AgencyRecord>> found =
        ReadAgency(tx, agency_id);
    if (!found.ok()) return found.status();
    if (found->has_value()) return absl::OkStatus();
    AgencyRecord record;
    record.id = agency_id;
    record.display_name = "Lotse administration (bootstrap)";
    record.legal_domain = kAdministrationDomain;
    record.certificate_identity = agency_id;
    record.create_time = record.update_time = StoreNow();
    RegistryCallerCache().InvalidateWith(tx);
    absl::StatusOr<bool> inserted = InsertAgency(tx, record);
    if (!inserted.ok()) return inserted.status();
    if (!*inserted) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot bootstrap ", AgencyResourceName(agency_id),
                       ": its certificate identity is taken"));
    }
    if (absl::Status s = EnqueueAgencyEvent<v1::AgencyRegistered>(tx, record);
        !s.ok()) {
      return s;
    }
    audit::AuditRecord audit;
    audit.agency_id = "identity";
    audit.legal_domain = server::kServiceDomain;
    audit.actor = "startup";
    audit.purpose = "bootstrap";
    audit.operation = "identity/BootstrapAdminAgency";
    audit.resource = AgencyResourceName(agency_id);
    return audit::AppendAudit(tx, audit);
  });
}

absl::Status IdentityServiceImpl::DoRegister(
    const RequestContext& rc, const v1::RegisterAgencyRequest& request,
    v1::Agency* response) {
  AuditedCall call(call_env_, rc, "RegisterAgency",
                   AuditTarget(AgencyResourceName(request.agency_id())));
  return call.Finish(call.Write([&](Transaction& tx,
                                    const LocalAgency& caller) -> absl::Status {
    if (absl::Status s = RequireAdministration(caller); !s.ok()) return s;
    FieldViolations violations;
    const std::string domain = ValidateRegistration(request, &violations);
    if (!violations.empty()) return violations.ToStatus();
    const std::string name = AgencyResourceName(request.agency_id());
    call.set_target(name);

    // The same request_id and content returns the first result.
    const api::IdempotentCreate once(caller.id, rc.method, request);
    absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
    if (!seen.ok()) return seen.status();
    if (absl::Status s = LockAgencies(tx); !s.ok()) return s;
    if (seen->has_value()) {
      absl::StatusOr<std::optional<AgencyRecord>> first =
          ReadAgency(tx, request.agency_id());
      if (!first.ok()) return first.status();
      if (!first->has_value()) return NotFound(request.agency_id());
      ToProto(**first, response);
      return absl::OkStatus();
    }

    const v1::Agency& agency = request.agency();
    absl::StatusOr<std::optional<AgencyRecord>> same_id =
        ReadAgency(tx, request.agency_id());
    if (!same_id.ok()) return same_id.status();
    if (same_id->has_value()) {
      return ErrorWithReason(absl::StatusCode::kAlreadyExists, "AGENCY_EXISTS",
                             absl::StrCat(name, " is already registered"),
                             {{"agency", name}});
    }
    absl::StatusOr<std::optional<AgencyRecord>> same_cert =
        FindAgencyByCertificate(tx, agency.certificate_identity());
    if (!same_cert.ok()) return same_cert.status();
    if (same_cert->has_value()) return CertificateIdentityTaken(**same_cert);

    AgencyRecord record;
    record.id = request.agency_id();
    record.display_name = agency.display_name();
    record.legal_domain = domain;
    record.municipality_code = agency.municipality_code();
    record.certificate_identity = agency.certificate_identity();
    record.create_time = record.update_time = StoreNow();
    RegistryCallerCache().InvalidateWith(tx);
    absl::StatusOr<bool> inserted = InsertAgency(tx, record);
    if (!inserted.ok()) return inserted.status();
    if (!*inserted) {
      return ErrorWithReason(absl::StatusCode::kAlreadyExists, "AGENCY_EXISTS",
                             "agency id or certificate identity is taken");
    }
    if (absl::Status s = once.Record(tx, name); !s.ok()) return s;
    if (absl::Status s = EnqueueAgencyEvent<v1::AgencyRegistered>(tx, record);
        !s.ok()) {
      return s;
    }
    ToProto(record, response);
    return absl::OkStatus();
  }));
}

absl::Status IdentityServiceImpl::DoGet(const RequestContext& rc,
                                        const v1::GetAgencyRequest& request,
                                        v1::Agency* response) {
  AuditedCall call(call_env_, rc, "GetAgency", AuditTarget(request.name()));
  // Services ask for agencies whose events have not reached them yet
  // (common/agencies/registry.h).
  call.admit_services();
  return call.Finish(call.Read([&](Transaction& tx,
                                   const LocalAgency&) -> absl::Status {
    FieldViolations violations;
    const std::string id = ParseAgencyName(request.name(), "name", &violations);
    if (!violations.empty()) return violations.ToStatus();
    call.set_target(AgencyResourceName(id));
    absl::StatusOr<std::optional<AgencyRecord>> found = ReadAgency(tx, id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return NotFound(id);
    ToProto(**found, response);
    return absl::OkStatus();
  }));
}

absl::Status IdentityServiceImpl::DoList(const RequestContext& rc,
                                         const v1::ListAgenciesRequest& request,
                                         v1::ListAgenciesResponse* response) {
  AuditedCall call(call_env_, rc, "ListAgencies", "agencies");
  return call.Finish(call.Read([&](Transaction& tx,
                                   const LocalAgency&) -> absl::Status {
    FieldViolations violations;
    const int page_size =
        api::NormalizePageSize(request.page_size(), "page_size", &violations);
    const AgencyFilter filter = ValidateFilter(request, &violations);
    // A token is valid only with the filters it was issued for.
    const std::string fingerprint = absl::StrCat(
        static_cast<int>(request.legal_domain()), "|",
        request.municipality_code(), "|", static_cast<int>(request.state()));
    const std::string after = api::DecodePageToken(
        request.page_token(), fingerprint, "page_token", &violations);
    if (!violations.empty()) return violations.ToStatus();

    // One extra row tells whether another page follows.
    absl::StatusOr<std::vector<AgencyRecord>> rows =
        QueryAgencies(tx, filter, after, page_size + 1);
    if (!rows.ok()) return rows.status();
    response->Clear();
    const bool more = static_cast<int>(rows->size()) > page_size;
    if (more) rows->resize(page_size);
    for (const AgencyRecord& r : *rows) ToProto(r, response->add_agencies());
    if (more) {
      response->set_next_page_token(
          api::EncodePageToken(fingerprint, rows->back().id));
    }
    return absl::OkStatus();
  }));
}

absl::Status IdentityServiceImpl::DoUpdate(
    const RequestContext& rc, const v1::UpdateAgencyRequest& request,
    v1::Agency* response) {
  AuditedCall call(call_env_, rc, "UpdateAgency",
                   AuditTarget(request.agency().name()));
  return call.Finish(call.Write(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        if (absl::Status s = RequireAdministration(caller); !s.ok()) return s;
        FieldViolations violations;
        const AgencyUpdate update = ValidateUpdate(request, &violations);
        if (!violations.empty()) return violations.ToStatus();
        call.set_target(AgencyResourceName(update.id));

        const v1::Agency& agency = request.agency();
        absl::StatusOr<AgencyRecord> record =
            LoadForChange(tx, update.id, agency.etag());
        if (!record.ok()) return record.status();
        if (update.municipality_code && agency.municipality_code().empty() &&
            record->legal_domain == "KOMMUNE") {
          violations.Add("agency.municipality_code",
                         "is required for KOMMUNE agencies");
          return violations.ToStatus();
        }
        if (update.certificate_identity &&
            agency.certificate_identity() != record->certificate_identity) {
          absl::StatusOr<std::optional<AgencyRecord>> holder =
              FindAgencyByCertificate(tx, agency.certificate_identity());
          if (!holder.ok()) return holder.status();
          if (holder->has_value()) return CertificateIdentityTaken(**holder);
        }
        if (update.display_name) record->display_name = agency.display_name();
        if (update.municipality_code) {
          record->municipality_code = agency.municipality_code();
        }
        if (update.certificate_identity) {
          record->certificate_identity = agency.certificate_identity();
        }
        if (absl::Status s = StoreChange(tx, &*record); !s.ok()) return s;
        if (absl::Status s = EnqueueAgencyEvent<v1::AgencyUpdated>(tx, *record);
            !s.ok()) {
          return s;
        }
        ToProto(*record, response);
        return absl::OkStatus();
      }));
}

absl::Status IdentityServiceImpl::DoChangeState(
    const RequestContext& rc, absl::string_view method, absl::string_view name,
    absl::string_view etag, bool suspend, absl::string_view reason,
    v1::Agency* response) {
  AuditedCall call(call_env_, rc, method, AuditTarget(name));
  return call.Finish(call.Write(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        if (absl::Status s = RequireAdministration(caller); !s.ok()) return s;
        FieldViolations violations;
        const std::string id = ParseAgencyName(name, "name", &violations);
        if (etag.empty()) violations.Add("etag", "is required");
        if (suspend) ValidateSuspensionReason(reason, "reason", &violations);
        if (!violations.empty()) return violations.ToStatus();
        call.set_target(AgencyResourceName(id));

        absl::StatusOr<AgencyRecord> record = LoadForChange(tx, id, etag);
        if (!record.ok()) return record.status();
        if (suspend) {
          // An administration that locks itself out may leave no one able to
          // undo it.
          if (id == caller.id) {
            return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                                   "SELF_SUSPENSION",
                                   "an agency cannot suspend itself");
          }
          if (record->state == AgencyState::kSuspended) {
            return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                                   "AGENCY_ALREADY_SUSPENDED",
                                   "the agency is already suspended");
          }
          record->state = AgencyState::kSuspended;
          record->suspension_reason = std::string(reason);
        } else {
          if (record->state != AgencyState::kSuspended) {
            return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                                   "AGENCY_NOT_SUSPENDED",
                                   "the agency is not suspended");
          }
          record->state = AgencyState::kActive;
          record->suspension_reason.clear();
        }
        if (absl::Status s = StoreChange(tx, &*record); !s.ok()) return s;
        absl::Status enqueued =
            suspend ? EnqueueAgencyEvent<v1::AgencySuspended>(tx, *record)
                    : EnqueueAgencyEvent<v1::AgencyReactivated>(tx, *record);
        if (!enqueued.ok()) return enqueued;
        ToProto(*record, response);
        return absl::OkStatus();
      }));
}

}  // namespace lotse::identity
