// Duplicate detection for person records: do two records describe the same
// newcomer, although offices spelled the names differently (Mohammed /
// Muhammad / محمد, Oleksandr / Aleksandr / Олександр), swapped given and
// family names, or wrote 01.01. for an unknown birthday?
//
// Pure domain logic: no gRPC, no storage. The service maps MatchRecord from
// lotse.identity.v1.Person and MatchResult to DuplicateCandidate; the enum
// values of MatchFactor and MatchMethod equal those of duplicates.proto so
// the mapping is a static_cast.
//
// How it works, in short (services/identity/domain/MATCHING.md has every
// factor and its weight):
//  - Every name is converted to lower-case ASCII Latin with ICU transforms
//    (any script to Latin; Cyrillic both the Ukrainian and the Russian way,
//    which also carries the Serbian letters; Ge'ez both ICU's and the BGN
//    way; Arabic script consonantal, in an Arabic and a Persian reading;
//    Latin with diacritics folded to German register spellings, dropped,
//    umlauts written out, and in a Turkish reading). Punctuation, hyphens
//    and apostrophes separate or vanish; Arabic articles are dropped and
//    "Abdul Rahman" becomes one part.
//  - Each name part gets a phonetic key: a consonant skeleton with folding
//    rules for Latin spellings of the same sound (kh/ch/h, sch/sh/s/z,
//    tsch/ch, w/v, ph/f, j/y as vowels, doubled letters once); letters
//    whose sound depends on the tradition (g, q, a lone c, th, a w glide)
//    keep their own symbol and meet their neighbours at a reduced cost.
//  - Parts are compared exactly, by umlaut spelling, by key, by keys one
//    or two such letters apart, by Damerau-Levenshtein distance (typos),
//    and by undoing one swap of adjacent letters; given and family names
//    may be swapped, split differently, or one record may have extra
//    parts (weaker evidence when only a later given name agrees).
//  - Birth date, sex, nationality and birth place add or subtract
//    evidence. A 1 January date counts as year-only; a year both records
//    agree on counts as partial knowledge. Place, nationality and sex
//    count for a match only where both name fields agree; family names
//    count less where they are patronymics (Eritrea, Ethiopia, Somalia).
//  - The score is the sum of the factors' contributions, clamped to [0, 1].
//
// Candidates for a query must come from an index over BlockingKeys(), never
// from comparing against every stored person.
#ifndef LOTSE_SERVICES_IDENTITY_DOMAIN_NAME_MATCHING_H_
#define LOTSE_SERVICES_IDENTITY_DOMAIN_NAME_MATCHING_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lotse::identity {

// How sure duplicate detection is that two records describe one person.
// Each level is a score threshold (below), so a caller can compare a
// candidate's score with the thresholds the response carries:
//  - POSSIBLE: the names agree (transliteration, typo, swap allowed) and
//    nothing decisive speaks against it. Shown to caseworkers to look at.
//  - LIKELY: names agree closely and the birth data agrees as far as both
//    records know it. Worth checking before creating a second record.
//  - STRONG: names and a birth date agree, or names, birth year, birth
//    place and nationality agree when the day is unknown or a 1 January
//    placeholder. CreatePerson is refused with ALREADY_EXISTS unless the
//    caller confirms a new person, so this level must almost never be
//    wrong.
inline constexpr double kPossibleDuplicateScore = 0.45;
inline constexpr double kLikelyDuplicateScore = 0.62;
inline constexpr double kStrongDuplicateScore = 0.75;

// A birth date of which only some parts may be known, as
// lotse.type.v1.PartialDate: year 0 = unknown; month 0 = year only; day 0 =
// year and month. The caller validates ranges; Compare tolerates anything.
struct BirthDate {
  int year = 0;
  int month = 0;
  int day = 0;
};

// Sex as recorded (lotse.identity.v1.Sex, same numbering).
enum class RecordedSex {
  kUnspecified = 0,
  kFemale = 1,
  kMale = 2,
  kDiverse = 3,
  kNotStated = 4,
};

// One way a person's name is written, in any script. Either field may be
// empty. Several parts are separated by spaces (or hyphens).
struct NameSpelling {
  std::string given_names;
  std::string family_names;
};

// All spellings known for one person (e.g. the Latin one and the Arabic
// one from the passport, aliases). Comparison uses the best-matching pair.
struct PersonNames {
  std::vector<NameSpelling> spellings;
};

// The parts of a person record that duplicate detection compares.
struct MatchRecord {
  PersonNames names;
  BirthDate birth_date;
  std::string birth_place;
  // ISO 3166 codes (alpha-2 or alpha-3, compared case-insensitively).
  std::vector<std::string> nationality_codes;
  RecordedSex sex = RecordedSex::kUnspecified;
};

// Same values as lotse.identity.v1.MatchFactor.
enum class MatchFactor {
  kGivenNames = 1,
  kFamilyNames = 2,
  kBirthDate = 3,
  kBirthPlace = 4,
  kSex = 5,
  kNationality = 6,
};

// Same values as lotse.identity.v1.MatchMethod.
enum class MatchMethod {
  kExact = 1,
  kTransliteration = 2,
  kScriptConversion = 3,
  kUmlautSpelling = 4,
  kNameParts = 5,
  kSwappedNames = 6,
  kTypo = 7,
  kDateEqual = 8,
  kDateDayMonthSwapped = 9,
  kDatePartialCompatible = 10,
  kDatePlaceholderIgnored = 11,
  kMismatch = 12,
  kMissing = 13,
};

// One piece of evidence. The values are those of the two records as
// written (no other personal data); explanation is a short English
// sentence for caseworkers.
struct MatchReason {
  MatchFactor factor;
  MatchMethod method;
  std::string query_value;
  std::string candidate_value;
  // Share of the score; negative is evidence against, 0 means ignored.
  double contribution = 0;
  std::string explanation;
};

// Ordered: a higher level implies every lower one.
enum class DuplicateStrength { kNone, kPossible, kLikely, kStrong };

// The level a score reaches (kNone below kPossibleDuplicateScore).
DuplicateStrength StrengthOfScore(double score);

struct MatchResult {
  // 0 (nothing in common) to 1 (certainly the same person).
  double score = 0;
  DuplicateStrength strength = DuplicateStrength::kNone;
  // Ordered by decreasing absolute contribution.
  std::vector<MatchReason> reasons;
};

// A record converted once for repeated comparison (normalised and keyed
// names). Cheap to copy; immutable; safe to share between threads.
class PreparedRecord {
 public:
  struct Data;
  PreparedRecord() = default;
  explicit PreparedRecord(std::shared_ptr<const Data> data)
      : data_(std::move(data)) {}
  const Data& data() const { return *data_; }

 private:
  std::shared_ptr<const Data> data_;
};

// The name part of a record after normalisation, for diagnostics and
// tests: per spelling and transliteration variant, the Latin ASCII parts
// and their phonetic keys.
struct NormalizedNamePart {
  std::string text;  // e.g. "abdrahman"
  std::string key;   // phonetic key, e.g. "ABTRHMN"
};

// Compares person records. Create once per process and share: all methods
// are const and thread-safe. ICU transliterators are not thread-safe, so
// the matcher keeps a small pool of clones (one per concurrent caller,
// guarded by a mutex only while taking or returning one); pure-ASCII names
// never touch ICU.
class DuplicateMatcher {
 public:
  // Fails (INTERNAL) only if this ICU build lacks a transform we need.
  static absl::StatusOr<std::unique_ptr<DuplicateMatcher>> Create();

  ~DuplicateMatcher();
  DuplicateMatcher(const DuplicateMatcher&) = delete;
  DuplicateMatcher& operator=(const DuplicateMatcher&) = delete;

  // Normalises a record for Compare. INVALID_ARGUMENT for text that is not
  // valid UTF-8; otherwise never fails.
  absl::StatusOr<PreparedRecord> Prepare(const MatchRecord& record) const;

  // Scores `candidate` against `query`. Reasons are phrased from the
  // query's point of view. Symmetric in score except for rounding.
  MatchResult Compare(const PreparedRecord& query,
                      const PreparedRecord& candidate) const;

  // The score Compare would give, without the reasons' values and
  // sentences: for ranking many candidates, of which only the few shown
  // need their reasons (Compare those). Equal to Compare(...).score.
  double Score(const PreparedRecord& query,
               const PreparedRecord& candidate) const;

  // Prepare both, then Compare.
  absl::StatusOr<MatchResult> Compare(const MatchRecord& query,
                                      const MatchRecord& candidate) const;

  // The keys a stored person is indexed under. Each key combines the
  // phonetic key of one name part with the first sound of a part of the
  // other name field (so a swap of given and family names, or a typo in
  // one of the two, still shares a key) and the birth year; every key is
  // emitted once with the year ("...@1990", "...@?" if unknown) and once
  // without it ("...@*"). A handful of keys per person, deduplicated.
  // INVALID_ARGUMENT for invalid UTF-8.
  absl::StatusOr<std::vector<std::string>> BlockingKeys(
      const PersonNames& names, const BirthDate& birth_date) const;

  // The keys to look up for a query (FindDuplicates, CreatePerson): with a
  // known year, the name keys at year-1, year, year+1 and "?" (stored
  // persons without a date); with an unknown year, the yearless "*" keys.
  // Only persons sharing at least one key with these are scored. A person
  // stored with an unknown year is found by any query; a query without a
  // year finds persons of any year, at the cost of a larger candidate set.
  absl::StatusOr<std::vector<std::string>> LookupKeys(
      const PersonNames& names, const BirthDate& birth_date) const;

  // BlockingKeys and LookupKeys of a record prepared before (its names and
  // birth date), without running the ICU transforms again.
  std::vector<std::string> BlockingKeys(const PreparedRecord& record) const;
  std::vector<std::string> LookupKeys(const PreparedRecord& record) const;

  // The prepared form as bytes, to store next to a person record so that
  // comparing against it later needs no ICU transform and no re-folding,
  // and back. The bytes start with kPreparedFormVersion; DecodePrepared
  // answers FAILED_PRECONDITION for another version (the folding or key
  // rules changed since it was stored: Prepare the record afresh) and
  // DATA_LOSS for bytes that do not parse. Decode(Encode(r)) compares
  // exactly like r.
  std::string EncodePrepared(const PreparedRecord& record) const;
  absl::StatusOr<PreparedRecord> DecodePrepared(absl::string_view bytes) const;

  // Bump whenever Prepare's output changes for some input (folding, article
  // and particle rules, phonetic keys) or the encoding changes, so stored
  // forms of the old rules are no longer used.
  static constexpr uint32_t kPreparedFormVersion = 2;

  // Bump whenever BlockingKeys or LookupKeys change for some input. Keys
  // stored under another version do not meet the lookups of this one, so
  // a store that keeps keys must recompute them for every stored person
  // before it answers duplicate queries.
  static constexpr uint32_t kBlockingKeyVersion = 2;

  // The normalised parts of one name field (for tests and diagnostics):
  // one vector per transliteration variant.
  absl::StatusOr<std::vector<std::vector<NormalizedNamePart>>> NormalizeName(
      absl::string_view name) const;

 private:
  class Impl;
  explicit DuplicateMatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Whether a date is treated as a placeholder for an unknown day and month
// (1 January), i.e. compared as year-only.
bool IsPlaceholderBirthDate(const BirthDate& date);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_DOMAIN_NAME_MATCHING_H_
