// Reader for the labelled person-record pairs in shared/data
// (names-sample.tsv, names-train.tsv): one header line, then tab-separated
// pair_id, label, kind, and six columns per record (given, family,
// birth_date, birth_place, nationality, sex). Used by the matcher's tests
// and by bench/match_quality.cc, which must read the files the same way.
#ifndef LOTSE_TESTS_IDENTITY_LABELLED_PAIRS_H_
#define LOTSE_TESTS_IDENTITY_LABELLED_PAIRS_H_

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/identity/domain/name_matching.h"

namespace lotse::identity {

struct LabelledPair {
  std::string id;
  bool same = false;
  // same, namesake, sibling, placeholder, other.
  std::string kind;
  MatchRecord a;
  MatchRecord b;
};

// "YYYY", "YYYY-MM" or "YYYY-MM-DD"; empty is an unknown date.
inline BirthDate ParseLabelledDate(const std::string& text) {
  BirthDate date;
  std::vector<std::string> parts = absl::StrSplit(text, '-', absl::SkipEmpty());
  if (parts.size() > 0) (void)absl::SimpleAtoi(parts[0], &date.year);
  if (parts.size() > 1) (void)absl::SimpleAtoi(parts[1], &date.month);
  if (parts.size() > 2) (void)absl::SimpleAtoi(parts[2], &date.day);
  return date;
}

inline MatchRecord ParseLabelledRecord(const std::vector<std::string>& columns,
                                       size_t at) {
  MatchRecord record;
  record.names.spellings.push_back({columns[at], columns[at + 1]});
  record.birth_date = ParseLabelledDate(columns[at + 2]);
  record.birth_place = columns[at + 3];
  if (!columns[at + 4].empty()) {
    record.nationality_codes.push_back(columns[at + 4]);
  }
  const std::string& sex = columns[at + 5];
  record.sex = sex == "F"   ? RecordedSex::kFemale
               : sex == "M" ? RecordedSex::kMale
                            : RecordedSex::kUnspecified;
  return record;
}

// NOT_FOUND when the file cannot be opened, DATA_LOSS for a line without
// the 15 columns.
inline absl::StatusOr<std::vector<LabelledPair>> LoadLabelledPairs(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::vector<LabelledPair> pairs;
  std::string line;
  std::getline(in, line);  // header
  int line_number = 1;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> columns = absl::StrSplit(line, '\t');
    if (columns.size() != 15) {
      return absl::DataLossError(
          absl::StrCat(path, ":", line_number, ": expected 15 columns"));
    }
    LabelledPair pair;
    pair.id = columns[0];
    pair.same = columns[1] == "1";
    pair.kind = columns[2];
    pair.a = ParseLabelledRecord(columns, 3);
    pair.b = ParseLabelledRecord(columns, 9);
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

}  // namespace lotse::identity

#endif  // LOTSE_TESTS_IDENTITY_LABELLED_PAIRS_H_
