// The data lifecycle RPCs of IdentityServiceImpl: legal holds, erasure of a
// person and the revisions of a person's core record (see the lifecycle
// section of identity_service.h).
//
// Who may act: DATA_PROTECTION agencies, and the KOMMUNE agency owning a
// case of the person (for a case subject: that case). Other domains are
// refused with WRONG_LEGAL_DOMAIN before the request's person is looked
// at; a KOMMUNE agency that owns no case of the person hears NOT_CASE_OWNER
// whether or not the person exists. Only DATA_PROTECTION callers, whose
// office is to answer for the data, are told NOT_FOUND for an unknown
// person.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/agencies/registry.h"
#include "common/api/idempotency.h"
#include "common/api/names.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/person_keys.h"
#include "lotse/type/v1/data_category.pb.h"
#include "services/identity/domain/agency.h"
#include "services/identity/service/handler_support.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/lifecycle_store.h"
#include "services/identity/store/relation_store.h"

namespace lotse::identity {
namespace {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::identity::v1::Erasure;
using ::lotse::identity::v1::LegalHold;
using ::lotse::identity::v1::ServiceErasure;
using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

constexpr char kHoldPattern[] = "legalHolds/{hold}";
constexpr char kCasePattern[] = "cases/{case}";
constexpr char kErasurePattern[] = "persons/{person}/erasure";
// The longest a hold may last, from today.
constexpr int kMaxHoldYears = 10;

bool IsDataProtection(const LocalAgency& caller) {
  return caller.legal_domain == agencies::kDataProtectionDomain;
}

// WRONG_LEGAL_DOMAIN for every domain but KOMMUNE and DATA_PROTECTION.
absl::Status RequireLifecycleDomain(const LocalAgency& caller) {
  if (IsDataProtection(caller) || caller.legal_domain == "KOMMUNE") {
    return absl::OkStatus();
  }
  return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                         "WRONG_LEGAL_DOMAIN",
                         "legal holds and erasures are decided by the "
                         "person's case owner (KOMMUNE) and the "
                         "data-protection officer (DATA_PROTECTION)");
}

absl::Status NotCaseOwner() {
  return ErrorWithReason(absl::StatusCode::kPermissionDenied, "NOT_CASE_OWNER",
                         "only the agency owning a case of the person (for a "
                         "case: that case) may do this");
}

// What a caller is told about person `id` it may act on only as case
// owner or data-protection officer: NOT_FOUND for the latter, the
// refusal of a non-owner for anyone else.
absl::Status UnknownPerson(const LocalAgency& caller, absl::string_view id) {
  if (IsDataProtection(caller)) return PersonNotFoundError(id);
  return NotCaseOwner();
}

// The caller may act on `person_id` (and, when `case_name` is given, on
// that case of it): DATA_PROTECTION always; a KOMMUNE agency as owner.
absl::Status RequireOwnerOrDataProtection(Transaction& tx,
                                          const LocalAgency& caller,
                                          const std::string& person_id,
                                          const std::string& case_name) {
  if (IsDataProtection(caller)) return absl::OkStatus();
  absl::StatusOr<bool> owner = OwnsCaseOf(tx, person_id, caller.id, case_name);
  if (!owner.ok()) return owner.status();
  return *owner ? absl::OkStatus() : NotCaseOwner();
}

// The person a lifecycle call names, resolved for the caller: NOT_FOUND
// or NOT_CASE_OWNER (UnknownPerson) when unknown or erased.
absl::StatusOr<PersonLookup> FindForLifecycle(Transaction& tx,
                                              const DuplicateMatcher& matcher,
                                              const LocalAgency& caller,
                                              const std::string& id) {
  PersonStore store(tx, matcher);
  absl::StatusOr<PersonLookup> found = store.Get(id);
  if (found.ok()) return found;
  if (found.status().code() == absl::StatusCode::kNotFound) {
    return UnknownPerson(caller, id);
  }
  return found.status();
}

std::string DateText(const type::v1::Date& date) {
  return absl::StrFormat("%04d-%02d-%02d", date.year(), date.month(),
                         date.day());
}

absl::CivilDay TodayInBerlin(absl::Time now) {
  static const absl::TimeZone* const zone = [] {
    auto* tz = new absl::TimeZone(absl::UTCTimeZone());
    if (!absl::LoadTimeZone("Europe/Berlin", tz)) *tz = absl::UTCTimeZone();
    return tz;
  }();
  return absl::ToCivilDay(now, *zone);
}

// The fields of a hold to place; the subject's person id and, for a case
// subject, the case's name.
struct HoldSubject {
  std::string person_id;
  std::string case_name;
  absl::Time end_time;
};

HoldSubject ValidateHold(const v1::PlaceLegalHoldRequest& request,
                         absl::Time now, FieldViolations* violations) {
  HoldSubject out;
  api::ValidateRequestId(request.request_id(), "request_id", violations);
  const LegalHold& hold = request.hold();
  if (hold.subject().empty()) {
    violations->Add("hold.subject", "is required");
  } else if (absl::StartsWith(hold.subject(), "persons/")) {
    out.person_id = ParsePersonName(hold.subject(), "hold.subject", violations);
    if (!hold.person().empty() && hold.person() != hold.subject()) {
      violations->Add("hold.person",
                      "must be empty or the subject for a person subject");
    }
  } else if (absl::StartsWith(hold.subject(), "cases/")) {
    if (!api::ParseNameId(hold.subject(), kCasePattern, "hold.subject",
                          violations)
             .empty()) {
      out.case_name = hold.subject();
    }
    if (hold.person().empty()) {
      violations->Add("hold.person", "is required for a case subject");
    } else {
      out.person_id = ParsePersonName(hold.person(), "hold.person", violations);
    }
  } else {
    violations->Add("hold.subject", "must be persons/{person} or cases/{case}");
  }
  api::ValidateText(hold.reason(), "hold.reason", api::TextRules{1, 500, false},
                    violations);
  if (!hold.has_end_date()) {
    violations->Add("hold.end_date", "is required");
  } else {
    std::optional<absl::Time> end = HoldEndTime(hold.end_date());
    if (!end.has_value()) {
      violations->Add("hold.end_date", "is not a valid date");
    } else {
      const absl::CivilDay today = TodayInBerlin(now);
      const absl::CivilDay day(hold.end_date().year(), hold.end_date().month(),
                               hold.end_date().day());
      const absl::CivilDay last(today.year() + kMaxHoldYears, today.month(),
                                today.day());
      if (day < today) {
        violations->Add("hold.end_date", "must not be in the past");
      } else if (day > last) {
        violations->Add("hold.end_date", "must be at most 10 years ahead");
      } else {
        out.end_time = *end;
      }
    }
  }
  return out;
}

template <typename Payload>
absl::Status EnqueueHoldEvent(Transaction& tx, const std::string& person_id,
                              const LegalHold& hold) {
  Payload payload;
  *payload.mutable_hold() = hold;
  return EnqueuePersonEvent(tx, person_id, payload);
}

type::v1::DataCategory CategoryOf(const std::string& name) {
  type::v1::DataCategory category = type::v1::DATA_CATEGORY_UNSPECIFIED;
  type::v1::DataCategory_Parse(absl::StrCat("DATA_CATEGORY_", name), &category);
  return category;
}

}  // namespace

void IdentityServiceImpl::EnableLifecycle(
    std::vector<std::string> services, const lifecycle::RetentionRules* rules) {
  // Identity first, then the others by name (Erasure.services).
  services.erase(std::remove(services.begin(), services.end(), "identity"),
                 services.end());
  std::sort(services.begin(), services.end());
  services.erase(std::unique(services.begin(), services.end()), services.end());
  erasure_services_ = std::move(services);
  retention_ = rules;
}

void IdentityServiceImpl::RegisterLifecycleRpcs() {
  Handle("PlaceLegalHold", this, &IdentityServiceImpl::DoPlaceLegalHold);
  Handle("ReleaseLegalHold", this, &IdentityServiceImpl::DoReleaseLegalHold);
  Handle("ListLegalHolds", this, &IdentityServiceImpl::DoListLegalHolds);
  Handle("ErasePerson", this, &IdentityServiceImpl::DoErasePerson);
  Handle("GetErasureStatus", this, &IdentityServiceImpl::DoGetErasureStatus);
  Handle("ListPersonRevisions", this,
         &IdentityServiceImpl::DoListPersonRevisions);
}

absl::Status IdentityServiceImpl::DoPlaceLegalHold(
    const RequestContext& rc, const v1::PlaceLegalHoldRequest& request,
    v1::LegalHold* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(
      call_env_, rc, "PlaceLegalHold",
      PersonTarget(request.hold().person().empty() ? request.hold().subject()
                                                   : request.hold().person()));
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Write(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        const absl::Time now = absl::Now();
        FieldViolations violations;
        const HoldSubject subject = ValidateHold(request, now, &violations);
        if (!violations.empty()) return violations.ToStatus();
        if (absl::Status s = RequireLifecycleDomain(caller); !s.ok()) return s;
        const api::IdempotentCreate once(caller.id, rc.method, request);
        absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
        if (!seen.ok()) return seen.status();
        if (seen->has_value()) {
          absl::StatusOr<std::optional<HoldRecord>> first =
              ReadHold(tx, (**seen).substr(sizeof("legalHolds/") - 1), now);
          if (!first.ok()) return first.status();
          if (!first->has_value()) {
            return absl::InternalError("a recorded hold is missing");
          }
          AuditPerson(call, (*first)->hold.person());
          *response = (*first)->hold;
          return absl::OkStatus();
        }
        absl::StatusOr<PersonLookup> person =
            FindForLifecycle(tx, *matcher_, caller, subject.person_id);
        if (!person.ok()) return person.status();
        if (absl::Status s = RequireOwnerOrDataProtection(
                tx, caller, person->id, subject.case_name);
            !s.ok()) {
          return s;
        }
        if (person->merged) return MergedError(*person);
        call.set_target(PersonResourceName(person->id));
        if (!subject.case_name.empty()) {
          // Checked against what identity knows of the case; a closed case
          // left no relations behind, and its person is taken as given.
          absl::StatusOr<std::vector<std::string>> persons =
              PersonsOfSource(tx, subject.case_name);
          if (!persons.ok()) return persons.status();
          if (!persons->empty() && std::find(persons->begin(), persons->end(),
                                             person->id) == persons->end()) {
            return InvalidArgumentError(
                {{"hold.person", "is not the person of the case"}});
          }
        }
        absl::StatusOr<std::string> id = api::NewId();
        if (!id.ok()) return id.status();
        HoldRecord record;
        record.id = *id;
        record.person_id = person->id;
        record.placing_agency = caller.id;
        record.create_time = api::StoreNow();
        record.end_time = subject.end_time;
        LegalHold& hold = record.hold;
        hold.set_name(HoldResourceName(*id));
        hold.set_subject(request.hold().subject());
        hold.set_person(PersonResourceName(person->id));
        hold.set_reason(request.hold().reason());
        *hold.mutable_end_date() = request.hold().end_date();
        hold.set_placing_agency(AgencyResourceName(caller.id));
        *hold.mutable_create_time() = api::ToTimestamp(record.create_time);
        if (absl::Status s = InsertHold(tx, record); !s.ok()) return s;
        if (absl::Status s = lifecycle::ApplyHold(tx, hold); !s.ok()) return s;
        if (absl::Status s =
                EnqueueHoldEvent<v1::LegalHoldPlaced>(tx, person->id, hold);
            !s.ok()) {
          return s;
        }
        if (absl::Status s = once.Record(tx, hold.name()); !s.ok()) return s;
        AuditPerson(call, hold.person(),
                    absl::StrCat("LEGAL_HOLD_PLACED:", hold.name()));
        *response = hold;
        response->set_state(LegalHold::STATE_ACTIVE);
        return absl::OkStatus();
      });
  return call.Finish(std::move(status));
}

absl::Status IdentityServiceImpl::DoReleaseLegalHold(
    const RequestContext& rc, const v1::ReleaseLegalHoldRequest& request,
    v1::LegalHold* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "ReleaseLegalHold", "legalHolds");
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Write(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id =
            api::ParseNameId(request.name(), kHoldPattern, "name", &violations);
        api::ValidateText(request.reason(), "reason",
                          api::TextRules{1, 500, false}, &violations);
        if (!violations.empty()) return violations.ToStatus();
        const absl::Time now = absl::Now();
        absl::StatusOr<std::optional<HoldRecord>> found = ReadHold(tx, id, now);
        if (!found.ok()) return found.status();
        if (!found->has_value()) {
          return ErrorWithReason(absl::StatusCode::kNotFound,
                                 "LEGAL_HOLD_NOT_FOUND",
                                 "no legal hold with this name");
        }
        HoldRecord& record = **found;
        call.set_target(record.hold.person());
        if (record.placing_agency != caller.id && !IsDataProtection(caller)) {
          return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                 "NOT_HOLD_OWNER",
                                 "only the placing agency and the "
                                 "data-protection officer may release a hold");
        }
        if (record.hold.state() != LegalHold::STATE_ACTIVE) {
          return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                                 "LEGAL_HOLD_INACTIVE",
                                 "the hold already ended or was released");
        }
        *record.hold.mutable_release_time() = api::ToTimestamp(api::StoreNow());
        record.hold.set_releasing_agency(AgencyResourceName(caller.id));
        record.hold.set_release_reason(request.reason());
        absl::StatusOr<bool> written = WriteHoldRelease(tx, record);
        if (!written.ok()) return written.status();
        if (!*written) {
          return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                                 "LEGAL_HOLD_INACTIVE",
                                 "the hold was released meanwhile");
        }
        record.hold.set_state(LegalHold::STATE_RELEASED);
        if (absl::Status s = lifecycle::ApplyHold(tx, record.hold); !s.ok()) {
          return s;
        }
        if (absl::Status s = EnqueueHoldEvent<v1::LegalHoldReleased>(
                tx, record.person_id, record.hold);
            !s.ok()) {
          return s;
        }
        AuditPerson(call, record.hold.person(),
                    absl::StrCat("LEGAL_HOLD_RELEASED:", record.hold.name()));
        *response = record.hold;
        return absl::OkStatus();
      });
  return call.Finish(std::move(status));
}

absl::Status IdentityServiceImpl::DoListLegalHolds(
    const RequestContext& rc, const v1::ListLegalHoldsRequest& request,
    v1::ListLegalHoldsResponse* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(
      call_env_, rc, "ListLegalHolds",
      request.person().empty() ? "legalHolds" : PersonTarget(request.person()));
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        std::string person_id;
        if (!request.person().empty()) {
          person_id = ParsePersonName(request.person(), "person", &violations);
        }
        const int page_size = api::NormalizePageSize(request.page_size(),
                                                     "page_size", &violations);
        const std::string fingerprint =
            absl::StrCat(AgencyResourceName(caller.id), "|", request.person(),
                         "|", request.include_inactive());
        const std::string after = api::DecodePageToken(
            request.page_token(), fingerprint, "page_token", &violations);
        if (!violations.empty()) return violations.ToStatus();
        HoldFilter filter;
        filter.include_inactive = request.include_inactive();
        if (!person_id.empty()) {
          if (absl::Status s = RequireLifecycleDomain(caller); !s.ok()) {
            return s;
          }
          absl::StatusOr<PersonLookup> person =
              FindForLifecycle(tx, *matcher_, caller, person_id);
          if (!person.ok()) return person.status();
          if (absl::Status s =
                  RequireOwnerOrDataProtection(tx, caller, person->id, "");
              !s.ok()) {
            return s;
          }
          filter.person_id = person->id;
          call.set_target(PersonResourceName(person->id));
        } else if (!IsDataProtection(caller)) {
          filter.placing_agency = caller.id;
        }
        absl::StatusOr<HoldPage> page =
            ListHolds(tx, filter, absl::Now(), after, page_size);
        if (!page.ok()) {
          if (page.status().code() == absl::StatusCode::kInvalidArgument) {
            return InvalidArgumentError(
                {{"page_token", "is not a token of this listing"}});
          }
          return page.status();
        }
        response->Clear();
        for (HoldRecord& record : page->holds) {
          AuditPerson(call, record.hold.person());
          *response->add_holds() = std::move(record.hold);
        }
        if (!page->next_cursor.empty()) {
          response->set_next_page_token(
              api::EncodePageToken(fingerprint, page->next_cursor));
        }
        return absl::OkStatus();
      });
  return call.Finish(std::move(status));
}

absl::Status IdentityServiceImpl::DoErasePerson(
    const RequestContext& rc, const v1::ErasePersonRequest& request,
    v1::Erasure* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "ErasePerson", PersonTarget(request.name()));
  call.set_target_categories({kCoreIdentity});
  std::vector<std::string> erased_ids;
  absl::Status status = call.Write([&](Transaction& tx,
                                       const LocalAgency& caller)
                                       -> absl::Status {
    erased_ids.clear();
    FieldViolations violations;
    api::ValidateRequestId(request.request_id(), "request_id", &violations);
    const std::string id = ParsePersonName(request.name(), "name", &violations);
    api::ValidateText(request.reason(), "reason", api::TextRules{1, 500, false},
                      &violations);
    if (!violations.empty()) return violations.ToStatus();
    if (absl::Status s = RequireLifecycleDomain(caller); !s.ok()) return s;
    const api::IdempotentCreate once(caller.id, rc.method, request);
    absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
    if (!seen.ok()) return seen.status();
    PersonStore store(tx, *matcher_);
    absl::StatusOr<std::optional<std::string>> erased_as = store.ErasedAs(id);
    if (!erased_as.ok()) return erased_as.status();
    if (erased_as->has_value()) {
      absl::StatusOr<std::optional<ErasureRecord>> erasure =
          ReadErasure(tx, **erased_as);
      if (!erasure.ok()) return erasure.status();
      const bool was_owner =
          erasure->has_value() &&
          std::find((*erasure)->owners.begin(), (*erasure)->owners.end(),
                    caller.id) != (*erasure)->owners.end();
      if (!IsDataProtection(caller) && !was_owner) return NotCaseOwner();
      if (seen->has_value() && erasure->has_value()) {
        // A retry of the call that erased the person.
        AuditPerson(call, PersonResourceName(**erased_as));
        *response = (*erasure)->erasure;
        return absl::OkStatus();
      }
      return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                             "PERSON_ERASED", "the person was already erased");
    }
    absl::StatusOr<PersonLookup> person =
        FindForLifecycle(tx, *matcher_, caller, id);
    if (!person.ok()) return person.status();
    if (absl::Status s =
            RequireOwnerOrDataProtection(tx, caller, person->id, "");
        !s.ok()) {
      return s;
    }
    if (person->merged) return MergedError(*person);
    const absl::Time now = absl::Now();
    absl::StatusOr<std::optional<HoldRecord>> hold =
        ActiveHoldOn(tx, person->id, now);
    if (!hold.ok()) return hold.status();
    if (hold->has_value()) {
      return ErrorWithReason(
          absl::StatusCode::kFailedPrecondition, "LEGAL_HOLD",
          "a legal hold on the person or one of their cases is active; "
          "nothing was erased",
          {{"hold", (*hold)->hold.name()},
           {"end_date", DateText((*hold)->hold.end_date())}});
    }
    absl::StatusOr<std::vector<std::string>> owners =
        CaseOwnersOf(tx, person->id);
    if (!owners.ok()) return owners.status();
    call.set_target(PersonResourceName(person->id));

    absl::StatusOr<std::vector<std::string>> ids = store.Erase(person->id);
    if (!ids.ok()) return ids.status();
    const lifecycle::RetentionRule* consent_rule =
        retention_ == nullptr ? nullptr : retention_->Find("consent");
    const bool keep_consents =
        consent_rule != nullptr && consent_rule->keep_on_erasure;
    int64_t erased = 0;
    KeptConsents kept;
    for (const std::string& erased_id : *ids) {
      ++erased;  // the core record
      absl::StatusOr<int64_t> deleted =
          DeletePersonRows(tx, erased_id, keep_consents);
      if (!deleted.ok()) return deleted.status();
      erased += *deleted;
      if (keep_consents) {
        absl::StatusOr<KeptConsents> these =
            KeepConsentsAsProof(tx, erased_id, now);
        if (!these.ok()) return these.status();
        kept.count += these->count;
        kept.last_end = std::max(kept.last_end, these->last_end);
      }
    }

    ErasureRecord record;
    record.person_id = person->id;
    record.owners = *std::move(owners);
    Erasure& erasure = record.erasure;
    erasure.set_name(absl::StrCat(PersonResourceName(person->id), "/erasure"));
    erasure.set_requesting_agency(AgencyResourceName(caller.id));
    erasure.set_reason(request.reason());
    *erasure.mutable_request_time() = api::ToTimestamp(now);
    ServiceErasure* own = erasure.add_services();
    own->set_service("identity");
    own->set_erased_records(erased);
    *own->mutable_report_time() = api::ToTimestamp(now);
    if (kept.count > 0) {
      own->set_state(ServiceErasure::STATE_KEPT_BY_RULE);
      v1::KeptData* data = own->add_kept();
      data->set_category(CategoryOf(consent_rule->category));
      data->set_resource_kind("consent");
      data->set_record_count(kept.count);
      data->set_legal_reference(consent_rule->basis);
      *data->mutable_keep_until() =
          api::ToTimestamp(consent_rule->DueAt(kept.last_end));
    } else {
      own->set_state(ServiceErasure::STATE_DONE);
    }
    for (const std::string& service : erasure_services_) {
      ServiceErasure* other = erasure.add_services();
      other->set_service(service);
      other->set_state(ServiceErasure::STATE_PENDING);
    }
    erasure.set_complete(ErasureComplete(erasure));
    if (absl::Status s = InsertErasure(tx, record); !s.ok()) return s;

    v1::PersonErased event;
    event.set_person(PersonResourceName(person->id));
    event.set_requesting_agency(AgencyResourceName(caller.id));
    *event.mutable_erase_time() = api::ToTimestamp(now);
    if (absl::Status s = EnqueuePersonEvent(tx, person->id, event); !s.ok()) {
      return s;
    }
    for (const std::string& erased_id : *ids) {
      if (absl::Status s = lifecycle::ShredPersonKey(tx, erased_id); !s.ok()) {
        return s;
      }
      // The reason the caller gave belongs on the trail of the erasure.
      AuditPerson(call, PersonResourceName(erased_id),
                  absl::StrCat("ERASED:", request.reason()));
    }
    if (absl::Status s = once.Record(tx, erasure.name()); !s.ok()) return s;
    erased_ids = *ids;
    *response = erasure;
    return absl::OkStatus();
  });
  if (status.ok() && match_forms_ != nullptr) match_forms_->Forget(erased_ids);
  return call.Finish(std::move(status));
}

absl::Status IdentityServiceImpl::DoGetErasureStatus(
    const RequestContext& rc, const v1::GetErasureStatusRequest& request,
    v1::Erasure* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "GetErasureStatus",
                   PersonTarget(request.name(), "/erasure"));
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::vector<std::string> ids = api::ParseName(
            request.name(), kErasurePattern, "name", &violations);
        if (!violations.empty()) return violations.ToStatus();
        if (absl::Status s = RequireLifecycleDomain(caller); !s.ok()) return s;
        PersonStore store(tx, *matcher_);
        absl::StatusOr<std::optional<std::string>> erased_as =
            store.ErasedAs(ids[0]);
        if (!erased_as.ok()) return erased_as.status();
        std::optional<ErasureRecord> record;
        if (erased_as->has_value()) {
          absl::StatusOr<std::optional<ErasureRecord>> found =
              ReadErasure(tx, **erased_as);
          if (!found.ok()) return found.status();
          record = *std::move(found);
        }
        if (!record.has_value()) {
          // Never erased: an owner of a case of a living person, and the
          // data-protection officer, learn that; anyone else is refused.
          if (!IsDataProtection(caller)) {
            absl::StatusOr<PersonLookup> person = store.Get(ids[0]);
            if (!person.ok() &&
                person.status().code() != absl::StatusCode::kNotFound) {
              return person.status();
            }
            if (!person.ok()) return NotCaseOwner();
            absl::StatusOr<bool> owner = OwnsCaseOf(tx, person->id, caller.id);
            if (!owner.ok()) return owner.status();
            if (!*owner) return NotCaseOwner();
          }
          return ErrorWithReason(absl::StatusCode::kNotFound,
                                 "ERASURE_NOT_FOUND",
                                 "the person was never erased");
        }
        if (!IsDataProtection(caller) &&
            std::find(record->owners.begin(), record->owners.end(),
                      caller.id) == record->owners.end()) {
          return NotCaseOwner();
        }
        call.set_target(record->erasure.name());
        call.TouchResource(record->erasure.name(), {kCoreIdentity});
        *response = record->erasure;
        return absl::OkStatus();
      });
  return call.Finish(std::move(status));
}

absl::Status IdentityServiceImpl::DoListPersonRevisions(
    const RequestContext& rc, const v1::ListPersonRevisionsRequest& request,
    v1::ListPersonRevisionsResponse* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "ListPersonRevisions",
                   PersonTarget(request.parent(), "/revisions"));
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id =
            ParsePersonName(request.parent(), "parent", &violations);
        const int page_size = api::NormalizePageSize(request.page_size(),
                                                     "page_size", &violations);
        const std::string fingerprint = request.parent();
        const std::string after = api::DecodePageToken(
            request.page_token(), fingerprint, "page_token", &violations);
        int64_t before = 0;
        if (!after.empty() &&
            (!absl::SimpleAtoi(after, &before) || before <= 0)) {
          violations.Add("page_token", "is not a token of this listing");
        }
        if (!violations.empty()) return violations.ToStatus();
        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonLookup> found = store.Get(id);
        if (!found.ok()) return found.status();
        const std::string shown = found->person.name();
        call.set_target(absl::StrCat(shown, "/revisions"));
        absl::StatusOr<PersonAccess> access =
            RequireCoreIdentityRead(tx, *access_policy_, rc, caller, *found);
        if (!access.ok()) return access.status();
        absl::StatusOr<RevisionPage> page =
            ListRevisions(tx, found->id, before, page_size);
        if (!page.ok()) return page.status();
        response->Clear();
        for (v1::PersonRevision& revision : page->revisions) {
          ShowTo(*access, revision.mutable_person());
          *response->add_revisions() = std::move(revision);
        }
        if (page->next_before > 0) {
          response->set_next_page_token(api::EncodePageToken(
              fingerprint, absl::StrCat(page->next_before)));
        }
        AuditPerson(call, shown);
        call.AddLegalBasis(LegalBasisOf(access->core), shown);
        return absl::OkStatus();
      });
  return FinishPersonCall(call, status);
}

}  // namespace lotse::identity
