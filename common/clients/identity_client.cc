#include "common/clients/identity_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"

namespace lotse::clients {

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

absl::StatusOr<identity::v1::ResidenceStatus>
IdentityClient::GetCurrentResidenceStatus(absl::string_view /*person*/,
                                          absl::string_view /*purpose*/,
                                          absl::Time /*deadline*/) {
  return absl::UnimplementedError(
      "this identity client cannot read residence statuses");
}

GrpcIdentityClient::GrpcIdentityClient(Options options)
    : options_(std::move(options)) {
  if (options_.credentials != nullptr) {
    stub_ = identity::v1::IdentityService::NewStub(
        grpc::CreateChannel(options_.target, options_.credentials));
  }
}

GrpcIdentityClient::GrpcIdentityClient(
    std::unique_ptr<identity::v1::IdentityService::StubInterface> stub,
    Options options)
    : options_(std::move(options)), stub_(std::move(stub)) {}

absl::Status GrpcIdentityClient::Prepare(absl::Time deadline,
                                         absl::string_view purpose,
                                         grpc::ClientContext* context) const {
  if (stub_ == nullptr) {
    return absl::UnavailableError(
        "no client credentials are configured for calls to identity");
  }
  const absl::Time capped =
      std::min(deadline, absl::Now() + options_.max_call_time);
  if (capped <= absl::Now()) {
    return absl::DeadlineExceededError("no time left to ask identity");
  }
  context->set_deadline(absl::ToChronoTime(capped));
  context->AddMetadata("x-lotse-actor", options_.actor);
  context->AddMetadata("x-lotse-purpose", std::string(purpose));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<identity::v1::AccessDecision>>
GrpcIdentityClient::CheckAccess(const AccessQuery& query, absl::Time deadline) {
  grpc::ClientContext context;
  if (absl::Status s = Prepare(deadline, query.purpose, &context); !s.ok()) {
    return s;
  }
  identity::v1::CheckAccessRequest request;
  request.set_agency(query.agency);
  request.set_person(query.person);
  for (type::v1::DataCategory c : query.categories) request.add_categories(c);
  request.set_purpose(query.purpose);
  for (identity::v1::Relation r : query.relations) request.add_relations(r);
  identity::v1::CheckAccessResponse response;
  const grpc::Status status = stub_->CheckAccess(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  if (response.decisions_size() != request.categories_size()) {
    return absl::InternalError(absl::StrCat(
        "identity answered ", response.decisions_size(), " decisions for ",
        request.categories_size(), " categories"));
  }
  return std::vector<identity::v1::AccessDecision>(response.decisions().begin(),
                                                   response.decisions().end());
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
  const grpc::Status status =
      stub_->GetCurrentResidenceStatus(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace lotse::clients
