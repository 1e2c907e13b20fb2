// The cases service's port to the identity service: whether a person
// exists, whether an agency may read a category of a person's data
// (DESIGN.md section 4), and the person record and current residence
// status for a case view whose caller may see them. Handlers depend on this
// interface only; the process wires an adapter over
// common/clients/identity_client.h, tests and benchmarks a StaticAccessChecker.
//
// Implementations are called outside any database transaction (never from
// inside a write body) and must honour the deadline.
#ifndef LOTSE_SERVICES_CASES_DOMAIN_ACCESS_CHECKER_H_
#define LOTSE_SERVICES_CASES_DOMAIN_ACCESS_CHECKER_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/audit/audit_log.h"
#include "lotse/identity/v1/access_check.pb.h"
#include "lotse/identity/v1/agency.pb.h"
#include "lotse/identity/v1/person.pb.h"
#include "lotse/identity/v1/residence.pb.h"
#include "lotse/type/v1/access.pb.h"
#include "lotse/type/v1/data_category.pb.h"

namespace lotse::cases {

// One decision per asked category.
struct AccessDecision {
  type::v1::DataCategory category = type::v1::DATA_CATEGORY_UNSPECIFIED;
  bool allowed = false;
  // Set when not allowed.
  type::v1::AccessDenialReason denial_reason =
      type::v1::ACCESS_DENIAL_REASON_UNSPECIFIED;
  // Set when allowed: the ground identity named (rule, consent or owner),
  // which the audit record of the access carries.
  audit::LegalBasis basis;
};

class AccessChecker {
 public:
  virtual ~AccessChecker() = default;

  // Identity's CheckAccess for `agency` ("agencies/{id}") reading
  // `categories` of `person` ("persons/{id}") for `purpose`, given the
  // relations the cases service knows. One decision per category, in
  // order. NOT_FOUND when identity does not know the person; UNAVAILABLE /
  // DEADLINE_EXCEEDED when it did not answer (callers fail closed).
  virtual absl::StatusOr<std::vector<AccessDecision>> Check(
      absl::string_view agency, absl::string_view person,
      const std::vector<type::v1::DataCategory>& categories,
      absl::string_view purpose,
      const std::vector<identity::v1::Relation>& relations,
      absl::Time deadline) = 0;

  // The person's resource name as identity knows it; NOT_FOUND (reason
  // PERSON_NOT_FOUND) when unknown.
  virtual absl::StatusOr<std::string> ResolvePerson(absl::string_view person,
                                                    absl::string_view agency,
                                                    absl::string_view purpose,
                                                    absl::Time deadline) = 0;

  // Identity's record of `agency` ("agencies/{id}"), for a caller the local
  // registry has not heard of yet (common/agencies/registry.h): NOT_FOUND
  // when identity does not know it. The default answers UNIMPLEMENTED (this
  // checker cannot tell; the caller is refused as before).
  virtual absl::StatusOr<identity::v1::Agency> GetAgency(
      absl::string_view agency, absl::Time deadline);

  // Identity's record of `person`, read by the cases service itself. Only
  // for a caller Check allowed CORE_IDENTITY. NOT_FOUND for an unknown
  // person; UNAVAILABLE / DEADLINE_EXCEEDED when identity did not answer.
  virtual absl::StatusOr<identity::v1::Person> GetPerson(
      absl::string_view person, absl::string_view purpose,
      absl::Time deadline) = 0;

  // The current residence status of `person`, likewise (only for a caller
  // Check allowed RESIDENCE_STATUS). NOT_FOUND with reason
  // NO_RESIDENCE_STATUS when none is recorded.
  virtual absl::StatusOr<identity::v1::ResidenceStatus>
  GetCurrentResidenceStatus(absl::string_view person, absl::string_view purpose,
                            absl::Time deadline) = 0;
};

// An in-memory AccessChecker for tests and benchmarks: a set of known
// persons (or all, with allow_any_person) and per-(agency, category)
// grants; CASE_STATUS is always allowed. A known person's record carries
// only its name unless set; residence statuses are set per person.
// Thread-safe.
class StaticAccessChecker final : public AccessChecker {
 public:
  void AddPerson(absl::string_view person) ABSL_LOCKS_EXCLUDED(mu_);
  // GetAgency answers `agency` (by its name); once any is added, other
  // names are NOT_FOUND, before that UNIMPLEMENTED.
  void AddAgency(identity::v1::Agency agency) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<identity::v1::Agency> GetAgency(absl::string_view agency,
                                                 absl::Time deadline) override
      ABSL_LOCKS_EXCLUDED(mu_);
  void set_allow_any_person(bool allow) ABSL_LOCKS_EXCLUDED(mu_);
  // Lets `agency` read `category` of every person.
  void Grant(absl::string_view agency, type::v1::DataCategory category)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Makes every call fail with UNAVAILABLE (identity down).
  void set_unavailable(bool unavailable) ABSL_LOCKS_EXCLUDED(mu_);
  // What GetPerson / GetCurrentResidenceStatus answer for record.name() /
  // `person` (a known person from then on).
  void SetPersonRecord(const identity::v1::Person& record)
      ABSL_LOCKS_EXCLUDED(mu_);
  void SetResidence(absl::string_view person,
                    const identity::v1::ResidenceStatus& status)
      ABSL_LOCKS_EXCLUDED(mu_);
  int check_calls() const ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<std::vector<AccessDecision>> Check(
      absl::string_view agency, absl::string_view person,
      const std::vector<type::v1::DataCategory>& categories,
      absl::string_view purpose,
      const std::vector<identity::v1::Relation>& relations,
      absl::Time deadline) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::string> ResolvePerson(absl::string_view person,
                                            absl::string_view agency,
                                            absl::string_view purpose,
                                            absl::Time deadline) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<identity::v1::Person> GetPerson(absl::string_view person,
                                                 absl::string_view purpose,
                                                 absl::Time deadline) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<identity::v1::ResidenceStatus> GetCurrentResidenceStatus(
      absl::string_view person, absl::string_view purpose,
      absl::Time deadline) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  bool allow_any_person_ ABSL_GUARDED_BY(mu_) = false;
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  int check_calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_set<std::string> persons_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> grants_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, identity::v1::Agency> agencies_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, identity::v1::Person> records_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, identity::v1::ResidenceStatus> residence_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace lotse::cases

#endif  // LOTSE_SERVICES_CASES_DOMAIN_ACCESS_CHECKER_H_
