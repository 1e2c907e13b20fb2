// An in-memory IdentityClient for placement tests: persons are known when
// added; CheckAccess allows a category to the agencies granted it, and
// CORE_IDENTITY (standing towards the person) to every agency not marked as
// a stranger;
// residence statuses are set per person; the whole client can be made
// unavailable.
#ifndef LOTSE_TESTS_PLACEMENT_SERVICE_FAKE_IDENTITY_H_
#define LOTSE_TESTS_PLACEMENT_SERVICE_FAKE_IDENTITY_H_

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clients/identity_client.h"
#include "common/errors/status.h"

namespace lotse::placement::fakes {

class FakeIdentity : public clients::IdentityClient {
 public:
  void AddPerson(const std::string& person) {
    absl::MutexLock lock(&mu_);
    persons_.insert(person);
  }
  // Lets `agency` ("agencies/x") read `category` of every person.
  void Allow(const std::string& agency, type::v1::DataCategory category) {
    absl::MutexLock lock(&mu_);
    allowed_.insert({agency, category});
  }
  void Deny(const std::string& agency, type::v1::DataCategory category) {
    absl::MutexLock lock(&mu_);
    allowed_.erase({agency, category});
  }
  void SetResidence(
      const std::string& person, type::v1::WorkPermission permission,
      const std::string& recording_agency = "agencies/abh-koeln") {
    absl::MutexLock lock(&mu_);
    identity::v1::ResidenceStatus s;
    s.set_work_permission(permission);
    s.set_recording_agency(recording_agency);
    s.set_current(true);
    residence_[person] = s;
  }
  // `agency` has no relation to any person: identity would refuse it the
  // core identity, so it may not propose or profile anybody.
  void MakeStranger(const std::string& agency) {
    absl::MutexLock lock(&mu_);
    strangers_.insert(agency);
  }
  void set_unavailable(bool unavailable) { unavailable_ = unavailable; }
  int access_calls() const { return access_calls_; }

  absl::StatusOr<std::vector<identity::v1::AccessDecision>> CheckAccess(
      const clients::AccessQuery& query, absl::Time) override {
    ++access_calls_;
    if (unavailable_) return absl::UnavailableError("identity is down");
    absl::MutexLock lock(&mu_);
    if (persons_.count(query.person) == 0) {
      return absl::NotFoundError("unknown person");
    }
    std::vector<identity::v1::AccessDecision> out;
    for (type::v1::DataCategory c : query.categories) {
      identity::v1::AccessDecision d;
      d.set_category(c);
      d.set_allowed(c == type::v1::DATA_CATEGORY_CORE_IDENTITY
                        ? strangers_.count(query.agency) == 0
                        : allowed_.count({query.agency, c}) > 0);
      if (d.allowed()) {
        d.set_basis(identity::v1::ACCESS_BASIS_LEGAL_BASIS);
      } else {
        d.set_denial_reason(type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS);
      }
      out.push_back(d);
    }
    return out;
  }

  absl::StatusOr<identity::v1::ResidenceStatus> GetCurrentResidenceStatus(
      absl::string_view person, absl::string_view, absl::Time) override {
    if (unavailable_) return absl::UnavailableError("identity is down");
    absl::MutexLock lock(&mu_);
    if (persons_.count(std::string(person)) == 0) {
      return ErrorWithReason(absl::StatusCode::kNotFound, "PERSON_NOT_FOUND",
                             "unknown person");
    }
    auto it = residence_.find(std::string(person));
    if (it == residence_.end()) {
      return ErrorWithReason(absl::StatusCode::kNotFound, "NO_RESIDENCE_STATUS",
                             "none recorded");
    }
    return it->second;
  }

 private:
  absl::Mutex mu_;
  std::set<std::string> persons_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<std::string, type::v1::DataCategory>> allowed_
      ABSL_GUARDED_BY(mu_);
  std::set<std::string> strangers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, identity::v1::ResidenceStatus> residence_
      ABSL_GUARDED_BY(mu_);
  std::atomic<bool> unavailable_{false};
  std::atomic<int> access_calls_{0};
};

}  // namespace lotse::placement::fakes

#endif  // LOTSE_TESTS_PLACEMENT_SERVICE_FAKE_IDENTITY_H_
