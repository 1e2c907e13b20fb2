// The AccessChecker port over identity's gRPC client
// (common/clients/identity_client.h): what the cases process wires.
#ifndef LOTSE_SERVICES_CASES_SERVICE_IDENTITY_ACCESS_CHECKER_H_
#define LOTSE_SERVICES_CASES_SERVICE_IDENTITY_ACCESS_CHECKER_H_

#include <memory>
#include <string>
#include <vector>

#include "common/clients/identity_client.h"
#include "services/cases/domain/access_checker.h"

namespace lotse::cases {

class IdentityAccessChecker final : public AccessChecker {
 public:
  explicit IdentityAccessChecker(
      std::unique_ptr<clients::IdentityClient> client)
      : client_(std::move(client)) {}

  absl::StatusOr<std::vector<AccessDecision>> Check(
      absl::string_view agency, absl::string_view person,
      const std::vector<type::v1::DataCategory>& categories,
      absl::string_view purpose,
      const std::vector<identity::v1::Relation>& relations,
      absl::Time deadline) override;
  absl::StatusOr<std::string> ResolvePerson(absl::string_view person,
                                            absl::string_view agency,
                                            absl::string_view purpose,
                                            absl::Time deadline) override;
  absl::StatusOr<identity::v1::Agency> GetAgency(absl::string_view agency,
                                                 absl::Time deadline) override {
    return client_->GetAgency(agency, deadline);
  }
  absl::StatusOr<identity::v1::Person> GetPerson(absl::string_view person,
                                                 absl::string_view purpose,
                                                 absl::Time deadline) override;
  absl::StatusOr<identity::v1::ResidenceStatus> GetCurrentResidenceStatus(
      absl::string_view person, absl::string_view purpose,
      absl::Time deadline) override;

 private:
  std::unique_ptr<clients::IdentityClient> client_;
};

// Used when no identity service is configured: every check fails closed
// (UNAVAILABLE), so views withhold and OpenCase is refused.
class UnavailableAccessChecker final : public AccessChecker {
 public:
  absl::StatusOr<std::vector<AccessDecision>> Check(
      absl::string_view, absl::string_view,
      const std::vector<type::v1::DataCategory>&, absl::string_view,
      const std::vector<identity::v1::Relation>&, absl::Time) override {
    return absl::UnavailableError("no identity service configured");
  }
  absl::StatusOr<std::string> ResolvePerson(absl::string_view,
                                            absl::string_view,
                                            absl::string_view,
                                            absl::Time) override {
    return absl::UnavailableError("no identity service configured");
  }
  absl::StatusOr<identity::v1::Agency> GetAgency(absl::string_view,
                                                 absl::Time) override {
    return absl::UnavailableError("no identity service configured");
  }
  absl::StatusOr<identity::v1::Person> GetPerson(absl::string_view,
                                                 absl::string_view,
                                                 absl::Time) override {
    return absl::UnavailableError("no identity service configured");
  }
  absl::StatusOr<identity::v1::ResidenceStatus> GetCurrentResidenceStatus(
      absl::string_view, absl::string_view, absl::Time) override {
    return absl::UnavailableError("no identity service configured");
  }
};

}  // namespace lotse::cases

#endif  // LOTSE_SERVICES_CASES_SERVICE_IDENTITY_ACCESS_CHECKER_H_
