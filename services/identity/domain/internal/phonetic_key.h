// Phonetic keys and edit distances for Latin ASCII name parts. Internal to
// duplicate detection; see name_matching.h for the overall method.
#ifndef LOTSE_SERVICES_IDENTITY_DOMAIN_INTERNAL_PHONETIC_KEY_H_
#define LOTSE_SERVICES_IDENTITY_DOMAIN_INTERNAL_PHONETIC_KEY_H_

#include <string>

#include "absl/strings/string_view.h"

namespace lotse::identity::internal {

// Which vowel follows the first consonant of a name part. Latin spellings
// of one name differ freely between e and i, between o and u, and e stands
// for short a, i or u in Persian spellings (Fatemeh, Hossein, Yousef), but
// a against o/u tells different names apart whose consonants agree
// (Hassan / Hussein, Mahmud / Muhammad).
enum class VowelClass { kUnknown, kOpen, kRounded, kFront };

struct PhoneticKey {
  // Consonant skeleton: "A" when the part starts with a vowel (a, e, i, o,
  // u, y, j), then one upper-case letter per consonant sound, vowels
  // dropped, repeats collapsed. "oleksandr" and "alexander" -> "ALKSNDR".
  std::string key;
  VowelClass first_vowel = VowelClass::kUnknown;
};

// `part` must be lower-case ASCII letters only (others are skipped).
PhoneticKey ComputePhoneticKey(absl::string_view part);

// True unless one is kOpen and the other kRounded.
bool VowelsCompatible(VowelClass a, VowelClass b);

// Optimal string alignment distance (Damerau-Levenshtein where each
// substring is edited once): insertions, deletions, substitutions and
// transpositions of adjacent characters each cost 1. Stops counting at
// `limit` + 1 to stay cheap for long strings.
int OsaDistance(absl::string_view a, absl::string_view b, int limit);

// Costs of SoftKeyDistance, in tenths of an edit.
inline constexpr int kHardEdit = 10;
inline constexpr int kSoftEdit = 4;
inline constexpr int kGlideEdit = 5;

// Like OsaDistance on two phonetic keys, in tenths, but a symbol replaced
// by one that spells the same sound in another tradition (a lone c for k,
// s or the ch of a dropped diacritic; g for h or the Egyptian g of j;
// q for k or g; th for t or s; d for t) costs kSoftEdit, and a g (or in
// keys of at most three symbols a w or c) inserted or left out kGlideEdit.
// Stops counting at `limit` + 1.
int SoftKeyDistance(absl::string_view a, absl::string_view b, int limit);

// Whether the keys have the same length and differ only where one has x
// and the other y, for a single soft pair {x, y} (G and H in "HRH" /
// "GRG"): one letter romanised another way throughout.
bool SameUpToOneSoftPair(absl::string_view a, absl::string_view b);

// A phonetic key with the symbols SoftKeyDistance lets meet at a soft
// cost merged into one, and w glides after the start left out: the form
// of a key that blocking uses, so that two parts at a soft distance still
// share a blocking key.
std::string CoarseKey(absl::string_view key);

}  // namespace lotse::identity::internal

#endif  // LOTSE_SERVICES_IDENTITY_DOMAIN_INTERNAL_PHONETIC_KEY_H_
