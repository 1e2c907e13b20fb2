// The case view's person, residence and language summaries, through a real
// in-process server over mutual TLS, with a fake IdentityClient behind the
// production adapter (IdentityAccessChecker), on SQLite and PostgreSQL.
//
// Each summary field ends up in one of four states: filled; withheld (the
// caller may not see it); not delivered (it may, but identity did not
// supply it); or empty and unlisted (nothing is recorded).
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "lotse/courses/v1/events.pb.h"
#include "services/cases/service/identity_access_checker.h"
#include "tests/cases/service/cases_server_fixture.h"
#include "tests/support/fake_identity_client.h"

namespace lotse::cases {
namespace {

using type::v1::DATA_CATEGORY_CORE_IDENTITY;
using type::v1::DATA_CATEGORY_LANGUAGE;
using type::v1::DATA_CATEGORY_RESIDENCE_STATUS;

// Amina Haddad, 1991, with the Arabic spelling of her papers listed first:
// the view shows the Latin current name.
identity::v1::Person Amina(const std::string& name) {
  identity::v1::Person p;
  p.set_name(name);
  identity::v1::PersonName* arabic = p.add_names();
  arabic->set_given_names("أمينة");
  arabic->set_family_names("حداد");
  arabic->set_script("Arab");
  arabic->set_kind(identity::v1::NAME_KIND_CURRENT);
  identity::v1::PersonName* former = p.add_names();
  former->set_given_names("Amina");
  former->set_family_names("Saleh");
  former->set_kind(identity::v1::NAME_KIND_BIRTH);
  identity::v1::PersonName* latin = p.add_names();
  latin->set_given_names("Amina");
  latin->set_family_names("Haddad");
  latin->set_script("Latn");
  latin->set_kind(identity::v1::NAME_KIND_CURRENT);
  p.mutable_birth_date()->set_year(1991);
  return p;
}

identity::v1::ResidenceStatus Permit() {
  identity::v1::ResidenceStatus s;
  s.set_title_kind(identity::v1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT);
  s.mutable_valid_until()->set_year(2028);
  s.mutable_valid_until()->set_month(6);
  s.mutable_valid_until()->set_day(30);
  s.set_work_permission(type::v1::WORK_PERMISSION_PERMITTED);
  s.set_integration_course_obligation(true);
  s.set_recording_agency("agencies/abh-koeln");
  s.set_current(true);
  return s;
}

std::set<std::string> Fields(
    const google::protobuf::RepeatedPtrField<type::v1::Withheld>& list) {
  std::set<std::string> out;
  for (const auto& w : list) out.insert(w.field());
  return out;
}
std::set<std::string> Fields(
    const google::protobuf::RepeatedPtrField<type::v1::NotDelivered>& list) {
  std::set<std::string> out;
  for (const auto& n : list) out.insert(n.field());
  return out;
}

const std::set<std::string> kPersonFields = {
    "person.given_names", "person.family_names", "person.birth_date"};

class CaseViewTest : public CasesServerTest {
 protected:
  CaseViewTest() {
    auto client = std::make_unique<::lotse::testing::FakeIdentityClient>();
    // Here the core identity, too, is read only where a test grants it.
    client->set_standing_by_default(false);
    identity_ = client.get();
    identity_->AddPerson(Amina(kPerson));
    identity_->AddPerson(Amina(kOtherPerson));
    checker_ = std::make_unique<IdentityAccessChecker>(std::move(client));
  }

  AccessChecker* Checker() override { return checker_.get(); }

  void SetUp() override {
    CasesServerTest::SetUp();
    if (HasFatalFailure()) return;
    // Opening a case needs standing: the owner may read the person.
    identity_->Allow(kKim, DATA_CATEGORY_CORE_IDENTITY);
    ASSERT_TRUE(Open("kim-koeln", kPerson, &case_).ok());
  }

  grpc::Status View(const std::string& as, const std::string& name,
                    v1::CaseView* out, int seconds = 10) {
    grpc::ClientContext context;
    Prepare(&context, seconds);
    v1::GetCaseViewRequest req;
    req.set_name(name);
    return As(as)->GetCaseView(&context, req, out);
  }

  // A course event about kPerson that occurred `minute` minutes into the
  // test's day.
  void Course(const std::string& id, int minute, google::protobuf::Message* m,
              courses::v1::BookingContext* ctx, const std::string& booking) {
    ctx->set_booking(booking);
    ctx->set_course(booking.substr(0, booking.find("/bookings/")));
    ctx->set_person(kPerson);
    ctx->set_provider_agency(kVhs);
    ctx->set_booking_agency(kKim);
    ctx->set_target_level(type::v1::CEFR_LEVEL_B1);
    lotse::events::v1::Event e;
    e.set_event_id(id);
    e.set_source("courses");
    e.mutable_occurred_at()->set_seconds(1780000000 + 60 * minute);
    e.mutable_payload()->PackFrom(*m);
    auto applied = service_->ApplyEvent(e);
    ASSERT_TRUE(applied.ok()) << applied.status();
  }

  ::lotse::testing::FakeIdentityClient* identity_ = nullptr;
  std::unique_ptr<IdentityAccessChecker> checker_;
  v1::Case case_;
};

TEST_P(CaseViewTest, OwnerAllowedSeesPersonAndResidence) {
  identity_->Allow(kKim, DATA_CATEGORY_RESIDENCE_STATUS);
  identity_->SetResidence(kPerson, Permit());
  v1::CaseView view;
  grpc::Status s = View("kim-koeln", case_.name(), &view);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(view.person().person(), kPerson);
  EXPECT_EQ(view.person().given_names(), "Amina");
  EXPECT_EQ(view.person().family_names(), "Haddad");
  EXPECT_EQ(view.person().birth_date().year(), 1991);
  ASSERT_TRUE(view.has_residence());
  EXPECT_EQ(view.residence().title_kind(),
            identity::v1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT);
  EXPECT_EQ(view.residence().valid_until().year(), 2028);
  EXPECT_EQ(view.residence().work_permission(),
            type::v1::WORK_PERMISSION_PERMITTED);
  EXPECT_TRUE(view.residence().integration_course_obligation());
  const std::set<std::string> withheld = Fields(view.withheld());
  for (const std::string& f : kPersonFields) EXPECT_EQ(withheld.count(f), 0u);
  EXPECT_EQ(withheld.count("residence"), 0u);
  EXPECT_TRUE(view.not_delivered().empty());
}

TEST_P(CaseViewTest, WithheldPartsAreMarkedAndNeverRead) {
  // A welfare organisation a step was referred to, allowed nothing: the
  // summaries are withheld and identity is not asked for them.
  v1::Step step;
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_COUNSELLING,
                    kCaritas, &step)
                  .ok());
  identity_->SetResidence(kPerson, Permit());
  v1::CaseView view;
  ASSERT_TRUE(View("caritas-koeln", case_.name(), &view).ok());
  EXPECT_TRUE(view.person().given_names().empty());
  EXPECT_FALSE(view.has_residence());
  std::set<std::string> withheld = Fields(view.withheld());
  for (const std::string& f : kPersonFields) EXPECT_EQ(withheld.count(f), 1u);
  EXPECT_EQ(withheld.count("residence"), 1u);
  for (const auto& w : view.withheld()) {
    EXPECT_EQ(w.reason(), type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS);
  }
  EXPECT_TRUE(view.not_delivered().empty());
  EXPECT_EQ(identity_->person_reads(), 0);
  EXPECT_EQ(identity_->residence_reads(), 0);

  // Core identity only: names shown, residence withheld and not read.
  identity_->Allow(kCaritas, DATA_CATEGORY_CORE_IDENTITY);
  ASSERT_TRUE(View("caritas-koeln", case_.name(), &view).ok());
  EXPECT_EQ(view.person().family_names(), "Haddad");
  EXPECT_FALSE(view.has_residence());
  withheld = Fields(view.withheld());
  for (const std::string& f : kPersonFields) EXPECT_EQ(withheld.count(f), 0u);
  EXPECT_EQ(withheld.count("residence"), 1u);
  EXPECT_EQ(identity_->person_reads(), 1);
  EXPECT_EQ(identity_->residence_reads(), 0);
}

TEST_P(CaseViewTest, IdentityNotAnsweringInTimeIsNotDeliveredNotWithheld) {
  identity_->Allow(kKim, DATA_CATEGORY_RESIDENCE_STATUS);
  identity_->SetResidence(kPerson, Permit());
  identity_->set_reads_hang(true);
  // The view still arrives within the caller's deadline.
  const absl::Time start = absl::Now();
  v1::CaseView view;
  grpc::Status s = View("kim-koeln", case_.name(), &view, /*seconds=*/2);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(view.person().given_names().empty());
  EXPECT_FALSE(view.has_residence());
  std::set<std::string> expected = kPersonFields;
  expected.insert("residence");
  EXPECT_EQ(Fields(view.not_delivered()), expected);
  for (const auto& n : view.not_delivered()) {
    EXPECT_EQ(n.reason(), type::v1::NOT_DELIVERED_REASON_SOURCE_UNAVAILABLE);
    EXPECT_EQ(n.category(), n.field() == "residence"
                                ? DATA_CATEGORY_RESIDENCE_STATUS
                                : DATA_CATEGORY_CORE_IDENTITY);
  }
  const std::set<std::string> withheld = Fields(view.withheld());
  for (const std::string& f : expected) EXPECT_EQ(withheld.count(f), 0u);

  // Identity wholly down: no access decision, so the parts are withheld
  // (CHECK_UNAVAILABLE, fail closed), not merely undelivered.
  identity_->set_reads_hang(false);
  identity_->set_unavailable(true);
  ASSERT_TRUE(View("kim-koeln", case_.name(), &view).ok());
  EXPECT_TRUE(view.not_delivered().empty());
  const std::set<std::string> closed = Fields(view.withheld());
  for (const std::string& f : expected) EXPECT_EQ(closed.count(f), 1u) << f;
  for (const auto& w : view.withheld()) {
    EXPECT_EQ(w.reason(), type::v1::ACCESS_DENIAL_REASON_CHECK_UNAVAILABLE);
  }
}

TEST_P(CaseViewTest, NoResidenceStatusIsNotRecordedNotMissing) {
  identity_->Allow(kKim, DATA_CATEGORY_RESIDENCE_STATUS);
  v1::CaseView view;
  ASSERT_TRUE(View("kim-koeln", case_.name(), &view).ok());
  EXPECT_EQ(view.person().given_names(), "Amina");
  EXPECT_FALSE(view.has_residence());
  EXPECT_EQ(Fields(view.withheld()).count("residence"), 0u);
  EXPECT_TRUE(view.not_delivered().empty());
  EXPECT_EQ(identity_->residence_reads(), 1);
}

TEST_P(CaseViewTest, LanguageSummaryFollowsTheCourseEventsOfThePerson) {
  identity_->Allow(kKim, DATA_CATEGORY_LANGUAGE);
  // A DTZ aimed at B1 certified A2; a later booking was cancelled; the
  // newest booking is running.
  courses::v1::CourseBooked b1;
  Course("ev-b1", 1, &b1, b1.mutable_context(), "courses/k1/bookings/b1");
  courses::v1::CourseResultRecorded r1;
  r1.set_passed(false);
  r1.set_achieved_level(type::v1::CEFR_LEVEL_A2);
  Course("ev-r1", 2, &r1, r1.mutable_context(), "courses/k1/bookings/b1");
  courses::v1::CourseBooked b2;
  Course("ev-b2", 3, &b2, b2.mutable_context(), "courses/k2/bookings/b2");
  courses::v1::BookingCancelled c2;
  Course("ev-c2", 4, &c2, c2.mutable_context(), "courses/k2/bookings/b2");
  courses::v1::CourseBooked b3;
  Course("ev-b3", 5, &b3, b3.mutable_context(), "courses/k3/bookings/b3");
  courses::v1::CourseStarted s3;
  Course("ev-s3", 6, &s3, s3.mutable_context(), "courses/k3/bookings/b3");
  ASSERT_FALSE(HasFatalFailure());

  v1::CaseView view;
  ASSERT_TRUE(View("kim-koeln", case_.name(), &view).ok());
  EXPECT_EQ(view.language().certified_level(), type::v1::CEFR_LEVEL_A2);
  EXPECT_EQ(view.language().certified_time().seconds(), 1780000000 + 120);
  EXPECT_EQ(view.language().current_booking(), "courses/k3/bookings/b3");

  // The case is closed and a new one opened: it holds none of these
  // events, yet its view still knows the person's German.
  v1::Case closed = case_;
  {
    grpc::ClientContext context;
    Prepare(&context);
    v1::CloseCaseRequest close;
    close.set_name(case_.name());
    close.set_etag(case_.etag());
    close.set_closing_reason(v1::CASE_CLOSING_REASON_MOVED_AWAY);
    grpc::Status s = As("kim-koeln")->CloseCase(&context, close, &closed);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  v1::Case next;
  ASSERT_TRUE(Open("kim-koeln", kPerson, &next).ok());
  ASSERT_TRUE(View("kim-koeln", next.name(), &view).ok());
  EXPECT_TRUE(view.unassigned_activities().empty());
  EXPECT_EQ(view.language().certified_level(), type::v1::CEFR_LEVEL_A2);
  EXPECT_EQ(view.language().current_booking(), "courses/k3/bookings/b3");

  // The running booking ends: no current booking, the level stays.
  courses::v1::BookingCancelled c3;
  Course("ev-c3", 7, &c3, c3.mutable_context(), "courses/k3/bookings/b3");
  ASSERT_TRUE(View("kim-koeln", next.name(), &view).ok());
  EXPECT_EQ(view.language().certified_level(), type::v1::CEFR_LEVEL_A2);
  EXPECT_TRUE(view.language().current_booking().empty());
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(CaseViewTest);

}  // namespace
}  // namespace lotse::cases
