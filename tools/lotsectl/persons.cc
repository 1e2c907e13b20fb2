// persons: the person register in the identity service (create, find
// duplicates, search, show, link an agency id, transparency report).
#include "tools/lotsectl/internal/verb.h"

namespace lotse::lotsectl {

namespace {

constexpr char kPurpose[] = "case-management";

const TableSpec kPersonRecord = {"",
                                 {{"name", "name"},
                                  {"given names", "names.given_names"},
                                  {"family names", "names.family_names"},
                                  {"birth date", "birth_date"},
                                  {"birth place", "birth_place"},
                                  {"sex", "sex"},
                                  {"nationality", "nationality_codes"},
                                  {"created by", "creating_agency"},
                                  {"withheld", "withheld_categories"},
                                  {"etag", "etag"}}};

const TableSpec kCandidates = {"candidates",
                               {{"PERSON", "person.name"},
                                {"SCORE", "score"},
                                {"LEVEL", "level"},
                                {"MATCH ONLY", "match_only"},
                                {"GIVEN", "person.names.given_names"},
                                {"FAMILY", "person.names.family_names"},
                                {"BORN", "person.birth_date"}}};

// The flags that describe a person's record, under `prefix` ("person." for
// CreatePerson, "draft." for FindDuplicates). A name needs given or family
// names; which of them the service checks.
std::vector<VerbFlag> PersonFlags(const std::string& prefix) {
  return {
      {"given-names", prefix + "names.given_names", "given names"},
      {"family-names", prefix + "names.family_names", "family names"},
      {"script", prefix + "names.script",
       "ISO 15924 script of the names (default Latn)"},
      {"birth-date", prefix + "birth_date",
       "YYYY, YYYY-MM or YYYY-MM-DD (partial dates are fine)"},
      {"birth-place", prefix + "birth_place", "place of birth"},
      {"birth-country", prefix + "birth_country_code",
       "ISO 3166-1 alpha-2, e.g. SY"},
      {"sex", prefix + "sex", "FEMALE, MALE, DIVERSE, NOT_STATED"},
      {"nationality", prefix + "nationality_codes",
       "ISO 3166-1 alpha-2; repeat or comma-separate"},
      {"phone", prefix + "contact.phone_numbers", "phone number"},
      {"email", prefix + "contact.email", "e-mail address"},
  };
}

}  // namespace

std::vector<Verb> PersonVerbs() {
  std::vector<Verb> verbs;
  std::vector<VerbFlag> create = PersonFlags("person.");
  create.push_back({"confirm-new-person", "confirm_new_person",
                    "create despite strong duplicate candidates (after "
                    "review)",
                    false, false, false});
  verbs.push_back({"persons",
                   "create",
                   "register a person (duplicates are refused with their "
                   "candidates)",
                   "identity",
                   "CreatePerson",
                   kPurpose,
                   create,
                   {{"person.names.kind", "CURRENT"}},
                   kPersonRecord});
  std::vector<VerbFlag> duplicates = {
      {"person", "person", "an existing person, persons/{id}", false, true}};
  for (VerbFlag& f : PersonFlags("draft.")) duplicates.push_back(f);
  duplicates.push_back({"min-score", "min_score", "0.0..1.0"});
  duplicates.push_back(
      {"min-level", "min_level", "POSSIBLE, LIKELY or STRONG: at least this"});
  duplicates.push_back({"page-size", "page_size", "at most this many"});
  duplicates.push_back({"page-token", "page_token", "continue a listing"});
  verbs.push_back({"persons",
                   "find-duplicates",
                   "candidates for the same person: of an existing person, "
                   "or of a draft given by flags",
                   "identity",
                   "FindDuplicates",
                   kPurpose,
                   duplicates,
                   {},
                   kCandidates});
  verbs.push_back({"persons",
                   "search",
                   "search persons by name (and birth date)",
                   "identity",
                   "SearchPersons",
                   kPurpose,
                   {{"query", "name_query", "name, any script", true, true},
                    {"birth-date", "birth_date", "YYYY[-MM[-DD]]"},
                    {"min-score", "min_score", "0.0..1.0"},
                    {"page-size", "page_size", "at most this many"},
                    {"page-token", "page_token", "continue a listing"}},
                   {},
                   {"results", kCandidates.columns}});
  verbs.push_back({"persons",
                   "show",
                   "show a person (categories you may not see are withheld)",
                   "identity",
                   "GetPerson",
                   kPurpose,
                   {{"name", "name", "persons/{id}", true, true}},
                   {},
                   kPersonRecord});
  verbs.push_back(
      {"persons",
       "link-id",
       "link an agency's own id of the person (e.g. a BA customer number)",
       "identity",
       "LinkAgencyId",
       kPurpose,
       {{"person", "parent", "persons/{id}", true, true},
        {"kind", "agency_id.kind",
         "AZR_NUMBER, BA_CUSTOMER_NUMBER, JOBCENTER_COMMUNITY_NUMBER, ...",
         true},
        {"value", "agency_id.value", "the id", true},
        {"proof-id-kind", "proof.issued_id.kind",
         "remit proof: kind of a national id another agency linked"},
        {"proof-id-value", "proof.issued_id.value",
         "remit proof: that id's value"},
        {"proof-given-names", "proof.attributes.name.given_names",
         "remit proof: given names from the person's papers"},
        {"proof-family-names", "proof.attributes.name.family_names",
         "remit proof: family names from the person's papers"},
        {"proof-birth-date", "proof.attributes.birth_date",
         "remit proof: full birth date YYYY-MM-DD"},
        {"proof-birth-place", "proof.attributes.birth_place",
         "remit proof: place of birth"}},
       {},
       {"",
        {{"name", "name"},
         {"kind", "kind"},
         {"value", "value"},
         {"issued by", "issuing_agency"},
         {"etag", "etag"}}}});
  verbs.push_back({"persons",
                   "ids",
                   "list the agency ids linked to a person",
                   "identity",
                   "ListAgencyIds",
                   kPurpose,
                   {{"person", "parent", "persons/{id}", true, true},
                    {"include-unlinked", "include_unlinked",
                     "also ids that were unlinked", false, false, false}},
                   {},
                   {"agency_ids",
                    {{"NAME", "name"},
                     {"KIND", "kind"},
                     {"VALUE", "value"},
                     {"ISSUED BY", "issuing_agency"},
                     {"UNLINKED", "unlinked"}}}});
  verbs.push_back(
      {"persons",
       "transparency",
       "a person's transparency report: who saw or changed what, when, why",
       "identity",
       "GetTransparencyReport",
       "access-request",
       {{"person", "person", "persons/{id}", true, true},
        {"from", "start_time", "RFC 3339 time, e.g. 2026-01-01T00:00:00Z"},
        {"to", "end_time", "RFC 3339 time"}},
       {},
       {"entries",
        {{"TIME", "time"},
         {"SERVICE", "service"},
         {"AGENCY", "agency"},
         {"ACTOR", "actor"},
         {"WHAT", "description"},
         {"PURPOSE", "purpose"},
         {"OUTCOME", "outcome"}}}});
  return verbs;
}

}  // namespace lotse::lotsectl
