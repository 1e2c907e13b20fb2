#include "services/identity/service/person_access.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "services/identity/domain/person.h"
#include "services/identity/store/consent_store.h"
#include "services/identity/store/relation_store.h"
#include "services/identity/store/residence_store.h"

namespace lotse::identity {
namespace {

using ::lotse::api::FromTimestamp;
using ::lotse::storage::Transaction;

// Statements over many persons take at most this many ids each.
constexpr size_t kIdsPerStatement = 200;

}  // namespace

Consent ToPolicyConsent(const ConsentRecord& record) {
  const v1::Consent& f = record.fields;
  Consent c;
  c.name = ConsentResourceName(record.person_id, record.id);
  c.person_id = record.person_id;
  for (int category : f.categories()) {
    c.categories.push_back(static_cast<DataCategory>(category));
  }
  if (f.recipient_case() == v1::Consent::kRecipientAgency) {
    FieldViolations ignored;
    c.recipient_agency = ParseAgencyName(f.recipient_agency(), "", &ignored);
  } else {
    c.recipient_legal_domain =
        static_cast<LegalDomain>(f.recipient_legal_domain());
  }
  c.purposes.assign(f.purposes().begin(), f.purposes().end());
  if (f.has_valid_from()) c.valid_from = FromTimestamp(f.valid_from());
  if (f.has_valid_until()) c.valid_until = FromTimestamp(f.valid_until());
  if (f.has_withdraw_time()) c.withdraw_time = FromTimestamp(f.withdraw_time());
  return c;
}

namespace {

void AddRelation(std::vector<Relation>* relations, Relation relation) {
  if (std::find(relations->begin(), relations->end(), relation) ==
      relations->end()) {
    relations->push_back(relation);
  }
}

// Runs `sql_prefix` + "(" + placeholders + ")" over `ids` in chunks, with
// `leading` as the first parameters and the ids after them; calls `row_fn`
// per row.
absl::Status ForIdChunks(
    Transaction& tx, const std::string& sql_prefix,
    const std::vector<storage::Value>& leading,
    const std::vector<std::string>& ids,
    const std::function<absl::Status(const storage::Row&)>& row_fn) {
  for (size_t begin = 0; begin < ids.size(); begin += kIdsPerStatement) {
    const size_t end = std::min(ids.size(), begin + kIdsPerStatement);
    std::vector<storage::Value> params = leading;
    std::string placeholders;
    for (size_t i = begin; i < end; ++i) {
      params.emplace_back(ids[i]);
      absl::StrAppend(&placeholders, i == begin ? "" : ",", "$", params.size());
    }
    absl::StatusOr<storage::Rows> rows =
        tx.Query(absl::StrCat(sql_prefix, "(", placeholders, ")"), params);
    if (!rows.ok()) return rows.status();
    for (const storage::Row& row : *rows) {
      if (absl::Status s = row_fn(row); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

AccessSubject SubjectOf(const agencies::LocalAgency& agency) {
  AccessSubject s;
  s.agency_id = agency.id;
  s.domain = LegalDomainFromName(agency.legal_domain)
                 .value_or(LegalDomain::kUnspecified);
  s.suspended = agency.suspended;
  return s;
}

AccessSubject SubjectOf(const AgencyRecord& agency) {
  AccessSubject s;
  s.agency_id = agency.id;
  s.domain = LegalDomainFromName(agency.legal_domain)
                 .value_or(LegalDomain::kUnspecified);
  s.suspended = agency.state == AgencyState::kSuspended;
  return s;
}

absl::StatusOr<Standing> LoadStanding(Transaction& tx,
                                      const std::string& person_id,
                                      const std::string& creating_agency,
                                      const std::string& agency_id,
                                      bool with_residence) {
  const std::string agency_name = AgencyResourceName(agency_id);
  Standing standing;
  standing.created_person = creating_agency == agency_name;
  absl::StatusOr<storage::Rows> linked = tx.Query(
      "SELECT 1 FROM identity_person_agency_ids WHERE person_id = $1 "
      "AND issuing_agency = $2 AND unlink_us IS NULL LIMIT 1",
      {person_id, agency_name});
  if (!linked.ok()) return linked.status();
  if (!linked->empty()) standing.relations.push_back(Relation::kAgencyIdHolder);
  absl::StatusOr<std::vector<Relation>> known =
      RelationsBetween(tx, person_id, agency_id);
  if (!known.ok()) return known.status();
  for (Relation r : *known) AddRelation(&standing.relations, r);
  if (with_residence) {
    absl::StatusOr<bool> recorded =
        AgencyRecordedResidence(tx, person_id, agency_name);
    if (!recorded.ok()) return recorded.status();
    standing.recorded_residence = *recorded;
  }
  absl::StatusOr<std::vector<ConsentRecord>> consents =
      ListPersonConsents(tx, person_id);
  if (!consents.ok()) return consents.status();
  for (const ConsentRecord& c : *consents) {
    standing.consents.push_back(ToPolicyConsent(c));
  }
  return standing;
}

absl::StatusOr<absl::flat_hash_map<std::string, Standing>> LoadStandings(
    Transaction& tx, const std::vector<std::string>& person_ids,
    const std::string& agency_id) {
  const std::string agency_name = AgencyResourceName(agency_id);
  absl::flat_hash_map<std::string, Standing> out;
  for (const std::string& id : person_ids) out[id];
  auto text = [](const storage::Row& row, int column) {
    return row.GetText(column).value_or("");
  };
  // By primary key: an agency may have registered millions of persons, and
  // selecting its rows by creating agency would read them all.
  if (absl::Status s = ForIdChunks(
          tx, "SELECT id, creating_agency FROM identity_persons WHERE id IN ",
          {}, person_ids,
          [&](const storage::Row& row) {
            if (text(row, 1) == agency_name) {
              out[text(row, 0)].created_person = true;
            }
            return absl::OkStatus();
          });
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ForIdChunks(
          tx,
          "SELECT person_id FROM identity_person_agency_ids "
          "WHERE issuing_agency = $1 AND unlink_us IS NULL AND person_id IN ",
          {agency_name}, person_ids,
          [&](const storage::Row& row) {
            AddRelation(&out[text(row, 0)].relations,
                        Relation::kAgencyIdHolder);
            return absl::OkStatus();
          });
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ForIdChunks(tx,
                      "SELECT person_id, relation FROM identity_relations "
                      "WHERE agency_id = $1 AND person_id IN ",
                      {agency_id}, person_ids,
                      [&](const storage::Row& row) -> absl::Status {
                        absl::StatusOr<int64_t> relation = row.GetInt(1);
                        if (!relation.ok()) return relation.status();
                        AddRelation(&out[text(row, 0)].relations,
                                    static_cast<Relation>(*relation));
                        return absl::OkStatus();
                      });
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::vector<ConsentRecord>> consents =
      ListConsentsOfPersons(tx, person_ids);
  if (!consents.ok()) return consents.status();
  for (const ConsentRecord& c : *consents) {
    auto it = out.find(c.person_id);
    if (it != out.end()) it->second.consents.push_back(ToPolicyConsent(c));
  }
  return out;
}

AccessDecision DecideFromStanding(
    const AccessPolicy& policy, const AccessSubject& subject,
    const std::string& person_id, const Standing& standing,
    DataCategory category, const std::string& purpose,
    std::vector<Relation> asserted, bool wrote_data, absl::Time now) {
  AccessRequest request;
  request.agency_id = subject.agency_id;
  request.legal_domain = subject.domain;
  request.agency_suspended = subject.suspended;
  request.person_id = person_id;
  request.category = category;
  request.purpose = purpose;
  // The contract says an assertion of AGENCY_ID_HOLDER has no effect:
  // identity knows the links itself.
  for (Relation r : asserted) {
    if (r != Relation::kAgencyIdHolder) AddRelation(&request.relations, r);
  }
  for (Relation r : standing.relations) AddRelation(&request.relations, r);
  request.caller_wrote_data = wrote_data;
  // Ownership of the categories identity keeps itself: the creator of the
  // record wrote its core identity and contact.
  if ((category == DataCategory::kCoreIdentity ||
       category == DataCategory::kContact) &&
      standing.created_person) {
    request.caller_wrote_data = true;
  } else if (category == DataCategory::kResidenceStatus &&
             standing.recorded_residence) {
    request.caller_wrote_data = true;
  }
  request.consents = standing.consents;
  return policy.Decide(request, now);
}

audit::LegalBasis LegalBasisOf(const AccessDecision& decision) {
  audit::LegalBasis basis;
  basis.category = std::string(DataCategoryName(decision.category));
  switch (decision.basis) {
    case AccessBasis::kLegalBasis:
      basis.kind = audit::BasisKind::kRule;
      basis.rule_id = decision.rule_id;
      break;
    case AccessBasis::kConsent:
      basis.kind = audit::BasisKind::kConsent;
      basis.consent = decision.consent;
      break;
    default:
      basis.kind = audit::BasisKind::kOwner;
      break;
  }
  return basis;
}

absl::Status DeniedError(const AccessDecision& decision) {
  const std::string reason(AccessDenialReasonName(decision.denial_reason));
  std::string message = absl::StrCat("the calling agency may not read ",
                                     DataCategoryName(decision.category),
                                     " of this person (", reason, ")");
  if (decision.denial_reason == AccessDenialReason::kNoRelation) {
    absl::StrAppend(
        &message,
        "; a relation comes from registering the person, from a referral or "
        "booking by another agency, or from linking the agency's own id "
        "with proof that the person is in its remit (LinkAgencyId)");
  }
  return ErrorWithReason(absl::StatusCode::kPermissionDenied, reason, message);
}

absl::Status RefusalWithoutStanding(const AccessPolicy& policy,
                                    const AccessSubject& subject,
                                    DataCategory category,
                                    const std::string& purpose,
                                    absl::Status not_found) {
  const AccessDecision decision = DecideFromStanding(
      policy, subject, /*person_id=*/"", Standing{}, category, purpose);
  if (decision.allowed) return not_found;
  return DeniedError(decision);
}

}  // namespace lotse::identity
