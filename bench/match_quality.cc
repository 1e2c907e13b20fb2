// Recall and precision of duplicate detection on labelled pairs, the way
// the service decides: a pair counts as found at a level only when the
// second record is reachable from the first through the blocking keys
// (LookupKeys of the query meets BlockingKeys of the stored record) and
// the score reaches the level's threshold. Prints the figures per level
// and per kind, and with --show the pairs decided wrongly, with the
// matcher's reasons, for working on the rules.
//
//   lotse_match_quality [--show=fn|fp|all] [--level=possible|likely|strong]
//                       FILE.tsv...
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "services/identity/domain/name_matching.h"
#include "tests/identity/labelled_pairs.h"

ABSL_FLAG(std::string, show, "",
          "print wrongly decided pairs: fn (missed), fp (false), all");
ABSL_FLAG(std::string, normalize, "",
          "comma-separated names: print their normalised parts and keys, "
          "then exit");
ABSL_FLAG(int, time_cross, 0,
          "instead of measuring quality, time Compare of every record "
          "against this many other pairs' records (mostly different "
          "people, like a query's candidates) and print ns per comparison");
ABSL_FLAG(std::string, level, "possible",
          "level whose wrong decisions --show prints");

namespace lotse::identity {
namespace {

struct Counts {
  int tp = 0, fp = 0, fn = 0, tn = 0;
  double recall() const { return tp + fn == 0 ? 1 : tp / double(tp + fn); }
  double precision() const { return tp + fp == 0 ? 1 : tp / double(tp + fp); }
};

bool ShareKey(const DuplicateMatcher& matcher, const PreparedRecord& query,
              const PreparedRecord& stored) {
  const std::vector<std::string> lookup = matcher.LookupKeys(query);
  const std::vector<std::string> index = matcher.BlockingKeys(stored);
  for (const std::string& key : lookup) {
    for (const std::string& other : index) {
      if (key == other) return true;
    }
  }
  return false;
}

std::string DateText(const BirthDate& date) {
  if (date.year == 0) return "-";
  if (date.month == 0) return absl::StrFormat("%d", date.year);
  if (date.day == 0) return absl::StrFormat("%d-%02d", date.year, date.month);
  return absl::StrFormat("%d-%02d-%02d", date.year, date.month, date.day);
}

std::string RecordText(const MatchRecord& record) {
  const NameSpelling& names = record.names.spellings.front();
  return absl::StrFormat(
      "%s / %s, %s, %s, %s, %d", names.given_names, names.family_names,
      DateText(record.birth_date), record.birth_place,
      record.nationality_codes.empty() ? "" : record.nationality_codes[0],
      static_cast<int>(record.sex));
}

int Run(const std::vector<std::string>& paths) {
  absl::StatusOr<std::unique_ptr<DuplicateMatcher>> matcher =
      DuplicateMatcher::Create();
  if (!matcher.ok()) {
    std::cerr << matcher.status() << "\n";
    return 1;
  }
  if (!absl::GetFlag(FLAGS_normalize).empty()) {
    for (absl::string_view name :
         absl::StrSplit(absl::GetFlag(FLAGS_normalize), ',')) {
      auto variants = (*matcher)->NormalizeName(name);
      if (!variants.ok()) {
        std::cout << name << ": " << variants.status() << "\n";
        continue;
      }
      std::cout << name << ":";
      for (const auto& parts : *variants) {
        std::cout << " [";
        for (const NormalizedNamePart& part : parts) {
          std::cout << " " << part.text << "=" << part.key;
        }
        std::cout << " ]";
      }
      std::cout << "\n";
    }
    return 0;
  }
  const std::string show = absl::GetFlag(FLAGS_show);
  const std::string show_level = absl::GetFlag(FLAGS_level);
  struct Level {
    std::string name;
    DuplicateStrength strength;
  };
  const std::vector<Level> levels = {{"possible", DuplicateStrength::kPossible},
                                     {"likely", DuplicateStrength::kLikely},
                                     {"strong", DuplicateStrength::kStrong}};
  int status = 0;
  for (const std::string& path : paths) {
    absl::StatusOr<std::vector<LabelledPair>> pairs = LoadLabelledPairs(path);
    if (!pairs.ok()) {
      std::cerr << pairs.status() << "\n";
      status = 1;
      continue;
    }
    if (const int cross = absl::GetFlag(FLAGS_time_cross); cross > 0) {
      std::vector<PreparedRecord> prepared;
      for (const LabelledPair& pair : *pairs) {
        for (const MatchRecord* record : {&pair.a, &pair.b}) {
          absl::StatusOr<PreparedRecord> p = (*matcher)->Prepare(*record);
          if (p.ok()) prepared.push_back(*std::move(p));
        }
      }
      const absl::Time start = absl::Now();
      long comparisons = 0;
      double checksum = 0;
      for (size_t i = 0; i < prepared.size(); ++i) {
        for (int k = 1; k <= cross; ++k) {
          checksum += (*matcher)
                          ->Compare(prepared[i],
                                    prepared[(i + 2 * k + 1) % prepared.size()])
                          .score;
          ++comparisons;
        }
      }
      const double ns = absl::ToDoubleNanoseconds(absl::Now() - start);
      const absl::Time score_start = absl::Now();
      double score_sum = 0;
      for (size_t i = 0; i < prepared.size(); ++i) {
        for (int k = 1; k <= cross; ++k) {
          score_sum += (*matcher)->Score(
              prepared[i], prepared[(i + 2 * k + 1) % prepared.size()]);
        }
      }
      const double score_ns =
          absl::ToDoubleNanoseconds(absl::Now() - score_start);
      std::cout << absl::StrFormat("%s: Score %.0f ns each (checksum %.1f)\n",
                                   path, score_ns / comparisons, score_sum);
      // The service keeps candidates encoded and decodes each one it
      // scores: time that too.
      std::vector<std::string> encoded;
      for (const PreparedRecord& p : prepared) {
        encoded.push_back((*matcher)->EncodePrepared(p));
      }
      size_t bytes = 0;
      for (const std::string& e : encoded) bytes += e.size();
      const absl::Time decode_start = absl::Now();
      int decoded = 0;
      for (int round = 0; round < cross; ++round) {
        for (const std::string& e : encoded) {
          decoded += (*matcher)->DecodePrepared(e).ok() ? 1 : 0;
        }
      }
      const double decode_ns =
          absl::ToDoubleNanoseconds(absl::Now() - decode_start);
      std::cout << absl::StrFormat(
          "%s: %d comparisons, %.0f ns each (checksum %.1f); %d decodes, "
          "%.0f ns each, %.0f bytes per record\n",
          path, comparisons, ns / comparisons, checksum, decoded,
          decode_ns / decoded, bytes / static_cast<double>(encoded.size()));
      continue;
    }
    std::map<std::string, Counts> totals;
    std::map<std::string, std::map<std::string, int>> errors_by_kind;
    int unreachable = 0, same = 0;
    for (const LabelledPair& pair : *pairs) {
      absl::StatusOr<PreparedRecord> a = (*matcher)->Prepare(pair.a);
      absl::StatusOr<PreparedRecord> b = (*matcher)->Prepare(pair.b);
      if (!a.ok() || !b.ok()) {
        std::cerr << pair.id << ": cannot prepare\n";
        status = 1;
        continue;
      }
      const bool reachable = ShareKey(**matcher, *a, *b);
      const MatchResult result = (*matcher)->Compare(*a, *b);
      if (pair.same) {
        ++same;
        if (!reachable) ++unreachable;
      }
      for (const Level& level : levels) {
        const bool found = reachable && result.strength >= level.strength;
        Counts& counts = totals[level.name];
        if (pair.same) {
          (found ? counts.tp : counts.fn)++;
        } else {
          (found ? counts.fp : counts.tn)++;
        }
        if (found != pair.same) errors_by_kind[level.name][pair.kind]++;
        const bool wanted = show == "all" || (show == "fn" && pair.same) ||
                            (show == "fp" && !pair.same);
        if ((found != pair.same || show == "every") &&
            (wanted || show == "every") && level.name == show_level) {
          std::cout << absl::StrFormat(
              "%s %s %s score %.3f%s\n  a: %s\n  b: %s\n", pair.id, pair.kind,
              pair.same ? "MISSED" : "FALSE", result.score,
              reachable ? "" : " (no shared blocking key)", RecordText(pair.a),
              RecordText(pair.b));
          for (const MatchReason& reason : result.reasons) {
            std::cout << absl::StrFormat(
                "    %+.3f f%d m%d [%s | %s] %s\n", reason.contribution,
                static_cast<int>(reason.factor),
                static_cast<int>(reason.method), reason.query_value,
                reason.candidate_value, reason.explanation);
          }
        }
      }
    }
    std::cout << absl::StrFormat(
        "%s: %d pairs, %d same, %d same pairs share no blocking key\n", path,
        pairs->size(), same, unreachable);
    for (const Level& level : levels) {
      const Counts& c = totals[level.name];
      std::string kinds;
      for (const auto& [kind, n] : errors_by_kind[level.name]) {
        absl::StrAppendFormat(&kinds, " %s=%d", kind, n);
      }
      std::cout << absl::StrFormat(
          "  %-8s recall %.4f precision %.4f (TP %d FP %d FN %d) errors:%s\n",
          level.name, c.recall(), c.precision(), c.tp, c.fp, c.fn, kinds);
    }
  }
  return status;
}

}  // namespace
}  // namespace lotse::identity

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> paths(args.begin() + 1, args.end());
  if (paths.empty() && absl::GetFlag(FLAGS_normalize).empty()) {
    std::cerr << "usage: lotse_match_quality [--show=fn|fp|all] FILE.tsv...\n";
    return 2;
  }
  return lotse::identity::Run(paths);
}
