// Fuzz target: romanisation of names with ICU
// (services/identity/domain/romanization.h). The input chooses a script
// and nationality (or gives its own) and the text. Checked: only text that
// is not UTF-8 is refused (INVALID_ARGUMENT); a result holds only ASCII
// letters, single spaces and hyphens.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "services/identity/domain/romanization.h"

namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "romanization invariant broken: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const kScripts[] = {"Cyrl", "Arab", "Ethi", "Grek",
                                         "Hebr", "Hani", "Deva", "Latn"};
  static const char* const kNations[] = {"UA", "RU", "SY", "AF", "ER",
                                         "IR", "GR", "BG", "IL", "CN"};
  FuzzedDataProvider in(data, size);
  const uint8_t choice = in.ConsumeIntegral<uint8_t>();
  std::string script = kScripts[choice % 8];
  std::vector<std::string> nations = {kNations[(choice / 8) % 10]};
  if (choice >= 240) {
    script = in.ConsumeRandomLengthString(8);
    nations = {in.ConsumeRandomLengthString(4)};
  }
  const std::string text = in.ConsumeRemainingBytesAsString();

  lotse::identity::RomanizationTransformId(script, nations);
  absl::StatusOr<std::string> out =
      lotse::identity::RomanizeName(text, script, nations);
  if (!out.ok()) {
    if (out.status().code() != absl::StatusCode::kInvalidArgument) {
      std::fprintf(stderr, "%s\n", out.status().ToString().c_str());
      Broken("refused with an unexpected code");
    }
    return 0;
  }
  for (size_t i = 0; i < out->size(); ++i) {
    const char c = (*out)[i];
    if (c == ' ') {
      if (i > 0 && (*out)[i - 1] == ' ') Broken("two spaces in a row");
    } else if (c != '-' &&
               !absl::ascii_isalpha(static_cast<unsigned char>(c))) {
      Broken("a character other than an ASCII letter, space or hyphen");
    }
  }
  return 0;
}
