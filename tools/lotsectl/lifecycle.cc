// lifecycle: how a person's data leaves Lotse (legal holds, erasure with
// its per-service status, the revisions a correction kept). Verbs of the
// groups "holds" and "persons".
#include "tools/lotsectl/internal/verb.h"

namespace lotse::lotsectl {

namespace {

// Erasure and holds are data-protection work, whoever asks for them.
constexpr char kPurpose[] = "data-protection";

const TableSpec kHold = {"",
                         {{"name", "name"},
                          {"subject", "subject"},
                          {"person", "person"},
                          {"state", "state"},
                          {"reason", "reason"},
                          {"end date", "end_date"},
                          {"placed by", "placing_agency"},
                          {"placed", "create_time"},
                          {"released", "release_time"},
                          {"released by", "releasing_agency"},
                          {"release reason", "release_reason"}}};

const TableSpec kErasure = {"services",
                            {{"SERVICE", "service"},
                             {"STATE", "state"},
                             {"ERASED", "erased_records"},
                             {"KEPT", "kept.resource_kind"},
                             {"KEPT UNTIL", "kept.keep_until"},
                             {"REPORTED", "report_time"}}};

}  // namespace

std::vector<Verb> LifecycleVerbs() {
  std::vector<Verb> verbs;
  verbs.push_back(
      {"holds",
       "place",
       "put a person or a case under legal hold: nothing of it is purged or "
       "erased until the end date",
       "identity",
       "PlaceLegalHold",
       kPurpose,
       {{"subject", "hold.subject", "persons/{id} or cases/{id}", true, true},
        {"person", "hold.person",
         "for a case: the person of the case, persons/{id}"},
        {"reason", "hold.reason", "why the data must be kept", true},
        {"until", "hold.end_date", "last day of the hold, YYYY-MM-DD", true}},
       {},
       kHold});
  verbs.push_back({"holds",
                   "release",
                   "end a legal hold before its end date",
                   "identity",
                   "ReleaseLegalHold",
                   kPurpose,
                   {{"name", "name", "legalHolds/{id}", true, true},
                    {"reason", "reason", "why it is no longer needed", true}},
                   {},
                   kHold});
  verbs.push_back(
      {"holds",
       "list",
       "list legal holds (of a person, or all you may see)",
       "identity",
       "ListLegalHolds",
       kPurpose,
       {{"person", "person", "persons/{id}", false, true},
        {"include-inactive", "include_inactive",
         "also holds that ended or were released", false, false, false},
        {"page-size", "page_size", "at most this many"},
        {"page-token", "page_token", "continue a listing"}},
       {},
       {"holds",
        {{"NAME", "name"},
         {"SUBJECT", "subject"},
         {"STATE", "state"},
         {"UNTIL", "end_date"},
         {"PLACED BY", "placing_agency"},
         {"REASON", "reason"}}}});
  verbs.push_back(
      {"persons",
       "erase",
       "erase a person in every service (what a retention rule keeps stays "
       "until its period ends)",
       "identity",
       "ErasePerson",
       kPurpose,
       {{"name", "name", "persons/{id}", true, true},
        {"reason", "reason", "why, e.g. the Art. 17 request and its date",
         true}},
       {},
       kErasure});
  verbs.push_back({"persons",
                   "erasure",
                   "how far the erasure of a person got, per service",
                   "identity",
                   "GetErasureStatus",
                   kPurpose,
                   {{"name", "name", "persons/{id}/erasure", true, true}},
                   {},
                   kErasure});
  verbs.push_back({"persons",
                   "revisions",
                   "earlier versions of a person's record that corrections "
                   "replaced",
                   "identity",
                   "ListPersonRevisions",
                   "case-management",
                   {{"person", "parent", "persons/{id}", true, true},
                    {"page-size", "page_size", "at most this many"},
                    {"page-token", "page_token", "continue a listing"}},
                   {},
                   {"revisions",
                    {{"REVISION", "name"},
                     {"CHANGED", "changed_fields"},
                     {"BY", "changing_agency"},
                     {"ACTOR", "changing_actor"},
                     {"WHEN", "change_time"},
                     {"GIVEN", "person.names.given_names"},
                     {"FAMILY", "person.names.family_names"},
                     {"BORN", "person.birth_date"}}}});
  return verbs;
}

}  // namespace lotse::lotsectl
