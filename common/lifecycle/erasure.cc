#include "common/lifecycle/erasure.h"

namespace lotse::lifecycle {

absl::Status ApplyPersonErased(storage::Transaction&,
                               const lotse::identity::v1::PersonErased&,
                               const std::string&, const RetentionRules&,
                               const EraseFn&, absl::Time) {
  return absl::UnimplementedError("ApplyPersonErased");
}

lotse::identity::v1::ErasureReported MakeErasureReport(const std::string&,
                                                       const std::string&,
                                                       const ErasureResult&,
                                                       const RetentionRules&) {
  return {};
}

}  // namespace lotse::lifecycle
