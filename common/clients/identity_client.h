// What services ask the identity service synchronously (DESIGN.md section
// 3: checks that must be fresh, always with a deadline): whether a person
// exists, whether an agency may read a category of a person's data now,
// a person's current residence status (work permission), and an agency
// whose registration has not reached the service yet.
//
// IdentityClient is the seam: services depend on the interface; production
// wires GrpcIdentityClient (lotse.identity.v1.IdentityService over mutual
// TLS with the service's own client certificate, e.g. dev PKI
// clients/svc-courses); tests use a fake.
#ifndef LOTSE_COMMON_CLIENTS_IDENTITY_CLIENT_H_
#define LOTSE_COMMON_CLIENTS_IDENTITY_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/audit/audit_log.h"
#include "common/clients/internal/circuit_breaker.h"
#include "grpcpp/security/credentials.h"
#include "lotse/identity/v1/access_check.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/identity/v1/person.pb.h"
#include "lotse/identity/v1/residence.pb.h"
#include "lotse/type/v1/data_category.pb.h"

namespace lotse::clients {

struct AccessQuery {
  std::string agency;  // "agencies/{agency}": who wants to read
  std::string person;  // "persons/{person}"
  std::vector<type::v1::DataCategory> categories;
  std::string purpose;  // the agency's x-lotse-purpose
  // Relations the asking service knows from its own data.
  std::vector<identity::v1::Relation> relations;
};

class IdentityClient {
 public:
  virtual ~IdentityClient() = default;

  // Identity's CheckAccess: one decision per category, in query order.
  // NOT_FOUND when the person (or agency) is unknown; DEADLINE_EXCEEDED or
  // UNAVAILABLE when identity did not answer by `deadline` (callers fail
  // closed).
  virtual absl::StatusOr<std::vector<identity::v1::AccessDecision>> CheckAccess(
      const AccessQuery& query, absl::Time deadline) = 0;

  // CheckAccess for several queries; answers in query order, each as
  // CheckAccess would. The default asks one after the other;
  // GrpcIdentityClient has all of them in flight at once, so a page of
  // candidates costs about one round trip instead of one per candidate.
  virtual std::vector<absl::StatusOr<std::vector<identity::v1::AccessDecision>>>
  CheckAccessBatch(const std::vector<AccessQuery>& queries,
                   absl::Time deadline);

  // Whether `person` ("persons/{person}") exists, asked on behalf of
  // `agency` for `purpose`: OK with the person's resource name, NOT_FOUND
  // with reason PERSON_NOT_FOUND when identity does not know it. A merged
  // id exists in identity (it resolves to the survivor there); CheckAccess
  // does not name the survivor, so callers map merged ids themselves from
  // identity's PersonMerged events.
  virtual absl::StatusOr<std::string> ResolvePerson(absl::string_view person,
                                                    absl::string_view agency,
                                                    absl::string_view purpose,
                                                    absl::Time deadline);

  // Whether `agency` has standing towards `person`: it may read the
  // person's CORE_IDENTITY now (it registered the person, has a relation to
  // them, or a rule or consent lets it). A write that would give an agency
  // a relation to a person (a case, a booking, a waitlist entry, an
  // entitlement, a candidate profile, a placement) asks this first, so that
  // no agency can create its own access (docs/trust-model.md). OK when it
  // has; otherwise StandingError(), the same for a person identity does not
  // know; UNAVAILABLE (reason CHECK_UNAVAILABLE) when identity did not
  // answer in time (callers fail closed). The default asks CheckAccess.
  virtual absl::Status RequireStanding(absl::string_view person,
                                       absl::string_view agency,
                                       absl::string_view purpose,
                                       absl::Time deadline);

  // Identity's GetCurrentResidenceStatus for `person` ("persons/{person}"),
  // asked by the calling service itself (services may read it; identity
  // audits the read with `purpose`). NOT_FOUND with reason
  // NO_RESIDENCE_STATUS when none is recorded, NOT_FOUND with reason
  // PERSON_NOT_FOUND for an unknown person; DEADLINE_EXCEEDED or
  // UNAVAILABLE when identity did not answer by `deadline` (callers fail
  // closed). The default answers UNIMPLEMENTED, so fakes that predate it
  // keep compiling.
  virtual absl::StatusOr<identity::v1::ResidenceStatus>
  GetCurrentResidenceStatus(absl::string_view person, absl::string_view purpose,
                            absl::Time deadline);

  // Identity's GetAgency for `agency` ("agencies/{agency}"), asked by the
  // calling service itself, for a caller its local agency registry has not
  // heard of yet (common/agencies/registry.h). NOT_FOUND when identity
  // knows no such agency; DEADLINE_EXCEEDED or UNAVAILABLE when it did not
  // answer by `deadline`. The default answers UNIMPLEMENTED.
  virtual absl::StatusOr<identity::v1::Agency> GetAgency(
      absl::string_view agency, absl::Time deadline);

  // Identity's GetPerson for `person` ("persons/{person}"), asked by the
  // calling service itself (identity audits the read with `purpose`); for
  // a merged id, the survivor's record, without contact data. Identity
  // applies no per-agency rule to a service: call it only after
  // CheckAccess allowed CORE_IDENTITY to the agency the record is shown
  // to. NOT_FOUND for an unknown person; DEADLINE_EXCEEDED or UNAVAILABLE
  // when identity did not answer by `deadline`. The default answers
  // UNIMPLEMENTED.
  virtual absl::StatusOr<identity::v1::Person> GetPerson(
      absl::string_view person, absl::string_view purpose, absl::Time deadline);
};

// Identity's GetAgency through `identity`, in the form of the agency lookup
// of common/agencies (AgencyLookup): how a service learns of a caller its
// local registry has not heard of yet. Empty when `identity` is null.
std::function<absl::StatusOr<identity::v1::Agency>(absl::string_view agency,
                                                   absl::Time deadline)>
AgencyLookupOf(std::shared_ptr<IdentityClient> identity);

// The refusal of a write that would give an agency a relation to a person
// it has no standing towards: PERMISSION_DENIED, reason NO_RELATION, one
// message for an unknown person and a person the agency may not read, so
// the answer never tells whether a person exists.
absl::Status StandingError();

// RequireStanding's answer from identity's CheckAccess answer for
// CORE_IDENTITY: `allowed` is the decision, NOT_FOUND an unknown person,
// any other error a check that could not be made.
absl::Status StandingFrom(const absl::StatusOr<bool>& allowed);

// The legal basis an allowed decision names, for the audit record of the
// access it allowed: RULE with the rule id, CONSENT with the consent, else
// OWNER.
audit::LegalBasis LegalBasisOf(const identity::v1::AccessDecision& decision);

// Calls the identity service over gRPC. Every call carries a deadline: the
// caller's less a reserve (a fifth of the time left, at most 200 ms) for
// the caller to answer its own client after identity did not, capped at
// `max_call_time`. Metadata x-lotse-actor is the service ("svc-courses"),
// x-lotse-purpose the agency's purpose.
//
// When identity does not answer (unreachable, or no answer in time), a
// call fails UNAVAILABLE with reason CHECK_UNAVAILABLE, never
// DEADLINE_EXCEEDED, so that the caller's client knows to retry. After
// `breaker_failures` such calls in a row the client stops asking: calls
// fail the same way at once, without waiting, and one call every
// `breaker_open_for` tries identity again; the first one answered ends
// that. The channel tries to reconnect at least every
// `max_reconnect_backoff`, so a restarted identity is used again within
// about that long. Thread-safe.
class GrpcIdentityClient final : public IdentityClient {
 public:
  struct Options {
    std::string target;  // "host:port" of the identity service
    // Null: every call fails UNAVAILABLE (a process without TLS material
    // refuses to start anyway; see service_main.h).
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    std::string actor = "service";  // x-lotse-actor of the calls
    absl::Duration max_call_time = absl::Seconds(2);
    int breaker_failures = 5;  // 0: never stop asking
    absl::Duration breaker_open_for = absl::Seconds(1);
    // Told true when the client stops asking and false when identity
    // answers again (for logs); may be empty.
    std::function<void(bool stopped)> on_breaker_change;
    absl::Duration max_reconnect_backoff = absl::Seconds(1);
  };
  explicit GrpcIdentityClient(Options options);
  // For tests: calls through an existing stub.
  GrpcIdentityClient(
      std::unique_ptr<identity::v1::IdentityService::StubInterface> stub,
      Options options);

  absl::StatusOr<std::vector<identity::v1::AccessDecision>> CheckAccess(
      const AccessQuery& query, absl::Time deadline) override;
  std::vector<absl::StatusOr<std::vector<identity::v1::AccessDecision>>>
  CheckAccessBatch(const std::vector<AccessQuery>& queries,
                   absl::Time deadline) override;
  absl::StatusOr<identity::v1::ResidenceStatus> GetCurrentResidenceStatus(
      absl::string_view person, absl::string_view purpose,
      absl::Time deadline) override;
  absl::StatusOr<identity::v1::Agency> GetAgency(absl::string_view agency,
                                                 absl::Time deadline) override;
  absl::StatusOr<identity::v1::Person> GetPerson(absl::string_view person,
                                                 absl::string_view purpose,
                                                 absl::Time deadline) override;

 private:
  // A context with the call's metadata and its deadline (see the class
  // comment). DEADLINE_EXCEEDED when the caller has no time left;
  // UNAVAILABLE (CHECK_UNAVAILABLE) while the breaker refuses calls. When
  // OK, the call must be ended with Finish.
  absl::Status Prepare(absl::Time deadline, absl::string_view purpose,
                       grpc::ClientContext* context);
  // The call's status as absl::Status, with "identity did not answer"
  // (UNAVAILABLE, DEADLINE_EXCEEDED) as UNAVAILABLE (CHECK_UNAVAILABLE);
  // tells the breaker whether identity answered.
  absl::Status Finish(const grpc::Status& status);

  Options options_;
  std::unique_ptr<identity::v1::IdentityService::StubInterface> stub_;
  internal::CircuitBreaker breaker_;
};

}  // namespace lotse::clients

#endif  // LOTSE_COMMON_CLIENTS_IDENTITY_CLIENT_H_
