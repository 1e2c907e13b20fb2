#include "common/lifecycle/person_keys.h"

namespace lotse::lifecycle {

std::vector<storage::Migration> PersonKeyMigrations() { return {}; }

absl::StatusOr<std::string> SealForPerson(storage::Transaction&,
                                          absl::string_view, absl::string_view,
                                          absl::string_view) {
  return absl::UnimplementedError("SealForPerson");
}

absl::StatusOr<std::string> OpenForPerson(storage::Transaction&,
                                          absl::string_view, absl::string_view,
                                          absl::string_view) {
  return absl::UnimplementedError("OpenForPerson");
}

bool IsSealed(absl::string_view) { return false; }

absl::Status ShredPersonKey(storage::Transaction&, absl::string_view) {
  return absl::UnimplementedError("ShredPersonKey");
}

absl::StatusOr<bool> IsPersonShredded(storage::Transaction&,
                                      absl::string_view) {
  return absl::UnimplementedError("IsPersonShredded");
}

}  // namespace lotse::lifecycle
