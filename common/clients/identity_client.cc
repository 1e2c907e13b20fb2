#include "common/clients/identity_client.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace lotse::clients {

std::vector<absl::StatusOr<std::vector<identity::v1::AccessDecision>>>
IdentityClient::CheckAccessBatch(const std::vector<AccessQuery>& queries,
                                 absl::Time deadline) {
  std::vector<absl::StatusOr<std::vector<identity::v1::AccessDecision>>> out;
  out.reserve(queries.size());
  for (const AccessQuery& q : queries) out.push_back(CheckAccess(q, deadline));
  return out;
}

absl::StatusOr<std::string> IdentityClient::ResolvePerson(
    absl::string_view person, absl::string_view agency,
    absl::string_view purpose, absl::Time deadline) {
  AccessQuery query;
  query.agency = std::string(agency);
  query.person = std::string(person);
  query.categories = {type::v1::DATA_CATEGORY_CORE_IDENTITY};
  query.purpose = std::string(purpose);
  absl::StatusOr<std::vector<identity::v1::AccessDecision>> decisions =
      CheckAccess(query, deadline);
  if (!decisions.ok()) {
    if (decisions.status().code() == absl::StatusCode::kNotFound) {
      return ErrorWithReason(absl::StatusCode::kNotFound, "PERSON_NOT_FOUND",
                             absl::StrCat("identity knows no ", person));
    }
    return decisions.status();
  }
  return std::string(person);
}

absl::Status IdentityClient::RequireStanding(absl::string_view person,
                                             absl::string_view agency,
                                             absl::string_view purpose,
                                             absl::Time deadline) {
  AccessQuery query;
  query.agency = std::string(agency);
  query.person = std::string(person);
  query.categories = {type::v1::DATA_CATEGORY_CORE_IDENTITY};
  query.purpose = std::string(purpose);
  absl::StatusOr<std::vector<identity::v1::AccessDecision>> decisions =
      CheckAccess(query, deadline);
  if (!decisions.ok()) return StandingFrom(decisions.status());
  return StandingFrom(!decisions->empty() && decisions->front().allowed());
}

std::function<absl::StatusOr<identity::v1::Agency>(absl::string_view,
                                                   absl::Time)>
AgencyLookupOf(std::shared_ptr<IdentityClient> identity) {
  if (identity == nullptr) return nullptr;
  return [identity = std::move(identity)](absl::string_view agency,
                                          absl::Time deadline) {
    return identity->GetAgency(agency, deadline);
  };
}

absl::Status StandingError() {
  return ErrorWithReason(
      absl::StatusCode::kPermissionDenied, "NO_RELATION",
      "the calling agency has no relation to this person that lets it act "
      "on them; a relation comes from registering the person, from a "
      "referral or booking by another agency, or from linking the agency's "
      "own id with proof that the person is in its remit (LinkAgencyId)");
}

audit::LegalBasis LegalBasisOf(const identity::v1::AccessDecision& decision) {
  audit::LegalBasis basis;
  absl::string_view category = type::v1::DataCategory_Name(decision.category());
  absl::ConsumePrefix(&category, "DATA_CATEGORY_");
  basis.category = std::string(category);
  switch (decision.basis()) {
    case identity::v1::ACCESS_BASIS_LEGAL_BASIS:
      basis.kind = audit::BasisKind::kRule;
      basis.rule_id = decision.rule_id();
      break;
    case identity::v1::ACCESS_BASIS_CONSENT:
      basis.kind = audit::BasisKind::kConsent;
      basis.consent = decision.consent();
      break;
    default:
      basis.kind = audit::BasisKind::kOwner;
      break;
  }
  return basis;
}

absl::Status StandingFrom(const absl::StatusOr<bool>& allowed) {
  if (allowed.ok()) return *allowed ? absl::OkStatus() : StandingError();
  if (allowed.status().code() == absl::StatusCode::kNotFound) {
    return StandingError();
  }
  return ErrorWithReason(
      absl::StatusCode::kUnavailable, "CHECK_UNAVAILABLE",
      "the identity service could not confirm the agency's relation to the "
      "person in time; try again");
}

absl::StatusOr<identity::v1::ResidenceStatus>
IdentityClient::GetCurrentResidenceStatus(absl::string_view /*person*/,
                                          absl::string_view /*purpose*/,
                                          absl::Time /*deadline*/) {
  return absl::UnimplementedError(
      "this identity client cannot read residence statuses");
}

absl::StatusOr<identity::v1::Agency> IdentityClient::GetAgency(
    absl::string_view /*agency*/, absl::Time /*deadline*/) {
  return absl::UnimplementedError("this identity client cannot read agencies");
}

namespace {

internal::CircuitBreaker::Options BreakerOptions(
    const GrpcIdentityClient::Options& options) {
  internal::CircuitBreaker::Options out;
  out.failures_to_open = options.breaker_failures;
  out.open_for = options.breaker_open_for;
  out.on_change = options.on_breaker_change;
  return out;
}

// The answer to the caller when identity did not answer.
absl::Status NotAnswered(absl::string_view why) {
  return ErrorWithReason(
      absl::StatusCode::kUnavailable, "CHECK_UNAVAILABLE",
      absl::StrCat("identity did not answer: ", why, "; try again"));
}

}  // namespace

GrpcIdentityClient::GrpcIdentityClient(Options options)
    : options_(std::move(options)), breaker_(BreakerOptions(options_)) {
  if (options_.credentials != nullptr) {
    grpc::ChannelArguments args;
    // gRPC's default reconnect backoff grows to 120 s; identity is on the
    // path of calls, so a returning identity must be noticed soon.
    const int max_backoff_ms = static_cast<int>(std::max<int64_t>(
        100, absl::ToInt64Milliseconds(options_.max_reconnect_backoff)));
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                std::min(max_backoff_ms, 200));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
    stub_ = identity::v1::IdentityService::NewStub(
        grpc::CreateCustomChannel(options_.target, options_.credentials, args));
  }
}

GrpcIdentityClient::GrpcIdentityClient(
    std::unique_ptr<identity::v1::IdentityService::StubInterface> stub,
    Options options)
    : options_(std::move(options)),
      stub_(std::move(stub)),
      breaker_(BreakerOptions(options_)) {}

absl::Status GrpcIdentityClient::Prepare(absl::Time deadline,
                                         absl::string_view purpose,
                                         grpc::ClientContext* context) {
  if (stub_ == nullptr) {
    return absl::UnavailableError(
        "no client credentials are configured for calls to identity");
  }
  const absl::Time now = absl::Now();
  if (deadline <= now) {
    return absl::DeadlineExceededError("no time left to ask identity");
  }
  absl::Time capped = now + options_.max_call_time;
  if (deadline != absl::InfiniteFuture()) {
    const absl::Duration reserve =
        std::min(absl::Milliseconds(200), (deadline - now) / 5);
    capped = std::min(capped, deadline - reserve);
  }
  if (!breaker_.Allow()) {
    return NotAnswered(
        "it has not answered the last calls, and is asked again shortly");
  }
  context->set_deadline(absl::ToChronoTime(capped));
  context->AddMetadata("x-lotse-actor", options_.actor);
  context->AddMetadata("x-lotse-purpose", std::string(purpose));
  return absl::OkStatus();
}

absl::Status GrpcIdentityClient::Finish(const grpc::Status& status) {
  const bool answered =
      status.error_code() != grpc::StatusCode::UNAVAILABLE &&
      status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED;
  breaker_.Record(answered);
  if (answered) return FromGrpcStatus(status);
  return NotAnswered(status.error_code() == grpc::StatusCode::UNAVAILABLE
                         ? "unreachable"
                         : "no answer in time");
}

namespace {

identity::v1::CheckAccessRequest AccessRequestOf(const AccessQuery& query) {
  identity::v1::CheckAccessRequest request;
  request.set_agency(query.agency);
  request.set_person(query.person);
  for (type::v1::DataCategory c : query.categories) request.add_categories(c);
  request.set_purpose(query.purpose);
  for (identity::v1::Relation r : query.relations) request.add_relations(r);
  return request;
}

absl::StatusOr<std::vector<identity::v1::AccessDecision>> DecisionsOf(
    const absl::Status& status, const identity::v1::CheckAccessRequest& request,
    const identity::v1::CheckAccessResponse& response) {
  if (!status.ok()) return status;
  if (response.decisions_size() != request.categories_size()) {
    return absl::InternalError(absl::StrCat(
        "identity answered ", response.decisions_size(), " decisions for ",
        request.categories_size(), " categories"));
  }
  return std::vector<identity::v1::AccessDecision>(response.decisions().begin(),
                                                   response.decisions().end());
}

}  // namespace

absl::StatusOr<std::vector<identity::v1::AccessDecision>>
GrpcIdentityClient::CheckAccess(const AccessQuery& query, absl::Time deadline) {
  grpc::ClientContext context;
  if (absl::Status s = Prepare(deadline, query.purpose, &context); !s.ok()) {
    return s;
  }
  const identity::v1::CheckAccessRequest request = AccessRequestOf(query);
  identity::v1::CheckAccessResponse response;
  const absl::Status status =
      Finish(stub_->CheckAccess(&context, request, &response));
  return DecisionsOf(status, request, response);
}

std::vector<absl::StatusOr<std::vector<identity::v1::AccessDecision>>>
GrpcIdentityClient::CheckAccessBatch(const std::vector<AccessQuery>& queries,
                                     absl::Time deadline) {
  struct Call {
    grpc::ClientContext context;
    identity::v1::CheckAccessRequest request;
    identity::v1::CheckAccessResponse response;
    grpc::Status status;
    bool issued = false;
  };
  std::vector<absl::StatusOr<std::vector<identity::v1::AccessDecision>>> out(
      queries.size(), absl::UnknownError("not asked"));
  std::vector<std::unique_ptr<Call>> calls(queries.size());
  absl::BlockingCounter done(static_cast<int>(queries.size()));
  for (size_t i = 0; i < queries.size(); ++i) {
    calls[i] = std::make_unique<Call>();
    Call& call = *calls[i];
    if (absl::Status s = Prepare(deadline, queries[i].purpose, &call.context);
        !s.ok()) {
      out[i] = s;
      done.DecrementCount();
      continue;
    }
    call.request = AccessRequestOf(queries[i]);
    call.issued = true;
    stub_->async()->CheckAccess(&call.context, &call.request, &call.response,
                                [&call, &done](grpc::Status status) {
                                  call.status = std::move(status);
                                  done.DecrementCount();
                                });
  }
  // Every call has a deadline (Prepare), so this wait is bounded.
  done.Wait();
  for (size_t i = 0; i < queries.size(); ++i) {
    if (calls[i]->issued) {
      out[i] = DecisionsOf(Finish(calls[i]->status), calls[i]->request,
                           calls[i]->response);
    }
  }
  return out;
}

absl::StatusOr<identity::v1::ResidenceStatus>
GrpcIdentityClient::GetCurrentResidenceStatus(absl::string_view person,
                                              absl::string_view purpose,
                                              absl::Time deadline) {
  grpc::ClientContext context;
  if (absl::Status s = Prepare(deadline, purpose, &context); !s.ok()) {
    return s;
  }
  identity::v1::GetCurrentResidenceStatusRequest request;
  request.set_person(std::string(person));
  identity::v1::ResidenceStatus response;
  const absl::Status status =
      Finish(stub_->GetCurrentResidenceStatus(&context, request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<identity::v1::Agency> GrpcIdentityClient::GetAgency(
    absl::string_view agency, absl::Time deadline) {
  grpc::ClientContext context;
  // The service asks for itself; the purpose names why in identity's audit.
  if (absl::Status s = Prepare(deadline, "agency-registry", &context);
      !s.ok()) {
    return s;
  }
  identity::v1::GetAgencyRequest request;
  request.set_name(std::string(agency));
  identity::v1::Agency response;
  const absl::Status status =
      Finish(stub_->GetAgency(&context, request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<identity::v1::Person> IdentityClient::GetPerson(
    absl::string_view /*person*/, absl::string_view /*purpose*/,
    absl::Time /*deadline*/) {
  return absl::UnimplementedError("this identity client cannot read persons");
}

absl::StatusOr<identity::v1::Person> GrpcIdentityClient::GetPerson(
    absl::string_view person, absl::string_view purpose, absl::Time deadline) {
  grpc::ClientContext context;
  if (absl::Status s = Prepare(deadline, purpose, &context); !s.ok()) {
    return s;
  }
  identity::v1::GetPersonRequest request;
  request.set_name(std::string(person));
  identity::v1::Person response;
  const absl::Status status =
      Finish(stub_->GetPerson(&context, request, &response));
  if (!status.ok()) return status;
  return response;
}

}  // namespace lotse::clients
