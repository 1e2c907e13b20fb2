// The placement service running in-process behind a real mTLS server, on
// the test's backend (SQLite or PostgreSQL), with a fake identity and a
// settable clock. The dev PKI's agencies are registered through the
// service's own event handler: jobcenter-koeln (JOBCENTER), aa-koeln
// (ARBEITSAGENTUR), ihk-koeln (KAMMER), abh-koeln (AUSLAENDERBEHOERDE),
// kim-koeln (KOMMUNE), vhs-koeln (KURSTRAEGER). caritas-koeln is unknown.
// Built on the shared kit (testing::ServiceServerTest).
#ifndef LOTSE_TESTS_PLACEMENT_SERVICE_PLACEMENT_SERVER_FIXTURE_H_
#define LOTSE_TESTS_PLACEMENT_SERVICE_PLACEMENT_SERVER_FIXTURE_H_

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/api/names.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/inbox.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "lotse/courses/v1/events.pb.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/placement/v1/events.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"
#include "services/placement/service/placement_service.h"
#include "services/placement/store/migrations.h"
#include "services/placement/store/placement_store.h"
#include "tests/support/fake_identity_client.h"
#include "tests/support/service_server_fixture.h"

namespace lotse::placement {

using ::lotse::testing::Reason;
using ::lotse::testing::ViolatedFields;

class PlacementServerTest : public ::lotse::testing::ServiceServerTest {
 protected:
  void SetUp() override {
    ServiceServerTest::SetUp();
    if (HasFatalFailure()) return;
    identity_ = std::make_shared<::lotse::testing::FakeIdentityClient>();
    // The default legal-basis rules of DESIGN.md section 4.
    for (const char* a : {"agencies/jobcenter-koeln", "agencies/aa-koeln"}) {
      identity_->Allow(a, type::v1::DATA_CATEGORY_EMPLOYMENT);
      identity_->Allow(a, type::v1::DATA_CATEGORY_RESIDENCE_STATUS);
    }
    identity_->Allow("agencies/jobcenter-koeln",
                     type::v1::DATA_CATEGORY_LANGUAGE);
    StartRuntime(PlacementMigrations(), "placement.lotse");
    if (HasFatalFailure()) return;
    PlacementOptions options;
    options.identity = identity_;
    options.clock = clock_->AsFunction();
    service_ = std::make_unique<PlacementServiceImpl>(runtime_, options);
    absl::Status registered = ::lotse::testing::RegisterDevAgencies(
        {"jobcenter-koeln", "aa-koeln", "ihk-koeln", "abh-koeln", "kim-koeln",
         "vhs-koeln"},
        [this](const identity::v1::Agency& agency) {
          return RegisterAgency(agency);
        });
    ASSERT_TRUE(registered.ok()) << registered;
    Serve("placement", service_.get());
  }

  void TearDown() override {
    StopServing();
    service_.reset();
    ServiceServerTest::TearDown();
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

  // Registers agency `id` in Köln, as identity's AgencyRegistered would.
  absl::Status RegisterAgency(const std::string& id,
                              type::v1::LegalDomain domain) {
    return RegisterAgency(
        ::lotse::testing::AgencyRecord(id, domain, "05315000"));
  }

  // Delivers identity's AgencyRegistered about `agency`, newer than any
  // before.
  absl::Status RegisterAgency(identity::v1::Agency agency) {
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
    return Stub<v1::PlacementService>(client);
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

  std::shared_ptr<::lotse::testing::FakeIdentityClient> identity_;
  std::unique_ptr<PlacementServiceImpl> service_;
  int64_t agency_version_ = 1000;
  int event_counter_ = 0;
  int counter_ = 0;
};

}  // namespace lotse::placement

#endif  // LOTSE_TESTS_PLACEMENT_SERVICE_PLACEMENT_SERVER_FIXTURE_H_
