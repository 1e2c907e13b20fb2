// A course result recorded in the courses process changes which offers a
// candidate matches in the placement process.
//
// identity, courses and placement run as real processes, wired like the run
// command (tools/lotse.sh): identity's events (agencies, residence status)
// reach courses and placement, courses' events (bookings, results) reach
// identity and placement, placement's reach identity; courses and placement
// ask identity with their service certificates. Every call is a client call
// of the public contracts, over mutual TLS, as the demo agencies.
//
// The flow: the immigration office records a residence status that
// permits work; the Jobcenter creates a candidate profile with a stated A2;
// the employment agency publishes an offer requiring B1 and the Jobcenter
// one requiring A1. The B1 offer is EXCLUDED (language level NOT_MET). The
// person then passes a B1 exam in a course (provider, BAMF, Jobcenter in
// the courses process), and placement, told by CourseResultRecorded, ranks
// the B1 offer ELIGIBLE on the certified level. Finally the employment
// agency proposes and hires the candidate through placement: identity lets
// the proposing agency read the person (PlacementProposed), and the hire
// fills the offer's only position.
#include <signal.h>
#include <stdlib.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

namespace pv1 = ::lotse::placement::v1;

// How long an effect carried by an event between processes may take. The
// relays retry with backoff while a receiver is not up yet, so the first
// deliveries after start-up can take several seconds.
constexpr absl::Duration kEventTimeout = absl::Seconds(45);

void Prepare(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  context->AddMetadata("x-lotse-actor", "cw-1");
  context->AddMetadata("x-lotse-purpose", "job-placement");
}

// One unary call with a fresh, prepared context.
grpc::Status Call(
    const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  grpc::ClientContext context;
  Prepare(&context);
  return call(&context);
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " ", status.error_message(), " (",
                      ReasonOf(FromGrpcStatus(status)).value_or("no reason"),
                      ")");
}

// Each agency's AgencyRegistered reaches a service on its own (per-agency
// ordering keys), so a service may refuse an agency for a moment after
// the seed: repeats `call` while it is PERMISSION_DENIED, then returns its
// last status.
grpc::Status OnceAgencyKnown(
    const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  grpc::Status status;
  Eventually(
      [&] {
        status = Call(call);
        return status.error_code() != grpc::StatusCode::PERMISSION_DENIED;
      },
      kEventTimeout);
  return status;
}

const pv1::OfferMatch* FindOffer(
    const pv1::MatchOffersForCandidateResponse& response,
    const std::string& offer) {
  for (const pv1::OfferMatch& match : response.matches()) {
    if (match.offer().name() == offer) return &match;
  }
  return nullptr;
}

const pv1::ConstraintCheck* FindConstraint(const pv1::OfferMatch& match,
                                           pv1::ConstraintKind kind) {
  for (const pv1::ConstraintCheck& check : match.constraints()) {
    if (check.constraint() == kind) return &check;
  }
  return nullptr;
}

// The scenario runs as one test, step after step: each step builds on what
// the ones before created (processes, person, candidate, offers, course,
// placement), and checks its own expectations, so that a failure names the
// step it happened in.
class PlacementFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-placement.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    // Identity picks its own port; courses and placement are told where
    // the others are before they run. (Servers refuse SO_REUSEPORT, so a
    // clash fails loudly.)
    courses_port_ = FreeLocalPort();
    placement_port_ = FreeLocalPort();
  }

  absl::StatusOr<ServiceProcess> Start(const std::string& service, int port,
                                       std::vector<std::string> extra) {
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", port),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=sqlite:", dir_, "/", service, ".db"),
        "--drain_grace=100ms", "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, ".log"));
  }

  std::shared_ptr<grpc::Channel> Channel(int port, const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds);
  }
  std::unique_ptr<identity::v1::IdentityService::Stub> Identity(
      const std::string& as) {
    return identity::v1::IdentityService::NewStub(Channel(identity_port_, as));
  }
  std::unique_ptr<courses::v1::CoursesService::Stub> Courses(
      const std::string& as) {
    return courses::v1::CoursesService::NewStub(Channel(courses_port_, as));
  }
  std::unique_ptr<pv1::PlacementService::Stub> Placement(
      const std::string& as) {
    return pv1::PlacementService::NewStub(Channel(placement_port_, as));
  }

  // MatchOffersForCandidate as the Jobcenter, which may read the
  // candidate's EMPLOYMENT, LANGUAGE and RESIDENCE_STATUS data.
  grpc::Status MatchOffers(const std::string& candidate, bool include_excluded,
                           pv1::MatchOffersForCandidateResponse* response) {
    pv1::MatchOffersForCandidateRequest request;
    request.set_candidate(candidate);
    request.set_page_size(100);
    request.set_include_excluded(include_excluded);
    auto stub = Placement("jobcenter-koeln");
    return Call([&](grpc::ClientContext* c) {
      return stub->MatchOffersForCandidate(c, request, response);
    });
  }

  identity::v1::GetPersonRequest GetPersonRequest() const {
    identity::v1::GetPersonRequest get_person;
    get_person.set_name(person_.name());
    return get_person;
  }

  std::string Logs() {
    std::string logs;
    const std::pair<const char*, const std::optional<ServiceProcess>*>
        processes[] = {{"identity", &identity_},
                       {"courses", &courses_},
                       {"placement", &placement_}};
    for (const auto& [name, process] : processes) {
      if (process->has_value()) {
        absl::StrAppend(&logs, "---- ", name, " log ----\n",
                        (*process)->ReadLog());
      }
    }
    return logs;
  }

  // ---- the steps ----------------------------------------------------------

  // identity, courses and placement, wired like tools/lotse.sh, and the
  // demo agencies seeded.
  void StartProcesses() {
    auto identity = Start(
        "identity", 0,
        {absl::StrCat("--event_destinations=courses=127.0.0.1:", courses_port_,
                      ",placement=127.0.0.1:", placement_port_)});
    ASSERT_TRUE(identity.ok()) << identity.status();
    identity_.emplace(*std::move(identity));
    absl::StatusOr<int> identity_port =
        identity_->WaitServing(absl::Seconds(20));
    ASSERT_TRUE(identity_port.ok()) << identity_->ReadLog();
    identity_port_ = *identity_port;
    const std::string identity_target =
        absl::StrCat("--identity_target=127.0.0.1:", identity_port_);
    const std::string to_identity =
        absl::StrCat("identity=127.0.0.1:", identity_port_);
    auto courses =
        Start("courses", courses_port_,
              {identity_target,
               absl::StrCat("--event_destinations=", to_identity,
                            ",placement=127.0.0.1:", placement_port_)});
    ASSERT_TRUE(courses.ok()) << courses.status();
    courses_.emplace(*std::move(courses));
    ASSERT_TRUE(courses_->WaitServing(absl::Seconds(20)).ok())
        << courses_->ReadLog();
    auto placement = Start(
        "placement", placement_port_,
        {identity_target, absl::StrCat("--event_destinations=", to_identity)});
    ASSERT_TRUE(placement.ok()) << placement.status();
    placement_.emplace(*std::move(placement));
    ASSERT_TRUE(placement_->WaitServing(absl::Seconds(20)).ok())
        << placement_->ReadLog();

    auto seed = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
        {absl::StrCat("--identity=127.0.0.1:", identity_port_),
         absl::StrCat("--tls_dir=", pki_)},
        absl::StrCat(dir_, "/seed.log"));
    ASSERT_TRUE(seed.ok()) << seed.status();
    ASSERT_EQ(seed->WaitExit(absl::Seconds(30)).value_or(-1), 0)
        << seed->ReadLog();
  }

  // identity: the person and a residence status permitting work.
  void RegisterPersonWithWorkPermission() {
    identity::v1::CreatePersonRequest create;
    create.set_request_id("e2e-placement-person");
    *create.mutable_person() = SamplePersonWithPapers("Hamid", "Rahimi", 1996);
    create.mutable_person()->mutable_contact()->add_phone_numbers(
        "+4915198765432");
    {
      auto stub = Identity("kim-koeln");
      grpc::Status s = Call([&](grpc::ClientContext* c) {
        return stub->CreatePerson(c, create, &person_);
      });
      ASSERT_TRUE(s.ok()) << Describe(s);
    }
    identity::v1::RecordResidenceStatusRequest residence;
    residence.set_parent(person_.name());
    residence.set_request_id("e2e-placement-residence");
    identity::v1::ResidenceStatus* rs = residence.mutable_residence_status();
    rs->set_title_kind(identity::v1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT);
    rs->set_legal_basis("§ 25 Abs. 2 AufenthG");
    *rs->mutable_valid_from() = DateInDays(-30);
    *rs->mutable_valid_until() = DateInDays(3 * 365);
    rs->set_work_permission(type::v1::WORK_PERMISSION_PERMITTED);
    auto stub = Identity("abh-koeln");
    identity::v1::ResidenceStatus recorded;
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->RecordResidenceStatus(c, residence, &recorded);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  // The employment agency does not serve the person yet: it may not read
  // the person's core data (it will after proposing them, below).
  void EmploymentAgencyMayNotReadPersonYet() {
    auto stub = Identity("aa-koeln");
    identity::v1::Person read;
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->GetPerson(c, GetPersonRequest(), &read);
    });
    ASSERT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << Describe(s);
  }

  // The person registers as a job seeker: the Jobcenter links the BA
  // customer number with the person's papers, and the employment agency,
  // which serves the same customer, proves it by that number.
  void RegisterAsJobSeeker() {
    identity::v1::LinkAgencyIdRequest link;
    link.set_parent(person_.name());
    link.set_request_id("e2e-placement-jc-link");
    link.mutable_agency_id()->set_kind(
        identity::v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER);
    link.mutable_agency_id()->set_value("962D012345");
    *link.mutable_proof() = PapersOf(person_);
    identity::v1::AgencyId linked;
    auto stub = Identity("jobcenter-koeln");
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->LinkAgencyId(c, link, &linked);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    link.set_request_id("e2e-placement-aa-link");
    link.mutable_agency_id()->set_kind(identity::v1::AGENCY_ID_KIND_OTHER);
    link.mutable_agency_id()->set_value("AA-KOELN-77");
    link.mutable_proof()->mutable_issued_id()->set_kind(
        identity::v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER);
    link.mutable_proof()->mutable_issued_id()->set_value("962D012345");
    auto agency_stub = Identity("aa-koeln");
    s = Call([&](grpc::ClientContext* c) {
      return agency_stub->LinkAgencyId(c, link, &linked);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    // Knowing who the person is does not tell how to reach them.
    identity::v1::Person read;
    s = Call([&](grpc::ClientContext* c) {
      return agency_stub->GetPerson(c, GetPersonRequest(), &read);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    EXPECT_FALSE(read.has_contact());
  }

  // placement: the Jobcenter's candidate profile, with a stated A2.
  void CreateCandidateProfile() {
    auto jobcenter = Placement("jobcenter-koeln");
    pv1::CreateCandidateProfileRequest create_profile;
    create_profile.set_request_id("e2e-placement-profile");
    pv1::CandidateProfile* p = create_profile.mutable_candidate_profile();
    p->set_person(person_.name());
    pv1::Skill* skill = p->add_skills();
    skill->set_label("Gabelstapler");
    skill->set_level(pv1::SKILL_LEVEL_EXPERIENCED);
    pv1::OccupationExperience* experience = p->add_experience();
    experience->set_occupation_code("51312");
    experience->set_months(24);
    pv1::PreferredPlace* place = p->add_preferred_places();
    place->set_municipality_code("05315000");
    place->set_max_distance_km(20);
    p->mutable_preferred_hours()->set_min_hours_per_week(20);
    p->mutable_preferred_hours()->set_max_hours_per_week(40);
    p->add_wanted_offer_kinds(pv1::OFFER_KIND_JOB);
    p->set_stated_language_level(type::v1::CEFR_LEVEL_A2);
    pv1::CandidateProfile profile;
    grpc::Status s = OnceAgencyKnown([&](grpc::ClientContext* c) {
      return jobcenter->CreateCandidateProfile(c, create_profile, &profile);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
    EXPECT_EQ(profile.person(), person_.name());
    EXPECT_EQ(profile.state(), pv1::CANDIDATE_STATE_ACTIVE);
    EXPECT_EQ(profile.certified_language_level(),
              type::v1::CEFR_LEVEL_UNSPECIFIED);
    candidate_ = profile.name();
    ASSERT_FALSE(candidate_.empty());
  }

  // placement: the employment agency's offer requiring B1 (one position)
  // and the Jobcenter's requiring A1.
  void PublishOffers() {
    auto jobcenter = Placement("jobcenter-koeln");
    auto employment_agency = Placement("aa-koeln");
    pv1::CreateOfferRequest create_b1;
    create_b1.set_request_id("e2e-placement-offer-b1");
    *create_b1.mutable_offer() = WarehouseOffer(
        "Fachkraft Lagerlogistik (m/w/d)", type::v1::CEFR_LEVEL_B1, 1);
    {
      grpc::Status s = OnceAgencyKnown([&](grpc::ClientContext* c) {
        return employment_agency->CreateOffer(c, create_b1, &offer_b1_);
      });
      ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
    }
    EXPECT_EQ(offer_b1_.state(), pv1::OFFER_STATE_OPEN);
    EXPECT_EQ(offer_b1_.positions_open(), 1);
    EXPECT_EQ(offer_b1_.publishing_agency(), "agencies/aa-koeln");
    pv1::CreateOfferRequest create_a1;
    create_a1.set_request_id("e2e-placement-offer-a1");
    *create_a1.mutable_offer() =
        WarehouseOffer("Lagerhelfer (m/w/d)", type::v1::CEFR_LEVEL_A1, 3);
    grpc::Status s = OnceAgencyKnown([&](grpc::ClientContext* c) {
      return jobcenter->CreateOffer(c, create_a1, &offer_a1_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  }

  // Matching before the course: the B1 offer is excluded (language level
  // NOT_MET on the stated A2), the A1 offer eligible.
  void MatchBeforeCourseExcludesB1Offer() {
    // Placement learns the work permission from identity's
    // ResidenceStatusChanged; until it has, the matches are UNVERIFIED.
    pv1::MatchOffersForCandidateResponse before;
    grpc::Status last;
    ASSERT_TRUE(Eventually(
        [&] {
          last = MatchOffers(candidate_, /*include_excluded=*/false, &before);
          return last.ok() && before.facts().work_permission() ==
                                  type::v1::WORK_PERMISSION_PERMITTED;
        },
        kEventTimeout))
        << Describe(last) << "\n"
        << before.DebugString() << "\n"
        << Logs();
    EXPECT_EQ(before.facts().language_level(), type::v1::CEFR_LEVEL_A2);
    EXPECT_EQ(before.facts().language_level_source(),
              pv1::LANGUAGE_LEVEL_SOURCE_PROFILE);
    EXPECT_EQ(FindOffer(before, offer_b1_.name()), nullptr)
        << "an EXCLUDED offer is returned only with include_excluded\n"
        << before.DebugString();
    const pv1::OfferMatch* a1 = FindOffer(before, offer_a1_.name());
    ASSERT_NE(a1, nullptr) << before.DebugString();
    EXPECT_EQ(a1->eligibility(), pv1::ELIGIBILITY_ELIGIBLE);
    EXPECT_GT(a1->score(), 0.0);
    {
      const pv1::ConstraintCheck* work =
          FindConstraint(*a1, pv1::CONSTRAINT_KIND_WORK_PERMISSION);
      ASSERT_NE(work, nullptr) << a1->DebugString();
      EXPECT_EQ(work->outcome(), pv1::CONSTRAINT_OUTCOME_MET);
      EXPECT_EQ(work->work_permission(), type::v1::WORK_PERMISSION_PERMITTED);
      const pv1::ConstraintCheck* language =
          FindConstraint(*a1, pv1::CONSTRAINT_KIND_LANGUAGE_LEVEL);
      ASSERT_NE(language, nullptr) << a1->DebugString();
      EXPECT_EQ(language->outcome(), pv1::CONSTRAINT_OUTCOME_MET);
      EXPECT_EQ(language->candidate_level(), type::v1::CEFR_LEVEL_A2);
      EXPECT_EQ(language->level_source(), pv1::LANGUAGE_LEVEL_SOURCE_PROFILE);
    }

    pv1::MatchOffersForCandidateResponse with_excluded;
    last = MatchOffers(candidate_, /*include_excluded=*/true, &with_excluded);
    ASSERT_TRUE(last.ok()) << Describe(last);
    const pv1::OfferMatch* b1 = FindOffer(with_excluded, offer_b1_.name());
    ASSERT_NE(b1, nullptr) << with_excluded.DebugString();
    EXPECT_EQ(b1->eligibility(), pv1::ELIGIBILITY_EXCLUDED);
    EXPECT_EQ(b1->score(), 0.0);
    {
      const pv1::ConstraintCheck* language =
          FindConstraint(*b1, pv1::CONSTRAINT_KIND_LANGUAGE_LEVEL);
      ASSERT_NE(language, nullptr) << b1->DebugString();
      EXPECT_EQ(language->outcome(), pv1::CONSTRAINT_OUTCOME_NOT_MET);
      EXPECT_EQ(language->required_level(), type::v1::CEFR_LEVEL_B1);
      EXPECT_EQ(language->candidate_level(), type::v1::CEFR_LEVEL_A2);
      EXPECT_EQ(language->level_source(), pv1::LANGUAGE_LEVEL_SOURCE_PROFILE);
    }
    // EXCLUDED comes after all others.
    ASSERT_FALSE(with_excluded.matches().empty());
    EXPECT_EQ(
        with_excluded.matches(with_excluded.matches_size() - 1).offer().name(),
        offer_b1_.name());
  }

  // courses: the provider's integration course, starting tomorrow so that
  // a result can be recorded in this test.
  void CreateCourse() {
    auto provider = Courses("vhs-koeln");
    courses::v1::CreateCourseRequest course_request;
    course_request.set_request_id("e2e-placement-course");
    *course_request.mutable_course() =
        IntegrationCourse("Integrationskurs Vormittag");
    *course_request.mutable_course()->mutable_schedule()->mutable_start_date() =
        DateInDays(1);
    grpc::Status s = OnceAgencyKnown([&](grpc::ClientContext* ctx) {
      return provider->CreateCourse(ctx, course_request, &course_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  }

  // BAMF takes the person into its remit with the papers and admits them
  // to the course kind; the Jobcenter books the course.
  void AdmitAndBook() {
    courses::v1::RecordEntitlementRequest entitle;
    entitle.set_request_id("e2e-placement-entitlement");
    courses::v1::Entitlement* e = entitle.mutable_entitlement();
    e->set_person(person_.name());
    e->set_kind(courses::v1::ENTITLEMENT_KIND_ADMISSION);
    e->add_course_kinds(courses::v1::COURSE_KIND_INTEGRATION_GENERAL);
    e->set_units(700);
    *e->mutable_valid_from() = DateInDays(0);
    *e->mutable_valid_until() = DateInDays(365);
    {
      identity::v1::LinkAgencyIdRequest link;
      link.set_parent(person_.name());
      link.set_request_id("e2e-placement-bamf-link");
      link.mutable_agency_id()->set_kind(
          identity::v1::AGENCY_ID_KIND_BAMF_FILE_NUMBER);
      link.mutable_agency_id()->set_value("BAMF-7000789");
      *link.mutable_proof() = PapersOf(person_);
      identity::v1::AgencyId linked;
      auto bamf_identity = Identity("bamf-nuernberg");
      grpc::Status linked_status = Call([&](grpc::ClientContext* ctx) {
        return bamf_identity->LinkAgencyId(ctx, link, &linked);
      });
      ASSERT_TRUE(linked_status.ok()) << Describe(linked_status);
      auto bamf = Courses("bamf-nuernberg");
      courses::v1::Entitlement entitlement;
      grpc::Status s = OnceAgencyKnown([&](grpc::ClientContext* ctx) {
        return bamf->RecordEntitlement(ctx, entitle, &entitlement);
      });
      ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
    }
    courses::v1::CreateBookingRequest book;
    book.set_parent(course_.name());
    book.set_request_id("e2e-placement-booking");
    book.mutable_booking()->set_person(person_.name());
    auto jobcenter_courses = Courses("jobcenter-koeln");
    grpc::Status s = OnceAgencyKnown([&](grpc::ClientContext* ctx) {
      return jobcenter_courses->CreateBooking(ctx, book, &booking_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  }

  // The provider confirms the booking, starts the course and records a
  // passed DTZ at B1.
  void ConfirmStartAndPassB1() {
    auto provider = Courses("vhs-koeln");
    {
      courses::v1::ConfirmBookingRequest confirm;
      confirm.set_name(booking_.name());
      confirm.set_etag(booking_.etag());
      courses::v1::Booking confirmed;
      grpc::Status s = Call([&](grpc::ClientContext* ctx) {
        return provider->ConfirmBooking(ctx, confirm, &confirmed);
      });
      ASSERT_TRUE(s.ok()) << Describe(s);
    }
    {
      courses::v1::GetCourseRequest get;
      get.set_name(course_.name());
      grpc::Status s = Call([&](grpc::ClientContext* ctx) {
        return provider->GetCourse(ctx, get, &course_);
      });
      ASSERT_TRUE(s.ok()) << Describe(s);
      courses::v1::StartCourseRequest start;
      start.set_name(course_.name());
      start.set_etag(course_.etag());
      s = Call([&](grpc::ClientContext* ctx) {
        return provider->StartCourse(ctx, start, &course_);
      });
      ASSERT_TRUE(s.ok()) << Describe(s);
    }
    courses::v1::RecordCourseResultRequest result_request;
    result_request.set_parent(booking_.name());
    result_request.set_request_id("e2e-placement-result");
    courses::v1::CourseResult* r = result_request.mutable_result();
    r->set_exam(courses::v1::EXAM_KIND_DTZ);
    r->set_passed(true);
    r->set_achieved_level(type::v1::CEFR_LEVEL_B1);
    *r->mutable_exam_date() = DateInDays(0);
    r->set_certificate_reference("DTZ-2024-0815");
    courses::v1::CourseResult result;
    grpc::Status s = Call([&](grpc::ClientContext* ctx) {
      return provider->RecordCourseResult(ctx, result_request, &result);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  // Matching after the course: CourseResultRecorded travels from courses to
  // placement, and the B1 offer is eligible on the certified level.
  void MatchAfterCourseFindsB1OfferEligible() {
    pv1::MatchOffersForCandidateResponse after;
    grpc::Status last;
    ASSERT_TRUE(Eventually(
        [&] {
          last = MatchOffers(candidate_, /*include_excluded=*/false, &after);
          return last.ok() && FindOffer(after, offer_b1_.name()) != nullptr;
        },
        kEventTimeout))
        << "the course result did not change the match\n"
        << Describe(last) << "\n"
        << after.DebugString() << "\n"
        << Logs();
    EXPECT_EQ(after.facts().language_level(), type::v1::CEFR_LEVEL_B1);
    EXPECT_EQ(after.facts().language_level_source(),
              pv1::LANGUAGE_LEVEL_SOURCE_COURSE_RESULT);
    const pv1::OfferMatch* b1 = FindOffer(after, offer_b1_.name());
    ASSERT_NE(b1, nullptr);
    EXPECT_EQ(b1->eligibility(), pv1::ELIGIBILITY_ELIGIBLE)
        << b1->DebugString();
    EXPECT_GT(b1->score(), 0.0);
    {
      const pv1::ConstraintCheck* language =
          FindConstraint(*b1, pv1::CONSTRAINT_KIND_LANGUAGE_LEVEL);
      ASSERT_NE(language, nullptr) << b1->DebugString();
      EXPECT_EQ(language->outcome(), pv1::CONSTRAINT_OUTCOME_MET);
      EXPECT_EQ(language->required_level(), type::v1::CEFR_LEVEL_B1);
      EXPECT_EQ(language->candidate_level(), type::v1::CEFR_LEVEL_B1);
      EXPECT_EQ(language->level_source(),
                pv1::LANGUAGE_LEVEL_SOURCE_COURSE_RESULT);
    }
    const pv1::OfferMatch* a1 = FindOffer(after, offer_a1_.name());
    ASSERT_NE(a1, nullptr) << after.DebugString();
    EXPECT_EQ(a1->eligibility(), pv1::ELIGIBILITY_ELIGIBLE);
  }

  // The profile shows the certified level (the Jobcenter may read LANGUAGE).
  void ProfileShowsCertifiedLevel() {
    auto jobcenter = Placement("jobcenter-koeln");
    pv1::GetCandidateProfileRequest get;
    get.set_name(candidate_);
    pv1::GetCandidateProfileResponse read;
    grpc::Status s = Call([&](grpc::ClientContext* ctx) {
      return jobcenter->GetCandidateProfile(ctx, get, &read);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    EXPECT_EQ(read.candidate_profile().certified_language_level(),
              type::v1::CEFR_LEVEL_B1);
    EXPECT_TRUE(read.candidate_profile().has_certified_language_time());
    EXPECT_EQ(read.candidate_profile().stated_language_level(),
              type::v1::CEFR_LEVEL_A2);
    EXPECT_TRUE(read.withheld().empty());
  }

  // The employment agency proposes the candidate for its B1 offer; a retry
  // with the same request_id creates nothing new.
  void ProposeCandidate() {
    auto employment_agency = Placement("aa-koeln");
    pv1::ProposePlacementRequest propose;
    propose.set_request_id("e2e-placement-proposal");
    propose.mutable_placement()->set_offer(offer_b1_.name());
    propose.mutable_placement()->set_candidate(candidate_);
    propose.mutable_placement()->set_comment("passt nach B1-Abschluss");
    {
      grpc::Status s = Call([&](grpc::ClientContext* ctx) {
        return employment_agency->ProposePlacement(ctx, propose,
                                                   &placement_record_);
      });
      ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << placement_->ReadLog();
    }
    EXPECT_EQ(placement_record_.state(), pv1::PLACEMENT_STATE_PROPOSED);
    EXPECT_EQ(placement_record_.person(), person_.name());
    EXPECT_EQ(placement_record_.proposing_agency(), "agencies/aa-koeln");
    EXPECT_EQ(placement_record_.work_permission(),
              type::v1::WORK_PERMISSION_PERMITTED);
    pv1::Placement again;
    grpc::Status s = Call([&](grpc::ClientContext* ctx) {
      return employment_agency->ProposePlacement(ctx, propose, &again);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    EXPECT_EQ(again.name(), placement_record_.name());
  }

  // PlacementProposed reaches identity: the proposing agency now serves
  // the person and may reach them too.
  void ProposerNowReadsAndReachesPerson() {
    auto stub = Identity("aa-koeln");
    identity::v1::Person read;
    grpc::Status last;
    ASSERT_TRUE(Eventually(
        [&] {
          last = Call([&](grpc::ClientContext* ctx) {
            return stub->GetPerson(ctx, GetPersonRequest(), &read);
          });
          return last.ok() && read.contact().phone_numbers_size() == 1;
        },
        kEventTimeout))
        << Describe(last) << "\n"
        << Logs();
    EXPECT_EQ(read.name(), person_.name());
    EXPECT_TRUE(read.withheld_categories().empty());
  }

  // APPLIED, then HIRED (a stale etag changes nothing).
  void ApplyAndHire() {
    auto employment_agency = Placement("aa-koeln");
    {
      pv1::MarkPlacementAppliedRequest applied;
      applied.set_name(placement_record_.name());
      applied.set_etag(placement_record_.etag());
      grpc::Status s = Call([&](grpc::ClientContext* ctx) {
        return employment_agency->MarkPlacementApplied(ctx, applied,
                                                       &placement_record_);
      });
      ASSERT_TRUE(s.ok()) << Describe(s);
      EXPECT_EQ(placement_record_.state(), pv1::PLACEMENT_STATE_APPLIED);
    }
    {
      // A stale etag changes nothing.
      pv1::MarkPlacementHiredRequest stale;
      stale.set_name(placement_record_.name());
      stale.set_etag("stale");
      *stale.mutable_start_date() = DateInDays(30);
      pv1::Placement unchanged;
      grpc::Status s = Call([&](grpc::ClientContext* ctx) {
        return employment_agency->MarkPlacementHired(ctx, stale, &unchanged);
      });
      EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED) << Describe(s);
    }
    {
      pv1::MarkPlacementHiredRequest hired;
      hired.set_name(placement_record_.name());
      hired.set_etag(placement_record_.etag());
      *hired.mutable_start_date() = DateInDays(30);
      grpc::Status s = Call([&](grpc::ClientContext* ctx) {
        return employment_agency->MarkPlacementHired(ctx, hired,
                                                     &placement_record_);
      });
      ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << placement_->ReadLog();
    }
    EXPECT_EQ(placement_record_.state(), pv1::PLACEMENT_STATE_HIRED);
    EXPECT_FALSE(placement_record_.training_toleration_relevant());
    ASSERT_GE(placement_record_.transitions_size(), 3);
    EXPECT_EQ(placement_record_.transitions(0).to_state(),
              pv1::PLACEMENT_STATE_PROPOSED);
    EXPECT_EQ(
        placement_record_.transitions(placement_record_.transitions_size() - 1)
            .to_state(),
        pv1::PLACEMENT_STATE_HIRED);
  }

  // The hire took the offer's only position; a filled offer takes no more
  // proposals.
  void HireFilledTheOffer() {
    auto jobcenter = Placement("jobcenter-koeln");
    {
      pv1::GetOfferRequest get;
      get.set_name(offer_b1_.name());
      pv1::Offer read;
      grpc::Status s = Call([&](grpc::ClientContext* ctx) {
        return jobcenter->GetOffer(ctx, get, &read);
      });
      ASSERT_TRUE(s.ok()) << Describe(s);
      EXPECT_EQ(read.positions_total(), 1);
      EXPECT_EQ(read.positions_open(), 0);
      EXPECT_EQ(read.state(), pv1::OFFER_STATE_FILLED);
    }
    pv1::ProposePlacementRequest another;
    another.set_request_id("e2e-placement-proposal-2");
    another.mutable_placement()->set_offer(offer_b1_.name());
    another.mutable_placement()->set_candidate(candidate_);
    pv1::Placement refused;
    grpc::Status s = Call([&](grpc::ClientContext* ctx) {
      return jobcenter->ProposePlacement(ctx, another, &refused);
    });
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << Describe(s);
    EXPECT_EQ(ReasonOf(FromGrpcStatus(s)).value_or(""), "OFFER_NOT_OPEN");
  }

  // Every process stops cleanly on SIGTERM.
  void StopProcesses() {
    for (std::optional<ServiceProcess>* process :
         {&placement_, &courses_, &identity_}) {
      (*process)->Signal(SIGTERM);
      EXPECT_EQ((*process)->WaitExit(absl::Seconds(10)).value_or(-1), 0);
    }
  }

  std::string pki_;
  std::string dir_;
  int identity_port_ = 0;
  int courses_port_ = 0;
  int placement_port_ = 0;
  // Declared in start order: a process still running at the end of a
  // failed test is killed in the reverse order, placement first.
  std::optional<ServiceProcess> identity_;
  std::optional<ServiceProcess> courses_;
  std::optional<ServiceProcess> placement_;

  // What the steps create, for the steps after them.
  identity::v1::Person person_;
  std::string candidate_;
  pv1::Offer offer_b1_;
  pv1::Offer offer_a1_;
  courses::v1::Course course_;
  courses::v1::Booking booking_;
  pv1::Placement placement_record_;
};

TEST_F(PlacementFlowTest, CourseResultChangesWhichOffersACandidateMatches) {
  ASSERT_NO_FATAL_FAILURE(StartProcesses());
  ASSERT_NO_FATAL_FAILURE(RegisterPersonWithWorkPermission());
  ASSERT_NO_FATAL_FAILURE(EmploymentAgencyMayNotReadPersonYet());
  ASSERT_NO_FATAL_FAILURE(RegisterAsJobSeeker());
  ASSERT_NO_FATAL_FAILURE(CreateCandidateProfile());
  ASSERT_NO_FATAL_FAILURE(PublishOffers());
  ASSERT_NO_FATAL_FAILURE(MatchBeforeCourseExcludesB1Offer());
  ASSERT_NO_FATAL_FAILURE(CreateCourse());
  ASSERT_NO_FATAL_FAILURE(AdmitAndBook());
  ASSERT_NO_FATAL_FAILURE(ConfirmStartAndPassB1());
  ASSERT_NO_FATAL_FAILURE(MatchAfterCourseFindsB1OfferEligible());
  ASSERT_NO_FATAL_FAILURE(ProfileShowsCertifiedLevel());
  ASSERT_NO_FATAL_FAILURE(ProposeCandidate());
  ASSERT_NO_FATAL_FAILURE(ProposerNowReadsAndReachesPerson());
  ASSERT_NO_FATAL_FAILURE(ApplyAndHire());
  ASSERT_NO_FATAL_FAILURE(HireFilledTheOffer());
  StopProcesses();
}

}  // namespace
}  // namespace lotse::testing
