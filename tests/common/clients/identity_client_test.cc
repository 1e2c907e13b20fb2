// GrpcIdentityClient against a tiny in-process fake IdentityService.
#include "common/clients/identity_client.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"

namespace lotse::clients {
namespace {

class FakeIdentity final : public identity::v1::IdentityService::Service {
 public:
  grpc::Status CheckAccess(
      grpc::ServerContext* context,
      const identity::v1::CheckAccessRequest* request,
      identity::v1::CheckAccessResponse* response) override {
    last_request = *request;
    auto md = context->client_metadata();
    auto actor = md.find("x-lotse-actor");
    if (actor != md.end()) {
      last_actor = std::string(actor->second.data(), actor->second.size());
    }
    had_deadline = context->deadline() <
                   std::chrono::system_clock::now() + std::chrono::hours(1);
    if (request->person() == "persons/unknown") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such person");
    }
    if (request->person() == "persons/slow") {
      absl::SleepFor(absl::Milliseconds(300));
    }
    if (absl::StartsWith(request->person(), "persons/together")) {
      // Answers only once kTogether such calls are in flight at once, so
      // a client that asks one after the other never gets an answer.
      absl::MutexLock lock(&mu);
      ++in_flight;
      auto all_there = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
        return in_flight >= kTogether;
      };
      if (!mu.AwaitWithTimeout(absl::Condition(&all_there), absl::Seconds(3))) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "asked alone");
      }
    }
    for (int c : request->categories()) {
      auto* d = response->add_decisions();
      d->set_category(static_cast<type::v1::DataCategory>(c));
      d->set_allowed(request->agency() == "agencies/bamf-nuernberg");
      if (!d->allowed()) {
        d->set_denial_reason(type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS);
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status GetAgency(grpc::ServerContext* context,
                         const identity::v1::GetAgencyRequest* request,
                         identity::v1::Agency* response) override {
    auto md = context->client_metadata();
    auto purpose = md.find("x-lotse-purpose");
    if (purpose != md.end()) {
      last_purpose =
          std::string(purpose->second.data(), purpose->second.size());
    }
    if (request->name() == "agencies/slow") {
      absl::SleepFor(absl::Milliseconds(300));
    }
    if (request->name() != "agencies/kim-koeln") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such agency");
    }
    response->set_name(request->name());
    response->set_legal_domain(type::v1::LEGAL_DOMAIN_KOMMUNE);
    return grpc::Status::OK;
  }

  grpc::Status GetPerson(grpc::ServerContext* context,
                         const identity::v1::GetPersonRequest* request,
                         identity::v1::Person* response) override {
    auto md = context->client_metadata();
    auto purpose = md.find("x-lotse-purpose");
    if (purpose != md.end()) {
      last_purpose =
          std::string(purpose->second.data(), purpose->second.size());
    }
    if (request->name() == "persons/unknown") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such person");
    }
    if (request->name() == "persons/slow") {
      absl::SleepFor(absl::Milliseconds(300));
    }
    response->set_name(request->name());
    response->add_names()->set_family_names("Haddad");
    return grpc::Status::OK;
  }

  static constexpr int kTogether = 4;
  std::string last_purpose;
  absl::Mutex mu;
  int in_flight ABSL_GUARDED_BY(mu) = 0;
  identity::v1::CheckAccessRequest last_request;
  std::string last_actor;
  bool had_deadline = false;
};

class IdentityClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    GrpcIdentityClient::Options options;
    options.target = absl::StrCat("127.0.0.1:", port);
    options.credentials = grpc::InsecureChannelCredentials();
    options.actor = "svc-courses";
    options.max_call_time = absl::Milliseconds(100);
    client_ = std::make_unique<GrpcIdentityClient>(options);
    port_ = port;
  }
  void TearDown() override { server_->Shutdown(); }

  std::unique_ptr<GrpcIdentityClient> ClientWithCallTime(absl::Duration d) {
    GrpcIdentityClient::Options options;
    options.target = absl::StrCat("127.0.0.1:", port_);
    options.credentials = grpc::InsecureChannelCredentials();
    options.actor = "svc-placement";
    options.max_call_time = d;
    return std::make_unique<GrpcIdentityClient>(options);
  }

  FakeIdentity fake_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<GrpcIdentityClient> client_;
  int port_ = 0;
};

TEST_F(IdentityClientTest, CheckAccessBatchAsksAllAtOnceAndAnswersInOrder) {
  std::unique_ptr<GrpcIdentityClient> client =
      ClientWithCallTime(absl::Seconds(10));
  std::vector<AccessQuery> queries;
  for (int i = 0; i < FakeIdentity::kTogether; ++i) {
    AccessQuery q;
    q.agency = i == 1 ? "agencies/bamf-nuernberg" : "agencies/jobcenter-koeln";
    q.person = absl::StrCat("persons/together", i);
    q.categories = {type::v1::DATA_CATEGORY_EMPLOYMENT};
    q.purpose = "job-placement";
    queries.push_back(q);
  }
  AccessQuery unknown = queries[0];
  unknown.person = "persons/unknown";
  queries.push_back(unknown);

  auto answers =
      client->CheckAccessBatch(queries, absl::Now() + absl::Seconds(10));
  ASSERT_EQ(answers.size(), queries.size());
  for (int i = 0; i < FakeIdentity::kTogether; ++i) {
    ASSERT_TRUE(answers[i].ok()) << i << ": " << answers[i].status();
    ASSERT_EQ(answers[i]->size(), 1u);
    // Only query 1 asked as BAMF, which the fake allows: order is kept.
    EXPECT_EQ((*answers[i])[0].allowed(), i == 1) << i;
  }
  EXPECT_EQ(answers.back().status().code(), absl::StatusCode::kNotFound);
}

TEST_F(IdentityClientTest, CheckAccessPassesTheQueryAndADeadline) {
  AccessQuery query;
  query.agency = "agencies/bamf-nuernberg";
  query.person = "persons/p1";
  query.categories = {type::v1::DATA_CATEGORY_LANGUAGE};
  query.purpose = "course-placement";
  query.relations = {identity::v1::RELATION_SERVES_PERSON};
  auto decisions = client_->CheckAccess(query, absl::InfiniteFuture());
  ASSERT_TRUE(decisions.ok()) << decisions.status();
  ASSERT_EQ(decisions->size(), 1u);
  EXPECT_TRUE((*decisions)[0].allowed());
  EXPECT_EQ(fake_.last_request.purpose(), "course-placement");
  EXPECT_EQ(fake_.last_request.relations(0),
            identity::v1::RELATION_SERVES_PERSON);
  EXPECT_EQ(fake_.last_actor, "svc-courses");
  EXPECT_TRUE(fake_.had_deadline);  // capped even for an infinite deadline

  query.agency = "agencies/kim-koeln";
  decisions = client_->CheckAccess(query, absl::InfiniteFuture());
  ASSERT_TRUE(decisions.ok());
  EXPECT_FALSE((*decisions)[0].allowed());
}

TEST_F(IdentityClientTest, ResolvePersonMapsNotFound) {
  auto found = client_->ResolvePerson("persons/p1", "agencies/kim-koeln",
                                      "course-placement",
                                      absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, "persons/p1");
  auto unknown = client_->ResolvePerson("persons/unknown", "agencies/kim-koeln",
                                        "course-placement",
                                        absl::Now() + absl::Seconds(5));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReasonOf(unknown.status()).value_or(""), "PERSON_NOT_FOUND");
}

// Standing is CORE_IDENTITY asked of identity, for the agency itself; an
// unknown person is refused exactly like one the agency may not read, and
// no answer in time is a retryable UNAVAILABLE.
TEST_F(IdentityClientTest, RequireStandingAsksForTheCoreIdentity) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  EXPECT_TRUE(client_
                  ->RequireStanding("persons/p1", "agencies/bamf-nuernberg",
                                    "course-placement", deadline)
                  .ok());
  ASSERT_EQ(fake_.last_request.categories_size(), 1);
  EXPECT_EQ(fake_.last_request.categories(0),
            type::v1::DATA_CATEGORY_CORE_IDENTITY);
  EXPECT_TRUE(fake_.last_request.relations().empty());
  EXPECT_EQ(fake_.last_request.agency(), "agencies/bamf-nuernberg");

  const absl::Status stranger = client_->RequireStanding(
      "persons/p1", "agencies/vhs-koeln", "course-placement", deadline);
  const absl::Status unknown = client_->RequireStanding(
      "persons/unknown", "agencies/vhs-koeln", "course-placement", deadline);
  EXPECT_EQ(stranger.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(stranger).value_or(""), "NO_RELATION");
  EXPECT_EQ(unknown, stranger);

  const absl::Status slow = client_->RequireStanding(
      "persons/slow", "agencies/bamf-nuernberg", "course-placement", deadline);
  EXPECT_EQ(slow.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(slow).value_or(""), "CHECK_UNAVAILABLE");
}

TEST_F(IdentityClientTest, GetAgencyAnswersTheAgencyOrNotFoundInTime) {
  auto kim =
      client_->GetAgency("agencies/kim-koeln", absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(kim.ok()) << kim.status();
  EXPECT_EQ(kim->legal_domain(), type::v1::LEGAL_DOMAIN_KOMMUNE);
  EXPECT_EQ(fake_.last_purpose, "agency-registry");
  EXPECT_EQ(client_->GetAgency("agencies/nobody", absl::InfiniteFuture())
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  // Capped at max_call_time (100 ms).
  EXPECT_EQ(client_->GetAgency("agencies/slow", absl::InfiniteFuture())
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(IdentityClientTest, DeadlinesAreHonoured) {
  AccessQuery query;
  query.agency = "agencies/kim-koeln";
  query.person = "persons/slow";
  query.categories = {type::v1::DATA_CATEGORY_LANGUAGE};
  query.purpose = "p";
  auto slow = client_->CheckAccess(query, absl::InfiniteFuture());
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded);
  auto passed = client_->CheckAccess(query, absl::Now() - absl::Seconds(1));
  EXPECT_EQ(passed.status().code(), absl::StatusCode::kDeadlineExceeded);

  GrpcIdentityClient::Options none;
  GrpcIdentityClient unconfigured(none);
  EXPECT_EQ(
      unconfigured.CheckAccess(query, absl::InfiniteFuture()).status().code(),
      absl::StatusCode::kUnavailable);
}

TEST_F(IdentityClientTest, GetPersonReadsTheRecordWithinTheDeadline) {
  auto person = client_->GetPerson("persons/p1", "case-management",
                                   absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(person.ok()) << person.status();
  EXPECT_EQ(person->name(), "persons/p1");
  EXPECT_EQ(person->names(0).family_names(), "Haddad");
  EXPECT_EQ(fake_.last_purpose, "case-management");
  EXPECT_EQ(
      client_->GetPerson("persons/unknown", "p", absl::Now() + absl::Seconds(5))
          .status()
          .code(),
      absl::StatusCode::kNotFound);
  // Capped at max_call_time (100 ms) even for an infinite deadline.
  EXPECT_EQ(client_->GetPerson("persons/slow", "p", absl::InfiniteFuture())
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace lotse::clients
