// An in-memory IdentityClient for courses tests: persons are known when
// added; CheckAccess allows LANGUAGE reads to the agencies granted, and
// CORE_IDENTITY (standing towards the person) to every agency not marked
// as a stranger; the whole client can be made unavailable.
#ifndef LOTSE_TESTS_COURSES_FAKE_IDENTITY_CLIENT_H_
#define LOTSE_TESTS_COURSES_FAKE_IDENTITY_CLIENT_H_

#include <atomic>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clients/identity_client.h"

namespace lotse::courses::fakes {

class FakeIdentityClient : public clients::IdentityClient {
 public:
  void AddPerson(const std::string& person) {
    absl::MutexLock lock(&mu_);
    persons_.insert(person);
  }
  // Lets `agency` ("agencies/x") read every person's LANGUAGE data.
  void Allow(const std::string& agency) {
    absl::MutexLock lock(&mu_);
    allowed_.insert(agency);
  }
  // `agency` has no relation to any person: identity would refuse it the
  // core identity, so it may not book or admit anybody.
  void MakeStranger(const std::string& agency) {
    absl::MutexLock lock(&mu_);
    strangers_.insert(agency);
  }
  void set_unavailable(bool unavailable) { unavailable_ = unavailable; }
  int calls() const { return calls_; }

  absl::StatusOr<std::vector<identity::v1::AccessDecision>> CheckAccess(
      const clients::AccessQuery& query, absl::Time deadline) override {
    ++calls_;
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
                        : allowed_.count(query.agency) > 0);
      if (d.allowed()) {
        d.set_basis(identity::v1::ACCESS_BASIS_LEGAL_BASIS);
      } else {
        d.set_denial_reason(type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS);
      }
      out.push_back(d);
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::set<std::string> persons_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> allowed_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> strangers_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> unavailable_{false};
  std::atomic<int> calls_{0};
};

}  // namespace lotse::courses::fakes

#endif  // LOTSE_TESTS_COURSES_FAKE_IDENTITY_CLIENT_H_
