// GrpcIdentityClient against a tiny in-process fake IdentityService.
#include "common/clients/identity_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
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
    last_timeout = absl::FromChrono(context->deadline()) - absl::Now();
    if (request->person() == "persons/hang") {
      ++hang_calls;
      if (hanging.load()) absl::SleepFor(absl::Milliseconds(500));
    }
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
  // The time the last CheckAccess had left when it arrived.
  absl::Duration last_timeout;
  // Calls for persons/hang: how many arrived; while `hanging`, each is
  // answered only after 500 ms.
  std::atomic<int> hang_calls{0};
  std::atomic<bool> hanging{true};
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
  // Capped at max_call_time (100 ms); no answer in time is UNAVAILABLE.
  EXPECT_EQ(client_->GetAgency("agencies/slow", absl::InfiniteFuture())
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(IdentityClientTest, DeadlinesAreHonoured) {
  AccessQuery query;
  query.agency = "agencies/kim-koeln";
  query.person = "persons/slow";
  query.categories = {type::v1::DATA_CATEGORY_LANGUAGE};
  query.purpose = "p";
  auto slow = client_->CheckAccess(query, absl::InfiniteFuture());
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(slow.status()).value_or(""), "CHECK_UNAVAILABLE");
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
            absl::StatusCode::kUnavailable);
}

// The call to identity ends early enough for the service to answer its
// own caller within the caller's deadline: a fifth of the time left, at
// most 200 ms, is kept back.
TEST_F(IdentityClientTest, LeavesTheCallerTimeToAnswer) {
  std::unique_ptr<GrpcIdentityClient> client =
      ClientWithCallTime(absl::Seconds(10));
  AccessQuery query;
  query.agency = "agencies/bamf-nuernberg";
  query.person = "persons/p1";
  query.categories = {type::v1::DATA_CATEGORY_LANGUAGE};
  query.purpose = "p";
  const absl::Time before = absl::Now();
  const absl::Time deadline = before + absl::Seconds(5);
  ASSERT_TRUE(client->CheckAccess(query, deadline).ok());
  // gRPC sends the timeout rounded up to its units (well below 10 ms
  // here); time in transit only shortens what arrives.
  EXPECT_LE(fake_.last_timeout, deadline - before - absl::Milliseconds(190));
  EXPECT_GT(fake_.last_timeout, absl::Seconds(3));
}

// A hung identity: each call waits out its time and fails UNAVAILABLE
// with a reason; after breaker_failures such calls the client stops
// asking (identity sees no more calls) and fails at once; once identity
// answers again, a trial call after breaker_open_for finds it and calls
// go through again.
TEST_F(IdentityClientTest, StopsAskingAHungIdentityAndResumesWhenItAnswers) {
  GrpcIdentityClient::Options options;
  options.target = absl::StrCat("127.0.0.1:", port_);
  options.credentials = grpc::InsecureChannelCredentials();
  options.max_call_time = absl::Milliseconds(100);
  options.breaker_failures = 3;
  options.breaker_open_for = absl::Milliseconds(300);
  GrpcIdentityClient client(options);
  AccessQuery query;
  query.agency = "agencies/bamf-nuernberg";
  query.person = "persons/hang";
  query.categories = {type::v1::DATA_CATEGORY_LANGUAGE};
  query.purpose = "p";
  for (int i = 0; i < 3; ++i) {
    auto hung = client.CheckAccess(query, absl::Now() + absl::Seconds(5));
    EXPECT_EQ(hung.status().code(), absl::StatusCode::kUnavailable) << i;
    EXPECT_EQ(ReasonOf(hung.status()).value_or(""), "CHECK_UNAVAILABLE") << i;
  }
  // Let the hung calls' arrivals be counted before comparing.
  absl::SleepFor(absl::Milliseconds(100));
  const int asked = fake_.hang_calls.load();
  EXPECT_LE(asked, 3);
  for (int i = 0; i < 5; ++i) {
    auto refused = client.CheckAccess(query, absl::Now() + absl::Seconds(5));
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << i;
    EXPECT_EQ(ReasonOf(refused.status()).value_or(""), "CHECK_UNAVAILABLE")
        << i;
  }
  // Five calls within much less than breaker_open_for on any machine are
  // not guaranteed; what must hold is that the client did not ask once per
  // call.
  EXPECT_LT(fake_.hang_calls.load(), asked + 5);

  fake_.hanging.store(false);
  absl::StatusOr<std::vector<identity::v1::AccessDecision>> back;
  for (int i = 0; i < 100; ++i) {
    back = client.CheckAccess(query, absl::Now() + absl::Seconds(5));
    if (back.ok()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(client.CheckAccess(query, absl::Now() + absl::Seconds(5)).ok());
}

// Nobody listens: UNAVAILABLE with the reason, for every kind of call.
TEST(IdentityClientDeadPeerTest, UnreachableIdentityIsUnavailableWithAReason) {
  // A port that was free a moment ago: nobody listens there.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int port = ntohs(address.sin_port);
  close(fd);
  GrpcIdentityClient::Options options;
  options.target = absl::StrCat("127.0.0.1:", port);
  options.credentials = grpc::InsecureChannelCredentials();
  GrpcIdentityClient client(options);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  AccessQuery query;
  query.agency = "agencies/kim-koeln";
  query.person = "persons/p1";
  query.categories = {type::v1::DATA_CATEGORY_CORE_IDENTITY};
  query.purpose = "p";
  const std::vector<absl::Status> answers = {
      client.CheckAccess(query, deadline).status(),
      client.CheckAccessBatch({query, query}, deadline)[1].status(),
      client.RequireStanding("persons/p1", "agencies/kim-koeln", "p", deadline),
      client.GetCurrentResidenceStatus("persons/p1", "p", deadline).status(),
      client.GetAgency("agencies/kim-koeln", deadline).status(),
      client.GetPerson("persons/p1", "p", deadline).status(),
  };
  for (size_t i = 0; i < answers.size(); ++i) {
    EXPECT_EQ(answers[i].code(), absl::StatusCode::kUnavailable)
        << i << ": " << answers[i];
    EXPECT_EQ(ReasonOf(answers[i]).value_or(""), "CHECK_UNAVAILABLE") << i;
  }
}

}  // namespace
}  // namespace lotse::clients
