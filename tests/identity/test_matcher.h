// One DuplicateMatcher per test binary: creating one loads ICU transforms,
// which takes longer than most tests.
#ifndef LOTSE_TESTS_IDENTITY_TEST_MATCHER_H_
#define LOTSE_TESTS_IDENTITY_TEST_MATCHER_H_

#include <cstdlib>
#include <iostream>
#include <memory>

#include "absl/status/statusor.h"
#include "services/identity/domain/name_matching.h"

namespace lotse::identity {

inline const DuplicateMatcher& SharedTestMatcher() {
  static const DuplicateMatcher* const matcher = [] {
    absl::StatusOr<std::unique_ptr<DuplicateMatcher>> created =
        DuplicateMatcher::Create();
    if (!created.ok()) {
      std::cerr << "DuplicateMatcher::Create: " << created.status() << "\n";
      std::abort();
    }
    return created->release();
  }();
  return *matcher;
}

}  // namespace lotse::identity

#endif  // LOTSE_TESTS_IDENTITY_TEST_MATCHER_H_
