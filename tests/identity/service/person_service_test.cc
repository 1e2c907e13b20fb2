// The person and agency-id RPCs through a real in-process server over
// mutual TLS, as the dev PKI's agencies (kim-koeln: KOMMUNE,
// jobcenter-koeln: JOBCENTER, abh-koeln: AUSLAENDERBEHOERDE, registered by
// lotse-admin), on SQLite and PostgreSQL, with the deployment's real rules
// file.
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/inbox.h"
#include "common/server/handler.h"
#include "common/server/server.h"
#include "common/server/service_main.h"
#include "common/storage/migrations.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/events.pb.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/service/relation_events.h"
#include "services/identity/store/migrations.h"
#include "tests/identity/service/identity_server_fixture.h"
#include "tests/support/audit_trail.h"
#include "tests/support/dev_pki.h"
#include "tests/support/test_database.h"

namespace lotse::identity {
namespace {

using ::lotse::identity::v1::IdentityService;
using ::lotse::identity::v1::Person;

v1::RegisterAgencyRequest Registration(const std::string& id,
                                       type::v1::LegalDomain domain) {
  v1::RegisterAgencyRequest request;
  request.set_request_id(absl::StrCat("reg-", id));
  request.set_agency_id(id);
  v1::Agency* agency = request.mutable_agency();
  agency->set_display_name(absl::StrCat("Agency ", id));
  agency->set_legal_domain(domain);
  agency->set_municipality_code("05315000");
  agency->set_certificate_identity(id);
  return request;
}

void AddName(Person* person, const std::string& given,
             const std::string& family, const std::string& script = "Latn") {
  v1::PersonName* name = person->add_names();
  name->set_given_names(given);
  name->set_family_names(family);
  name->set_script(script);
  name->set_kind(v1::NAME_KIND_CURRENT);
}

// Mohammed Al-Hassan from Aleppo, with the Arabic spelling of his papers.
Person Mohammed() {
  Person person;
  AddName(&person, "Mohammed", "Al-Hassan");
  AddName(&person, "محمد", "الحسن", "Arab");
  person.mutable_birth_date()->set_year(1990);
  person.mutable_birth_date()->set_month(3);
  person.mutable_birth_date()->set_day(15);
  person.set_birth_place("Aleppo");
  person.set_sex(v1::SEX_MALE);
  person.add_nationality_codes("SY");
  person.set_nationality_status(v1::NATIONALITY_STATUS_KNOWN);
  person.mutable_contact()->set_email("m.hassan@example.org");
  return person;
}

// Someone else entirely.
Person Olena() {
  Person person;
  AddName(&person, "Olena", "Kovalenko");
  person.mutable_birth_date()->set_year(1985);
  person.mutable_birth_date()->set_month(7);
  person.set_sex(v1::SEX_FEMALE);
  person.add_nationality_codes("UA");
  person.set_nationality_status(v1::NATIONALITY_STATUS_KNOWN);
  return person;
}

// What an agency holding `person`'s papers presents: the first name and
// the birth date, with the day `day` (the right one or a guess).
v1::RemitProof PapersOf(const Person& person, int day) {
  v1::RemitProof proof;
  v1::IdentifyingAttributes* a = proof.mutable_attributes();
  *a->mutable_name() = person.names(0);
  *a->mutable_birth_date() = person.birth_date();
  a->mutable_birth_date()->set_day(day);
  return proof;
}

constexpr int kMaxFailedProofsForTest = 5;

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

// The ErrorInfo metadata of a status, as the client receives it.
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

class PersonServiceTest : public IdentityServerTest {
 protected:
  void SetUp() override {
    IdentityServerTest::SetUp();
    if (HasFatalFailure()) return;

    for (const auto& [id, domain] :
         std::vector<std::pair<std::string, type::v1::LegalDomain>>{
             {"kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE},
             {"jobcenter-koeln", type::v1::LEGAL_DOMAIN_JOBCENTER},
             {"abh-koeln", type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE}}) {
      grpc::ClientContext context;
      Prepare(&context);
      v1::Agency agency;
      grpc::Status status =
          As("lotse-admin")
              ->RegisterAgency(&context, Registration(id, domain), &agency);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
  }

  void TearDown() override {
    // Whatever a test did, the audit trail must still verify.
    if (server_) lotse::testing::ExpectBothChainsIntact(db());
    IdentityServerTest::TearDown();
  }

  static void Prepare(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(20));
    context->AddMetadata("x-lotse-actor", "cw-17");
    context->AddMetadata("x-lotse-purpose", "case-management");
  }

  // Every RPC as `as`, with the test's actor and purpose.
  template <typename Request, typename Response, typename Call>
  grpc::Status Invoke(const std::string& as, Call call, const Request& request,
                      Response* response) {
    grpc::ClientContext context;
    Prepare(&context);
    auto stub = As(as);
    return ((*stub).*call)(&context, request, response);
  }

  grpc::Status Create(const std::string& as, const Person& person,
                      const std::string& request_id, Person* out,
                      bool confirm = false) {
    v1::CreatePersonRequest request;
    request.set_request_id(request_id);
    *request.mutable_person() = person;
    request.set_confirm_new_person(confirm);
    return Invoke(as, &IdentityService::Stub::CreatePerson, request, out);
  }
  grpc::Status Get(const std::string& as, const std::string& name,
                   Person* out) {
    v1::GetPersonRequest request;
    request.set_name(name);
    return Invoke(as, &IdentityService::Stub::GetPerson, request, out);
  }
  grpc::Status Update(const std::string& as, const Person& person,
                      const std::vector<std::string>& paths, Person* out) {
    v1::UpdatePersonRequest request;
    *request.mutable_person() = person;
    for (const std::string& p : paths)
      request.mutable_update_mask()->add_paths(p);
    return Invoke(as, &IdentityService::Stub::UpdatePerson, request, out);
  }
  grpc::Status Link(const std::string& as, const std::string& person,
                    v1::AgencyIdKind kind, const std::string& value,
                    v1::AgencyId* out, const std::string& request_id = "") {
    v1::LinkAgencyIdRequest request;
    request.set_parent(person);
    request.set_request_id(request_id.empty() ? absl::StrCat("l-", value)
                                              : request_id);
    request.mutable_agency_id()->set_kind(kind);
    request.mutable_agency_id()->set_value(value);
    return Invoke(as, &IdentityService::Stub::LinkAgencyId, request, out);
  }
  grpc::Status LinkWithProof(const std::string& as, const std::string& person,
                             v1::AgencyIdKind kind, const std::string& value,
                             const v1::RemitProof& proof, v1::AgencyId* out,
                             const std::string& request_id) {
    v1::LinkAgencyIdRequest request;
    request.set_parent(person);
    request.set_request_id(request_id);
    request.mutable_agency_id()->set_kind(kind);
    request.mutable_agency_id()->set_value(value);
    *request.mutable_proof() = proof;
    return Invoke(as, &IdentityService::Stub::LinkAgencyId, request, out);
  }
  grpc::Status Search(const std::string& as,
                      const v1::SearchPersonsRequest& request,
                      v1::SearchPersonsResponse* out) {
    return Invoke(as, &IdentityService::Stub::SearchPersons, request, out);
  }
  grpc::Status Duplicates(const std::string& as,
                          const v1::FindDuplicatesRequest& request,
                          v1::FindDuplicatesResponse* out) {
    return Invoke(as, &IdentityService::Stub::FindDuplicates, request, out);
  }
  grpc::Status Merge(const std::string& as, const Person& survivor,
                     const Person& merged, Person* out,
                     const std::string& request_id = "m-1") {
    v1::MergePersonsRequest request;
    request.set_request_id(request_id);
    request.set_survivor(survivor.name());
    request.set_survivor_etag(survivor.etag());
    request.set_merged(merged.name());
    request.set_merged_etag(merged.etag());
    request.set_justification("same passport number");
    return Invoke(as, &IdentityService::Stub::MergePersons, request, out);
  }

  // `person` as `as` reads it now (current etag).
  Person Fresh(const std::string& as, const Person& person) {
    Person out;
    grpc::Status status = Get(as, person.name(), &out);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }

  int64_t Count(const std::string& sql) {
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok());
    auto rows = (*tx)->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *(*rows)[0].GetInt(0) : -1;
  }
  int64_t Persons() { return Count("SELECT COUNT(*) FROM identity_persons"); }

  // The audit records about `resource`, as "agency operation outcome reason".
  std::vector<std::string> AuditAbout(const std::string& resource) {
    std::vector<std::string> out;
    for (const audit::AuditRecord& r :
         lotse::testing::BothChainsAbout(db(), resource)) {
      EXPECT_EQ(r.data_categories, std::vector<std::string>{"CORE_IDENTITY"});
      const std::string method = r.operation.substr(r.operation.rfind('/') + 1);
      out.push_back(absl::StrCat(r.agency_id, " ", method, " ",
                                 audit::OutcomeName(r.outcome),
                                 r.reason.empty() ? "" : " ", r.reason));
    }
    return out;
  }
};

TEST_P(PersonServiceTest, CreatesGetsAndUpdatesWithIdempotencyAndEtags) {
  Person created;
  grpc::Status status = Create("kim-koeln", Mohammed(), "c-1", &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(absl::StartsWith(created.name(), "persons/"));
  EXPECT_EQ(created.creating_agency(), "agencies/kim-koeln");
  EXPECT_EQ(created.names_size(), 2);
  EXPECT_EQ(created.contact().email(), "m.hassan@example.org");
  EXPECT_FALSE(created.etag().empty());

  // A retry answers with the first result and stores nothing new.
  Person again;
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "c-1", &again).ok());
  EXPECT_EQ(again.name(), created.name());
  EXPECT_EQ(Persons(), 1);
  // The same request id with other content is refused.
  status = Create("kim-koeln", Olena(), "c-1", &again);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Reason(status), "REQUEST_ID_REUSED");
  EXPECT_EQ(Persons(), 1);

  Person read;
  ASSERT_TRUE(Get("kim-koeln", created.name(), &read).ok());
  EXPECT_EQ(read.name(), created.name());
  EXPECT_EQ(read.etag(), created.etag());
  EXPECT_TRUE(read.merged_names().empty());

  Person patch;
  patch.set_name(created.name());
  patch.set_etag(created.etag());
  patch.set_birth_place("Halab");
  Person updated;
  status = Update("kim-koeln", patch, {"birth_place"}, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(updated.birth_place(), "Halab");
  EXPECT_EQ(updated.names_size(), 2);
  EXPECT_NE(updated.etag(), created.etag());

  // Codes alone may change: they are checked against the stored status.
  Person codes;
  codes.set_name(created.name());
  codes.set_etag(updated.etag());
  codes.add_nationality_codes("SY");
  codes.add_nationality_codes("LB");
  status = Update("kim-koeln", codes, {"nationality_codes"}, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(updated.nationality_codes_size(), 2);
  EXPECT_EQ(updated.birth_place(), "Halab");

  // The etag read before the updates is stale now.
  patch.set_birth_place("Aleppo");
  status = Update("kim-koeln", patch, {"birth_place"}, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Reason(status), "ETAG_MISMATCH");
  ASSERT_TRUE(Get("kim-koeln", created.name(), &read).ok());
  EXPECT_EQ(read.birth_place(), "Halab");

  // jobcenter-koeln registers its own client.
  Person olena;
  ASSERT_TRUE(Create("jobcenter-koeln", Olena(), "c-2", &olena).ok());
  ASSERT_TRUE(Get("jobcenter-koeln", olena.name(), &read).ok());
  EXPECT_EQ(read.creating_agency(), "agencies/jobcenter-koeln");

  // An administering agency does not register persons.
  status = Create("lotse-admin", Olena(), "c-3", &read);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "WRONG_LEGAL_DOMAIN");

  EXPECT_EQ(AuditAbout(created.name()),
            (std::vector<std::string>{
                "kim-koeln CreatePerson ALLOWED",
                "kim-koeln CreatePerson ALLOWED", "kim-koeln GetPerson ALLOWED",
                "kim-koeln UpdatePerson ALLOWED UPDATED:birth_place",
                "kim-koeln UpdatePerson ALLOWED UPDATED:nationality_codes",
                "kim-koeln UpdatePerson ERROR ETAG_MISMATCH",
                "kim-koeln GetPerson ALLOWED"}));
}

TEST_P(PersonServiceTest, ReadingNeedsARelationAndLinkingWithProofGivesOne) {
  Person created;
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "c-1", &created).ok());

  // The Jobcenter has no relation to this person yet.
  Person read;
  grpc::Status status = Get("jobcenter-koeln", created.name(), &read);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "NO_RELATION");
  Person patch;
  patch.set_name(created.name());
  patch.set_etag(created.etag());
  patch.set_birth_place("Homs");
  status = Update("jobcenter-koeln", patch, {"birth_place"}, &read);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Linking an id of a kind its domain may not link is refused.
  v1::AgencyId link;
  status = Link("jobcenter-koeln", created.name(),
                v1::AGENCY_ID_KIND_AZR_NUMBER, "AZR-1", &link);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "WRONG_LEGAL_DOMAIN");

  // Knowing the name is not enough: without a proof, or with one that does
  // not hold, the link is refused like a read.
  status = Link("jobcenter-koeln", created.name(),
                v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "123d456789", &link);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "NO_RELATION");
  status = LinkWithProof("jobcenter-koeln", created.name(),
                         v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "123d456789",
                         PapersOf(Mohammed(), 16), &link, "l-wrong");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "NO_RELATION");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_person_agency_ids"), 0);

  // With the papers, its BA customer number makes it an agency id holder,
  // which reads the core identity but not the contact.
  status = LinkWithProof("jobcenter-koeln", created.name(),
                         v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "123d456789",
                         PapersOf(Mohammed(), 15), &link, "l-proven");
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(link.value(), "123D456789");
  EXPECT_EQ(link.issuing_agency(), "agencies/jobcenter-koeln");
  EXPECT_TRUE(absl::StartsWith(link.name(),
                               absl::StrCat(created.name(), "/agencyIds/")));
  v1::AgencyId again;
  ASSERT_TRUE(LinkWithProof("jobcenter-koeln", created.name(),
                            v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "123d456789",
                            PapersOf(Mohammed(), 15), &again, "l-proven")
                  .ok());
  EXPECT_EQ(again.name(), link.name());
  status = Get("jobcenter-koeln", created.name(), &read);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(read.birth_place(), "Aleppo");
  EXPECT_FALSE(read.has_contact());
  ASSERT_EQ(read.withheld_categories_size(), 1);
  EXPECT_EQ(read.withheld_categories(0), type::v1::DATA_CATEGORY_CONTACT);
  // ... and may not change what it cannot read.
  Person reach = read;
  reach.mutable_contact()->set_email("other@example.org");
  status = Update("jobcenter-koeln", reach, {"contact.email"}, &read);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "NO_RELATION");
  // The registering agency reads all of it.
  Person own = Fresh("kim-koeln", created);
  EXPECT_EQ(own.contact().email(), "m.hassan@example.org");
  EXPECT_TRUE(own.withheld_categories().empty());

  // A person the Jobcenter registered itself cannot take the same number;
  // the refusal names the holder, whom the Jobcenter may read.
  Person olena;
  ASSERT_TRUE(Create("jobcenter-koeln", Olena(), "c-2", &olena).ok());
  status = Link("jobcenter-koeln", olena.name(),
                v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "123 D456789", &again,
                "l-other");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Reason(status), "AGENCY_ID_TAKEN");
  EXPECT_EQ(Metadata(status)["person"], created.name());

  // Lookup and listing by the holder.
  v1::LookupPersonByAgencyIdRequest lookup;
  lookup.set_kind(v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER);
  lookup.set_value("123D456789");
  status =
      Invoke("jobcenter-koeln", &IdentityService::Stub::LookupPersonByAgencyId,
             lookup, &read);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(read.name(), created.name());
  EXPECT_FALSE(read.has_contact());
  lookup.set_value("999");
  const grpc::Status unknown_id =
      Invoke("jobcenter-koeln", &IdentityService::Stub::LookupPersonByAgencyId,
             lookup, &read);
  EXPECT_EQ(unknown_id.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(unknown_id), "AGENCY_ID_NOT_FOUND");
  // The immigration office has no relation to the person the id names: it
  // hears exactly what it would for an id nobody holds.
  lookup.set_value("123D456789");
  const grpc::Status not_readable =
      Invoke("abh-koeln", &IdentityService::Stub::LookupPersonByAgencyId,
             lookup, &read);
  lookup.set_value("999");
  const grpc::Status not_held =
      Invoke("abh-koeln", &IdentityService::Stub::LookupPersonByAgencyId,
             lookup, &read);
  EXPECT_EQ(not_readable.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(not_readable.error_message(), not_held.error_message());
  EXPECT_EQ(Reason(not_readable), Reason(not_held));

  v1::ListAgencyIdsRequest list;
  list.set_parent(created.name());
  v1::ListAgencyIdsResponse ids;
  status =
      Invoke("kim-koeln", &IdentityService::Stub::ListAgencyIds, list, &ids);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(ids.agency_ids_size(), 1);
  EXPECT_EQ(ids.agency_ids(0).name(), link.name());

  // Only the issuing agency unlinks; afterwards the relation is gone.
  v1::UnlinkAgencyIdRequest unlink;
  unlink.set_name(link.name());
  unlink.set_etag(link.etag());
  v1::AgencyId unlinked;
  status = Invoke("kim-koeln", &IdentityService::Stub::UnlinkAgencyId, unlink,
                  &unlinked);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  status = Invoke("jobcenter-koeln", &IdentityService::Stub::UnlinkAgencyId,
                  unlink, &unlinked);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(unlinked.unlinked());
  status = Get("jobcenter-koeln", created.name(), &read);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  list.set_include_unlinked(true);
  ASSERT_TRUE(
      Invoke("kim-koeln", &IdentityService::Stub::ListAgencyIds, list, &ids)
          .ok());
  ASSERT_EQ(ids.agency_ids_size(), 1);
  EXPECT_TRUE(ids.agency_ids(0).unlinked());

  // The refusals are in the person's trail as DENIED with the reason; the
  // link says what it rests on, never the values.
  const std::vector<std::string> trail = AuditAbout(created.name());
  EXPECT_EQ(trail[1], "jobcenter-koeln GetPerson DENIED NO_RELATION");
  EXPECT_EQ(trail[2], "jobcenter-koeln UpdatePerson DENIED NO_RELATION");
  EXPECT_EQ(trail[3], "jobcenter-koeln LinkAgencyId DENIED WRONG_LEGAL_DOMAIN");
  EXPECT_EQ(trail[4], "jobcenter-koeln LinkAgencyId DENIED NO_RELATION");
  EXPECT_EQ(trail[5], "jobcenter-koeln LinkAgencyId DENIED NO_RELATION");
  EXPECT_EQ(trail[6], "jobcenter-koeln LinkAgencyId ALLOWED PROOF:ATTRIBUTES");
  ASSERT_GE(trail.size(), 2u);
  EXPECT_EQ(trail[trail.size() - 2],
            "jobcenter-koeln GetPerson DENIED NO_RELATION");
}

// A birth date cannot be found by trying: five failed proofs per agency and
// person within a day block further proofs, the right one included, with
// the same answer; another agency is not affected.
TEST_P(PersonServiceTest, FailedProofsAreLimitedPerAgencyAndPerson) {
  Person created;
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "c-1", &created).ok());
  v1::AgencyId link;
  grpc::Status last;
  for (int day = 1; day <= kMaxFailedProofsForTest; ++day) {
    last = LinkWithProof("jobcenter-koeln", created.name(),
                         v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "962D1",
                         PapersOf(Mohammed(), day), &link,
                         absl::StrCat("guess-", day));
    ASSERT_EQ(last.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  grpc::Status right = LinkWithProof(
      "jobcenter-koeln", created.name(), v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER,
      "962D1", PapersOf(Mohammed(), 15), &link, "guess-right");
  EXPECT_EQ(right.error_code(), last.error_code());
  EXPECT_EQ(right.error_message(), last.error_message());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_proof_failures"),
            kMaxFailedProofsForTest);
  // The immigration office's own proof is its own matter.
  EXPECT_TRUE(LinkWithProof("abh-koeln", created.name(),
                            v1::AGENCY_ID_KIND_IMMIGRATION_FILE_NUMBER, "ABH-1",
                            PapersOf(Mohammed(), 15), &link, "abh-proof")
                  .ok());
}

// An id another authority issued and linked proves the person too; a
// national id the caller linked itself, an unlinked one or one of another
// person does not.
TEST_P(PersonServiceTest, AnIssuedIdProvesThePerson) {
  Person created;
  ASSERT_TRUE(Create("abh-koeln", Mohammed(), "c-1", &created).ok());
  v1::AgencyId azr;
  ASSERT_TRUE(Link("abh-koeln", created.name(), v1::AGENCY_ID_KIND_AZR_NUMBER,
                   "AZR-4711", &azr)
                  .ok());
  auto issued = [](v1::AgencyIdKind kind, const std::string& value) {
    v1::RemitProof proof;
    proof.mutable_issued_id()->set_kind(kind);
    proof.mutable_issued_id()->set_value(value);
    return proof;
  };
  v1::AgencyId link;
  EXPECT_EQ(
      Reason(LinkWithProof("jobcenter-koeln", created.name(),
                           v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "962D2",
                           issued(v1::AGENCY_ID_KIND_AZR_NUMBER, "AZR-4712"),
                           &link, "wrong-azr")),
      "NO_RELATION");
  // Agency-local kinds prove nothing: their values are not unique.
  EXPECT_EQ(ViolatedFields(LinkWithProof(
                "jobcenter-koeln", created.name(),
                v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "962D2",
                issued(v1::AGENCY_ID_KIND_OTHER, "X"), &link, "local-kind")),
            (std::set<std::string>{"proof.issued_id.kind"}));
  grpc::Status proven = LinkWithProof(
      "jobcenter-koeln", created.name(), v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER,
      "962D2", issued(v1::AGENCY_ID_KIND_AZR_NUMBER, "azr-4711"), &link,
      "right-azr");
  ASSERT_TRUE(proven.ok()) << proven.error_message();
  const std::vector<std::string> trail = AuditAbout(created.name());
  EXPECT_EQ(trail.back(),
            "jobcenter-koeln LinkAgencyId ALLOWED PROOF:ISSUED_ID");
}

// Search tells an agency without a relation only that a match exists and
// its id, and the same whatever birth date it guesses; with a relation it
// sees the record (without contact) and the reasons.
TEST_P(PersonServiceTest, SearchDisclosesOnlyAMatchWithoutARelation) {
  Person created;
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "c-1", &created).ok());
  auto search = [&](const std::string& as, int day) {
    v1::SearchPersonsRequest request;
    request.set_name_query("Mohammed Al-Hassan");
    if (day > 0) {
      request.mutable_birth_date()->set_year(1990);
      request.mutable_birth_date()->set_month(3);
      request.mutable_birth_date()->set_day(day);
    }
    v1::SearchPersonsResponse response;
    EXPECT_TRUE(Search(as, request, &response).ok());
    return response;
  };
  const v1::SearchPersonsResponse right = search("jobcenter-koeln", 15);
  const v1::SearchPersonsResponse wrong = search("jobcenter-koeln", 20);
  const v1::SearchPersonsResponse none = search("jobcenter-koeln", 0);
  ASSERT_EQ(right.results_size(), 1);
  const v1::DuplicateCandidate& match = right.results(0);
  EXPECT_TRUE(match.match_only());
  Person only_name;
  only_name.set_name(created.name());
  EXPECT_EQ(match.person().SerializeAsString(), only_name.SerializeAsString());
  EXPECT_EQ(match.score(), 0);
  EXPECT_TRUE(match.reasons().empty());
  EXPECT_EQ(right.SerializeAsString(), wrong.SerializeAsString());
  EXPECT_EQ(right.SerializeAsString(), none.SerializeAsString());

  const v1::SearchPersonsResponse own = search("kim-koeln", 15);
  ASSERT_EQ(own.results_size(), 1);
  EXPECT_FALSE(own.results(0).match_only());
  EXPECT_EQ(own.results(0).person().birth_place(), "Aleppo");
  EXPECT_FALSE(own.results(0).person().has_contact());
  EXPECT_TRUE(own.results(0).strong());
  EXPECT_FALSE(own.results(0).reasons().empty());

  // FindDuplicates of a draft discloses the same way.
  v1::FindDuplicatesRequest draft;
  *draft.mutable_draft() = Mohammed();
  v1::FindDuplicatesResponse candidates;
  ASSERT_TRUE(Duplicates("jobcenter-koeln", draft, &candidates).ok());
  ASSERT_EQ(candidates.candidates_size(), 1);
  EXPECT_TRUE(candidates.candidates(0).match_only());
  EXPECT_TRUE(candidates.candidates(0).person().names().empty());

  // A bare match is on the person's trail as such.
  const std::vector<std::string> trail = AuditAbout(created.name());
  EXPECT_NE(std::find(trail.begin(), trail.end(),
                      "jobcenter-koeln SearchPersons ALLOWED MATCH_ONLY"),
            trail.end());
}

// To an agency, a person that does not exist looks exactly like one it may
// not read, on every identity RPC that names a person.
TEST_P(PersonServiceTest, AnUnknownPersonLooksLikeAnUnreadableOne) {
  Person created;
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "c-1", &created).ok());
  const std::string absent = "persons/aaaaaaaaaaaaaaaaaaaaaaaaaa";
  auto same = [](const grpc::Status& a, const grpc::Status& b) {
    EXPECT_EQ(a.error_code(), b.error_code());
    EXPECT_EQ(a.error_message(), b.error_message());
    EXPECT_EQ(ReasonOf(FromGrpcStatus(a)), ReasonOf(FromGrpcStatus(b)));
    EXPECT_EQ(a.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  };
  Person read;
  same(Get("jobcenter-koeln", created.name(), &read),
       Get("jobcenter-koeln", absent, &read));
  v1::AgencyId link;
  same(LinkWithProof("jobcenter-koeln", created.name(),
                     v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "962D3",
                     PapersOf(Mohammed(), 1), &link, "x-1"),
       LinkWithProof("jobcenter-koeln", absent,
                     v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "962D3",
                     PapersOf(Mohammed(), 1), &link, "x-2"));
  v1::ListAgencyIdsRequest list;
  v1::ListAgencyIdsResponse ids;
  list.set_parent(created.name());
  const grpc::Status list_existing = Invoke(
      "jobcenter-koeln", &IdentityService::Stub::ListAgencyIds, list, &ids);
  list.set_parent(absent);
  same(list_existing,
       Invoke("jobcenter-koeln", &IdentityService::Stub::ListAgencyIds, list,
              &ids));
  // CheckAccess about itself: denied decisions, not NOT_FOUND.
  v1::CheckAccessRequest check;
  check.set_agency("agencies/jobcenter-koeln");
  check.add_categories(type::v1::DATA_CATEGORY_CORE_IDENTITY);
  check.set_purpose("case-management");
  v1::CheckAccessResponse existing, unknown;
  check.set_person(created.name());
  ASSERT_TRUE(Invoke("jobcenter-koeln", &IdentityService::Stub::CheckAccess,
                     check, &existing)
                  .ok());
  check.set_person(absent);
  ASSERT_TRUE(Invoke("jobcenter-koeln", &IdentityService::Stub::CheckAccess,
                     check, &unknown)
                  .ok());
  ASSERT_EQ(unknown.decisions_size(), 1);
  EXPECT_EQ(existing.decisions(0).SerializeAsString(),
            unknown.decisions(0).SerializeAsString());
}

TEST_P(PersonServiceTest,
       DuplicatesAreRefusedUnlessConfirmedAndFoundAcrossScripts) {
  Person first;
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "c-1", &first).ok());

  // The same man, registered again in another spelling.
  Person again;
  AddName(&again, "Muhammad", "Alhassan");
  AddName(&again, "محمد", "الحسن", "Arab");
  again.mutable_birth_date()->set_year(1990);
  again.mutable_birth_date()->set_month(3);
  again.mutable_birth_date()->set_day(15);
  again.set_sex(v1::SEX_MALE);
  Person out;
  grpc::Status status = Create("jobcenter-koeln", again, "c-2", &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Reason(status), "POSSIBLE_DUPLICATE");
  EXPECT_EQ(Metadata(status)["candidates"], first.name());
  EXPECT_FALSE(Metadata(status)["top_score"].empty());
  EXPECT_EQ(Persons(), 1);

  // The caseworker checked and insists: created, and the override audited.
  status = Create("jobcenter-koeln", again, "c-3", &out, /*confirm=*/true);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Persons(), 2);
  EXPECT_EQ(AuditAbout(out.name()),
            std::vector<std::string>{"jobcenter-koeln CreatePerson ALLOWED "
                                     "DUPLICATE_CHECK_OVERRIDDEN"});
  EXPECT_EQ(AuditAbout(first.name()).back(),
            "jobcenter-koeln CreatePerson ALLOWED "
            "DUPLICATE_CANDIDATE_OVERRIDDEN");

  // A Latin draft finds both records: the one kim-koeln registered with
  // reasons per factor and without its contact data, the Jobcenter's as a
  // bare match (kim-koeln has no relation to it).
  Person other;
  ASSERT_TRUE(Create("kim-koeln", Olena(), "c-4", &other).ok());
  v1::FindDuplicatesRequest find;
  AddName(find.mutable_draft(), "Mohamad", "Hassan");
  find.mutable_draft()->mutable_birth_date()->set_year(1990);
  v1::FindDuplicatesResponse found;
  status = Duplicates("kim-koeln", find, &found);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_GT(found.duplicate_threshold(), 0.5);
  std::set<std::string> names;
  for (const v1::DuplicateCandidate& c : found.candidates()) {
    names.insert(c.person().name());
    EXPECT_FALSE(c.person().has_contact());
    EXPECT_EQ(c.match_only(), c.person().name() == out.name());
    if (c.match_only()) {
      EXPECT_TRUE(c.reasons().empty());
      continue;
    }
    ASSERT_FALSE(c.reasons().empty());
    EXPECT_NE(c.reasons(0).factor(), v1::MATCH_FACTOR_UNSPECIFIED);
    EXPECT_NE(c.reasons(0).method(), v1::MATCH_METHOD_UNSPECIFIED);
  }
  EXPECT_EQ(names, (std::set<std::string>{first.name(), out.name()}));

  // An existing person's duplicates do not include itself.
  find.set_person(first.name());
  status = Duplicates("kim-koeln", find, &found);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(found.candidates_size(), 1);
  EXPECT_EQ(found.candidates(0).person().name(), out.name());
  EXPECT_TRUE(found.candidates(0).match_only());
  // The Jobcenter sees its own record's strong duplicate only as a match.
  find.set_person(out.name());
  status = Duplicates("jobcenter-koeln", find, &found);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(found.candidates_size(), 1);
  EXPECT_EQ(found.candidates(0).person().name(), first.name());
  EXPECT_TRUE(found.candidates(0).match_only());
  EXPECT_FALSE(found.candidates(0).strong());
  find.set_person(first.name());
  // ... and only a caller that may read it may ask.
  status = Duplicates("abh-koeln", find, &found);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // A Latin-only record is found by its Arabic spelling.
  Person latin_only;
  AddName(&latin_only, "Yusuf", "Haddad");
  latin_only.mutable_birth_date()->set_year(1978);
  ASSERT_TRUE(Create("kim-koeln", latin_only, "c-5", &latin_only).ok());
  v1::SearchPersonsRequest search;
  search.set_name_query("يوسف حداد");
  v1::SearchPersonsResponse results;
  status = Search("kim-koeln", search, &results);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_GE(results.results_size(), 1);
  EXPECT_EQ(results.results(0).person().name(), latin_only.name());
  bool script_conversion = false;
  for (const v1::MatchReason& r : results.results(0).reasons()) {
    if (r.method() == v1::MATCH_METHOD_SCRIPT_CONVERSION) {
      script_conversion = true;
    }
  }
  EXPECT_TRUE(script_conversion);
  // Every returned person is audited as read by the searcher, a bare match
  // as such.
  EXPECT_EQ(AuditAbout(latin_only.name()).back(),
            "kim-koeln SearchPersons ALLOWED");
  status = Search("abh-koeln", search, &results);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_GE(results.results_size(), 1);
  EXPECT_TRUE(results.results(0).match_only());
  EXPECT_EQ(AuditAbout(latin_only.name()).back(),
            "abh-koeln SearchPersons ALLOWED MATCH_ONLY");

  // And a Latin query finds the Arabic-and-Latin record, best first.
  search.set_name_query("Mohammed Al Hassan");
  search.mutable_birth_date()->set_year(1990);
  search.set_page_size(1);
  status = Search("kim-koeln", search, &results);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(results.results_size(), 1);
  EXPECT_EQ(results.results(0).person().name(), first.name());
  EXPECT_FALSE(results.next_page_token().empty());
  search.set_page_token(results.next_page_token());
  status = Search("kim-koeln", search, &results);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(results.results_size(), 1);
  EXPECT_EQ(results.results(0).person().name(), out.name());
}

// A Lotse service (the cases view) reads a person it shows to an agency
// that CheckAccess allowed; it has no registry entry and no relation.
// Other person RPCs still refuse it.
TEST_P(PersonServiceTest, ServicesMayReadAPersonAndNothingElse) {
  Person created;
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "c-1", &created).ok());
  Person read;
  grpc::Status status = Get("svc-cases", created.name(), &read);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(read.name(), created.name());
  EXPECT_EQ(read.names(0).family_names(), "Al-Hassan");
  EXPECT_EQ(read.birth_date().year(), 1990);
  status = Get("svc-cases", "persons/aaaaaaaaaaaaaaaaaaaaaaaaaa", &read);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  Person updated;
  status = Update("svc-cases", created, {"birth_place"}, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "UNKNOWN_AGENCY");
  status = Create("svc-cases", Mohammed(), "c-svc", &updated, true);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "UNKNOWN_AGENCY");

  // The read is in the person's trail under the service's name.
  const std::vector<std::string> trail = AuditAbout(created.name());
  EXPECT_NE(
      std::find(trail.begin(), trail.end(), "svc-cases GetPerson ALLOWED"),
      trail.end());
}

TEST_P(PersonServiceTest, RelationsFromOtherServicesLetParticipantsRead) {
  Person created;
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "c-1", &created).ok());
  Person read;
  grpc::Status status = Get("jobcenter-koeln", created.name(), &read);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The cases service reports a step of this person's case referred to the
  // Jobcenter: it participates in the case and may read the core identity.
  lotse::cases::v1::StepReferred referred;
  referred.set_step("cases/c1/steps/s1");
  referred.set_case_name("cases/c1");
  referred.set_person(created.name());
  referred.set_receiving_agency("agencies/jobcenter-koeln");
  referred.set_referring_agency("agencies/kim-koeln");
  lotse::events::v1::Event event;
  event.set_event_id("cases-event-1");
  event.set_source("cases");
  event.mutable_payload()->PackFrom(referred);
  ASSERT_TRUE(events::ApplyEventOnce(db(), event, ApplyRelationEvent).ok());

  status = Get("jobcenter-koeln", created.name(), &read);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(read.name(), created.name());
  v1::ListPersonsRequest list;
  v1::ListPersonsResponse listed;
  ASSERT_TRUE(Invoke("jobcenter-koeln", &IdentityService::Stub::ListPersons,
                     list, &listed)
                  .ok());
  ASSERT_EQ(listed.persons_size(), 1);
  EXPECT_EQ(listed.persons(0).name(), created.name());

  // The case closes: the relation ends with it.
  lotse::cases::v1::CaseClosed closed;
  closed.set_case_name("cases/c1");
  closed.set_person(created.name());
  event.set_event_id("cases-event-2");
  event.mutable_payload()->PackFrom(closed);
  ASSERT_TRUE(events::ApplyEventOnce(db(), event, ApplyRelationEvent).ok());
  status = Get("jobcenter-koeln", created.name(), &read);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "NO_RELATION");
}

TEST_P(PersonServiceTest, MergedIdAnswersWithSurvivorAndIdsMove) {
  Person survivor, merged;
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "c-1", &survivor).ok());
  Person second = Mohammed();
  second.mutable_names(0)->set_given_names("Muhammed");
  ASSERT_TRUE(
      Create("kim-koeln", second, "c-2", &merged, /*confirm=*/true).ok());
  v1::AgencyId link;
  ASSERT_TRUE(LinkWithProof("jobcenter-koeln", merged.name(),
                            v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "555",
                            PapersOf(second, 15), &link, "l-555")
                  .ok());

  Person result;
  grpc::Status status = Merge("jobcenter-koeln", survivor, merged, &result);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "WRONG_LEGAL_DOMAIN");
  Person stale = survivor;
  stale.set_etag(merged.etag());
  status = Merge("kim-koeln", stale, merged, &result, "m-stale");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);

  status = Merge("kim-koeln", survivor, merged, &result);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(result.name(), survivor.name());
  // A retry does not merge twice.
  ASSERT_TRUE(Merge("kim-koeln", survivor, merged, &result).ok());

  Person read;
  ASSERT_TRUE(Get("kim-koeln", merged.name(), &read).ok());
  EXPECT_EQ(read.name(), survivor.name());
  EXPECT_EQ(std::vector<std::string>(read.merged_names().begin(),
                                     read.merged_names().end()),
            std::vector<std::string>{merged.name()});
  // The Jobcenter's id moved along, and with it its read access.
  ASSERT_TRUE(Get("jobcenter-koeln", merged.name(), &read).ok());
  EXPECT_EQ(read.name(), survivor.name());
  v1::ListAgencyIdsRequest list;
  list.set_parent(survivor.name());
  v1::ListAgencyIdsResponse ids;
  ASSERT_TRUE(
      Invoke("kim-koeln", &IdentityService::Stub::ListAgencyIds, list, &ids)
          .ok());
  ASSERT_EQ(ids.agency_ids_size(), 1);
  EXPECT_EQ(ids.agency_ids(0).value(), "555");

  // Writes to the merged id name the survivor.
  Person patch;
  patch.set_name(merged.name());
  patch.set_etag(merged.etag());
  patch.set_birth_place("Homs");
  status = Update("kim-koeln", patch, {"birth_place"}, &read);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(status), "PERSON_MERGED");
  EXPECT_EQ(Metadata(status)["survivor"], survivor.name());

  // One PersonMerged event, keyed by the survivor.
  auto tx = db().Begin(storage::TxMode::kReadOnly);
  ASSERT_TRUE(tx.ok());
  auto rows = (*tx)->Query("SELECT payload FROM event_outbox ORDER BY seq");
  ASSERT_TRUE(rows.ok());
  int merges = 0;
  for (const storage::Row& row : *rows) {
    lotse::events::v1::Event event;
    ASSERT_TRUE(event.ParseFromString(*row.GetBytes(0)));
    v1::PersonMerged payload;
    if (!event.payload().UnpackTo(&payload)) continue;
    ++merges;
    EXPECT_EQ(event.ordering_key(), survivor.name());
    EXPECT_EQ(payload.survivor(), survivor.name());
    EXPECT_EQ(payload.merged(), merged.name());
    EXPECT_EQ(payload.merging_agency(), "agencies/kim-koeln");
  }
  EXPECT_EQ(merges, 1);
  // The merged person's own trail shows the merge; reads through its id
  // are in the survivor's trail, whose data they disclosed.
  const std::vector<std::string> trail = AuditAbout(merged.name());
  ASSERT_EQ(trail.size(), 4u);
  EXPECT_EQ(trail[2], "kim-koeln MergePersons ALLOWED MERGED_INTO_SURVIVOR");
  EXPECT_EQ(trail[3], "kim-koeln UpdatePerson ERROR PERSON_MERGED");
}

TEST_P(PersonServiceTest, ListPersonsShowsRelatedPersonsPagedAndAudited) {
  Person mohammed, olena, tesfay;
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "c-1", &mohammed).ok());
  ASSERT_TRUE(Create("kim-koeln", Olena(), "c-2", &olena).ok());
  Person other;
  AddName(&other, "Tesfay", "Gebremedhin");
  other.mutable_birth_date()->set_year(1995);
  ASSERT_TRUE(Create("jobcenter-koeln", other, "c-3", &tesfay).ok());
  v1::AgencyId link;
  ASSERT_TRUE(LinkWithProof("jobcenter-koeln", mohammed.name(),
                            v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "123d456789",
                            PapersOf(Mohammed(), 15), &link, "l-123")
                  .ok());

  // Every page through to the end, as `as`, `page_size` at a time.
  auto list_all = [&](const std::string& as, int page_size,
                      std::vector<std::string>* names) -> grpc::Status {
    v1::ListPersonsRequest request;
    request.set_page_size(page_size);
    do {
      v1::ListPersonsResponse response;
      grpc::Status status =
          Invoke(as, &IdentityService::Stub::ListPersons, request, &response);
      if (!status.ok()) return status;
      EXPECT_LE(response.persons_size(), page_size);
      for (const Person& p : response.persons()) names->push_back(p.name());
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty());
    return grpc::Status::OK;
  };
  std::vector<std::string> names;
  ASSERT_TRUE(list_all("kim-koeln", 1, &names).ok());
  // Newest first; the Jobcenter's person is not kim-koeln's business.
  EXPECT_EQ(names, (std::vector<std::string>{olena.name(), mohammed.name()}));
  names.clear();
  ASSERT_TRUE(list_all("jobcenter-koeln", 1, &names).ok());
  EXPECT_EQ(names, (std::vector<std::string>{tesfay.name(), mohammed.name()}));
  names.clear();
  ASSERT_TRUE(list_all("abh-koeln", 0, &names).ok());
  EXPECT_TRUE(names.empty());

  // One record for the call, one read per person it disclosed.
  const std::vector<std::string> trail = AuditAbout(mohammed.name());
  EXPECT_EQ(
      std::count(trail.begin(), trail.end(), "kim-koeln ListPersons ALLOWED"),
      1);
  EXPECT_EQ(std::count(trail.begin(), trail.end(),
                       "jobcenter-koeln ListPersons ALLOWED"),
            1);
  EXPECT_EQ(
      std::count(trail.begin(), trail.end(), "abh-koeln ListPersons ALLOWED"),
      0);
  // "persons" and everything under it: five calls (kim-koeln and the
  // Jobcenter read two pages each, abh-koeln one) and the four persons
  // they disclosed.
  const std::vector<std::string> calls = AuditAbout("persons");
  EXPECT_EQ(std::count_if(calls.begin(), calls.end(),
                          [](const std::string& line) {
                            return absl::StrContains(line, " ListPersons ");
                          }),
            5 + 4);

  // A merged person is listed no more; its survivor is.
  Person merged;
  ASSERT_TRUE(Merge("kim-koeln", Fresh("kim-koeln", mohammed),
                    Fresh("kim-koeln", olena), &merged)
                  .ok());
  names.clear();
  ASSERT_TRUE(list_all("kim-koeln", 50, &names).ok());
  EXPECT_EQ(names, std::vector<std::string>{mohammed.name()});

  // Bad paging input.
  v1::ListPersonsRequest bad;
  bad.set_page_size(-1);
  v1::ListPersonsResponse response;
  grpc::Status status =
      Invoke("kim-koeln", &IdentityService::Stub::ListPersons, bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"page_size"});
  bad.set_page_size(0);
  bad.set_page_token("garbage!");
  status =
      Invoke("kim-koeln", &IdentityService::Stub::ListPersons, bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"page_token"});
  // A token continues only the listing of the agency it was issued to.
  v1::ListPersonsRequest first;
  first.set_page_size(1);
  ASSERT_TRUE(Invoke("jobcenter-koeln", &IdentityService::Stub::ListPersons,
                     first, &response)
                  .ok());
  ASSERT_FALSE(response.next_page_token().empty());
  bad.set_page_token(response.next_page_token());
  status =
      Invoke("kim-koeln", &IdentityService::Stub::ListPersons, bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"page_token"});
}

TEST_P(PersonServiceTest, BadInputIsRefusedWithAllViolationsAndStoresNothing) {
  Person bad;
  AddName(&bad, "Mo\x01hammed", "");
  AddName(&bad, "", "");
  bad.mutable_birth_date()->set_year(2999);
  bad.set_sex(static_cast<v1::Sex>(42));
  bad.set_nationality_status(static_cast<v1::NationalityStatus>(9));
  Person out;
  grpc::Status status = Create("kim-koeln", bad, "c-1", &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const std::set<std::string> fields = ViolatedFields(status);
  EXPECT_TRUE(fields.count("person.birth_date")) << status.error_message();
  EXPECT_TRUE(fields.count("person.sex"));
  EXPECT_TRUE(fields.count("person.nationality_status"));
  EXPECT_GE(fields.size(), 5u) << status.error_message();

  Person impossible = Olena();
  impossible.mutable_birth_date()->set_month(2);
  impossible.mutable_birth_date()->set_day(30);
  status = Create("kim-koeln", impossible, "c-2", &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"person.birth_date"});

  status = Create("kim-koeln", Olena(), "", &out);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"request_id"});
  EXPECT_EQ(Persons(), 0);

  v1::SearchPersonsRequest search;
  search.set_name_query("Olena");
  search.set_page_size(-1);
  v1::SearchPersonsResponse results;
  status = Search("kim-koeln", search, &results);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"page_size"});

  v1::FindDuplicatesRequest find;
  find.set_min_score(1.5);
  v1::FindDuplicatesResponse found;
  status = Duplicates("kim-koeln", find, &found);
  EXPECT_EQ(ViolatedFields(status),
            (std::set<std::string>{"subject", "min_score"}));

  ASSERT_TRUE(Create("kim-koeln", Olena(), "c-3", &out).ok());
  Person patch;
  patch.set_name(out.name());
  patch.set_etag(out.etag());
  status = Update("kim-koeln", patch, {"creating_agency"}, &patch);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status),
            std::set<std::string>{"update_mask.paths[0]"});

  patch.mutable_birth_date()->set_year(2999);
  patch.set_sex(static_cast<v1::Sex>(7));
  status = Update("kim-koeln", patch, {"birth_date", "sex"}, &patch);
  EXPECT_EQ(ViolatedFields(status),
            (std::set<std::string>{"person.birth_date", "person.sex"}));
  Person unchanged;
  ASSERT_TRUE(Get("kim-koeln", out.name(), &unchanged).ok());
  EXPECT_EQ(unchanged.etag(), out.etag());

  v1::ListAgencyIdsRequest list;
  list.set_parent(out.name());
  list.set_page_size(-1);
  v1::ListAgencyIdsResponse ids;
  status =
      Invoke("kim-koeln", &IdentityService::Stub::ListAgencyIds, list, &ids);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"page_size"});

  v1::AgencyId link;
  status = Link("kim-koeln", out.name(), static_cast<v1::AgencyIdKind>(77),
                "X\x02", &link, "l-bad");
  EXPECT_EQ(ViolatedFields(status),
            (std::set<std::string>{"agency_id.kind", "agency_id.value"}));
  EXPECT_EQ(Persons(), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_person_agency_ids"), 0);
}

// Two caseworkers register the same newcomer at the same moment: the
// duplicate check runs before the write lock, so the write phase must
// re-check what was created meanwhile. Exactly one create succeeds without
// confirmation; the others see it as a duplicate. And concurrent retries
// with one request_id create one person and all answer with it.
TEST_P(PersonServiceTest, InvalidUtf8IsNamedFieldByFieldAndStoresNothing) {
  Person bad = Mohammed();
  bad.mutable_names(0)->set_given_names(
      "Mu\xff"
      "hammad");
  bad.mutable_names(1)->set_family_names("\xc3\x28");
  bad.set_birth_place("Ale\x80ppo");
  Person out;
  grpc::Status status = Create("kim-koeln", bad, "utf8-1", &out);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();
  EXPECT_EQ(Reason(status), "INVALID_UTF8");
  EXPECT_EQ(ViolatedFields(status),
            (std::set<std::string>{"person.names[0].given_names",
                                   "person.names[1].family_names",
                                   "person.birth_place"}));
  // Nothing was stored: the same request_id with valid content creates.
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "utf8-1", &out).ok());
  v1::ListPersonsRequest list;
  v1::ListPersonsResponse listed;
  ASSERT_TRUE(
      Invoke("kim-koeln", &IdentityService::Stub::ListPersons, list, &listed)
          .ok());
  EXPECT_EQ(listed.persons_size(), 1);
}

TEST_P(PersonServiceTest, ConcurrentCreatesOfOnePersonLetExactlyOneIn) {
  constexpr int kCallers = 8;
  std::vector<grpc::Status> statuses(kCallers);
  std::vector<Person> created(kCallers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&, i] {
      statuses[i] = Create("kim-koeln", Mohammed(), absl::StrCat("same-", i),
                           &created[i]);
    });
  }
  for (std::thread& t : threads) t.join();
  int ok = 0;
  for (int i = 0; i < kCallers; ++i) {
    if (statuses[i].ok()) {
      ++ok;
      continue;
    }
    EXPECT_EQ(statuses[i].error_code(), grpc::StatusCode::ALREADY_EXISTS)
        << statuses[i].error_message();
    EXPECT_EQ(Reason(statuses[i]), "POSSIBLE_DUPLICATE");
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(Persons(), 1);

  threads.clear();
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&, i] {
      statuses[i] = Create("kim-koeln", Olena(), "one-request", &created[i]);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kCallers; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_EQ(created[i].name(), created[0].name());
  }
  EXPECT_EQ(Persons(), 2);

  // The same request_id with other content is refused, also now.
  Person other;
  grpc::Status reused =
      Create("kim-koeln", Mohammed(), "one-request", &other, true);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Reason(reused), "REQUEST_ID_REUSED");
  EXPECT_EQ(Persons(), 2);
}

// A read is on the trail before its answer arrives, and a refused read
// too; the split into a read and a write phase changes none of that.
TEST_P(PersonServiceTest, ReadsAreAuditedBeforeTheyAnswer) {
  Person m;
  ASSERT_TRUE(Create("kim-koeln", Mohammed(), "r-1", &m).ok());
  Person got;
  ASSERT_TRUE(Get("kim-koeln", m.name(), &got).ok());
  std::vector<std::string> trail = AuditAbout(m.name());
  ASSERT_FALSE(trail.empty());
  EXPECT_EQ(trail.back(), "kim-koeln GetPerson ALLOWED");
  grpc::Status denied = Get("jobcenter-koeln", m.name(), &got);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  trail = AuditAbout(m.name());
  ASSERT_FALSE(trail.empty());
  EXPECT_TRUE(
      absl::StartsWith(trail.back(), "jobcenter-koeln GetPerson DENIED"))
      << trail.back();
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(PersonServiceTest);

}  // namespace
}  // namespace lotse::identity
