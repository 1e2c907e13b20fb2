#include "services/identity/domain/name_matching.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/identity/domain/internal/latin_folding.h"
#include "services/identity/domain/internal/phonetic_key.h"

namespace lotse::identity {

using internal::FoldedSpelling;
using internal::SpellingOrigin;
using internal::VowelClass;

namespace {

// ---------------------------------------------------------------------------
// Weights. The score is the clamped sum of contributions; the figures are
// chosen so that matching names alone (~0.55-0.6) make a possible duplicate,
// and only names plus an agreeing real birth date (+0.2..0.25) a strong one.

constexpr double kGivenNamesWeight = 0.30;
constexpr double kFamilyNamesWeight = 0.30;
// Names that share nothing: the two records name different people, unless
// an office wrote something else entirely (so not a veto).
constexpr double kGivenNamesMismatch = -0.15;
constexpr double kFamilyNamesMismatch = -0.20;
// Given and family names swapped: common in registrations, but a match
// needing a swap is slightly less certain.
constexpr double kSwapPenaltyFactor = 0.05;
// With the fields swapped, each record's given name meets the other's
// family name. Which crossed pair is labelled "given" depends only on
// which record is the query, so both pairs weigh the same: the score must
// not change when the records change places. A crossed pair that does not
// agree costs the mean of the two fields' mismatch costs (two such pairs
// cost what two differing fields cost), and both need the same weight.
constexpr double kCrossedNamesMismatch =
    (kGivenNamesMismatch + kFamilyNamesMismatch) / 2;
static_assert(kGivenNamesWeight == kFamilyNamesWeight,
              "a swap of given and family names must score alike either way");
// One record has name parts the other lacks (a second given name).
constexpr double kExtraPartsFactor = 0.90;
// ... and the first part of the longer name is not among those matched.
constexpr double kOnlyLaterPartsFactor = 0.60;
// The same parts in another order: papers give names in one order, so a
// record that reorders them is as often a relative's.
constexpr double kReorderedFactor = 0.85;
// A name field agrees when it contributes at least this share of its
// weight (a transliteration or typo does; a later given name alone does
// not).
constexpr double kNamesAgreeShare = 0.6;
// Share of a family-name match that counts where the "family" name is a
// patronymic.
constexpr double kPatronymicFactor = 0.6;
// With given and family names swapped, the father's name sits in one
// crossed pair or the other depending on which record has the fields
// swapped, which neither record tells: both crossed pairs count the mean
// share (two agreeing pairs then count what a straight match does).
constexpr double kCrossedPatronymicFactor = (1 + kPatronymicFactor) / 2;

constexpr double kDateEqual = 0.25;
constexpr double kDateDayMonthSwapped = 0.22;
constexpr double kDateYearMonthEqual = 0.15;
// A year both records agree on where at least one knows no more (year
// only, or a 1 January placeholder): partial knowledge, counted as such.
constexpr double kDateYearOnlyEqual = 0.10;
// ... when the two records name different birth places.
constexpr double kDateYearOnlyUncorroborated = 0.06;
constexpr double kDateYearTypo = 0.05;  // same day and month, year +-1
constexpr double kDateSameYearOtherDay = -0.10;
constexpr double kDateSameYearOtherMonth = -0.25;
constexpr double kDateYearOffByOne = -0.15;
constexpr double kDateYearOffByTwo = -0.30;
constexpr double kDateYearsApart = -0.60;

constexpr double kSexEqual = 0.03;
constexpr double kSexDifferent = -0.25;
constexpr double kNationalityShared = 0.05;
constexpr double kNationalityDisjoint = -0.10;
constexpr double kPlaceEqual = 0.08;
constexpr double kPlaceTransliterated = 0.07;

// Per name-part similarity by method.
constexpr double kSimilarityExact = 1.0;
constexpr double kSimilarityUmlaut = 0.99;
constexpr double kSimilarityScriptSameText = 0.97;
constexpr double kSimilarityScriptSameKey = 0.93;
constexpr double kSimilarityTransliteration = 0.90;
// Keys one (or two) letters of tradition-dependent sound apart (Qasim /
// Gasim, Jovanovic / Jowanowitsch, Othman / Osman).
constexpr double kSimilaritySoftVariant = 0.86;
// The Ukrainian and the Russian form of one name (Mykola / Nikolai).
constexpr double kSimilarityEquivalentForm = 0.86;
constexpr double kSimilarityTwoSoftVariants = 0.80;
// Same consonants, but a against o/u after the first consonant (Hassan /
// Hussein, Mahmud / Muhammad): most likely a different name, so barely
// more than no match.
constexpr double kSimilarityTransliterationWeak = 0.20;
constexpr double kSimilarityTypo = 0.75;
constexpr double kSimilarityKeyTypo = 0.70;

// ---------------------------------------------------------------------------
// Prepared names.

struct NameForm {
  std::string text;
  internal::PhoneticKey key;
  SpellingOrigin origin = SpellingOrigin::kLatin;
};

// One name part ("rahman") with its alternative forms (with and without an
// attached article).
struct NamePart {
  std::vector<NameForm> forms;
};

// A name part, or two adjacent ones read as one (Abdul Rahman /
// Abdulrahman), as a candidate for matching.
struct Unit {
  size_t first = 0;
  size_t count = 1;
  std::vector<NameForm> forms;
};

// One transliteration variant of a name field.
struct NameField {
  std::vector<NamePart> parts;
  std::string folded;  // the variant's text, for explanations
  // MakeUnits(*this), derived once the parts are final (MakeField, and
  // when a stored form is decoded): comparing a query with a hundred
  // candidates used to derive the query's units a hundred times.
  std::vector<Unit> units;
};

std::vector<Unit> MakeUnits(const NameField& field);

struct PreparedSpelling {
  std::string given_original;
  std::string family_original;
  std::vector<NameField> given;   // empty when the field is empty
  std::vector<NameField> family;  // empty when the field is empty
};

bool IsArticle(absl::string_view token) {
  static const auto* const kArticles = new absl::flat_hash_set<std::string>{
      "al", "el", "ul", "il",  "ol", "ad", "ar", "as",
      "at", "az", "an", "ash", "ed", "ud", "ur"};
  return kArticles->contains(token);
}

absl::string_view StripAttachedArticle(absl::string_view token) {
  if (token.size() >= 5 &&
      (absl::StartsWith(token, "al") || absl::StartsWith(token, "el"))) {
    return token.substr(2);
  }
  return token;
}

// "Abdul Rahman", "Abd al-Rahman", "Abdel-Rahman", "Abdulrahman" all become
// "abdrahman": the servant-of prefix is written in many ways and attached
// or not.
constexpr absl::string_view kAbdPrefixes[] = {
    "abdoul", "abdul", "abdel", "abdal", "abdol", "abdu", "abd"};

std::vector<std::string> JoinNameParticles(
    const std::vector<std::string>& tokens) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    const bool has_next = i + 1 < tokens.size();
    if (IsArticle(token) && has_next) continue;
    bool merged = false;
    for (absl::string_view prefix : kAbdPrefixes) {
      if (token == prefix && has_next) {
        size_t next = i + 1;
        while (next + 1 < tokens.size() && IsArticle(tokens[next])) ++next;
        parts.push_back(
            absl::StrCat("abd", StripAttachedArticle(tokens[next])));
        i = next;
        merged = true;
        break;
      }
      if (token.size() > prefix.size() + 2 && absl::StartsWith(token, prefix)) {
        parts.push_back(absl::StrCat("abd", token.substr(prefix.size())));
        merged = true;
        break;
      }
    }
    if (!merged) parts.push_back(token);
  }
  return parts;
}

NameForm MakeForm(std::string text, SpellingOrigin origin) {
  NameForm form;
  form.key = internal::ComputePhoneticKey(text);
  if (origin == SpellingOrigin::kConvertedConsonantal) {
    form.key.first_vowel = VowelClass::kUnknown;
  }
  form.text = std::move(text);
  form.origin = origin;
  return form;
}

// Ukrainian and Russian forms of one given name that no spelling rule
// leads from one to the other (a register may hold either): the forms
// differ in a sound, not in how it is written. Both sides map to the
// Russian form in its common German-register spelling; spelling variants
// of either side reach it through the phonetic key.
absl::string_view EquivalentForm(absl::string_view part) {
  static const auto* const kForms =
      new absl::flat_hash_map<std::string, std::string>{
          {"mykola", "nikolai"},       {"mikola", "nikolai"},
          {"hanna", "anna"},           {"ganna", "anna"},
          {"kateryna", "ekaterina"},   {"katerina", "ekaterina"},
          {"volodymyr", "vladimir"},   {"wolodymyr", "vladimir"},
          {"daryna", "darja"},         {"nadiya", "nadezhda"},
          {"nadija", "nadezhda"},      {"lyubov", "ljubov"},
          {"yelyzaveta", "elizaveta"}, {"jelysaweta", "elizaveta"},
          {"oleksiy", "aleksei"},      {"oleksii", "aleksei"},
          {"heorhiy", "georgi"},       {"heorhii", "georgi"},
          {"fedir", "fjodor"},         {"khrystyna", "kristina"},
      };
  auto it = kForms->find(part);
  return it == kForms->end() ? absl::string_view() : it->second;
}

NameField MakeField(const FoldedSpelling& spelling) {
  NameField field;
  field.folded = spelling.text;
  std::vector<std::string> tokens =
      absl::StrSplit(spelling.text, ' ', absl::SkipEmpty());
  for (std::string& token : JoinNameParticles(tokens)) {
    NamePart part;
    absl::string_view stripped = StripAttachedArticle(token);
    if (stripped.size() != token.size()) {
      part.forms.push_back(MakeForm(std::string(stripped), spelling.origin));
    }
    const absl::string_view equivalent = EquivalentForm(token);
    part.forms.push_back(MakeForm(std::move(token), spelling.origin));
    if (!equivalent.empty()) {
      part.forms.push_back(
          MakeForm(std::string(equivalent), SpellingOrigin::kEquivalentForm));
    }
    field.parts.push_back(std::move(part));
  }
  field.units = MakeUnits(field);
  return field;
}

}  // namespace

struct PreparedRecord::Data {
  std::vector<PreparedSpelling> spellings;
  BirthDate birth_date;
  std::string birth_place_original;
  std::vector<NameField> birth_place;
  std::vector<std::string> nationalities;
  RecordedSex sex = RecordedSex::kUnspecified;
};

DuplicateStrength StrengthOfScore(double score) {
  if (score >= kStrongDuplicateScore) return DuplicateStrength::kStrong;
  if (score >= kLikelyDuplicateScore) return DuplicateStrength::kLikely;
  if (score >= kPossibleDuplicateScore) return DuplicateStrength::kPossible;
  return DuplicateStrength::kNone;
}

bool IsPlaceholderBirthDate(const BirthDate& date) {
  return date.year != 0 && date.month == 1 && date.day == 1;
}

namespace {

// ---------------------------------------------------------------------------
// Comparing name parts and fields.

struct PartMatch {
  double similarity = 0;
  MatchMethod method = MatchMethod::kMismatch;
};

bool IsConverted(SpellingOrigin origin) {
  return origin == SpellingOrigin::kConvertedAlphabet ||
         origin == SpellingOrigin::kConvertedConsonantal;
}

// Whether all but at most one symbol of the shorter key occur in the
// longer one (as often as there): a swap of two letters keeps the letters,
// so a key it spoiled still holds the other's symbols.
bool SharesMostSymbols(const std::string& a, const std::string& b) {
  const std::string& shorter = a.size() <= b.size() ? a : b;
  const std::string& longer = a.size() <= b.size() ? b : a;
  int counts[26] = {};
  for (char c : longer) {
    if (c >= 'A' && c <= 'Z') ++counts[c - 'A'];
  }
  int missing = 0;
  for (char c : shorter) {
    if (c < 'A' || c > 'Z' || --counts[c - 'A'] < 0) ++missing;
  }
  return missing <= 1;
}

bool IsVowelLetter(char c) {
  return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

// Whether swapping two adjacent letters of `text` gives a spelling whose
// key is at most one soft edit from `other`, with the same first vowel
// (a swap that merely hides the vowel proves nothing).
bool RepairedBySwap(const std::string& text,
                    const internal::PhoneticKey& other) {
  if (text.size() < 5 || text.size() > 24) return false;
  std::string swapped = text;
  for (size_t i = 0; i + 1 < swapped.size(); ++i) {
    // Two equal letters, or two vowels: the key would not change.
    if (swapped[i] == swapped[i + 1] ||
        (IsVowelLetter(swapped[i]) && IsVowelLetter(swapped[i + 1]))) {
      continue;
    }
    std::swap(swapped[i], swapped[i + 1]);
    const internal::PhoneticKey key = internal::ComputePhoneticKey(swapped);
    std::swap(swapped[i], swapped[i + 1]);
    if (internal::SoftKeyDistance(key.key, other.key, internal::kSoftEdit) <=
            internal::kSoftEdit &&
        key.first_vowel == other.first_vowel) {
      return true;
    }
  }
  return false;
}

PartMatch CompareForms(const NameForm& a, const NameForm& b) {
  const bool converted = IsConverted(a.origin) || IsConverted(b.origin);
  const bool consonantal = a.origin == SpellingOrigin::kConvertedConsonantal ||
                           b.origin == SpellingOrigin::kConvertedConsonantal;
  if (a.text.empty() || b.text.empty()) return {};
  if (a.origin == SpellingOrigin::kEquivalentForm ||
      b.origin == SpellingOrigin::kEquivalentForm) {
    // Only the two languages' forms meet, never a form with a spelling.
    if (a.origin != b.origin && a.key.key == b.key.key &&
        internal::VowelsCompatible(a.key.first_vowel, b.key.first_vowel)) {
      return {kSimilarityEquivalentForm, MatchMethod::kTransliteration};
    }
    return {};
  }
  if (a.text == b.text) {
    if (converted)
      return {kSimilarityScriptSameText, MatchMethod::kScriptConversion};
    if (a.origin == SpellingOrigin::kUmlautsWrittenOut ||
        b.origin == SpellingOrigin::kUmlautsWrittenOut) {
      return {kSimilarityUmlaut, MatchMethod::kUmlautSpelling};
    }
    return {kSimilarityExact, MatchMethod::kExact};
  }
  const bool vowels_agree =
      internal::VowelsCompatible(a.key.first_vowel, b.key.first_vowel);
  const MatchMethod variant_method = converted ? MatchMethod::kScriptConversion
                                               : MatchMethod::kTransliteration;
  if (!a.key.key.empty() && a.key.key == b.key.key) {
    if (consonantal) {
      return {kSimilarityScriptSameKey, MatchMethod::kScriptConversion};
    }
    if (!vowels_agree) {
      // Kwoalenko / Kowalenko: a swap moved a vowel, not another name.
      if (RepairedBySwap(a.text, b.key) || RepairedBySwap(b.text, a.key)) {
        return {kSimilarityTypo, MatchMethod::kTypo};
      }
      return {kSimilarityTransliterationWeak, MatchMethod::kTransliteration};
    }
    return {kSimilarityTransliteration, variant_method};
  }
  // Letters whose sound depends on the tradition (g, q, a lone c, th, a w
  // glide): one such difference is a transliteration variant, two are one
  // for keys long enough that the rest still tells names apart.
  const size_t shorter_key = std::min(a.key.key.size(), b.key.key.size());
  if (shorter_key >= 2) {
    const int soft = internal::SoftKeyDistance(a.key.key, b.key.key,
                                               2 * internal::kSoftEdit);
    const bool one_soft = soft <= internal::kGlideEdit;
    // Two soft edits need a key long enough that the rest tells names
    // apart, or the same letter written the same other way twice
    // (Heorhiy / Georgi).
    if (one_soft || (soft <= 2 * internal::kSoftEdit &&
                     (shorter_key >= 4 ||
                      internal::SameUpToOneSoftPair(a.key.key, b.key.key)))) {
      if (!vowels_agree && !consonantal) {
        return {kSimilarityTransliterationWeak, MatchMethod::kTransliteration};
      }
      return {one_soft ? kSimilaritySoftVariant : kSimilarityTwoSoftVariants,
              variant_method};
    }
  }
  if (!consonantal) {
    const size_t shorter = std::min(a.text.size(), b.text.size());
    const size_t longer = std::max(a.text.size(), b.text.size());
    // Offices rarely get the initial wrong, and names that differ only in
    // it are often different names (Jamal / Kamal / Gamal); but two
    // letters swapped at the start are a slip (aRhel / Rahel). A letter
    // left out of a short name is one too (Saa / Sana). Checked before the
    // distance, which most pairs of different names never need.
    const bool same_initial = a.text[0] == b.text[0];
    const bool swapped_initial =
        !same_initial && a.text.size() == b.text.size() && a.text.size() >= 3 &&
        a.text[0] == b.text[1] && a.text[1] == b.text[0];
    if ((same_initial && shorter >= 3 && longer >= 4) || swapped_initial) {
      const int distance = internal::OsaDistance(a.text, b.text, 2);
      if (swapped_initial && distance <= 1) {
        return {kSimilarityTypo, MatchMethod::kTypo};
      }
      if (same_initial && (distance <= 1 || (distance <= 2 && shorter >= 8))) {
        return {kSimilarityTypo, MatchMethod::kTypo};
      }
    }
  }
  // Arabic script shows only consonants, so a typo there can only be seen
  // in the skeleton. For Latin spellings one different consonant is too
  // coarse (Yilmaz / Yildiz), but two swapped consonants with vowels
  // around them are a typo the letter distance misses (Masnour / Mansur).
  // Keys two edits apart at most: a swap of two letters moves one or two
  // symbols of the key; anything farther is another name. Computed only
  // where a rule below can use it: most compared parts share nothing.
  const bool swap_possible = !consonantal && shorter_key >= 3 &&
                             a.text.size() >= 5 && b.text.size() >= 5 &&
                             SharesMostSymbols(a.key.key, b.key.key);
  const int key_distance = (shorter_key >= 4 || swap_possible)
                               ? internal::OsaDistance(a.key.key, b.key.key, 2)
                               : 3;
  if (a.key.key.size() >= 4 && b.key.key.size() >= 4 && key_distance <= 1) {
    std::string sorted_a = a.key.key, sorted_b = b.key.key;
    std::sort(sorted_a.begin(), sorted_a.end());
    std::sort(sorted_b.begin(), sorted_b.end());
    if (consonantal || (vowels_agree && sorted_a == sorted_b)) {
      return {kSimilarityKeyTypo, MatchMethod::kTypo};
    }
  }
  // Two letters swapped inside a spelling that differs from the other's
  // anyway (Schewstchenko for Schewtschenko, against Shevchenko): undo one
  // swap on either side and compare the keys again.
  if (swap_possible && key_distance <= 2 &&
      (RepairedBySwap(a.text, b.key) || RepairedBySwap(b.text, a.key))) {
    return {kSimilarityTypo, MatchMethod::kTypo};
  }
  return {};
}

std::vector<Unit> MakeUnits(const NameField& field) {
  std::vector<Unit> units;
  const size_t n = field.parts.size();
  for (size_t i = 0; i < n; ++i) {
    units.push_back({i, 1, field.parts[i].forms});
  }
  for (size_t i = 0; i + 1 < n; ++i) {
    Unit unit{i, 2, {}};
    for (const NameForm& left : field.parts[i].forms) {
      for (const NameForm& right : field.parts[i + 1].forms) {
        std::string joined = absl::StrCat(left.text, right.text);
        absl::string_view stripped = StripAttachedArticle(joined);
        if (stripped.size() != joined.size()) {
          unit.forms.push_back(MakeForm(std::string(stripped), left.origin));
        }
        unit.forms.push_back(MakeForm(std::move(joined), left.origin));
      }
    }
    units.push_back(std::move(unit));
  }
  if (n > 2) {  // the whole field as one word
    std::string joined;
    for (const NamePart& part : field.parts) joined += part.forms.back().text;
    units.push_back(
        {0, n, {MakeForm(std::move(joined), field.parts[0].forms[0].origin)}});
  }
  return units;
}

// Refers to the texts of the compared records' units, which outlive it.
struct UnitMatch {
  const std::string* a_text = nullptr;
  const std::string* b_text = nullptr;
  PartMatch match;
  bool joined_parts = false;
};

struct FieldMatch {
  double similarity = 0;  // 0..1
  MatchMethod method = MatchMethod::kMismatch;
  std::vector<UnitMatch> matches;
  bool extra_parts = false;
  // The record with more parts has its first part unmatched: only a later
  // name agrees (Mariam against Fatma Mariam).
  bool only_later_parts = false;
  // The parts match crosswise (Serhiy Oleksandr / Oleksandr Serhiy).
  bool reordered = false;
};

PartMatch CompareUnits(const Unit& a, const Unit& b, const std::string** a_text,
                       const std::string** b_text) {
  PartMatch best;
  for (const NameForm& fa : a.forms) {
    for (const NameForm& fb : b.forms) {
      PartMatch match = CompareForms(fa, fb);
      if (match.similarity > best.similarity) {
        best = match;
        *a_text = &fa.text;
        *b_text = &fb.text;
      }
    }
  }
  return best;
}

struct UnitCandidate {
  size_t ia, ib;
  UnitMatch match;
};

// Greedy assignment of `candidates` (best first, in this order) to the
// parts of `a` and `b`, and the similarity of the fields it gives.
FieldMatch AssignUnits(const NameField& a, const NameField& b,
                       const std::vector<const UnitCandidate*>& candidates) {
  FieldMatch result;
  const std::vector<Unit>& units_a = a.units;
  const std::vector<Unit>& units_b = b.units;
  std::vector<bool> used_a(a.parts.size()), used_b(b.parts.size());
  auto free_range = [](const std::vector<bool>& used, const Unit& unit) {
    for (size_t i = unit.first; i < unit.first + unit.count; ++i) {
      if (used[i]) return false;
    }
    return true;
  };
  double similarity_sum = 0;
  size_t covered_a = 0, covered_b = 0;
  // Positions of the matched units, to see whether they cross.
  std::vector<std::pair<size_t, size_t>> positions;
  for (const UnitCandidate* candidate : candidates) {
    const Unit& ua = units_a[candidate->ia];
    const Unit& ub = units_b[candidate->ib];
    if (!free_range(used_a, ua) || !free_range(used_b, ub)) continue;
    for (size_t i = ua.first; i < ua.first + ua.count; ++i) used_a[i] = true;
    for (size_t i = ub.first; i < ub.first + ub.count; ++i) used_b[i] = true;
    covered_a += ua.count;
    covered_b += ub.count;
    similarity_sum += candidate->match.match.similarity;
    positions.push_back({ua.first, ub.first});
    result.matches.push_back(candidate->match);
  }
  if (result.matches.empty()) return result;
  std::sort(positions.begin(), positions.end());
  for (size_t i = 1; i < positions.size(); ++i) {
    if (positions[i].second < positions[i - 1].second) {
      result.reordered = true;
    }
  }
  const size_t uncovered_a = a.parts.size() - covered_a;
  const size_t uncovered_b = b.parts.size() - covered_b;
  // Parts left over on both sides contradict each other; parts left over
  // on one side only are extra names the other office did not write down.
  const size_t conflicting = std::min(uncovered_a, uncovered_b);
  result.similarity =
      similarity_sum / static_cast<double>(result.matches.size() + conflicting);
  if (uncovered_a != uncovered_b) {
    result.extra_parts = true;
    result.similarity *= kExtraPartsFactor;
    // The name a person goes by is the first of their given names, and an
    // office that writes down only one writes that one; a record agreeing
    // only with a later name is as often a relative named after the same
    // forebear.
    const std::vector<bool>& longer =
        uncovered_a > uncovered_b ? used_a : used_b;
    if (!longer.empty() && !longer[0]) {
      result.only_later_parts = true;
      result.similarity *= kOnlyLaterPartsFactor;
    }
  }
  if (result.reordered) result.similarity *= kReorderedFactor;
  // The weakest link explains the match best.
  const UnitMatch* weakest = &result.matches.front();
  for (const UnitMatch& match : result.matches) {
    if (match.joined_parts) {
      result.method = MatchMethod::kNameParts;
      return result;
    }
    if (match.match.similarity < weakest->match.similarity) weakest = &match;
  }
  result.method = weakest->match.method;
  return result;
}

FieldMatch CompareFields(const NameField& a, const NameField& b) {
  if (a.parts.empty() || b.parts.empty()) return {};
  const std::vector<Unit>& units_a = a.units;
  const std::vector<Unit>& units_b = b.units;
  std::vector<UnitCandidate> candidates;
  for (size_t ia = 0; ia < units_a.size(); ++ia) {
    for (size_t ib = 0; ib < units_b.size(); ++ib) {
      if (units_a[ia].count > 1 && units_b[ib].count > 1 &&
          units_a[ia].count == units_b[ib].count) {
        continue;  // same split on both sides: singles cover it
      }
      UnitMatch match;
      match.match =
          CompareUnits(units_a[ia], units_b[ib], &match.a_text, &match.b_text);
      if (match.match.similarity <= 0) continue;
      match.joined_parts = units_a[ia].count != units_b[ib].count;
      candidates.push_back({ia, ib, std::move(match)});
    }
  }
  if (candidates.empty()) return {};
  // Greedy assignment, best first; prefer single parts on ties so that
  // joining is only reported where it was needed. Candidates equal in both
  // are taken in the order of a's parts, and again in the order of b's,
  // and the better assignment counts: taking them in one record's order
  // only would make the score depend on which record is the query.
  auto better = [&](const UnitCandidate* x, const UnitCandidate* y) {
    if (x->match.match.similarity != y->match.match.similarity) {
      return x->match.match.similarity > y->match.match.similarity;
    }
    return units_a[x->ia].count + units_b[x->ib].count <
           units_a[y->ia].count + units_b[y->ib].count;
  };
  std::vector<const UnitCandidate*> by_a;
  by_a.reserve(candidates.size());
  for (const UnitCandidate& candidate : candidates) by_a.push_back(&candidate);
  std::vector<const UnitCandidate*> by_b = by_a;
  std::stable_sort(by_b.begin(), by_b.end(),
                   [](const UnitCandidate* x, const UnitCandidate* y) {
                     return x->ib < y->ib;
                   });
  std::stable_sort(by_a.begin(), by_a.end(), better);
  std::stable_sort(by_b.begin(), by_b.end(), better);
  FieldMatch result = AssignUnits(a, b, by_a);
  if (by_a != by_b) {
    FieldMatch other = AssignUnits(a, b, by_b);
    if (other.similarity > result.similarity) result = std::move(other);
  }
  return result;
}

FieldMatch BestFieldMatch(const std::vector<NameField>& a,
                          const std::vector<NameField>& b) {
  FieldMatch best;
  for (const NameField& fa : a) {
    for (const NameField& fb : b) {
      FieldMatch match = CompareFields(fa, fb);
      if (match.similarity > best.similarity) best = std::move(match);
    }
  }
  return best;
}

absl::string_view MethodName(MatchMethod method) {
  switch (method) {
    case MatchMethod::kExact:
      return "same spelling";
    case MatchMethod::kTransliteration:
      return "transliteration variant";
    case MatchMethod::kScriptConversion:
      return "same name in another script";
    case MatchMethod::kUmlautSpelling:
      return "umlaut written out";
    case MatchMethod::kNameParts:
      return "name parts joined or split differently";
    case MatchMethod::kSwappedNames:
      return "given and family names swapped";
    case MatchMethod::kTypo:
      return "small spelling difference";
    default:
      return "different";
  }
}

std::string DescribeField(const FieldMatch& match) {
  std::vector<std::string> pieces;
  for (const UnitMatch& unit : match.matches) {
    pieces.push_back(absl::StrCat(*unit.a_text, " ~ ", *unit.b_text, " (",
                                  MethodName(unit.match.method), ")"));
  }
  std::string text = absl::StrJoin(pieces, "; ");
  if (match.reordered) {
    absl::StrAppend(&text, "; the parts stand in another order");
  }
  if (match.only_later_parts) {
    absl::StrAppend(&text,
                    "; only a later name part agrees, not the first one");
  } else if (match.extra_parts) {
    absl::StrAppend(&text, "; one record has further name parts");
  }
  return text;
}

struct NameEvidence {
  double total = 0;
  std::vector<MatchReason> reasons;
  // Given and family names compared crosswise.
  bool swapped = false;
  // Set by WeighNameEvidence: both name fields agree well enough for place,
  // nationality and sex to count; the sum of the reasons after weighing.
  bool agree = false;
  double weighed = 0;
};

MatchReason FieldReason(MatchFactor factor, const std::string& query_value,
                        const std::string& candidate_value,
                        const FieldMatch& match, double weight, double mismatch,
                        bool query_has, bool candidate_has, bool explain) {
  MatchReason reason{factor,
                     MatchMethod::kMissing,
                     explain ? query_value : std::string(),
                     explain ? candidate_value : std::string(),
                     0,
                     ""};
  const char* label =
      factor == MatchFactor::kGivenNames ? "given names" : "family names";
  if (!query_has || !candidate_has) {
    if (explain) reason.explanation = absl::StrCat("one record has no ", label);
    return reason;
  }
  if (match.matches.empty()) {
    reason.method = MatchMethod::kMismatch;
    reason.contribution = mismatch;
    if (explain) reason.explanation = absl::StrCat(label, " differ");
    return reason;
  }
  if (match.similarity <= kSimilarityTransliterationWeak) {
    // Same consonants, other vowels (Hassan / Hussein): different names.
    reason.method = MatchMethod::kMismatch;
    reason.contribution = mismatch;
    if (explain)
      reason.explanation =
          absl::StrCat(label, " differ: ", DescribeField(match));
    return reason;
  }
  reason.method = match.method;
  reason.contribution = weight * match.similarity;
  if (explain)
    reason.explanation = absl::StrCat(label, ": ", DescribeField(match));
  return reason;
}

NameEvidence CompareSpellings(const PreparedSpelling& q,
                              const PreparedSpelling& c, bool explain) {
  auto evaluate = [explain](const std::vector<NameField>& q_given,
                            const std::vector<NameField>& q_family,
                            const std::vector<NameField>& c_given,
                            const std::vector<NameField>& c_family,
                            const std::string& qg, const std::string& qf,
                            const std::string& cg, const std::string& cf,
                            bool crossed) {
    NameEvidence evidence;
    FieldMatch given = BestFieldMatch(q_given, c_given);
    FieldMatch family = BestFieldMatch(q_family, c_family);
    evidence.reasons.push_back(
        FieldReason(MatchFactor::kGivenNames, qg, cg, given, kGivenNamesWeight,
                    crossed ? kCrossedNamesMismatch : kGivenNamesMismatch,
                    !q_given.empty(), !c_given.empty(), explain));
    evidence.reasons.push_back(FieldReason(
        MatchFactor::kFamilyNames, qf, cf, family, kFamilyNamesWeight,
        crossed ? kCrossedNamesMismatch : kFamilyNamesMismatch,
        !q_family.empty(), !c_family.empty(), explain));
    for (const MatchReason& reason : evidence.reasons) {
      evidence.total += reason.contribution;
    }
    return evidence;
  };
  NameEvidence straight =
      evaluate(q.given, q.family, c.given, c.family, q.given_original,
               q.family_original, c.given_original, c.family_original,
               /*crossed=*/false);
  NameEvidence swapped =
      evaluate(q.given, q.family, c.family, c.given, q.given_original,
               q.family_original, c.family_original, c.given_original,
               /*crossed=*/true);
  // A swap only explains something when both fields then agree better.
  const double swap_penalty = kSwapPenaltyFactor * std::max(0.0, swapped.total);
  if (swapped.total - swap_penalty > straight.total) {
    swapped.reasons.push_back(MatchReason{
        MatchFactor::kGivenNames, MatchMethod::kSwappedNames,
        explain ? q.given_original : std::string(),
        explain ? c.family_original : std::string(), -swap_penalty,
        explain ? "given and family names are swapped between the records"
                : ""});
    swapped.total -= swap_penalty;
    swapped.swapped = true;
    return swapped;
  }
  return straight;
}

// ---------------------------------------------------------------------------
// Birth date.

std::string FormatDate(const BirthDate& date) {
  if (date.year == 0) return "";
  if (date.month == 0) return absl::StrFormat("%04d", date.year);
  if (date.day == 0) return absl::StrFormat("%04d-%02d", date.year, date.month);
  return absl::StrFormat("%04d-%02d-%02d", date.year, date.month, date.day);
}

MatchReason CompareBirthDates(const BirthDate& q, const BirthDate& c,
                              bool explain) {
  MatchReason reason{MatchFactor::kBirthDate,
                     MatchMethod::kMissing,
                     explain ? FormatDate(q) : std::string(),
                     explain ? FormatDate(c) : std::string(),
                     0,
                     ""};
  if (q.year == 0 || c.year == 0) {
    if (explain) reason.explanation = "one record has no birth date";
    return reason;
  }
  const bool placeholder =
      IsPlaceholderBirthDate(q) || IsPlaceholderBirthDate(c);
  // A 1 January date is read as year-only.
  auto effective = [](BirthDate date) {
    if (IsPlaceholderBirthDate(date)) date.month = date.day = 0;
    return date;
  };
  const BirthDate a = effective(q);
  const BirthDate b = effective(c);
  const int years_apart = std::abs(a.year - b.year);
  const bool both_full = a.day != 0 && b.day != 0;
  if (years_apart >= 3) {
    reason.method = MatchMethod::kMismatch;
    reason.contribution = kDateYearsApart;
    if (explain)
      reason.explanation = absl::StrCat("born ", years_apart, " years apart");
    return reason;
  }
  if (years_apart == 2) {
    reason.method = MatchMethod::kMismatch;
    reason.contribution = kDateYearOffByTwo;
    if (explain) reason.explanation = "born two years apart";
    return reason;
  }
  if (years_apart == 1) {
    if (both_full && a.month == b.month && a.day == b.day) {
      reason.method = MatchMethod::kTypo;
      reason.contribution = kDateYearTypo;
      if (explain)
        reason.explanation = "same day and month, year differs by one";
    } else {
      reason.method = MatchMethod::kMismatch;
      reason.contribution = kDateYearOffByOne;
      if (explain) reason.explanation = "birth years differ by one";
    }
    return reason;
  }
  // Same year.
  if (placeholder) {
    reason.method = MatchMethod::kDatePlaceholderIgnored;
    reason.contribution = kDateYearOnlyEqual;
    reason.explanation =
        "1 January may be a placeholder: compared as year only; the same "
        "year";
    return reason;
  }
  if (both_full) {
    if (a.month == b.month && a.day == b.day) {
      reason.method = MatchMethod::kDateEqual;
      reason.contribution = kDateEqual;
      if (explain) reason.explanation = "same birth date";
    } else if (a.month == b.day && a.day == b.month) {
      reason.method = MatchMethod::kDateDayMonthSwapped;
      reason.contribution = kDateDayMonthSwapped;
      if (explain)
        reason.explanation = "same birth date with day and month swapped";
    } else {
      reason.method = MatchMethod::kMismatch;
      reason.contribution = (a.month == b.month || a.day == b.day)
                                ? kDateSameYearOtherDay
                                : kDateSameYearOtherMonth;
      if (explain)
        reason.explanation = "different birth dates in the same year";
    }
    return reason;
  }
  if (a.month != 0 && b.month != 0) {
    // One has a day; or both only year and month.
    const bool month_agrees = a.month == b.month ||
                              (a.day != 0 && a.day == b.month) ||
                              (b.day != 0 && b.day == a.month);
    if (month_agrees) {
      reason.method = MatchMethod::kDatePartialCompatible;
      reason.contribution = kDateYearMonthEqual;
      if (explain) reason.explanation = "same year and month of birth";
    } else {
      reason.method = MatchMethod::kMismatch;
      reason.contribution = kDateSameYearOtherDay;
      if (explain)
        reason.explanation = "different months of birth in the same year";
    }
    return reason;
  }
  reason.method = MatchMethod::kDatePartialCompatible;
  reason.contribution = kDateYearOnlyEqual;
  if (explain)
    reason.explanation = "same year of birth; day and month not known on both";
  return reason;
}

// ---------------------------------------------------------------------------
// Weaker factors.

absl::string_view SexName(RecordedSex sex) {
  switch (sex) {
    case RecordedSex::kFemale:
      return "female";
    case RecordedSex::kMale:
      return "male";
    case RecordedSex::kDiverse:
      return "diverse";
    case RecordedSex::kNotStated:
      return "not stated";
    default:
      return "";
  }
}

MatchReason CompareSex(RecordedSex q, RecordedSex c, bool explain) {
  MatchReason reason{MatchFactor::kSex,
                     MatchMethod::kMissing,
                     explain ? std::string(SexName(q)) : std::string(),
                     explain ? std::string(SexName(c)) : std::string(),
                     0,
                     explain ? "sex not recorded on both" : ""};
  auto known = [](RecordedSex sex) {
    return sex == RecordedSex::kFemale || sex == RecordedSex::kMale ||
           sex == RecordedSex::kDiverse;
  };
  if (!known(q) || !known(c)) return reason;
  if (q == c) {
    reason.method = MatchMethod::kExact;
    reason.contribution = kSexEqual;
    if (explain) reason.explanation = "same sex";
  } else {
    reason.method = MatchMethod::kMismatch;
    reason.contribution = kSexDifferent;
    if (explain) reason.explanation = "different sex";
  }
  return reason;
}

MatchReason CompareNationalities(const std::vector<std::string>& q,
                                 const std::vector<std::string>& c,
                                 bool explain) {
  MatchReason reason{MatchFactor::kNationality,
                     MatchMethod::kMissing,
                     explain ? absl::StrJoin(q, ",") : std::string(),
                     explain ? absl::StrJoin(c, ",") : std::string(),
                     0,
                     explain ? "nationality not recorded on both" : ""};
  if (q.empty() || c.empty()) return reason;
  for (const std::string& code : q) {
    if (std::find(c.begin(), c.end(), code) != c.end()) {
      reason.method = MatchMethod::kExact;
      reason.contribution = kNationalityShared;
      if (explain) reason.explanation = "a nationality in common";
      return reason;
    }
  }
  reason.method = MatchMethod::kMismatch;
  reason.contribution = kNationalityDisjoint;
  if (explain) reason.explanation = "no nationality in common";
  return reason;
}

MatchReason CompareBirthPlaces(const PreparedRecord::Data& q,
                               const PreparedRecord::Data& c, bool explain) {
  MatchReason reason{MatchFactor::kBirthPlace,
                     MatchMethod::kMissing,
                     explain ? q.birth_place_original : std::string(),
                     explain ? c.birth_place_original : std::string(),
                     0,
                     explain ? "birth place not recorded on both" : ""};
  if (q.birth_place.empty() || c.birth_place.empty()) return reason;
  FieldMatch match = BestFieldMatch(q.birth_place, c.birth_place);
  if (match.similarity >= kSimilarityTransliteration) {
    reason.method = match.method;
    reason.contribution = match.similarity >= kSimilarityExact
                              ? kPlaceEqual
                              : kPlaceTransliterated;
    if (explain) reason.explanation = "same birth place";
    return reason;
  }
  // Places have exonyms (Haleb / Aleppo, Dimashq / Damascus) that spelling
  // rules cannot bridge, and offices record the town of registration: a
  // different spelling is not counted against.
  reason.method = MatchMethod::kMismatch;
  if (explain)
    reason.explanation = "birth places spelled differently; not counted";
  return reason;
}

// ---------------------------------------------------------------------------
// Blocking keys.

// The coarse forms of a part's key that blocking indexes: one, or two when
// a lone c may be a k or an s (Cvetkovic / Tsvetkovich, Celik / Kelik).
void AddBlockingForms(const std::string& key, std::vector<std::string>* out) {
  if (key.empty()) return;
  out->push_back(internal::CoarseKey(key));
  if (key[0] == 'G') {
    // Egyptian g is the j of other traditions (Gamal / Jamal / Djamal),
    // whose key starts with a vowel.
    out->push_back(internal::CoarseKey(absl::StrCat("A", key.substr(1))));
  }
  if (key.size() > 1 && key.back() == 'G') {
    // A final g the other tradition leaves silent (Oleg / Oleh).
    out->push_back(internal::CoarseKey(key.substr(0, key.size() - 1)));
  }
  // A lone c may be an s (Cvetkovic / Tsvetkovich).
  if (key.find('C') != std::string::npos) {
    std::string as_s = key;
    std::replace(as_s.begin(), as_s.end(), 'C', 'S');
    out->push_back(internal::CoarseKey(as_s));
  }
}

std::vector<std::string> NameKeys(const PreparedRecord::Data& data) {
  absl::flat_hash_set<std::string> keys;
  auto part_keys = [](const NameField& field) {
    std::vector<std::string> result;
    for (const NamePart& part : field.parts) {
      for (const NameForm& form : part.forms) {
        AddBlockingForms(form.key.key, &result);
      }
    }
    if (field.parts.size() > 1) {  // joined differently elsewhere
      std::string joined;
      for (const NamePart& part : field.parts) joined += part.forms.back().text;
      for (absl::string_view text :
           {absl::string_view(joined), StripAttachedArticle(joined)}) {
        AddBlockingForms(internal::ComputePhoneticKey(text).key, &result);
      }
    }
    return result;
  };
  // The first sounds of the other field's parts.
  auto first_sounds = [&](const NameField& field) {
    std::vector<std::string> sounds;
    for (const std::string& key : part_keys(field)) {
      sounds.push_back(key.substr(0, 1));
    }
    std::sort(sounds.begin(), sounds.end());
    sounds.erase(std::unique(sounds.begin(), sounds.end()), sounds.end());
    return sounds;
  };
  auto pair_keys = [&](const std::vector<NameField>& one,
                       const std::vector<NameField>& other) {
    for (const NameField& field : one) {
      for (const std::string& key : part_keys(field)) {
        if (other.empty()) {
          keys.insert(absl::StrCat(key, "|-"));
          continue;
        }
        for (const NameField& other_field : other) {
          for (const std::string& sound : first_sounds(other_field)) {
            keys.insert(absl::StrCat(key, "|", sound));
          }
        }
      }
    }
  };
  for (const PreparedSpelling& spelling : data.spellings) {
    pair_keys(spelling.given, spelling.family);
    pair_keys(spelling.family, spelling.given);
  }
  std::vector<std::string> sorted(keys.begin(), keys.end());
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

}  // namespace

// ---------------------------------------------------------------------------

class DuplicateMatcher::Impl {
 public:
  explicit Impl(std::unique_ptr<internal::LatinFolder> folder)
      : folder_(std::move(folder)) {}

  absl::StatusOr<std::vector<NameField>> PrepareField(
      absl::string_view text, bool turkish = false) const {
    std::vector<NameField> fields;
    absl::StatusOr<std::vector<FoldedSpelling>> folded =
        folder_->Fold(text, turkish);
    if (!folded.ok()) return folded.status();
    for (const FoldedSpelling& spelling : *folded) {
      NameField field = MakeField(spelling);
      if (!field.parts.empty()) fields.push_back(std::move(field));
    }
    return fields;
  }

  absl::StatusOr<PreparedRecord::Data> PrepareNames(
      const PersonNames& names) const {
    PreparedRecord::Data data;
    for (const NameSpelling& spelling : names.spellings) {
      PreparedSpelling prepared;
      prepared.given_original = spelling.given_names;
      prepared.family_original = spelling.family_names;
      // A Turkish letter in one field makes the other Turkish too (Cemal
      // Çakır: the c of Cemal is the dsch of Dschemal).
      const bool turkish = internal::HasTurkishLetters(spelling.given_names) ||
                           internal::HasTurkishLetters(spelling.family_names);
      absl::StatusOr<std::vector<NameField>> given =
          PrepareField(spelling.given_names, turkish);
      if (!given.ok()) return given.status();
      absl::StatusOr<std::vector<NameField>> family =
          PrepareField(spelling.family_names, turkish);
      if (!family.ok()) return family.status();
      prepared.given = *std::move(given);
      prepared.family = *std::move(family);
      if (prepared.given.empty() && prepared.family.empty()) continue;
      data.spellings.push_back(std::move(prepared));
    }
    return data;
  }

  std::unique_ptr<internal::LatinFolder> folder_;
};

DuplicateMatcher::DuplicateMatcher(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

DuplicateMatcher::~DuplicateMatcher() = default;

absl::StatusOr<std::unique_ptr<DuplicateMatcher>> DuplicateMatcher::Create() {
  absl::StatusOr<std::unique_ptr<internal::LatinFolder>> folder =
      internal::LatinFolder::Create();
  if (!folder.ok()) return folder.status();
  return std::unique_ptr<DuplicateMatcher>(
      new DuplicateMatcher(std::make_unique<Impl>(*std::move(folder))));
}

absl::StatusOr<PreparedRecord> DuplicateMatcher::Prepare(
    const MatchRecord& record) const {
  absl::StatusOr<PreparedRecord::Data> data = impl_->PrepareNames(record.names);
  if (!data.ok()) return data.status();
  data->birth_date = record.birth_date;
  data->birth_place_original = record.birth_place;
  absl::StatusOr<std::vector<NameField>> place =
      impl_->PrepareField(record.birth_place);
  if (!place.ok()) return place.status();
  data->birth_place = *std::move(place);
  for (const std::string& code : record.nationality_codes) {
    std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(code));
    if (!upper.empty()) data->nationalities.push_back(std::move(upper));
  }
  data->sex = record.sex;
  return PreparedRecord(
      std::make_shared<const PreparedRecord::Data>(*std::move(data)));
}

namespace {

// Eritrea, Ethiopia and Somalia name a person by their own name and their
// father's (and grandfather's): what registers take for a family name is
// the father's given name, shared by all his children.
bool UsesPatronymics(const std::vector<std::string>& nationalities) {
  for (const std::string& code : nationalities) {
    if (code == "ERI" || code == "ER" || code == "ETH" || code == "ET" ||
        code == "SOM" || code == "SO") {
      return true;
    }
  }
  return false;
}

// Sets evidence->agree and applies the patronymic share to the name
// reasons (evidence->total stays the names' evidence before it).
void WeighNameEvidence(bool patronymics, bool explain, NameEvidence* evidence) {
  // Relatives share a family name, a birth place and a nationality: such
  // agreement supports a match only where both name fields agree too.
  evidence->agree = !evidence->reasons.empty();
  for (const MatchReason& reason : evidence->reasons) {
    if (reason.method == MatchMethod::kSwappedNames) continue;
    const double weight = reason.factor == MatchFactor::kGivenNames
                              ? kGivenNamesWeight
                              : kFamilyNamesWeight;
    if (reason.contribution < kNamesAgreeShare * weight) {
      evidence->agree = false;
    }
  }
  evidence->weighed = 0;
  for (MatchReason& reason : evidence->reasons) {
    if (patronymics && reason.contribution > 0 &&
        (evidence->swapped || reason.factor == MatchFactor::kFamilyNames)) {
      reason.contribution *=
          evidence->swapped ? kCrossedPatronymicFactor : kPatronymicFactor;
      if (explain) {
        absl::StrAppend(&reason.explanation,
                        evidence->swapped
                            ? "; counted less: one of the swapped names is "
                              "the father's, shared by siblings"
                            : "; counted less: the second name is the "
                              "father's, shared by siblings");
      }
    }
    evidence->weighed += reason.contribution;
  }
}

// Whether `x` is the better pair of spellings than `y`: the stronger name
// evidence; among equals, agreeing names, then the more after weighing.
// Every key is the same whichever record is the query, so ties between
// spelling pairs cannot make the score depend on the argument order.
bool BetterNameEvidence(const NameEvidence& x, const NameEvidence& y) {
  if (x.total != y.total) return x.total > y.total;
  if (x.agree != y.agree) return x.agree;
  return x.weighed > y.weighed;
}

// Compare and Score: the same contributions; `explain` also fills the
// reasons' values and sentences, which a score alone does not need.
MatchResult CompareRecords(const PreparedRecord& query,
                           const PreparedRecord& candidate, bool explain) {
  const PreparedRecord::Data& q = query.data();
  const PreparedRecord::Data& c = candidate.data();
  MatchResult result;
  const bool patronymics =
      UsesPatronymics(q.nationalities) || UsesPatronymics(c.nationalities);
  NameEvidence best_names;
  bool first = true;
  for (const PreparedSpelling& qs : q.spellings) {
    for (const PreparedSpelling& cs : c.spellings) {
      NameEvidence evidence = CompareSpellings(qs, cs, explain);
      WeighNameEvidence(patronymics, explain, &evidence);
      if (first || BetterNameEvidence(evidence, best_names)) {
        best_names = std::move(evidence);
        first = false;
      }
    }
  }
  const bool names_agree = best_names.agree;
  result.reasons = std::move(best_names.reasons);
  MatchReason date = CompareBirthDates(q.birth_date, c.birth_date, explain);
  std::vector<MatchReason> context = {
      CompareBirthPlaces(q, c, explain),
      CompareNationalities(q.nationalities, c.nationalities, explain),
      CompareSex(q.sex, c.sex, explain)};
  // A year alone is shared by many namesakes; where both records name a
  // birth place and the places differ, it counts less.
  if (date.contribution == kDateYearOnlyEqual &&
      context[0].method == MatchMethod::kMismatch) {
    date.contribution = kDateYearOnlyUncorroborated;
    if (explain)
      absl::StrAppend(&date.explanation,
                      "; counted less: the birth places differ");
  }
  result.reasons.push_back(std::move(date));
  for (MatchReason& reason : context) {
    if (!names_agree && reason.contribution > 0) {
      reason.contribution = 0;
      if (explain)
        absl::StrAppend(&reason.explanation,
                        "; not counted while the names disagree");
    }
    result.reasons.push_back(std::move(reason));
  }
  double total = 0;
  for (const MatchReason& reason : result.reasons) total += reason.contribution;
  result.score = std::clamp(total, 0.0, 1.0);
  result.strength = StrengthOfScore(result.score);
  if (explain) {
    std::stable_sort(result.reasons.begin(), result.reasons.end(),
                     [](const MatchReason& x, const MatchReason& y) {
                       return std::abs(x.contribution) >
                              std::abs(y.contribution);
                     });
  } else {
    result.reasons.clear();
  }
  return result;
}

}  // namespace

MatchResult DuplicateMatcher::Compare(const PreparedRecord& query,
                                      const PreparedRecord& candidate) const {
  return CompareRecords(query, candidate, /*explain=*/true);
}

double DuplicateMatcher::Score(const PreparedRecord& query,
                               const PreparedRecord& candidate) const {
  return CompareRecords(query, candidate, /*explain=*/false).score;
}

absl::StatusOr<MatchResult> DuplicateMatcher::Compare(
    const MatchRecord& query, const MatchRecord& candidate) const {
  absl::StatusOr<PreparedRecord> q = Prepare(query);
  if (!q.ok()) return q.status();
  absl::StatusOr<PreparedRecord> c = Prepare(candidate);
  if (!c.ok()) return c.status();
  return Compare(*q, *c);
}

namespace {

std::vector<std::string> StoredKeys(const PreparedRecord::Data& data,
                                    const BirthDate& birth_date) {
  std::vector<std::string> keys;
  const std::string year =
      birth_date.year != 0 ? absl::StrCat(birth_date.year) : "?";
  for (const std::string& name_key : NameKeys(data)) {
    keys.push_back(absl::StrCat(name_key, "@", year));
    keys.push_back(absl::StrCat(name_key, "@*"));
  }
  return keys;
}

std::vector<std::string> QueryKeys(const PreparedRecord::Data& data,
                                   const BirthDate& birth_date) {
  std::vector<std::string> keys;
  for (const std::string& name_key : NameKeys(data)) {
    if (birth_date.year == 0) {
      keys.push_back(absl::StrCat(name_key, "@*"));
      continue;
    }
    for (int year = birth_date.year - 1; year <= birth_date.year + 1; ++year) {
      keys.push_back(absl::StrCat(name_key, "@", year));
    }
    keys.push_back(absl::StrCat(name_key, "@?"));
  }
  return keys;
}

// ---------------------------------------------------------------------------
// The stored prepared form: unsigned integers as base-128 varints (7 bits
// a byte, low first, high bit set on all but the last) and strings as their
// length followed by the bytes, in the order of the structs above. Compact,
// because it is read for every candidate: smaller rows mean fewer pages.

void PutU32(uint32_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void PutString(absl::string_view text, std::string* out) {
  PutU32(static_cast<uint32_t>(text.size()), out);
  out->append(text.data(), text.size());
}

void PutFields(const std::vector<NameField>& fields, std::string* out) {
  PutU32(static_cast<uint32_t>(fields.size()), out);
  for (const NameField& field : fields) {
    PutString(field.folded, out);
    PutU32(static_cast<uint32_t>(field.parts.size()), out);
    for (const NamePart& part : field.parts) {
      PutU32(static_cast<uint32_t>(part.forms.size()), out);
      for (const NameForm& form : part.forms) {
        PutString(form.text, out);
        PutString(form.key.key, out);
        PutU32(static_cast<uint32_t>(form.key.first_vowel), out);
        PutU32(static_cast<uint32_t>(form.origin), out);
      }
    }
  }
}

// Reads what the Put functions wrote; any overrun makes ok() false.
class FormReader {
 public:
  explicit FormReader(absl::string_view bytes) : rest_(bytes) {}
  bool ok() const { return ok_; }

  uint32_t U32() {
    uint32_t value = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      if (rest_.empty()) break;
      const auto byte = static_cast<unsigned char>(rest_.front());
      rest_.remove_prefix(1);
      if (shift == 28 && byte > 0x0f) break;  // more than 32 bits
      value |= static_cast<uint32_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    ok_ = false;
    return 0;
  }
  // A count of items that each take at least `min_bytes`: bounded by what
  // is left, so corrupt bytes cannot ask for a huge allocation.
  uint32_t Count(size_t min_bytes) {
    const uint32_t n = U32();
    if (n > rest_.size() / min_bytes) ok_ = false;
    return ok_ ? n : 0;
  }
  std::string String() {
    const uint32_t n = U32();
    if (n > rest_.size()) ok_ = false;
    if (!ok_) return "";
    std::string text(rest_.substr(0, n));
    rest_.remove_prefix(n);
    return text;
  }
  template <typename Enum>
  Enum EnumUpTo(Enum last) {
    const uint32_t value = U32();
    if (value > static_cast<uint32_t>(last)) ok_ = false;
    return ok_ ? static_cast<Enum>(value) : Enum{};
  }
  std::vector<NameField> Fields() {
    std::vector<NameField> fields(Count(2));
    for (NameField& field : fields) {
      field.folded = String();
      field.parts.resize(Count(1));
      for (NamePart& part : field.parts) {
        part.forms.resize(Count(4));
        for (NameForm& form : part.forms) {
          form.text = String();
          form.key.key = String();
          form.key.first_vowel = EnumUpTo(VowelClass::kFront);
          form.origin = EnumUpTo(SpellingOrigin::kEquivalentForm);
        }
      }
      // Only well-formed parts make units (MakeUnits reads forms[0]).
      if (ok_ &&
          std::all_of(field.parts.begin(), field.parts.end(),
                      [](const NamePart& p) { return !p.forms.empty(); })) {
        field.units = MakeUnits(field);
      }
    }
    return fields;
  }
  bool AtEnd() const { return rest_.empty(); }

 private:
  absl::string_view rest_;
  bool ok_ = true;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> DuplicateMatcher::BlockingKeys(
    const PersonNames& names, const BirthDate& birth_date) const {
  absl::StatusOr<PreparedRecord::Data> data = impl_->PrepareNames(names);
  if (!data.ok()) return data.status();
  return StoredKeys(*data, birth_date);
}

absl::StatusOr<std::vector<std::string>> DuplicateMatcher::LookupKeys(
    const PersonNames& names, const BirthDate& birth_date) const {
  absl::StatusOr<PreparedRecord::Data> data = impl_->PrepareNames(names);
  if (!data.ok()) return data.status();
  return QueryKeys(*data, birth_date);
}

std::vector<std::string> DuplicateMatcher::BlockingKeys(
    const PreparedRecord& record) const {
  return StoredKeys(record.data(), record.data().birth_date);
}

std::vector<std::string> DuplicateMatcher::LookupKeys(
    const PreparedRecord& record) const {
  return QueryKeys(record.data(), record.data().birth_date);
}

std::string DuplicateMatcher::EncodePrepared(
    const PreparedRecord& record) const {
  const PreparedRecord::Data& data = record.data();
  std::string out;
  out.reserve(512);
  PutU32(kPreparedFormVersion, &out);
  PutU32(static_cast<uint32_t>(data.spellings.size()), &out);
  for (const PreparedSpelling& spelling : data.spellings) {
    PutString(spelling.given_original, &out);
    PutString(spelling.family_original, &out);
    PutFields(spelling.given, &out);
    PutFields(spelling.family, &out);
  }
  PutU32(static_cast<uint32_t>(data.birth_date.year), &out);
  PutU32(static_cast<uint32_t>(data.birth_date.month), &out);
  PutU32(static_cast<uint32_t>(data.birth_date.day), &out);
  PutString(data.birth_place_original, &out);
  PutFields(data.birth_place, &out);
  PutU32(static_cast<uint32_t>(data.nationalities.size()), &out);
  for (const std::string& code : data.nationalities) PutString(code, &out);
  PutU32(static_cast<uint32_t>(data.sex), &out);
  return out;
}

absl::StatusOr<PreparedRecord> DuplicateMatcher::DecodePrepared(
    absl::string_view bytes) const {
  FormReader in(bytes);
  const uint32_t version = in.U32();
  if (!in.ok()) return absl::DataLossError("prepared form too short");
  if (version != kPreparedFormVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("prepared form of version ", version, ", expected ",
                     kPreparedFormVersion));
  }
  auto data = std::make_shared<PreparedRecord::Data>();
  data->spellings.resize(in.Count(4));
  for (PreparedSpelling& spelling : data->spellings) {
    spelling.given_original = in.String();
    spelling.family_original = in.String();
    spelling.given = in.Fields();
    spelling.family = in.Fields();
  }
  data->birth_date.year = static_cast<int>(in.U32());
  data->birth_date.month = static_cast<int>(in.U32());
  data->birth_date.day = static_cast<int>(in.U32());
  data->birth_place_original = in.String();
  data->birth_place = in.Fields();
  data->nationalities.resize(in.Count(1));
  for (std::string& code : data->nationalities) code = in.String();
  data->sex = in.EnumUpTo(RecordedSex::kNotStated);
  if (!in.ok() || !in.AtEnd()) {
    return absl::DataLossError("prepared form does not parse");
  }
  return PreparedRecord(std::move(data));
}

absl::StatusOr<std::vector<std::vector<NormalizedNamePart>>>
DuplicateMatcher::NormalizeName(absl::string_view name) const {
  absl::StatusOr<std::vector<NameField>> fields = impl_->PrepareField(name);
  if (!fields.ok()) return fields.status();
  std::vector<std::vector<NormalizedNamePart>> result;
  for (const NameField& field : *fields) {
    std::vector<NormalizedNamePart> parts;
    for (const NamePart& part : field.parts) {
      const NameForm& form = part.forms.back();  // as written, article kept
      parts.push_back({form.text, form.key.key});
    }
    result.push_back(std::move(parts));
  }
  return result;
}

}  // namespace lotse::identity
