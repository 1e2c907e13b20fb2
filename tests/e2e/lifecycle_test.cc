// The data lifecycle through the four services as real processes (mutual
// TLS, wired like tools/lotse.sh), on SQLite and PostgreSQL:
// - a person with a case, a booking, a course result, a candidate profile
//   and a placement is erased: every service reports, every read of their
//   data answers as for an unknown person, their names and birth date are
//   in no database file (SQLite, with WAL and read chain) and in no pg_dump,
//   the audit chains still verify, and a watch stream resumes from a
//   cursor taken before the erasure;
// - a person under legal hold is not erased, and the refusal says why;
// - a closed case past its retention period is purged by the running purge
//   job, a held one is kept.
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/audit/v1/audit_service.grpc.pb.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"
#include "tests/e2e/calls.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace lotse::testing {
namespace {

using e2e::Call;
using e2e::Describe;
using e2e::Reason;

namespace idv1 = ::lotse::identity::v1;
namespace cv1 = ::lotse::cases::v1;
namespace crv1 = ::lotse::courses::v1;
namespace pv1 = ::lotse::placement::v1;
namespace av1 = ::lotse::audit::v1;

constexpr absl::Duration kEventTimeout = absl::Seconds(40);
const char* const kServices[] = {"identity", "cases", "courses", "placement"};

// Names no other record of the test carries, so that finding them in a
// database can only mean the erased person's data is still there.
constexpr char kGiven[] = "Quirinja";
constexpr char kFamily[] = "Xobelwanth";

// The same call with the development clock: the service records it at
// `when` (services run with --dev_clock).
grpc::Status CallAt(
    absl::Time when,
    const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  context.AddMetadata("x-lotse-actor", "cw-1");
  context.AddMetadata("x-lotse-purpose", "case-management");
  context.AddMetadata(
      "x-lotse-dev-time",
      absl::FormatTime(absl::RFC3339_sec, when, absl::UTCTimeZone()));
  return call(&context);
}

// The byte strings that would betray the erased person: the names as
// stored and as folded for matching, the birth date as text and as its
// serialized protobuf Date (year 1987, month 3, day 14).
std::vector<std::string> Betrayals() {
  std::string date_proto;
  date_proto.push_back(0x08);  // field 1, varint: 1987
  date_proto.push_back(static_cast<char>(0xc3));
  date_proto.push_back(0x0f);
  date_proto.push_back(0x10);  // field 2: 3
  date_proto.push_back(0x03);
  date_proto.push_back(0x18);  // field 3: 14
  date_proto.push_back(0x0e);
  return {kGiven,
          kFamily,
          absl::AsciiStrToUpper(kGiven),
          absl::AsciiStrToUpper(kFamily),
          absl::AsciiStrToLower(kGiven),
          absl::AsciiStrToLower(kFamily),
          "1987-03-14",
          "14.03.1987",
          "19870314",
          date_proto};
}

// Which of `needles` occur in `haystack`, raw or hex-encoded (pg_dump
// writes bytea as hex).
std::vector<std::string> Found(const std::string& haystack,
                               const std::vector<std::string>& needles) {
  std::vector<std::string> found;
  const std::string lower = absl::AsciiStrToLower(haystack);
  for (const std::string& n : needles) {
    if (absl::StrContains(haystack, n) ||
        absl::StrContains(lower, absl::BytesToHexString(n))) {
      found.push_back(absl::CEscape(n));
    }
  }
  return found;
}

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class LifecycleTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-lifecycle.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    for (const char* s : {"cases", "courses", "placement"}) {
      ports_[s] = FreeLocalPort();
    }
    const std::string to_cases =
        absl::StrCat("cases=127.0.0.1:", ports_["cases"]);
    const std::string to_courses =
        absl::StrCat("courses=127.0.0.1:", ports_["courses"]);
    const std::string to_placement =
        absl::StrCat("placement=127.0.0.1:", ports_["placement"]);
    const std::string others =
        absl::StrCat(to_cases, ",", to_courses, ",", to_placement);

    Start("identity", 0,
          {absl::StrCat("--event_destinations=", others),
           absl::StrCat("--audit_peers=", others)});
    ASSERT_FALSE(HasFailure());
    absl::StatusOr<int> port =
        processes_["identity"]->WaitServing(absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << processes_["identity"]->ReadLog();
    ports_["identity"] = *port;
    const std::string identity_target =
        absl::StrCat("--identity_target=127.0.0.1:", *port);
    const std::string to_identity = absl::StrCat("identity=127.0.0.1:", *port);
    Start(
        "cases", ports_["cases"],
        {identity_target, absl::StrCat("--event_destinations=", to_identity)});
    Start("courses", ports_["courses"],
          {identity_target, absl::StrCat("--event_destinations=", to_identity,
                                         ",", to_cases, ",", to_placement)});
    Start("placement", ports_["placement"],
          {identity_target,
           absl::StrCat("--event_destinations=", to_identity, ",", to_cases)});
    ASSERT_FALSE(HasFailure());
    for (const char* s : {"cases", "courses", "placement"}) {
      ASSERT_TRUE(processes_[s]->WaitServing(absl::Seconds(20)).ok())
          << processes_[s]->ReadLog();
    }
    absl::StatusOr<ServiceProcess> seed = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
        {absl::StrCat("--identity=127.0.0.1:", *port),
         absl::StrCat("--tls_dir=", pki_)},
        absl::StrCat(dir_, "/seed.log"));
    ASSERT_TRUE(seed.ok()) << seed.status();
    ASSERT_EQ(seed->WaitExit(absl::Seconds(60)).value_or(-1), 0)
        << seed->ReadLog();
  }

  void Start(const std::string& service, int port,
             const std::vector<std::string>& extra) {
    absl::StatusOr<std::string> url = NewTestDatabaseUrl(GetParam());
    ASSERT_TRUE(url.ok()) << url.status();
    urls_[service] = *url;
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", port),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=", *url),
        absl::StrCat("--retention_rules=", SourceDir(),
                     "/config/retention.conf"),
        "--purge_interval=1s",
        "--dev_clock",
        "--drain_grace=100ms",
        "--shutdown_deadline=2s"};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<ServiceProcess> p = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, ".log"));
    ASSERT_TRUE(p.ok()) << p.status();
    processes_[service] = std::make_unique<ServiceProcess>(*std::move(p));
  }

  std::string Logs() {
    std::string logs;
    for (const auto& [name, process] : processes_) {
      const std::string log = process->ReadLog();
      absl::StrAppend(&logs, "---- ", name, " log (tail) ----\n",
                      log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
    }
    return logs;
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& service,
                                         const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", ports_[service]),
                               *creds);
  }
  std::unique_ptr<idv1::IdentityService::Stub> Identity(const std::string& as) {
    return idv1::IdentityService::NewStub(Channel("identity", as));
  }
  std::unique_ptr<cv1::CasesService::Stub> Cases(const std::string& as) {
    return cv1::CasesService::NewStub(Channel("cases", as));
  }
  std::unique_ptr<crv1::CoursesService::Stub> Courses(const std::string& as) {
    return crv1::CoursesService::NewStub(Channel("courses", as));
  }
  std::unique_ptr<pv1::PlacementService::Stub> Placement(
      const std::string& as) {
    return pv1::PlacementService::NewStub(Channel("placement", as));
  }

  // Retries `call` while the answer is one an event not yet arrived
  // explains (the agency or the relation is not known there yet).
  grpc::Status OnceKnown(
      const std::function<grpc::Status(grpc::ClientContext*)>& call) {
    grpc::Status last;
    Eventually(
        [&] {
          last = Call(call);
          return last.error_code() != grpc::StatusCode::PERMISSION_DENIED &&
                 last.error_code() != grpc::StatusCode::UNAVAILABLE &&
                 last.error_code() != grpc::StatusCode::NOT_FOUND;
        },
        kEventTimeout);
    return last;
  }

  idv1::Person CreatePerson(const std::string& key, idv1::Person person) {
    idv1::CreatePersonRequest request;
    request.set_request_id(absl::StrCat("lifecycle-", key));
    *request.mutable_person() = std::move(person);
    request.set_confirm_new_person(true);
    idv1::Person out;
    auto stub = Identity("kim-koeln");
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->CreatePerson(c, request, &out);
    });
    EXPECT_TRUE(s.ok()) << Describe(s);
    return out;
  }

  cv1::Case OpenCase(const std::string& key, const idv1::Person& person,
                     absl::Time when = absl::InfinitePast()) {
    cv1::OpenCaseRequest open;
    open.set_request_id(absl::StrCat("lifecycle-case-", key));
    open.mutable_case_record()->set_person(person.name());
    open.mutable_case_record()->set_responsible_actor("cm-1");
    cv1::Case opened;
    auto stub = Cases("kim-koeln");
    grpc::Status last;
    EXPECT_TRUE(Eventually(
        [&] {
          auto call = [&](grpc::ClientContext* c) {
            return stub->OpenCase(c, open, &opened);
          };
          last = when == absl::InfinitePast() ? Call(call) : CallAt(when, call);
          return last.ok();
        },
        kEventTimeout))
        << Describe(last) << "\n"
        << Logs();
    return opened;
  }

  // Everything the other services hold about `person`: an entitlement, a
  // booking with a course result, a candidate profile and a placement.
  void GiveTheWholeJourney(const idv1::Person& person) {
    auto identity_bamf = Identity("bamf-nuernberg");
    idv1::LinkAgencyIdRequest link;
    link.set_parent(person.name());
    link.set_request_id("lifecycle-bamf-link");
    link.mutable_agency_id()->set_kind(idv1::AGENCY_ID_KIND_BAMF_FILE_NUMBER);
    link.mutable_agency_id()->set_value("BAMF-7000999");
    *link.mutable_proof() = PapersOf(person);
    idv1::AgencyId linked;
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return identity_bamf->LinkAgencyId(c, link, &linked);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);

    crv1::CreateCourseRequest course_request;
    course_request.set_request_id("lifecycle-course");
    *course_request.mutable_course() = IntegrationCourse("Integrationskurs");
    auto provider = Courses("vhs-koeln");
    s = OnceKnown([&](grpc::ClientContext* c) {
      return provider->CreateCourse(c, course_request, &course_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();

    crv1::RecordEntitlementRequest entitle;
    entitle.set_request_id("lifecycle-entitlement");
    crv1::Entitlement* e = entitle.mutable_entitlement();
    e->set_person(person.name());
    e->set_kind(crv1::ENTITLEMENT_KIND_ADMISSION);
    e->add_course_kinds(crv1::COURSE_KIND_INTEGRATION_GENERAL);
    e->set_units(700);
    *e->mutable_valid_from() = DateInDays(0);
    *e->mutable_valid_until() = DateInDays(365);
    auto bamf = Courses("bamf-nuernberg");
    s = OnceKnown([&](grpc::ClientContext* c) {
      return bamf->RecordEntitlement(c, entitle, &entitlement_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();

    crv1::CreateBookingRequest book;
    book.set_parent(course_.name());
    book.set_request_id("lifecycle-booking");
    book.mutable_booking()->set_person(person.name());
    auto kim = Courses("kim-koeln");
    s = OnceKnown([&](grpc::ClientContext* c) {
      return kim->CreateBooking(c, book, &booking_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
    crv1::ConfirmBookingRequest confirm;
    confirm.set_name(booking_.name());
    confirm.set_etag(booking_.etag());
    s = Call([&](grpc::ClientContext* c) {
      return provider->ConfirmBooking(c, confirm, &booking_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    // The booking changed the course's seats, and with them its etag.
    crv1::GetCourseRequest get_course;
    get_course.set_name(course_.name());
    s = Call([&](grpc::ClientContext* c) {
      return provider->GetCourse(c, get_course, &course_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    crv1::StartCourseRequest start;
    start.set_name(course_.name());
    start.set_etag(course_.etag());
    s = Call([&](grpc::ClientContext* c) {
      return provider->StartCourse(c, start, &course_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    crv1::RecordCourseResultRequest result;
    result.set_parent(booking_.name());
    result.set_request_id("lifecycle-result");
    result.mutable_result()->set_exam(crv1::EXAM_KIND_NONE);
    s = Call([&](grpc::ClientContext* c) {
      return provider->RecordCourseResult(c, result, &result_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);

    // The Jobcenter: residence status (from the immigration office), its
    // customer number, a candidate profile, an offer and a placement.
    idv1::RecordResidenceStatusRequest residence;
    residence.set_parent(person.name());
    residence.set_request_id("lifecycle-residence");
    idv1::ResidenceStatus* rs = residence.mutable_residence_status();
    rs->set_title_kind(idv1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT);
    rs->set_legal_basis("§ 25 Abs. 2 AufenthG");
    *rs->mutable_valid_from() = DateInDays(-30);
    *rs->mutable_valid_until() = DateInDays(3 * 365);
    rs->set_work_permission(type::v1::WORK_PERMISSION_PERMITTED);
    idv1::ResidenceStatus recorded;
    auto abh = Identity("abh-koeln");
    s = Call([&](grpc::ClientContext* c) {
      return abh->RecordResidenceStatus(c, residence, &recorded);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    link.set_request_id("lifecycle-jc-link");
    link.mutable_agency_id()->set_kind(idv1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER);
    link.mutable_agency_id()->set_value("962D099999");
    auto identity_jc = Identity("jobcenter-koeln");
    s = Call([&](grpc::ClientContext* c) {
      return identity_jc->LinkAgencyId(c, link, &linked);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);

    auto jobcenter = Placement("jobcenter-koeln");
    pv1::CreateCandidateProfileRequest profile;
    profile.set_request_id("lifecycle-profile");
    pv1::CandidateProfile* p = profile.mutable_candidate_profile();
    p->set_person(person.name());
    p->mutable_preferred_hours()->set_min_hours_per_week(20);
    p->mutable_preferred_hours()->set_max_hours_per_week(40);
    p->add_wanted_offer_kinds(pv1::OFFER_KIND_JOB);
    p->set_stated_language_level(type::v1::CEFR_LEVEL_A2);
    s = OnceKnown([&](grpc::ClientContext* c) {
      return jobcenter->CreateCandidateProfile(c, profile, &profile_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
    pv1::CreateOfferRequest offer;
    offer.set_request_id("lifecycle-offer");
    *offer.mutable_offer() =
        WarehouseOffer("Lagerhelfer (m/w/d)", type::v1::CEFR_LEVEL_A1, 3);
    pv1::Offer offer_out;
    s = OnceKnown([&](grpc::ClientContext* c) {
      return jobcenter->CreateOffer(c, offer, &offer_out);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    pv1::ProposePlacementRequest propose;
    propose.set_request_id("lifecycle-placement");
    propose.mutable_placement()->set_offer(offer_out.name());
    propose.mutable_placement()->set_candidate(profile_.name());
    s = OnceKnown([&](grpc::ClientContext* c) {
      return jobcenter->ProposePlacement(c, propose, &placement_);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  }

  // The betraying byte strings found in the databases' files (SQLite) or
  // in pg_dump of each database (PostgreSQL), as "service: what".
  std::vector<std::string> SearchDatabases() {
    std::vector<std::string> hits;
    const std::vector<std::string> needles = Betrayals();
    for (const char* service : kServices) {
      const std::string& url = urls_[service];
      std::vector<std::string> contents;
      if (GetParam() == Dialect::kSqlite) {
        // "sqlite:/dir/N.db": the file, its WAL, and the read chain's
        // file beside it ("N.reads.db") with its WAL.
        std::string path(absl::StripPrefix(url, "sqlite:"));
        const std::string base(absl::StripSuffix(path, ".db"));
        for (const std::string& f : {path, path + "-wal", base + ".reads.db",
                                     base + ".reads.db-wal"}) {
          contents.push_back(ReadWhole(f));
        }
      } else {
        absl::StatusOr<CommandResult> dump = RunCommand(
            "/usr/bin/pg_dump", {"--no-owner", "-d", url}, absl::Seconds(60));
        EXPECT_TRUE(dump.ok()) << dump.status();
        if (!dump.ok()) continue;
        EXPECT_EQ(dump->exit_code, 0) << dump->err;
        EXPECT_GT(dump->out.size(), 1000u);
        contents.push_back(dump->out);
      }
      for (const std::string& c : contents) {
        for (const std::string& f : Found(c, needles)) {
          hits.push_back(absl::StrCat(service, ": ", f));
        }
      }
    }
    return hits;
  }

  // Stops every service with SIGTERM: SQLite checkpoints its WAL on the
  // last close.
  void StopAll() {
    for (const char* s : kServices) processes_[s]->Signal(SIGTERM);
    for (const char* s : kServices) {
      EXPECT_EQ(processes_[s]->WaitExit(absl::Seconds(15)).value_or(-1), 0)
          << s << "\n"
          << processes_[s]->ReadLog();
    }
  }

  std::string pki_;
  std::string dir_;
  std::map<std::string, int> ports_;
  std::map<std::string, std::string> urls_;
  std::map<std::string, std::unique_ptr<ServiceProcess>> processes_;
  crv1::Course course_;
  crv1::Entitlement entitlement_;
  crv1::Booking booking_;
  crv1::CourseResult result_;
  pv1::CandidateProfile profile_;
  pv1::Placement placement_;
};

// Reads the watch stream from `after_cursor` (0: from the earliest event)
// until `enough` says so or `timeout` passes; returns the events seen.
std::vector<cv1::CaseEvent> Watch(
    cv1::CasesService::Stub& stub, int64_t after_cursor,
    const std::function<bool(const std::vector<cv1::CaseEvent>&)>& enough,
    absl::Duration timeout, grpc::Status* end) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context.AddMetadata("x-lotse-actor", "cw-1");
  context.AddMetadata("x-lotse-purpose", "case-management");
  cv1::WatchCaseEventsRequest request;
  request.set_after_cursor(after_cursor);
  if (after_cursor == 0) request.set_start(cv1::WATCH_START_EARLIEST);
  std::unique_ptr<grpc::ClientReader<cv1::WatchCaseEventsResponse>> reader =
      stub.WatchCaseEvents(&context, request);
  std::vector<cv1::CaseEvent> events;
  cv1::WatchCaseEventsResponse response;
  while (reader->Read(&response)) {
    if (response.has_event()) events.push_back(response.event());
    if (enough(events)) {
      context.TryCancel();
      break;
    }
  }
  *end = reader->Finish();
  return events;
}

TEST_P(LifecycleTest, ErasedPersonIsGoneEverywhereAndAHeldOneStays) {
  idv1::Person person = SamplePersonWithPapers(kGiven, kFamily, 1987);
  person.mutable_birth_date()->set_month(3);
  person.mutable_birth_date()->set_day(14);
  const idv1::Person erased = CreatePerson("erased", person);
  const idv1::Person held = CreatePerson(
      "held", SamplePersonWithPapers("Amanuel", "Tesfamariam", 1990));
  ASSERT_FALSE(HasFailure());
  const cv1::Case erased_case = OpenCase("erased", erased);
  const cv1::Case held_case = OpenCase("held", held);
  GiveTheWholeJourney(erased);
  ASSERT_FALSE(HasFailure());

  // The control: before the erasure the search finds the person.
  {
    const std::vector<std::string> before = SearchDatabases();
    EXPECT_FALSE(before.empty()) << "the byte search finds nothing even "
                                    "before the erasure";
  }

  // A cursor from before the erasure: the erased person's CaseOpened.
  auto watch_stub = Cases("kim-koeln");
  grpc::Status watch_end;
  int64_t cursor_before = 0;
  Watch(
      *watch_stub, 0,
      [&](const std::vector<cv1::CaseEvent>& events) {
        for (const cv1::CaseEvent& e : events) {
          if (e.case_name() == erased_case.name()) {
            cursor_before = e.cursor();
            return true;
          }
        }
        return false;
      },
      absl::Seconds(20), &watch_end);
  ASSERT_GT(cursor_before, 0) << Describe(watch_end);

  // The held person: the case owner places a hold; their erasure is
  // refused and says which hold until when.
  auto kim = Identity("kim-koeln");
  idv1::PlaceLegalHoldRequest place;
  place.set_request_id("lifecycle-hold");
  place.mutable_hold()->set_subject(held.name());
  place.mutable_hold()->set_reason("Verwaltungsgerichtsverfahren 4 K 123/26");
  *place.mutable_hold()->mutable_end_date() = DateInDays(400);
  idv1::LegalHold hold;
  grpc::Status s;
  ASSERT_TRUE(Eventually(
      [&] {
        s = Call([&](grpc::ClientContext* c) {
          return kim->PlaceLegalHold(c, place, &hold);
        });
        return s.ok();
      },
      kEventTimeout))
      << Describe(s);
  EXPECT_EQ(hold.state(), idv1::LegalHold::STATE_ACTIVE);
  idv1::ErasePersonRequest erase_held;
  erase_held.set_request_id("lifecycle-erase-held");
  erase_held.set_name(held.name());
  erase_held.set_reason("Antrag nach Art. 17 DSGVO");
  idv1::Erasure refused;
  s = Call([&](grpc::ClientContext* c) {
    return kim->ErasePerson(c, erase_held, &refused);
  });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << Describe(s);
  EXPECT_EQ(Reason(s), "LEGAL_HOLD");
  EXPECT_TRUE(absl::StrContains(s.error_message(), hold.name()) ||
              absl::StrContains(s.error_details(), hold.name()))
      << Describe(s);

  // A hold without a reason is refused with a field violation.
  place.set_request_id("lifecycle-hold-2");
  place.mutable_hold()->clear_reason();
  idv1::LegalHold not_placed;
  s = Call([&](grpc::ClientContext* c) {
    return kim->PlaceLegalHold(c, place, &not_placed);
  });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);

  // The erasure, by the case owner.
  idv1::ErasePersonRequest erase;
  erase.set_request_id("lifecycle-erase");
  erase.set_name(erased.name());
  erase.set_reason("Antrag nach Art. 17 DSGVO vom 30.11.2026");
  idv1::Erasure erasure;
  s = Call([&](grpc::ClientContext* c) {
    return kim->ErasePerson(c, erase, &erasure);
  });
  ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  EXPECT_EQ(erasure.name(), absl::StrCat(erased.name(), "/erasure"));

  // Every service reports; courses keeps the course result by rule.
  idv1::GetErasureStatusRequest status_request;
  status_request.set_name(erasure.name());
  ASSERT_TRUE(Eventually(
      [&] {
        s = Call([&](grpc::ClientContext* c) {
          return kim->GetErasureStatus(c, status_request, &erasure);
        });
        return s.ok() && erasure.complete();
      },
      kEventTimeout))
      << Describe(s) << "\n"
      << erasure.DebugString() << "\n"
      << Logs();
  std::set<std::string> reported;
  for (const idv1::ServiceErasure& e : erasure.services()) {
    reported.insert(e.service());
    EXPECT_NE(e.state(), idv1::ServiceErasure::STATE_PENDING);
    if (e.service() == "courses") {
      EXPECT_EQ(e.state(), idv1::ServiceErasure::STATE_KEPT_BY_RULE)
          << erasure.DebugString();
      bool result_kept = false;
      for (const idv1::KeptData& k : e.kept()) {
        if (k.resource_kind() == "course-result") result_kept = true;
      }
      EXPECT_TRUE(result_kept) << erasure.DebugString();
    }
  }
  EXPECT_EQ(reported, (std::set<std::string>{"identity", "cases", "courses",
                                             "placement"}));

  // A second erasure is refused, and says why.
  erase.set_request_id("lifecycle-erase-again");
  idv1::Erasure again;
  s = Call([&](grpc::ClientContext* c) {
    return kim->ErasePerson(c, erase, &again);
  });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << Describe(s);
  EXPECT_EQ(Reason(s), "PERSON_ERASED");
  // An unknown person, asked by the data-protection officer.
  erase.set_request_id("lifecycle-erase-unknown");
  erase.set_name("persons/aaaaaaaaaaaaaaaaaaaaaaaaaa");
  s = Call([&](grpc::ClientContext* c) {
    return Identity("dsb-nrw")->ErasePerson(c, erase, &again);
  });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);

  // (a) Every read of the erased person's data answers as for an unknown
  // person.
  {
    idv1::GetPersonRequest get;
    get.set_name(erased.name());
    idv1::Person out;
    s = Call(
        [&](grpc::ClientContext* c) { return kim->GetPerson(c, get, &out); });
    EXPECT_FALSE(s.ok());
    EXPECT_TRUE(s.error_code() == grpc::StatusCode::NOT_FOUND ||
                s.error_code() == grpc::StatusCode::PERMISSION_DENIED)
        << Describe(s);
  }
  {
    cv1::GetCaseRequest get;
    get.set_name(erased_case.name());
    cv1::Case out;
    s = Call([&](grpc::ClientContext* c) {
      return Cases("kim-koeln")->GetCase(c, get, &out);
    });
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
  }
  {
    crv1::GetBookingRequest get;
    get.set_name(booking_.name());
    crv1::Booking out;
    s = Call([&](grpc::ClientContext* c) {
      return Courses("kim-koeln")->GetBooking(c, get, &out);
    });
    EXPECT_FALSE(s.ok()) << out.DebugString();
    crv1::GetEntitlementRequest get_entitlement;
    get_entitlement.set_name(entitlement_.name());
    crv1::Entitlement entitlement;
    s = Call([&](grpc::ClientContext* c) {
      return Courses("bamf-nuernberg")
          ->GetEntitlement(c, get_entitlement, &entitlement);
    });
    EXPECT_FALSE(s.ok()) << entitlement.DebugString();
  }
  {
    pv1::GetCandidateProfileRequest get;
    get.set_name(profile_.name());
    pv1::GetCandidateProfileResponse out;
    s = Call([&](grpc::ClientContext* c) {
      return Placement("jobcenter-koeln")->GetCandidateProfile(c, get, &out);
    });
    EXPECT_FALSE(s.ok()) << out.DebugString();
    pv1::GetPlacementRequest get_placement;
    get_placement.set_name(placement_.name());
    pv1::Placement placement;
    s = Call([&](grpc::ClientContext* c) {
      return Placement("jobcenter-koeln")
          ->GetPlacement(c, get_placement, &placement);
    });
    if (s.ok()) {
      EXPECT_TRUE(placement.person().empty()) << placement.DebugString();
    }
  }
  // The held person is all there.
  {
    idv1::GetPersonRequest get;
    get.set_name(held.name());
    idv1::Person out;
    s = Call(
        [&](grpc::ClientContext* c) { return kim->GetPerson(c, get, &out); });
    EXPECT_TRUE(s.ok()) << Describe(s);
  }

  // (d) The watch resumes from the old cursor and delivers what happens
  // after the erasure: the held person's case is updated.
  {
    cv1::GetCaseRequest get;
    get.set_name(held_case.name());
    cv1::Case current;
    auto cases = Cases("kim-koeln");
    s = Call([&](grpc::ClientContext* c) {
      return cases->GetCase(c, get, &current);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    cv1::ChangeCaseStateRequest change;
    change.set_name(held_case.name());
    change.set_etag(current.etag());
    change.set_state(cv1::CASE_STATE_ASSESSMENT);
    cv1::Case changed;
    s = Call([&](grpc::ClientContext* c) {
      return cases->ChangeCaseState(c, change, &changed);
    });
    EXPECT_TRUE(s.ok()) << Describe(s);
  }
  std::vector<cv1::CaseEvent> resumed = Watch(
      *watch_stub, cursor_before,
      [&](const std::vector<cv1::CaseEvent>& events) {
        for (const cv1::CaseEvent& e : events) {
          if (e.case_name() == held_case.name() && e.has_case_state_changed()) {
            return true;
          }
        }
        return false;
      },
      absl::Seconds(20), &watch_end);
  bool saw_update = false;
  for (const cv1::CaseEvent& e : resumed) {
    EXPECT_NE(e.case_name(), erased_case.name()) << e.DebugString();
    EXPECT_GT(e.cursor(), cursor_before);
    if (e.case_name() == held_case.name() && e.has_case_state_changed()) {
      saw_update = true;
    }
  }
  EXPECT_TRUE(saw_update) << Describe(watch_end);

  // (c) Every audit chain of every service still verifies.
  for (const char* service : kServices) {
    auto audit = av1::AuditService::NewStub(Channel(service, "dsb-nrw"));
    av1::VerifyAuditChainRequest verify;
    verify.set_witness_timeout_ms(3000);
    av1::VerifyAuditChainResponse report;
    s = Call(
        [&](grpc::ClientContext* c) {
          return audit->VerifyAuditChain(c, verify, &report);
        },
        "audit");
    ASSERT_TRUE(s.ok()) << service << ": " << Describe(s);
    for (const av1::ChainVerification& chain : report.chains()) {
      EXPECT_TRUE(chain.intact()) << service << ": " << chain.DebugString();
    }
  }

  // (b) No byte of the names or the birth date is left in any database,
  // after the services checkpointed and closed them.
  StopAll();
  const std::vector<std::string> after = SearchDatabases();
  EXPECT_TRUE(after.empty()) << absl::StrJoin(after, "\n");
}

TEST_P(LifecycleTest, PurgeJobRemovesAClosedCaseAfterItsPeriodUnlessHeld) {
  const idv1::Person a = CreatePerson(
      "purge-a", SamplePersonWithPapers("Mirela", "Stojkovic", 1985));
  const idv1::Person b = CreatePerson(
      "purge-b", SamplePersonWithPapers("Goran", "Petrovic", 1983));
  ASSERT_FALSE(HasFailure());
  // Both cases were opened and are closed (development clock) four years
  // ago; the shipped rules keep a closed case three years.
  const absl::Time opened_at =
      absl::Now() - absl::Hours(24 * 365 * 4 + 24 * 30);
  const absl::Time closed_at = absl::Now() - absl::Hours(24 * 365 * 4);
  auto cases = Cases("kim-koeln");
  const cv1::Case case_a = OpenCase("purge-a", a, opened_at);
  const cv1::Case case_b = OpenCase("purge-b", b, opened_at);
  ASSERT_FALSE(HasFailure());
  auto close = [&](const cv1::Case& c) {
    cv1::CloseCaseRequest request;
    request.set_name(c.name());
    request.set_etag(c.etag());
    request.set_closing_reason(cv1::CASE_CLOSING_REASON_MOVED_AWAY);
    cv1::Case out;
    return CallAt(closed_at, [&](grpc::ClientContext* ctx) {
      return cases->CloseCase(ctx, request, &out);
    });
  };

  // The data-protection officer holds the second case while it is open.
  idv1::PlaceLegalHoldRequest place;
  place.set_request_id("lifecycle-purge-hold");
  place.mutable_hold()->set_subject(case_b.name());
  place.mutable_hold()->set_person(b.name());
  place.mutable_hold()->set_reason("Prüfung durch den Landesrechnungshof");
  *place.mutable_hold()->mutable_end_date() = DateInDays(30);
  idv1::LegalHold hold;
  auto dsb = Identity("dsb-nrw");
  grpc::Status s = Call([&](grpc::ClientContext* c) {
    return dsb->PlaceLegalHold(c, place, &hold);
  });
  ASSERT_TRUE(s.ok()) << Describe(s);

  // The unheld case, closed four years ago, goes with the next purge run.
  s = close(case_a);
  ASSERT_TRUE(s.ok()) << Describe(s);
  cv1::GetCaseRequest get;
  get.set_name(case_a.name());
  cv1::Case out;
  ASSERT_TRUE(Eventually(
      [&] {
        s = Call([&](grpc::ClientContext* c) {
          return cases->GetCase(c, get, &out);
        });
        return s.error_code() == grpc::StatusCode::NOT_FOUND;
      },
      kEventTimeout))
      << Describe(s) << "\n"
      << Logs();
  // The held one, closed as long ago, outlives several runs.
  s = close(case_b);
  ASSERT_TRUE(s.ok()) << Describe(s);
  absl::SleepFor(absl::Seconds(4));
  get.set_name(case_b.name());
  s = Call(
      [&](grpc::ClientContext* c) { return cases->GetCase(c, get, &out); });
  EXPECT_TRUE(s.ok()) << Describe(s);

  // The purge is in the audit trail of cases, against the person.
  auto audit = av1::AuditService::NewStub(Channel("cases", "dsb-nrw"));
  av1::ListAuditRecordsRequest list;
  list.set_person(a.name());
  list.set_page_size(1000);
  av1::ListAuditRecordsResponse records;
  s = Call(
      [&](grpc::ClientContext* c) {
        return audit->ListAuditRecords(c, list, &records);
      },
      "audit");
  ASSERT_TRUE(s.ok()) << Describe(s);
  bool purged = false;
  for (const av1::AuditRecord& r : records.records()) {
    if (r.operation() == "lotse.lifecycle/Purge") purged = true;
  }
  EXPECT_TRUE(purged) << records.DebugString();
}

INSTANTIATE_TEST_SUITE_P(Backends, LifecycleTest,
                         ::testing::Values(Dialect::kSqlite,
                                           Dialect::kPostgres),
                         DialectParamName());

}  // namespace
}  // namespace lotse::testing
