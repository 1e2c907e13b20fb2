// Latin spellings for names written only in another script, so that a
// caseworker can read a record registered from original-script papers
// (contract: NAME_KIND_ROMANIZED in proto/lotse/identity/v1/person.proto).
//
// A romanisation is for reading, not for matching: duplicate detection
// compares the original-script name with its own transliterations
// (name_matching.h) and treats the romanised spelling as one more spelling.
// The rules follow the language the person most likely writes in, which
// the script alone does not tell: Cyrillic is romanised the Ukrainian,
// Serbian, Macedonian, Belarusian or Bulgarian way for nationals of those
// countries (and Montenegro or Bosnia and Herzegovina: Serbian), else the
// Russian way; Arabic script the Persian way for nationals of Iran and
// Afghanistan, else the Arabic way; Ge'ez by the Amharic (BGN) rules; any
// other script by ICU's generic Any-Latin. All use ICU transforms (the
// BGN/PCGN ones where ICU has them), then reduce the result to ASCII
// letters, spaces and hyphens and title-case each word.
#ifndef LOTSE_SERVICES_IDENTITY_DOMAIN_ROMANIZATION_H_
#define LOTSE_SERVICES_IDENTITY_DOMAIN_ROMANIZATION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lotse::identity {

// The ICU transform id that romanises text of `script` (an ISO 15924 code
// such as "Cyrl", "Arab", "Ethi") for a person of `nationality_codes` (ISO
// 3166-1 alpha-2, first applicable one wins), before the reduction to
// ASCII. "Any-Latin" for scripts and nationalities without specific rules.
std::string RomanizationTransformId(
    absl::string_view script,
    const std::vector<std::string>& nationality_codes);

// `text` in `script`, romanised as RomanizationTransformId chooses, reduced
// to ASCII letters, single spaces and hyphens, and title-cased ("Олександр"
// for a Ukrainian: "Oleksandr"). Empty when `text` has nothing romanisable
// (e.g. it is empty). INVALID_ARGUMENT if `text` is not valid UTF-8;
// INTERNAL if ICU lacks a transform it should have.
//
// Thread-safe: ICU transliterators are not, so each call works on its own
// clone of a transform that is built once per process.
absl::StatusOr<std::string> RomanizeName(
    absl::string_view text, absl::string_view script,
    const std::vector<std::string>& nationality_codes);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_DOMAIN_ROMANIZATION_H_
