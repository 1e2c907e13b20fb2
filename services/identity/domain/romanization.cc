#include "services/identity/domain/romanization.h"

#include <unicode/translit.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <unicode/utypes.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace lotse::identity {
namespace {

// Longest romanised name kept, in characters: the limit of a name field.
constexpr size_t kMaxRomanizedChars = 200;

bool HasAny(const std::vector<std::string>& codes,
            std::initializer_list<absl::string_view> wanted) {
  for (const std::string& code : codes) {
    if (std::find(wanted.begin(), wanted.end(), code) != wanted.end()) {
      return true;
    }
  }
  return false;
}

// The first of `codes` for which `rules` has an entry, in the order the
// record lists its nationalities; `fallback` when none has.
std::string FirstRule(
    const std::vector<std::string>& codes,
    std::initializer_list<std::pair<absl::string_view, absl::string_view>>
        rules,
    absl::string_view fallback) {
  for (const std::string& code : codes) {
    for (const auto& [country, id] : rules) {
      if (code == country) return std::string(id);
    }
  }
  return std::string(fallback);
}

// Built transforms by id. Creating one parses ICU's rule data (slow), so
// each is built once; callers transliterate with their own clone, because
// a transliterator keeps state while it works.
class TransformCache {
 public:
  absl::StatusOr<std::unique_ptr<icu::Transliterator>> Clone(
      const std::string& id) {
    absl::MutexLock lock(&mutex_);
    auto it = built_.find(id);
    if (it == built_.end()) {
      UErrorCode error = U_ZERO_ERROR;
      std::unique_ptr<icu::Transliterator> made(
          icu::Transliterator::createInstance(icu::UnicodeString::fromUTF8(id),
                                              UTRANS_FORWARD, error));
      if (U_FAILURE(error) || made == nullptr) {
        return absl::InternalError(absl::StrCat(
            "ICU transform ", id, " is not available: ", u_errorName(error)));
      }
      it = built_.emplace(id, std::move(made)).first;
    }
    return std::unique_ptr<icu::Transliterator>(it->second->clone());
  }

 private:
  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, std::unique_ptr<icu::Transliterator>> built_
      ABSL_GUARDED_BY(mutex_);
};

TransformCache& Cache() {
  static TransformCache* const cache = new TransformCache();
  return *cache;
}

bool IsValidUtf8(absl::string_view text) {
  UErrorCode error = U_ZERO_ERROR;
  // Converting with a substitution count tells whether anything was bad.
  int32_t substitutions = 0;
  int32_t length = 0;
  u_strFromUTF8WithSub(nullptr, 0, &length, text.data(),
                       static_cast<int32_t>(text.size()), 0xFFFD,
                       &substitutions, &error);
  return (error == U_BUFFER_OVERFLOW_ERROR || U_SUCCESS(error)) &&
         substitutions == 0;
}

// ASCII letters kept, hyphens kept between letters, every other run of
// characters (spaces, apostrophes and other marks the transforms leave)
// one space; each word title-cased (after a space or hyphen).
std::string TidyAscii(absl::string_view text) {
  std::string out;
  bool pending_space = false;
  bool pending_hyphen = false;
  for (char c : text) {
    if (absl::ascii_isalpha(static_cast<unsigned char>(c))) {
      if (!out.empty()) {
        if (pending_hyphen && !pending_space) {
          out.push_back('-');
        } else if (pending_space || pending_hyphen) {
          out.push_back(' ');
        }
      }
      pending_space = pending_hyphen = false;
      const bool word_start =
          out.empty() || out.back() == ' ' || out.back() == '-';
      out.push_back(word_start
                        ? absl::ascii_toupper(static_cast<unsigned char>(c))
                        : absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else if (c == '-') {
      pending_hyphen = true;
    } else if (c == '\'') {
      // An apostrophe marks a soft sign or a glottal stop inside a word
      // (Ukrainian "Ihor'", Arabic "Mas'ud"): drop it, keep the word whole.
    } else {
      pending_space = true;
    }
  }
  if (out.size() > kMaxRomanizedChars) {
    out.resize(kMaxRomanizedChars);
    while (!out.empty() && (out.back() == ' ' || out.back() == '-')) {
      out.pop_back();
    }
  }
  return out;
}

}  // namespace

std::string RomanizationTransformId(
    absl::string_view script,
    const std::vector<std::string>& nationality_codes) {
  if (script == "Cyrl") {
    return FirstRule(nationality_codes,
                     {{"UA", "Ukrainian-Latin/BGN"},
                      {"RS", "Serbian-Latin/BGN"},
                      {"ME", "Serbian-Latin/BGN"},
                      {"BA", "Serbian-Latin/BGN"},
                      {"MK", "Macedonian-Latin/BGN"},
                      {"BY", "Belarusian-Latin/BGN"},
                      {"BG", "Bulgarian-Latin/BGN"}},
                     "Russian-Latin/BGN");
  }
  if (script == "Arab") {
    return HasAny(nationality_codes, {"IR", "AF"}) ? "Persian-Latin/BGN"
                                                   : "Arabic-Latin/BGN";
  }
  if (script == "Ethi") return "Amharic-Latin/BGN";
  return "Any-Latin";
}

absl::StatusOr<std::string> RomanizeName(
    absl::string_view text, absl::string_view script,
    const std::vector<std::string>& nationality_codes) {
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError("name is not valid UTF-8");
  }
  if (text.empty()) return std::string();
  // The language's own rules first; Any-Latin then catches letters they
  // leave alone (a Ukrainian letter in a name romanised the Russian way),
  // and Latin-ASCII drops the diacritics BGN uses.
  const std::string id =
      absl::StrCat(RomanizationTransformId(script, nationality_codes),
                   "; Any-Latin; Latin-ASCII");
  absl::StatusOr<std::unique_ptr<icu::Transliterator>> transform =
      Cache().Clone(id);
  if (!transform.ok()) return transform.status();
  icu::UnicodeString converted = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  (*transform)->transliterate(converted);
  std::string ascii;
  converted.toUTF8String(ascii);
  return TidyAscii(ascii);
}

}  // namespace lotse::identity
