// offers: matching in the placement service, both ways: offers for a
// candidate, candidates for an offer.
#include "absl/status/status.h"
#include "tools/lotsectl/internal/verb.h"

namespace lotse::lotsectl {
namespace {

constexpr char kPurpose[] = "job-placement";

const std::vector<Column> kMatchColumns = {{"ELIGIBILITY", "eligibility"},
                                           {"SCORE", "score"}};

Verb ForCandidate() {
  std::vector<Column> columns = {{"OFFER", "offer.name"},
                                 {"TITLE", "offer.title"},
                                 {"KIND", "offer.kind"}};
  columns.insert(columns.end(), kMatchColumns.begin(), kMatchColumns.end());
  return {"offers",
          "match",
          "",
          "placement",
          "MatchOffersForCandidate",
          kPurpose,
          {{"candidate", "candidate", "candidates/{id}"},
           {"kind", "kind", "only this offer kind"},
           {"include-excluded", "include_excluded",
            "also offers the candidate is excluded from", false, false, false},
           {"page-size", "page_size", "at most this many"},
           {"page-token", "page_token", "continue a listing"}},
          {},
          {"matches", columns}};
}

Verb ForOffer() {
  std::vector<Column> columns = {{"CANDIDATE", "candidate.name"},
                                 {"PERSON", "candidate.person"}};
  columns.insert(columns.end(), kMatchColumns.begin(), kMatchColumns.end());
  return {"offers",
          "match",
          "",
          "placement",
          "MatchCandidatesForOffer",
          kPurpose,
          {{"offer", "offer", "offers/{id}"},
           {"include-excluded", "include_excluded",
            "also candidates who are excluded", false, false, false},
           {"page-size", "page_size", "at most this many"},
           {"page-token", "page_token", "continue a listing"}},
          {},
          {"matches", columns}};
}

// Which way to match is given by which of --candidate / --offer is set.
int Match(const Verb& verb, Invocation& run) {
  const bool candidate = run.Has("candidate");
  const bool offer = run.Has("offer");
  if (candidate == offer) {
    return ReportUsage(absl::InvalidArgumentError(
                           "offers match needs exactly one of --candidate "
                           "and --offer"),
                       run.err());
  }
  if (offer && (run.Has("kind"))) {
    return ReportUsage(
        absl::InvalidArgumentError("--kind goes with --candidate only"),
        run.err());
  }
  return RunDeclared(candidate ? ForCandidate() : ForOffer(), run);
}

}  // namespace

std::vector<Verb> OfferVerbs() {
  std::vector<Verb> verbs;
  // The flags of both directions, for parsing, --help and completion.
  Verb match = ForCandidate();
  match.summary =
      "match offers to a candidate (--candidate) or candidates to an offer "
      "(--offer), best first, with why";
  match.flags.insert(match.flags.begin() + 1,
                     {"offer", "", "offers/{id}: candidates for this offer"});
  match.handler = Match;
  verbs.push_back(match);
  verbs.push_back({"offers",
                   "show",
                   "show an offer",
                   "placement",
                   "GetOffer",
                   kPurpose,
                   {{"offer", "name", "offers/{id}", true, true}},
                   {},
                   {}});
  verbs.push_back({"offers",
                   "list",
                   "list offers",
                   "placement",
                   "ListOffers",
                   kPurpose,
                   {{"page-size", "page_size", "at most this many"},
                    {"page-token", "page_token", "continue a listing"}},
                   {},
                   {"offers",
                    {{"OFFER", "name"},
                     {"TITLE", "title"},
                     {"KIND", "kind"},
                     {"STATE", "state"}}}});
  return verbs;
}

}  // namespace lotse::lotsectl
