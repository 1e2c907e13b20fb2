#include "services/cases/domain/access_checker.h"

#include "absl/strings/str_cat.h"
#include "common/errors/status.h"

namespace lotse::cases {

void StaticAccessChecker::AddPerson(absl::string_view person) {
  absl::MutexLock lock(&mu_);
  persons_.insert(std::string(person));
}

void StaticAccessChecker::set_allow_any_person(bool allow) {
  absl::MutexLock lock(&mu_);
  allow_any_person_ = allow;
}

void StaticAccessChecker::Grant(absl::string_view agency,
                                type::v1::DataCategory category) {
  absl::MutexLock lock(&mu_);
  grants_.insert(absl::StrCat(agency, "|", category));
}

void StaticAccessChecker::set_unavailable(bool unavailable) {
  absl::MutexLock lock(&mu_);
  unavailable_ = unavailable;
}

int StaticAccessChecker::check_calls() const {
  absl::MutexLock lock(&mu_);
  return check_calls_;
}

void StaticAccessChecker::AddAgency(identity::v1::Agency agency) {
  absl::MutexLock lock(&mu_);
  const std::string name = agency.name();
  agencies_[name] = std::move(agency);
}

absl::StatusOr<identity::v1::Agency> StaticAccessChecker::GetAgency(
    absl::string_view agency, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  if (agencies_.empty()) return AccessChecker::GetAgency(agency, deadline);
  auto it = agencies_.find(std::string(agency));
  if (it == agencies_.end()) return absl::NotFoundError("unknown agency");
  return it->second;
}

absl::StatusOr<std::vector<AccessDecision>> StaticAccessChecker::Check(
    absl::string_view agency, absl::string_view person,
    const std::vector<type::v1::DataCategory>& categories,
    absl::string_view /*purpose*/,
    const std::vector<identity::v1::Relation>& /*relations*/,
    absl::Time /*deadline*/) {
  absl::MutexLock lock(&mu_);
  ++check_calls_;
  if (unavailable_) return absl::UnavailableError("identity is unavailable");
  if (!allow_any_person_ && !persons_.contains(std::string(person))) {
    return ErrorWithReason(absl::StatusCode::kNotFound, "PERSON_NOT_FOUND",
                           "unknown person");
  }
  std::vector<AccessDecision> out;
  for (type::v1::DataCategory category : categories) {
    AccessDecision d;
    d.category = category;
    d.allowed = category == type::v1::DATA_CATEGORY_CASE_STATUS ||
                grants_.contains(absl::StrCat(agency, "|", category));
    if (!d.allowed) {
      d.denial_reason = type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS;
    }
    out.push_back(d);
  }
  return out;
}

absl::StatusOr<identity::v1::Agency> AccessChecker::GetAgency(
    absl::string_view /*agency*/, absl::Time /*deadline*/) {
  return absl::UnimplementedError("this access checker cannot read agencies");
}

absl::StatusOr<std::string> StaticAccessChecker::ResolvePerson(
    absl::string_view person, absl::string_view /*agency*/,
    absl::string_view /*purpose*/, absl::Time /*deadline*/) {
  absl::MutexLock lock(&mu_);
  if (unavailable_) return absl::UnavailableError("identity is unavailable");
  if (!allow_any_person_ && !persons_.contains(std::string(person))) {
    return ErrorWithReason(absl::StatusCode::kNotFound, "PERSON_NOT_FOUND",
                           "identity knows no such person");
  }
  return std::string(person);
}

void StaticAccessChecker::SetPersonRecord(const identity::v1::Person& record) {
  absl::MutexLock lock(&mu_);
  persons_.insert(record.name());
  records_[record.name()] = record;
}

void StaticAccessChecker::SetResidence(
    absl::string_view person, const identity::v1::ResidenceStatus& status) {
  absl::MutexLock lock(&mu_);
  residence_[std::string(person)] = status;
}

absl::StatusOr<identity::v1::Person> StaticAccessChecker::GetPerson(
    absl::string_view person, absl::string_view /*purpose*/,
    absl::Time /*deadline*/) {
  absl::MutexLock lock(&mu_);
  if (unavailable_) return absl::UnavailableError("identity is unavailable");
  auto it = records_.find(std::string(person));
  if (it != records_.end()) return it->second;
  if (!allow_any_person_ && !persons_.contains(std::string(person))) {
    return ErrorWithReason(absl::StatusCode::kNotFound, "PERSON_NOT_FOUND",
                           "identity knows no such person");
  }
  identity::v1::Person bare;
  bare.set_name(std::string(person));
  return bare;
}

absl::StatusOr<identity::v1::ResidenceStatus>
StaticAccessChecker::GetCurrentResidenceStatus(absl::string_view person,
                                               absl::string_view /*purpose*/,
                                               absl::Time /*deadline*/) {
  absl::MutexLock lock(&mu_);
  if (unavailable_) return absl::UnavailableError("identity is unavailable");
  auto it = residence_.find(std::string(person));
  if (it != residence_.end()) return it->second;
  return ErrorWithReason(absl::StatusCode::kNotFound, "NO_RESIDENCE_STATUS",
                         "no residence status is recorded");
}

}  // namespace lotse::cases
