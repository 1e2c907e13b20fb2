// An in-memory IdentityClient for cases tests, driven through the
// production adapter (IdentityAccessChecker): persons with their records,
// per-(agency, category) grants, residence statuses per person, and two
// failure modes — CheckAccess itself unavailable, or identity answering
// CheckAccess but not the reads of person and residence (it then waits
// for the deadline it was given, as a slow identity would).
#ifndef LOTSE_TESTS_CASES_SERVICE_FAKE_IDENTITY_CLIENT_H_
#define LOTSE_TESTS_CASES_SERVICE_FAKE_IDENTITY_CLIENT_H_

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/clients/identity_client.h"
#include "common/errors/status.h"

namespace lotse::cases::fakes {

class FakeIdentityClient : public clients::IdentityClient {
 public:
  // A person identity knows, with its record.
  void AddPerson(const identity::v1::Person& record) {
    absl::MutexLock lock(&mu_);
    persons_[record.name()] = record;
  }
  // Lets `agency` ("agencies/x") read `category` of every person.
  void Allow(const std::string& agency, type::v1::DataCategory category) {
    absl::MutexLock lock(&mu_);
    allowed_.insert({agency, category});
  }
  void SetResidence(const std::string& person,
                    const identity::v1::ResidenceStatus& status) {
    absl::MutexLock lock(&mu_);
    residence_[person] = status;
  }
  // Every call fails UNAVAILABLE (identity down).
  void set_unavailable(bool unavailable) { unavailable_ = unavailable; }
  // CheckAccess answers; GetPerson and GetCurrentResidenceStatus wait
  // until their deadline and fail DEADLINE_EXCEEDED.
  void set_reads_hang(bool hang) { reads_hang_ = hang; }
  int person_reads() const { return person_reads_; }
  int residence_reads() const { return residence_reads_; }

  absl::StatusOr<std::vector<identity::v1::AccessDecision>> CheckAccess(
      const clients::AccessQuery& query, absl::Time) override {
    if (unavailable_) return absl::UnavailableError("identity is down");
    absl::MutexLock lock(&mu_);
    if (persons_.count(query.person) == 0) {
      return ErrorWithReason(absl::StatusCode::kNotFound, "PERSON_NOT_FOUND",
                             "unknown person");
    }
    std::vector<identity::v1::AccessDecision> out;
    for (type::v1::DataCategory c : query.categories) {
      identity::v1::AccessDecision d;
      d.set_category(c);
      d.set_allowed(allowed_.count({query.agency, c}) > 0);
      if (d.allowed()) {
        d.set_basis(identity::v1::ACCESS_BASIS_LEGAL_BASIS);
      } else {
        d.set_denial_reason(type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS);
      }
      out.push_back(d);
    }
    return out;
  }

  absl::StatusOr<identity::v1::Person> GetPerson(absl::string_view person,
                                                 absl::string_view,
                                                 absl::Time deadline) override {
    ++person_reads_;
    if (absl::Status s = Reachable(deadline); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    auto it = persons_.find(std::string(person));
    if (it == persons_.end()) {
      return ErrorWithReason(absl::StatusCode::kNotFound, "PERSON_NOT_FOUND",
                             "unknown person");
    }
    return it->second;
  }

  absl::StatusOr<identity::v1::ResidenceStatus> GetCurrentResidenceStatus(
      absl::string_view person, absl::string_view,
      absl::Time deadline) override {
    ++residence_reads_;
    if (absl::Status s = Reachable(deadline); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    auto it = residence_.find(std::string(person));
    if (it == residence_.end()) {
      return ErrorWithReason(absl::StatusCode::kNotFound, "NO_RESIDENCE_STATUS",
                             "none recorded");
    }
    return it->second;
  }

 private:
  absl::Status Reachable(absl::Time deadline) {
    if (unavailable_) return absl::UnavailableError("identity is down");
    if (reads_hang_) {
      // A real client gives up at its deadline, capped at two seconds.
      absl::SleepFor(
          std::min(deadline - absl::Now(), absl::Duration(absl::Seconds(2))));
      return absl::DeadlineExceededError("identity did not answer");
    }
    return absl::OkStatus();
  }

  absl::Mutex mu_;
  std::map<std::string, identity::v1::Person> persons_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<std::string, type::v1::DataCategory>> allowed_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, identity::v1::ResidenceStatus> residence_
      ABSL_GUARDED_BY(mu_);
  std::atomic<bool> unavailable_{false};
  std::atomic<bool> reads_hang_{false};
  std::atomic<int> person_reads_{0};
  std::atomic<int> residence_reads_{0};
};

}  // namespace lotse::cases::fakes

#endif  // LOTSE_TESTS_CASES_SERVICE_FAKE_IDENTITY_CLIENT_H_
