// The agency registry through a real in-process server over mutual TLS, as
// the dev PKI's agencies (lotse-admin: ADMINISTRATION, kim-koeln: KOMMUNE,
// jobcenter-koeln: JOBCENTER), on SQLite and PostgreSQL.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
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
#include "services/identity/service/identity_service.h"
#include "services/identity/store/migrations.h"
#include "tests/identity/service/identity_server_fixture.h"
#include "tests/support/audit_trail.h"
#include "tests/support/dev_pki.h"
#include "tests/support/test_database.h"

namespace lotse::identity {
namespace {

using ::lotse::identity::v1::Agency;
using ::lotse::identity::v1::IdentityService;
using ::lotse::type::v1::LegalDomain;

// The kim-koeln registration every test starts from.
v1::RegisterAgencyRequest KimKoeln(const std::string& request_id = "r-kim") {
  v1::RegisterAgencyRequest request;
  request.set_request_id(request_id);
  request.set_agency_id("kim-koeln");
  Agency* agency = request.mutable_agency();
  agency->set_display_name("Kommunales Integrationsmanagement Köln");
  agency->set_legal_domain(type::v1::LEGAL_DOMAIN_KOMMUNE);
  agency->set_municipality_code("05315000");
  agency->set_certificate_identity("kim-koeln");
  return request;
}

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

class AgencyServiceTest : public IdentityServerTest {
 protected:
  static void Prepare(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    context->AddMetadata("x-lotse-actor", "operator-7");
    context->AddMetadata("x-lotse-purpose", "agency-administration");
  }

  grpc::Status Register(const std::string& as,
                        const v1::RegisterAgencyRequest& request, Agency* out) {
    grpc::ClientContext context;
    Prepare(&context);
    return As(as)->RegisterAgency(&context, request, out);
  }
  grpc::Status Get(const std::string& as, const std::string& name,
                   Agency* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetAgencyRequest request;
    request.set_name(name);
    return As(as)->GetAgency(&context, request, out);
  }
  grpc::Status List(const std::string& as, const v1::ListAgenciesRequest& r,
                    v1::ListAgenciesResponse* out) {
    grpc::ClientContext context;
    Prepare(&context);
    return As(as)->ListAgencies(&context, r, out);
  }
  grpc::Status Update(const std::string& as, const v1::UpdateAgencyRequest& r,
                      Agency* out) {
    grpc::ClientContext context;
    Prepare(&context);
    return As(as)->UpdateAgency(&context, r, out);
  }
  grpc::Status Suspend(const std::string& as, const std::string& name,
                       const std::string& etag, Agency* out,
                       const std::string& reason = "contract ended") {
    grpc::ClientContext context;
    Prepare(&context);
    v1::SuspendAgencyRequest request;
    request.set_name(name);
    request.set_etag(etag);
    request.set_reason(reason);
    return As(as)->SuspendAgency(&context, request, out);
  }
  grpc::Status Reactivate(const std::string& as, const std::string& name,
                          const std::string& etag, Agency* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::ReactivateAgencyRequest request;
    request.set_name(name);
    request.set_etag(etag);
    return As(as)->ReactivateAgency(&context, request, out);
  }

  int64_t Count(const std::string& sql) {
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok());
    auto rows = (*tx)->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *(*rows)[0].GetInt(0) : -1;
  }
  int64_t Agencies() { return Count("SELECT COUNT(*) FROM identity_agencies"); }
  int64_t Events() { return Count("SELECT COUNT(*) FROM event_outbox"); }

  // The outbox events, in order, as (ordering key, payload type name).
  std::vector<std::pair<std::string, std::string>> OutboxEvents() {
    std::vector<std::pair<std::string, std::string>> out;
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok());
    auto rows = (*tx)->Query("SELECT payload FROM event_outbox ORDER BY seq");
    EXPECT_TRUE(rows.ok());
    for (const storage::Row& row : *rows) {
      lotse::events::v1::Event event;
      EXPECT_TRUE(event.ParseFromString(*row.GetBytes(0)));
      EXPECT_EQ(event.source(), "identity");
      EXPECT_FALSE(event.event_id().empty());
      std::string type = event.payload().type_url();
      type = type.substr(type.rfind('/') + 1);
      out.emplace_back(event.ordering_key(), type);
    }
    return out;
  }
};

TEST_P(AgencyServiceTest, RegistersGetsListsUpdatesSuspendsAndReactivates) {
  Agency kim;
  grpc::Status status = Register("lotse-admin", KimKoeln(), &kim);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(kim.name(), "agencies/kim-koeln");
  EXPECT_EQ(kim.display_name(), "Kommunales Integrationsmanagement Köln");
  EXPECT_EQ(kim.legal_domain(), type::v1::LEGAL_DOMAIN_KOMMUNE);
  EXPECT_EQ(kim.state(), v1::AGENCY_STATE_ACTIVE);
  EXPECT_FALSE(kim.etag().empty());
  EXPECT_GT(kim.create_time().seconds(), 0);

  // Any registered agency may read, including the new one itself.
  Agency got;
  ASSERT_TRUE(Get("kim-koeln", "agencies/kim-koeln", &got).ok());
  EXPECT_EQ(got.SerializeAsString(), kim.SerializeAsString());
  ASSERT_TRUE(Get("kim-koeln", "agencies/lotse-admin", &got).ok());
  EXPECT_EQ(got.legal_domain(), type::v1::LEGAL_DOMAIN_ADMINISTRATION);

  v1::ListAgenciesResponse list;
  ASSERT_TRUE(List("kim-koeln", {}, &list).ok());
  ASSERT_EQ(list.agencies_size(), 2);
  EXPECT_EQ(list.agencies(0).name(), "agencies/kim-koeln");
  EXPECT_EQ(list.agencies(1).name(), "agencies/lotse-admin");
  EXPECT_TRUE(list.next_page_token().empty());
  v1::ListAgenciesRequest only_kommune;
  only_kommune.set_legal_domain(type::v1::LEGAL_DOMAIN_KOMMUNE);
  ASSERT_TRUE(List("lotse-admin", only_kommune, &list).ok());
  ASSERT_EQ(list.agencies_size(), 1);

  v1::UpdateAgencyRequest update;
  *update.mutable_agency() = kim;
  update.mutable_agency()->set_display_name("KIM Köln");
  update.mutable_update_mask()->add_paths("display_name");
  Agency updated;
  status = Update("lotse-admin", update, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(updated.display_name(), "KIM Köln");
  EXPECT_NE(updated.etag(), kim.etag());
  EXPECT_EQ(updated.municipality_code(), "05315000");

  Agency suspended;
  status = Suspend("lotse-admin", kim.name(), updated.etag(), &suspended);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(suspended.state(), v1::AGENCY_STATE_SUSPENDED);
  EXPECT_EQ(suspended.suspension_reason(), "contract ended");

  // Refused on its very next call.
  status = Get("kim-koeln", "agencies/kim-koeln", &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "AGENCY_SUSPENDED");
  v1::ListAgenciesRequest only_suspended;
  only_suspended.set_state(v1::AGENCY_STATE_SUSPENDED);
  ASSERT_TRUE(List("lotse-admin", only_suspended, &list).ok());
  ASSERT_EQ(list.agencies_size(), 1);

  Agency reactivated;
  status =
      Reactivate("lotse-admin", kim.name(), suspended.etag(), &reactivated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reactivated.state(), v1::AGENCY_STATE_ACTIVE);
  EXPECT_TRUE(reactivated.suspension_reason().empty());
  EXPECT_TRUE(Get("kim-koeln", "agencies/kim-koeln", &got).ok());

  // Every change is an event keyed by the agency, in commit order, after
  // the bootstrap's.
  using Ev = std::pair<std::string, std::string>;
  EXPECT_EQ(
      OutboxEvents(),
      (std::vector<Ev>{
          {"agencies/lotse-admin", "lotse.identity.v1.AgencyRegistered"},
          {"agencies/kim-koeln", "lotse.identity.v1.AgencyRegistered"},
          {"agencies/kim-koeln", "lotse.identity.v1.AgencyUpdated"},
          {"agencies/kim-koeln", "lotse.identity.v1.AgencySuspended"},
          {"agencies/kim-koeln", "lotse.identity.v1.AgencyReactivated"}}));
}

TEST_P(AgencyServiceTest, StateChangesFollowTheirPreconditions) {
  Agency kim, admin, out;
  ASSERT_TRUE(Register("lotse-admin", KimKoeln(), &kim).ok());
  ASSERT_TRUE(Get("lotse-admin", "agencies/lotse-admin", &admin).ok());
  grpc::Status status =
      Suspend("lotse-admin", admin.name(), admin.etag(), &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(status), "SELF_SUSPENSION");
  status = Reactivate("lotse-admin", kim.name(), kim.etag(), &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(status), "AGENCY_NOT_SUSPENDED");
  Agency suspended;
  ASSERT_TRUE(Suspend("lotse-admin", kim.name(), kim.etag(), &suspended).ok());
  status = Suspend("lotse-admin", kim.name(), suspended.etag(), &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(status), "AGENCY_ALREADY_SUSPENDED");
  status = Get("lotse-admin", "agencies/nobody-here", &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_P(AgencyServiceTest, OnlyAdministrationMayChangeTheRegistry) {
  Agency kim, out;
  ASSERT_TRUE(Register("lotse-admin", KimKoeln(), &kim).ok());
  v1::RegisterAgencyRequest other = KimKoeln("r-2");
  other.set_agency_id("kim-bonn");
  other.mutable_agency()->set_certificate_identity("kim-bonn");
  grpc::Status status = Register("kim-koeln", other, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "WRONG_LEGAL_DOMAIN");
  status = Suspend("kim-koeln", "agencies/lotse-admin", "x", &out);
  EXPECT_EQ(Reason(status), "WRONG_LEGAL_DOMAIN");
  EXPECT_EQ(Agencies(), 2);

  // An agency the registry does not know may not even read it.
  status = Get("jobcenter-koeln", "agencies/kim-koeln", &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "UNKNOWN_AGENCY");
}

TEST_P(AgencyServiceTest, ServicesMayReadAnAgencyButNotChangeOrListThem) {
  Agency kim, got;
  ASSERT_TRUE(Register("lotse-admin", KimKoeln(), &kim).ok());
  // Another service asks for an agency it has not heard of yet.
  grpc::Status status = Get("svc-cases", kim.name(), &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.SerializeAsString(), kim.SerializeAsString());
  status = Get("svc-cases", "agencies/nobody-here", &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  // Nothing else of the registry is open to services.
  v1::ListAgenciesResponse list;
  EXPECT_EQ(List("svc-cases", {}, &list).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Suspend("svc-cases", kim.name(), kim.etag(), &got).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_P(AgencyServiceTest, RequestIdRetryReturnsTheFirstResultAndReuseFails) {
  Agency first, again;
  ASSERT_TRUE(Register("lotse-admin", KimKoeln(), &first).ok());
  const int64_t events = Events();
  grpc::Status status = Register("lotse-admin", KimKoeln(), &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(Agencies(), 2);
  EXPECT_EQ(Events(), events);

  v1::RegisterAgencyRequest changed = KimKoeln();
  changed.mutable_agency()->set_display_name("Something else");
  status = Register("lotse-admin", changed, &again);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Reason(status), "REQUEST_ID_REUSED");

  // A new request_id for a taken id or certificate identity is a conflict.
  status = Register("lotse-admin", KimKoeln("r-new"), &again);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Reason(status), "AGENCY_EXISTS");
  v1::RegisterAgencyRequest same_cert = KimKoeln("r-cert");
  same_cert.set_agency_id("kim-koeln-2");
  status = Register("lotse-admin", same_cert, &again);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Reason(status), "CERTIFICATE_IDENTITY_TAKEN");
  EXPECT_EQ(Agencies(), 2);
  EXPECT_EQ(Events(), events);
}

TEST_P(AgencyServiceTest, StaleEtagIsAbortedAndChangesNothing) {
  Agency kim, updated, out;
  ASSERT_TRUE(Register("lotse-admin", KimKoeln(), &kim).ok());
  v1::UpdateAgencyRequest update;
  *update.mutable_agency() = kim;
  update.mutable_agency()->set_display_name("First change");
  update.mutable_update_mask()->add_paths("display_name");
  ASSERT_TRUE(Update("lotse-admin", update, &updated).ok());

  update.mutable_agency()->set_display_name("Lost update");
  grpc::Status status = Update("lotse-admin", update, &out);  // old etag
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Reason(status), "ETAG_MISMATCH");
  status = Suspend("lotse-admin", kim.name(), kim.etag(), &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  ASSERT_TRUE(Get("lotse-admin", kim.name(), &out).ok());
  EXPECT_EQ(out.SerializeAsString(), updated.SerializeAsString());

  // legal_domain and state are not changeable here; unknown paths neither.
  v1::UpdateAgencyRequest bad;
  *bad.mutable_agency() = updated;
  bad.mutable_update_mask()->add_paths("legal_domain");
  bad.mutable_update_mask()->add_paths("colour");
  status = Update("lotse-admin", bad, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(
      ViolatedFields(status),
      (std::set<std::string>{"update_mask.paths[0]", "update_mask.paths[1]"}));
}

struct BadRegistration {
  std::string label;
  void (*mutate)(v1::RegisterAgencyRequest*);
  std::string field;
};

TEST_P(AgencyServiceTest,
       BadInputIsRejectedWithFieldViolationsAndStoresNothing) {
  const std::vector<BadRegistration> cases = {
      {"empty display name",
       [](v1::RegisterAgencyRequest* r) {
         r->mutable_agency()->set_display_name("");
       },
       "agency.display_name"},
      {"blank display name",
       [](v1::RegisterAgencyRequest* r) {
         r->mutable_agency()->set_display_name("   ");
       },
       "agency.display_name"},
      {"too long display name",
       [](v1::RegisterAgencyRequest* r) {
         r->mutable_agency()->set_display_name(std::string(201, 'a'));
       },
       "agency.display_name"},
      {"control character",
       [](v1::RegisterAgencyRequest* r) {
         r->mutable_agency()->set_display_name("KIM\x07Koeln");
       },
       "agency.display_name"},
      {"bad id",
       [](v1::RegisterAgencyRequest* r) { r->set_agency_id("KIM_Koeln"); },
       "agency_id"},
      {"short id", [](v1::RegisterAgencyRequest* r) { r->set_agency_id("k"); },
       "agency_id"},
      {"unspecified domain",
       [](v1::RegisterAgencyRequest* r) {
         r->mutable_agency()->set_legal_domain(
             type::v1::LEGAL_DOMAIN_UNSPECIFIED);
       },
       "agency.legal_domain"},
      {"unknown domain",
       [](v1::RegisterAgencyRequest* r) {
         r->mutable_agency()->set_legal_domain(static_cast<LegalDomain>(99));
       },
       "agency.legal_domain"},
      {"bad municipality",
       [](v1::RegisterAgencyRequest* r) {
         r->mutable_agency()->set_municipality_code("5315");
       },
       "agency.municipality_code"},
      {"kommune without municipality",
       [](v1::RegisterAgencyRequest* r) {
         r->mutable_agency()->clear_municipality_code();
       },
       "agency.municipality_code"},
      {"certificate identity with space",
       [](v1::RegisterAgencyRequest* r) {
         r->mutable_agency()->set_certificate_identity("kim koeln");
       },
       "agency.certificate_identity"},
      {"bad request id",
       [](v1::RegisterAgencyRequest* r) { r->set_request_id("a b"); },
       "request_id"},
  };
  for (const BadRegistration& c : cases) {
    SCOPED_TRACE(c.label);
    v1::RegisterAgencyRequest request = KimKoeln();
    c.mutate(&request);
    Agency out;
    grpc::Status status = Register("lotse-admin", request, &out);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(ViolatedFields(status), std::set<std::string>{c.field});
  }

  // Invalid UTF-8 in a string field never reaches the handler: protobuf
  // refuses to parse the request (gRPC 1.51 then answers UNIMPLEMENTED;
  // common/api/text_test.cc covers the handler-side check).
  {
    v1::RegisterAgencyRequest request = KimKoeln();
    request.mutable_agency()->set_display_name("K\xc3\x28ln");
    Agency out;
    EXPECT_FALSE(Register("lotse-admin", request, &out).ok());
  }

  // All bad fields at once, not only the first.
  v1::RegisterAgencyRequest all_bad;
  all_bad.mutable_agency()->set_legal_domain(static_cast<LegalDomain>(42));
  Agency out;
  grpc::Status status = Register("lotse-admin", all_bad, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status),
            (std::set<std::string>{"request_id", "agency_id",
                                   "agency.display_name", "agency.legal_domain",
                                   "agency.certificate_identity"}));

  v1::ListAgenciesRequest list;
  list.set_page_size(-1);
  list.set_page_token("not-a-token");
  list.set_state(static_cast<v1::AgencyState>(7));
  v1::ListAgenciesResponse listed;
  status = List("lotse-admin", list, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status),
            (std::set<std::string>{"page_size", "page_token", "state"}));
  status = Get("lotse-admin", "persons/kim-koeln", &out);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"name"});
  status = Suspend("lotse-admin", "agencies/kim-koeln", "", &out, "");
  EXPECT_EQ(ViolatedFields(status), (std::set<std::string>{"etag", "reason"}));

  EXPECT_EQ(Agencies(), 1);  // only the bootstrap admin
  EXPECT_EQ(Events(), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM api_request_ids"), 0);
}

TEST_P(AgencyServiceTest, PagingReturnsEveryAgencyExactlyOnce) {
  std::set<std::string> registered = {"agencies/lotse-admin"};
  for (int i = 0; i < 12; ++i) {
    v1::RegisterAgencyRequest request = KimKoeln(absl::StrCat("r-", i));
    request.set_agency_id(absl::StrCat("vhs-", 100 + i * 7 % 12));
    request.mutable_agency()->set_legal_domain(
        type::v1::LEGAL_DOMAIN_KURSTRAEGER);
    request.mutable_agency()->set_certificate_identity(request.agency_id());
    Agency out;
    ASSERT_TRUE(Register("lotse-admin", request, &out).ok());
    registered.insert(out.name());
  }
  ASSERT_EQ(registered.size(), 13u);
  std::vector<std::string> seen;
  v1::ListAgenciesRequest request;
  request.set_page_size(5);
  int pages = 0;
  do {
    v1::ListAgenciesResponse page;
    grpc::Status status = List("lotse-admin", request, &page);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_LE(page.agencies_size(), 5);
    for (const Agency& a : page.agencies()) seen.push_back(a.name());
    request.set_page_token(page.next_page_token());
    ASSERT_LT(++pages, 10);
  } while (!request.page_token().empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 13u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), registered);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));

  // A token only continues the listing it came from.
  v1::ListAgenciesResponse page;
  ASSERT_TRUE(List("lotse-admin", request, &page).ok());  // page 1 again
  v1::ListAgenciesRequest other_filter;
  other_filter.set_page_token(page.next_page_token());
  other_filter.set_legal_domain(type::v1::LEGAL_DOMAIN_KOMMUNE);
  grpc::Status status = List("lotse-admin", other_filter, &page);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"page_token"});
}

TEST_P(AgencyServiceTest, EveryCallIsAuditedInAnIntactChain) {
  Agency kim, out;
  ASSERT_TRUE(Register("lotse-admin", KimKoeln(), &kim).ok());  // allowed
  ASSERT_TRUE(Get("kim-koeln", kim.name(), &out).ok());         // allowed
  Register("kim-koeln", KimKoeln("r-x"), &out);                 // denied
  Get("jobcenter-koeln", kim.name(), &out);                     // denied
  Get("lotse-admin", "agencies/nobody-here", &out);             // error
  v1::RegisterAgencyRequest bad = KimKoeln("r-bad");
  bad.mutable_agency()->set_display_name("");
  Register("lotse-admin", bad, &out);  // error

  lotse::testing::ExpectBothChainsIntact(db());
  // The bootstrap and the one change in the change chain; the read and the
  // four refused or failed calls, which changed nothing, in the read chain.
  auto report = audit::VerifyAuditChain(db());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows_checked, 2);
  audit::VerifyOptions reads;
  reads.chain = audit::Chain::kReads;
  report = audit::VerifyAuditChain(db(), reads);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows_checked, 5);

  std::map<std::string, int> outcomes;
  auto tx = db().Begin(storage::TxMode::kReadOnly);
  ASSERT_TRUE(tx.ok());
  auto rows = (*tx)->Query(
      "SELECT outcome, reason, time_micros FROM audit_log WHERE seq > 1 "
      "UNION ALL SELECT outcome, reason, time_micros FROM audit_read_log "
      "ORDER BY 3");
  ASSERT_TRUE(rows.ok());
  std::vector<std::string> reasons;
  for (const storage::Row& row : *rows) {
    ++outcomes[*row.GetText(0)];
    reasons.push_back(*row.GetText(1));
  }
  EXPECT_EQ(outcomes, (std::map<std::string, int>{
                          {"ALLOWED", 2}, {"DENIED", 2}, {"ERROR", 2}}));
  EXPECT_EQ(reasons, (std::vector<std::string>{
                         "", "", "WRONG_LEGAL_DOMAIN", "UNKNOWN_AGENCY",
                         "AGENCY_NOT_FOUND", "INVALID_ARGUMENT"}));

  std::vector<audit::AuditRecord> about_kim =
      lotse::testing::BothChainsAbout(db(), "agencies/kim-koeln");
  ASSERT_GE(about_kim.size(), 2u);
  EXPECT_EQ(about_kim[0].agency_id, "lotse-admin");
  EXPECT_EQ(about_kim[0].actor, "operator-7");
  EXPECT_EQ(about_kim[0].purpose, "agency-administration");
  EXPECT_EQ(about_kim[0].operation,
            "lotse.identity.v1.IdentityService/RegisterAgency");
  EXPECT_EQ(about_kim[1].agency_id, "kim-koeln");
  EXPECT_EQ(about_kim[1].legal_domain, "KOMMUNE");
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(AgencyServiceTest);

}  // namespace
}  // namespace lotse::identity
