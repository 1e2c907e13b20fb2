// Residence status, consents and CheckAccess through a real in-process
// server over mutual TLS, as the dev PKI's agencies (abh-koeln:
// AUSLAENDERBEHOERDE, bamf-nuernberg: BAMF, jobcenter-koeln: JOBCENTER,
// vhs-koeln: KURSTRAEGER, kim-koeln: KOMMUNE) and services (svc-cases), on
// SQLite and PostgreSQL, with the repository's default access rules.
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "common/server/handler.h"
#include "common/server/server.h"
#include "common/server/service_main.h"
#include "common/storage/migrations.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/domain/name_matching.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/migrations.h"
#include "services/identity/store/person_store.h"
#include "tests/identity/service/identity_server_fixture.h"
#include "tests/support/audit_trail.h"
#include "tests/support/dev_pki.h"
#include "tests/support/test_database.h"

namespace lotse::identity {
namespace {

using ::lotse::identity::v1::IdentityService;

std::set<std::string> ViolatedFields(const grpc::Status& status) {
  std::set<std::string> fields;
  for (const FieldViolation& v : FieldViolationsOf(FromGrpcStatus(status))) {
    fields.insert(v.field);
  }
  return fields;
}

std::string Reason(const grpc::Status& status) {
  return ReasonOf(FromGrpcStatus(status)).value_or("");
}

google::protobuf::Timestamp Ts(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

type::v1::Date Day(int y, int m, int d) {
  type::v1::Date date;
  date.set_year(y);
  date.set_month(m);
  date.set_day(d);
  return date;
}

v1::RecordResidenceStatusRequest Residence(const std::string& person,
                                           const std::string& request_id,
                                           const std::string& current_etag) {
  v1::RecordResidenceStatusRequest r;
  r.set_parent(person);
  r.set_request_id(request_id);
  r.set_current_etag(current_etag);
  v1::ResidenceStatus* s = r.mutable_residence_status();
  s->set_title_kind(v1::RESIDENCE_TITLE_KIND_TEMPORARY_PROTECTION);
  s->set_legal_basis("§ 24 AufenthG");
  *s->mutable_valid_from() = Day(2024, 3, 1);
  *s->mutable_valid_until() = Day(2026, 3, 4);
  s->set_work_permission(type::v1::WORK_PERMISSION_PERMITTED);
  s->set_integration_course_obligation(true);
  return r;
}

// A consent that vhs-koeln may read RESIDENCE_STATUS for course admission.
v1::RecordConsentRequest VhsConsent(const std::string& person,
                                    const std::string& request_id) {
  v1::RecordConsentRequest r;
  r.set_parent(person);
  r.set_request_id(request_id);
  v1::Consent* c = r.mutable_consent();
  c->add_categories(type::v1::DATA_CATEGORY_RESIDENCE_STATUS);
  c->set_recipient_agency("agencies/vhs-koeln");
  c->add_purposes("course-admission");
  v1::ConsentEvidence* e = c->mutable_evidence();
  e->set_form(v1::CONSENT_FORM_WRITTEN);
  e->set_document_reference("KIM-2024-0042");
  *e->mutable_declare_time() = Ts(absl::Now() - absl::Hours(1));
  return r;
}

class AccessServiceTest : public IdentityServerTest {
 protected:
  void SetUp() override {
    IdentityServerTest::SetUp();
    if (HasFatalFailure()) return;

    for (const auto& [id, domain] :
         std::vector<std::pair<std::string, type::v1::LegalDomain>>{
             {"abh-koeln", type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE},
             {"bamf-nuernberg", type::v1::LEGAL_DOMAIN_BAMF},
             {"jobcenter-koeln", type::v1::LEGAL_DOMAIN_JOBCENTER},
             {"vhs-koeln", type::v1::LEGAL_DOMAIN_KURSTRAEGER},
             {"kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE}}) {
      v1::RegisterAgencyRequest r;
      r.set_request_id(absl::StrCat("r-", id));
      r.set_agency_id(id);
      r.mutable_agency()->set_display_name(id);
      r.mutable_agency()->set_legal_domain(domain);
      if (domain == type::v1::LEGAL_DOMAIN_KOMMUNE) {
        r.mutable_agency()->set_municipality_code("05315000");
      }
      r.mutable_agency()->set_certificate_identity(id);
      grpc::ClientContext context;
      Prepare(&context, "agency-administration");
      v1::Agency out;
      grpc::Status s = As("lotse-admin")->RegisterAgency(&context, r, &out);
      ASSERT_TRUE(s.ok()) << id << ": " << s.error_message();
    }
    person_ = CreatePerson("agencies/kim-koeln");
  }

  // A person created directly in the store, as if kim-koeln registered it.
  std::string CreatePerson(const std::string& creating_agency) {
    auto matcher = DuplicateMatcher::Create();
    EXPECT_TRUE(matcher.ok());
    std::string name;
    absl::Status s = storage::RunInTransaction(
        db(), [&](storage::Transaction& tx) -> absl::Status {
          PersonStore store(tx, **matcher);
          v1::Person p;
          v1::PersonName* n = p.add_names();
          n->set_given_names("Olena");
          n->set_family_names("Kovalenko");
          n->set_kind(v1::NAME_KIND_CURRENT);
          auto created = store.Create(p, creating_agency);
          if (!created.ok()) return created.status();
          name = created->name();
          return absl::OkStatus();
        });
    EXPECT_TRUE(s.ok()) << s;
    return name;
  }

  static void Prepare(grpc::ClientContext* context,
                      const std::string& purpose) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    context->AddMetadata("x-lotse-actor", "caseworker-1");
    context->AddMetadata("x-lotse-purpose", purpose);
  }

  grpc::Status Record(const std::string& as,
                      const v1::RecordResidenceStatusRequest& r,
                      v1::ResidenceStatus* out) {
    grpc::ClientContext context;
    Prepare(&context, "residence-administration");
    return As(as)->RecordResidenceStatus(&context, r, out);
  }
  grpc::Status Current(const std::string& as, v1::ResidenceStatus* out,
                       const std::string& purpose = "case-management") {
    grpc::ClientContext context;
    Prepare(&context, purpose);
    v1::GetCurrentResidenceStatusRequest r;
    r.set_person(person_);
    return As(as)->GetCurrentResidenceStatus(&context, r, out);
  }
  grpc::Status CurrentOf(const std::string& as, const std::string& person,
                         v1::ResidenceStatus* out,
                         const std::string& purpose = "case-management") {
    grpc::ClientContext context;
    Prepare(&context, purpose);
    v1::GetCurrentResidenceStatusRequest r;
    r.set_person(person);
    return As(as)->GetCurrentResidenceStatus(&context, r, out);
  }
  grpc::Status GetPerson(const std::string& as, const std::string& name,
                         v1::Person* out) {
    grpc::ClientContext context;
    Prepare(&context, "case-management");
    v1::GetPersonRequest r;
    r.set_name(name);
    return As(as)->GetPerson(&context, r, out);
  }
  // Merges `merged` into `survivor` as `as`, with both etags as read now
  // unless `survivor_etag` overrides the survivor's.
  grpc::Status Merge(const std::string& as, const std::string& survivor,
                     const std::string& merged, const std::string& request_id,
                     v1::Person* out, const std::string& survivor_etag = "") {
    v1::Person s, m;
    EXPECT_TRUE(GetPerson("kim-koeln", survivor, &s).ok());
    EXPECT_TRUE(GetPerson("kim-koeln", merged, &m).ok());
    v1::MergePersonsRequest r;
    r.set_request_id(request_id);
    r.set_survivor(survivor);
    r.set_survivor_etag(survivor_etag.empty() ? s.etag() : survivor_etag);
    r.set_merged(merged);
    r.set_merged_etag(m.etag());
    r.set_justification("same passport");
    grpc::ClientContext context;
    Prepare(&context, "case-management");
    return As(as)->MergePersons(&context, r, out);
  }
  grpc::Status History(const std::string& as,
                       const v1::ListResidenceStatusesRequest& r,
                       v1::ListResidenceStatusesResponse* out) {
    grpc::ClientContext context;
    Prepare(&context, "case-management");
    return As(as)->ListResidenceStatuses(&context, r, out);
  }
  grpc::Status RecordConsent(const std::string& as,
                             const v1::RecordConsentRequest& r,
                             v1::Consent* out) {
    grpc::ClientContext context;
    Prepare(&context, "counselling");
    return As(as)->RecordConsent(&context, r, out);
  }
  grpc::Status GetConsent(const std::string& as, const std::string& name,
                          v1::Consent* out) {
    grpc::ClientContext context;
    Prepare(&context, "counselling");
    v1::GetConsentRequest r;
    r.set_name(name);
    return As(as)->GetConsent(&context, r, out);
  }
  grpc::Status Withdraw(const std::string& as, const v1::Consent& consent,
                        v1::Consent* out) {
    grpc::ClientContext context;
    Prepare(&context, "counselling");
    v1::WithdrawConsentRequest r;
    r.set_name(consent.name());
    r.set_etag(consent.etag());
    r.mutable_evidence()->set_form(v1::CONSENT_FORM_ORAL_DOCUMENTED);
    r.mutable_evidence()->set_document_reference("note 7");
    *r.mutable_evidence()->mutable_declare_time() = Ts(absl::Now());
    return As(as)->WithdrawConsent(&context, r, out);
  }
  grpc::Status ListConsents(const std::string& as,
                            const v1::ListConsentsRequest& r,
                            v1::ListConsentsResponse* out) {
    grpc::ClientContext context;
    Prepare(&context, "counselling");
    return As(as)->ListConsents(&context, r, out);
  }
  grpc::Status Check(const std::string& as, const v1::CheckAccessRequest& r,
                     v1::CheckAccessResponse* out) {
    grpc::ClientContext context;
    Prepare(&context, "case-management");
    return As(as)->CheckAccess(&context, r, out);
  }

  int64_t Count(const std::string& sql) {
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok());
    auto rows = (*tx)->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *(*rows)[0].GetInt(0) : -1;
  }
  int64_t RowsOf(const std::string& table, const std::string& person) {
    return Count(absl::StrCat("SELECT COUNT(*) FROM ", table,
                              " WHERE person_id = '",
                              person.substr(person.find('/') + 1), "'"));
  }
  int64_t ResidenceRows() {
    return Count("SELECT COUNT(*) FROM identity_residence_statuses");
  }
  int64_t ConsentRows() {
    return Count("SELECT COUNT(*) FROM identity_consents");
  }

  // Payload type names of the outbox events, in order.
  std::vector<std::string> EventTypes() {
    std::vector<std::string> out;
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok());
    // Events about one person are sealed; read them as the relay does.
    auto rows = (*tx)->Query("SELECT seq FROM event_outbox ORDER BY seq");
    EXPECT_TRUE(rows.ok());
    for (const storage::Row& row : *rows) {
      auto event = events::ReadOutboxEvent(**tx, *row.GetInt(0));
      EXPECT_TRUE(event.ok()) << event.status();
      if (!event.ok()) continue;
      std::string type = event->payload().type_url();
      out.push_back(type.substr(type.rfind('/') + 1));
    }
    return out;
  }

  // Audit rows about the test person, as "agency operation outcome reason".
  std::vector<std::string> AuditTrail() {
    std::vector<std::string> out;
    for (const audit::AuditRecord& r :
         lotse::testing::BothChainsAbout(db(), person_)) {
      out.push_back(absl::StrCat(
          r.agency_id, " ", r.operation.substr(r.operation.find('/') + 1), " ",
          audit::OutcomeName(r.outcome), " ", r.reason));
    }
    return out;
  }

  void ExpectChainIntact() { lotse::testing::ExpectBothChainsIntact(db()); }

  std::string person_;
};

TEST_P(AccessServiceTest, ResidenceIsWrittenByImmigrationOfficesWithHistory) {
  v1::ResidenceStatus first;
  grpc::Status s = Record("abh-koeln", Residence(person_, "r1", ""), &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(first.current());
  EXPECT_EQ(first.recording_agency(), "agencies/abh-koeln");
  EXPECT_EQ(first.name().rfind(person_ + "/residenceStatuses/", 0), 0u);
  EXPECT_EQ(first.title_kind(), v1::RESIDENCE_TITLE_KIND_TEMPORARY_PROTECTION);

  // A retry answers with the first record and stores nothing.
  v1::ResidenceStatus again;
  ASSERT_TRUE(Record("abh-koeln", Residence(person_, "r1", ""), &again).ok());
  EXPECT_EQ(again.name(), first.name());
  EXPECT_EQ(ResidenceRows(), 1);

  // Other domains may not write.
  for (const std::string as :
       {"jobcenter-koeln", "kim-koeln", "bamf-nuernberg"}) {
    v1::ResidenceStatus out;
    s = Record(as, Residence(person_, "r9", first.etag()), &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << as;
    EXPECT_EQ(Reason(s), "WRONG_LEGAL_DOMAIN");
  }
  // Service certificates are no agencies: refused for writes.
  v1::ResidenceStatus out;
  s = Record("svc-cases", Residence(person_, "r9", first.etag()), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "UNKNOWN_AGENCY");

  // Without / with a stale current etag: ABORTED, nothing stored.
  s = Record("abh-koeln", Residence(person_, "r2", ""), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Reason(s), "ETAG_MISMATCH");

  auto second_request = Residence(person_, "r2", first.etag());
  second_request.mutable_residence_status()->set_title_kind(
      v1::RESIDENCE_TITLE_KIND_SETTLEMENT_PERMIT);
  second_request.mutable_residence_status()->clear_valid_until();
  v1::ResidenceStatus second;
  s = Record("abh-koeln", second_request, &second);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(second.etag(), first.etag());

  s = Record("abh-koeln", Residence(person_, "r3", first.etag()), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ResidenceRows(), 2);

  v1::ResidenceStatus current;
  ASSERT_TRUE(Current("abh-koeln", &current).ok());
  EXPECT_EQ(current.name(), second.name());
  EXPECT_TRUE(current.current());

  v1::ListResidenceStatusesRequest list;
  list.set_parent(person_);
  list.set_page_size(1);
  v1::ListResidenceStatusesResponse page;
  ASSERT_TRUE(History("bamf-nuernberg", list, &page).ok());
  ASSERT_EQ(page.residence_statuses_size(), 1);
  EXPECT_EQ(page.residence_statuses(0).name(), second.name());
  EXPECT_TRUE(page.residence_statuses(0).current());
  ASSERT_FALSE(page.next_page_token().empty());
  list.set_page_token(page.next_page_token());
  ASSERT_TRUE(History("bamf-nuernberg", list, &page).ok());
  ASSERT_EQ(page.residence_statuses_size(), 1);
  EXPECT_EQ(page.residence_statuses(0).name(), first.name());
  EXPECT_FALSE(page.residence_statuses(0).current());
  EXPECT_TRUE(page.next_page_token().empty());

  EXPECT_EQ(EventTypes(), (std::vector<std::string>{
                              "lotse.identity.v1.AgencyRegistered",
                              "lotse.identity.v1.AgencyRegistered",
                              "lotse.identity.v1.AgencyRegistered",
                              "lotse.identity.v1.AgencyRegistered",
                              "lotse.identity.v1.AgencyRegistered",
                              "lotse.identity.v1.AgencyRegistered",
                              "lotse.identity.v1.ResidenceStatusChanged",
                              "lotse.identity.v1.ResidenceStatusChanged"}));
  ExpectChainIntact();
}

TEST_P(AccessServiceTest, ResidenceReadsFollowRulesAndConsents) {
  v1::ResidenceStatus recorded;
  ASSERT_TRUE(
      Record("abh-koeln", Residence(person_, "r1", ""), &recorded).ok());

  v1::ResidenceStatus out;
  for (const std::string as :
       {"abh-koeln", "bamf-nuernberg", "jobcenter-koeln", "svc-placement"}) {
    grpc::Status s = Current(as, &out, "course-admission");
    EXPECT_TRUE(s.ok()) << as << ": " << s.error_message();
    EXPECT_EQ(out.name(), recorded.name());
  }
  // KOMMUNE needs to own a case (not known here); KURSTRAEGER needs consent.
  grpc::Status s = Current("kim-koeln", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "NO_RELATION");
  s = Current("vhs-koeln", &out, "course-admission");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "NO_LEGAL_BASIS");

  // kim-koeln registered the person, so it may record the consent.
  v1::Consent consent;
  s = RecordConsent("kim-koeln", VhsConsent(person_, "c1"), &consent);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(consent.state(), v1::CONSENT_STATE_ACTIVE);
  EXPECT_EQ(consent.recording_agency(), "agencies/kim-koeln");
  EXPECT_EQ(consent.recording_actor(), "caseworker-1");
  EXPECT_EQ(consent.evidence().document_reference(), "KIM-2024-0042");
  // Retry: the same consent, nothing new stored.
  v1::Consent retried;
  ASSERT_TRUE(
      RecordConsent("kim-koeln", VhsConsent(person_, "c1"), &retried).ok());
  EXPECT_EQ(retried.name(), consent.name());
  EXPECT_EQ(ConsentRows(), 1);
  // Same request_id, other content.
  auto changed = VhsConsent(person_, "c1");
  changed.mutable_consent()->add_purposes("counselling");
  s = RecordConsent("kim-koeln", changed, &retried);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Reason(s), "REQUEST_ID_REUSED");

  s = Current("vhs-koeln", &out, "course-admission");
  EXPECT_TRUE(s.ok()) << s.error_message();
  // Only for the purpose consented to.
  s = Current("vhs-koeln", &out, "marketing");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "PURPOSE_NOT_COVERED");

  // The recipient sees the consent; an unrelated agency does not.
  v1::Consent got;
  ASSERT_TRUE(GetConsent("vhs-koeln", consent.name(), &got).ok());
  EXPECT_EQ(got.etag(), consent.etag());
  s = GetConsent("jobcenter-koeln", consent.name(), &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  v1::Consent withdrawn;
  s = Withdraw("kim-koeln", consent, &withdrawn);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(withdrawn.state(), v1::CONSENT_STATE_WITHDRAWN);
  EXPECT_EQ(withdrawn.withdrawing_agency(), "agencies/kim-koeln");
  EXPECT_NE(withdrawn.etag(), consent.etag());
  // The very next call is denied.
  s = Current("vhs-koeln", &out, "course-admission");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "CONSENT_WITHDRAWN");
  // Withdrawing again is refused, whatever the etag.
  s = Withdraw("kim-koeln", consent, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(s), "CONSENT_ALREADY_WITHDRAWN");

  // An expired consent allows nothing either.
  auto expired = VhsConsent(person_, "c2");
  *expired.mutable_consent()->mutable_valid_from() =
      Ts(absl::Now() - absl::Hours(48));
  *expired.mutable_consent()->mutable_valid_until() =
      Ts(absl::Now() - absl::Hours(24));
  v1::Consent old;
  ASSERT_TRUE(RecordConsent("kim-koeln", expired, &old).ok());
  EXPECT_EQ(old.state(), v1::CONSENT_STATE_EXPIRED);

  v1::ListConsentsRequest list;
  list.set_parent(person_);
  v1::ListConsentsResponse consents;
  ASSERT_TRUE(ListConsents("kim-koeln", list, &consents).ok());
  ASSERT_EQ(consents.consents_size(), 2);
  EXPECT_EQ(consents.consents(0).name(), old.name());  // newest first
  list.set_state(v1::CONSENT_STATE_WITHDRAWN);
  ASSERT_TRUE(ListConsents("kim-koeln", list, &consents).ok());
  ASSERT_EQ(consents.consents_size(), 1);
  EXPECT_EQ(consents.consents(0).name(), consent.name());
  list.clear_state();
  list.set_page_size(1);
  ASSERT_TRUE(ListConsents("vhs-koeln", list, &consents).ok());
  ASSERT_EQ(consents.consents_size(), 1);
  list.set_page_token(consents.next_page_token());
  ASSERT_TRUE(ListConsents("vhs-koeln", list, &consents).ok());
  ASSERT_EQ(consents.consents_size(), 1);
  EXPECT_EQ(consents.consents(0).name(), consent.name());
  EXPECT_TRUE(consents.next_page_token().empty());

  // Denied reads are audited as DENIED with the reason.
  const std::vector<std::string> trail = AuditTrail();
  int denied_no_basis = 0, denied_withdrawn = 0;
  for (const std::string& line : trail) {
    if (line == "vhs-koeln GetCurrentResidenceStatus DENIED NO_LEGAL_BASIS") {
      ++denied_no_basis;
    }
    if (line ==
        "vhs-koeln GetCurrentResidenceStatus DENIED CONSENT_WITHDRAWN") {
      ++denied_withdrawn;
    }
  }
  EXPECT_EQ(denied_no_basis, 1);
  EXPECT_EQ(denied_withdrawn, 1);
  EXPECT_EQ(EventTypes().back(), "lotse.identity.v1.ConsentRecorded");
  int withdrawn_events = 0;
  for (const std::string& t : EventTypes()) {
    withdrawn_events += t == "lotse.identity.v1.ConsentWithdrawn";
  }
  EXPECT_EQ(withdrawn_events, 1);
  ExpectChainIntact();
}

TEST_P(AccessServiceTest, CheckAccessDecidesPerCategory) {
  v1::CheckAccessRequest r;
  r.set_agency("agencies/kim-koeln");
  r.set_person(person_);
  r.add_categories(type::v1::DATA_CATEGORY_CORE_IDENTITY);
  r.add_categories(type::v1::DATA_CATEGORY_RESIDENCE_STATUS);
  r.add_categories(type::v1::DATA_CATEGORY_PRIVATE_NOTES);
  r.add_categories(type::v1::DATA_CATEGORY_HEALTH);
  r.set_purpose("case-management");
  r.add_relations(v1::RELATION_CASE_OWNER);
  r.set_data_owner_agency("agencies/kim-koeln");
  v1::CheckAccessResponse response;
  grpc::Status s = Check("svc-cases", r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.decisions_size(), 4);
  EXPECT_TRUE(response.decisions(0).allowed());
  EXPECT_EQ(response.decisions(0).basis(), v1::ACCESS_BASIS_OWNER);
  EXPECT_TRUE(response.decisions(1).allowed());
  EXPECT_EQ(response.decisions(1).basis(), v1::ACCESS_BASIS_LEGAL_BASIS);
  EXPECT_EQ(response.decisions(1).rule_id(),
            "residence-status.kommune-case-owner");
  EXPECT_TRUE(response.decisions(2).allowed());
  EXPECT_EQ(response.decisions(2).basis(), v1::ACCESS_BASIS_OWNER);
  EXPECT_FALSE(response.decisions(3).allowed());
  EXPECT_EQ(response.decisions(3).denial_reason(),
            type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS);

  // An agency asking about itself: its asserted relations are ignored.
  s = Check("kim-koeln", r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(response.decisions(1).allowed());
  EXPECT_EQ(response.decisions(1).denial_reason(),
            type::v1::ACCESS_DENIAL_REASON_NO_RELATION);
  // ... and only about itself.
  r.set_agency("agencies/vhs-koeln");
  s = Check("kim-koeln", r, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "AGENCY_NOT_CALLER");

  // Consent-based, for a service asking on vhs-koeln's behalf.
  v1::Consent consent;
  ASSERT_TRUE(
      RecordConsent("kim-koeln", VhsConsent(person_, "c1"), &consent).ok());
  r.clear_categories();
  r.add_categories(type::v1::DATA_CATEGORY_RESIDENCE_STATUS);
  r.set_purpose("course-admission");
  r.clear_relations();
  r.clear_data_owner_agency();
  ASSERT_TRUE(Check("svc-courses", r, &response).ok());
  ASSERT_EQ(response.decisions_size(), 1);
  EXPECT_TRUE(response.decisions(0).allowed());
  EXPECT_EQ(response.decisions(0).basis(), v1::ACCESS_BASIS_CONSENT);
  EXPECT_EQ(response.decisions(0).consent(), consent.name());
  v1::Consent withdrawn;
  ASSERT_TRUE(Withdraw("kim-koeln", consent, &withdrawn).ok());
  ASSERT_TRUE(Check("svc-courses", r, &response).ok());
  EXPECT_FALSE(response.decisions(0).allowed());
  EXPECT_EQ(response.decisions(0).denial_reason(),
            type::v1::ACCESS_DENIAL_REASON_CONSENT_WITHDRAWN);

  // Unknown person or agency.
  v1::CheckAccessRequest unknown = r;
  unknown.set_person("persons/aaaaaaaaaaaaaaaaaaaaaaaaaa");
  s = Check("svc-cases", unknown, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  unknown = r;
  unknown.set_agency("agencies/nobody-here");
  s = Check("svc-cases", unknown, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), "AGENCY_NOT_FOUND");

  // Bad input: every bad field reported.
  v1::CheckAccessRequest bad;
  bad.set_agency("agency");
  bad.set_person(person_);
  bad.add_relations(static_cast<v1::Relation>(42));
  s = Check("svc-cases", bad, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(s),
            (std::set<std::string>{"agency", "categories", "purpose",
                                   "relations[0]"}));
  bad = r;
  bad.add_categories(static_cast<type::v1::DataCategory>(99));
  s = Check("svc-cases", bad, &response);
  EXPECT_EQ(ViolatedFields(s), (std::set<std::string>{"categories[1]"}));

  // The decisions are in the person's trail, about the agency decided on.
  bool kim_decision = false;
  for (const std::string& line : AuditTrail()) {
    if (line == "kim-koeln CheckAccess DENIED NO_LEGAL_BASIS") {
      kim_decision = true;
    }
  }
  EXPECT_TRUE(kim_decision);
  ExpectChainIntact();
}

TEST_P(AccessServiceTest, MergeMovesResidenceHistoryAndConsents) {
  const std::string survivor = person_;
  const std::string merged = CreatePerson("agencies/kim-koeln");
  const std::string older = CreatePerson("agencies/kim-koeln");
  // Recorded in this order, so the merged person's record is the newest of
  // all and `older`'s the oldest.
  v1::ResidenceStatus older_status, survivor_status, merged_status;
  ASSERT_TRUE(
      Record("abh-koeln", Residence(older, "r-o", ""), &older_status).ok());
  ASSERT_TRUE(
      Record("abh-koeln", Residence(survivor, "r-s", ""), &survivor_status)
          .ok());
  auto merged_request = Residence(merged, "r-m", "");
  merged_request.mutable_residence_status()->set_title_kind(
      v1::RESIDENCE_TITLE_KIND_SETTLEMENT_PERMIT);
  ASSERT_TRUE(Record("abh-koeln", merged_request, &merged_status).ok());
  // A consent given for the merged person only.
  v1::Consent consent;
  ASSERT_TRUE(
      RecordConsent("kim-koeln", VhsConsent(merged, "c-m"), &consent).ok());
  v1::ResidenceStatus out;
  grpc::Status s = CurrentOf("vhs-koeln", survivor, &out, "course-admission");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  const size_t events_before = EventTypes().size();

  // Refused merges move nothing.
  v1::Person result;
  s = Merge("jobcenter-koeln", survivor, merged, "m-0", &result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::Person merged_person;
  ASSERT_TRUE(GetPerson("kim-koeln", merged, &merged_person).ok());
  s = Merge("kim-koeln", survivor, merged, "m-1", &result,
            merged_person.etag());  // the merged person's etag: stale
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(RowsOf("identity_residence_statuses", merged), 1);
  EXPECT_EQ(RowsOf("identity_consents", merged), 1);
  EXPECT_EQ(RowsOf("identity_residence_statuses", survivor), 1);
  EXPECT_EQ(RowsOf("identity_consents", survivor), 0);
  ASSERT_TRUE(CurrentOf("abh-koeln", survivor, &out).ok());
  EXPECT_EQ(out.name(), survivor_status.name());
  EXPECT_EQ(EventTypes().size(), events_before);

  s = Merge("kim-koeln", survivor, merged, "m-2", &result);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(RowsOf("identity_residence_statuses", merged), 0);
  EXPECT_EQ(RowsOf("identity_consents", merged), 0);

  // The merged person's record, now the survivor's, is current: it was
  // recorded last.
  const std::string moved_status = absl::StrCat(
      survivor, "/residenceStatuses/",
      merged_status.name().substr(merged_status.name().rfind('/') + 1));
  ASSERT_TRUE(CurrentOf("abh-koeln", survivor, &out).ok());
  EXPECT_EQ(out.name(), moved_status);
  EXPECT_EQ(out.title_kind(), v1::RESIDENCE_TITLE_KIND_SETTLEMENT_PERMIT);
  EXPECT_TRUE(out.current());
  v1::ListResidenceStatusesRequest history;
  history.set_parent(survivor);
  v1::ListResidenceStatusesResponse records;
  ASSERT_TRUE(History("bamf-nuernberg", history, &records).ok());
  ASSERT_EQ(records.residence_statuses_size(), 2);
  EXPECT_EQ(records.residence_statuses(0).name(), moved_status);
  EXPECT_EQ(records.residence_statuses(1).name(), survivor_status.name());

  // The consent answers under the survivor and still opens its data.
  v1::ListConsentsRequest list;
  list.set_parent(survivor);
  v1::ListConsentsResponse consents;
  ASSERT_TRUE(ListConsents("kim-koeln", list, &consents).ok());
  ASSERT_EQ(consents.consents_size(), 1);
  const std::string moved_consent =
      absl::StrCat(survivor, "/consents/",
                   consent.name().substr(consent.name().rfind('/') + 1));
  EXPECT_EQ(consents.consents(0).name(), moved_consent);
  EXPECT_EQ(consents.consents(0).state(), v1::CONSENT_STATE_ACTIVE);
  v1::Consent got;
  ASSERT_TRUE(GetConsent("vhs-koeln", consent.name(), &got).ok());
  EXPECT_EQ(got.name(), moved_consent);
  s = CurrentOf("vhs-koeln", survivor, &out, "course-admission");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.name(), moved_status);
  v1::CheckAccessRequest check;
  check.set_agency("agencies/vhs-koeln");
  check.set_person(survivor);
  check.add_categories(type::v1::DATA_CATEGORY_RESIDENCE_STATUS);
  check.set_purpose("course-admission");
  v1::CheckAccessResponse decision;
  ASSERT_TRUE(Check("svc-courses", check, &decision).ok());
  ASSERT_EQ(decision.decisions_size(), 1);
  EXPECT_TRUE(decision.decisions(0).allowed());
  EXPECT_EQ(decision.decisions(0).basis(), v1::ACCESS_BASIS_CONSENT);
  EXPECT_EQ(decision.decisions(0).consent(), moved_consent);
  EXPECT_EQ(decision.person(), survivor);
  // Asked with the merged id, the answer is the survivor's and names it.
  check.set_person(merged);
  ASSERT_TRUE(Check("svc-courses", check, &decision).ok());
  EXPECT_EQ(decision.person(), survivor);
  ASSERT_EQ(decision.decisions_size(), 1);
  EXPECT_EQ(decision.decisions(0).consent(), moved_consent);

  // The survivor's status changed: announced after the merge, in order.
  std::vector<std::string> types = EventTypes();
  ASSERT_EQ(types.size(), events_before + 2);
  EXPECT_EQ(types[events_before], "lotse.identity.v1.PersonMerged");
  EXPECT_EQ(types[events_before + 1],
            "lotse.identity.v1.ResidenceStatusChanged");
  {
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    ASSERT_TRUE(tx.ok());
    auto rows =
        (*tx)->Query("SELECT seq FROM event_outbox ORDER BY seq DESC LIMIT 1");
    ASSERT_TRUE(rows.ok());
    auto opened = events::ReadOutboxEvent(**tx, *(*rows)[0].GetInt(0));
    ASSERT_TRUE(opened.ok()) << opened.status();
    const lotse::events::v1::Event& event = *opened;
    v1::ResidenceStatusChanged changed;
    ASSERT_TRUE(event.payload().UnpackTo(&changed));
    EXPECT_EQ(event.ordering_key(), survivor);
    EXPECT_EQ(changed.person(), survivor);
    EXPECT_EQ(changed.residence_status(), moved_status);
    EXPECT_EQ(changed.title_kind(), v1::RESIDENCE_TITLE_KIND_SETTLEMENT_PERMIT);
    EXPECT_EQ(changed.recording_agency(), "agencies/abh-koeln");
  }

  // Merging a person whose records are all older than the survivor's
  // current one moves its history but changes no status: no event.
  s = Merge("kim-koeln", survivor, older, "m-3", &result);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(History("bamf-nuernberg", history, &records).ok());
  ASSERT_EQ(records.residence_statuses_size(), 3);
  EXPECT_EQ(records.residence_statuses(0).name(), moved_status);
  types = EventTypes();
  ASSERT_EQ(types.size(), events_before + 3);
  EXPECT_EQ(types.back(), "lotse.identity.v1.PersonMerged");
  ExpectChainIntact();
}

TEST_P(AccessServiceTest, BadInputIsRefusedAndStoresNothing) {
  auto bad = Residence(person_, "r1", "");
  bad.mutable_residence_status()->set_title_kind(
      static_cast<v1::ResidenceTitleKind>(77));
  bad.mutable_residence_status()->set_work_permission(
      static_cast<type::v1::WorkPermission>(9));
  *bad.mutable_residence_status()->mutable_valid_until() = Day(2020, 1, 1);
  *bad.mutable_residence_status()->mutable_valid_from() = Day(2024, 2, 30);
  v1::ResidenceStatus out;
  grpc::Status s = Record("abh-koeln", bad, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(s),
            (std::set<std::string>{"residence_status.title_kind",
                                   "residence_status.work_permission",
                                   "residence_status.valid_from"}));
  bad = Residence(person_, "r1", "");
  *bad.mutable_residence_status()->mutable_valid_until() = Day(2020, 1, 1);
  s = Record("abh-koeln", bad, &out);
  EXPECT_EQ(ViolatedFields(s),
            (std::set<std::string>{"residence_status.valid_until"}));
  s = Record("abh-koeln",
             Residence("persons/aaaaaaaaaaaaaaaaaaaaaaaaaa", "r1", ""), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), "PERSON_NOT_FOUND");
  EXPECT_EQ(ResidenceRows(), 0);

  // Nothing recorded yet: NOT_FOUND for a reader that may read it.
  s = Current("bamf-nuernberg", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), "NO_RESIDENCE_STATUS");

  auto consent = VhsConsent(person_, "c1");
  v1::Consent* c = consent.mutable_consent();
  c->clear_categories();
  c->add_categories(type::v1::DATA_CATEGORY_PRIVATE_NOTES);
  c->add_categories(static_cast<type::v1::DataCategory>(50));
  c->add_purposes("Not A Code");
  *c->mutable_valid_from() = Ts(absl::Now() + absl::Hours(48));
  *c->mutable_valid_until() = Ts(absl::Now() + absl::Hours(24));
  c->mutable_evidence()->set_form(static_cast<v1::ConsentForm>(8));
  c->mutable_evidence()->clear_document_reference();
  *c->mutable_evidence()->mutable_declare_time() =
      Ts(absl::Now() + absl::Hours(2));
  v1::Consent recorded;
  s = RecordConsent("kim-koeln", consent, &recorded);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(s),
            (std::set<std::string>{
                "consent.categories[0]", "consent.categories[1]",
                "consent.purposes[1]", "consent.valid_until",
                "consent.evidence.form", "consent.evidence.document_reference",
                "consent.evidence.declare_time"}));
  consent = VhsConsent(person_, "c1");
  consent.mutable_consent()->clear_categories();
  consent.mutable_consent()->clear_recipient_agency();
  s = RecordConsent("kim-koeln", consent, &recorded);
  EXPECT_EQ(ViolatedFields(s),
            (std::set<std::string>{"consent.categories", "consent.recipient"}));
  consent = VhsConsent(person_, "c1");
  consent.mutable_consent()->set_recipient_agency("agencies/nobody-here");
  s = RecordConsent("kim-koeln", consent, &recorded);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  // An unknown person reads like one the caller may not read.
  s = RecordConsent("kim-koeln",
                    VhsConsent("persons/aaaaaaaaaaaaaaaaaaaaaaaaaa", "c1"),
                    &recorded);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "NO_RELATION");
  // An agency with no relation to the person may not record for them.
  s = RecordConsent("vhs-koeln", VhsConsent(person_, "c1"), &recorded);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Consent is never self-service: not for the recording agency, not for
  // its legal domain.
  consent = VhsConsent(person_, "c-self");
  consent.mutable_consent()->set_recipient_agency("agencies/kim-koeln");
  s = RecordConsent("kim-koeln", consent, &recorded);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "CONSENT_FOR_SELF");
  consent.set_request_id("c-self-domain");
  consent.mutable_consent()->set_recipient_legal_domain(
      type::v1::LEGAL_DOMAIN_KOMMUNE);
  s = RecordConsent("kim-koeln", consent, &recorded);
  EXPECT_EQ(Reason(s), "CONSENT_FOR_SELF");
  EXPECT_EQ(ConsentRows(), 0);

  v1::ListConsentsRequest list;
  list.set_parent(person_);
  list.set_page_size(-1);
  v1::ListConsentsResponse consents;
  s = ListConsents("kim-koeln", list, &consents);
  EXPECT_EQ(ViolatedFields(s), (std::set<std::string>{"page_size"}));
  ExpectChainIntact();
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(AccessServiceTest);

}  // namespace
}  // namespace lotse::identity
