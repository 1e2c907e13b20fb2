// Duplicate detection's API through a real in-process server over mutual
// TLS, on SQLite and PostgreSQL: levels and thresholds, paging of
// FindDuplicates, records registered in their original script alone, and
// birth dates in the future. The agencies are the dev PKI's (kim-koeln:
// KOMMUNE, jobcenter-koeln: JOBCENTER), registered by lotse-admin.
#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/errors/status.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "services/identity/domain/name_matching.h"
#include "tests/identity/service/identity_server_fixture.h"

namespace lotse::identity {
namespace {

using ::lotse::identity::v1::IdentityService;
using ::lotse::identity::v1::Person;

void AddName(Person* person, const std::string& given,
             const std::string& family, const std::string& script = "Latn") {
  v1::PersonName* name = person->add_names();
  name->set_given_names(given);
  name->set_family_names(family);
  name->set_script(script);
  name->set_kind(v1::NAME_KIND_CURRENT);
}

void SetBirth(Person* person, int year, int month, int day) {
  person->mutable_birth_date()->set_year(year);
  person->mutable_birth_date()->set_month(month);
  person->mutable_birth_date()->set_day(day);
}

// Mohammed Al-Hassan from Aleppo, born on `day` March 1990.
Person Mohammed(int day = 15) {
  Person person;
  AddName(&person, "Mohammed", "Al-Hassan");
  SetBirth(&person, 1990, 3, day);
  person.set_birth_place("Aleppo");
  person.set_sex(v1::SEX_MALE);
  person.add_nationality_codes("SY");
  person.set_nationality_status(v1::NATIONALITY_STATUS_KNOWN);
  return person;
}

// The same man, registered from his Arabic papers only.
Person MohammedInArabic() {
  Person person = Mohammed();
  person.clear_names();
  AddName(&person, "محمد", "الحسن", "Arab");
  return person;
}

// Oleksandr Shevchenko from Ukraine, registered in Cyrillic only.
Person OleksandrInCyrillic() {
  Person person;
  AddName(&person, "Олександр", "Шевченко", "Cyrl");
  SetBirth(&person, 1988, 11, 2);
  person.set_sex(v1::SEX_MALE);
  person.add_nationality_codes("UA");
  person.set_nationality_status(v1::NATIONALITY_STATUS_KNOWN);
  return person;
}

// The level a score has under the contract's thresholds.
v1::DuplicateLevel ExpectedLevel(double score) {
  if (score >= kStrongDuplicateScore) return v1::DUPLICATE_LEVEL_STRONG;
  if (score >= kLikelyDuplicateScore) return v1::DUPLICATE_LEVEL_LIKELY;
  if (score >= kPossibleDuplicateScore) return v1::DUPLICATE_LEVEL_POSSIBLE;
  return v1::DUPLICATE_LEVEL_UNSPECIFIED;
}

std::set<std::string> ViolatedFields(const grpc::Status& status) {
  std::set<std::string> fields;
  for (const FieldViolation& v : FieldViolationsOf(FromGrpcStatus(status))) {
    fields.insert(v.field);
  }
  return fields;
}

// The Latin entries the service made (kind ROMANIZED) of `person`.
std::vector<v1::PersonName> Romanized(const Person& person) {
  std::vector<v1::PersonName> out;
  for (const v1::PersonName& name : person.names()) {
    if (name.kind() == v1::NAME_KIND_ROMANIZED) out.push_back(name);
  }
  return out;
}

class DuplicatesServiceTest : public IdentityServerTest {
 protected:
  void SetUp() override {
    IdentityServerTest::SetUp();
    if (HasFatalFailure()) return;
    for (const auto& [id, domain] :
         std::vector<std::pair<std::string, type::v1::LegalDomain>>{
             {"kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE},
             {"jobcenter-koeln", type::v1::LEGAL_DOMAIN_JOBCENTER}}) {
      v1::RegisterAgencyRequest request;
      request.set_request_id(absl::StrCat("reg-", id));
      request.set_agency_id(id);
      request.mutable_agency()->set_display_name(absl::StrCat("Agency ", id));
      request.mutable_agency()->set_legal_domain(domain);
      request.mutable_agency()->set_municipality_code("05315000");
      request.mutable_agency()->set_certificate_identity(id);
      v1::Agency agency;
      grpc::Status status =
          Invoke("lotse-admin", &IdentityService::Stub::RegisterAgency, request,
                 &agency);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
  }

  template <typename Request, typename Response, typename Call>
  grpc::Status Invoke(const std::string& as, Call call, const Request& request,
                      Response* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    context.AddMetadata("x-lotse-actor", "cw-17");
    context.AddMetadata("x-lotse-purpose", "case-management");
    auto stub = As(as);
    return ((*stub).*call)(&context, request, response);
  }

  grpc::Status Create(const Person& person, const std::string& request_id,
                      Person* out, bool confirm = false) {
    v1::CreatePersonRequest request;
    request.set_request_id(request_id);
    *request.mutable_person() = person;
    request.set_confirm_new_person(confirm);
    return Invoke("kim-koeln", &IdentityService::Stub::CreatePerson, request,
                  out);
  }
  grpc::Status Update(const Person& person,
                      const std::vector<std::string>& paths, Person* out) {
    v1::UpdatePersonRequest request;
    *request.mutable_person() = person;
    for (const std::string& p : paths) {
      request.mutable_update_mask()->add_paths(p);
    }
    return Invoke("kim-koeln", &IdentityService::Stub::UpdatePerson, request,
                  out);
  }
  grpc::Status Get(const std::string& name, Person* out) {
    v1::GetPersonRequest request;
    request.set_name(name);
    return Invoke("kim-koeln", &IdentityService::Stub::GetPerson, request, out);
  }
  grpc::Status Duplicates(const v1::FindDuplicatesRequest& request,
                          v1::FindDuplicatesResponse* out,
                          const std::string& as = "kim-koeln") {
    return Invoke(as, &IdentityService::Stub::FindDuplicates, request, out);
  }
};

TEST_P(DuplicatesServiceTest, CandidatesCarryTheirLevelAndTheThresholds) {
  Person created;
  ASSERT_TRUE(Create(Mohammed(), "c-1", &created).ok());
  // The same name with only the birth year and a different place: a
  // weaker candidate.
  Person vague = Mohammed();
  SetBirth(&vague, 1990, 0, 0);
  vague.set_birth_place("Homs");
  Person weaker;
  ASSERT_TRUE(Create(vague, "c-2", &weaker, /*confirm=*/true).ok());

  v1::FindDuplicatesRequest request;
  *request.mutable_draft() = Mohammed();
  v1::FindDuplicatesResponse response;
  grpc::Status status = Duplicates(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.thresholds().possible(), kPossibleDuplicateScore);
  EXPECT_EQ(response.thresholds().likely(), kLikelyDuplicateScore);
  EXPECT_EQ(response.thresholds().strong(), kStrongDuplicateScore);
  EXPECT_EQ(response.duplicate_threshold(), response.thresholds().strong());
  ASSERT_EQ(response.candidates_size(), 2);
  EXPECT_EQ(response.candidates(0).person().name(), created.name());
  EXPECT_EQ(response.candidates(0).level(), v1::DUPLICATE_LEVEL_STRONG);
  std::set<v1::DuplicateLevel> levels;
  for (const v1::DuplicateCandidate& c : response.candidates()) {
    SCOPED_TRACE(c.person().name());
    EXPECT_EQ(c.level(), ExpectedLevel(c.score()));
    EXPECT_NE(c.level(), v1::DUPLICATE_LEVEL_UNSPECIFIED);
    EXPECT_EQ(c.strong(), c.level() == v1::DUPLICATE_LEVEL_STRONG);
    levels.insert(c.level());
  }
  EXPECT_EQ(levels.size(), 2u) << "the two candidates share a level";

  // min_level leaves out what is below it, together with min_score.
  request.set_min_level(v1::DUPLICATE_LEVEL_STRONG);
  v1::FindDuplicatesResponse strong_only;
  ASSERT_TRUE(Duplicates(request, &strong_only).ok());
  ASSERT_EQ(strong_only.candidates_size(), 1);
  EXPECT_EQ(strong_only.candidates(0).person().name(), created.name());
  request.set_min_level(v1::DUPLICATE_LEVEL_POSSIBLE);
  request.set_min_score(0.999);
  v1::FindDuplicatesResponse both;
  ASSERT_TRUE(Duplicates(request, &both).ok());
  for (const v1::DuplicateCandidate& c : both.candidates()) {
    EXPECT_GE(c.score(), 0.999);
  }
  request.set_min_score(0);
  request.set_min_level(static_cast<v1::DuplicateLevel>(42));
  v1::FindDuplicatesResponse refused;
  status = Duplicates(request, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"min_level"});

  // A bare match discloses no level.
  request.set_min_level(v1::DUPLICATE_LEVEL_UNSPECIFIED);
  v1::FindDuplicatesResponse bare;
  ASSERT_TRUE(Duplicates(request, &bare, "jobcenter-koeln").ok());
  ASSERT_FALSE(bare.candidates().empty());
  for (const v1::DuplicateCandidate& c : bare.candidates()) {
    EXPECT_TRUE(c.match_only());
    EXPECT_EQ(c.level(), v1::DUPLICATE_LEVEL_UNSPECIFIED);
    EXPECT_FALSE(c.strong());
  }

  // Paging through bare matches: the token does not carry the names-only
  // score the listing is ranked by, and the pages still cover all.
  v1::FindDuplicatesRequest bare_paged = request;
  bare_paged.set_page_size(1);
  v1::FindDuplicatesResponse first_bare;
  ASSERT_TRUE(Duplicates(bare_paged, &first_bare, "jobcenter-koeln").ok());
  ASSERT_EQ(first_bare.candidates_size(), 1);
  ASSERT_FALSE(first_bare.next_page_token().empty());
  // A token is readable base64: what it carries must be disclosable.
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(first_bare.next_page_token(), &raw));
  const std::string last_id = std::string(
      absl::StripPrefix(first_bare.candidates(0).person().name(), "persons/"));
  EXPECT_TRUE(absl::StrContains(raw, absl::StrCat("-/", last_id)));
  EXPECT_FALSE(absl::StrContains(raw, "0."));
  bare_paged.set_page_token(first_bare.next_page_token());
  v1::FindDuplicatesResponse second_bare;
  ASSERT_TRUE(Duplicates(bare_paged, &second_bare, "jobcenter-koeln").ok());
  ASSERT_EQ(second_bare.candidates_size(), 1);
  EXPECT_NE(second_bare.candidates(0).person().name(),
            first_bare.candidates(0).person().name());

  // SearchPersons carries the same.
  v1::SearchPersonsRequest search;
  search.set_name_query("Mohammed Al-Hassan");
  v1::SearchPersonsResponse results;
  ASSERT_TRUE(Invoke("kim-koeln", &IdentityService::Stub::SearchPersons, search,
                     &results)
                  .ok());
  EXPECT_EQ(results.thresholds().strong(), kStrongDuplicateScore);
  EXPECT_EQ(results.thresholds().likely(), kLikelyDuplicateScore);
  EXPECT_EQ(results.thresholds().possible(), kPossibleDuplicateScore);
  ASSERT_FALSE(results.results().empty());
  for (const v1::DuplicateCandidate& c : results.results()) {
    EXPECT_EQ(c.level(), ExpectedLevel(c.score()));
    EXPECT_EQ(c.strong(), c.level() == v1::DUPLICATE_LEVEL_STRONG);
  }
}

TEST_P(DuplicatesServiceTest, FindDuplicatesPagesThroughAllCandidatesOnce) {
  // Seven records of one name, born on different days of one month: seven
  // candidates of a draft, some with equal scores.
  for (int day = 1; day <= 7; ++day) {
    Person created;
    grpc::Status status = Create(Mohammed(day + 10), absl::StrCat("c-", day),
                                 &created, /*confirm=*/true);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  v1::FindDuplicatesRequest request;
  *request.mutable_draft() = Mohammed(13);
  request.set_min_score(0.01);
  request.set_page_size(50);
  v1::FindDuplicatesResponse all;
  ASSERT_TRUE(Duplicates(request, &all).ok());
  ASSERT_EQ(all.candidates_size(), 7);
  EXPECT_TRUE(all.next_page_token().empty());

  request.set_page_size(3);
  std::vector<std::string> paged;
  std::vector<int> page_sizes;
  std::string first_token;
  do {
    v1::FindDuplicatesResponse page;
    grpc::Status status = Duplicates(request, &page);
    ASSERT_TRUE(status.ok()) << status.error_message();
    page_sizes.push_back(page.candidates_size());
    for (const v1::DuplicateCandidate& c : page.candidates()) {
      paged.push_back(c.person().name());
    }
    if (first_token.empty()) first_token = page.next_page_token();
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() && page_sizes.size() < 10);
  EXPECT_EQ(page_sizes, (std::vector<int>{3, 3, 1}));
  std::vector<std::string> expected;
  for (const v1::DuplicateCandidate& c : all.candidates()) {
    expected.push_back(c.person().name());
  }
  EXPECT_EQ(paged, expected);
  // Best first, ties by name.
  for (int i = 1; i < all.candidates_size(); ++i) {
    const v1::DuplicateCandidate& a = all.candidates(i - 1);
    const v1::DuplicateCandidate& b = all.candidates(i);
    EXPECT_TRUE(
        a.score() > b.score() ||
        (a.score() == b.score() && a.person().name() < b.person().name()))
        << i;
  }

  // A token continues only the request it came from; page_size may change.
  ASSERT_FALSE(first_token.empty());
  request.set_page_token(first_token);
  request.set_page_size(10);
  v1::FindDuplicatesResponse rest;
  ASSERT_TRUE(Duplicates(request, &rest).ok());
  EXPECT_EQ(rest.candidates_size(), 4);
  request.set_min_score(0.02);
  v1::FindDuplicatesResponse refused;
  grpc::Status status = Duplicates(request, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"page_token"});
  request.set_min_score(0.01);
  request.set_page_token("not-a-token");
  status = Duplicates(request, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), std::set<std::string>{"page_token"});
}

TEST_P(DuplicatesServiceTest, OriginalScriptAloneIsRomanisedByTheService) {
  Person arabic;
  grpc::Status status = Create(MohammedInArabic(), "c-ar", &arabic);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(Romanized(arabic).size(), 1u);
  const v1::PersonName latin = Romanized(arabic)[0];
  EXPECT_EQ(latin.script(), "Latn");
  EXPECT_FALSE(latin.given_names().empty());
  EXPECT_FALSE(latin.family_names().empty());

  Person ukrainian;
  status = Create(OleksandrInCyrillic(), "c-uk", &ukrainian);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(Romanized(ukrainian).size(), 1u);
  EXPECT_EQ(Romanized(ukrainian)[0].given_names(), "Oleksandr");
  EXPECT_EQ(Romanized(ukrainian)[0].family_names(), "Shevchenko");

  // Stored, and read back as stored.
  Person read;
  ASSERT_TRUE(Get(ukrainian.name(), &read).ok());
  ASSERT_EQ(Romanized(read).size(), 1u);
  EXPECT_EQ(Romanized(read)[0].given_names(), "Oleksandr");
  ASSERT_TRUE(Get(arabic.name(), &read).ok());
  ASSERT_EQ(Romanized(read).size(), 1u);
  EXPECT_EQ(Romanized(read)[0].SerializeAsString(), latin.SerializeAsString());

  // A Latin draft finds the person registered in Arabic alone.
  v1::FindDuplicatesRequest request;
  *request.mutable_draft() = Mohammed();
  v1::FindDuplicatesResponse response;
  ASSERT_TRUE(Duplicates(request, &response).ok());
  ASSERT_FALSE(response.candidates().empty());
  EXPECT_EQ(response.candidates(0).person().name(), arabic.name());
  EXPECT_NE(response.candidates(0).level(), v1::DUPLICATE_LEVEL_UNSPECIFIED);

  // Sending the romanised entry back changes nothing; a made-up one is
  // ignored, not stored.
  Person patch = read;
  patch.mutable_names(1)->set_given_names("Invented");
  Person updated;
  status = Update(patch, {"names"}, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(Romanized(updated).size(), 1u);
  EXPECT_EQ(Romanized(updated)[0].SerializeAsString(),
            latin.SerializeAsString());

  // Names changed to Cyrillic (and the nationality to Ukrainian):
  // romanised afresh, by the Ukrainian rules.
  patch = updated;
  patch.clear_names();
  AddName(&patch, "Григорій", "", "Cyrl");
  patch.set_nationality_codes(0, "UA");
  status = Update(patch, {"names", "nationality_codes"}, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(Romanized(updated).size(), 1u);
  EXPECT_EQ(Romanized(updated)[0].given_names(), "Hryhoriy");

  // Given a Latin name, the record keeps no romanised one.
  patch = updated;
  patch.clear_names();
  AddName(&patch, "Hryhorii", "Bondar");
  AddName(&patch, "Григорій", "Бондар", "Cyrl");
  status = Update(patch, {"names"}, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(Romanized(updated).empty());
  EXPECT_EQ(updated.names_size(), 2);
}

TEST_P(DuplicatesServiceTest, FutureBirthDatesAreRefusedEverywhere) {
  const absl::CivilDay today =
      absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
  struct Case {
    const char* what;
    int year, month, day;
  };
  // Two days ahead, so that no time zone makes it today.
  const absl::CivilDay ahead = today + 2;
  const Case cases[] = {
      {"full date", static_cast<int>(ahead.year()), ahead.month(), ahead.day()},
      {"year and month", static_cast<int>(today.year()) + 1, 1, 0},
      {"year only", static_cast<int>(today.year()) + 1, 0, 0},
  };
  Person existing;
  ASSERT_TRUE(Create(Mohammed(), "c-0", &existing).ok());
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Person future = Mohammed();
    SetBirth(&future, c.year, c.month, c.day);
    Person out;
    grpc::Status status =
        Create(future, absl::StrCat("c-", ++n), &out, /*confirm=*/true);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(ViolatedFields(status),
              std::set<std::string>{"person.birth_date"});

    Person patch = existing;
    SetBirth(&patch, c.year, c.month, c.day);
    status = Update(patch, {"birth_date"}, &out);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(ViolatedFields(status),
              std::set<std::string>{"person.birth_date"});

    v1::FindDuplicatesRequest request;
    *request.mutable_draft() = future;
    v1::FindDuplicatesResponse response;
    status = Duplicates(request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(ViolatedFields(status),
              std::set<std::string>{"draft.birth_date"});
  }
  Person unchanged;
  ASSERT_TRUE(Get(existing.name(), &unchanged).ok());
  EXPECT_EQ(unchanged.etag(), existing.etag());
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(DuplicatesServiceTest);

}  // namespace
}  // namespace lotse::identity
