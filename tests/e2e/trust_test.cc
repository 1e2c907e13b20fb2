// Who can create access to a person, probed from outside as an agency
// integrator would: the four services as real processes (mutual TLS, wired
// like tools/lotse.sh), agencies with no relation to a person trying every
// path that could open the person's data to them, and the lawful ways that
// must keep working (docs/trust-model.md).
//
// Every person here is registered by the municipal case management of Köln
// with a full birth date, a birth place and a phone number; the other
// agencies start without any relation to them.
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
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"
#include "tests/e2e/calls.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

using e2e::Call;
using e2e::Describe;
using e2e::Reason;

namespace idv1 = ::lotse::identity::v1;
namespace cv1 = ::lotse::cases::v1;
namespace crv1 = ::lotse::courses::v1;
namespace pv1 = ::lotse::placement::v1;

// How long an effect carried by an event between processes may take at
// most; the relays deliver at once after a commit, but the first deliveries
// after start-up may wait for a receiver's back-off.
constexpr absl::Duration kEventTimeout = absl::Seconds(30);
// How long a refused path is watched for a delayed effect: the integrator
// read the data 0.3 to 0.6 s after the write that opened it.
constexpr absl::Duration kSettle = absl::Seconds(2);

// One unary call with a fresh context carrying deadline, actor and purpose.
// Code, reason and message: what a client can tell two answers apart by.
std::string Answer(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), "|", Reason(status), "|",
                      status.error_message());
}

std::optional<std::string> Metadata(const grpc::Status& status,
                                    const std::string& key) {
  return MetadataOf(FromGrpcStatus(status), key);
}

class TrustTest : public ::testing::Test {
 protected:
  // The four processes and the demo agencies, once for the suite: every
  // test works on persons of its own.
  static void SetUpTestSuite() {
    pki_ = new std::string(DevPkiDir());
    ASSERT_FALSE(pki_->empty());
    char pattern[] = "/tmp/lotse-e2e-trust.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = new std::string(pattern);
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    cases_port_ = FreeLocalPort();
    courses_port_ = FreeLocalPort();
    placement_port_ = FreeLocalPort();
    const std::string to_cases = absl::StrCat("cases=127.0.0.1:", cases_port_);
    const std::string to_courses =
        absl::StrCat("courses=127.0.0.1:", courses_port_);
    const std::string to_placement =
        absl::StrCat("placement=127.0.0.1:", placement_port_);

    identity_ = Start("identity", 0,
                      {absl::StrCat("--event_destinations=", to_courses, ",",
                                    to_cases, ",", to_placement)});
    ASSERT_NE(identity_, nullptr);
    absl::StatusOr<int> port = identity_->WaitServing(absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << identity_->ReadLog();
    identity_port_ = *port;
    const std::string identity_target =
        absl::StrCat("--identity_target=127.0.0.1:", identity_port_);
    const std::string to_identity =
        absl::StrCat("identity=127.0.0.1:", identity_port_);
    cases_ = Start(
        "cases", cases_port_,
        {identity_target, absl::StrCat("--event_destinations=", to_identity)});
    courses_ = Start(
        "courses", courses_port_,
        {identity_target, absl::StrCat("--event_destinations=", to_identity,
                                       ",", to_cases, ",", to_placement)});
    placement_ = Start(
        "placement", placement_port_,
        {identity_target,
         absl::StrCat("--event_destinations=", to_identity, ",", to_cases)});
    for (ServiceProcess* p : {cases_, courses_, placement_}) {
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(p->WaitServing(absl::Seconds(20)).ok()) << p->ReadLog();
    }
    absl::StatusOr<ServiceProcess> seed = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
        {absl::StrCat("--identity=127.0.0.1:", identity_port_),
         absl::StrCat("--tls_dir=", *pki_)},
        absl::StrCat(*dir_, "/seed.log"));
    ASSERT_TRUE(seed.ok()) << seed.status();
    ASSERT_EQ(seed->WaitExit(absl::Seconds(60)).value_or(-1), 0)
        << seed->ReadLog();
    // Every service knows every demo agency before a test starts, so that
    // a refusal below is about the person, never about the agency.
    for (const char* agency :
         {"kim-koeln", "kim-bonn", "vhs-koeln", "jobcenter-koeln", "aa-koeln",
          "bamf-nuernberg", "caritas-koeln"}) {
      ASSERT_TRUE(Eventually(
          [&] {
            cv1::ListCasesRequest cases_request;
            cv1::ListCasesResponse cases_response;
            crv1::ListCoursesRequest courses_request;
            crv1::ListCoursesResponse courses_response;
            pv1::ListOffersRequest offers_request;
            pv1::ListOffersResponse offers_response;
            auto cases = Cases(agency);
            auto courses = Courses(agency);
            auto placement = Placement(agency);
            return Call([&](grpc::ClientContext* c) {
                     return cases->ListCases(c, cases_request, &cases_response);
                   }).ok() &&
                   Call([&](grpc::ClientContext* c) {
                     return courses->ListCourses(c, courses_request,
                                                 &courses_response);
                   }).ok() &&
                   Call([&](grpc::ClientContext* c) {
                     return placement->ListOffers(c, offers_request,
                                                  &offers_response);
                   }).ok();
          },
          kEventTimeout))
          << agency << "\n"
          << Logs();
    }
  }

  static void TearDownTestSuite() {
    for (ServiceProcess* p : {placement_, courses_, cases_, identity_}) {
      delete p;
    }
    placement_ = courses_ = cases_ = identity_ = nullptr;
  }

  static ServiceProcess* Start(const std::string& service, int port,
                               std::vector<std::string> extra) {
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", port),
        absl::StrCat("--tls_dir=", *pki_),
        absl::StrCat("--database=sqlite:", *dir_, "/", service, ".db"),
        "--drain_grace=100ms", "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<ServiceProcess> p = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(*dir_, "/", service, ".log"));
    if (!p.ok()) return nullptr;
    return new ServiceProcess(*std::move(p));
  }

  static std::string Logs() {
    std::string logs;
    const std::pair<const char*, ServiceProcess*> processes[] = {
        {"identity", identity_},
        {"cases", cases_},
        {"courses", courses_},
        {"placement", placement_}};
    for (const auto& [name, process] : processes) {
      if (process != nullptr) {
        absl::StrAppend(
            &logs, "---- ", name, " log (tail) ----\n",
            process->ReadLog().substr(std::max<int64_t>(
                0, static_cast<int64_t>(process->ReadLog().size()) - 4000)));
      }
    }
    return logs;
  }

  static std::shared_ptr<grpc::Channel> Channel(int port,
                                                const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(*pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds);
  }
  static std::unique_ptr<idv1::IdentityService::Stub> Identity(
      const std::string& as) {
    return idv1::IdentityService::NewStub(Channel(identity_port_, as));
  }
  static std::unique_ptr<cv1::CasesService::Stub> Cases(const std::string& as) {
    return cv1::CasesService::NewStub(Channel(cases_port_, as));
  }
  static std::unique_ptr<crv1::CoursesService::Stub> Courses(
      const std::string& as) {
    return crv1::CoursesService::NewStub(Channel(courses_port_, as));
  }
  static std::unique_ptr<pv1::PlacementService::Stub> Placement(
      const std::string& as) {
    return pv1::PlacementService::NewStub(Channel(placement_port_, as));
  }

  // ---- steps every test uses ------------------------------------------------

  // A person registered by kim-koeln: born on 14 March 1991 in Aleppo, with
  // a phone number. `key` makes names and request ids unique per test.
  idv1::Person RegisterPerson(const std::string& given,
                              const std::string& family,
                              const std::string& key) {
    idv1::CreatePersonRequest request;
    request.set_request_id(absl::StrCat("trust-person-", key));
    idv1::Person* p = request.mutable_person();
    *p = SamplePerson(given, family, 1991);
    p->mutable_birth_date()->set_month(3);
    p->mutable_birth_date()->set_day(14);
    p->set_birth_place("Aleppo");
    p->set_birth_country_code("SY");
    p->set_sex(idv1::SEX_FEMALE);
    p->add_nationality_codes("SY");
    p->set_nationality_status(idv1::NATIONALITY_STATUS_KNOWN);
    p->mutable_contact()->add_phone_numbers("+4915112345678");
    request.set_confirm_new_person(true);
    idv1::Person person;
    auto stub = Identity("kim-koeln");
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->CreatePerson(c, request, &person);
    });
    EXPECT_TRUE(s.ok()) << Describe(s);
    return person;
  }

  // What the person's papers say, as an agency that has them in front of
  // it would present them.
  static idv1::RemitProof AttributesProof(const idv1::Person& person, int day) {
    idv1::RemitProof proof;
    idv1::IdentifyingAttributes* a = proof.mutable_attributes();
    *a->mutable_name() = person.names(0);
    a->mutable_birth_date()->set_year(1991);
    a->mutable_birth_date()->set_month(3);
    a->mutable_birth_date()->set_day(day);
    return proof;
  }

  static grpc::Status GetPerson(const std::string& as, const std::string& name,
                                idv1::Person* out = nullptr) {
    idv1::GetPersonRequest request;
    request.set_name(name);
    idv1::Person ignored;
    auto stub = Identity(as);
    return Call([&](grpc::ClientContext* c) {
      return stub->GetPerson(c, request, out != nullptr ? out : &ignored);
    });
  }

  static grpc::Status Link(const std::string& as, const std::string& person,
                           idv1::AgencyIdKind kind, const std::string& value,
                           const std::optional<idv1::RemitProof>& proof,
                           const std::string& request_id,
                           idv1::AgencyId* out = nullptr) {
    idv1::LinkAgencyIdRequest request;
    request.set_parent(person);
    request.set_request_id(request_id);
    request.mutable_agency_id()->set_kind(kind);
    request.mutable_agency_id()->set_value(value);
    if (proof.has_value()) *request.mutable_proof() = *proof;
    idv1::AgencyId ignored;
    auto stub = Identity(as);
    return Call([&](grpc::ClientContext* c) {
      return stub->LinkAgencyId(c, request, out != nullptr ? out : &ignored);
    });
  }

  // Whether `as` can read the person at any moment within kSettle: a path
  // that opened access through an event shows here.
  static bool ReadsWithin(const std::string& as, const std::string& person) {
    return Eventually([&] { return GetPerson(as, person).ok(); }, kSettle);
  }

  // kim-koeln's case of `person`.
  cv1::Case OpenCase(const std::string& person, const std::string& key) {
    cv1::OpenCaseRequest request;
    request.set_request_id(absl::StrCat("trust-case-", key));
    request.mutable_case_record()->set_person(person);
    request.mutable_case_record()->set_responsible_actor("cm-1");
    cv1::Case opened;
    auto stub = Cases("kim-koeln");
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->OpenCase(c, request, &opened);
    });
    EXPECT_TRUE(s.ok()) << Describe(s);
    return opened;
  }

  // A step of `case_name` referred by its owner to `agency`.
  cv1::Step Refer(const std::string& case_name, cv1::StepKind kind,
                  const std::string& agency, const std::string& key) {
    cv1::CreateStepRequest request;
    request.set_parent(case_name);
    request.set_request_id(absl::StrCat("trust-step-", key));
    request.mutable_step()->set_kind(kind);
    request.mutable_step()->set_receiving_agency(agency);
    cv1::Step step;
    auto stub = Cases("kim-koeln");
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->CreateStep(c, request, &step);
    });
    EXPECT_TRUE(s.ok()) << Describe(s);
    return step;
  }

  // A course of vhs-koeln.
  crv1::Course CreateCourse(const std::string& key) {
    crv1::CreateCourseRequest request;
    request.set_request_id(absl::StrCat("trust-course-", key));
    *request.mutable_course() = IntegrationCourse("Integrationskurs " + key);
    crv1::Course course;
    auto stub = Courses("vhs-koeln");
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->CreateCourse(c, request, &course);
    });
    EXPECT_TRUE(s.ok()) << Describe(s);
    return course;
  }

  // An admission by BAMF, which first proves the person is in its remit by
  // linking its file number with the person's papers.
  crv1::Entitlement AdmitByBamf(const idv1::Person& person,
                                const std::string& key) {
    grpc::Status linked = Link(
        "bamf-nuernberg", person.name(), idv1::AGENCY_ID_KIND_BAMF_FILE_NUMBER,
        "BAMF-" + key, AttributesProof(person, 14), "trust-bamf-link-" + key);
    EXPECT_TRUE(linked.ok()) << Describe(linked);
    return RecordEntitlement("bamf-nuernberg", person.name(),
                             crv1::ENTITLEMENT_KIND_ADMISSION, key)
        .value_or(crv1::Entitlement());
  }

  static absl::StatusOr<crv1::Entitlement> RecordEntitlement(
      const std::string& as, const std::string& person,
      crv1::EntitlementKind kind, const std::string& key,
      grpc::Status* status = nullptr) {
    crv1::RecordEntitlementRequest request;
    request.set_request_id(absl::StrCat("trust-entitlement-", as, "-", key));
    crv1::Entitlement* e = request.mutable_entitlement();
    e->set_person(person);
    e->set_kind(kind);
    e->add_course_kinds(crv1::COURSE_KIND_INTEGRATION_GENERAL);
    e->set_units(700);
    *e->mutable_valid_from() = DateInDays(-1);
    *e->mutable_valid_until() = DateInDays(365);
    crv1::Entitlement recorded;
    auto stub = Courses(as);
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->RecordEntitlement(c, request, &recorded);
    });
    if (status != nullptr) *status = s;
    if (!s.ok()) return FromGrpcStatus(s);
    return recorded;
  }

  static grpc::Status Book(const std::string& as, const std::string& course,
                           const std::string& person,
                           const std::string& request_id,
                           const std::string& case_step = "") {
    crv1::CreateBookingRequest request;
    request.set_parent(course);
    request.set_request_id(request_id);
    request.mutable_booking()->set_person(person);
    request.mutable_booking()->set_case_step(case_step);
    crv1::Booking booking;
    auto stub = Courses(as);
    return Call([&](grpc::ClientContext* c) {
      return stub->CreateBooking(c, request, &booking);
    });
  }

  static std::string* pki_;
  static std::string* dir_;
  static int identity_port_;
  static int cases_port_;
  static int courses_port_;
  static int placement_port_;
  static ServiceProcess* identity_;
  static ServiceProcess* cases_;
  static ServiceProcess* courses_;
  static ServiceProcess* placement_;
};

std::string* TrustTest::pki_ = nullptr;
std::string* TrustTest::dir_ = nullptr;
int TrustTest::identity_port_ = 0;
int TrustTest::cases_port_ = 0;
int TrustTest::courses_port_ = 0;
int TrustTest::placement_port_ = 0;
ServiceProcess* TrustTest::identity_ = nullptr;
ServiceProcess* TrustTest::cases_ = nullptr;
ServiceProcess* TrustTest::courses_ = nullptr;
ServiceProcess* TrustTest::placement_ = nullptr;

// ---- identity: links, search, lookups ---------------------------------------

// Knowing a name is not a relation: an agency id links only with proof that
// the person is in the agency's remit, and the link opens who the person is,
// not how to reach them.
TEST_F(TrustTest, AnAgencyIdLinksOnlyWithProofAndOpensNoContact) {
  const idv1::Person person = RegisterPerson("Amira", "Haddad", "link");
  ASSERT_FALSE(person.name().empty());
  const std::string kCaritas = "caritas-koeln";
  ASSERT_EQ(GetPerson(kCaritas, person.name()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // No proof, and a proof with the wrong birth date: refused alike.
  grpc::Status bare = Link(kCaritas, person.name(), idv1::AGENCY_ID_KIND_OTHER,
                           "CAR-1", std::nullopt, "trust-link-bare");
  EXPECT_EQ(bare.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << Describe(bare);
  EXPECT_EQ(Reason(bare), "NO_RELATION");
  grpc::Status wrong =
      Link(kCaritas, person.name(), idv1::AGENCY_ID_KIND_OTHER, "CAR-1",
           AttributesProof(person, 15), "trust-link-wrong");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << Describe(wrong);
  EXPECT_EQ(Reason(wrong), "NO_RELATION");
  EXPECT_FALSE(ReadsWithin(kCaritas, person.name()));

  // The person's papers in front of the counsellor: the link holds and
  // opens the core identity, without contact.
  idv1::AgencyId link;
  grpc::Status proven =
      Link(kCaritas, person.name(), idv1::AGENCY_ID_KIND_OTHER, "CAR-1",
           AttributesProof(person, 14), "trust-link-proven", &link);
  ASSERT_TRUE(proven.ok()) << Describe(proven);
  EXPECT_EQ(link.issuing_agency(), "agencies/caritas-koeln");
  idv1::Person read;
  grpc::Status get = GetPerson(kCaritas, person.name(), &read);
  ASSERT_TRUE(get.ok()) << Describe(get);
  EXPECT_EQ(read.names(0).family_names(), "Haddad");
  EXPECT_EQ(read.birth_date().day(), 14);
  EXPECT_FALSE(read.has_contact()) << read.contact().DebugString();
  ASSERT_EQ(read.withheld_categories_size(), 1);
  EXPECT_EQ(read.withheld_categories(0), type::v1::DATA_CATEGORY_CONTACT);

  // The registering agency still reads everything, contact included.
  idv1::Person own;
  ASSERT_TRUE(GetPerson("kim-koeln", person.name(), &own).ok());
  EXPECT_EQ(own.contact().phone_numbers_size(), 1);
  EXPECT_TRUE(own.withheld_categories().empty());
}

// A birth date cannot be found by trying: after five failed proofs even the
// right one is refused, with the same answer.
TEST_F(TrustTest, FailedProofsAreLimited) {
  const idv1::Person person = RegisterPerson("Samir", "Nasser", "guess");
  grpc::Status last;
  for (int day = 1; day <= 5; ++day) {
    last = Link("caritas-koeln", person.name(), idv1::AGENCY_ID_KIND_OTHER,
                "CAR-G", AttributesProof(person, day),
                absl::StrCat("trust-guess-", day));
    ASSERT_EQ(last.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << Describe(last);
  }
  grpc::Status right =
      Link("caritas-koeln", person.name(), idv1::AGENCY_ID_KIND_OTHER, "CAR-G",
           AttributesProof(person, 14), "trust-guess-right");
  EXPECT_EQ(Answer(right), Answer(last));
  EXPECT_FALSE(ReadsWithin("caritas-koeln", person.name()));
}

// Search tells an unrelated agency that a match exists and its id, nothing
// more: no birth data, no creating agency, no reasons, and the same answer
// whether its guess of the birth date is right or wrong.
TEST_F(TrustTest, SearchDisclosesOnlyAMatchToAnUnrelatedAgency) {
  const idv1::Person person = RegisterPerson("Leyla", "Karimova", "search");
  auto search = [&](const std::string& as, int day) {
    idv1::SearchPersonsRequest request;
    request.set_name_query("Leyla Karimova");
    if (day > 0) {
      request.mutable_birth_date()->set_year(1991);
      request.mutable_birth_date()->set_month(3);
      request.mutable_birth_date()->set_day(day);
    }
    idv1::SearchPersonsResponse response;
    auto stub = Identity(as);
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->SearchPersons(c, request, &response);
    });
    EXPECT_TRUE(s.ok()) << Describe(s);
    return response;
  };
  auto find = [&](const idv1::SearchPersonsResponse& response)
      -> const idv1::DuplicateCandidate* {
    for (const idv1::DuplicateCandidate& c : response.results()) {
      if (c.person().name() == person.name()) return &c;
    }
    return nullptr;
  };

  const idv1::SearchPersonsResponse unrelated = search("jobcenter-koeln", 0);
  const idv1::DuplicateCandidate* match = find(unrelated);
  ASSERT_NE(match, nullptr) << unrelated.DebugString();
  EXPECT_TRUE(match->match_only());
  idv1::Person only_name;
  only_name.set_name(person.name());
  EXPECT_EQ(match->person().SerializeAsString(), only_name.SerializeAsString())
      << match->person().DebugString();
  EXPECT_EQ(match->score(), 0);
  EXPECT_FALSE(match->strong());
  EXPECT_TRUE(match->reasons().empty());

  // A right and a wrong birth date give the same answer.
  const idv1::SearchPersonsResponse right = search("jobcenter-koeln", 14);
  const idv1::SearchPersonsResponse wrong = search("jobcenter-koeln", 20);
  ASSERT_NE(find(right), nullptr);
  ASSERT_NE(find(wrong), nullptr);
  EXPECT_EQ(find(right)->SerializeAsString(), find(wrong)->SerializeAsString());

  // The registering agency sees the record (without contact) and why.
  const idv1::SearchPersonsResponse registered = search("kim-koeln", 14);
  const idv1::DuplicateCandidate* own = find(registered);
  ASSERT_NE(own, nullptr);
  EXPECT_FALSE(own->match_only());
  EXPECT_EQ(own->person().birth_place(), "Aleppo");
  EXPECT_GT(own->score(), 0.5);
  EXPECT_FALSE(own->reasons().empty());
  EXPECT_FALSE(own->person().has_contact());
}

// Lookups and link errors answer the same for "exists but not yours" and
// "does not exist", and never name a person the caller may not see.
TEST_F(TrustTest, NoExistenceOracle) {
  const idv1::Person person = RegisterPerson("Yusuf", "Demir", "oracle");
  // The Jobcenter links the person's BA customer number (it registered
  // nothing, so it proves the person is its customer).
  ASSERT_TRUE(Link("jobcenter-koeln", person.name(),
                   idv1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "962D123456",
                   AttributesProof(person, 14), "trust-oracle-jc")
                  .ok());

  auto lookup = [&](const std::string& value) {
    idv1::LookupPersonByAgencyIdRequest request;
    request.set_kind(idv1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER);
    request.set_value(value);
    idv1::Person found;
    auto stub = Identity("aa-koeln");
    return Call([&](grpc::ClientContext* c) {
      return stub->LookupPersonByAgencyId(c, request, &found);
    });
  };
  const grpc::Status linked = lookup("962D123456");
  const grpc::Status unknown = lookup("962D999999");
  EXPECT_EQ(linked.error_code(), grpc::StatusCode::NOT_FOUND)
      << Describe(linked);
  EXPECT_EQ(Answer(linked), Answer(unknown));

  // The number is taken: the employment agency learns that, not by whom.
  grpc::Status taken =
      Link("aa-koeln", person.name(), idv1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER,
           "962D123456", std::nullopt, "trust-oracle-aa");
  EXPECT_NE(taken.error_code(), grpc::StatusCode::OK);
  EXPECT_FALSE(Metadata(taken, "person").has_value()) << Describe(taken);
  EXPECT_EQ(taken.error_message().find(person.name()), std::string::npos);

  // A person that never existed reads like one the caller may not see.
  const grpc::Status existing = GetPerson("aa-koeln", person.name());
  const grpc::Status absent =
      GetPerson("aa-koeln", "persons/aaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(existing.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Answer(existing), Answer(absent));
  const grpc::Status link_absent =
      Link("aa-koeln", "persons/aaaaaaaaaaaaaaaaaaaaaaaaaa",
           idv1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "962D777777",
           AttributesProof(person, 14), "trust-oracle-absent");
  const grpc::Status link_unproven =
      Link("aa-koeln", person.name(), idv1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER,
           "962D777777", AttributesProof(person, 15), "trust-oracle-unproven");
  EXPECT_EQ(link_absent.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Answer(link_absent), Answer(link_unproven));
}

// ---- consent ----------------------------------------------------------------

// Consent is recorded by an agency acting for the person, never by the one
// it opens data to.
TEST_F(TrustTest, ConsentIsNeverSelfService) {
  const idv1::Person person = RegisterPerson("Nadia", "Sultani", "consent");
  const cv1::Case opened = OpenCase(person.name(), "consent");
  Refer(opened.name(), cv1::STEP_KIND_COUNSELLING, "agencies/caritas-koeln",
        "consent");
  // The referral makes the counsellor a participant.
  ASSERT_TRUE(
      Eventually([&] { return GetPerson("caritas-koeln", person.name()).ok(); },
                 kEventTimeout));

  auto record = [&](const std::string& as, bool to_domain,
                    const std::string& key) {
    idv1::RecordConsentRequest request;
    request.set_parent(person.name());
    request.set_request_id(absl::StrCat("trust-consent-", key));
    idv1::Consent* c = request.mutable_consent();
    c->add_categories(type::v1::DATA_CATEGORY_RESIDENCE_STATUS);
    c->add_categories(type::v1::DATA_CATEGORY_HEALTH);
    if (to_domain) {
      c->set_recipient_legal_domain(type::v1::LEGAL_DOMAIN_FREIER_TRAEGER);
    } else {
      c->set_recipient_agency("agencies/caritas-koeln");
    }
    c->add_purposes("counselling");
    c->mutable_evidence()->set_form(idv1::CONSENT_FORM_WRITTEN);
    c->mutable_evidence()->set_document_reference("Akte 2026/17");
    c->mutable_evidence()->mutable_declare_time()->set_seconds(
        absl::ToUnixSeconds(absl::Now()) - 3600);
    idv1::Consent recorded;
    auto stub = Identity(as);
    return Call([&](grpc::ClientContext* ctx) {
      return stub->RecordConsent(ctx, request, &recorded);
    });
  };
  auto reads_residence = [&] {
    idv1::GetCurrentResidenceStatusRequest request;
    request.set_person(person.name());
    idv1::ResidenceStatus status;
    auto stub = Identity("caritas-koeln");
    grpc::Status s = Call(
        [&](grpc::ClientContext* c) {
          return stub->GetCurrentResidenceStatus(c, request, &status);
        },
        "counselling");
    return s.error_code() != grpc::StatusCode::PERMISSION_DENIED;
  };

  for (bool to_domain : {false, true}) {
    grpc::Status self =
        record("caritas-koeln", to_domain, absl::StrCat("self-", to_domain));
    EXPECT_EQ(self.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << Describe(self);
    EXPECT_EQ(Reason(self), "CONSENT_FOR_SELF");
  }
  EXPECT_FALSE(reads_residence());

  // The case owner records it for the counsellor, on the signed form.
  grpc::Status lawful = record("kim-koeln", false, "by-owner");
  ASSERT_TRUE(lawful.ok()) << Describe(lawful);
  EXPECT_TRUE(reads_residence());
}

// ---- courses
// ------------------------------------------------------------------

// A course provider cannot book an arbitrary admitted person into its own
// course to read them; through the case owner's referral it can.
TEST_F(TrustTest, AProviderBooksOnlyThroughAReferral) {
  const idv1::Person person = RegisterPerson("Olena", "Bondarenko", "book");
  AdmitByBamf(person, "book");
  const crv1::Course course = CreateCourse("book");
  ASSERT_FALSE(course.name().empty());

  grpc::Status arbitrary =
      Book("vhs-koeln", course.name(), person.name(), "trust-book-arbitrary");
  EXPECT_EQ(arbitrary.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << Describe(arbitrary);
  EXPECT_EQ(Reason(arbitrary), "NO_RELATION");
  EXPECT_FALSE(ReadsWithin("vhs-koeln", person.name()));
  // The waitlist is no side door.
  crv1::JoinWaitlistRequest wait;
  wait.set_parent(course.name());
  wait.set_request_id("trust-book-wait");
  wait.mutable_waitlist_entry()->set_person(person.name());
  crv1::WaitlistEntry entry;
  auto courses = Courses("vhs-koeln");
  grpc::Status waited = Call([&](grpc::ClientContext* c) {
    return courses->JoinWaitlist(c, wait, &entry);
  });
  EXPECT_EQ(waited.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << Describe(waited);

  // The case owner refers the course step to the provider, which books.
  const cv1::Case opened = OpenCase(person.name(), "book");
  const cv1::Step step = Refer(opened.name(), cv1::STEP_KIND_INTEGRATION_COURSE,
                               "agencies/vhs-koeln", "book");
  grpc::Status referred;
  ASSERT_TRUE(Eventually(
      [&] {
        referred = Book("vhs-koeln", course.name(), person.name(),
                        "trust-book-referred", step.name());
        return referred.ok();
      },
      kEventTimeout))
      << Describe(referred);
  EXPECT_TRUE(ReadsWithin("vhs-koeln", person.name()));
}

// An obligation is no way into a stranger's record either.
TEST_F(TrustTest, AnObligationNeedsTheIssuerToKnowThePerson) {
  const idv1::Person person = RegisterPerson("Tariq", "Mansour", "oblige");
  grpc::Status refused;
  RecordEntitlement("jobcenter-koeln", person.name(),
                    crv1::ENTITLEMENT_KIND_OBLIGATION, "stranger", &refused)
      .IgnoreError();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << Describe(refused);
  EXPECT_EQ(Reason(refused), "NO_RELATION");
  EXPECT_FALSE(ReadsWithin("jobcenter-koeln", person.name()));

  // Its own customer (customer number linked with the papers): allowed.
  ASSERT_TRUE(Link("jobcenter-koeln", person.name(),
                   idv1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "962D555111",
                   AttributesProof(person, 14), "trust-oblige-link")
                  .ok());
  grpc::Status lawful;
  RecordEntitlement("jobcenter-koeln", person.name(),
                    crv1::ENTITLEMENT_KIND_OBLIGATION, "customer", &lawful)
      .IgnoreError();
  EXPECT_TRUE(lawful.ok()) << Describe(lawful);
}

// ---- placement
// ----------------------------------------------------------------

// An offer of its own and a proposal do not make a stranger the employment
// agency's customer.
TEST_F(TrustTest, AProposalNeedsThePersonInTheAgencysRemit) {
  const idv1::Person person = RegisterPerson("Dawit", "Tesfaye", "propose");
  // Work is permitted (immigration office) and the Jobcenter, whose
  // customer the person is, keeps a candidate profile.
  {
    idv1::RecordResidenceStatusRequest request;
    request.set_parent(person.name());
    request.set_request_id("trust-propose-residence");
    idv1::ResidenceStatus* rs = request.mutable_residence_status();
    rs->set_title_kind(idv1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT);
    rs->set_legal_basis("§ 25 Abs. 2 AufenthG");
    *rs->mutable_valid_from() = DateInDays(-30);
    *rs->mutable_valid_until() = DateInDays(3 * 365);
    rs->set_work_permission(type::v1::WORK_PERMISSION_PERMITTED);
    idv1::ResidenceStatus recorded;
    auto stub = Identity("abh-koeln");
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->RecordResidenceStatus(c, request, &recorded);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
  }
  ASSERT_TRUE(Link("jobcenter-koeln", person.name(),
                   idv1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "962D444222",
                   AttributesProof(person, 14), "trust-propose-link")
                  .ok());
  {
    pv1::CreateCandidateProfileRequest request;
    request.set_request_id("trust-propose-profile");
    pv1::CandidateProfile* p = request.mutable_candidate_profile();
    p->set_person(person.name());
    p->add_skills()->set_label("Gabelstapler");
    p->set_stated_language_level(type::v1::CEFR_LEVEL_B1);
    pv1::CandidateProfile profile;
    auto stub = Placement("jobcenter-koeln");
    grpc::Status s = Call(
        [&](grpc::ClientContext* c) {
          return stub->CreateCandidateProfile(c, request, &profile);
        },
        "job-placement");
    ASSERT_TRUE(s.ok()) << Describe(s);
  }
  pv1::CreateOfferRequest create_offer;
  create_offer.set_request_id("trust-propose-offer");
  *create_offer.mutable_offer() =
      WarehouseOffer("Lagerhelfer (m/w/d)", type::v1::CEFR_LEVEL_A1, 2);
  pv1::Offer offer;
  auto agency = Placement("aa-koeln");
  {
    grpc::Status s = Call(
        [&](grpc::ClientContext* c) {
          return agency->CreateOffer(c, create_offer, &offer);
        },
        "job-placement");
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  pv1::ProposePlacementRequest propose;
  propose.set_request_id("trust-propose-stranger");
  propose.mutable_placement()->set_offer(offer.name());
  propose.mutable_placement()->set_candidate(absl::StrCat(
      "candidates/", person.name().substr(sizeof("persons/") - 1)));
  pv1::Placement placement;
  grpc::Status refused = Call(
      [&](grpc::ClientContext* c) {
        return agency->ProposePlacement(c, propose, &placement);
      },
      "job-placement");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << Describe(refused);
  EXPECT_EQ(Reason(refused), "NO_RELATION");
  EXPECT_FALSE(ReadsWithin("aa-koeln", person.name()));

  // The Jobcenter proposes its own customer for the offer.
  auto jobcenter = Placement("jobcenter-koeln");
  propose.set_request_id("trust-propose-customer");
  grpc::Status lawful = Call(
      [&](grpc::ClientContext* c) {
        return jobcenter->ProposePlacement(c, propose, &placement);
      },
      "job-placement");
  EXPECT_TRUE(lawful.ok()) << Describe(lawful);
}

// ---- cases
// --------------------------------------------------------------------

// One municipality's case is its own: another town's case management opens
// no second case of the person; the case moves only by transfer.
TEST_F(TrustTest, AnotherMunicipalityGetsThePersonOnlyByTransfer) {
  const idv1::Person person = RegisterPerson("Reza", "Ahmadi", "transfer");
  const cv1::Case koeln = OpenCase(person.name(), "transfer");
  ASSERT_FALSE(koeln.name().empty());
  auto bonn = Cases("kim-bonn");
  cv1::OpenCaseRequest open;
  open.set_request_id("trust-transfer-bonn");
  open.mutable_case_record()->set_person(person.name());
  open.mutable_case_record()->set_responsible_actor("cm-bonn");
  cv1::Case second;

  // Without any relation to the person: no case at all.
  grpc::Status stranger = Call(
      [&](grpc::ClientContext* c) { return bonn->OpenCase(c, open, &second); });
  EXPECT_EQ(stranger.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << Describe(stranger);
  EXPECT_EQ(Reason(stranger), "NO_RELATION");
  EXPECT_FALSE(ReadsWithin("kim-bonn", person.name()));

  // With the person in front of it (its file number linked on the papers),
  // still no second case while Köln's is open: the reason says transfer.
  ASSERT_TRUE(Link("kim-bonn", person.name(),
                   idv1::AGENCY_ID_KIND_MUNICIPAL_FILE_NUMBER, "BN-2026-1",
                   AttributesProof(person, 14), "trust-transfer-link")
                  .ok());
  open.set_request_id("trust-transfer-bonn-2");
  grpc::Status elsewhere = Call(
      [&](grpc::ClientContext* c) { return bonn->OpenCase(c, open, &second); });
  EXPECT_EQ(elsewhere.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << Describe(elsewhere);
  EXPECT_EQ(Reason(elsewhere), "CASE_OPEN_ELSEWHERE");
  EXPECT_NE(elsewhere.error_message().find("TransferCase"), std::string::npos)
      << elsewhere.error_message();
  idv1::GetCurrentResidenceStatusRequest residence;
  residence.set_person(person.name());
  idv1::ResidenceStatus status;
  auto bonn_identity = Identity("kim-bonn");
  EXPECT_EQ(Call([&](grpc::ClientContext* c) {
              return bonn_identity->GetCurrentResidenceStatus(c, residence,
                                                              &status);
            }).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // Köln hands the case over; Bonn owns it then.
  cv1::TransferCaseRequest transfer;
  transfer.set_name(koeln.name());
  transfer.set_etag(koeln.etag());
  transfer.set_new_owner_agency("agencies/kim-bonn");
  transfer.set_reason("moved to Bonn");
  cv1::Case moved;
  auto koeln_cases = Cases("kim-koeln");
  grpc::Status handed = Call([&](grpc::ClientContext* c) {
    return koeln_cases->TransferCase(c, transfer, &moved);
  });
  ASSERT_TRUE(handed.ok()) << Describe(handed);
  EXPECT_EQ(moved.owner_agency(), "agencies/kim-bonn");
  EXPECT_EQ(moved.municipality_code(), "05314000");
}

}  // namespace
}  // namespace lotse::testing
