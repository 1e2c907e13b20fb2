// The agency-id RPCs of IdentityServiceImpl: LinkAgencyId,
// UnlinkAgencyId, ListAgencyIds and LookupPersonByAgencyId. Their records
// carry the data category CORE_IDENTITY, as those of the person RPCs.
//
// Knowing a person's name is not a relation: an agency that may not read
// the person links an id only with proof that the person is in its remit
// (remit_proof.h), and every refusal reads like the one for a person that
// does not exist (docs/trust-model.md).
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/api/idempotency.h"
#include "common/api/names.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/errors/status.h"
#include "common/server/log.h"
#include "services/identity/domain/remit_proof.h"
#include "services/identity/service/handler_support.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/proof_store.h"

namespace lotse::identity {
namespace {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

// Adds violations for a RemitProof that is not well-formed: exactly one
// kind of evidence; attributes with a family name, a full birth date not
// after `today` and a birth place of at most 200 characters; an issued id
// of a national kind.
void ValidateRemitProof(const v1::RemitProof& proof, const std::string& prefix,
                        absl::CivilDay today, FieldViolations* violations) {
  switch (proof.evidence_case()) {
    case v1::RemitProof::kAttributes: {
      const std::string field = prefix + ".attributes";
      const v1::IdentifyingAttributes& a = proof.attributes();
      api::ValidateText(a.name().family_names(), field + ".name.family_names",
                        api::TextRules{1, 200, false}, violations);
      api::ValidateText(a.name().given_names(), field + ".name.given_names",
                        api::TextRules{0, 200, false}, violations);
      if (a.birth_date().year() == 0 || a.birth_date().month() == 0 ||
          a.birth_date().day() == 0) {
        violations->Add(field + ".birth_date",
                        "must be a full date (year, month and day)");
      } else {
        ValidateBirthDate(a.birth_date(), field + ".birth_date", today,
                          violations);
      }
      api::ValidateText(a.birth_place(), field + ".birth_place",
                        api::TextRules{0, 200, false}, violations);
      break;
    }
    case v1::RemitProof::kIssuedId: {
      const std::string field = prefix + ".issued_id";
      const v1::AgencyId& id = proof.issued_id();
      ValidateAgencyIdInput(id.kind(), id.value(), field + ".kind",
                            field + ".value", violations);
      if (v1::AgencyIdKind_IsValid(id.kind()) &&
          id.kind() != v1::AGENCY_ID_KIND_UNSPECIFIED &&
          !IsNationalAgencyIdKind(id.kind())) {
        violations->Add(field + ".kind",
                        "must be a national kind (AZR number, BA customer "
                        "number, BAMF file number)");
      }
      break;
    }
    default:
      violations->Add(prefix, "attributes or issued_id is required");
  }
}

// Whether a well-formed `proof` shows that `person` is in `caller`'s remit:
// the attributes match the record (remit_proof.h), or the issued id is
// linked to this very person by another agency.
absl::StatusOr<bool> RemitProofHolds(PersonStore& store,
                                     const DuplicateMatcher& matcher,
                                     const v1::RemitProof& proof,
                                     const LocalAgency& caller,
                                     const PersonLookup& person) {
  if (proof.has_issued_id()) {
    absl::StatusOr<std::optional<PersonStore::LinkedId>> link =
        store.FindNationalLink(proof.issued_id().kind(),
                               proof.issued_id().value());
    if (!link.ok()) return link.status();
    return link->has_value() && (*link)->person_id == person.id &&
           (*link)->issuing_agency != AgencyResourceName(caller.id);
  }
  const v1::IdentifyingAttributes& a = proof.attributes();
  PresentedAttributes presented;
  presented.name = {a.name().given_names(), a.name().family_names()};
  presented.birth_date = {a.birth_date().year(), a.birth_date().month(),
                          a.birth_date().day()};
  presented.birth_place = a.birth_place();
  absl::StatusOr<AttributesOutcome> outcome = CheckIdentifyingAttributes(
      matcher, presented, ToMatchRecord(person.person));
  if (!outcome.ok()) return outcome.status();
  return *outcome == AttributesOutcome::kHold;
}

// LinkAgencyId's AGENCY_ID_TAKEN names the person holding the id; that
// person is named only to a caller that may read it. Any other status is
// returned as it is.
absl::Status HideUnreadableHolder(Transaction& tx, PersonStore& store,
                                  const AccessPolicy& policy,
                                  const RequestContext& rc,
                                  const LocalAgency& caller,
                                  const absl::Status& status) {
  if (ReasonOf(status) != "AGENCY_ID_TAKEN") return status;
  const absl::Status anonymous =
      ErrorWithReason(absl::StatusCode::kAlreadyExists, "AGENCY_ID_TAKEN",
                      "this agency id is linked to another person");
  const std::optional<std::string> holder = MetadataOf(status, "person");
  if (!holder.has_value()) return anonymous;
  FieldViolations ignored;
  absl::StatusOr<PersonLookup> found =
      store.Get(ParsePersonName(*holder, "", &ignored));
  if (!found.ok()) return anonymous;
  absl::StatusOr<PersonAccess> access =
      DecidePersonAccess(tx, policy, rc, caller, *found);
  if (!access.ok()) return access.status();
  return access->core.allowed ? status : anonymous;
}

// "persons/{person}/agencyIds/{link}" split into its ids; adds a violation
// for `field` and leaves them empty otherwise.
bool ParseAgencyIdName(absl::string_view name, const std::string& field,
                       std::string* person_id, std::string* link_id,
                       FieldViolations* violations) {
  std::vector<std::string> ids = api::ParseName(
      name, "persons/{person}/agencyIds/{agency_id}", field, violations);
  if (ids.empty()) return false;
  *person_id = std::move(ids[0]);
  *link_id = std::move(ids[1]);
  return true;
}

// The link `name` of person `person_id`, with unlinked ones, if any.
absl::StatusOr<std::optional<v1::AgencyId>> FindLink(
    PersonStore& store, const std::string& person_id, const std::string& name) {
  std::string cursor;
  do {
    absl::StatusOr<AgencyIdPage> page = store.ListAgencyIds(
        person_id, /*include_unlinked=*/true, cursor, api::kMaxPageSize);
    if (!page.ok()) return page.status();
    for (v1::AgencyId& link : page->agency_ids) {
      if (link.name() == name) return std::move(link);
    }
    cursor = page->next_cursor;
  } while (!cursor.empty());
  return std::nullopt;
}

// LinkAgencyId's fields.
void ValidateLink(const v1::LinkAgencyIdRequest& request,
                  FieldViolations* violations) {
  api::ValidateRequestId(request.request_id(), "request_id", violations);
  if (!request.has_agency_id()) violations->Add("agency_id", "is required");
  ValidateAgencyIdInput(request.agency_id().kind(), request.agency_id().value(),
                        "agency_id.kind", "agency_id.value", violations);
  if (request.has_proof()) {
    ValidateRemitProof(request.proof(), "proof", TodayInGermany(), violations);
  }
}

// LinkAgencyId's answer to a retry whose first call created the link
// `recorded`: that link, wherever a merge moved it since.
absl::Status AnswerLinkRetry(PersonStore& store, AuditedCall& call,
                             const std::string& recorded,
                             v1::AgencyId* response) {
  std::string link_person, link_id;
  FieldViolations ignored;
  ParseAgencyIdName(recorded, "", &link_person, &link_id, &ignored);
  absl::StatusOr<PersonLookup> holder = store.Get(link_person);
  if (!holder.ok()) return holder.status();
  const std::string name =
      absl::StrCat(holder->person.name(), "/agencyIds/", link_id);
  absl::StatusOr<std::optional<v1::AgencyId>> link =
      FindLink(store, holder->id, name);
  if (!link.ok()) return link.status();
  if (!link->has_value()) {
    return absl::InternalError("recorded agency id link is missing");
  }
  call.set_target(holder->person.name());
  AuditPerson(call, holder->person.name());
  *response = **link;
  return absl::OkStatus();
}

// What a link by `caller` to `person` rests on, for its audit record: ""
// when the caller may read the person, "PROOF:ATTRIBUTES" or
// "PROOF:ISSUED_ID" when it may not but its proof holds (never the
// values). Otherwise the refusal, which reads exactly like the one for a
// person that does not exist; *failed_proof is set when a proof was
// checked and did not hold (recorded once the call has failed, so that
// attempts are counted).
absl::StatusOr<std::string> LinkGround(
    Transaction& tx, PersonStore& store, const DuplicateMatcher& matcher,
    const AccessPolicy& policy, const RequestContext& rc,
    const LocalAgency& caller, const v1::LinkAgencyIdRequest& request,
    const PersonLookup& person, bool* failed_proof) {
  absl::StatusOr<PersonAccess> access =
      DecidePersonAccess(tx, policy, rc, caller, person);
  if (!access.ok()) return access.status();
  if (access->core.allowed) return std::string();
  const absl::Status refusal = RefusalWithoutStanding(
      policy, SubjectOf(caller), DataCategory::kCoreIdentity, rc.purpose,
      PersonNotFoundError(person.id));
  if (!request.has_proof()) return refusal;
  absl::StatusOr<int64_t> failures =
      CountFailedProofs(tx, caller.id, person.id, absl::Now());
  if (!failures.ok()) return failures.status();
  if (*failures >= kMaxFailedProofs) return refusal;
  absl::StatusOr<bool> holds =
      RemitProofHolds(store, matcher, request.proof(), caller, person);
  if (!holds.ok()) return holds.status();
  if (!*holds) {
    *failed_proof = true;
    return refusal;
  }
  return std::string(request.proof().has_attributes() ? "PROOF:ATTRIBUTES"
                                                      : "PROOF:ISSUED_ID");
}

}  // namespace

absl::Status IdentityServiceImpl::DoLinkAgencyId(
    const RequestContext& rc, const v1::LinkAgencyIdRequest& request,
    v1::AgencyId* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "LinkAgencyId",
                   PersonTarget(request.parent()));
  call.set_target_categories({kCoreIdentity});
  // A proof checked and found not to hold, recorded once the call has
  // failed (its own transaction rolls back).
  std::string failed_agency, failed_person;
  absl::Status status = call.Write(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        failed_agency.clear();
        failed_person.clear();
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.parent(), "parent", &violations);
        ValidateLink(request, &violations);
        if (!violations.empty()) return violations.ToStatus();
        if (!MayLinkAgencyIdKind(request.agency_id().kind(),
                                 caller.legal_domain)) {
          return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                 "WRONG_LEGAL_DOMAIN",
                                 "the caller's legal domain may not link ids "
                                 "of this kind");
        }

        PersonStore store(tx, *matcher_);
        const api::IdempotentCreate once(caller.id, rc.method, request);
        absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
        if (!seen.ok()) return seen.status();
        if (seen->has_value()) {
          return AnswerLinkRetry(store, call, **seen, response);
        }

        absl::StatusOr<PersonLookup> person = store.Get(person_id);
        if (!person.ok()) return person.status();
        bool failed_proof = false;
        absl::StatusOr<std::string> ground =
            LinkGround(tx, store, *matcher_, *access_policy_, rc, caller,
                       request, *person, &failed_proof);
        if (failed_proof) {
          failed_agency = caller.id;
          failed_person = person->id;
        }
        if (!ground.ok()) return ground.status();
        if (person->merged) return MergedError(*person);

        absl::StatusOr<LinkResult> linked = store.LinkAgencyId(
            person_id, request.agency_id().kind(), request.agency_id().value(),
            AgencyResourceName(caller.id));
        if (!linked.ok()) {
          return HideUnreadableHolder(tx, store, *access_policy_, rc, caller,
                                      linked.status());
        }
        if (absl::Status s = once.Record(tx, linked->agency_id.name());
            !s.ok()) {
          return s;
        }
        AuditPerson(call, PersonResourceName(person_id), *std::move(ground));
        *response = std::move(linked->agency_id);
        return absl::OkStatus();
      });
  status = FinishPersonCall(call, status);
  if (!status.ok() && !failed_person.empty()) {
    absl::Status recorded = runtime_.Write([&](Transaction& tx) {
      return RecordFailedProof(tx, failed_agency, failed_person, absl::Now());
    });
    if (!recorded.ok()) {
      server::Log(server::LogLevel::kError, "failed proof not recorded",
                  {{"agency", failed_agency},
                   {"error", std::string(recorded.message())}});
    }
  }
  return status;
}

absl::Status IdentityServiceImpl::DoUnlinkAgencyId(
    const RequestContext& rc, const v1::UnlinkAgencyIdRequest& request,
    v1::AgencyId* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  std::string target_person, target_link;
  {
    FieldViolations ignored;
    ParseAgencyIdName(request.name(), "name", &target_person, &target_link,
                      &ignored);
  }
  AuditedCall call(
      call_env_, rc, "UnlinkAgencyId",
      target_person.empty() ? "persons" : PersonResourceName(target_person));
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Write(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        std::string person_id, link_id;
        ParseAgencyIdName(request.name(), "name", &person_id, &link_id,
                          &violations);
        if (request.etag().empty()) violations.Add("etag", "is required");
        if (!violations.empty()) return violations.ToStatus();

        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonLookup> person = store.Get(person_id);
        if (!person.ok()) return person.status();
        if (person->merged) return MergedError(*person);
        absl::StatusOr<std::optional<v1::AgencyId>> link =
            FindLink(store, person_id, request.name());
        if (!link.ok()) return link.status();
        if (!link->has_value()) {
          return absl::NotFoundError("no such agency id of this person");
        }
        if ((*link)->issuing_agency() != AgencyResourceName(caller.id)) {
          return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                 "NOT_ISSUING_AGENCY",
                                 "only the agency that linked the id may "
                                 "unlink it");
        }
        absl::StatusOr<v1::AgencyId> unlinked =
            store.UnlinkAgencyId(person_id, link_id, request.etag());
        if (!unlinked.ok()) return unlinked.status();
        AuditPerson(call, PersonResourceName(person_id));
        *response = *std::move(unlinked);
        return absl::OkStatus();
      });
  return FinishPersonCall(call, status);
}

absl::Status IdentityServiceImpl::DoListAgencyIds(
    const RequestContext& rc, const v1::ListAgencyIdsRequest& request,
    v1::ListAgencyIdsResponse* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "ListAgencyIds",
                   PersonTarget(request.parent()));
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.parent(), "parent", &violations);
        const int page_size = api::NormalizePageSize(request.page_size(),
                                                     "page_size", &violations);
        const std::string fingerprint = absl::StrCat(
            request.parent(), "|", request.include_unlinked() ? 1 : 0);
        const std::string after = api::DecodePageToken(
            request.page_token(), fingerprint, "page_token", &violations);
        if (!violations.empty()) return violations.ToStatus();

        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonLookup> person = store.Get(person_id);
        if (!person.ok()) return person.status();
        call.set_target(person->person.name());
        absl::StatusOr<PersonAccess> access =
            RequireCoreIdentityRead(tx, *access_policy_, rc, caller, *person);
        if (!access.ok()) return access.status();
        absl::StatusOr<AgencyIdPage> page = store.ListAgencyIds(
            person->id, request.include_unlinked(), after, page_size);
        if (!page.ok()) return page.status();
        response->Clear();
        for (v1::AgencyId& link : page->agency_ids) {
          *response->add_agency_ids() = std::move(link);
        }
        if (!page->next_cursor.empty()) {
          response->set_next_page_token(
              api::EncodePageToken(fingerprint, page->next_cursor));
        }
        AuditPerson(call, person->person.name());
        return absl::OkStatus();
      });
  return FinishPersonCall(call, status);
}

absl::Status IdentityServiceImpl::DoLookupPersonByAgencyId(
    const RequestContext& rc, const v1::LookupPersonByAgencyIdRequest& request,
    v1::Person* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "LookupPersonByAgencyId", "persons");
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        ValidateAgencyIdInput(request.kind(), request.value(), "kind", "value",
                              &violations);
        std::string issuer = AgencyResourceName(caller.id);
        const bool national = v1::AgencyIdKind_IsValid(request.kind()) &&
                              IsNationalAgencyIdKind(request.kind());
        if (!request.issuing_agency().empty()) {
          if (national) {
            violations.Add("issuing_agency",
                           "must be empty for national kinds");
          } else {
            const std::string id = ParseAgencyName(
                request.issuing_agency(), "issuing_agency", &violations);
            issuer = AgencyResourceName(id);
          }
        }
        if (!violations.empty()) return violations.ToStatus();

        // One answer for "no such id" and "an id of a person the caller may
        // not read": the lookup never tells whether an id is in use.
        const absl::Status not_found = ErrorWithReason(
            absl::StatusCode::kNotFound, "AGENCY_ID_NOT_FOUND",
            "no person the calling agency may read has this agency id");
        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonLookup> found = store.LookupByAgencyId(
            request.kind(), NormalizeAgencyIdValue(request.value()), issuer);
        if (!found.ok()) {
          return found.status().code() == absl::StatusCode::kNotFound
                     ? not_found
                     : found.status();
        }
        absl::StatusOr<PersonAccess> access =
            DecidePersonAccess(tx, *access_policy_, rc, caller, *found);
        if (!access.ok()) return access.status();
        call.set_target(found->person.name());
        if (!access->core.allowed) return not_found;
        AuditPerson(call, found->person.name());
        *response = std::move(found->person);
        ShowTo(*access, response);
        return absl::OkStatus();
      });
  return FinishPersonCall(call, status);
}

}  // namespace lotse::identity
