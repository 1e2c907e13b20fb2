#include "common/storage/rows.h"

namespace lotse::storage {

Sql& Sql::P(Value v) {
  params_.push_back(std::move(v));
  absl::StrAppend(&text_, "$", params_.size());
  return *this;
}

Sql& Sql::S(absl::string_view s) {
  absl::StrAppend(&text_, s);
  return *this;
}

Sql& Sql::In(absl::string_view column, const std::vector<int>& values) {
  if (values.empty()) return *this;
  S(absl::StrCat(" AND ", column, " IN ("));
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) S(", ");
    P(static_cast<int64_t>(values[i]));
  }
  return S(")");
}

}  // namespace lotse::storage
