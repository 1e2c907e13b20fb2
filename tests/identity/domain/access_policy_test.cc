#include "services/identity/domain/access_policy.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dev_pki.h"

namespace lotse::identity {
namespace {

using ::testing::HasSubstr;

using C = DataCategory;
using D = LegalDomain;
using R = Relation;

constexpr char kPerson[] = "person-7f3a";
constexpr char kPurpose[] = "case-management";

// Every domain that represents an agency working with persons, i.e. all but
// ADMINISTRATION.
const std::vector<D> kAgencyDomains = {
    D::kKommune,        D::kAuslaenderbehoerde, D::kBamf,   D::kJobcenter,
    D::kArbeitsagentur, D::kKurstraeger,        D::kKammer, D::kFreierTraeger,
    D::kJugendamt,      D::kSozialamt};
const std::vector<R> kAllRelations = {R::kCaseOwner, R::kCaseParticipant,
                                      R::kAgencyIdHolder, R::kServesPerson};

std::string ShippedRulesPath() {
  return lotse::testing::SourceDir() + "/config/access-rules.conf";
}

AccessPolicy LoadShipped() {
  absl::StatusOr<AccessPolicy> policy =
      AccessPolicy::LoadFile(ShippedRulesPath());
  EXPECT_TRUE(policy.ok()) << policy.status();
  if (!policy.ok()) std::abort();
  return *std::move(policy);
}

AccessRequest Request(D domain, C category, std::vector<R> relations = {},
                      std::string agency_id = "agency-1") {
  AccessRequest request;
  request.agency_id = std::move(agency_id);
  request.legal_domain = domain;
  request.person_id = kPerson;
  request.category = category;
  request.purpose = kPurpose;
  request.relations = std::move(relations);
  return request;
}

std::string Describe(D domain, C category, const std::vector<R>& relations) {
  std::vector<std::string> names;
  for (R relation : relations) names.emplace_back(RelationName(relation));
  return absl::StrCat(LegalDomainName(domain), " reads ",
                      DataCategoryName(category), " with relations {",
                      absl::StrJoin(names, ","), "}");
}

// A decision printed the way a reviewer reads it: "LEGAL_BASIS rule-id",
// "CONSENT name", "OWNER" or the denial reason.
std::string Outcome(const AccessDecision& decision) {
  if (!decision.allowed) {
    return std::string(AccessDenialReasonName(decision.denial_reason));
  }
  switch (decision.basis) {
    case AccessBasis::kLegalBasis:
      return absl::StrCat("LEGAL_BASIS ", decision.rule_id);
    case AccessBasis::kConsent:
      return absl::StrCat("CONSENT ", decision.consent);
    default:
      return std::string(AccessBasisName(decision.basis));
  }
}

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01

Consent HealthConsentFor(std::string recipient_agency) {
  Consent consent;
  consent.name = absl::StrCat("persons/", kPerson, "/consents/c1");
  consent.person_id = kPerson;
  consent.categories = {C::kHealth};
  consent.recipient_agency = std::move(recipient_agency);
  consent.purposes = {"counselling", kPurpose};
  consent.valid_from = kNow - absl::Hours(24 * 30);
  consent.valid_until = kNow + absl::Hours(24 * 30);
  return consent;
}

// --- The shipped rules file ------------------------------------------------

TEST(ShippedRulesTest, LoadsAndIsWellFormed) {
  AccessPolicy policy = LoadShipped();
  ASSERT_FALSE(policy.rules().empty());
  std::set<std::string> ids;
  for (const AccessRule& rule : policy.rules()) {
    SCOPED_TRACE(rule.id);
    EXPECT_TRUE(ids.insert(rule.id).second) << "duplicate rule id";
    EXPECT_NE(DataCategoryName(rule.category), "UNSPECIFIED");
    EXPECT_FALSE(policy.IsPrivate(rule.category));
    EXPECT_FALSE(rule.readers.empty());
    EXPECT_FALSE(rule.basis.empty());
    EXPECT_GT(rule.line, 0);
    EXPECT_EQ(policy.FindRule(rule.id), &rule);
  }
  EXPECT_EQ(policy.FindRule("no-such-rule"), nullptr);
  EXPECT_TRUE(policy.IsPrivate(C::kPrivateNotes));
}

TEST(ShippedRulesTest, RuleIdsAreUniqueInTheFileText) {
  // Independent of the parser: count "rule <id>" lines in the raw text.
  std::ifstream file(ShippedRulesPath());
  ASSERT_TRUE(file.is_open());
  std::map<std::string, int> seen;
  std::string line;
  std::regex rule_line(R"(^\s*rule\s+(\S+))");
  while (std::getline(file, line)) {
    std::smatch match;
    if (std::regex_search(line, match, rule_line)) ++seen[match[1]];
  }
  EXPECT_FALSE(seen.empty());
  for (const auto& [id, count] : seen) EXPECT_EQ(count, 1) << id;
}

TEST(ShippedRulesTest, WritersFollowTheDesignTable) {
  AccessPolicy policy = LoadShipped();
  EXPECT_TRUE(policy.MayWrite(D::kAuslaenderbehoerde, C::kResidenceStatus));
  for (D domain : AllLegalDomains()) {
    if (domain == D::kAuslaenderbehoerde) continue;
    EXPECT_FALSE(policy.MayWrite(domain, C::kResidenceStatus))
        << LegalDomainName(domain);
  }
  for (D domain :
       {D::kBamf, D::kKurstraeger, D::kAuslaenderbehoerde, D::kJobcenter}) {
    EXPECT_TRUE(policy.MayWrite(domain, C::kLanguage));
  }
  EXPECT_FALSE(policy.MayWrite(D::kArbeitsagentur, C::kLanguage));
  for (D domain : {D::kJobcenter, D::kArbeitsagentur, D::kKammer}) {
    EXPECT_TRUE(policy.MayWrite(domain, C::kEmployment));
  }
  EXPECT_FALSE(policy.MayWrite(D::kKommune, C::kEmployment));
  for (D domain : kAgencyDomains) {
    EXPECT_TRUE(policy.MayWrite(domain, C::kCoreIdentity));
    EXPECT_TRUE(policy.MayWrite(domain, C::kCaseStatus));
  }
  // The operator of the deployment touches no person's data.
  for (C category : AllDataCategories()) {
    EXPECT_FALSE(policy.MayWrite(D::kAdministration, category));
  }
  EXPECT_FALSE(policy.MayWrite(D::kKommune, C::kUnspecified));
}

// The whole DESIGN.md section 4 table, for every legal domain and every
// category, once with every relation a caller can have and once with none.
// `allowed_*` list the domains that get in; the others are denied with
// `reason` below.
TEST(ShippedRulesTest, DesignTableEveryDomainTimesEveryCategory) {
  AccessPolicy policy = LoadShipped();
  const std::vector<D> all_agencies = kAgencyDomains;
  struct Row {
    C category;
    std::vector<D> allowed_with_relations;
    std::vector<D> allowed_without_relations;
    // Domains denied only for want of a relation (NO_RELATION).
    std::vector<D> need_relation;
  };
  const std::vector<Row> table = {
      {C::kCoreIdentity, all_agencies, {}, all_agencies},
      {C::kResidenceStatus,
       {D::kAuslaenderbehoerde, D::kBamf, D::kJobcenter, D::kArbeitsagentur,
        D::kKommune},
       {D::kAuslaenderbehoerde, D::kBamf, D::kJobcenter, D::kArbeitsagentur},
       {D::kKommune}},
      {C::kLanguage,
       {D::kBamf, D::kAuslaenderbehoerde, D::kJobcenter, D::kKommune},
       {D::kBamf, D::kAuslaenderbehoerde, D::kJobcenter},
       {D::kKommune}},
      {C::kEmployment,
       {D::kJobcenter, D::kArbeitsagentur},
       {D::kJobcenter, D::kArbeitsagentur},
       {}},
      {C::kCaseStatus, all_agencies, {}, all_agencies},
      {C::kPrivateNotes, {}, {}, {}},
      {C::kHealth, {}, {}, {}},
      {C::kFamily, {}, {}, {}},
      {C::kContact, all_agencies, {}, all_agencies},
  };
  ASSERT_EQ(table.size(), AllDataCategories().size());

  auto contains = [](const std::vector<D>& domains, D domain) {
    return std::find(domains.begin(), domains.end(), domain) != domains.end();
  };
  for (const Row& row : table) {
    for (D domain : AllLegalDomains()) {
      for (bool with_relations : {true, false}) {
        std::vector<R> relations =
            with_relations ? kAllRelations : std::vector<R>{};
        SCOPED_TRACE(Describe(domain, row.category, relations));
        AccessDecision decision =
            policy.Decide(Request(domain, row.category, relations), kNow);
        EXPECT_EQ(decision.category, row.category);
        bool expect_allowed =
            contains(with_relations ? row.allowed_with_relations
                                    : row.allowed_without_relations,
                     domain);
        ASSERT_EQ(decision.allowed, expect_allowed) << Outcome(decision);
        if (expect_allowed) {
          EXPECT_EQ(decision.basis, AccessBasis::kLegalBasis);
          EXPECT_NE(policy.FindRule(decision.rule_id), nullptr);
          EXPECT_EQ(decision.denial_reason, AccessDenialReason::kUnspecified);
          continue;
        }
        AccessDenialReason expected_reason = AccessDenialReason::kNoLegalBasis;
        if (domain == D::kDataProtection) {
          expected_reason = AccessDenialReason::kNoLegalBasis;
        } else if (row.category == C::kPrivateNotes) {
          expected_reason = AccessDenialReason::kPrivateToWriter;
        } else if (!with_relations && contains(row.need_relation, domain)) {
          expected_reason = AccessDenialReason::kNoRelation;
        }
        EXPECT_EQ(Outcome(decision), AccessDenialReasonName(expected_reason));
        EXPECT_EQ(decision.basis, AccessBasis::kUnspecified);
        EXPECT_TRUE(decision.rule_id.empty());
      }
    }
  }
}

// The same table with single relations, naming the rule each access rests
// on: which relation opens what.
// An agency id opens who the person is, never how to reach them: contact
// needs a case or a service relation (or having registered the person).
TEST(ShippedRulesTest, AnAgencyIdAloneOpensCoreIdentityButNotContact) {
  AccessPolicy policy = LoadShipped();
  for (D domain : kAgencyDomains) {
    SCOPED_TRACE(LegalDomainName(domain));
    EXPECT_TRUE(
        policy
            .Decide(Request(domain, C::kCoreIdentity, {R::kAgencyIdHolder}),
                    kNow)
            .allowed);
    EXPECT_EQ(Outcome(policy.Decide(
                  Request(domain, C::kContact, {R::kAgencyIdHolder}), kNow)),
              "NO_RELATION");
    for (R relation : {R::kCaseOwner, R::kCaseParticipant, R::kServesPerson}) {
      EXPECT_TRUE(
          policy.Decide(Request(domain, C::kContact, {relation}), kNow).allowed)
          << RelationName(relation);
    }
  }
}

TEST(ShippedRulesTest, DesignTableRowByRowWithSingleRelations) {
  AccessPolicy policy = LoadShipped();
  struct Row {
    D domain;
    C category;
    std::vector<R> relations;
    std::string outcome;
  };
  const std::vector<Row> rows = {
      // Core identity: case participation, an agency id, or serving the
      // person each suffice; owning a case is participating in it.
      {D::kKurstraeger,
       C::kCoreIdentity,
       {R::kServesPerson},
       "LEGAL_BASIS core-identity.working-with-person"},
      {D::kArbeitsagentur,
       C::kCoreIdentity,
       {R::kAgencyIdHolder},
       "LEGAL_BASIS core-identity.working-with-person"},
      {D::kFreierTraeger,
       C::kCoreIdentity,
       {R::kCaseParticipant},
       "LEGAL_BASIS core-identity.working-with-person"},
      {D::kKommune,
       C::kCoreIdentity,
       {R::kCaseOwner},
       "LEGAL_BASIS core-identity.working-with-person"},
      {D::kJugendamt, C::kCoreIdentity, {}, "NO_RELATION"},
      {D::kAdministration, C::kCoreIdentity, kAllRelations, "NO_LEGAL_BASIS"},

      // Residence status: federal agencies without a relation; the KOMMUNE
      // only as case owner, not as a mere participant.
      {D::kBamf,
       C::kResidenceStatus,
       {},
       "LEGAL_BASIS residence-status.federal-agencies"},
      {D::kJobcenter,
       C::kResidenceStatus,
       {},
       "LEGAL_BASIS residence-status.federal-agencies"},
      {D::kArbeitsagentur,
       C::kResidenceStatus,
       {},
       "LEGAL_BASIS residence-status.federal-agencies"},
      {D::kAuslaenderbehoerde,
       C::kResidenceStatus,
       {},
       "LEGAL_BASIS residence-status.immigration-office"},
      {D::kKommune,
       C::kResidenceStatus,
       {R::kCaseOwner},
       "LEGAL_BASIS residence-status.kommune-case-owner"},
      {D::kKommune, C::kResidenceStatus, {R::kCaseParticipant}, "NO_RELATION"},
      {D::kKommune,
       C::kResidenceStatus,
       {R::kCaseParticipant, R::kAgencyIdHolder, R::kServesPerson},
       "NO_RELATION"},
      {D::kKurstraeger,
       C::kResidenceStatus,
       {R::kServesPerson},
       "NO_LEGAL_BASIS"},
      {D::kFreierTraeger,
       C::kResidenceStatus,
       {R::kCaseParticipant},
       "NO_LEGAL_BASIS"},

      // Language.
      {D::kBamf,
       C::kLanguage,
       {},
       "LEGAL_BASIS language.integration-course-bodies"},
      {D::kAuslaenderbehoerde,
       C::kLanguage,
       {},
       "LEGAL_BASIS language.integration-course-bodies"},
      {D::kJobcenter,
       C::kLanguage,
       {},
       "LEGAL_BASIS language.integration-course-bodies"},
      {D::kKommune,
       C::kLanguage,
       {R::kCaseOwner},
       "LEGAL_BASIS language.kommune-case-owner"},
      {D::kKommune, C::kLanguage, {R::kCaseParticipant}, "NO_RELATION"},
      {D::kKurstraeger, C::kLanguage, {R::kServesPerson}, "NO_LEGAL_BASIS"},
      {D::kArbeitsagentur, C::kLanguage, kAllRelations, "NO_LEGAL_BASIS"},

      // Employment.
      {D::kJobcenter,
       C::kEmployment,
       {},
       "LEGAL_BASIS employment.labour-market-agencies"},
      {D::kArbeitsagentur,
       C::kEmployment,
       {},
       "LEGAL_BASIS employment.labour-market-agencies"},
      {D::kKammer, C::kEmployment, {R::kServesPerson}, "NO_LEGAL_BASIS"},
      {D::kKommune, C::kEmployment, {R::kCaseOwner}, "NO_LEGAL_BASIS"},

      // Case status: participants only.
      {D::kJobcenter,
       C::kCaseStatus,
       {R::kCaseParticipant},
       "LEGAL_BASIS case-status.participants"},
      {D::kKommune,
       C::kCaseStatus,
       {R::kCaseOwner},
       "LEGAL_BASIS case-status.participants"},
      {D::kKurstraeger,
       C::kCaseStatus,
       {R::kServesPerson, R::kAgencyIdHolder},
       "NO_RELATION"},

      // Private notes, health, family: no rule at all.
      {D::kKommune, C::kPrivateNotes, {R::kCaseOwner}, "PRIVATE_TO_WRITER"},
      {D::kJugendamt, C::kFamily, kAllRelations, "NO_LEGAL_BASIS"},
      {D::kKommune, C::kHealth, {R::kCaseOwner}, "NO_LEGAL_BASIS"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(Describe(row.domain, row.category, row.relations));
    EXPECT_EQ(Outcome(policy.Decide(
                  Request(row.domain, row.category, row.relations), kNow)),
              row.outcome);
  }
}

// --- Ownership ---------------------------------------------------------------

TEST(OwnershipTest, WriterReadsWhatItWrote) {
  AccessPolicy policy = LoadShipped();
  struct Case {
    D domain;
    C category;
  };
  // Writers without a reading rule for the category.
  for (Case c : std::vector<Case>{{D::kKurstraeger, C::kLanguage},
                                  {D::kKammer, C::kEmployment},
                                  {D::kFreierTraeger, C::kHealth},
                                  {D::kJugendamt, C::kFamily},
                                  {D::kSozialamt, C::kPrivateNotes},
                                  {D::kKommune, C::kPrivateNotes}}) {
    SCOPED_TRACE(Describe(c.domain, c.category, {}));
    AccessRequest request = Request(c.domain, c.category);
    EXPECT_FALSE(policy.Decide(request, kNow).allowed);
    request.caller_wrote_data = true;
    AccessDecision decision = policy.Decide(request, kNow);
    EXPECT_TRUE(decision.allowed);
    EXPECT_EQ(decision.basis, AccessBasis::kOwner);
    EXPECT_TRUE(decision.rule_id.empty());
  }
}

TEST(ShippedRulesTest, TheDataProtectionRoleReadsNoPersonData) {
  AccessPolicy policy = LoadShipped();
  for (C category : AllDataCategories()) {
    SCOPED_TRACE(Describe(D::kDataProtection, category, kAllRelations));
    AccessDecision decision = policy.Decide(
        Request(D::kDataProtection, category, kAllRelations), kNow);
    EXPECT_FALSE(decision.allowed);
    EXPECT_NE(decision.denial_reason, AccessDenialReason::kUnspecified);
  }
}

// Found by the access-rules fuzzer: a private category let the role read
// back what it was said to have written, before the role itself was checked.
TEST(ShippedRulesTest, TheDataProtectionRoleReadsNoPersonDataItWrote) {
  AccessPolicy policy = LoadShipped();
  for (C category : AllDataCategories()) {
    SCOPED_TRACE(Describe(D::kDataProtection, category, kAllRelations));
    AccessRequest request =
        Request(D::kDataProtection, category, kAllRelations);
    request.caller_wrote_data = true;
    AccessDecision decision = policy.Decide(request, kNow);
    EXPECT_FALSE(decision.allowed);
    EXPECT_EQ(decision.denial_reason, AccessDenialReason::kNoLegalBasis);
  }
}

TEST(OwnershipTest, OwnerIsReportedBeforeLegalBasis) {
  AccessPolicy policy = LoadShipped();
  AccessRequest request = Request(D::kJobcenter, C::kEmployment);
  request.caller_wrote_data = true;
  EXPECT_EQ(Outcome(policy.Decide(request, kNow)), "OWNER");
}

TEST(OwnershipTest, PrivateNotesNeverOpenToOthersEvenWithConsent) {
  AccessPolicy policy = LoadShipped();
  Consent consent = HealthConsentFor("");
  consent.categories = AllDataCategories();  // includes PRIVATE_NOTES
  consent.recipient_legal_domain = D::kKommune;
  consent.purposes = {kPurpose};
  Consent to_agency = consent;
  to_agency.name = "persons/person-7f3a/consents/c2";
  to_agency.recipient_agency = "kim-koeln";

  // Another agency, even of the writer's own domain, with every relation
  // and consents naming it and its domain.
  AccessRequest request =
      Request(D::kKommune, C::kPrivateNotes, kAllRelations, "kim-koeln");
  request.consents = {consent, to_agency};
  EXPECT_EQ(Outcome(policy.Decide(request, kNow)), "PRIVATE_TO_WRITER");

  // The same consents do open another category.
  request.category = C::kHealth;
  EXPECT_EQ(Outcome(policy.Decide(request, kNow)),
            "CONSENT persons/person-7f3a/consents/c1");
}

// --- Consents --------------------------------------------------------------

class ConsentTest : public ::testing::Test {
 protected:
  AccessPolicy policy_ = LoadShipped();

  // A welfare organisation asks for HEALTH: only a consent can open it.
  AccessRequest Ask(std::vector<Consent> consents,
                    std::string agency = "caritas-koeln",
                    D domain = D::kFreierTraeger) {
    AccessRequest request = Request(domain, C::kHealth, {}, std::move(agency));
    request.consents = std::move(consents);
    return request;
  }
  std::string DecideAt(const AccessRequest& request, absl::Time now) {
    return Outcome(policy_.Decide(request, now));
  }
};

TEST_F(ConsentTest, ConsentToAnAgencyOpensItForThatAgencyOnly) {
  Consent consent = HealthConsentFor("caritas-koeln");
  EXPECT_EQ(DecideAt(Ask({consent}), kNow),
            "CONSENT persons/person-7f3a/consents/c1");
  EXPECT_EQ(DecideAt(Ask({consent}, "diakonie-bonn"), kNow), "NO_LEGAL_BASIS");
}

TEST_F(ConsentTest, ConsentToADomainOpensItForEveryAgencyOfTheDomain) {
  Consent consent = HealthConsentFor("");
  consent.recipient_legal_domain = D::kFreierTraeger;
  EXPECT_TRUE(policy_.Decide(Ask({consent}, "caritas-koeln"), kNow).allowed);
  EXPECT_TRUE(policy_.Decide(Ask({consent}, "diakonie-bonn"), kNow).allowed);
  EXPECT_EQ(DecideAt(Ask({consent}, "jugendamt-koeln", D::kJugendamt), kNow),
            "NO_LEGAL_BASIS");
}

TEST_F(ConsentTest, AgencyRecipientWinsOverAStrayDomain) {
  // A record with both set names the agency; the domain is ignored.
  Consent consent = HealthConsentFor("caritas-koeln");
  consent.recipient_legal_domain = D::kFreierTraeger;
  EXPECT_EQ(DecideAt(Ask({consent}, "diakonie-bonn"), kNow), "NO_LEGAL_BASIS");
}

TEST_F(ConsentTest, ConsentWithoutRecipientOpensNothing) {
  Consent consent = HealthConsentFor("");
  EXPECT_EQ(DecideAt(Ask({consent}), kNow), "NO_LEGAL_BASIS");
}

TEST_F(ConsentTest, PurposeMustBeListed) {
  Consent consent = HealthConsentFor("caritas-koeln");
  consent.purposes = {"counselling"};
  EXPECT_EQ(DecideAt(Ask({consent}), kNow), "PURPOSE_NOT_COVERED");
  consent.purposes = {"counselling", kPurpose, "statistics"};
  EXPECT_TRUE(policy_.Decide(Ask({consent}), kNow).allowed);
  // Exact comparison: no prefixes, no case folding.
  consent.purposes = {"case", "Case-Management"};
  EXPECT_EQ(DecideAt(Ask({consent}), kNow), "PURPOSE_NOT_COVERED");
  // A record without purposes is broken and covers none.
  consent.purposes.clear();
  EXPECT_EQ(DecideAt(Ask({consent}), kNow), "PURPOSE_NOT_COVERED");
}

TEST_F(ConsentTest, CategoryMustBeListed) {
  Consent consent = HealthConsentFor("caritas-koeln");
  consent.categories = {C::kFamily, C::kLanguage};
  EXPECT_EQ(DecideAt(Ask({consent}), kNow), "NO_LEGAL_BASIS");
  AccessRequest family = Ask({consent});
  family.category = C::kFamily;
  EXPECT_TRUE(policy_.Decide(family, kNow).allowed);
}

TEST_F(ConsentTest, ConsentOfAnotherPersonIsIgnored) {
  Consent consent = HealthConsentFor("caritas-koeln");
  consent.person_id = "person-other";
  EXPECT_EQ(DecideAt(Ask({consent}), kNow), "NO_LEGAL_BASIS");
}

TEST_F(ConsentTest, ExpiresAtValidUntilExactly) {
  Consent consent = HealthConsentFor("caritas-koeln");
  consent.valid_until = kNow;
  AccessRequest request = Ask({consent});
  EXPECT_TRUE(policy_.Decide(request, kNow - absl::Nanoseconds(1)).allowed);
  EXPECT_EQ(DecideAt(request, kNow), "CONSENT_EXPIRED");
  EXPECT_EQ(DecideAt(request, kNow + absl::Hours(1)), "CONSENT_EXPIRED");
}

TEST_F(ConsentTest, InForceFromValidFromExactly) {
  Consent consent = HealthConsentFor("caritas-koeln");
  consent.valid_from = kNow;
  AccessRequest request = Ask({consent});
  // Not yet in force: no reason value for it, and it covers nothing yet.
  EXPECT_EQ(DecideAt(request, kNow - absl::Nanoseconds(1)), "NO_LEGAL_BASIS");
  EXPECT_TRUE(policy_.Decide(request, kNow).allowed);
}

TEST_F(ConsentTest, WithdrawalTakesEffectAtItsInstant) {
  Consent consent = HealthConsentFor("caritas-koeln");
  consent.withdraw_time = kNow;
  AccessRequest request = Ask({consent});
  EXPECT_TRUE(policy_.Decide(request, kNow - absl::Nanoseconds(1)).allowed);
  EXPECT_EQ(DecideAt(request, kNow), "CONSENT_WITHDRAWN");
  // Withdrawal wins over expiry.
  request.consents[0].valid_until = kNow;
  EXPECT_EQ(DecideAt(request, kNow), "CONSENT_WITHDRAWN");
}

TEST_F(ConsentTest, OneActiveConsentSufficesAmongLapsedOnes) {
  Consent expired = HealthConsentFor("caritas-koeln");
  expired.name = "persons/person-7f3a/consents/old";
  expired.valid_until = kNow - absl::Hours(1);
  Consent withdrawn = HealthConsentFor("caritas-koeln");
  withdrawn.name = "persons/person-7f3a/consents/withdrawn";
  withdrawn.withdraw_time = kNow - absl::Hours(1);
  Consent active = HealthConsentFor("");
  active.name = "persons/person-7f3a/consents/new";
  active.recipient_legal_domain = D::kFreierTraeger;
  EXPECT_EQ(DecideAt(Ask({expired, withdrawn, active}), kNow),
            "CONSENT persons/person-7f3a/consents/new");
}

TEST_F(ConsentTest, MostHelpfulReasonWhenSeveralConsentsFail) {
  Consent expired = HealthConsentFor("caritas-koeln");
  expired.valid_until = kNow;
  Consent withdrawn = HealthConsentFor("caritas-koeln");
  withdrawn.withdraw_time = kNow;
  Consent other_purpose = HealthConsentFor("caritas-koeln");
  other_purpose.purposes = {"statistics"};
  Consent pending = HealthConsentFor("caritas-koeln");
  pending.valid_from = kNow + absl::Hours(1);

  // Independent of the order the store returns them in.
  EXPECT_EQ(DecideAt(Ask({expired, withdrawn}), kNow), "CONSENT_WITHDRAWN");
  EXPECT_EQ(DecideAt(Ask({withdrawn, expired}), kNow), "CONSENT_WITHDRAWN");
  // A consent for this purpose that lapsed is closer than one in force for
  // another purpose.
  EXPECT_EQ(DecideAt(Ask({other_purpose, expired}), kNow), "CONSENT_EXPIRED");
  EXPECT_EQ(DecideAt(Ask({expired, other_purpose}), kNow), "CONSENT_EXPIRED");
  // A pending consent says nothing; the purpose mismatch does.
  EXPECT_EQ(DecideAt(Ask({pending, other_purpose}), kNow),
            "PURPOSE_NOT_COVERED");
  EXPECT_EQ(DecideAt(Ask({pending}), kNow), "NO_LEGAL_BASIS");
}

TEST_F(ConsentTest, LapsedConsentIsMoreHelpfulThanAMissingRelation) {
  // A KOMMUNE agency that merely participates in the case may not read the
  // residence status by rule (NO_RELATION) ...
  AccessRequest request = Request(D::kKommune, C::kResidenceStatus,
                                  {R::kCaseParticipant}, "kim-koeln");
  EXPECT_EQ(DecideAt(request, kNow), "NO_RELATION");
  // ... and the person's consent for it has expired: that is what to fix.
  Consent consent = HealthConsentFor("kim-koeln");
  consent.categories = {C::kResidenceStatus};
  consent.valid_until = kNow;
  request.consents = {consent};
  EXPECT_EQ(DecideAt(request, kNow), "CONSENT_EXPIRED");
  // While it was in force it opened the category.
  EXPECT_EQ(DecideAt(request, kNow - absl::Seconds(1)),
            "CONSENT persons/person-7f3a/consents/c1");
}

TEST_F(ConsentTest, ConsentOpensCategoriesThatHaveRulesForOtherDomains) {
  Consent consent = HealthConsentFor("sprachschule-koeln");
  consent.categories = {C::kResidenceStatus, C::kEmployment};
  AccessRequest request = Request(D::kKurstraeger, C::kResidenceStatus,
                                  {R::kServesPerson}, "sprachschule-koeln");
  request.consents = {consent};
  EXPECT_EQ(DecideAt(request, kNow), "CONSENT persons/person-7f3a/consents/c1");
}

TEST_F(ConsentTest, LegalBasisIsReportedBeforeConsent) {
  Consent consent = HealthConsentFor("bamf-nuernberg");
  consent.categories = {C::kResidenceStatus};
  AccessRequest request =
      Request(D::kBamf, C::kResidenceStatus, {}, "bamf-nuernberg");
  request.consents = {consent};
  EXPECT_EQ(DecideAt(request, kNow),
            "LEGAL_BASIS residence-status.federal-agencies");
}

TEST(ConsentStateTest, BoundariesAndPrecedence) {
  Consent consent;
  consent.valid_from = kNow;
  consent.valid_until = kNow + absl::Hours(1);
  const absl::Duration tick = absl::Nanoseconds(1);
  EXPECT_EQ(ConsentStateAt(consent, kNow - tick), ConsentState::kPending);
  EXPECT_EQ(ConsentStateAt(consent, kNow), ConsentState::kActive);
  EXPECT_EQ(ConsentStateAt(consent, kNow + absl::Hours(1) - tick),
            ConsentState::kActive);
  EXPECT_EQ(ConsentStateAt(consent, kNow + absl::Hours(1)),
            ConsentState::kExpired);
  consent.withdraw_time = kNow + absl::Minutes(10);
  EXPECT_EQ(ConsentStateAt(consent, kNow + absl::Minutes(10) - tick),
            ConsentState::kActive);
  EXPECT_EQ(ConsentStateAt(consent, kNow + absl::Minutes(10)),
            ConsentState::kWithdrawn);
  EXPECT_EQ(ConsentStateAt(consent, kNow + absl::Hours(2)),
            ConsentState::kWithdrawn);
  // Withdrawn before it came into force.
  consent.withdraw_time = kNow - absl::Hours(1);
  EXPECT_EQ(ConsentStateAt(consent, kNow - tick), ConsentState::kWithdrawn);

  Consent open_ended;  // no period: in force until withdrawn
  EXPECT_EQ(ConsentStateAt(open_ended, absl::UnixEpoch()),
            ConsentState::kActive);
}

// --- Suspension and malformed requests -------------------------------------

TEST(SuspensionTest, SuspendedAgencyIsAlwaysDenied) {
  AccessPolicy policy = LoadShipped();
  Consent consent = HealthConsentFor("bamf-nuernberg");
  consent.categories = AllDataCategories();
  for (C category : AllDataCategories()) {
    SCOPED_TRACE(DataCategoryName(category));
    AccessRequest request =
        Request(D::kBamf, category, kAllRelations, "bamf-nuernberg");
    request.caller_wrote_data = true;
    request.consents = {consent};
    ASSERT_TRUE(policy.Decide(request, kNow).allowed);
    request.agency_suspended = true;
    EXPECT_EQ(Outcome(policy.Decide(request, kNow)), "AGENCY_SUSPENDED");
  }
}

TEST(MalformedRequestTest, UnspecifiedOrUnknownValuesAreDenied) {
  AccessPolicy policy = LoadShipped();
  AccessRequest request = Request(D::kBamf, C::kUnspecified);
  request.caller_wrote_data = true;
  EXPECT_EQ(Outcome(policy.Decide(request, kNow)), "NO_LEGAL_BASIS");
  request.category = static_cast<C>(42);
  EXPECT_EQ(Outcome(policy.Decide(request, kNow)), "NO_LEGAL_BASIS");
  request = Request(D::kUnspecified, C::kCoreIdentity, kAllRelations);
  EXPECT_EQ(Outcome(policy.Decide(request, kNow)), "NO_LEGAL_BASIS");
  request = Request(static_cast<D>(99), C::kCoreIdentity, kAllRelations);
  EXPECT_EQ(Outcome(policy.Decide(request, kNow)), "NO_LEGAL_BASIS");
  EXPECT_FALSE(policy.MayWrite(D::kBamf, static_cast<C>(42)));
}

TEST(ConcurrencyTest, OnePolicySharedByThreads) {
  const AccessPolicy policy = LoadShipped();
  std::vector<std::thread> threads;
  std::vector<int> allowed(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if (policy.Decide(Request(D::kBamf, C::kResidenceStatus), kNow)
                .allowed) {
          ++allowed[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int count : allowed) EXPECT_EQ(count, 2000);
}

// --- Names mirror the protos ---------------------------------------------

// Reads "<PREFIX>_<NAME> = <number>;" entries of one enum from a .proto
// file of the repository.
std::map<int, std::string> ProtoEnumValues(const std::string& proto_path,
                                           const std::string& prefix) {
  std::ifstream file(lotse::testing::SourceDir() + "/" + proto_path);
  EXPECT_TRUE(file.is_open()) << proto_path;
  std::stringstream text;
  text << file.rdbuf();
  std::string contents = text.str();
  std::map<int, std::string> values;
  std::regex entry("\\b" + prefix + "_([A-Z0-9_]+) = ([0-9]+);");
  for (auto it = std::sregex_iterator(contents.begin(), contents.end(), entry);
       it != std::sregex_iterator(); ++it) {
    values[std::stoi((*it)[2])] = (*it)[1];
  }
  EXPECT_FALSE(values.empty()) << prefix;
  return values;
}

template <typename Enum>
void ExpectMirrorsProto(const std::string& proto_path,
                        const std::string& prefix,
                        absl::string_view (*name_of)(Enum),
                        std::optional<Enum> (*from_name)(absl::string_view)) {
  SCOPED_TRACE(prefix);
  std::map<int, std::string> proto = ProtoEnumValues(proto_path, prefix);
  for (const auto& [number, name] : proto) {
    auto value = static_cast<Enum>(number);
    EXPECT_EQ(name_of(value), name) << number;
    if (number == 0) {
      EXPECT_FALSE(from_name(name).has_value());
    } else {
      EXPECT_EQ(from_name(name), value) << name;
    }
  }
  // Nothing beyond the proto's values has a name.
  int past_end = proto.rbegin()->first + 1;
  EXPECT_EQ(name_of(static_cast<Enum>(past_end)), "UNSPECIFIED");
}

TEST(NamesTest, EnumsMirrorTheProtoEnums) {
  ExpectMirrorsProto<DataCategory>("proto/lotse/type/v1/data_category.proto",
                                   "DATA_CATEGORY", &DataCategoryName,
                                   &DataCategoryFromName);
  ExpectMirrorsProto<LegalDomain>("proto/lotse/type/v1/legal_domain.proto",
                                  "LEGAL_DOMAIN", &LegalDomainName,
                                  &LegalDomainFromName);
  ExpectMirrorsProto<AccessDenialReason>(
      "proto/lotse/type/v1/access.proto", "ACCESS_DENIAL_REASON",
      &AccessDenialReasonName, &AccessDenialReasonFromName);
  ExpectMirrorsProto<Relation>("proto/lotse/identity/v1/access_check.proto",
                               "RELATION", &RelationName, &RelationFromName);
  ExpectMirrorsProto<AccessBasis>("proto/lotse/identity/v1/access_check.proto",
                                  "ACCESS_BASIS", &AccessBasisName,
                                  &AccessBasisFromName);
  ExpectMirrorsProto<ConsentState>("proto/lotse/identity/v1/consent.proto",
                                   "CONSENT_STATE", &ConsentStateName,
                                   &ConsentStateFromName);
  EXPECT_EQ(AllDataCategories().size(),
            ProtoEnumValues("proto/lotse/type/v1/data_category.proto",
                            "DATA_CATEGORY")
                    .size() -
                1);
  EXPECT_EQ(
      AllLegalDomains().size(),
      ProtoEnumValues("proto/lotse/type/v1/legal_domain.proto", "LEGAL_DOMAIN")
              .size() -
          1);
}

TEST(NamesTest, FromNameIsExact) {
  EXPECT_EQ(DataCategoryFromName("RESIDENCE_STATUS"), C::kResidenceStatus);
  EXPECT_FALSE(DataCategoryFromName("residence_status").has_value());
  EXPECT_FALSE(
      DataCategoryFromName("DATA_CATEGORY_RESIDENCE_STATUS").has_value());
  EXPECT_FALSE(DataCategoryFromName("UNSPECIFIED").has_value());
  EXPECT_FALSE(DataCategoryFromName("").has_value());
  EXPECT_EQ(LegalDomainFromName("AUSLAENDERBEHOERDE"), D::kAuslaenderbehoerde);
  EXPECT_FALSE(LegalDomainFromName(" BAMF").has_value());
}

// --- Parsing -----------------------------------------------------------------

// A complete minimal rules file: 10 lines, every category declared.
constexpr char kMinimalRules[] =
    "# minimal\n"
    "category CORE_IDENTITY writers=ANY\n"
    "category RESIDENCE_STATUS writers=AUSLAENDERBEHOERDE\n"
    "category LANGUAGE writers=BAMF,KURSTRAEGER\n"
    "category EMPLOYMENT writers=JOBCENTER\n"
    "category CASE_STATUS writers=KOMMUNE\n"
    "category PRIVATE_NOTES writers=ANY private\n"
    "category HEALTH writers=NONE\n"
    "category FAMILY writers=NONE\n"
    "category CONTACT writers=ANY\n";
constexpr int kMinimalLines = 10;

TEST(ParseTest, MinimalFileParses) {
  absl::StatusOr<AccessPolicy> policy = AccessPolicy::Parse(kMinimalRules);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->rules().empty());
  EXPECT_TRUE(policy->MayWrite(D::kAdministration, C::kCoreIdentity));
  EXPECT_FALSE(policy->MayWrite(D::kKommune, C::kHealth));
  // Without rules, only owners read.
  EXPECT_EQ(Outcome(policy->Decide(
                Request(D::kBamf, C::kLanguage, kAllRelations), kNow)),
            "NO_LEGAL_BASIS");
}

TEST(ParseTest, LayoutIsForgiving) {
  // Rules before their category's declaration, comments, blank lines,
  // tabs, CRLF line ends, keys in any order.
  std::string text = absl::StrCat(
      "\trule r1 basis=\"§ 1 Test\"  relation=NONE category=LANGUAGE "
      "readers=BAMF\r\n",
      "   # indented comment\r\n", "\r\n", kMinimalRules,
      "rule r2 category=LANGUAGE readers=ANY relation=CASE_OWNER,"
      "SERVES_PERSON basis=plain");
  absl::StatusOr<AccessPolicy> policy = AccessPolicy::Parse(text);
  ASSERT_TRUE(policy.ok()) << policy.status();
  ASSERT_EQ(policy->rules().size(), 2u);
  const AccessRule& r1 = policy->rules()[0];
  EXPECT_EQ(r1.id, "r1");
  EXPECT_EQ(r1.basis, "§ 1 Test");
  EXPECT_EQ(r1.line, 1);
  EXPECT_EQ(r1.readers, std::vector<D>{D::kBamf});
  EXPECT_TRUE(r1.required_relations.empty());
  const AccessRule& r2 = policy->rules()[1];
  EXPECT_EQ(r2.line, 3 + kMinimalLines + 1);
  EXPECT_EQ(r2.readers, AllLegalDomains());
  EXPECT_EQ(r2.required_relations,
            (std::vector<R>{R::kCaseOwner, R::kServesPerson}));
  EXPECT_EQ(Outcome(policy->Decide(Request(D::kBamf, C::kLanguage), kNow)),
            "LEGAL_BASIS r1");
  EXPECT_EQ(Outcome(policy->Decide(
                Request(D::kKammer, C::kLanguage, {R::kServesPerson}), kNow)),
            "LEGAL_BASIS r2");
}

TEST(ParseTest, BadLinesAreNamedWithTheirNumber) {
  struct Bad {
    std::string line;
    std::string message;
  };
  const std::vector<Bad> bad_lines = {
      {"rule r category=RESIDENCE readers=BAMF relation=NONE basis=x",
       "unknown data category \"RESIDENCE\""},
      {"rule r category=LANGUAGE readers=BAMF,JOBCENTRE relation=NONE basis=x",
       "unknown legal domain \"JOBCENTRE\""},
      {"rule r category=LANGUAGE readers=BAMF relation=CASE_OWNER,FRIEND "
       "basis=x",
       "unknown relation \"FRIEND\""},
      {"rule r category=LANGUAGE readers=BAMF relation=UNSPECIFIED basis=x",
       "unknown relation"},
      {"rule r category=LANGUAGE readers=BAMF relation=NONE",
       "needs basis=..."},
      {"rule r category=LANGUAGE readers=BAMF relation=NONE basis=x when=now",
       "unknown key 'when'"},
      {"rule r category=LANGUAGE readers=BAMF relation=NONE basis=\"x",
       "unterminated"},
      {"rule r category=LANGUAGE readers=BAMF relation=NONE basis=\"\"",
       "'basis' must not be empty"},
      {"rule r category=LANGUAGE category=HEALTH readers=BAMF relation=NONE "
       "basis=x",
       "key 'category' given twice"},
      {"rule r category=LANGUAGE readers=ANY,BAMF relation=NONE basis=x",
       "'ANY' must stand alone"},
      {"rule r category=LANGUAGE readers=NONE relation=NONE basis=x",
       "cannot be NONE"},
      {"rule r category=LANGUAGE readers=BAMF,BAMF relation=NONE basis=x",
       "listed twice"},
      {"rule Core_Identity category=LANGUAGE readers=BAMF relation=NONE "
       "basis=x",
       "invalid rule id"},
      {"rule category=LANGUAGE readers=BAMF relation=NONE basis=x",
       "exactly one rule id"},
      {"rule r extra category=LANGUAGE readers=BAMF relation=NONE basis=x",
       "exactly one rule id"},
      {"allow r category=LANGUAGE", "unknown directive \"allow\""},
      {"=x", "'=' without a key"},
      {"category \"HEALTH\" writers=NONE", "quote outside"},
      {"category HEALTH writers=NONE", "already declared on line 8"},
      {"category HEALTH", "needs writers=..."},
      {"category", "'category' needs a name"},
      {"category FAMILY writers=NONE secret", "unexpected word \"secret\""},
      {"category FAMILY writers=NONE private private",
       "unexpected word \"private\""},
  };
  for (const Bad& bad : bad_lines) {
    SCOPED_TRACE(bad.line);
    absl::StatusOr<AccessPolicy> policy =
        AccessPolicy::Parse(absl::StrCat(kMinimalRules, bad.line, "\n"));
    ASSERT_FALSE(policy.ok());
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(
        policy.status().message(),
        HasSubstr(absl::StrCat("access rules:", kMinimalLines + 1, ": ")));
    EXPECT_THAT(policy.status().message(), HasSubstr(bad.message));
  }
}

TEST(ParseTest, DuplicateRuleIdNamesBothLines) {
  std::string text = absl::StrCat(
      kMinimalRules,
      "rule dup category=LANGUAGE readers=BAMF relation=NONE basis=a\n",
      "# between\n",
      "rule dup category=EMPLOYMENT readers=JOBCENTER relation=NONE "
      "basis=b\n");
  absl::StatusOr<AccessPolicy> policy = AccessPolicy::Parse(text, "demo.conf");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(),
              HasSubstr(absl::StrCat("demo.conf:", kMinimalLines + 3, ": ")));
  EXPECT_THAT(
      policy.status().message(),
      HasSubstr(absl::StrCat("duplicate rule id \"dup\" (first on line ",
                             kMinimalLines + 1, ")")));
}

TEST(ParseTest, RuleOnAPrivateCategoryIsRefused) {
  // Even when the rule comes before the declaration that makes it private.
  std::string text = absl::StrCat(
      "rule peek category=PRIVATE_NOTES readers=KOMMUNE relation=CASE_OWNER "
      "basis=x\n",
      kMinimalRules);
  absl::StatusOr<AccessPolicy> policy = AccessPolicy::Parse(text);
  ASSERT_FALSE(policy.ok());
  EXPECT_THAT(policy.status().message(), HasSubstr("access rules:1: "));
  EXPECT_THAT(policy.status().message(), HasSubstr("private to its writer"));
}

TEST(ParseTest, PrivateNotesMustBeDeclaredPrivate) {
  std::string text = kMinimalRules;
  text.replace(text.find("writers=ANY private"),
               std::string("writers=ANY private").size(), "writers=ANY");
  absl::StatusOr<AccessPolicy> policy = AccessPolicy::Parse(text);
  ASSERT_FALSE(policy.ok());
  EXPECT_THAT(policy.status().message(),
              HasSubstr("access rules:7: PRIVATE_NOTES must be declared"));
}

TEST(ParseTest, EveryCategoryMustBeDeclared) {
  std::string text = kMinimalRules;
  text.erase(text.find("category FAMILY"));
  absl::StatusOr<AccessPolicy> policy = AccessPolicy::Parse(text);
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(),
              HasSubstr("no 'category' line for FAMILY"));
}

TEST(ParseTest, MissingFileIsNotFound) {
  absl::StatusOr<AccessPolicy> policy =
      AccessPolicy::LoadFile(lotse::testing::SourceDir() + "/config/none.conf");
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kNotFound);
}

TEST(ParseTest, LoadFileNamesThePathInErrors) {
  std::string path = ::testing::TempDir() + "/bad-access-rules.conf";
  {
    std::ofstream out(path);
    out << kMinimalRules
        << "rule x category=NOPE readers=BAMF "
           "relation=NONE basis=x\n";
  }
  absl::StatusOr<AccessPolicy> policy = AccessPolicy::LoadFile(path);
  ASSERT_FALSE(policy.ok());
  EXPECT_THAT(policy.status().message(),
              HasSubstr(absl::StrCat(path, ":", kMinimalLines + 1, ": ")));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace lotse::identity
