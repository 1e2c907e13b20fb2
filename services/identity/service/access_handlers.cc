// Residence status, consents and CheckAccess: the RPCs of
// IdentityServiceImpl that decide or depend on who may read which category
// of a person's data (DESIGN.md section 4).
//
// Every access decision here, whether it guards a residence read, a
// consent RPC or answers CheckAccess, is made by person_access.h from the
// facts identity itself holds, read in the same transaction. Nothing is
// cached, so a withdrawal or an expiry changes the very next decision.
#include <algorithm>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/names.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "common/server/handler.h"
#include "common/server/log.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "services/identity/domain/person.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/service/person_access.h"
#include "services/identity/store/agency_store.h"
#include "services/identity/store/consent_store.h"
#include "services/identity/store/person_store.h"
#include "services/identity/store/relation_store.h"
#include "services/identity/store/residence_store.h"

namespace lotse::identity {

// What an access RPC touched: the resource and data categories of its own
// audit record, plus one record per CheckAccess decision (about the agency
// the decision concerns, not the asking service).
struct IdentityServiceImpl::AccessTrail {
  std::string resource;
  std::vector<std::string> categories;
  std::vector<audit::AuditRecord> decisions;
};

namespace {

using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

constexpr char kRecordResidenceMethod[] =
    "lotse.identity.v1.IdentityService/RecordResidenceStatus";
constexpr char kGetResidenceMethod[] =
    "lotse.identity.v1.IdentityService/GetCurrentResidenceStatus";
constexpr char kListResidenceMethod[] =
    "lotse.identity.v1.IdentityService/ListResidenceStatuses";
constexpr char kRecordConsentMethod[] =
    "lotse.identity.v1.IdentityService/RecordConsent";
constexpr char kGetConsentMethod[] =
    "lotse.identity.v1.IdentityService/GetConsent";
constexpr char kWithdrawConsentMethod[] =
    "lotse.identity.v1.IdentityService/WithdrawConsent";
constexpr char kListConsentsMethod[] =
    "lotse.identity.v1.IdentityService/ListConsents";
constexpr char kCheckAccessMethod[] =
    "lotse.identity.v1.IdentityService/CheckAccess";

constexpr char kImmigrationDomain[] = "AUSLAENDERBEHOERDE";
constexpr char kPurposeAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789-";
constexpr int kMaxCheckCategories = 9;
constexpr int kMaxPurposes = 20;
// Evidence signed "now" on a caseworker's machine may reach us slightly
// ahead of our clock; a declaration further in the future is a typo.
constexpr absl::Duration kClockSkew = absl::Minutes(5);

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

absl::Time FromTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// Now, at the precision the store keeps, so that a response equals what a
// later read returns.
absl::Time StoreNow() {
  return absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
}

// google.protobuf.Timestamp's documented range: 0001-01-01 to 9999-12-31.
bool ValidTimestamp(const google::protobuf::Timestamp& ts) {
  return ts.seconds() >= -62135596800 && ts.seconds() <= 253402300799 &&
         ts.nanos() >= 0 && ts.nanos() <= 999999999;
}

// A calendar date, or nullopt (and a violation) when it is not one.
std::optional<absl::CivilDay> ValidateDate(const type::v1::Date& date,
                                           const std::string& field,
                                           FieldViolations* violations) {
  const absl::CivilDay day(date.year(), date.month(), date.day());
  if (date.year() < 1 || date.year() > 9999 || day.year() != date.year() ||
      day.month() != date.month() || day.day() != date.day()) {
    violations->Add(field, "is not a valid calendar date");
    return std::nullopt;
  }
  return day;
}

bool DateSet(const type::v1::Date& date) {
  return date.year() != 0 || date.month() != 0 || date.day() != 0;
}

// "RESIDENCE_STATUS" etc.; the spelling of audit records and reasons.
std::string CategoryName(int category) {
  return std::string(DataCategoryName(static_cast<DataCategory>(category)));
}

// Adds violations for categories that are unspecified, unknown, repeated
// or (when `forbid_private`) PRIVATE_NOTES.
void ValidateCategories(const google::protobuf::RepeatedField<int>& categories,
                        const std::string& field, bool forbid_private,
                        FieldViolations* violations) {
  std::set<int> seen;
  for (int i = 0; i < categories.size(); ++i) {
    const int value = categories.Get(i);
    const std::string item = absl::StrCat(field, "[", i, "]");
    if (value == type::v1::DATA_CATEGORY_UNSPECIFIED) {
      violations->Add(item, "must be a specified data category");
    } else if (!type::v1::DataCategory_IsValid(value)) {
      violations->Add(item, absl::StrCat("unknown data category ", value));
    } else if (forbid_private &&
               value == type::v1::DATA_CATEGORY_PRIVATE_NOTES) {
      violations->Add(item,
                      "PRIVATE_NOTES cannot be opened by a consent: only "
                      "the writing agency ever reads them");
    } else if (!seen.insert(value).second) {
      violations->Add(item, "is repeated");
    }
  }
}

void ValidateEvidence(const v1::ConsentEvidence& evidence, bool present,
                      const std::string& field, bool for_withdrawal,
                      absl::Time now, FieldViolations* violations) {
  if (!present) {
    violations->Add(field, "is required");
    return;
  }
  const int form = evidence.form();
  if (form == v1::CONSENT_FORM_UNSPECIFIED) {
    violations->Add(field + ".form", "is required");
  } else if (!v1::ConsentForm_IsValid(form)) {
    violations->Add(field + ".form",
                    absl::StrCat("unknown consent form ", form));
  } else if (!for_withdrawal && form == v1::CONSENT_FORM_ORAL_DOCUMENTED) {
    // The contract allows oral consent only where the deployment permits
    // it, and no deployment setting for that exists yet: fail safe.
    violations->Add(field + ".form",
                    "oral consent is not permitted in this deployment");
  }
  api::ValidateText(evidence.document_reference(),
                    field + ".document_reference", {1, 200, false}, violations);
  if (!evidence.has_declare_time()) {
    violations->Add(field + ".declare_time", "is required");
  } else if (!ValidTimestamp(evidence.declare_time())) {
    violations->Add(field + ".declare_time", "is not a valid timestamp");
  } else if (FromTimestamp(evidence.declare_time()) > now + kClockSkew) {
    violations->Add(field + ".declare_time", "must not be in the future");
  }
}

// "persons/{person}/consents/{consent}": person and consent ids, or a
// violation for `field`.
std::pair<std::string, std::string> ParseConsentName(
    absl::string_view name, const std::string& field,
    FieldViolations* violations) {
  std::vector<std::string> ids = api::ParseName(
      name, "persons/{person}/consents/{consent}", field, violations);
  if (ids.empty()) return {};
  return {std::move(ids[0]), std::move(ids[1])};
}

// The person `id` (a merged id resolves to its survivor), NOT_FOUND with
// reason PERSON_NOT_FOUND if it never existed. With `for_write`, a merged
// id is FAILED_PRECONDITION PERSON_MERGED naming the survivor.
absl::StatusOr<PersonLookup> FindPerson(Transaction& tx,
                                        const DuplicateMatcher& matcher,
                                        const std::string& id, bool for_write) {
  PersonStore store(tx, matcher);
  absl::StatusOr<PersonLookup> found = store.Get(id);
  if (!found.ok()) {
    return found.status();
  }
  if (for_write && found->merged) {
    return ErrorWithReason(
        absl::StatusCode::kFailedPrecondition, "PERSON_MERGED",
        "the person was merged into another; write to the survivor",
        {{"survivor", PersonResourceName(found->id)}});
  }
  return found;
}

void ConsentToProto(const ConsentRecord& record, absl::Time now,
                    v1::Consent* out) {
  *out = record.fields;
  const std::string name = ConsentResourceName(record.person_id, record.id);
  out->set_name(name);
  out->set_state(static_cast<v1::ConsentState>(
      ConsentStateAt(ToPolicyConsent(record), now)));
  out->set_etag(api::ComputeEtag(name, record.version));
}

void ResidenceToProto(const ResidenceRecord& record, bool current,
                      v1::ResidenceStatus* out) {
  *out = record.fields;
  out->set_name(ResidenceResourceName(record.person_id, record.id));
  out->set_recording_agency(record.recording_agency);
  *out->mutable_create_time() = ToTimestamp(record.create_time);
  out->set_current(current);
  out->set_etag(ResidenceEtag(record.person_id, record.id));
}

// Decides whether `subject` may read `category` of `person` now for
// `purpose` (person_access.h), with the relations an asking service asserts
// and its word that the agency wrote the data (private notes).
absl::StatusOr<AccessDecision> DecideAccess(
    Transaction& tx, const AccessPolicy& policy, const PersonLookup& person,
    const AccessSubject& subject, DataCategory category,
    const std::string& purpose, std::vector<Relation> asserted, bool wrote_data,
    absl::Time now) {
  absl::StatusOr<Standing> standing = LoadStanding(
      tx, person.id, person.person.creating_agency(), subject.agency_id,
      /*with_residence=*/category == DataCategory::kResidenceStatus);
  if (!standing.ok()) return standing.status();
  return DecideFromStanding(policy, subject, person.id, *standing, category,
                            purpose, std::move(asserted), wrote_data, now);
}

// Requires that the caller may read `category` of `person`; services
// (not subject to per-domain rules) always may.
absl::Status RequireRead(Transaction& tx, const AccessPolicy& policy,
                         const PersonLookup& person, const AgencyRecord& caller,
                         DataCategory category, const RequestContext& rc) {
  if (rc.caller.is_service()) return absl::OkStatus();
  absl::StatusOr<AccessDecision> decision =
      DecideAccess(tx, policy, person, SubjectOf(caller), category, rc.purpose,
                   {}, false, absl::Now());
  if (!decision.ok()) return decision.status();
  if (!decision->allowed) return DeniedError(*decision);
  return absl::OkStatus();
}

template <typename Payload>
absl::Status EnqueuePersonEvent(Transaction& tx, const std::string& person_id,
                                const Payload& payload) {
  lotse::events::v1::Event event;
  // Per person, so consumers apply one person's changes in order.
  event.set_ordering_key(PersonResourceName(person_id));
  event.set_source("identity");
  event.mutable_payload()->PackFrom(payload);
  return events::EnqueueEvent(tx, std::move(event));
}

template <typename Payload>
absl::Status EnqueueConsentEvent(Transaction& tx, const ConsentRecord& record) {
  Payload payload;
  payload.set_consent(ConsentResourceName(record.person_id, record.id));
  payload.set_person(PersonResourceName(record.person_id));
  for (int category : record.fields.categories()) {
    payload.add_categories(static_cast<type::v1::DataCategory>(category));
  }
  return EnqueuePersonEvent(tx, record.person_id, payload);
}

// Whether `caller` recorded `record` or is its recipient (directly or by
// domain): GetConsent and ListConsents show it to them without further
// rule.
bool RecordsOrReceives(const AgencyRecord& caller,
                       const ConsentRecord& record) {
  const v1::Consent& f = record.fields;
  const std::string name = AgencyResourceName(caller.id);
  if (f.recording_agency() == name) return true;
  if (f.recipient_case() == v1::Consent::kRecipientAgency) {
    return f.recipient_agency() == name;
  }
  return LegalDomainName(static_cast<LegalDomain>(
             f.recipient_legal_domain())) == caller.legal_domain;
}

// The person resource a request names, for the audit trail of a call
// refused before validation (never unvalidated bytes).
std::string PersonTarget(absl::string_view name, absl::string_view suffix) {
  FieldViolations ignored;
  const std::string id = ParsePersonName(name, "", &ignored);
  return id.empty() ? "persons" : absl::StrCat(PersonResourceName(id), suffix);
}

std::string ConsentTarget(absl::string_view name) {
  FieldViolations ignored;
  const auto [person, consent] = ParseConsentName(name, "", &ignored);
  return person.empty() ? "persons" : ConsentResourceName(person, consent);
}

}  // namespace

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

absl::Status IdentityServiceImpl::RunAccessAudited(const RequestContext& rc,
                                                   absl::string_view method,
                                                   const std::string& target,
                                                   bool admit_services,
                                                   bool read_only,
                                                   const AccessBody& body) {
  std::string agency_id = rc.caller.agency_id;
  // The resolved calling agency, once known (not for a service caller).
  std::optional<AgencyRecord> calling_agency;
  AccessTrail trail;
  trail.resource = target;
  auto append_records = [&](Transaction& tx) -> absl::Status {
    audit::AuditRecord record;
    record.agency_id = agency_id;
    record.legal_domain = rc.caller.legal_domain;
    record.actor = rc.actor;
    record.purpose = rc.purpose;
    record.operation = std::string(method);
    record.resource = trail.resource;
    record.data_categories = trail.categories;
    if (absl::Status s = audit::AppendAudit(tx, record); !s.ok()) return s;
    for (const audit::AuditRecord& decision : trail.decisions) {
      if (absl::Status s = audit::AppendAudit(tx, decision); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  // Caller check and body; with `in_write_phase` also the audit records.
  auto run = [&](Transaction& tx, bool in_write_phase) -> absl::Status {
    trail = AccessTrail{};
    trail.resource = target;
    AgencyRecord caller;
    if (admit_services && rc.caller.is_service()) {
      // Services are authenticated by their certificate alone; they
      // have no registry entry to check (see the header).
      caller.id = rc.caller.agency_id;
      caller.legal_domain = server::kServiceDomain;
    } else {
      absl::StatusOr<AgencyRecord> checked = CheckCaller(tx, rc);
      if (!checked.ok()) return checked.status();
      caller = *std::move(checked);
      calling_agency = caller;
    }
    agency_id = caller.id;
    if (absl::Status s = body(tx, caller, &trail); !s.ok()) return s;
    return in_write_phase ? append_records(tx) : absl::OkStatus();
  };
  absl::Status status;
  if (access_rules_ == nullptr || access_matcher_ == nullptr) {
    status = absl::InternalError("access rules not loaded (EnableAccess)");
  } else if (read_only) {
    status = storage::RunInTransaction(
        *runtime_.database,
        [&](Transaction& tx) { return run(tx, /*in_write_phase=*/false); },
        storage::TxMode::kReadOnly);
    // The response is held back until its audit records are committed.
    if (status.ok()) status = CommitWrite(append_records);
  } else {
    status = CommitWrite(
        [&](Transaction& tx) { return run(tx, /*in_write_phase=*/true); });
  }
  if (status.ok()) return status;
  audit::AuditRecord record;
  record.agency_id = agency_id;
  record.legal_domain = rc.caller.legal_domain;
  record.actor = rc.actor;
  record.purpose = rc.purpose;
  record.operation = std::string(method);
  record.resource = trail.resource;
  record.data_categories = trail.categories;
  absl::Status audited = audit::AppendFailedCallAudit(
      *runtime_.database, std::move(record), status);
  if (!audited.ok()) {
    server::Log(server::LogLevel::kError, "audit of failed call not written",
                {{"operation", std::string(method)},
                 {"agency", agency_id},
                 {"error", std::string(audited.message())}});
  }
  // The trail keeps what happened; an agency learns no more than it would
  // about a person it may not read the call's category of.
  if (calling_agency.has_value() && ReasonOf(status) == "PERSON_NOT_FOUND") {
    const DataCategory category =
        trail.categories.empty()
            ? DataCategory::kCoreIdentity
            : DataCategoryFromName(trail.categories.front())
                  .value_or(DataCategory::kCoreIdentity);
    return RefusalWithoutStanding(*access_rules_, SubjectOf(*calling_agency),
                                  category, rc.purpose, status);
  }
  return status;
}

absl::Status IdentityServiceImpl::DoRecordResidence(
    const RequestContext& rc, const v1::RecordResidenceStatusRequest& request,
    v1::ResidenceStatus* response) {
  return RunAccessAudited(
      rc, kRecordResidenceMethod,
      PersonTarget(request.parent(), "/residenceStatuses"),
      /*admit_services=*/false, /*read_only=*/false,
      [&](Transaction& tx, const AgencyRecord& caller,
          AccessTrail* trail) -> absl::Status {
        trail->categories = {"RESIDENCE_STATUS"};
        if (caller.legal_domain != kImmigrationDomain) {
          return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                 "WRONG_LEGAL_DOMAIN",
                                 "only AUSLAENDERBEHOERDE agencies record "
                                 "residence status");
        }
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.parent(), "parent", &violations);
        api::ValidateRequestId(request.request_id(), "request_id", &violations);
        const v1::ResidenceStatus& status = request.residence_status();
        if (!request.has_residence_status()) {
          violations.Add("residence_status", "is required");
        }
        const int kind = status.title_kind();
        if (kind == v1::RESIDENCE_TITLE_KIND_UNSPECIFIED) {
          violations.Add("residence_status.title_kind", "is required");
        } else if (!v1::ResidenceTitleKind_IsValid(kind)) {
          violations.Add("residence_status.title_kind",
                         absl::StrCat("unknown residence title kind ", kind));
        }
        api::ValidateText(status.legal_basis(), "residence_status.legal_basis",
                          {0, 100, false}, &violations);
        std::optional<absl::CivilDay> from;
        if (!status.has_valid_from() || !DateSet(status.valid_from())) {
          violations.Add("residence_status.valid_from", "is required");
        } else {
          from = ValidateDate(status.valid_from(),
                              "residence_status.valid_from", &violations);
        }
        if (status.has_valid_until() && DateSet(status.valid_until())) {
          auto until =
              ValidateDate(status.valid_until(), "residence_status.valid_until",
                           &violations);
          if (from.has_value() && until.has_value() && *until < *from) {
            violations.Add("residence_status.valid_until",
                           "must not be before valid_from");
          }
        }
        const int work = status.work_permission();
        if (work == type::v1::WORK_PERMISSION_UNSPECIFIED) {
          violations.Add("residence_status.work_permission", "is required");
        } else if (!type::v1::WorkPermission_IsValid(work)) {
          violations.Add("residence_status.work_permission",
                         absl::StrCat("unknown work permission ", work));
        }
        api::ValidateText(status.work_permission_conditions(),
                          "residence_status.work_permission_conditions",
                          {0, 500, false}, &violations);
        if (!violations.empty()) return violations.ToStatus();

        // Locked before the person is read: a merge holds this lock while
        // it moves the records, so once it is granted a merged person reads
        // as merged and no record lands under it. A merged id is refused
        // below, so the lock is the resolved person's.
        if (absl::Status s = LockResidence(tx, person_id); !s.ok()) return s;
        absl::StatusOr<PersonLookup> person =
            FindPerson(tx, *access_matcher_, person_id, /*for_write=*/true);
        if (!person.ok()) return person.status();

        v1::RecordResidenceStatusRequest content = request;
        content.clear_request_id();
        const api::RequestKey key{caller.id, kRecordResidenceMethod,
                                  request.request_id()};
        const std::string fingerprint = api::RequestFingerprint(content);
        absl::StatusOr<std::optional<std::string>> seen =
            api::LookupRequestId(tx, key, fingerprint);
        if (!seen.ok()) return seen.status();
        absl::StatusOr<std::optional<ResidenceRecord>> current =
            ReadCurrentResidence(tx, person->id);
        if (!current.ok()) return current.status();
        if (seen->has_value()) {
          // A retry: answer with the record the first call created.
          const std::string& name = **seen;
          trail->resource = name;
          absl::StatusOr<std::optional<ResidenceRecord>> first =
              ReadResidenceById(tx, name.substr(name.rfind('/') + 1));
          if (!first.ok()) return first.status();
          if (!first->has_value()) {
            return absl::InternalError("recorded residence status is gone");
          }
          ResidenceToProto(
              **first, current->has_value() && (*current)->id == (*first)->id,
              response);
          return absl::OkStatus();
        }
        const std::string current_etag =
            current->has_value()
                ? ResidenceEtag((*current)->person_id, (*current)->id)
                : "";
        if (absl::Status s =
                api::CheckEtag(request.current_etag(), current_etag);
            !s.ok()) {
          return s;
        }

        absl::StatusOr<std::string> id = api::NewId();
        if (!id.ok()) return id.status();
        ResidenceRecord record;
        record.id = *id;
        record.person_id = person->id;
        record.recording_agency = AgencyResourceName(caller.id);
        record.create_time = StoreNow();
        record.fields = status;
        // Output-only fields are ignored, as the contract says.
        record.fields.clear_name();
        record.fields.clear_recording_agency();
        record.fields.clear_create_time();
        record.fields.clear_current();
        record.fields.clear_etag();
        if (absl::Status s = InsertResidence(tx, record); !s.ok()) return s;
        const std::string name = ResidenceResourceName(person->id, record.id);
        trail->resource = name;
        if (absl::Status s = api::RecordRequestId(tx, key, fingerprint, name);
            !s.ok()) {
          return s;
        }
        v1::ResidenceStatusChanged changed;
        changed.set_person(PersonResourceName(person->id));
        changed.set_residence_status(name);
        changed.set_title_kind(record.fields.title_kind());
        *changed.mutable_valid_from() = record.fields.valid_from();
        if (record.fields.has_valid_until()) {
          *changed.mutable_valid_until() = record.fields.valid_until();
        }
        changed.set_work_permission(record.fields.work_permission());
        changed.set_integration_course_obligation(
            record.fields.integration_course_obligation());
        changed.set_recording_agency(record.recording_agency);
        if (absl::Status s = EnqueuePersonEvent(tx, person->id, changed);
            !s.ok()) {
          return s;
        }
        ResidenceToProto(record, /*current=*/true, response);
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoGetCurrentResidence(
    const RequestContext& rc,
    const v1::GetCurrentResidenceStatusRequest& request,
    v1::ResidenceStatus* response) {
  return RunAccessAudited(
      rc, kGetResidenceMethod,
      PersonTarget(request.person(), "/residenceStatuses"),
      /*admit_services=*/true, /*read_only=*/true,
      [&](Transaction& tx, const AgencyRecord& caller,
          AccessTrail* trail) -> absl::Status {
        trail->categories = {"RESIDENCE_STATUS"};
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.person(), "person", &violations);
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<PersonLookup> person =
            FindPerson(tx, *access_matcher_, person_id, /*for_write=*/false);
        if (!person.ok()) return person.status();
        trail->resource =
            absl::StrCat(PersonResourceName(person->id), "/residenceStatuses");
        if (absl::Status s = RequireRead(tx, *access_rules_, *person, caller,
                                         DataCategory::kResidenceStatus, rc);
            !s.ok()) {
          return s;
        }
        absl::StatusOr<std::optional<ResidenceRecord>> current =
            ReadCurrentResidence(tx, person->id);
        if (!current.ok()) return current.status();
        if (!current->has_value()) {
          return ErrorWithReason(absl::StatusCode::kNotFound,
                                 "NO_RESIDENCE_STATUS",
                                 "no residence status has been recorded for "
                                 "this person");
        }
        trail->resource =
            ResidenceResourceName((*current)->person_id, (*current)->id);
        ResidenceToProto(**current, /*current=*/true, response);
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoListResidence(
    const RequestContext& rc, const v1::ListResidenceStatusesRequest& request,
    v1::ListResidenceStatusesResponse* response) {
  return RunAccessAudited(
      rc, kListResidenceMethod,
      PersonTarget(request.parent(), "/residenceStatuses"),
      /*admit_services=*/true, /*read_only=*/true,
      [&](Transaction& tx, const AgencyRecord& caller,
          AccessTrail* trail) -> absl::Status {
        trail->categories = {"RESIDENCE_STATUS"};
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.parent(), "parent", &violations);
        const int page_size = api::NormalizePageSize(request.page_size(),
                                                     "page_size", &violations);
        // Tokens carry a record's seq and are bound to the person asked for.
        const std::string after = api::DecodePageToken(
            request.page_token(), request.parent(), "page_token", &violations);
        int64_t before_seq = 0;
        if (!after.empty() &&
            (!absl::SimpleAtoi(after, &before_seq) || before_seq <= 0)) {
          violations.Add("page_token", "is not a valid page token");
        }
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<PersonLookup> person =
            FindPerson(tx, *access_matcher_, person_id, /*for_write=*/false);
        if (!person.ok()) return person.status();
        trail->resource =
            absl::StrCat(PersonResourceName(person->id), "/residenceStatuses");
        if (absl::Status s = RequireRead(tx, *access_rules_, *person, caller,
                                         DataCategory::kResidenceStatus, rc);
            !s.ok()) {
          return s;
        }
        absl::StatusOr<std::optional<ResidenceRecord>> current =
            ReadCurrentResidence(tx, person->id);
        if (!current.ok()) return current.status();
        absl::StatusOr<std::vector<ResidenceRecord>> rows =
            ListResidence(tx, person->id, before_seq, page_size + 1);
        if (!rows.ok()) return rows.status();
        response->Clear();
        const bool more = static_cast<int>(rows->size()) > page_size;
        if (more) rows->resize(page_size);
        for (const ResidenceRecord& r : *rows) {
          ResidenceToProto(r, current->has_value() && (*current)->id == r.id,
                           response->add_residence_statuses());
        }
        if (more) {
          response->set_next_page_token(api::EncodePageToken(
              request.parent(), absl::StrCat(rows->back().seq)));
        }
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoRecordConsent(
    const RequestContext& rc, const v1::RecordConsentRequest& request,
    v1::Consent* response) {
  return RunAccessAudited(
      rc, kRecordConsentMethod, PersonTarget(request.parent(), "/consents"),
      /*admit_services=*/false, /*read_only=*/false,
      [&](Transaction& tx, const AgencyRecord& caller,
          AccessTrail* trail) -> absl::Status {
        // The consent record itself is core identity data.
        trail->categories = {"CORE_IDENTITY"};
        const absl::Time now = StoreNow();
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.parent(), "parent", &violations);
        api::ValidateRequestId(request.request_id(), "request_id", &violations);
        const v1::Consent& consent = request.consent();
        if (!request.has_consent()) violations.Add("consent", "is required");
        if (consent.categories().empty()) {
          violations.Add("consent.categories", "at least one is required");
        }
        ValidateCategories(consent.categories(), "consent.categories",
                           /*forbid_private=*/true, &violations);
        std::string recipient_agency;
        switch (consent.recipient_case()) {
          case v1::Consent::kRecipientAgency:
            recipient_agency =
                ParseAgencyName(consent.recipient_agency(),
                                "consent.recipient_agency", &violations);
            break;
          case v1::Consent::kRecipientLegalDomain: {
            const int domain = consent.recipient_legal_domain();
            if (domain == type::v1::LEGAL_DOMAIN_UNSPECIFIED) {
              violations.Add("consent.recipient_legal_domain",
                             "must be a specified legal domain");
            } else if (!type::v1::LegalDomain_IsValid(domain)) {
              violations.Add("consent.recipient_legal_domain",
                             absl::StrCat("unknown legal domain ", domain));
            }
            break;
          }
          default:
            violations.Add("consent.recipient",
                           "recipient_agency or recipient_legal_domain is "
                           "required");
        }
        if (consent.purposes().empty()) {
          violations.Add("consent.purposes", "at least one is required");
        } else if (consent.purposes_size() > kMaxPurposes) {
          violations.Add("consent.purposes",
                         absl::StrCat("at most ", kMaxPurposes, " allowed"));
        }
        std::set<std::string> purposes;
        for (int i = 0; i < consent.purposes_size(); ++i) {
          const std::string field = absl::StrCat("consent.purposes[", i, "]");
          if (api::ValidateToken(consent.purposes(i), field, 1, 64,
                                 kPurposeAlphabet, "[a-z0-9-]", &violations) &&
              !purposes.insert(consent.purposes(i)).second) {
            violations.Add(field, "is repeated");
          }
        }
        absl::Time valid_from = now;
        bool times_ok = true;
        if (consent.has_valid_from()) {
          if (ValidTimestamp(consent.valid_from())) {
            valid_from = FromTimestamp(consent.valid_from());
          } else {
            times_ok = false;
            violations.Add("consent.valid_from", "is not a valid timestamp");
          }
        }
        if (consent.has_valid_until()) {
          if (!ValidTimestamp(consent.valid_until())) {
            violations.Add("consent.valid_until", "is not a valid timestamp");
          } else if (times_ok &&
                     FromTimestamp(consent.valid_until()) <= valid_from) {
            violations.Add("consent.valid_until",
                           "must be after valid_from (or, when unset, the "
                           "time of recording)");
          }
        }
        ValidateEvidence(consent.evidence(), consent.has_evidence(),
                         "consent.evidence", /*for_withdrawal=*/false, now,
                         &violations);
        if (!violations.empty()) return violations.ToStatus();

        // As for residence records: a merge moving the consents holds this
        // lock, so none is recorded under a person merged meanwhile.
        if (absl::Status s = LockConsents(tx, person_id); !s.ok()) return s;
        absl::StatusOr<PersonLookup> person =
            FindPerson(tx, *access_matcher_, person_id, /*for_write=*/true);
        if (!person.ok()) return person.status();
        trail->resource =
            absl::StrCat(PersonResourceName(person->id), "/consents");
        if (absl::Status s = RequireRead(tx, *access_rules_, *person, caller,
                                         DataCategory::kCoreIdentity, rc);
            !s.ok()) {
          return s;
        }
        // Consent is never self-service: the person's case owner or another
        // agency acting for the person records it, never an agency it opens
        // data to.
        const bool for_self =
            consent.recipient_case() == v1::Consent::kRecipientAgency
                ? recipient_agency == caller.id
                : LegalDomainName(static_cast<LegalDomain>(
                      consent.recipient_legal_domain())) == caller.legal_domain;
        if (for_self) {
          return ErrorWithReason(
              absl::StatusCode::kPermissionDenied, "CONSENT_FOR_SELF",
              "a consent is recorded by an agency acting for the person (the "
              "case owner, or the agency the person signed with), never by "
              "an agency it opens data to");
        }
        if (!recipient_agency.empty()) {
          absl::StatusOr<std::optional<AgencyRecord>> recipient =
              ReadAgency(tx, recipient_agency);
          if (!recipient.ok()) return recipient.status();
          if (!recipient->has_value()) {
            return ErrorWithReason(
                absl::StatusCode::kNotFound, "AGENCY_NOT_FOUND",
                absl::StrCat("no agency ",
                             AgencyResourceName(recipient_agency)));
          }
        }

        v1::RecordConsentRequest content = request;
        content.clear_request_id();
        const api::RequestKey key{caller.id, kRecordConsentMethod,
                                  request.request_id()};
        const std::string fingerprint = api::RequestFingerprint(content);
        absl::StatusOr<std::optional<std::string>> seen =
            api::LookupRequestId(tx, key, fingerprint);
        if (!seen.ok()) return seen.status();
        if (seen->has_value()) {
          const std::string& name = **seen;
          trail->resource = name;
          absl::StatusOr<std::optional<ConsentRecord>> first =
              ReadConsentById(tx, name.substr(name.rfind('/') + 1));
          if (!first.ok()) return first.status();
          if (!first->has_value()) {
            return absl::InternalError("recorded consent is gone");
          }
          ConsentToProto(**first, now, response);
          return absl::OkStatus();
        }

        absl::StatusOr<std::string> id = api::NewId();
        if (!id.ok()) return id.status();
        ConsentRecord record;
        record.id = *id;
        record.person_id = person->id;
        record.version = 1;
        record.create_time = now;
        // Only the client fields; output-only ones are ours to set.
        v1::Consent& f = record.fields;
        f.mutable_categories()->CopyFrom(consent.categories());
        if (consent.recipient_case() == v1::Consent::kRecipientAgency) {
          f.set_recipient_agency(AgencyResourceName(recipient_agency));
        } else {
          f.set_recipient_legal_domain(consent.recipient_legal_domain());
        }
        f.mutable_purposes()->CopyFrom(consent.purposes());
        *f.mutable_valid_from() = ToTimestamp(valid_from);
        if (consent.has_valid_until()) {
          *f.mutable_valid_until() = consent.valid_until();
        }
        *f.mutable_evidence() = consent.evidence();
        f.set_recording_agency(AgencyResourceName(caller.id));
        f.set_recording_actor(rc.actor);
        *f.mutable_create_time() = ToTimestamp(now);
        if (absl::Status s = InsertConsent(tx, record); !s.ok()) return s;
        const std::string name = ConsentResourceName(person->id, record.id);
        trail->resource = name;
        if (absl::Status s = api::RecordRequestId(tx, key, fingerprint, name);
            !s.ok()) {
          return s;
        }
        if (absl::Status s =
                EnqueueConsentEvent<v1::ConsentRecorded>(tx, record);
            !s.ok()) {
          return s;
        }
        ConsentToProto(record, now, response);
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoGetConsent(
    const RequestContext& rc, const v1::GetConsentRequest& request,
    v1::Consent* response) {
  return RunAccessAudited(
      rc, kGetConsentMethod, ConsentTarget(request.name()),
      /*admit_services=*/false, /*read_only=*/true,
      [&](Transaction& tx, const AgencyRecord& caller,
          AccessTrail* trail) -> absl::Status {
        trail->categories = {"CORE_IDENTITY"};
        FieldViolations violations;
        const auto [person_id, consent_id] =
            ParseConsentName(request.name(), "name", &violations);
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<PersonLookup> person =
            FindPerson(tx, *access_matcher_, person_id, /*for_write=*/false);
        if (!person.ok()) return person.status();
        // A merge moved the consents to the survivor.
        absl::StatusOr<std::optional<ConsentRecord>> found =
            ReadConsent(tx, person->id, consent_id);
        if (!found.ok()) return found.status();
        if (!found->has_value()) {
          return ErrorWithReason(absl::StatusCode::kNotFound,
                                 "CONSENT_NOT_FOUND", "no such consent");
        }
        trail->resource = ConsentResourceName(person->id, consent_id);
        if (!RecordsOrReceives(caller, **found)) {
          if (absl::Status s = RequireRead(tx, *access_rules_, *person, caller,
                                           DataCategory::kCoreIdentity, rc);
              !s.ok()) {
            return s;
          }
        }
        ConsentToProto(**found, absl::Now(), response);
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoWithdrawConsent(
    const RequestContext& rc, const v1::WithdrawConsentRequest& request,
    v1::Consent* response) {
  return RunAccessAudited(
      rc, kWithdrawConsentMethod, ConsentTarget(request.name()),
      /*admit_services=*/false, /*read_only=*/false,
      [&](Transaction& tx, const AgencyRecord& caller,
          AccessTrail* trail) -> absl::Status {
        trail->categories = {"CORE_IDENTITY"};
        const absl::Time now = StoreNow();
        FieldViolations violations;
        const auto [person_id, consent_id] =
            ParseConsentName(request.name(), "name", &violations);
        if (request.etag().empty()) violations.Add("etag", "is required");
        ValidateEvidence(request.evidence(), request.has_evidence(), "evidence",
                         /*for_withdrawal=*/true, now, &violations);
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<PersonLookup> person =
            FindPerson(tx, *access_matcher_, person_id, /*for_write=*/true);
        if (!person.ok()) return person.status();
        if (absl::Status s = RequireRead(tx, *access_rules_, *person, caller,
                                         DataCategory::kCoreIdentity, rc);
            !s.ok()) {
          return s;
        }
        if (absl::Status s = LockConsents(tx, person->id); !s.ok()) return s;
        absl::StatusOr<std::optional<ConsentRecord>> found =
            ReadConsent(tx, person->id, consent_id);
        if (!found.ok()) return found.status();
        if (!found->has_value()) {
          return ErrorWithReason(absl::StatusCode::kNotFound,
                                 "CONSENT_NOT_FOUND", "no such consent");
        }
        ConsentRecord record = **std::move(found);
        const std::string name = ConsentResourceName(person->id, consent_id);
        trail->resource = name;
        if (record.fields.has_withdraw_time()) {
          return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                                 "CONSENT_ALREADY_WITHDRAWN",
                                 "the consent is already withdrawn");
        }
        if (absl::Status s = api::CheckEtag(
                request.etag(), api::ComputeEtag(name, record.version));
            !s.ok()) {
          return s;
        }
        const int64_t old_version = record.version;
        record.version = old_version + 1;
        *record.fields.mutable_withdraw_time() = ToTimestamp(now);
        record.fields.set_withdrawing_agency(AgencyResourceName(caller.id));
        *record.fields.mutable_withdrawal_evidence() = request.evidence();
        absl::StatusOr<bool> written = WriteWithdrawal(tx, record, old_version);
        if (!written.ok()) return written.status();
        if (!*written) return api::CheckEtag("", "changed");
        if (absl::Status s =
                EnqueueConsentEvent<v1::ConsentWithdrawn>(tx, record);
            !s.ok()) {
          return s;
        }
        ConsentToProto(record, now, response);
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoListConsents(
    const RequestContext& rc, const v1::ListConsentsRequest& request,
    v1::ListConsentsResponse* response) {
  return RunAccessAudited(
      rc, kListConsentsMethod, PersonTarget(request.parent(), "/consents"),
      /*admit_services=*/false, /*read_only=*/true,
      [&](Transaction& tx, const AgencyRecord& caller,
          AccessTrail* trail) -> absl::Status {
        trail->categories = {"CORE_IDENTITY"};
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.parent(), "parent", &violations);
        const int page_size = api::NormalizePageSize(request.page_size(),
                                                     "page_size", &violations);
        const int state = request.state();
        if (!v1::ConsentState_IsValid(state)) {
          violations.Add("state",
                         absl::StrCat("unknown consent state ", state));
        }
        const std::string fingerprint =
            absl::StrCat(request.parent(), "|", state);
        // The last item's "create_us/id" (the list order's key).
        const std::string after = api::DecodePageToken(
            request.page_token(), fingerprint, "page_token", &violations);
        int64_t after_us = 0;
        std::string after_id;
        if (!after.empty()) {
          std::pair<std::string, std::string> parts =
              absl::StrSplit(after, absl::MaxSplits('/', 1));
          if (!absl::SimpleAtoi(parts.first, &after_us)) {
            violations.Add("page_token", "is not a valid page token");
          }
          after_id = parts.second;
        }
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<PersonLookup> person =
            FindPerson(tx, *access_matcher_, person_id, /*for_write=*/false);
        if (!person.ok()) return person.status();
        trail->resource =
            absl::StrCat(PersonResourceName(person->id), "/consents");
        // Agencies that may read the person see every consent; others only
        // those they recorded or receive (GetConsent's rule, per item).
        const bool sees_all = RequireRead(tx, *access_rules_, *person, caller,
                                          DataCategory::kCoreIdentity, rc)
                                  .ok();
        absl::StatusOr<std::vector<ConsentRecord>> all =
            ListPersonConsents(tx, person->id);
        if (!all.ok()) return all.status();
        const absl::Time now = absl::Now();
        response->Clear();
        const ConsentRecord* last = nullptr;
        bool more = false;
        for (const ConsentRecord& c : *all) {
          if (!after.empty()) {
            const int64_t us = absl::ToUnixMicros(c.create_time);
            // Newest first: skip up to and including the cursor.
            if (us > after_us || (us == after_us && c.id >= after_id)) continue;
          }
          if (!sees_all && !RecordsOrReceives(caller, c)) continue;
          if (state != v1::CONSENT_STATE_UNSPECIFIED &&
              static_cast<int>(ConsentStateAt(ToPolicyConsent(c), now)) !=
                  state) {
            continue;
          }
          if (response->consents_size() == page_size) {
            more = true;
            break;
          }
          ConsentToProto(c, now, response->add_consents());
          last = &c;
        }
        if (more && last != nullptr) {
          response->set_next_page_token(api::EncodePageToken(
              fingerprint, absl::StrCat(absl::ToUnixMicros(last->create_time),
                                        "/", last->id)));
        }
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoCheckAccess(
    const RequestContext& rc, const v1::CheckAccessRequest& request,
    v1::CheckAccessResponse* response) {
  return RunAccessAudited(
      rc, kCheckAccessMethod, PersonTarget(request.person(), ""),
      /*admit_services=*/true, /*read_only=*/true,
      [&](Transaction& tx, const AgencyRecord& caller,
          AccessTrail* trail) -> absl::Status {
        FieldViolations violations;
        const std::string agency_id =
            ParseAgencyName(request.agency(), "agency", &violations);
        const std::string person_id =
            ParsePersonName(request.person(), "person", &violations);
        if (request.categories().empty()) {
          violations.Add("categories", "at least one is required");
        } else if (request.categories_size() > kMaxCheckCategories) {
          violations.Add(
              "categories",
              absl::StrCat("at most ", kMaxCheckCategories, " allowed"));
        }
        ValidateCategories(request.categories(), "categories",
                           /*forbid_private=*/false, &violations);
        api::ValidateToken(request.purpose(), "purpose", 1, 64,
                           kPurposeAlphabet, "[a-z0-9-]", &violations);
        std::vector<Relation> relations;
        for (int i = 0; i < request.relations_size(); ++i) {
          const int value = request.relations(i);
          if (!v1::Relation_IsValid(value)) {
            violations.Add(absl::StrCat("relations[", i, "]"),
                           absl::StrCat("unknown relation ", value));
          } else if (value != v1::RELATION_UNSPECIFIED) {
            relations.push_back(static_cast<Relation>(value));
          }
        }
        std::string owner_agency;
        if (!request.data_owner_agency().empty()) {
          owner_agency = ParseAgencyName(request.data_owner_agency(),
                                         "data_owner_agency", &violations);
        }
        if (!violations.empty()) return violations.ToStatus();
        for (int category : request.categories()) {
          trail->categories.push_back(CategoryName(category));
        }
        if (!rc.caller.is_service()) {
          // An agency asks only about itself, and its own word on relations
          // counts for nothing.
          if (agency_id != caller.id) {
            return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                   "AGENCY_NOT_CALLER",
                                   "an agency may only check its own access");
          }
          relations.clear();
        }
        absl::StatusOr<PersonLookup> person =
            FindPerson(tx, *access_matcher_, person_id, /*for_write=*/false);
        // An agency asking about a person that does not exist hears what it
        // would about one it has no standing towards: decisions, all
        // denied, never NOT_FOUND (no existence oracle).
        const bool absent_for_agency =
            !rc.caller.is_service() &&
            ReasonOf(person.status()) == "PERSON_NOT_FOUND";
        if (!person.ok() && !absent_for_agency) return person.status();
        const absl::Status absent_status = person.status();
        if (absent_for_agency) {
          person = PersonLookup{};
          person->id = person_id;
        }
        trail->resource = PersonResourceName(person->id);
        absl::StatusOr<std::optional<AgencyRecord>> agency =
            ReadAgency(tx, agency_id);
        if (!agency.ok()) return agency.status();
        if (!agency->has_value()) {
          return ErrorWithReason(
              absl::StatusCode::kNotFound, "AGENCY_NOT_FOUND",
              absl::StrCat("no agency ", AgencyResourceName(agency_id)));
        }
        const AccessSubject subject = SubjectOf(**agency);
        const absl::Time now = absl::Now();
        response->Clear();
        response->set_person(PersonResourceName(person->id));
        for (int value : request.categories()) {
          const auto category = static_cast<DataCategory>(value);
          const bool wrote = category == DataCategory::kPrivateNotes &&
                             owner_agency == agency_id;
          absl::StatusOr<AccessDecision> d =
              absent_for_agency
                  ? DecideFromStanding(*access_rules_, subject, person->id,
                                       Standing{}, category, request.purpose(),
                                       {}, false, now)
                  : DecideAccess(tx, *access_rules_, *person, subject, category,
                                 request.purpose(), relations, wrote, now);
          if (!d.ok()) return d.status();
          // A rule that needs no relation lets the agency read every
          // person: then there is no existence to hide.
          if (absent_for_agency && d->allowed) return absent_status;
          v1::AccessDecision* out = response->add_decisions();
          out->set_category(static_cast<type::v1::DataCategory>(value));
          out->set_allowed(d->allowed);
          out->set_basis(static_cast<v1::AccessBasis>(d->basis));
          out->set_rule_id(d->rule_id);
          out->set_consent(d->consent);
          out->set_denial_reason(
              static_cast<type::v1::AccessDenialReason>(d->denial_reason));

          // One record per decision, about the agency it concerns, so the
          // person's transparency report shows that agency and the ground.
          audit::AuditRecord record;
          record.agency_id = subject.agency_id;
          record.legal_domain = (*agency)->legal_domain;
          record.actor = rc.actor;
          record.purpose = request.purpose();
          record.operation = kCheckAccessMethod;
          record.resource = PersonResourceName(person->id);
          record.data_categories = {CategoryName(value)};
          if (d->allowed) {
            record.reason = std::string(AccessBasisName(d->basis));
            if (!d->rule_id.empty())
              absl::StrAppend(&record.reason, ":", d->rule_id);
            if (!d->consent.empty())
              absl::StrAppend(&record.reason, ":", d->consent);
          } else {
            record.outcome = audit::Outcome::kDenied;
            record.reason =
                std::string(AccessDenialReasonName(d->denial_reason));
          }
          trail->decisions.push_back(std::move(record));
        }
        return absl::OkStatus();
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

}  // namespace lotse::identity
