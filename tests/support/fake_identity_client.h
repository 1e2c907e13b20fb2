// An in-memory clients::IdentityClient for the service tests of cases,
// courses and placement, which ask identity the same questions through the
// same interface.
//
// What it knows: persons (by resource name, optionally with their record),
// per-(agency, category) grants, agencies without standing ("strangers"),
// and residence statuses per person. What it answers:
//   * CheckAccess: NOT_FOUND (reason PERSON_NOT_FOUND) for an unknown
//     person; otherwise, per category, allowed when granted — and
//     CORE_IDENTITY (standing towards the person) also to every agency not
//     marked as a stranger, unless the fake was told that standing must be
//     granted explicitly (set_standing_by_default(false)).
//   * GetPerson, GetCurrentResidenceStatus: the stored record or NOT_FOUND
//     with reason PERSON_NOT_FOUND / NO_RESIDENCE_STATUS.
//   * RequireStanding, ResolvePerson: the interface's defaults, i.e. through
//     CheckAccess, as the production client does.
// Failure modes: unavailable (every call UNAVAILABLE) and hanging reads
// (GetPerson and GetCurrentResidenceStatus wait for their deadline, at most
// two seconds as a real client would, then DEADLINE_EXCEEDED).
//
// Thread-safe.
#ifndef LOTSE_TESTS_SUPPORT_FAKE_IDENTITY_CLIENT_H_
#define LOTSE_TESTS_SUPPORT_FAKE_IDENTITY_CLIENT_H_

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

namespace lotse::testing {

class FakeIdentityClient : public clients::IdentityClient {
 public:
  // A person identity knows, by name ("persons/x"), with an empty record.
  void AddPerson(const std::string& person) {
    identity::v1::Person record;
    record.set_name(person);
    AddPerson(record);
  }
  // A person identity knows, with its record (record.name() is the key).
  void AddPerson(const identity::v1::Person& record) {
    absl::MutexLock lock(&mu_);
    persons_[record.name()] = record;
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
  // `agency` has no relation to any person: identity refuses it the core
  // identity, so it may not create a relation (book, oblige, propose).
  void MakeStranger(const std::string& agency) {
    absl::MutexLock lock(&mu_);
    strangers_.insert(agency);
  }
  // False: CORE_IDENTITY only where Allow()ed, like any other category.
  void set_standing_by_default(bool standing) {
    standing_by_default_ = standing;
  }
  void SetResidence(const std::string& person,
                    const identity::v1::ResidenceStatus& status) {
    absl::MutexLock lock(&mu_);
    residence_[person] = status;
  }
  // A current status with `permission`, recorded by `recording_agency`.
  void SetResidence(
      const std::string& person, type::v1::WorkPermission permission,
      const std::string& recording_agency = "agencies/abh-koeln") {
    identity::v1::ResidenceStatus status;
    status.set_work_permission(permission);
    status.set_recording_agency(recording_agency);
    status.set_current(true);
    SetResidence(person, status);
  }
  void set_unavailable(bool unavailable) { unavailable_ = unavailable; }
  void set_reads_hang(bool hang) { reads_hang_ = hang; }

  int access_calls() const { return access_calls_; }
  int person_reads() const { return person_reads_; }
  int residence_reads() const { return residence_reads_; }

  absl::StatusOr<std::vector<identity::v1::AccessDecision>> CheckAccess(
      const clients::AccessQuery& query, absl::Time) override {
    ++access_calls_;
    if (unavailable_) return absl::UnavailableError("identity is down");
    absl::MutexLock lock(&mu_);
    if (persons_.count(query.person) == 0) return UnknownPerson();
    std::vector<identity::v1::AccessDecision> out;
    for (type::v1::DataCategory category : query.categories) {
      identity::v1::AccessDecision d;
      d.set_category(category);
      const bool standing = category == type::v1::DATA_CATEGORY_CORE_IDENTITY &&
                            standing_by_default_ &&
                            strangers_.count(query.agency) == 0;
      d.set_allowed(standing || allowed_.count({query.agency, category}) > 0);
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
    if (it == persons_.end()) return UnknownPerson();
    return it->second;
  }

  absl::StatusOr<identity::v1::ResidenceStatus> GetCurrentResidenceStatus(
      absl::string_view person, absl::string_view,
      absl::Time deadline) override {
    ++residence_reads_;
    if (absl::Status s = Reachable(deadline); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    if (persons_.count(std::string(person)) == 0) return UnknownPerson();
    auto it = residence_.find(std::string(person));
    if (it == residence_.end()) {
      return ErrorWithReason(absl::StatusCode::kNotFound, "NO_RESIDENCE_STATUS",
                             "none recorded");
    }
    return it->second;
  }

 private:
  static absl::Status UnknownPerson() {
    return ErrorWithReason(absl::StatusCode::kNotFound, "PERSON_NOT_FOUND",
                           "unknown person");
  }

  absl::Status Reachable(absl::Time deadline) const {
    if (unavailable_) return absl::UnavailableError("identity is down");
    if (reads_hang_) {
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
  std::set<std::string> strangers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, identity::v1::ResidenceStatus> residence_
      ABSL_GUARDED_BY(mu_);
  std::atomic<bool> standing_by_default_{true};
  std::atomic<bool> unavailable_{false};
  std::atomic<bool> reads_hang_{false};
  std::atomic<int> access_calls_{0};
  std::atomic<int> person_reads_{0};
  std::atomic<int> residence_reads_{0};
};

}  // namespace lotse::testing

#endif  // LOTSE_TESTS_SUPPORT_FAKE_IDENTITY_CLIENT_H_
