#include "tests/support/dev_pki.h"

#include <cstdlib>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace lotse::testing {
namespace {

// The environment wins, so a test can be pointed at another tree.
std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : value;
}

}  // namespace

std::string SourceDir() {
  return EnvOr("LOTSE_SOURCE_DIR", LOTSE_SOURCE_DIR_PATH);
}
std::string BinaryDir() {
  return EnvOr("LOTSE_BINARY_DIR", LOTSE_BINARY_DIR_PATH);
}

std::string DevPkiDir() {
  static std::once_flag once;
  static std::string* dir = new std::string();
  std::call_once(once, [] {
    if (SourceDir().empty()) return;
    char pattern[] = "/tmp/lotse-pki.XXXXXX";
    if (mkdtemp(pattern) == nullptr) return;
    std::string command = absl::StrCat(SourceDir(), "/tools/dev-pki.sh ",
                                       pattern, " >/dev/null 2>&1");
    if (std::system(command.c_str()) == 0) *dir = pattern;
  });
  return *dir;
}

}  // namespace lotse::testing
