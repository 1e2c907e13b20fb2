#include "common/lifecycle/retention.h"

namespace lotse::lifecycle {

const std::vector<ResourceKind>& KnownResourceKinds() {
  static const auto* kinds = new std::vector<ResourceKind>();
  return *kinds;
}

absl::Time RetentionRule::Cutoff(absl::Time now) const { return now; }
absl::Time RetentionRule::DueAt(absl::Time anchor_time) const {
  return anchor_time;
}
std::string RetentionRule::PeriodText() const { return ""; }

absl::StatusOr<RetentionRules> RetentionRules::Parse(absl::string_view) {
  return absl::UnimplementedError("RetentionRules::Parse");
}

absl::StatusOr<RetentionRules> RetentionRules::Load(const std::string&) {
  return absl::UnimplementedError("RetentionRules::Load");
}

const RetentionRule* RetentionRules::Find(absl::string_view) const {
  return nullptr;
}

}  // namespace lotse::lifecycle
