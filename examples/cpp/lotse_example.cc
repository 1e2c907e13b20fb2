// A Lotse client in C++: one person from registration to a course seat.
//
// Built by the CMakeLists.txt beside it, which generates the stubs from the
// repository's proto/ directory (see examples/README.md).
//
// What it does, each step as the agency that would do it in real life:
//   1. the municipality's case management (kim-koeln) registers a person,
//   2. opens a case with an integration-course step referred to the course
//      provider (vhs-koeln),
//   3. the course provider publishes a course (unless one with free seats
//      is found),
//   4. BAMF (bamf-nuernberg) links its file number and admits the person,
//   5. the case manager books a seat and reads the case view,
//   6. and two deliberate mistakes show how errors carry their details.
//
// Configuration (environment): LOTSE_TLS_DIR (dev-pki directory, default
// .dev/pki), LOTSE_IDENTITY, LOTSE_CASES, LOTSE_COURSES (host:port, default
// the ports of `tools/lotse.sh run`). Exit status 0 on success, 1 on failure.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"

namespace {

namespace cases = lotse::cases::v1;
namespace courses = lotse::courses::v1;
namespace identity = lotse::identity::v1;

std::string Env(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

const std::string kTlsDir = Env("LOTSE_TLS_DIR", ".dev/pki");
const std::string kIdentity = Env("LOTSE_IDENTITY", "127.0.0.1:50051");
const std::string kCases = Env("LOTSE_CASES", "127.0.0.1:50052");
const std::string kCourses = Env("LOTSE_COURSES", "127.0.0.1:50053");

// --- connecting ------------------------------------------------------------

// The file's content; empty (and said on stderr) when it cannot be read,
// which the TLS handshake then refuses.
std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) std::cerr << "cannot read " << path << "\n";
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// A mutual-TLS channel that presents the agency's client certificate. The
// server knows the calling agency only from this certificate.
std::shared_ptr<grpc::Channel> Connect(const std::string& target,
                                       const std::string& agency) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFile(kTlsDir + "/ca.crt");
  tls.pem_private_key = ReadFile(kTlsDir + "/clients/" + agency + ".key");
  tls.pem_cert_chain = ReadFile(kTlsDir + "/clients/" + agency + ".crt");
  return grpc::CreateChannel(target, grpc::SslCredentials(tls));
}

// Who in the agency acts, and why: required on every call, and audited.
struct Caller {
  std::string actor;
  std::string purpose;
};

// Makes one unary call as `caller`, with a 10 s deadline.
template <typename Stub, typename Request, typename Response>
grpc::Status Call(Stub& stub,
                  grpc::Status (Stub::*method)(grpc::ClientContext*,
                                               const Request&, Response*),
                  const Caller& caller, const Request& request,
                  Response* response) {
  grpc::ClientContext context;
  context.AddMetadata("x-lotse-actor", caller.actor);
  context.AddMetadata("x-lotse-purpose", caller.purpose);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  return (stub.*method)(&context, request, response);
}

// --- errors ------------------------------------------------------------------

// What Lotse says about a refusal beyond its code: a reason (ErrorInfo)
// and field violations (BadRequest), sent as a google.rpc.Status in the
// binary trailer that grpc::Status::error_details() returns. The message
// text is for people, the details for programs.
struct Details {
  google::rpc::ErrorInfo info;
  google::rpc::BadRequest bad_request;
};

Details DetailsOf(const grpc::Status& status) {
  Details details;
  google::rpc::Status rich;
  if (!rich.ParseFromString(status.error_details())) return details;
  for (const google::protobuf::Any& any : rich.details()) {
    if (any.Is<google::rpc::ErrorInfo>()) any.UnpackTo(&details.info);
    if (any.Is<google::rpc::BadRequest>()) any.UnpackTo(&details.bad_request);
  }
  return details;
}

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i <= 16 ? kNames[i] : "?";
}

// Prints a refused call the way a client should show it.
void Report(const std::string& what, const grpc::Status& status) {
  const Details details = DetailsOf(status);
  std::cout << what << ": refused with " << CodeName(status.error_code());
  if (!details.info.reason().empty()) {
    std::cout << ", reason " << details.info.reason();
  }
  std::cout << "\n";
  for (const auto& violation : details.bad_request.field_violations()) {
    std::cout << "  field " << violation.field() << ": "
              << violation.description() << "\n";
  }
}

// True when the call succeeded; otherwise reports it and returns false,
// which ends the walk-through.
bool Ok(const std::string& what, const grpc::Status& status) {
  if (!status.ok()) Report(what, status);
  return status.ok();
}

// True when the call was refused, as it should have been; reports how.
bool Refused(const std::string& what, const grpc::Status& status) {
  if (status.ok()) {
    std::cout << what << ": accepted, but should have been refused\n";
    return false;
  }
  Report(what, status);
  return true;
}

// --- small helpers -----------------------------------------------------------

lotse::type::v1::Date DateInDays(int days) {
  const std::time_t t = std::time(nullptr) + days * 86400L;
  std::tm utc;
  gmtime_r(&t, &utc);
  lotse::type::v1::Date date;
  date.set_year(utc.tm_year + 1900);
  date.set_month(utc.tm_mon + 1);
  date.set_day(utc.tm_mday);
  return date;
}

// A fresh idempotency key: retrying a call with the same key is safe.
std::string RequestId() {
  static std::mt19937_64 random{std::random_device{}()};
  char id[33];
  std::snprintf(id, sizeof id, "%016llx%016llx",
                static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(random()));
  return id;
}

// --- the walk-through --------------------------------------------------------

// Returns true when every step went as described at the top of this file.
bool WalkThrough() {
  const Caller kim{"cm-example", "case-management"};
  auto identity_stub =
      identity::IdentityService::NewStub(Connect(kIdentity, "kim-koeln"));
  auto cases_stub = cases::CasesService::NewStub(Connect(kCases, "kim-koeln"));
  auto courses_stub =
      courses::CoursesService::NewStub(Connect(kCourses, "kim-koeln"));

  // 1. Register the person. A full birth date lets BAMF prove later, from
  // its own papers, that the person is in its remit.
  identity::CreatePersonRequest create;
  create.set_request_id(RequestId());
  identity::Person* new_person = create.mutable_person();
  identity::PersonName* name = new_person->add_names();
  name->set_given_names("Olena");
  name->set_family_names("Shevchenko");
  name->set_script("Latn");
  name->set_kind(identity::NAME_KIND_CURRENT);
  new_person->mutable_birth_date()->set_year(1984);
  new_person->mutable_birth_date()->set_month(6);
  new_person->mutable_birth_date()->set_day(21);
  new_person->set_birth_place("Charkiw");
  identity::Person person;
  grpc::Status status =
      Call(*identity_stub, &identity::IdentityService::Stub::CreatePerson, kim,
           create, &person);
  const Details details = DetailsOf(status);
  if (details.info.reason() == "POSSIBLE_DUPLICATE") {
    // Someone with these data is registered already (this example ran
    // before). A caseworker would compare the candidates; this made-up
    // person is confirmed as new.
    std::cout << "possible duplicates: "
              << details.info.metadata().at("candidates") << "\n";
    create.set_confirm_new_person(true);
    status =
        Call(*identity_stub, &identity::IdentityService::Stub::CreatePerson,
             kim, create, &person);
  }
  if (!Ok("register", status)) return false;
  std::cout << "person: " << person.name() << "\n";

  // 2. Open a case and refer an integration-course step to the provider.
  cases::OpenCaseRequest open;
  open.set_request_id(RequestId());
  open.mutable_case_record()->set_person(person.name());
  open.mutable_case_record()->set_responsible_actor("cm-example");
  cases::Case opened;
  if (!Ok("open case", Call(*cases_stub, &cases::CasesService::Stub::OpenCase,
                            kim, open, &opened))) {
    return false;
  }
  std::cout << "case: " << opened.name() << "\n";
  cases::CreateStepRequest create_step;
  create_step.set_parent(opened.name());
  create_step.set_request_id(RequestId());
  create_step.mutable_step()->set_kind(cases::STEP_KIND_INTEGRATION_COURSE);
  create_step.mutable_step()->set_receiving_agency("agencies/vhs-koeln");
  cases::Step step;
  if (!Ok("refer step",
          Call(*cases_stub, &cases::CasesService::Stub::CreateStep, kim,
               create_step, &step))) {
    return false;
  }
  std::cout << "step: " << step.name() << "\n";

  // 3. Find an integration course in Köln with a free seat; if there is
  // none, the provider publishes one.
  courses::SearchCoursesRequest search;
  search.add_kinds(courses::COURSE_KIND_INTEGRATION_GENERAL);
  search.set_municipality_code("05315000");
  courses::SearchCoursesResponse found;
  if (!Ok("search courses",
          Call(*courses_stub, &courses::CoursesService::Stub::SearchCourses,
               kim, search, &found))) {
    return false;
  }
  courses::Course course;
  if (found.results_size() > 0) {
    course = found.results(0).course();
  } else {
    auto provider =
        courses::CoursesService::NewStub(Connect(kCourses, "vhs-koeln"));
    courses::CreateCourseRequest publish;
    publish.set_request_id(RequestId());
    courses::Course* c = publish.mutable_course();
    c->set_title("Integrationskurs Vormittag");
    c->set_kind(courses::COURSE_KIND_INTEGRATION_GENERAL);
    c->set_target_level(lotse::type::v1::CEFR_LEVEL_B1);
    c->mutable_place()->set_street("Cäcilienstraße");
    c->mutable_place()->set_postal_code("50667");
    c->mutable_place()->set_locality("Köln");
    c->mutable_place()->set_municipality_code("05315000");
    *c->mutable_schedule()->mutable_start_date() = DateInDays(14);
    c->mutable_schedule()->add_weekdays(lotse::type::v1::DAY_OF_WEEK_MONDAY);
    c->mutable_schedule()->set_day_period(lotse::type::v1::DAY_PERIOD_MORNING);
    c->mutable_schedule()->set_units_per_week(20);
    c->mutable_schedule()->set_total_units(700);
    c->set_capacity(12);
    if (!Ok("publish course",
            Call(*provider, &courses::CoursesService::Stub::CreateCourse,
                 Caller{"planner-example", "course-placement"}, publish,
                 &course))) {
      return false;
    }
  }
  std::cout << "course: " << course.name() << "\n";

  // 4. BAMF links its file number, proving the remit with the papers' name
  // and birth data, then admits the person to integration courses.
  const Caller bamf{"bamf-example", "course-admission"};
  identity::LinkAgencyIdRequest link;
  link.set_parent(person.name());
  link.set_request_id(RequestId());
  link.mutable_agency_id()->set_kind(identity::AGENCY_ID_KIND_BAMF_FILE_NUMBER);
  link.mutable_agency_id()->set_value("BAMF-" + RequestId().substr(0, 8));
  identity::IdentifyingAttributes* papers =
      link.mutable_proof()->mutable_attributes();
  *papers->mutable_name() = *name;
  *papers->mutable_birth_date() = new_person->birth_date();
  papers->set_birth_place(new_person->birth_place());
  auto bamf_identity =
      identity::IdentityService::NewStub(Connect(kIdentity, "bamf-nuernberg"));
  identity::AgencyId linked;
  if (!Ok("link BAMF file number",
          Call(*bamf_identity, &identity::IdentityService::Stub::LinkAgencyId,
               bamf, link, &linked))) {
    return false;
  }
  courses::RecordEntitlementRequest admit;
  admit.set_request_id(RequestId());
  courses::Entitlement* e = admit.mutable_entitlement();
  e->set_person(person.name());
  e->set_kind(courses::ENTITLEMENT_KIND_ADMISSION);
  e->add_course_kinds(courses::COURSE_KIND_INTEGRATION_GENERAL);
  e->set_units(700);
  *e->mutable_valid_from() = DateInDays(0);
  *e->mutable_valid_until() = DateInDays(365);
  auto bamf_courses =
      courses::CoursesService::NewStub(Connect(kCourses, "bamf-nuernberg"));
  courses::Entitlement entitlement;
  if (!Ok("admit",
          Call(*bamf_courses, &courses::CoursesService::Stub::RecordEntitlement,
               bamf, admit, &entitlement))) {
    return false;
  }
  std::cout << "admitted by BAMF\n";

  // 5. Book the seat for the case step, then read the case view.
  courses::CreateBookingRequest book;
  book.set_parent(course.name());
  book.set_request_id(RequestId());
  book.mutable_booking()->set_person(person.name());
  book.mutable_booking()->set_case_step(step.name());
  courses::Booking booking;
  if (!Ok("book",
          Call(*courses_stub, &courses::CoursesService::Stub::CreateBooking,
               kim, book, &booking))) {
    return false;
  }
  std::cout << "booking: " << booking.name() << " "
            << courses::BookingState_Name(booking.state()) << "\n";

  cases::GetCaseViewRequest get_view;
  get_view.set_name(opened.name());
  cases::CaseView view;
  if (!Ok("case view",
          Call(*cases_stub, &cases::CasesService::Stub::GetCaseView, kim,
               get_view, &view))) {
    return false;
  }
  std::cout << "case view: " << view.person().given_names() << " "
            << view.person().family_names() << ", born "
            << view.person().birth_date().year() << "\n";
  for (const cases::Step& s : view.steps()) {
    std::cout << "  step " << cases::StepKind_Name(s.kind()) << ": "
              << cases::StepState_Name(s.state()) << "\n";
  }

  // 6. Two deliberate mistakes. A person without a name and born in the
  // future: INVALID_ARGUMENT with one field violation per bad field.
  identity::CreatePersonRequest bad;
  bad.set_request_id(RequestId());
  bad.mutable_person()->add_names()->set_script("Latn");
  bad.mutable_person()->mutable_birth_date()->set_year(DateInDays(0).year() +
                                                       1);
  identity::Person not_created;
  if (!Refused(
          "bad person",
          Call(*identity_stub, &identity::IdentityService::Stub::CreatePerson,
               kim, bad, &not_created))) {
    return false;
  }
  // The same person booked twice into one course: a reason to act on.
  courses::CreateBookingRequest again = book;
  again.set_request_id(RequestId());
  courses::Booking not_booked;
  if (!Refused(
          "second booking",
          Call(*courses_stub, &courses::CoursesService::Stub::CreateBooking,
               kim, again, &not_booked))) {
    return false;
  }
  std::cout << "done\n";
  return true;
}

}  // namespace

int main() { return WalkThrough() ? 0 : 1; }
