// Who may read which category of a person's data (DESIGN.md section 4).
//
// An AccessPolicy is built once from a rules file (the deployment's
// configuration, see config/access-rules.conf) and then only answers
// questions; it is immutable, so one instance may be shared by any number of
// threads without locking.
//
// A read is allowed on the first of these grounds that applies, in this
// order, and the ground is reported as the basis:
//   1. OWNER: the calling agency wrote the data.
//   2. LEGAL_BASIS: a rule of the rules file lets the caller's legal domain
//      read the category, and the caller has the relation to the person the
//      rule requires (the first such rule in file order is reported).
//   3. CONSENT: a consent of the person covers the category, names the
//      calling agency or its legal domain as recipient, lists the purpose of
//      the call, and is in force at `now`.
// Three things override every ground: a suspended agency is always denied
// (AGENCY_SUSPENDED); the data-protection role is always denied
// (NO_LEGAL_BASIS), even for data it is said to have written; and a category
// declared `private` (agency-private notes) is readable by the writing agency
// only — no rule, no consent (PRIVATE_TO_WRITER).
//
// The policy trusts the facts in an AccessRequest. The caller (the
// CheckAccess handler) must establish them: the agency and its domain from
// the client certificate and the agency registry, the relations from its own
// records or from the asking service, the consents from the store.
//
// Rules file format (line based, UTF-8):
//   - Blank lines and lines whose first non-blank character is '#' are
//     ignored.
//   - `category <CATEGORY> writers=<DOMAINS> [private]`
//     declares a data category; every category must be declared exactly
//     once. `writers` are the legal domains whose agencies may write the
//     category at all (the service storing it may narrow this further, e.g.
//     to the case owner). `private` makes the category readable by its
//     writing agency only.
//   - `rule <rule-id> category=<CATEGORY> readers=<DOMAINS>
//      relation=<RELATIONS> basis="<citation or description>"`
//     (on one line) lets agencies of the `readers` domains read the
//     category without consent. `relation` is NONE (no relation to the
//     person required) or a comma-separated list of relations of which the
//     caller needs at least one. `basis` is free text for people (the legal
//     citation); it is required.
//   - <DOMAINS> is ANY or a comma-separated list of legal-domain names,
//     e.g. `BAMF,JOBCENTER`; `writers` may also be NONE; <CATEGORY>, domain and
//     relation names are the proto enum value names without their prefix.
//   - A rule id is 1..64 characters of [a-z0-9.-] starting with a letter or
//     digit, unique in the file; it is stable and reported as the basis of
//     decisions, so do not reuse an id for a different rule.
//   - Keys may come in any order; a value with blanks must be quoted with
//     '"' (no escapes; a value cannot contain '"').
#ifndef LOTSE_SERVICES_IDENTITY_DOMAIN_ACCESS_POLICY_H_
#define LOTSE_SERVICES_IDENTITY_DOMAIN_ACCESS_POLICY_H_

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lotse::identity {

// The enums below mirror the proto enums of the same names value by value
// (lotse.type.v1.DataCategory, LegalDomain, AccessDenialReason;
// lotse.identity.v1.Relation, AccessBasis, ConsentState), so the handler may
// convert by number or by name. Names are the proto value names without the
// enum prefix, e.g. "RESIDENCE_STATUS" for
// DATA_CATEGORY_RESIDENCE_STATUS.

enum class DataCategory {
  kUnspecified = 0,
  kCoreIdentity = 1,
  kResidenceStatus = 2,
  kLanguage = 3,
  kEmployment = 4,
  kCaseStatus = 5,
  kPrivateNotes = 6,
  kHealth = 7,
  kFamily = 8,
  kContact = 9,
};

enum class LegalDomain {
  kUnspecified = 0,
  kKommune = 1,
  kAuslaenderbehoerde = 2,
  kBamf = 3,
  kJobcenter = 4,
  kArbeitsagentur = 5,
  kKurstraeger = 6,
  kKammer = 7,
  kFreierTraeger = 8,
  kJugendamt = 9,
  kSozialamt = 10,
  kAdministration = 11,
  // The deployment's data-protection role: reads audit chains, never a
  // person's data. Decide() denies it every category whatever the rules
  // say (also under ANY and with consent).
  kDataProtection = 12,
};

enum class Relation {
  kUnspecified = 0,
  // Owns an open case of the person. Implies kCaseParticipant.
  kCaseOwner = 1,
  // Owns a case of the person or has received a step of it.
  kCaseParticipant = 2,
  // Has linked an agency-specific id to the person.
  kAgencyIdHolder = 3,
  // Provides a booked course, issued an entitlement or obligation, or made a
  // placement.
  kServesPerson = 4,
};

enum class AccessBasis {
  kUnspecified = 0,  // only with a denial
  kOwner = 1,
  kLegalBasis = 2,
  kConsent = 3,
};

enum class AccessDenialReason {
  kUnspecified = 0,  // only with an allowed decision
  kNoLegalBasis = 1,
  kConsentWithdrawn = 2,
  kConsentExpired = 3,
  kPurposeNotCovered = 4,
  kPrivateToWriter = 5,
  kAgencySuspended = 6,
  kNoRelation = 7,
  // Never returned by AccessPolicy; the services use it when they cannot
  // reach the identity service in time (fail closed).
  kCheckUnavailable = 8,
};

enum class ConsentState {
  kUnspecified = 0,
  kPending = 1,
  kActive = 2,
  kExpired = 3,
  kWithdrawn = 4,
};

// Names without prefix, e.g. "RESIDENCE_STATUS"; "UNSPECIFIED" for the zero
// value and for numbers outside the enum.
absl::string_view DataCategoryName(DataCategory category);
absl::string_view LegalDomainName(LegalDomain domain);
absl::string_view RelationName(Relation relation);
absl::string_view AccessBasisName(AccessBasis basis);
absl::string_view AccessDenialReasonName(AccessDenialReason reason);
absl::string_view ConsentStateName(ConsentState state);

// The inverse, exact and case-sensitive. nullopt for unknown names and for
// "UNSPECIFIED": these parse only values that can stand in a rule or a
// request.
std::optional<DataCategory> DataCategoryFromName(absl::string_view name);
std::optional<LegalDomain> LegalDomainFromName(absl::string_view name);
std::optional<Relation> RelationFromName(absl::string_view name);
std::optional<AccessBasis> AccessBasisFromName(absl::string_view name);
std::optional<AccessDenialReason> AccessDenialReasonFromName(
    absl::string_view name);
std::optional<ConsentState> ConsentStateFromName(absl::string_view name);

// Every specified value, in number order (for tests and listings).
std::vector<DataCategory> AllDataCategories();
std::vector<LegalDomain> AllLegalDomains();

// A person's consent, as recorded (mirrors lotse.identity.v1.Consent).
struct Consent {
  // "persons/{person}/consents/{consent}"; reported as the basis of
  // decisions it allows.
  std::string name;
  // The person who gave it. A consent is considered only for requests about
  // the same person id, so a consent handed in by mistake opens nothing.
  std::string person_id;
  // Categories covered. PRIVATE_NOTES in this list is ignored (the store
  // refuses it anyway).
  std::vector<DataCategory> categories;
  // The recipient: when recipient_agency is non-empty, exactly that agency
  // (same id form as AccessRequest::agency_id) and recipient_legal_domain
  // is ignored; otherwise every agency of recipient_legal_domain.
  std::string recipient_agency;
  LegalDomain recipient_legal_domain = LegalDomain::kUnspecified;
  // Purpose codes covered, compared exactly with AccessRequest::purpose. An
  // empty list covers no purpose (the contract requires at least one; an
  // empty list is a broken record, and broken records must not widen
  // access).
  std::vector<std::string> purposes;
  // In force from valid_from (inclusive) until valid_until (exclusive).
  absl::Time valid_from = absl::InfinitePast();
  absl::Time valid_until = absl::InfiniteFuture();
  // Withdrawn from this instant on (inclusive); nullopt while not withdrawn.
  std::optional<absl::Time> withdraw_time;
};

// The state of `consent` at `now`. A withdrawal wins over expiry and
// pending: WITHDRAWN if withdraw_time <= now; else PENDING if now <
// valid_from; else EXPIRED if now >= valid_until; else ACTIVE.
ConsentState ConsentStateAt(const Consent& consent, absl::Time now);

// One question: may this agency read this category of this person now?
struct AccessRequest {
  // The calling agency (its id in the registry) and its legal domain.
  std::string agency_id;
  LegalDomain legal_domain = LegalDomain::kUnspecified;
  // Whether the registry marks the agency as suspended.
  bool agency_suspended = false;
  std::string person_id;
  DataCategory category = DataCategory::kUnspecified;
  // The purpose code of the call (x-lotse-purpose metadata).
  std::string purpose;
  // The caller's established relations to the person.
  std::vector<Relation> relations;
  // Whether the calling agency wrote the data asked for (for private notes:
  // the note). Grants OWNER.
  bool caller_wrote_data = false;
  // The person's consents, in any state; non-matching ones are ignored.
  std::vector<Consent> consents;
};

struct AccessDecision {
  DataCategory category = DataCategory::kUnspecified;
  bool allowed = false;
  // When allowed: the ground. kUnspecified when denied.
  AccessBasis basis = AccessBasis::kUnspecified;
  // When basis is kLegalBasis: the rule's id.
  std::string rule_id;
  // When basis is kConsent: the consent's name.
  std::string consent;
  // When denied: why. kUnspecified when allowed.
  AccessDenialReason denial_reason = AccessDenialReason::kUnspecified;
};

// A legal-basis rule, as read from the rules file.
struct AccessRule {
  std::string id;
  DataCategory category = DataCategory::kUnspecified;
  // Legal domains the rule lets read (ANY is expanded to all of them).
  std::vector<LegalDomain> readers;
  // The caller needs at least one of these relations; empty means none is
  // required.
  std::vector<Relation> required_relations;
  // Citation or description for people, e.g. "§ 88a AufenthG".
  std::string basis;
  // 1-based line in the rules file, for messages.
  int line = 0;
};

class AccessPolicy {
 public:
  // Parses rules in the format described at the top of this file.
  // INVALID_ARGUMENT naming "<source_name>:<line>:" for a malformed line, an
  // unknown directive, key, category, domain or relation, a duplicate rule
  // id or category declaration, or a rule on a private category; and for a
  // category without declaration.
  static absl::StatusOr<AccessPolicy> Parse(
      absl::string_view text, absl::string_view source_name = "access rules");

  // Reads and parses the file at `path` (messages name the path). NOT_FOUND
  // if it cannot be opened.
  static absl::StatusOr<AccessPolicy> LoadFile(const std::string& path);

  // Decides one read. Never fails: a request with an unspecified or unknown
  // category or domain is denied with NO_LEGAL_BASIS (the handler should
  // have refused it with INVALID_ARGUMENT before asking).
  //
  // A denial names the most helpful reason when several apply, in this
  // order: AGENCY_SUSPENDED, PRIVATE_TO_WRITER, then the consent closest to
  // allowing (one that covers category, recipient and purpose but is
  // WITHDRAWN, else EXPIRED; else one that covers category and recipient
  // but not the purpose: PURPOSE_NOT_COVERED), then NO_RELATION (a rule
  // lets the caller's domain read the category but needs a relation the
  // caller lacks), else NO_LEGAL_BASIS. A consent not yet in force
  // (PENDING) yields NO_LEGAL_BASIS: there is no reason value for it, and it
  // does not cover the access yet.
  AccessDecision Decide(const AccessRequest& request, absl::Time now) const;

  // Whether agencies of `domain` may write `category` at all (the category's
  // `writers`).
  bool MayWrite(LegalDomain domain, DataCategory category) const;

  // Whether `category` is declared private (readable by the writer only).
  bool IsPrivate(DataCategory category) const;

  // All rules in file order; the rule with `id`, or nullptr.
  const std::vector<AccessRule>& rules() const { return rules_; }
  const AccessRule* FindRule(absl::string_view id) const;

 private:
  struct CategoryPolicy {
    bool is_private = false;
    std::vector<LegalDomain> writers;
    // Indexes into rules_, in file order.
    std::vector<size_t> rule_indexes;
  };
  static constexpr size_t kCategorySlots = 10;  // values 0..9

  AccessPolicy() = default;

  std::vector<AccessRule> rules_;
  std::array<CategoryPolicy, kCategorySlots> categories_;
};

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_DOMAIN_ACCESS_POLICY_H_
