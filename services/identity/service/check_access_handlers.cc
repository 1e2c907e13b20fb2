// CheckAccess: whether an agency may read categories of a person's data
// now, for a purpose (DESIGN.md section 4). Lotse's services ask it before
// they show data to an agency, and may assert the relations they know of;
// an agency may ask only about itself, and its word on relations counts for
// nothing. Each decision is audited against the agency it concerns, so the
// person's transparency report shows that agency and the ground.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "services/identity/domain/consent.h"
#include "services/identity/service/handler_support.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/agency_store.h"

namespace lotse::identity {
namespace {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

constexpr int kMaxCheckCategories = 9;

// "RESIDENCE_STATUS" etc.; the spelling of audit records and reasons.
std::string CategoryName(int category) {
  return std::string(DataCategoryName(static_cast<DataCategory>(category)));
}

// A valid CheckAccess request's ids and asserted relations.
struct CheckRequest {
  std::string agency_id;
  std::string person_id;
  std::vector<Relation> relations;
  std::string owner_agency;  // data_owner_agency's id, if given
};

CheckRequest ValidateCheck(const v1::CheckAccessRequest& request,
                           FieldViolations* violations) {
  CheckRequest out;
  out.agency_id = ParseAgencyName(request.agency(), "agency", violations);
  out.person_id = ParsePersonName(request.person(), "person", violations);
  if (request.categories().empty()) {
    violations->Add("categories", "at least one is required");
  } else if (request.categories_size() > kMaxCheckCategories) {
    violations->Add("categories",
                    absl::StrCat("at most ", kMaxCheckCategories, " allowed"));
  }
  ValidateDataCategories(request.categories(), "categories",
                         /*forbid_private=*/false, violations);
  ValidatePurpose(request.purpose(), "purpose", violations);
  for (int i = 0; i < request.relations_size(); ++i) {
    const int value = request.relations(i);
    if (!v1::Relation_IsValid(value)) {
      violations->Add(absl::StrCat("relations[", i, "]"),
                      absl::StrCat("unknown relation ", value));
    } else if (value != v1::RELATION_UNSPECIFIED) {
      out.relations.push_back(static_cast<Relation>(value));
    }
  }
  if (!request.data_owner_agency().empty()) {
    out.owner_agency = ParseAgencyName(request.data_owner_agency(),
                                       "data_owner_agency", violations);
  }
  return out;
}

void ToProto(const AccessDecision& d, int category, v1::AccessDecision* out) {
  out->set_category(static_cast<type::v1::DataCategory>(category));
  out->set_allowed(d.allowed);
  out->set_basis(static_cast<v1::AccessBasis>(d.basis));
  out->set_rule_id(d.rule_id);
  out->set_consent(d.consent);
  out->set_denial_reason(
      static_cast<type::v1::AccessDenialReason>(d.denial_reason));
}

// The audit record of decision `d` about `agency` reading `category` of
// `person`: the agency it concerns, the purpose asked about, and the ground
// (basis, rule, consent) or the denial reason.
audit::AuditRecord DecisionRecord(const RequestContext& rc,
                                  const std::string& operation,
                                  const AgencyRecord& agency,
                                  const std::string& purpose,
                                  const std::string& person, int category,
                                  const AccessDecision& d) {
  audit::AuditRecord record;
  record.agency_id = agency.id;
  record.legal_domain = agency.legal_domain;
  record.actor = rc.actor;
  record.purpose = purpose;
  record.operation = operation;
  record.resource = person;
  record.data_categories = {CategoryName(category)};
  if (d.allowed) {
    record.reason = std::string(AccessBasisName(d.basis));
    if (!d.rule_id.empty()) absl::StrAppend(&record.reason, ":", d.rule_id);
    if (!d.consent.empty()) absl::StrAppend(&record.reason, ":", d.consent);
    record.legal_bases = {LegalBasisOf(d)};
  } else {
    record.outcome = audit::Outcome::kDenied;
    record.reason = std::string(AccessDenialReasonName(d.denial_reason));
  }
  return record;
}

}  // namespace

absl::Status IdentityServiceImpl::DoCheckAccess(
    const RequestContext& rc, const v1::CheckAccessRequest& request,
    v1::CheckAccessResponse* response) {
  AuditedCall call(call_env_, rc, "CheckAccess",
                   PersonTarget(request.person()));
  call.admit_services();
  if (absl::Status s = RequireAccess(); !s.ok()) return call.Finish(s);
  const std::string operation = absl::StrCat(call_env_.service, "/CheckAccess");
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        CheckRequest check = ValidateCheck(request, &violations);
        if (!violations.empty()) return violations.ToStatus();
        std::vector<std::string> categories;
        for (int category : request.categories()) {
          categories.push_back(CategoryName(category));
        }
        call.set_target_categories(std::move(categories));
        if (!rc.caller.is_service()) {
          // An agency asks only about itself, and its own word on relations
          // counts for nothing.
          if (check.agency_id != caller.id) {
            return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                   "AGENCY_NOT_CALLER",
                                   "an agency may only check its own access");
          }
          check.relations.clear();
        }
        absl::StatusOr<PersonLookup> person = FindPerson(
            tx, *access_matcher_, check.person_id, /*for_write=*/false);
        // An agency asking about a person that does not exist hears what it
        // would about one it has no standing towards: decisions, all denied,
        // never NOT_FOUND (no existence oracle).
        const bool absent_for_agency =
            !rc.caller.is_service() &&
            ReasonOf(person.status()) == "PERSON_NOT_FOUND";
        if (!person.ok() && !absent_for_agency) return person.status();
        const absl::Status absent_status = person.status();
        if (absent_for_agency) {
          person = PersonLookup{};
          person->id = check.person_id;
        }
        const std::string person_name = PersonResourceName(person->id);
        call.set_target(person_name);
        absl::StatusOr<std::optional<AgencyRecord>> agency =
            ReadAgency(tx, check.agency_id);
        if (!agency.ok()) return agency.status();
        if (!agency->has_value()) {
          return ErrorWithReason(
              absl::StatusCode::kNotFound, "AGENCY_NOT_FOUND",
              absl::StrCat("no agency ", AgencyResourceName(check.agency_id)));
        }
        const AccessSubject subject = SubjectOf(**agency);
        const absl::Time now = absl::Now();
        response->Clear();
        response->set_person(person_name);
        for (int value : request.categories()) {
          const auto category = static_cast<DataCategory>(value);
          const bool wrote = category == DataCategory::kPrivateNotes &&
                             check.owner_agency == check.agency_id;
          absl::StatusOr<AccessDecision> d =
              absent_for_agency
                  ? DecideFromStanding(*access_rules_, subject, person->id,
                                       Standing{}, category, request.purpose(),
                                       {}, false, now)
                  : DecideAccess(tx, *access_rules_, *person, subject, category,
                                 request.purpose(), check.relations, wrote,
                                 now);
          if (!d.ok()) return d.status();
          // A rule that needs no relation lets the agency read every person:
          // then there is no existence to hide.
          if (absent_for_agency && d->allowed) return absent_status;
          ToProto(*d, value, response->add_decisions());
          call.AppendRecord(DecisionRecord(rc, operation, **agency,
                                           request.purpose(), person_name,
                                           value, *d));
        }
        return absl::OkStatus();
      });
  const DataCategory first =
      request.categories().empty()
          ? DataCategory::kCoreIdentity
          : static_cast<DataCategory>(request.categories(0));
  return FinishAccessCall(call, first, status);
}

}  // namespace lotse::identity
