// Converts names in any script to lower-case ASCII Latin with ICU
// transforms. Internal to duplicate detection.
#ifndef LOTSE_SERVICES_IDENTITY_DOMAIN_INTERNAL_LATIN_FOLDING_H_
#define LOTSE_SERVICES_IDENTITY_DOMAIN_INTERNAL_LATIN_FOLDING_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace lotse::identity::internal {

// Where a folded spelling came from; decides how it may be compared.
enum class SpellingOrigin {
  // Written in Latin script (diacritics dropped: u-umlaut -> u).
  kLatin,
  // Latin with umlauts and sharp s written out (ue, oe, ae, ss).
  kUmlautsWrittenOut,
  // Converted from an alphabet that writes vowels (Cyrillic, Greek,
  // Ge'ez, Armenian, ...).
  kConvertedAlphabet,
  // Converted from Arabic script, which writes no short vowels: only the
  // consonant skeleton is meaningful.
  kConvertedConsonantal,
  // Not a spelling of the written name but the other language's form of
  // it, where no spelling rule leads from one to the other (Ukrainian
  // Mykola, Russian Nikolai). Added by the matcher, never by Fold.
  kEquivalentForm,
};

struct FoldedSpelling {
  // Lower-case ASCII letters; name parts separated by single spaces;
  // apostrophes dropped, other punctuation and hyphens as separators.
  std::string text;
  SpellingOrigin origin = SpellingOrigin::kLatin;
};

// Thread-safe: ICU transliterators are not, so each call borrows a private
// set of clones from a pool (the mutex guards only the pool).
class LatinFolder {
 public:
  static absl::StatusOr<std::unique_ptr<LatinFolder>> Create();
  ~LatinFolder();

  // All plausible ASCII spellings of `text`: for Latin input the German
  // register spelling of its diacritics, the spelling with them dropped,
  // umlauts written out, a Turkish reading (c as dsch) when the text
  // has Turkish letters or `turkish` is set (another field of the same
  // name has them), a French reading (ch as sh), and a Somali reading (x as h,
  // an initial c as the vowel onset it marks) where the text shows Somali
  // spelling; for Cyrillic the Ukrainian and the Russian romanisation; for
  // Ge'ez ICU's and the BGN one; for Arabic script the Arabic and the Persian
  // reading, each with w as consonant and as the vowel u. Deduplicated, never
  // empty. INVALID_ARGUMENT if `text` is not valid UTF-8.
  absl::StatusOr<std::vector<FoldedSpelling>> Fold(absl::string_view text,
                                                   bool turkish = false) const;

 private:
  struct TransformSet;
  explicit LatinFolder(std::unique_ptr<TransformSet> prototype);
  std::unique_ptr<TransformSet> Acquire() const;
  void Release(std::unique_ptr<TransformSet> set) const;

  std::unique_ptr<TransformSet> prototype_ ABSL_GUARDED_BY(mutex_);
  mutable std::vector<std::unique_ptr<TransformSet>> idle_
      ABSL_GUARDED_BY(mutex_);
  mutable absl::Mutex mutex_;
};

// Lower-cases ASCII, drops apostrophes and turns every other non-letter
// into a single space (trimmed). Exposed for the ASCII fast path.
std::string CleanAscii(absl::string_view text);

// Whether UTF-8 `text` has a letter only the Turkish alphabet uses among
// the Latin ones German offices meet (g-breve, dotless i, dotted capital
// I, s-cedilla) or c-cedilla.
bool HasTurkishLetters(absl::string_view text);

// `folded` (lower-case ASCII parts) read the French way, ch as sh (Rachid /
// Rashid, Hicham / Hisham), where German reads kh; the ch of sch and tsch
// stays. Empty when there is no such ch.
std::string FrenchReading(absl::string_view folded);

// `folded` (lower-case ASCII parts) read as Somali orthography: x as h, a
// part-initial c before a vowel as a vowel onset. Empty when no x or c is
// placed where Somali spelling puts them.
std::string SomaliReading(absl::string_view folded);

}  // namespace lotse::identity::internal

#endif  // LOTSE_SERVICES_IDENTITY_DOMAIN_INTERNAL_LATIN_FOLDING_H_
