// The consent RPCs of IdentityServiceImpl: RecordConsent, GetConsent,
// WithdrawConsent and ListConsents. A consent record is core identity
// data: every record of these calls carries CORE_IDENTITY. Who may record,
// see and withdraw a consent is decided by person_access.h and the rules in
// domain/consent.h, from facts read in the same transaction, so a
// withdrawal or an expiry changes the very next decision.
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/names.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "services/identity/domain/consent.h"
#include "services/identity/service/handler_support.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/agency_store.h"
#include "services/identity/store/consent_store.h"

namespace lotse::identity {
namespace {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::api::FromTimestamp;
using ::lotse::api::ToTimestamp;
using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

constexpr int kMaxPurposes = 20;

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

std::string ConsentTarget(absl::string_view name) {
  FieldViolations ignored;
  const auto [person, consent] = ParseConsentName(name, "", &ignored);
  return person.empty() ? "persons" : ConsentResourceName(person, consent);
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

bool RecordsOrReceives(const LocalAgency& caller, const ConsentRecord& record) {
  return RecordsOrReceivesConsent(record.fields, caller.id,
                                  caller.legal_domain);
}

// What a valid RecordConsent request asks to record.
struct ConsentRequest {
  std::string person_id;
  std::string recipient_agency;  // the id, when the recipient is an agency
  absl::Time valid_from;
};

// RecordConsent's fields, judged at `now`.
ConsentRequest ValidateRecording(const v1::RecordConsentRequest& request,
                                 absl::Time now, FieldViolations* violations) {
  ConsentRequest out;
  out.person_id = ParsePersonName(request.parent(), "parent", violations);
  api::ValidateRequestId(request.request_id(), "request_id", violations);
  const v1::Consent& consent = request.consent();
  if (!request.has_consent()) violations->Add("consent", "is required");
  if (consent.categories().empty()) {
    violations->Add("consent.categories", "at least one is required");
  }
  ValidateDataCategories(consent.categories(), "consent.categories",
                         /*forbid_private=*/true, violations);
  switch (consent.recipient_case()) {
    case v1::Consent::kRecipientAgency:
      out.recipient_agency = ParseAgencyName(
          consent.recipient_agency(), "consent.recipient_agency", violations);
      break;
    case v1::Consent::kRecipientLegalDomain: {
      const int domain = consent.recipient_legal_domain();
      if (domain == type::v1::LEGAL_DOMAIN_UNSPECIFIED) {
        violations->Add("consent.recipient_legal_domain",
                        "must be a specified legal domain");
      } else if (!type::v1::LegalDomain_IsValid(domain)) {
        violations->Add("consent.recipient_legal_domain",
                        absl::StrCat("unknown legal domain ", domain));
      }
      break;
    }
    default:
      violations->Add("consent.recipient",
                      "recipient_agency or recipient_legal_domain is "
                      "required");
  }
  if (consent.purposes().empty()) {
    violations->Add("consent.purposes", "at least one is required");
  } else if (consent.purposes_size() > kMaxPurposes) {
    violations->Add("consent.purposes",
                    absl::StrCat("at most ", kMaxPurposes, " allowed"));
  }
  std::set<std::string> purposes;
  for (int i = 0; i < consent.purposes_size(); ++i) {
    const std::string field = absl::StrCat("consent.purposes[", i, "]");
    if (ValidatePurpose(consent.purposes(i), field, violations) &&
        !purposes.insert(consent.purposes(i)).second) {
      violations->Add(field, "is repeated");
    }
  }
  out.valid_from = now;
  bool times_ok = true;
  if (consent.has_valid_from()) {
    if (ValidTimestamp(consent.valid_from())) {
      out.valid_from = FromTimestamp(consent.valid_from());
    } else {
      times_ok = false;
      violations->Add("consent.valid_from", "is not a valid timestamp");
    }
  }
  if (consent.has_valid_until()) {
    if (!ValidTimestamp(consent.valid_until())) {
      violations->Add("consent.valid_until", "is not a valid timestamp");
    } else if (times_ok &&
               FromTimestamp(consent.valid_until()) <= out.valid_from) {
      violations->Add("consent.valid_until",
                      "must be after valid_from (or, when unset, the time "
                      "of recording)");
    }
  }
  ValidateConsentEvidence(consent.evidence(), consent.has_evidence(),
                          "consent.evidence", /*for_withdrawal=*/false, now,
                          violations);
  return out;
}

// The record of a new consent `id` as `caller` records it: only the client
// fields of `consent`; output-only ones are ours to set.
ConsentRecord NewConsent(const std::string& id, const ConsentRequest& asked,
                         const v1::Consent& consent, const LocalAgency& caller,
                         const std::string& actor, absl::Time now) {
  ConsentRecord record;
  record.id = id;
  record.person_id = asked.person_id;
  record.version = 1;
  record.create_time = now;
  v1::Consent& f = record.fields;
  f.mutable_categories()->CopyFrom(consent.categories());
  if (consent.recipient_case() == v1::Consent::kRecipientAgency) {
    f.set_recipient_agency(AgencyResourceName(asked.recipient_agency));
  } else {
    f.set_recipient_legal_domain(consent.recipient_legal_domain());
  }
  f.mutable_purposes()->CopyFrom(consent.purposes());
  *f.mutable_valid_from() = ToTimestamp(asked.valid_from);
  if (consent.has_valid_until()) {
    *f.mutable_valid_until() = consent.valid_until();
  }
  *f.mutable_evidence() = consent.evidence();
  f.set_recording_agency(AgencyResourceName(caller.id));
  f.set_recording_actor(actor);
  *f.mutable_create_time() = ToTimestamp(now);
  return record;
}

// Whether `caller` may record `consent` for a person it may read: never
// for itself, and only to a registered agency.
absl::Status CheckRecipient(Transaction& tx, const LocalAgency& caller,
                            const v1::Consent& consent,
                            const std::string& recipient_agency) {
  if (ConsentForSelf(consent, recipient_agency, caller.id,
                     caller.legal_domain)) {
    return ErrorWithReason(
        absl::StatusCode::kPermissionDenied, "CONSENT_FOR_SELF",
        "a consent is recorded by an agency acting for the person (the "
        "case owner, or the agency the person signed with), never by an "
        "agency it opens data to");
  }
  if (recipient_agency.empty()) return absl::OkStatus();
  absl::StatusOr<std::optional<AgencyRecord>> recipient =
      ReadAgency(tx, recipient_agency);
  if (!recipient.ok()) return recipient.status();
  if (!recipient->has_value()) {
    return ErrorWithReason(
        absl::StatusCode::kNotFound, "AGENCY_NOT_FOUND",
        absl::StrCat("no agency ", AgencyResourceName(recipient_agency)));
  }
  return absl::OkStatus();
}

absl::Status ConsentNotFound() {
  return ErrorWithReason(absl::StatusCode::kNotFound, "CONSENT_NOT_FOUND",
                         "no such consent");
}

}  // namespace

absl::Status IdentityServiceImpl::DoRecordConsent(
    const RequestContext& rc, const v1::RecordConsentRequest& request,
    v1::Consent* response) {
  AuditedCall call(call_env_, rc, "RecordConsent",
                   PersonTarget(request.parent(), "/consents"));
  if (absl::Status s = RequireAccess(); !s.ok()) return call.Finish(s);
  absl::Status status = call.Write([&](Transaction& tx,
                                       const LocalAgency& caller)
                                       -> absl::Status {
    call.set_target_categories({kCoreIdentity});
    const absl::Time now = api::StoreNow();
    FieldViolations violations;
    const ConsentRequest asked = ValidateRecording(request, now, &violations);
    if (!violations.empty()) return violations.ToStatus();

    // As for residence records: a merge moving the consents holds this
    // lock, so none is recorded under a person merged meanwhile.
    if (absl::Status s = LockConsents(tx, asked.person_id); !s.ok()) return s;
    absl::StatusOr<PersonLookup> person =
        FindPerson(tx, *access_matcher_, asked.person_id, /*for_write=*/true);
    if (!person.ok()) return person.status();
    call.set_target(absl::StrCat(PersonResourceName(person->id), "/consents"));
    if (absl::Status s = RequireRead(tx, *access_rules_, *person, caller,
                                     DataCategory::kCoreIdentity, rc);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckRecipient(tx, caller, request.consent(),
                                        asked.recipient_agency);
        !s.ok()) {
      return s;
    }

    const api::IdempotentCreate once(caller.id, rc.method, request);
    absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
    if (!seen.ok()) return seen.status();
    if (seen->has_value()) {
      const std::string& name = **seen;
      call.set_target(name);
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
    ConsentRecord record =
        NewConsent(*id, asked, request.consent(), caller, rc.actor, now);
    record.person_id = person->id;
    if (absl::Status s = InsertConsent(tx, record); !s.ok()) return s;
    const std::string name = ConsentResourceName(person->id, record.id);
    call.set_target(name);
    if (absl::Status s = once.Record(tx, name); !s.ok()) return s;
    if (absl::Status s = EnqueueConsentEvent<v1::ConsentRecorded>(tx, record);
        !s.ok()) {
      return s;
    }
    ConsentToProto(record, now, response);
    return absl::OkStatus();
  });
  return FinishAccessCall(call, DataCategory::kCoreIdentity, status);
}

absl::Status IdentityServiceImpl::DoGetConsent(
    const RequestContext& rc, const v1::GetConsentRequest& request,
    v1::Consent* response) {
  AuditedCall call(call_env_, rc, "GetConsent", ConsentTarget(request.name()));
  if (absl::Status s = RequireAccess(); !s.ok()) return call.Finish(s);
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        call.set_target_categories({kCoreIdentity});
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
        if (!found->has_value()) return ConsentNotFound();
        call.set_target(ConsentResourceName(person->id, consent_id));
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
  return FinishAccessCall(call, DataCategory::kCoreIdentity, status);
}

absl::Status IdentityServiceImpl::DoWithdrawConsent(
    const RequestContext& rc, const v1::WithdrawConsentRequest& request,
    v1::Consent* response) {
  AuditedCall call(call_env_, rc, "WithdrawConsent",
                   ConsentTarget(request.name()));
  if (absl::Status s = RequireAccess(); !s.ok()) return call.Finish(s);
  absl::Status status = call.Write(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        call.set_target_categories({kCoreIdentity});
        const absl::Time now = api::StoreNow();
        FieldViolations violations;
        const auto [person_id, consent_id] =
            ParseConsentName(request.name(), "name", &violations);
        if (request.etag().empty()) violations.Add("etag", "is required");
        ValidateConsentEvidence(request.evidence(), request.has_evidence(),
                                "evidence", /*for_withdrawal=*/true, now,
                                &violations);
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
        if (!found->has_value()) return ConsentNotFound();
        ConsentRecord record = **std::move(found);
        const std::string name = ConsentResourceName(person->id, consent_id);
        call.set_target(name);
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
  return FinishAccessCall(call, DataCategory::kCoreIdentity, status);
}

absl::Status IdentityServiceImpl::DoListConsents(
    const RequestContext& rc, const v1::ListConsentsRequest& request,
    v1::ListConsentsResponse* response) {
  AuditedCall call(call_env_, rc, "ListConsents",
                   PersonTarget(request.parent(), "/consents"));
  if (absl::Status s = RequireAccess(); !s.ok()) return call.Finish(s);
  absl::Status status = call.Read([&](Transaction& tx,
                                      const LocalAgency& caller)
                                      -> absl::Status {
    call.set_target_categories({kCoreIdentity});
    FieldViolations violations;
    const std::string person_id =
        ParsePersonName(request.parent(), "parent", &violations);
    const int page_size =
        api::NormalizePageSize(request.page_size(), "page_size", &violations);
    const int state = request.state();
    if (!v1::ConsentState_IsValid(state)) {
      violations.Add("state", absl::StrCat("unknown consent state ", state));
    }
    const std::string fingerprint = absl::StrCat(request.parent(), "|", state);
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
    call.set_target(absl::StrCat(PersonResourceName(person->id), "/consents"));
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
          static_cast<int>(ConsentStateAt(ToPolicyConsent(c), now)) != state) {
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
          fingerprint,
          absl::StrCat(absl::ToUnixMicros(last->create_time), "/", last->id)));
    }
    return absl::OkStatus();
  });
  return FinishAccessCall(call, DataCategory::kCoreIdentity, status);
}

}  // namespace lotse::identity
