// The data lifecycle RPCs of identity through a real in-process mTLS server,
// on SQLite and PostgreSQL: legal holds, erasure of a person with its
// per-service status, and the revisions a correction keeps. kim-koeln
// (KOMMUNE) owns case cases/c1 of the test's person; kim-bonn (KOMMUNE)
// owns nothing; dsb-nrw is the data-protection officer; jobcenter-koeln is
// a domain that decides neither holds nor erasures.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/api/time.h"
#include "common/events/outbox.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/person_keys.h"
#include "common/lifecycle/retention.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/events.pb.h"
#include "services/identity/service/relation_events.h"
#include "services/identity/store/relation_store.h"
#include "tests/identity/service/identity_server_fixture.h"
#include "tests/support/audit_trail.h"

namespace lotse::identity {
namespace {

using ::lotse::identity::v1::IdentityService;
using ::lotse::identity::v1::LegalHold;
using ::lotse::identity::v1::Person;
using ::lotse::identity::v1::ServiceErasure;
using ::lotse::testing::Reason;
using ::lotse::testing::ViolatedFields;

std::map<std::string, std::string> Metadata(const grpc::Status& status) {
  std::map<std::string, std::string> out;
  google::rpc::Status rich;
  if (!rich.ParseFromString(status.error_details())) return out;
  for (const auto& any : rich.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) {
      for (const auto& [k, v] : info.metadata()) out[k] = v;
    }
  }
  return out;
}

type::v1::Date DaysFromToday(int days) {
  const absl::CivilDay day =
      absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()) + days;
  type::v1::Date date;
  date.set_year(static_cast<int32_t>(day.year()));
  date.set_month(day.month());
  date.set_day(day.day());
  return date;
}

Person Svetlana() {
  Person person;
  v1::PersonName* name = person.add_names();
  name->set_given_names("Svetlana");
  name->set_family_names("Petrenko-Lindqvist");
  name->set_script("Latn");
  name->set_kind(v1::NAME_KIND_CURRENT);
  person.mutable_birth_date()->set_year(1979);
  person.mutable_birth_date()->set_month(11);
  person.mutable_birth_date()->set_day(2);
  person.set_sex(v1::SEX_FEMALE);
  person.add_nationality_codes("UA");
  person.set_nationality_status(v1::NATIONALITY_STATUS_KNOWN);
  person.mutable_contact()->set_email("s.petrenko@example.org");
  return person;
}

class LifecycleServiceTest : public IdentityServerTest {
 protected:
  void SetUp() override {
    IdentityServerTest::SetUp();
    if (HasFatalFailure()) return;
    auto rules = lifecycle::RetentionRules::Load(
        absl::StrCat(lotse::testing::SourceDir(), "/config/retention.conf"));
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    service_->EnableLifecycle({"cases", "courses", "placement"}, &rules_);
    for (const auto& [id, domain] :
         std::vector<std::pair<std::string, type::v1::LegalDomain>>{
             {"kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE},
             {"kim-bonn", type::v1::LEGAL_DOMAIN_KOMMUNE},
             {"jobcenter-koeln", type::v1::LEGAL_DOMAIN_JOBCENTER},
             {"dsb-nrw", type::v1::LEGAL_DOMAIN_DATA_PROTECTION}}) {
      v1::RegisterAgencyRequest r;
      r.set_request_id(absl::StrCat("r-", id));
      r.set_agency_id(id);
      r.mutable_agency()->set_display_name(absl::StrCat("Display ", id));
      r.mutable_agency()->set_legal_domain(domain);
      if (domain == type::v1::LEGAL_DOMAIN_KOMMUNE) {
        r.mutable_agency()->set_municipality_code(
            id == "kim-koeln" ? "05315000" : "05314000");
      }
      r.mutable_agency()->set_certificate_identity(id);
      v1::Agency out;
      grpc::Status s =
          Call("lotse-admin", &IdentityService::Stub::RegisterAgency, r, &out);
      ASSERT_TRUE(s.ok()) << id << ": " << s.error_message();
    }
    v1::CreatePersonRequest create;
    create.set_request_id("create-svetlana");
    *create.mutable_person() = Svetlana();
    ASSERT_TRUE(Call("kim-koeln", &IdentityService::Stub::CreatePerson, create,
                     &person_)
                    .ok());
    ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                  return GrantRelation(tx, IdOf(person_.name()), "kim-koeln",
                                       Relation::kCaseOwner, "cases/c1");
                }).ok());
  }

  void TearDown() override {
    if (server_) lotse::testing::ExpectBothChainsIntact(db());
    IdentityServerTest::TearDown();
  }

  static std::string IdOf(const std::string& name) {
    return name.substr(std::string("persons/").size());
  }

  template <typename Request, typename Response, typename Method>
  grpc::Status Call(const std::string& as, Method method,
                    const Request& request, Response* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    context.AddMetadata("x-lotse-actor", "cw-7");
    context.AddMetadata("x-lotse-purpose", "case-management");
    auto stub = As(as);
    return ((*stub).*method)(&context, request, response);
  }

  v1::PlaceLegalHoldRequest HoldRequest(const std::string& request_id,
                                        const std::string& subject,
                                        const std::string& person = "") {
    v1::PlaceLegalHoldRequest r;
    r.set_request_id(request_id);
    r.mutable_hold()->set_subject(subject);
    r.mutable_hold()->set_person(person);
    r.mutable_hold()->set_reason("Verfahren 12 K 345/26 am VG Köln");
    *r.mutable_hold()->mutable_end_date() = DaysFromToday(30);
    return r;
  }

  grpc::Status Place(const std::string& as, const v1::PlaceLegalHoldRequest& r,
                     LegalHold* out) {
    return Call(as, &IdentityService::Stub::PlaceLegalHold, r, out);
  }

  grpc::Status Erase(const std::string& as, const std::string& name,
                     const std::string& request_id, v1::Erasure* out) {
    v1::ErasePersonRequest r;
    r.set_request_id(request_id);
    r.set_name(name);
    r.set_reason("Art. 17 request of 2026-11-30");
    return Call(as, &IdentityService::Stub::ErasePerson, r, out);
  }

  grpc::Status Status(const std::string& as, const std::string& name,
                      v1::Erasure* out) {
    v1::GetErasureStatusRequest r;
    r.set_name(name);
    return Call(as, &IdentityService::Stub::GetErasureStatus, r, out);
  }

  grpc::Status ListHolds(const std::string& as, const std::string& person,
                         bool include_inactive,
                         v1::ListLegalHoldsResponse* out) {
    v1::ListLegalHoldsRequest r;
    r.set_person(person);
    r.set_include_inactive(include_inactive);
    return Call(as, &IdentityService::Stub::ListLegalHolds, r, out);
  }

  absl::StatusOr<bool> Held(const std::string& person_id) {
    bool held = false;
    absl::Status s = storage::RunInTransaction(
        db(), [&](storage::Transaction& tx) -> absl::Status {
          absl::StatusOr<bool> h =
              lifecycle::IsPersonHeld(tx, person_id, absl::Now());
          if (!h.ok()) return h.status();
          held = *h;
          return absl::OkStatus();
        });
    if (!s.ok()) return s;
    return held;
  }

  // The payloads of type `Event` in identity's outbox, opened where they
  // are sealed; events whose person's key was shredded are left out.
  template <typename Event>
  std::vector<Event> Sent() {
    std::vector<Event> out;
    EXPECT_TRUE(storage::RunInTransaction(
                    db(),
                    [&](storage::Transaction& tx) -> absl::Status {
                      out.clear();
                      absl::StatusOr<storage::Rows> rows =
                          tx.Query("SELECT seq FROM event_outbox ORDER BY seq");
                      if (!rows.ok()) return rows.status();
                      for (const storage::Row& row : *rows) {
                        absl::StatusOr<int64_t> seq = row.GetInt(0);
                        if (!seq.ok()) return seq.status();
                        absl::StatusOr<lotse::events::v1::Event> event =
                            events::ReadOutboxEvent(tx, *seq);
                        if (absl::IsNotFound(event.status())) continue;
                        if (!event.ok()) return event.status();
                        Event payload;
                        if (event->payload().UnpackTo(&payload)) {
                          out.push_back(payload);
                        }
                      }
                      return absl::OkStatus();
                    })
                    .ok());
    return out;
  }

  lifecycle::RetentionRules rules_;
  Person person_;
};

TEST_P(LifecycleServiceTest, DataProtectionPlacesListsAndReleasesAHold) {
  LegalHold hold;
  ASSERT_TRUE(Place("dsb-nrw", HoldRequest("h1", person_.name()), &hold).ok());
  EXPECT_EQ(hold.subject(), person_.name());
  EXPECT_EQ(hold.person(), person_.name());
  EXPECT_EQ(hold.placing_agency(), "agencies/dsb-nrw");
  EXPECT_EQ(hold.state(), LegalHold::STATE_ACTIVE);
  EXPECT_EQ(Held(IdOf(person_.name())).value_or(false), true);

  // The same request again answers with the same hold.
  LegalHold again;
  ASSERT_TRUE(Place("dsb-nrw", HoldRequest("h1", person_.name()), &again).ok());
  EXPECT_EQ(again.name(), hold.name());

  v1::ListLegalHoldsResponse listed;
  ASSERT_TRUE(ListHolds("kim-koeln", person_.name(), false, &listed).ok());
  ASSERT_EQ(listed.holds_size(), 1);
  EXPECT_EQ(listed.holds(0).reason(), "Verfahren 12 K 345/26 am VG Köln");

  v1::ReleaseLegalHoldRequest release;
  release.set_name(hold.name());
  release.set_reason("Verfahren beendet");
  LegalHold released;
  grpc::Status s = Call("kim-koeln", &IdentityService::Stub::ReleaseLegalHold,
                        release, &released);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "NOT_HOLD_OWNER");
  ASSERT_TRUE(Call("dsb-nrw", &IdentityService::Stub::ReleaseLegalHold, release,
                   &released)
                  .ok());
  EXPECT_EQ(released.state(), LegalHold::STATE_RELEASED);
  EXPECT_EQ(released.releasing_agency(), "agencies/dsb-nrw");
  EXPECT_EQ(released.release_reason(), "Verfahren beendet");
  EXPECT_EQ(Held(IdOf(person_.name())).value_or(true), false);

  s = Call("dsb-nrw", &IdentityService::Stub::ReleaseLegalHold, release,
           &released);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(s), "LEGAL_HOLD_INACTIVE");
  release.set_name("legalHolds/nosuchhold");
  s = Call("dsb-nrw", &IdentityService::Stub::ReleaseLegalHold, release,
           &released);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), "LEGAL_HOLD_NOT_FOUND");

  ASSERT_TRUE(ListHolds("dsb-nrw", person_.name(), false, &listed).ok());
  EXPECT_EQ(listed.holds_size(), 0);
  ASSERT_TRUE(ListHolds("dsb-nrw", "", true, &listed).ok());
  ASSERT_EQ(listed.holds_size(), 1);
  EXPECT_EQ(listed.holds(0).state(), LegalHold::STATE_RELEASED);

  const std::vector<v1::LegalHoldPlaced> placed = Sent<v1::LegalHoldPlaced>();
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].hold().name(), hold.name());
  const std::vector<v1::LegalHoldReleased> ended =
      Sent<v1::LegalHoldReleased>();
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_TRUE(ended[0].hold().has_release_time());
  EXPECT_FALSE(AuditOf(person_.name()).empty());
}

TEST_P(LifecycleServiceTest, CaseOwnerHoldsItsCaseOthersAreRefused) {
  LegalHold hold;
  ASSERT_TRUE(
      Place("kim-koeln", HoldRequest("c1", "cases/c1", person_.name()), &hold)
          .ok());
  EXPECT_EQ(hold.subject(), "cases/c1");
  EXPECT_EQ(Held(IdOf(person_.name())).value_or(false), true);

  // Another case of the person is not kim-koeln's.
  grpc::Status s =
      Place("kim-koeln", HoldRequest("c2", "cases/c2", person_.name()), &hold);
  EXPECT_EQ(Reason(s), "NOT_CASE_OWNER");
  // The case belongs to another person.
  v1::CreatePersonRequest other;
  other.set_request_id("create-other");
  *other.mutable_person() = Svetlana();
  other.mutable_person()->mutable_names(0)->set_given_names("Oksana");
  other.mutable_person()->mutable_birth_date()->set_year(1991);
  other.set_confirm_new_person(true);
  Person oksana;
  ASSERT_TRUE(
      Call("kim-koeln", &IdentityService::Stub::CreatePerson, other, &oksana)
          .ok());
  s = Place("dsb-nrw", HoldRequest("c3", "cases/c1", oksana.name()), &hold);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(s), std::set<std::string>{"hold.person"});

  // No owner: the same answer whether or not the person exists.
  grpc::Status existing =
      Place("kim-bonn", HoldRequest("b1", person_.name()), &hold);
  grpc::Status unknown =
      Place("kim-bonn", HoldRequest("b2", "persons/nobody"), &hold);
  EXPECT_EQ(existing.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(existing), "NOT_CASE_OWNER");
  EXPECT_EQ(unknown.error_code(), existing.error_code());
  EXPECT_EQ(unknown.error_message(), existing.error_message());
  s = Place("jobcenter-koeln", HoldRequest("j1", person_.name()), &hold);
  EXPECT_EQ(Reason(s), "WRONG_LEGAL_DOMAIN");
  // The data-protection officer is told the person is unknown.
  s = Place("dsb-nrw", HoldRequest("d1", "persons/nobody"), &hold);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), "PERSON_NOT_FOUND");

  v1::ListLegalHoldsResponse listed;
  s = ListHolds("kim-bonn", person_.name(), true, &listed);
  EXPECT_EQ(Reason(s), "NOT_CASE_OWNER");
  // Without a person, an agency sees the holds it placed.
  ASSERT_TRUE(ListHolds("kim-bonn", "", true, &listed).ok());
  EXPECT_EQ(listed.holds_size(), 0);
  ASSERT_TRUE(ListHolds("kim-koeln", "", true, &listed).ok());
  EXPECT_EQ(listed.holds_size(), 1);
}

TEST_P(LifecycleServiceTest, BadHoldsNameEveryFieldAndWriteNothing) {
  v1::PlaceLegalHoldRequest r;
  r.mutable_hold()->set_subject("cases/c1");
  *r.mutable_hold()->mutable_end_date() = DaysFromToday(-1);
  LegalHold hold;
  grpc::Status s = Place("dsb-nrw", r, &hold);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(s),
            (std::set<std::string>{"request_id", "hold.person", "hold.reason",
                                   "hold.end_date"}));

  r = HoldRequest("x1", "people/x");
  r.mutable_hold()->set_reason(std::string(501, 'a'));
  *r.mutable_hold()->mutable_end_date() = DaysFromToday(11 * 366);
  s = Place("dsb-nrw", r, &hold);
  EXPECT_EQ(
      ViolatedFields(s),
      (std::set<std::string>{"hold.subject", "hold.reason", "hold.end_date"}));
  r = HoldRequest("x2", person_.name());
  r.mutable_hold()->mutable_end_date()->set_month(2);
  r.mutable_hold()->mutable_end_date()->set_day(31);
  s = Place("dsb-nrw", r, &hold);
  EXPECT_EQ(ViolatedFields(s), std::set<std::string>{"hold.end_date"});

  v1::ReleaseLegalHoldRequest release;
  release.set_name("holds/x");
  s = Call("dsb-nrw", &IdentityService::Stub::ReleaseLegalHold, release, &hold);
  EXPECT_EQ(ViolatedFields(s), (std::set<std::string>{"name", "reason"}));
  v1::ListLegalHoldsRequest list;
  list.set_page_size(-1);
  list.set_person("nobody");
  v1::ListLegalHoldsResponse listed;
  s = Call("dsb-nrw", &IdentityService::Stub::ListLegalHolds, list, &listed);
  EXPECT_EQ(ViolatedFields(s), (std::set<std::string>{"page_size", "person"}));

  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_legal_holds"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM lifecycle_holds"), 0);
  EXPECT_TRUE(Sent<v1::LegalHoldPlaced>().empty());
}

TEST_P(LifecycleServiceTest, HeldPersonIsNotErasedAndSaysWhy) {
  LegalHold hold;
  ASSERT_TRUE(
      Place("kim-koeln", HoldRequest("c1", "cases/c1", person_.name()), &hold)
          .ok());
  v1::Erasure erasure;
  grpc::Status s = Erase("dsb-nrw", person_.name(), "e1", &erasure);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(s), "LEGAL_HOLD");
  EXPECT_EQ(Metadata(s)["hold"], hold.name());
  const type::v1::Date end = DaysFromToday(30);
  EXPECT_EQ(
      Metadata(s)["end_date"],
      absl::StrFormat("%04d-%02d-%02d", end.year(), end.month(), end.day()));
  Person still;
  v1::GetPersonRequest get;
  get.set_name(person_.name());
  EXPECT_TRUE(
      Call("kim-koeln", &IdentityService::Stub::GetPerson, get, &still).ok());
  EXPECT_TRUE(Sent<v1::PersonErased>().empty());
}

TEST_P(LifecycleServiceTest, ErasureRemovesThePersonAndTracksEachService) {
  // Data in every table identity keeps about a person.
  v1::UpdatePersonRequest update;
  *update.mutable_person() = person_;
  update.mutable_person()->set_birth_place("Charkiw");
  update.mutable_update_mask()->add_paths("birth_place");
  Person updated;
  ASSERT_TRUE(
      Call("kim-koeln", &IdentityService::Stub::UpdatePerson, update, &updated)
          .ok());
  v1::RecordConsentRequest consent;
  consent.set_request_id("consent-1");
  consent.set_parent(person_.name());
  consent.mutable_consent()->add_categories(type::v1::DATA_CATEGORY_LANGUAGE);
  consent.mutable_consent()->set_recipient_legal_domain(
      type::v1::LEGAL_DOMAIN_JOBCENTER);
  consent.mutable_consent()->add_purposes("counselling");
  consent.mutable_consent()->mutable_evidence()->set_form(
      v1::CONSENT_FORM_WRITTEN);
  consent.mutable_consent()->mutable_evidence()->set_document_reference(
      "Akte 4711");
  *consent.mutable_consent()->mutable_evidence()->mutable_declare_time() =
      api::ToTimestamp(absl::Now() - absl::Hours(1));
  v1::Consent recorded;
  ASSERT_TRUE(Call("kim-koeln", &IdentityService::Stub::RecordConsent, consent,
                   &recorded)
                  .ok());

  // A non-owner cannot, the case owner can.
  v1::Erasure erasure;
  grpc::Status s = Erase("kim-bonn", person_.name(), "e0", &erasure);
  EXPECT_EQ(Reason(s), "NOT_CASE_OWNER");
  ASSERT_TRUE(Erase("kim-koeln", person_.name(), "e1", &erasure).ok());
  EXPECT_EQ(erasure.name(), absl::StrCat(person_.name(), "/erasure"));
  EXPECT_EQ(erasure.requesting_agency(), "agencies/kim-koeln");
  ASSERT_EQ(erasure.services_size(), 4);
  EXPECT_EQ(erasure.services(0).service(), "identity");
  // The consent is kept as proof, by rule.
  EXPECT_EQ(erasure.services(0).state(), ServiceErasure::STATE_KEPT_BY_RULE);
  ASSERT_EQ(erasure.services(0).kept_size(), 1);
  EXPECT_EQ(erasure.services(0).kept(0).resource_kind(), "consent");
  EXPECT_EQ(erasure.services(0).kept(0).record_count(), 1);
  EXPECT_EQ(erasure.services(1).service(), "cases");
  EXPECT_EQ(erasure.services(1).state(), ServiceErasure::STATE_PENDING);
  EXPECT_FALSE(erasure.complete());

  // A retry answers with the erasure; a new request is refused.
  v1::Erasure again;
  ASSERT_TRUE(Erase("kim-koeln", person_.name(), "e1", &again).ok());
  EXPECT_EQ(again.name(), erasure.name());
  s = Erase("dsb-nrw", person_.name(), "e2", &again);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(s), "PERSON_ERASED");

  const std::string id = IdOf(person_.name());
  for (const char* table :
       {"identity_person_keys", "identity_person_revisions",
        "identity_relations", "identity_person_agency_ids"}) {
    EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM ", table,
                                 " WHERE person_id = '", id, "'")),
              0)
        << table;
  }
  // Only the kept consent, withdrawn, stays.
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM identity_consents WHERE "
                               "person_id = '",
                               id, "' AND withdraw_us IS NOT NULL")),
            1);
  // The trail of the person keeps the erasure, with its reason.
  bool audited = false;
  for (const audit::AuditRecord& r : AuditOf(person_.name())) {
    if (r.reason == "ERASED:Art. 17 request of 2026-11-30") audited = true;
  }
  EXPECT_TRUE(audited);
  const std::vector<v1::PersonErased> erased = Sent<v1::PersonErased>();
  ASSERT_EQ(erased.size(), 1u);
  EXPECT_EQ(erased[0].person(), person_.name());
  bool shredded = false;
  ASSERT_TRUE(
      storage::RunInTransaction(db(),
                                [&](storage::Transaction& tx) -> absl::Status {
                                  absl::StatusOr<bool> s =
                                      lifecycle::IsPersonShredded(tx, id);
                                  if (!s.ok()) return s.status();
                                  shredded = *s;
                                  return absl::OkStatus();
                                })
          .ok());
  EXPECT_TRUE(shredded);

  // Every read answers as for an unknown person.
  v1::GetPersonRequest get;
  get.set_name(person_.name());
  Person read;
  s = Call("kim-koeln", &IdentityService::Stub::GetPerson, get, &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::GetPersonRequest nobody;
  nobody.set_name("persons/nobody");
  grpc::Status unknown =
      Call("kim-koeln", &IdentityService::Stub::GetPerson, nobody, &read);
  EXPECT_EQ(s.error_message(), unknown.error_message());
  v1::ListPersonsResponse listed;
  ASSERT_TRUE(Call("kim-koeln", &IdentityService::Stub::ListPersons,
                   v1::ListPersonsRequest(), &listed)
                  .ok());
  EXPECT_EQ(listed.persons_size(), 0);
  v1::SearchPersonsRequest search;
  search.set_name_query("Svetlana Petrenko-Lindqvist");
  v1::SearchPersonsResponse found;
  ASSERT_TRUE(
      Call("kim-koeln", &IdentityService::Stub::SearchPersons, search, &found)
          .ok());
  EXPECT_EQ(found.results_size(), 0);
  v1::ListConsentsRequest consents;
  consents.set_parent(person_.name());
  v1::ListConsentsResponse consent_list;
  s = Call("kim-koeln", &IdentityService::Stub::ListConsents, consents,
           &consent_list);
  EXPECT_FALSE(s.ok());
  // The same data registered again is a new person, not a duplicate.
  v1::CreatePersonRequest create;
  create.set_request_id("create-again");
  *create.mutable_person() = Svetlana();
  Person fresh;
  ASSERT_TRUE(
      Call("kim-koeln", &IdentityService::Stub::CreatePerson, create, &fresh)
          .ok());
  EXPECT_NE(fresh.name(), person_.name());

  // The other services report; the status follows.
  for (const std::string service : {"cases", "courses", "placement"}) {
    v1::ErasureReported report;
    report.set_person(person_.name());
    report.set_service(service);
    report.set_state(ServiceErasure::STATE_DONE);
    report.set_erased_records(3);
    lotse::events::v1::Event event;
    event.set_source(service);
    event.mutable_payload()->PackFrom(report);
    ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                  return ApplyRelationEvent(tx, event);
                }).ok());
  }
  v1::Erasure status;
  ASSERT_TRUE(Status("kim-koeln", erasure.name(), &status).ok());
  EXPECT_TRUE(status.complete());
  EXPECT_EQ(status.services(2).state(), ServiceErasure::STATE_DONE);
  EXPECT_EQ(status.services(2).erased_records(), 3);
  EXPECT_TRUE(status.services(2).has_report_time());
  s = Status("kim-bonn", erasure.name(), &status);
  EXPECT_EQ(Reason(s), "NOT_CASE_OWNER");
  ASSERT_TRUE(Status("dsb-nrw", erasure.name(), &status).ok());
  // Relations told afterwards about the erased person are not recorded.
  EXPECT_EQ(Count(absl::StrCat(
                "SELECT COUNT(*) FROM identity_relations WHERE person_id = '",
                id, "'")),
            0);
}

TEST_P(LifecycleServiceTest, ErasureRefusesUnknownMergedAndBadRequests) {
  v1::Erasure erasure;
  grpc::Status s = Erase("dsb-nrw", "persons/nobody", "u1", &erasure);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), "PERSON_NOT_FOUND");
  s = Erase("kim-bonn", "persons/nobody", "u2", &erasure);
  EXPECT_EQ(Reason(s), "NOT_CASE_OWNER");
  s = Erase("jobcenter-koeln", person_.name(), "u3", &erasure);
  EXPECT_EQ(Reason(s), "WRONG_LEGAL_DOMAIN");

  v1::ErasePersonRequest bad;
  bad.set_name("people/x");
  bad.set_reason(std::string(501, 'r'));
  s = Call("dsb-nrw", &IdentityService::Stub::ErasePerson, bad, &erasure);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(s),
            (std::set<std::string>{"request_id", "name", "reason"}));

  s = Status("dsb-nrw", absl::StrCat(person_.name(), "/erasure"), &erasure);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), "ERASURE_NOT_FOUND");
  s = Status("dsb-nrw", person_.name(), &erasure);
  EXPECT_EQ(ViolatedFields(s), std::set<std::string>{"name"});

  // A report about an erasure identity does not hold is refused (the relay
  // retries it).
  v1::ErasureReported report;
  report.set_person(person_.name());
  report.set_service("cases");
  report.set_state(ServiceErasure::STATE_DONE);
  lotse::events::v1::Event event;
  event.mutable_payload()->PackFrom(report);
  absl::Status applied = storage::RunInTransaction(
      db(),
      [&](storage::Transaction& tx) { return ApplyRelationEvent(tx, event); });
  EXPECT_EQ(applied.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_erasures"), 0);
  EXPECT_TRUE(Sent<v1::PersonErased>().empty());
}

TEST_P(LifecycleServiceTest, ErasingASurvivorErasesWhatWasMergedIntoIt) {
  v1::CreatePersonRequest create;
  create.set_request_id("create-dup");
  *create.mutable_person() = Svetlana();
  create.set_confirm_new_person(true);
  Person duplicate;
  ASSERT_TRUE(Call("kim-koeln", &IdentityService::Stub::CreatePerson, create,
                   &duplicate)
                  .ok());
  v1::MergePersonsRequest merge;
  merge.set_request_id("merge-1");
  merge.set_survivor(person_.name());
  merge.set_survivor_etag(person_.etag());
  merge.set_merged(duplicate.name());
  merge.set_merged_etag(duplicate.etag());
  merge.set_justification("same person");
  Person survivor;
  ASSERT_TRUE(
      Call("kim-koeln", &IdentityService::Stub::MergePersons, merge, &survivor)
          .ok());
  v1::Erasure erasure;
  grpc::Status s = Erase("dsb-nrw", duplicate.name(), "m1", &erasure);
  EXPECT_EQ(Reason(s), "PERSON_MERGED");
  ASSERT_TRUE(Erase("dsb-nrw", person_.name(), "m2", &erasure).ok());
  // Now the merged name resolves to nothing.
  v1::GetPersonRequest get;
  get.set_name(duplicate.name());
  Person read;
  s = Call("kim-koeln", &IdentityService::Stub::GetPerson, get, &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  s = Erase("dsb-nrw", duplicate.name(), "m3", &erasure);
  EXPECT_EQ(Reason(s), "PERSON_ERASED");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_persons WHERE erase_us IS "
                  "NOT NULL"),
            2);
}

TEST_P(LifecycleServiceTest, CorrectionsKeepRevisionsNewestFirst) {
  Person current = person_;
  for (const std::string place : {"Charkiw", "Kyjiw"}) {
    v1::UpdatePersonRequest update;
    *update.mutable_person() = current;
    update.mutable_person()->set_birth_place(place);
    update.mutable_update_mask()->add_paths("birth_place");
    ASSERT_TRUE(Call("kim-koeln", &IdentityService::Stub::UpdatePerson, update,
                     &current)
                    .ok());
  }
  v1::ListPersonRevisionsRequest list;
  list.set_parent(person_.name());
  list.set_page_size(1);
  v1::ListPersonRevisionsResponse page;
  ASSERT_TRUE(Call("kim-koeln", &IdentityService::Stub::ListPersonRevisions,
                   list, &page)
                  .ok());
  ASSERT_EQ(page.revisions_size(), 1);
  EXPECT_EQ(page.revisions(0).name(),
            absl::StrCat(person_.name(), "/revisions/2"));
  EXPECT_EQ(page.revisions(0).person().birth_place(), "Charkiw");
  EXPECT_EQ(page.revisions(0).changing_agency(), "agencies/kim-koeln");
  EXPECT_EQ(page.revisions(0).changing_actor(), "cw-7");
  ASSERT_EQ(page.revisions(0).changed_fields_size(), 1);
  EXPECT_EQ(page.revisions(0).changed_fields(0), "birth_place");
  EXPECT_EQ(page.revisions(0).person().contact().email(),
            "s.petrenko@example.org");
  ASSERT_FALSE(page.next_page_token().empty());
  list.set_page_token(page.next_page_token());
  ASSERT_TRUE(Call("kim-koeln", &IdentityService::Stub::ListPersonRevisions,
                   list, &page)
                  .ok());
  ASSERT_EQ(page.revisions_size(), 1);
  EXPECT_EQ(page.revisions(0).name(),
            absl::StrCat(person_.name(), "/revisions/1"));
  EXPECT_EQ(page.revisions(0).person().birth_place(), "");
  EXPECT_TRUE(page.next_page_token().empty());

  const std::vector<v1::PersonRectified> rectified =
      Sent<v1::PersonRectified>();
  ASSERT_EQ(rectified.size(), 2u);
  EXPECT_EQ(rectified[1].revision(),
            absl::StrCat(person_.name(), "/revisions/2"));
  EXPECT_EQ(rectified[1].changing_agency(), "agencies/kim-koeln");

  // Access as for GetPerson; bad input named.
  v1::ListPersonRevisionsRequest other;
  other.set_parent(person_.name());
  grpc::Status s = Call("kim-bonn", &IdentityService::Stub::ListPersonRevisions,
                        other, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  other.set_parent("people/x");
  other.set_page_size(-1);
  s = Call("kim-koeln", &IdentityService::Stub::ListPersonRevisions, other,
           &page);
  EXPECT_EQ(ViolatedFields(s), (std::set<std::string>{"parent", "page_size"}));
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(LifecycleServiceTest);

}  // namespace
}  // namespace lotse::identity
