#include "common/lifecycle/holds.h"

namespace lotse::lifecycle {

std::vector<storage::Migration> HoldMigrations() { return {}; }

absl::StatusOr<absl::Time> HoldEnd(const lotse::type::v1::Date&) {
  return absl::UnimplementedError("HoldEnd");
}

absl::Status ApplyHold(storage::Transaction&,
                       const lotse::identity::v1::LegalHold&) {
  return absl::UnimplementedError("ApplyHold");
}

absl::StatusOr<bool> IsPersonHeld(storage::Transaction&, const std::string&,
                                  absl::Time) {
  return absl::UnimplementedError("IsPersonHeld");
}

absl::StatusOr<bool> IsSubjectHeld(storage::Transaction&, const std::string&,
                                   absl::Time) {
  return absl::UnimplementedError("IsSubjectHeld");
}

std::string NotHeldCondition(const std::string&, const std::string&) {
  return "1 = 1";
}

}  // namespace lotse::lifecycle
