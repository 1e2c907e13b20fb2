#include "services/identity/service/identity_service.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "common/server/handler.h"
#include "common/server/log.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/type/v1/legal_domain.pb.h"
#include "services/identity/store/agency_store.h"

namespace lotse::identity {
namespace {

using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;
using ::lotse::type::v1::LegalDomain;

// Audit operation names: the RPC's full method without the leading '/'.
constexpr char kRegisterMethod[] =
    "lotse.identity.v1.IdentityService/RegisterAgency";
constexpr char kGetMethod[] = "lotse.identity.v1.IdentityService/GetAgency";
constexpr char kListMethod[] = "lotse.identity.v1.IdentityService/ListAgencies";
constexpr char kUpdateMethod[] =
    "lotse.identity.v1.IdentityService/UpdateAgency";
constexpr char kSuspendMethod[] =
    "lotse.identity.v1.IdentityService/SuspendAgency";
constexpr char kReactivateMethod[] =
    "lotse.identity.v1.IdentityService/ReactivateAgency";

constexpr absl::string_view kDomainPrefix = "LEGAL_DOMAIN_";

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

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  const int64_t micros = absl::ToUnixMicros(t);
  google::protobuf::Timestamp ts;
  int64_t seconds = micros / 1000000;
  int64_t rest = micros % 1000000;
  if (rest < 0) rest += 1000000, --seconds;
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(rest * 1000));
  return ts;
}

// Now, at the precision the store keeps, so that a response equals what a
// later read returns.
absl::Time StoreNow() {
  return absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
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

absl::Status RequireAdministration(const AgencyRecord& caller) {
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

audit::AuditRecord AuditRecordFor(const RequestContext& rc,
                                  const std::string& agency_id,
                                  absl::string_view method,
                                  const std::string& resource) {
  audit::AuditRecord record;
  record.agency_id = agency_id;
  record.legal_domain = rc.caller.legal_domain;
  record.actor = rc.actor;
  record.purpose = rc.purpose;
  record.operation = std::string(method);
  record.resource = resource;
  return record;
}

}  // namespace

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

absl::Status IdentityServiceImpl::CommitWrite(
    const std::function<absl::Status(Transaction&)>& body) {
  // Through the runtime's group committer: concurrent calls' write phases
  // share one commit (and on PostgreSQL one hold of the audit chain lock).
  return runtime_.Write(body);
}

absl::Status IdentityServiceImpl::RunAudited(const RequestContext& rc,
                                             absl::string_view method,
                                             const std::string& target,
                                             bool read_only, const Body& body,
                                             bool admit_services) {
  // Until the caller is resolved, the audit trail names the certificate.
  std::string agency_id = rc.caller.agency_id;
  std::string resource = target;
  // Steps 1 and 2; with `in_write_phase` also step 3.
  auto run = [&](Transaction& tx, bool in_write_phase) -> absl::Status {
    absl::StatusOr<AgencyRecord> caller = absl::InternalError("unresolved");
    if (admit_services && rc.caller.is_service()) {
      AgencyRecord service;
      service.id = rc.caller.agency_id;
      service.legal_domain = server::kServiceDomain;
      caller = std::move(service);
    } else {
      caller = CheckCaller(tx, rc);
    }
    if (!caller.ok()) return caller.status();
    agency_id = caller->id;
    resource = target;
    if (absl::Status s = body(tx, *caller, &resource); !s.ok()) return s;
    if (!in_write_phase) return absl::OkStatus();
    return audit::AppendAudit(tx,
                              AuditRecordFor(rc, agency_id, method, resource));
  };
  absl::Status status;
  if (read_only) {
    status = storage::RunInTransaction(
        *runtime_.database,
        [&](Transaction& tx) { return run(tx, /*in_write_phase=*/false); },
        storage::TxMode::kReadOnly);
    if (status.ok()) {
      // The response is held back until its audit record is committed.
      status = CommitWrite([&](Transaction& tx) {
        return audit::AppendAudit(
            tx, AuditRecordFor(rc, agency_id, method, resource));
      });
    }
  } else {
    status = CommitWrite(
        [&](Transaction& tx) { return run(tx, /*in_write_phase=*/true); });
  }
  if (status.ok()) return status;
  audit::AuditRecord record = AuditRecordFor(rc, agency_id, method, resource);
  absl::Status audited = audit::AppendFailedCallAudit(
      *runtime_.database, std::move(record), status);
  if (!audited.ok()) {
    // The call failed anyway and disclosed nothing; report its own error,
    // but make the gap in the trail visible to operators.
    server::Log(server::LogLevel::kError, "audit of failed call not written",
                {{"operation", std::string(method)},
                 {"agency", agency_id},
                 {"error", std::string(audited.message())}});
  }
  return status;
}

absl::Status IdentityServiceImpl::DoRegister(
    const RequestContext& rc, const v1::RegisterAgencyRequest& request,
    v1::Agency* response) {
  return RunAudited(
      rc, kRegisterMethod, AuditTarget(AgencyResourceName(request.agency_id())),
      /*read_only=*/false,
      [&](Transaction& tx, const AgencyRecord& caller,
          std::string* resource) -> absl::Status {
        if (absl::Status s = RequireAdministration(caller); !s.ok()) return s;
        FieldViolations violations;
        api::ValidateRequestId(request.request_id(), "request_id", &violations);
        ValidateAgencyId(request.agency_id(), "agency_id", &violations);
        const v1::Agency& agency = request.agency();
        if (!request.has_agency()) violations.Add("agency", "is required");
        ValidateDisplayName(agency.display_name(), "agency.display_name",
                            &violations);
        const std::string domain = ValidateDomain(
            agency.legal_domain(), "agency.legal_domain", &violations);
        if (!domain.empty()) {
          ValidateMunicipalityCode(agency.municipality_code(), domain,
                                   "agency.municipality_code", &violations);
        }
        ValidateCertificateIdentity(agency.certificate_identity(),
                                    "agency.certificate_identity", &violations);
        if (!violations.empty()) return violations.ToStatus();
        *resource = AgencyResourceName(request.agency_id());

        // Idempotency: the same request_id and content returns the first
        // result.
        v1::RegisterAgencyRequest content = request;
        content.clear_request_id();
        const api::RequestKey key{caller.id, kRegisterMethod,
                                  request.request_id()};
        const std::string fingerprint = api::RequestFingerprint(content);
        absl::StatusOr<std::optional<std::string>> seen =
            api::LookupRequestId(tx, key, fingerprint);
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

        absl::StatusOr<std::optional<AgencyRecord>> same_id =
            ReadAgency(tx, request.agency_id());
        if (!same_id.ok()) return same_id.status();
        if (same_id->has_value()) {
          return ErrorWithReason(
              absl::StatusCode::kAlreadyExists, "AGENCY_EXISTS",
              absl::StrCat(*resource, " is already registered"),
              {{"agency", *resource}});
        }
        absl::StatusOr<std::optional<AgencyRecord>> same_cert =
            FindAgencyByCertificate(tx, agency.certificate_identity());
        if (!same_cert.ok()) return same_cert.status();
        if (same_cert->has_value()) {
          return ErrorWithReason(
              absl::StatusCode::kAlreadyExists, "CERTIFICATE_IDENTITY_TAKEN",
              "the certificate identity is bound to another agency",
              {{"agency", AgencyResourceName((*same_cert)->id)}});
        }

        AgencyRecord record;
        record.id = request.agency_id();
        record.display_name = agency.display_name();
        record.legal_domain = domain;
        record.municipality_code = agency.municipality_code();
        record.certificate_identity = agency.certificate_identity();
        record.create_time = record.update_time = StoreNow();
        absl::StatusOr<bool> inserted = InsertAgency(tx, record);
        if (!inserted.ok()) return inserted.status();
        if (!*inserted) {
          return ErrorWithReason(absl::StatusCode::kAlreadyExists,
                                 "AGENCY_EXISTS",
                                 "agency id or certificate identity is taken");
        }
        if (absl::Status s =
                api::RecordRequestId(tx, key, fingerprint, *resource);
            !s.ok()) {
          return s;
        }
        if (absl::Status s =
                EnqueueAgencyEvent<v1::AgencyRegistered>(tx, record);
            !s.ok()) {
          return s;
        }
        ToProto(record, response);
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoGet(const RequestContext& rc,
                                        const v1::GetAgencyRequest& request,
                                        v1::Agency* response) {
  return RunAudited(
      rc, kGetMethod, AuditTarget(request.name()),
      /*read_only=*/true,
      [&](Transaction& tx, const AgencyRecord&,
          std::string* resource) -> absl::Status {
        FieldViolations violations;
        const std::string id =
            ParseAgencyName(request.name(), "name", &violations);
        if (!violations.empty()) return violations.ToStatus();
        *resource = AgencyResourceName(id);
        absl::StatusOr<std::optional<AgencyRecord>> found = ReadAgency(tx, id);
        if (!found.ok()) return found.status();
        if (!found->has_value()) return NotFound(id);
        ToProto(**found, response);
        return absl::OkStatus();
      },
      // Services ask for agencies whose events have not
      // reached them yet (common/agencies/registry.h).
      /*admit_services=*/true);
}

absl::Status IdentityServiceImpl::DoList(const RequestContext& rc,
                                         const v1::ListAgenciesRequest& request,
                                         v1::ListAgenciesResponse* response) {
  return RunAudited(
      rc, kListMethod, "agencies", /*read_only=*/true,
      [&](Transaction& tx, const AgencyRecord&,
          std::string* resource) -> absl::Status {
        *resource = "agencies";
        FieldViolations violations;
        const int page_size = api::NormalizePageSize(request.page_size(),
                                                     "page_size", &violations);
        AgencyFilter filter;
        if (request.legal_domain() != type::v1::LEGAL_DOMAIN_UNSPECIFIED) {
          filter.legal_domain = ValidateDomain(request.legal_domain(),
                                               "legal_domain", &violations);
        }
        if (!request.municipality_code().empty()) {
          ValidateMunicipalityCode(request.municipality_code(), "",
                                   "municipality_code", &violations);
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
            violations.Add("state",
                           absl::StrCat("unknown agency state ",
                                        static_cast<int>(request.state())));
        }
        // A token is valid only with the filters it was issued for.
        const std::string fingerprint =
            absl::StrCat(static_cast<int>(request.legal_domain()), "|",
                         request.municipality_code(), "|",
                         static_cast<int>(request.state()));
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
        for (const AgencyRecord& r : *rows)
          ToProto(r, response->add_agencies());
        if (more) {
          response->set_next_page_token(
              api::EncodePageToken(fingerprint, rows->back().id));
        }
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoUpdate(
    const RequestContext& rc, const v1::UpdateAgencyRequest& request,
    v1::Agency* response) {
  return RunAudited(
      rc, kUpdateMethod, AuditTarget(request.agency().name()),
      /*read_only=*/false,
      [&](Transaction& tx, const AgencyRecord& caller,
          std::string* resource) -> absl::Status {
        if (absl::Status s = RequireAdministration(caller); !s.ok()) return s;
        FieldViolations violations;
        const v1::Agency& agency = request.agency();
        if (!request.has_agency()) violations.Add("agency", "is required");
        const std::string id =
            ParseAgencyName(agency.name(), "agency.name", &violations);
        if (agency.etag().empty()) violations.Add("agency.etag", "is required");
        bool set_display_name = false, set_municipality = false,
             set_certificate = false;
        if (request.update_mask().paths().empty()) {
          violations.Add("update_mask", "is required");
        }
        for (int i = 0; i < request.update_mask().paths_size(); ++i) {
          const std::string& path = request.update_mask().paths(i);
          const std::string field = absl::StrCat("update_mask.paths[", i, "]");
          if (path == "display_name") {
            set_display_name = true;
            ValidateDisplayName(agency.display_name(), "agency.display_name",
                                &violations);
          } else if (path == "municipality_code") {
            set_municipality = true;
            // Whether it may be empty depends on the stored domain, below.
            ValidateMunicipalityCode(agency.municipality_code(), "",
                                     "agency.municipality_code", &violations);
          } else if (path == "certificate_identity") {
            set_certificate = true;
            ValidateCertificateIdentity(agency.certificate_identity(),
                                        "agency.certificate_identity",
                                        &violations);
          } else if (path == "legal_domain" || path == "state") {
            violations.Add(field, absl::StrCat(path,
                                               " cannot be changed by "
                                               "UpdateAgency"));
          } else {
            violations.Add(field,
                           "must be display_name, municipality_code or "
                           "certificate_identity");
          }
        }
        if (!violations.empty()) return violations.ToStatus();
        *resource = AgencyResourceName(id);

        absl::StatusOr<AgencyRecord> record =
            LoadForChange(tx, id, agency.etag());
        if (!record.ok()) return record.status();
        if (set_municipality && agency.municipality_code().empty() &&
            record->legal_domain == "KOMMUNE") {
          violations.Add("agency.municipality_code",
                         "is required for KOMMUNE agencies");
          return violations.ToStatus();
        }
        if (set_certificate &&
            agency.certificate_identity() != record->certificate_identity) {
          absl::StatusOr<std::optional<AgencyRecord>> holder =
              FindAgencyByCertificate(tx, agency.certificate_identity());
          if (!holder.ok()) return holder.status();
          if (holder->has_value()) {
            return ErrorWithReason(
                absl::StatusCode::kAlreadyExists, "CERTIFICATE_IDENTITY_TAKEN",
                "the certificate identity is bound to another agency",
                {{"agency", AgencyResourceName((*holder)->id)}});
          }
        }
        if (set_display_name) record->display_name = agency.display_name();
        if (set_municipality)
          record->municipality_code = agency.municipality_code();
        if (set_certificate) {
          record->certificate_identity = agency.certificate_identity();
        }
        if (absl::Status s = StoreChange(tx, &*record); !s.ok()) return s;
        if (absl::Status s = EnqueueAgencyEvent<v1::AgencyUpdated>(tx, *record);
            !s.ok()) {
          return s;
        }
        ToProto(*record, response);
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoChangeState(
    const RequestContext& rc, absl::string_view method, absl::string_view name,
    absl::string_view etag, bool suspend, absl::string_view reason,
    v1::Agency* response) {
  return RunAudited(
      rc, method, AuditTarget(name), /*read_only=*/false,
      [&](Transaction& tx, const AgencyRecord& caller,
          std::string* resource) -> absl::Status {
        if (absl::Status s = RequireAdministration(caller); !s.ok()) return s;
        FieldViolations violations;
        const std::string id = ParseAgencyName(name, "name", &violations);
        if (etag.empty()) violations.Add("etag", "is required");
        if (suspend) ValidateSuspensionReason(reason, "reason", &violations);
        if (!violations.empty()) return violations.ToStatus();
        *resource = AgencyResourceName(id);

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
      });
}

IdentityServiceImpl::IdentityServiceImpl(server::ServiceRuntime& runtime)
    : UnaryService(runtime.env, v1::IdentityService::service_full_name()),
      runtime_(runtime) {
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
           return DoChangeState(rc, kSuspendMethod, r.name(), r.etag(),
                                /*suspend=*/true, r.reason(), out);
         });
  Handle("ReactivateAgency",
         [this](const RequestContext& rc, const v1::ReactivateAgencyRequest& r,
                v1::Agency* out) {
           return DoChangeState(rc, kReactivateMethod, r.name(), r.etag(),
                                /*suspend=*/false, "", out);
         });
}

}  // namespace lotse::identity
