#include "services/identity/service/identity_service.h"

#include <memory>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/server/log.h"
#include "services/identity/service/handler_support.h"
#include "services/identity/store/rekey.h"

namespace lotse::identity {

using ::lotse::agencies::AuditedCall;
using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

IdentityServiceImpl::IdentityServiceImpl(server::ServiceRuntime& runtime)
    : UnaryService(runtime.env, v1::IdentityService::service_full_name()),
      runtime_(runtime) {
  call_env_ = agencies::CallEnvironment::ForRuntime(
      v1::IdentityService::service_full_name(), runtime_);
  // Identity is the registry: its callers are resolved from its own table.
  call_env_.resolve_caller = ResolveRegistryCaller;
  RegisterAgencyRpcs();
  RegisterPersonRpcs();
  RegisterAccessRpcs();
  RegisterLifecycleRpcs();
  Handle("GetTransparencyReport",
         [this](const RequestContext& rc,
                const v1::GetTransparencyReportRequest& r,
                v1::TransparencyReport* out) -> absl::Status {
           if (transparency_ == nullptr) {
             return absl::InternalError("transparency reports not enabled");
           }
           return transparency_->Get(rc, r, out);
         });
}

absl::Status IdentityServiceImpl::EnableTransparency(
    std::vector<AuditPeer> peers) {
  std::shared_ptr<const DuplicateMatcher> matcher =
      matcher_ != nullptr ? matcher_ : access_matcher_;
  if (matcher == nullptr) {
    return absl::FailedPreconditionError(
        "EnableTransparency needs EnablePersons or EnableAccess first");
  }
  transparency_ = std::make_unique<const TransparencyReports>(
      call_env_, std::move(matcher), std::move(peers));
  return absl::OkStatus();
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

void IdentityServiceImpl::RegisterAccessRpcs() {
  Handle(
      "RecordResidenceStatus",
      [this](
          const RequestContext& rc, const v1::RecordResidenceStatusRequest& r,
          v1::ResidenceStatus* out) { return DoRecordResidence(rc, r, out); });
  Handle("GetCurrentResidenceStatus",
         [this](const RequestContext& rc,
                const v1::GetCurrentResidenceStatusRequest& r,
                v1::ResidenceStatus* out) {
           return DoGetCurrentResidence(rc, r, out);
         });
  Handle("ListResidenceStatuses",
         [this](const RequestContext& rc,
                const v1::ListResidenceStatusesRequest& r,
                v1::ListResidenceStatusesResponse* out) {
           return DoListResidence(rc, r, out);
         });
  Handle("RecordConsent", this, &IdentityServiceImpl::DoRecordConsent);
  Handle("GetConsent", this, &IdentityServiceImpl::DoGetConsent);
  Handle("WithdrawConsent", this, &IdentityServiceImpl::DoWithdrawConsent);
  Handle("ListConsents", this, &IdentityServiceImpl::DoListConsents);
  Handle("CheckAccess", this, &IdentityServiceImpl::DoCheckAccess);
}

IdentityServiceImpl::~IdentityServiceImpl() {
  stop_warming_.store(true);
  if (warming_.joinable()) warming_.join();
}

absl::Status IdentityServiceImpl::EnablePersons(
    std::shared_ptr<const AccessPolicy> policy, size_t match_form_cache_bytes,
    bool key_index) {
  if (policy == nullptr) {
    return absl::InvalidArgumentError("an access policy is required");
  }
  absl::StatusOr<std::unique_ptr<DuplicateMatcher>> matcher =
      DuplicateMatcher::Create();
  if (!matcher.ok()) return matcher.status();
  matcher_ = std::shared_ptr<const DuplicateMatcher>(*std::move(matcher));
  // Keys stored under other rules would not meet this binary's lookups:
  // re-derive them before the index and the caches read them, and before
  // serving (SERVING waits for this).
  absl::StatusOr<RekeyResult> rekeyed =
      RekeyStaleKeys(*runtime_.database, *matcher_);
  if (!rekeyed.ok()) return rekeyed.status();
  match_forms_ =
      std::make_unique<MatchFormCache>(*matcher_, match_form_cache_bytes);
  if (runtime_.metrics != nullptr) {
    match_forms_->ExportMetrics(*runtime_.metrics);
  }
  if (match_form_cache_bytes > 0 && !warming_.joinable()) {
    // In the background: a cache need not be full to be correct, and a
    // large database would otherwise hold back SERVING for the pass.
    warming_ = std::thread([this] {
      const absl::Time start = absl::Now();
      absl::StatusOr<int64_t> warmed =
          match_forms_->Warm(*runtime_.database, &stop_warming_);
      if (!warmed.ok()) {
        server::Log(server::LogLevel::kWarning, "match-form cache not filled",
                    {{"error", std::string(warmed.status().message())}});
        return;
      }
      server::Log(server::LogLevel::kInfo, "match-form cache filled",
                  {{"persons", *warmed},
                   {"bytes", match_forms_->stats().bytes},
                   {"seconds", absl::ToDoubleSeconds(absl::Now() - start)}});
    });
  }
  if (key_index) {
    auto index = std::make_unique<KeyIndex>();
    if (absl::Status s = index->Build(*runtime_.database, *matcher_); !s.ok()) {
      return s;
    }
    const KeyIndex::Stats stats = index->stats();
    server::Log(server::LogLevel::kInfo, "key index built",
                {{"persons", stats.persons},
                 {"keys", stats.keys},
                 {"postings", stats.postings},
                 {"bytes", stats.bytes},
                 {"seconds", stats.build_seconds}});
    if (runtime_.metrics != nullptr) index->ExportMetrics(*runtime_.metrics);
    key_index_ = std::move(index);
  }
  access_policy_ = std::move(policy);
  return absl::OkStatus();
}

absl::Status IdentityServiceImpl::RequirePersons() const {
  if (access_policy_ != nullptr && matcher_ != nullptr) {
    return absl::OkStatus();
  }
  server::Log(server::LogLevel::kError,
              "person RPC called before EnablePersons", {});
  return absl::InternalError("person RPCs are not configured");
}

absl::Status IdentityServiceImpl::FinishPersonCall(AuditedCall& call,
                                                   absl::Status status) {
  return HideAbsentPerson(*access_policy_, call.rc(), call.caller(),
                          DataCategory::kCoreIdentity,
                          call.Finish(std::move(status)));
}

absl::Status IdentityServiceImpl::EnableAccess(
    std::shared_ptr<const AccessPolicy> policy) {
  if (policy == nullptr) {
    return absl::InvalidArgumentError("EnableAccess needs an access policy");
  }
  access_rules_ = std::move(policy);
  if (matcher_ != nullptr) {
    access_matcher_ = matcher_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<DuplicateMatcher>> matcher =
      DuplicateMatcher::Create();
  if (!matcher.ok()) return matcher.status();
  access_matcher_ =
      std::shared_ptr<const DuplicateMatcher>(*std::move(matcher));
  return absl::OkStatus();
}

absl::Status IdentityServiceImpl::RequireAccess() const {
  if (access_rules_ != nullptr && access_matcher_ != nullptr) {
    return absl::OkStatus();
  }
  return absl::InternalError("access rules not loaded (EnableAccess)");
}

absl::Status IdentityServiceImpl::FinishAccessCall(AuditedCall& call,
                                                   DataCategory category,
                                                   absl::Status status) {
  status = call.Finish(std::move(status));
  if (access_rules_ == nullptr) return status;
  return HideAbsentPerson(*access_rules_, call.rc(), call.caller(), category,
                          std::move(status));
}

}  // namespace lotse::identity
