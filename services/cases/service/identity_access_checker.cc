#include "services/cases/service/identity_access_checker.h"

namespace lotse::cases {

absl::StatusOr<std::vector<AccessDecision>> IdentityAccessChecker::Check(
    absl::string_view agency, absl::string_view person,
    const std::vector<type::v1::DataCategory>& categories,
    absl::string_view purpose,
    const std::vector<identity::v1::Relation>& relations, absl::Time deadline) {
  clients::AccessQuery query;
  query.agency = std::string(agency);
  query.person = std::string(person);
  query.categories = categories;
  query.purpose = std::string(purpose);
  query.relations = relations;
  absl::StatusOr<std::vector<identity::v1::AccessDecision>> got =
      client_->CheckAccess(query, deadline);
  if (!got.ok()) return got.status();
  std::vector<AccessDecision> out;
  out.reserve(got->size());
  for (const identity::v1::AccessDecision& d : *got) {
    AccessDecision a;
    a.category = d.category();
    a.allowed = d.allowed();
    a.denial_reason = d.denial_reason();
    if (a.allowed) a.basis = clients::LegalBasisOf(d);
    out.push_back(a);
  }
  return out;
}

absl::StatusOr<std::string> IdentityAccessChecker::ResolvePerson(
    absl::string_view person, absl::string_view agency,
    absl::string_view purpose, absl::Time deadline) {
  return client_->ResolvePerson(person, agency, purpose, deadline);
}

absl::StatusOr<identity::v1::Person> IdentityAccessChecker::GetPerson(
    absl::string_view person, absl::string_view purpose, absl::Time deadline) {
  return client_->GetPerson(person, purpose, deadline);
}

absl::StatusOr<identity::v1::ResidenceStatus>
IdentityAccessChecker::GetCurrentResidenceStatus(absl::string_view person,
                                                 absl::string_view purpose,
                                                 absl::Time deadline) {
  return client_->GetCurrentResidenceStatus(person, purpose, deadline);
}

}  // namespace lotse::cases
