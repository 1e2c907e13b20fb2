// Dev certificates for tests that talk mutual TLS through real sockets.
#ifndef LOTSE_TESTS_SUPPORT_DEV_PKI_H_
#define LOTSE_TESTS_SUPPORT_DEV_PKI_H_

#include <string>

namespace lotse::testing {

// Runs tools/dev-pki.sh once per test process into a fresh temporary
// directory and returns it (empty on failure).
std::string DevPkiDir();

// The repository and build roots this test was built from (overridable
// with the LOTSE_SOURCE_DIR / LOTSE_BINARY_DIR environment variables).
std::string SourceDir();
std::string BinaryDir();

}  // namespace lotse::testing

#endif  // LOTSE_TESTS_SUPPORT_DEV_PKI_H_
