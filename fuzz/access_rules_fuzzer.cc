// Fuzz target: the access-rules file parser (config/access-rules.conf,
// services/identity/domain/access_policy.h) and the decisions of a policy
// that parsed. The input is the rules file; its first bytes also choose
// one question per category (caller's domain, relation, consent, ...).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/identity/domain/access_policy.h"

namespace lotse::identity {
namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "access policy invariant broken: %s\n", what);
  std::abort();
}

void Check(const AccessPolicy& policy, const uint8_t* q, size_t n) {
  const std::vector<LegalDomain> domains = AllLegalDomains();
  const std::vector<Relation> relations = {
      Relation::kCaseOwner, Relation::kCaseParticipant,
      Relation::kAgencyIdHolder, Relation::kServesPerson};
  for (const AccessRule& rule : policy.rules()) {
    if (rule.id.empty() || policy.FindRule(rule.id) != &rule) {
      Broken("a rule is not found by its id");
    }
    if (policy.IsPrivate(rule.category)) Broken("a rule on a private category");
  }
  size_t i = 0;
  for (DataCategory category : AllDataCategories()) {
    const uint8_t b = n > 0 ? q[i++ % n] : 0;
    AccessRequest request;
    request.agency_id = "fuzz-agency";
    request.legal_domain = domains[b % domains.size()];
    request.agency_suspended = (b & 0x80) != 0;
    request.person_id = "p-fuzz";
    request.category = category;
    request.purpose = "case-management";
    if (b & 0x40) request.relations.push_back(relations[b % relations.size()]);
    request.caller_wrote_data = (b & 0x20) != 0;
    if (b & 0x10) {
      Consent consent;
      consent.name = "persons/p-fuzz/consents/c";
      consent.person_id = "p-fuzz";
      consent.categories = {category};
      consent.recipient_agency = "fuzz-agency";
      consent.purposes = {"case-management"};
      request.consents.push_back(consent);
    }
    const AccessDecision d =
        policy.Decide(request, absl::FromUnixSeconds(1000000000));
    if (d.category != category) Broken("decision about another category");
    if (d.allowed == (d.basis == AccessBasis::kUnspecified)) {
      Broken("allowed without a basis, or a basis for a denial");
    }
    if (d.allowed == (d.denial_reason != AccessDenialReason::kUnspecified)) {
      Broken("denied without a reason, or a reason for an allowed read");
    }
    if (d.allowed && request.agency_suspended) Broken("suspended agency read");
    if (d.allowed && request.legal_domain == LegalDomain::kDataProtection) {
      Broken("the data-protection role read a person's data");
    }
    if (d.basis == AccessBasis::kLegalBasis &&
        policy.FindRule(d.rule_id) == nullptr) {
      Broken("legal basis names no rule");
    }
  }
}

}  // namespace
}  // namespace lotse::identity

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const size_t questions = size < 16 ? size : 16;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<lotse::identity::AccessPolicy> policy =
      lotse::identity::AccessPolicy::Parse(text);
  if (!policy.ok()) {
    if (policy.status().code() != absl::StatusCode::kInvalidArgument) {
      std::fprintf(stderr, "unexpected parse status: %s\n",
                   policy.status().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  lotse::identity::Check(*policy, data, questions);
  return 0;
}
