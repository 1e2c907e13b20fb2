// The placement service running in-process behind a real mTLS server, on
// the test's backend (SQLite or PostgreSQL), with a fake identity and a
// settable clock. The dev PKI's agencies are registered through the
// service's own event handler: jobcenter-koeln (JOBCENTER), aa-koeln
// (ARBEITSAGENTUR), ihk-koeln (KAMMER), abh-koeln (AUSLAENDERBEHOERDE),
// kim-koeln (KOMMUNE), vhs-koeln (KURSTRAEGER). caritas-koeln is unknown.
#ifndef LOTSE_TESTS_PLACEMENT_SERVICE_PLACEMENT_SERVER_FIXTURE_H_
#define LOTSE_TESTS_PLACEMENT_SERVICE_PLACEMENT_SERVER_FIXTURE_H_

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "common/api/names.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/inbox.h"
#include "common/server/handler.h"
#include "common/server/server.h"
#include "common/server/service_main.h"
#include "common/storage/group_commit.h"
#include "common/storage/migrations.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/courses/v1/events.pb.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/placement/v1/events.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"
#include "services/placement/service/placement_service.h"
#include "services/placement/store/migrations.h"
#include "services/placement/store/placement_store.h"
#include "tests/support/dev_pki.h"
#include "tests/support/fake_identity_client.h"
#include "tests/support/test_database.h"

namespace lotse::placement {

class TestClock {
 public:
  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 9, 0, 0),
                                    absl::UTCTimeZone());
};

class PlacementServerTest : public ::lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    pki_ = ::lotse::testing::DevPkiDir();
    ASSERT_FALSE(pki_.empty()) << "dev PKI could not be generated";
    ASSERT_TRUE(storage::ApplyMigrations(db(), PlacementMigrations()).ok());
    identity_ = std::make_shared<::lotse::testing::FakeIdentityClient>();
    // The default legal-basis rules of DESIGN.md section 4.
    for (const char* a : {"agencies/jobcenter-koeln", "agencies/aa-koeln"}) {
      identity_->Allow(a, type::v1::DATA_CATEGORY_EMPLOYMENT);
      identity_->Allow(a, type::v1::DATA_CATEGORY_RESIDENCE_STATUS);
    }
    identity_->Allow("agencies/jobcenter-koeln",
                     type::v1::DATA_CATEGORY_LANGUAGE);
    clock_ = std::make_shared<TestClock>();
    pool_ = std::make_unique<server::WorkerPool>(8, 1024);
    runtime_.database = &db();
    runtime_.env.pool = pool_.get();
    runtime_.env.error_domain = "placement.lotse";
    // Writes go through a group committer, as in the service process.
    committer_ = std::make_unique<storage::GroupCommitter>(db());
    runtime_.committer = committer_.get();
    PlacementOptions options;
    options.identity = identity_;
    options.clock = [clock = clock_] { return clock->Now(); };
    service_ = std::make_unique<PlacementServiceImpl>(runtime_, options);
    for (const auto& [id, domain] :
         std::vector<std::pair<std::string, type::v1::LegalDomain>>{
             {"jobcenter-koeln", type::v1::LEGAL_DOMAIN_JOBCENTER},
             {"aa-koeln", type::v1::LEGAL_DOMAIN_ARBEITSAGENTUR},
             {"ihk-koeln", type::v1::LEGAL_DOMAIN_KAMMER},
             {"abh-koeln", type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE},
             {"kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE},
             {"vhs-koeln", type::v1::LEGAL_DOMAIN_KURSTRAEGER}}) {
      ASSERT_TRUE(RegisterAgency(id, domain).ok());
    }
    server::ServerOptions server_options;
    server_options.service_name = "placement";
    server_options.listen = "127.0.0.1:0";
    server_options.log_calls = false;
    server_options.drain_grace = absl::ZeroDuration();
    server_options.shutdown_deadline = absl::Milliseconds(500);
    server_options.tls = server::TlsFilesFromDir(pki_, "placement");
    auto started = server::Server::Start(server_options, {service_.get()});
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    server_->SetServing(true);
  }

  void TearDown() override {
    if (server_) server_->Drain();
    server_.reset();
    service_.reset();
    committer_.reset();
    pool_.reset();
  }

  absl::Status Deliver(const google::protobuf::Message& payload,
                       const std::string& source) {
    lotse::events::v1::Event event;
    event.set_event_id(absl::StrCat("event-", ++event_counter_));
    event.set_source(source);
    *event.mutable_occurred_at() =
        google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
            absl::ToUnixMicros(clock_->Now()) + event_counter_);
    event.mutable_payload()->PackFrom(payload);
    return events::ApplyEventOnce(db(), event, service_->EventHandler())
        .status();
  }

  absl::Status RegisterAgency(const std::string& id,
                              type::v1::LegalDomain domain) {
    identity::v1::Agency agency;
    agency.set_name(absl::StrCat("agencies/", id));
    agency.set_legal_domain(domain);
    agency.set_certificate_identity(id);
    agency.set_municipality_code("05315000");
    agency.set_state(identity::v1::AGENCY_STATE_ACTIVE);
    *agency.mutable_update_time() =
        google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
            ++agency_version_);
    identity::v1::AgencyRegistered payload;
    *payload.mutable_agency() = agency;
    return Deliver(payload, "identity");
  }

  absl::Status ResidenceEvent(const std::string& person,
                              type::v1::WorkPermission permission) {
    identity::v1::ResidenceStatusChanged e;
    e.set_person(person);
    e.set_work_permission(permission);
    e.set_recording_agency("agencies/abh-koeln");
    return Deliver(e, "identity");
  }

  absl::Status ResultEvent(const std::string& person, type::v1::CefrLevel level,
                           bool passed = true) {
    courses::v1::CourseResultRecorded e;
    e.mutable_context()->set_person(person);
    e.set_passed(passed);
    e.set_achieved_level(level);
    return Deliver(e, "courses");
  }

  std::unique_ptr<v1::PlacementService::Stub> As(const std::string& client) {
    auto creds = server::ClientCredentialsFromDir(pki_, client);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return v1::PlacementService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->port()), *creds));
  }

  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("x-lotse-actor", "cw-1");
    ctx->AddMetadata("x-lotse-purpose", "job-placement");
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(30));
    return ctx;
  }

  // A new person identity knows, with a work permission (UNSPECIFIED: no
  // residence status) in identity and, as an event, in placement.
  std::string NewPerson(type::v1::WorkPermission permission =
                            type::v1::WORK_PERMISSION_PERMITTED) {
    absl::StatusOr<std::string> id = api::NewId();
    EXPECT_TRUE(id.ok());
    const std::string person = absl::StrCat("persons/", *id);
    identity_->AddPerson(person);
    if (permission != type::v1::WORK_PERMISSION_UNSPECIFIED) {
      identity_->SetResidence(person, permission);
      EXPECT_TRUE(ResidenceEvent(person, permission).ok());
    }
    return person;
  }

  type::v1::Date InDays(int days) {
    const absl::CivilDay d =
        absl::ToCivilDay(clock_->Now(), absl::UTCTimeZone()) + days;
    type::v1::Date out;
    out.set_year(static_cast<int32_t>(d.year()));
    out.set_month(d.month());
    out.set_day(d.day());
    return out;
  }

  v1::Offer ValidOffer(v1::OfferKind kind = v1::OFFER_KIND_JOB,
                       int positions = 2) {
    v1::Offer o;
    o.set_kind(kind);
    o.set_title("Fachkraft Lagerlogistik (m/w/d)");
    o.set_occupation_code("51312");
    o.set_employer_name("Logistik GmbH");
    o.mutable_place()->set_postal_code("50667");
    o.mutable_place()->set_locality("Köln");
    o.mutable_place()->set_municipality_code("05315000");
    *o.mutable_start_date() = InDays(30);
    o.set_positions_total(positions);
    o.set_required_language_level(type::v1::CEFR_LEVEL_A2);
    o.add_required_skills("Gabelstapler");
    if (kind == v1::OFFER_KIND_APPRENTICESHIP) {
      o.set_training_duration_months(36);
      o.set_chamber_agency("agencies/ihk-koeln");
    }
    return o;
  }

  grpc::Status CreateOffer(const std::string& as, const v1::Offer& offer,
                           v1::Offer* out, const std::string& request_id = "") {
    v1::CreateOfferRequest r;
    r.set_request_id(request_id.empty() ? absl::StrCat("o-", ++counter_)
                                        : request_id);
    *r.mutable_offer() = offer;
    auto ctx = Ctx();
    return As(as)->CreateOffer(ctx.get(), r, out);
  }

  v1::Offer MustCreateOffer(const v1::Offer& offer,
                            const std::string& as = "aa-koeln") {
    v1::Offer out;
    grpc::Status s = CreateOffer(as, offer, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  grpc::Status CreateProfile(
      const std::string& as, const std::string& person,
      v1::CandidateProfile* out,
      type::v1::CefrLevel stated = type::v1::CEFR_LEVEL_UNSPECIFIED) {
    v1::CreateCandidateProfileRequest r;
    r.set_request_id(absl::StrCat("c-", ++counter_));
    v1::CandidateProfile* p = r.mutable_candidate_profile();
    p->set_person(person);
    p->add_skills()->set_label("gabelstapler");
    p->add_experience()->set_occupation_code("51312");
    p->mutable_experience(0)->set_months(24);
    p->set_stated_language_level(stated);
    auto ctx = Ctx();
    return As(as)->CreateCandidateProfile(ctx.get(), r, out);
  }

  v1::CandidateProfile MustCreateProfile(
      const std::string& person,
      type::v1::CefrLevel stated = type::v1::CEFR_LEVEL_B1) {
    v1::CandidateProfile out;
    grpc::Status s = CreateProfile("jobcenter-koeln", person, &out, stated);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  grpc::Status Propose(const std::string& as, const v1::Offer& offer,
                       const std::string& person, v1::Placement* out,
                       const std::string& request_id = "") {
    v1::ProposePlacementRequest r;
    r.set_request_id(request_id.empty() ? absl::StrCat("p-", ++counter_)
                                        : request_id);
    r.mutable_placement()->set_offer(offer.name());
    r.mutable_placement()->set_candidate(
        absl::StrCat("candidates/", person.substr(8)));
    r.mutable_placement()->set_case_step("cases/c1/steps/s1");
    auto ctx = Ctx();
    return As(as)->ProposePlacement(ctx.get(), r, out);
  }

  v1::Placement MustPropose(const v1::Offer& offer, const std::string& person) {
    v1::Placement out;
    grpc::Status s = Propose("jobcenter-koeln", offer, person, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  grpc::Status Apply(const std::string& as, v1::Placement* p) {
    v1::MarkPlacementAppliedRequest r;
    r.set_name(p->name());
    r.set_etag(p->etag());
    auto ctx = Ctx();
    return As(as)->MarkPlacementApplied(ctx.get(), r, p);
  }

  grpc::Status Hire(const std::string& as, v1::Placement* p,
                    const std::string& reference = "") {
    v1::MarkPlacementHiredRequest r;
    r.set_name(p->name());
    r.set_etag(p->etag());
    *r.mutable_start_date() = InDays(40);
    r.set_work_approval_reference(reference);
    auto ctx = Ctx();
    return As(as)->MarkPlacementHired(ctx.get(), r, p);
  }

  v1::Offer GetOffer(const std::string& name) {
    v1::GetOfferRequest r;
    r.set_name(name);
    v1::Offer out;
    auto ctx = Ctx();
    EXPECT_TRUE(As("kim-koeln")->GetOffer(ctx.get(), r, &out).ok());
    return out;
  }

  template <typename Event>
  std::vector<Event> Emitted() {
    std::vector<Event> out;
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok());
    auto rows = (*tx)->Query(
        "SELECT payload, ordering_key FROM event_outbox ORDER BY seq");
    EXPECT_TRUE(rows.ok());
    for (const storage::Row& r : *rows) {
      lotse::events::v1::Event e;
      e.ParseFromString(*r.GetBytes(0));
      EXPECT_EQ(e.source(), "placement");
      Event payload;
      if (e.payload().UnpackTo(&payload)) out.push_back(payload);
    }
    return out;
  }

  std::vector<audit::AuditRecord> AuditOf(const std::string& resource) {
    auto records = audit::ListAuditForResource(db(), resource, {0, 1000});
    EXPECT_TRUE(records.ok()) << records.status();
    return records.ok() ? *records : std::vector<audit::AuditRecord>{};
  }

  int64_t Count(const std::string& sql) {
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok());
    auto rows = (*tx)->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return *rows->front().GetInt(0);
  }

  std::string pki_;
  std::shared_ptr<::lotse::testing::FakeIdentityClient> identity_;
  std::shared_ptr<TestClock> clock_;
  std::unique_ptr<server::WorkerPool> pool_;
  std::unique_ptr<storage::GroupCommitter> committer_;
  server::ServiceRuntime runtime_;
  std::unique_ptr<PlacementServiceImpl> service_;
  std::unique_ptr<server::Server> server_;
  int64_t agency_version_ = 1000;
  int event_counter_ = 0;
  int counter_ = 0;
};

inline std::string Reason(const grpc::Status& status) {
  return ReasonOf(FromGrpcStatus(status)).value_or("");
}

inline std::set<std::string> ViolatedFields(const grpc::Status& status) {
  std::set<std::string> fields;
  for (const FieldViolation& v : FieldViolationsOf(FromGrpcStatus(status))) {
    fields.insert(v.field);
  }
  return fields;
}

}  // namespace lotse::placement

#endif  // LOTSE_TESTS_PLACEMENT_SERVICE_PLACEMENT_SERVER_FIXTURE_H_
