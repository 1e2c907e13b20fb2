#include "services/identity/domain/internal/latin_folding.h"

#include <unicode/parseerr.h>
#include <unicode/translit.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/uscript.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace lotse::identity::internal {
namespace {

// Latin letters ICU's script transforms leave behind, and Latin letters
// offices use, folded to the ASCII spelling German offices write for the
// same sound before Latin-ASCII would strip them to a bare base letter
// (s-caron -> sh, not s: Sevcenko is not how Shevchenko is written). Also
// ICU's rendering of Arabic ta marbuta (t-diaeresis, pronounced a/ah) and
// of ayn/hamza (a vowel onset), and the Ge'ez schwa.
constexpr char kFoldRules[] = R"(
:: NFC;
ẗ > h;
[ʿʾ] > a;
[ǝə] > e;
[šŠśŚşŞșȘ] > sh;
[čČćĆçÇ] > ch;
[žŽ] > zh;
[đĐ] > dj;
:: Latin-ASCII;
:: Lower;
)";

// Persian (and Turkish, Urdu) pronounce the Arabic letters dad, za, dhal
// as z and tha as s (Reza, Rezaei, Ramezan, Osman): ICU writes them d, z,
// dh, th with dots below/above, which this reading replaces first.
constexpr char kPersianReadingRules[] = R"(
:: NFC;
[ḍḌẓẒḏḎ] > z;
[ṯṮ] > s;
)";

// The Persian reading with h kept apart (see below).
constexpr char kPersianReadingApartRules[] = R"(
:: NFC;
[ḍḌẓẒḏḎ] > z;
[ṯṮ] > s;
[zsktgdcḍḏṯ] { ([hḥ]) > e $1;
)";

// ICU writes a consonant that Latin spells with h by an h with a line
// below (kẖ, sẖ, zẖ), so a plain h after z, s, k, ... is a letter of its
// own (ه or ح): Zahra is zhra, Sahar sḥr. A vowel put between keeps the
// two from being read as one sound (the key ignores it). Latin spellings
// join such pairs too where no vowel is spoken (Ishaq, ʾsḥq), so this is
// a reading beside the one without.
constexpr char kArabicReadingApartRules[] = R"(
:: NFC;
[zsktgdcḍḏṯ] { ([hḥ]) > e $1;
)";

// Diacritics simply dropped, as a form without them (or a keyboard without
// them) leaves a name: Sevcenko, Dordevic, Celik.
constexpr char kPlainRules[] = R"(
:: NFC;
:: Latin-ASCII;
:: Lower;
)";

// Turkish c is the sound German writes dsch and English j (Cemal / Dschemal
// / Jamal); applied only to text with letters of the Turkish alphabet.
constexpr char kTurkishReadingRules[] = R"(
:: NFC;
[cC] > dsch;
)";

// Umlauts and sharp s written out, then the same folding.
constexpr char kUmlautRules[] = R"(
:: NFC;
[äÄ] > ae;
[öÖ] > oe;
[üÜ] > ue;
ß > ss;
)";

bool IsAscii(absl::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x80;
  });
}

bool HasUmlaut(const icu::UnicodeString& text) {
  static const icu::UnicodeString kUmlauts =
      icu::UnicodeString::fromUTF8("äöüÄÖÜß");
  for (int32_t i = 0; i < text.length(); ++i) {
    if (kUmlauts.indexOf(text.charAt(i)) >= 0) return true;
  }
  return false;
}

}  // namespace

struct LatinFolder::TransformSet {
  std::unique_ptr<icu::Transliterator> any_to_latin;
  std::unique_ptr<icu::Transliterator> ukrainian_to_latin;
  std::unique_ptr<icu::Transliterator> russian_to_latin;
  std::unique_ptr<icu::Transliterator> ethiopic_bgn_to_latin;
  std::unique_ptr<icu::Transliterator> fold;
  std::unique_ptr<icu::Transliterator> umlauts;
  std::unique_ptr<icu::Transliterator> persian_reading;
  std::unique_ptr<icu::Transliterator> arabic_reading_apart;
  std::unique_ptr<icu::Transliterator> persian_reading_apart;
  std::unique_ptr<icu::Transliterator> plain;
  std::unique_ptr<icu::Transliterator> turkish_reading;

  std::unique_ptr<TransformSet> Clone() const {
    auto copy = std::make_unique<TransformSet>();
    copy->any_to_latin.reset(any_to_latin->clone());
    copy->ukrainian_to_latin.reset(ukrainian_to_latin->clone());
    copy->russian_to_latin.reset(russian_to_latin->clone());
    copy->ethiopic_bgn_to_latin.reset(ethiopic_bgn_to_latin->clone());
    copy->fold.reset(fold->clone());
    copy->umlauts.reset(umlauts->clone());
    copy->persian_reading.reset(persian_reading->clone());
    copy->arabic_reading_apart.reset(arabic_reading_apart->clone());
    copy->persian_reading_apart.reset(persian_reading_apart->clone());
    copy->plain.reset(plain->clone());
    copy->turkish_reading.reset(turkish_reading->clone());
    return copy;
  }
};

namespace {

absl::StatusOr<std::unique_ptr<icu::Transliterator>> CreateById(
    const char* id) {
  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<icu::Transliterator> result(
      icu::Transliterator::createInstance(icu::UnicodeString(id, -1, US_INV),
                                          UTRANS_FORWARD, status));
  if (U_FAILURE(status) || result == nullptr) {
    return absl::InternalError(absl::StrCat(
        "ICU transform ", id, " unavailable: ", u_errorName(status)));
  }
  return result;
}

absl::StatusOr<std::unique_ptr<icu::Transliterator>> CreateByRules(
    const char* id, const char* rules) {
  UErrorCode status = U_ZERO_ERROR;
  UParseError parse_error;
  std::unique_ptr<icu::Transliterator> result(
      icu::Transliterator::createFromRules(icu::UnicodeString(id, -1, US_INV),
                                           icu::UnicodeString::fromUTF8(rules),
                                           UTRANS_FORWARD, parse_error,
                                           status));
  if (U_FAILURE(status) || result == nullptr) {
    return absl::InternalError(absl::StrCat("ICU rules ", id,
                                            " invalid: ", u_errorName(status),
                                            " at line ", parse_error.line));
  }
  return result;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LatinFolder>> LatinFolder::Create() {
  auto set = std::make_unique<TransformSet>();
  struct Slot {
    std::unique_ptr<icu::Transliterator>* target;
    const char* id;
  };
  // The BGN transforms leave some letters of neighbouring languages
  // untouched (Russian BGN keeps Ukrainian i); Any-Latin catches those.
  for (const Slot& slot : {
           Slot{&set->any_to_latin, "Any-Latin"},
           Slot{&set->ukrainian_to_latin, "Ukrainian-Latin/BGN; Any-Latin"},
           Slot{&set->russian_to_latin, "Russian-Latin/BGN; Any-Latin"},
           Slot{&set->ethiopic_bgn_to_latin, "Amharic-Latin/BGN; Any-Latin"},
       }) {
    absl::StatusOr<std::unique_ptr<icu::Transliterator>> created =
        CreateById(slot.id);
    if (!created.ok()) return created.status();
    *slot.target = *std::move(created);
  }
  absl::StatusOr<std::unique_ptr<icu::Transliterator>> fold =
      CreateByRules("Lotse-NameFold", kFoldRules);
  if (!fold.ok()) return fold.status();
  set->fold = *std::move(fold);
  absl::StatusOr<std::unique_ptr<icu::Transliterator>> umlauts =
      CreateByRules("Lotse-Umlauts", kUmlautRules);
  if (!umlauts.ok()) return umlauts.status();
  set->umlauts = *std::move(umlauts);
  absl::StatusOr<std::unique_ptr<icu::Transliterator>> persian =
      CreateByRules("Lotse-PersianReading", kPersianReadingRules);
  if (!persian.ok()) return persian.status();
  set->persian_reading = *std::move(persian);
  absl::StatusOr<std::unique_ptr<icu::Transliterator>> arabic_apart =
      CreateByRules("Lotse-ArabicReadingApart", kArabicReadingApartRules);
  if (!arabic_apart.ok()) return arabic_apart.status();
  set->arabic_reading_apart = *std::move(arabic_apart);
  absl::StatusOr<std::unique_ptr<icu::Transliterator>> persian_apart =
      CreateByRules("Lotse-PersianReadingApart", kPersianReadingApartRules);
  if (!persian_apart.ok()) return persian_apart.status();
  set->persian_reading_apart = *std::move(persian_apart);
  absl::StatusOr<std::unique_ptr<icu::Transliterator>> plain =
      CreateByRules("Lotse-PlainLatin", kPlainRules);
  if (!plain.ok()) return plain.status();
  set->plain = *std::move(plain);
  absl::StatusOr<std::unique_ptr<icu::Transliterator>> turkish =
      CreateByRules("Lotse-TurkishReading", kTurkishReadingRules);
  if (!turkish.ok()) return turkish.status();
  set->turkish_reading = *std::move(turkish);
  return std::unique_ptr<LatinFolder>(new LatinFolder(std::move(set)));
}

LatinFolder::LatinFolder(std::unique_ptr<TransformSet> prototype)
    : prototype_(std::move(prototype)) {}

LatinFolder::~LatinFolder() = default;

std::unique_ptr<LatinFolder::TransformSet> LatinFolder::Acquire() const {
  absl::MutexLock lock(&mutex_);
  if (!idle_.empty()) {
    std::unique_ptr<TransformSet> set = std::move(idle_.back());
    idle_.pop_back();
    return set;
  }
  return prototype_->Clone();
}

void LatinFolder::Release(std::unique_ptr<TransformSet> set) const {
  absl::MutexLock lock(&mutex_);
  idle_.push_back(std::move(set));
}

std::string CleanAscii(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (char c : text) {
    if (c == '\'' || c == '`') continue;  // Ja'fari is one part
    if (absl::ascii_isalpha(static_cast<unsigned char>(c))) {
      if (pending_space && !out.empty()) out.push_back(' ');
      pending_space = false;
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else {
      pending_space = true;
    }
  }
  return out;
}

// Detects the scripts of `text`, then adds one folded spelling per reading
// of each script found, in a fixed order (Cyrillic, Ethiopic, Arabic,
// other, then Latin with umlauts). About 100 lines, kept in one piece: the
// order decides which spelling comes first, and the readings share one
// borrowed set of transliterators.
// Somali's Latin orthography writes the Arabic h-sound x and the ayn c
// (Maxamed / Mohamed, Xasan / Hassan, Cabdi / Abdi, Cumar / Omar). Only
// where the text may show it: an x at the start of a part or between
// vowels, or a part starting with c and a vowel (a Latin name read this
// way only gains a form that meets nothing). Empty when neither occurs.
std::string SomaliReading(absl::string_view folded) {
  auto is_vowel = [](char c) {
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
  };
  std::string out(folded);
  bool changed = false;
  for (size_t i = 0; i < out.size(); ++i) {
    const bool part_start = i == 0 || out[i - 1] == ' ';
    const bool before_vowel = i + 1 < out.size() && is_vowel(out[i + 1]);
    if (out[i] == 'x' && before_vowel &&
        (part_start || (i > 0 && is_vowel(out[i - 1])))) {
      out[i] = 'h';
      changed = true;
    } else if (out[i] == 'c' && part_start && before_vowel) {
      out[i] = '\'';  // the onset is a vowel; CleanAscii drops the mark
      changed = true;
    }
  }
  return changed ? CleanAscii(out) : std::string();
}

std::string FrenchReading(absl::string_view folded) {
  std::string out;
  out.reserve(folded.size() + 2);
  bool changed = false;
  for (size_t i = 0; i < folded.size(); ++i) {
    const bool after_s_or_t =
        i > 0 && (folded[i - 1] == 's' || folded[i - 1] == 't');
    if (folded[i] == 'c' && i + 1 < folded.size() && folded[i + 1] == 'h' &&
        !after_s_or_t) {
      out += "sh";
      ++i;
      changed = true;
    } else {
      out.push_back(folded[i]);
    }
  }
  return changed ? out : std::string();
}

bool HasTurkishLetters(absl::string_view text) {
  for (absl::string_view letter : {"ğ", "Ğ", "ı", "İ", "ş", "Ş", "ç", "Ç"}) {
    if (absl::StrContains(text, letter)) return true;
  }
  return false;
}

absl::StatusOr<std::vector<FoldedSpelling>> LatinFolder::Fold(
    absl::string_view text, bool turkish) const {
  std::vector<FoldedSpelling> result;
  if (IsAscii(text)) {
    result.push_back({CleanAscii(text), SpellingOrigin::kLatin});
    if (turkish) {
      std::string reading =
          absl::StrReplaceAll(result[0].text, {{"c", "dsch"}});
      if (reading != result[0].text) {
        result.push_back({std::move(reading), SpellingOrigin::kLatin});
      }
    }
    std::string french = FrenchReading(result[0].text);
    if (!french.empty()) {
      result.push_back({std::move(french), SpellingOrigin::kLatin});
    }
    std::string somali = SomaliReading(result[0].text);
    if (!somali.empty())
      result.push_back({std::move(somali), SpellingOrigin::kLatin});
    return result;
  }
  UErrorCode status = U_ZERO_ERROR;
  u_strFromUTF8(nullptr, 0, nullptr, text.data(),
                static_cast<int32_t>(text.size()), &status);
  if (status != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(status)) {
    return absl::InvalidArgumentError("name is not valid UTF-8");
  }
  const icu::UnicodeString original = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));

  bool has_cyrillic = false, has_arabic = false, has_ethiopic = false,
       has_other_script = false;
  for (int32_t i = 0; i < original.length();) {
    const UChar32 c = original.char32At(i);
    i += U16_LENGTH(c);
    UErrorCode script_status = U_ZERO_ERROR;
    switch (uscript_getScript(c, &script_status)) {
      case USCRIPT_LATIN:
      case USCRIPT_COMMON:
      case USCRIPT_INHERITED:
        break;
      case USCRIPT_CYRILLIC:
        has_cyrillic = true;
        break;
      case USCRIPT_ARABIC:
        has_arabic = true;
        break;
      case USCRIPT_ETHIOPIC:
        has_ethiopic = true;
        break;
      default:
        has_other_script = true;
        break;
    }
  }

  std::unique_ptr<TransformSet> set = Acquire();
  auto folded = [&](icu::Transliterator* script_transform,
                    icu::Transliterator* pre_fold,
                    icu::Transliterator* post_script = nullptr) {
    icu::UnicodeString work(original);
    if (pre_fold != nullptr) pre_fold->transliterate(work);
    if (script_transform != nullptr) script_transform->transliterate(work);
    if (post_script != nullptr) post_script->transliterate(work);
    set->fold->transliterate(work);
    std::string utf8;
    work.toUTF8String(utf8);
    // Anything ICU could not romanise is dropped by CleanAscii.
    return CleanAscii(utf8);
  };
  auto add = [&result](std::string spelling, SpellingOrigin origin) {
    for (const FoldedSpelling& existing : result) {
      if (existing.text == spelling) return;
    }
    result.push_back({std::move(spelling), origin});
  };

  if (has_cyrillic) {
    add(folded(set->ukrainian_to_latin.get(), nullptr),
        SpellingOrigin::kConvertedAlphabet);
    add(folded(set->russian_to_latin.get(), nullptr),
        SpellingOrigin::kConvertedAlphabet);
  }
  if (has_ethiopic) {
    add(folded(set->any_to_latin.get(), nullptr),
        SpellingOrigin::kConvertedAlphabet);
    add(folded(set->ethiopic_bgn_to_latin.get(), nullptr),
        SpellingOrigin::kConvertedAlphabet);
  }
  if (has_arabic) {
    for (icu::Transliterator* reading :
         {static_cast<icu::Transliterator*>(nullptr),
          set->arabic_reading_apart.get(), set->persian_reading.get(),
          set->persian_reading_apart.get()}) {
      std::string consonantal =
          folded(set->any_to_latin.get(), nullptr, reading);
      // Arabic and Persian write long u/o with the letter waw, which ICU
      // renders w (Yusuf -> ywsf); offer both readings.
      std::string waw_as_vowel = consonantal;
      std::replace(waw_as_vowel.begin(), waw_as_vowel.end(), 'w', 'u');
      add(std::move(consonantal), SpellingOrigin::kConvertedConsonantal);
      add(std::move(waw_as_vowel), SpellingOrigin::kConvertedConsonantal);
    }
  }
  if (has_other_script && !has_cyrillic && !has_arabic && !has_ethiopic) {
    add(folded(set->any_to_latin.get(), nullptr),
        SpellingOrigin::kConvertedAlphabet);
  }
  if (result.empty()) {
    add(folded(nullptr, nullptr), SpellingOrigin::kLatin);
    if (HasUmlaut(original)) {
      add(folded(nullptr, set->umlauts.get()),
          SpellingOrigin::kUmlautsWrittenOut);
    }
    if (turkish || HasTurkishLetters(text)) {
      add(folded(nullptr, set->turkish_reading.get()), SpellingOrigin::kLatin);
    }
    icu::UnicodeString plain(original);
    set->plain->transliterate(plain);
    std::string plain_utf8;
    plain.toUTF8String(plain_utf8);
    std::string plain_ascii = CleanAscii(plain_utf8);
    std::string somali = SomaliReading(plain_ascii);
    std::string french = FrenchReading(plain_ascii);
    if (!french.empty()) add(std::move(french), SpellingOrigin::kLatin);
    add(std::move(plain_ascii), SpellingOrigin::kLatin);
    if (!somali.empty()) add(std::move(somali), SpellingOrigin::kLatin);
  }
  Release(std::move(set));
  return result;
}

}  // namespace lotse::identity::internal
