// Small helpers for the stores of the services: building a statement with
// numbered parameters, keeping a protobuf record in a BLOB column, and
// turning query results into rows of the store's own types.
#ifndef LOTSE_COMMON_STORAGE_ROWS_H_
#define LOTSE_COMMON_STORAGE_ROWS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/storage/database.h"
#include "google/protobuf/message.h"

namespace lotse::storage {

// A statement built piece by piece: S() appends text, P() appends the next
// `$N` and binds its value, so text and parameters cannot drift apart.
class Sql {
 public:
  explicit Sql(absl::string_view head) : text_(head) {}

  Sql& P(Value v);
  Sql& S(absl::string_view s);
  // " AND column IN ($a, $b)" for a non-empty list; nothing for an empty one.
  Sql& In(absl::string_view column, const std::vector<int>& values);

  const std::string& text() const { return text_; }
  const std::vector<Value>& params() const { return params_; }
  absl::StatusOr<Rows> Query(Transaction& tx) const {
    return tx.Query(text_, params_);
  }

 private:
  std::string text_;
  std::vector<Value> params_;
};

// A record for a BLOB column.
inline Value Blob(const google::protobuf::Message& m) {
  return Bytes{m.SerializeAsString()};
}

// Parses the BLOB in `column` into `out`; DATA_LOSS when it does not parse.
template <typename M>
absl::Status ParseBlob(const Row& row, size_t column, M* out) {
  absl::StatusOr<std::string> bytes = row.GetBytes(column);
  if (!bytes.ok()) return bytes.status();
  if (!out->ParseFromString(*bytes)) {
    return absl::DataLossError(
        absl::StrCat("stored ", out->GetTypeName(), " does not parse"));
  }
  return absl::OkStatus();
}

// Every row through `parse` (Row -> StatusOr<T>), stopping at the first
// error; or the query's own error.
template <typename T, typename F>
absl::StatusOr<std::vector<T>> MapRows(const absl::StatusOr<Rows>& rows,
                                       F parse) {
  if (!rows.ok()) return rows.status();
  std::vector<T> out;
  out.reserve(rows->size());
  for (const Row& r : *rows) {
    absl::StatusOr<T> item = parse(r);
    if (!item.ok()) return item.status();
    out.push_back(*std::move(item));
  }
  return out;
}

// The first row through `parse`, nullopt when there is none.
template <typename T, typename F>
absl::StatusOr<std::optional<T>> FirstRow(const absl::StatusOr<Rows>& rows,
                                          F parse) {
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<T>();
  absl::StatusOr<T> item = parse(rows->front());
  if (!item.ok()) return item.status();
  return std::optional<T>(*std::move(item));
}

// For an UPDATE or DELETE of one row by its key: OK when `changed` (what
// Execute returned) is exactly one row; its error; else INTERNAL naming
// `what` ("entitlement update"), since the caller read the row in the same
// transaction and a missing one means the store is not what it thinks.
inline absl::Status ExpectOneRow(const absl::StatusOr<int64_t>& changed,
                                 absl::string_view what) {
  if (!changed.ok()) return changed.status();
  if (*changed != 1) {
    return absl::InternalError(
        absl::StrCat(what, " changed ", *changed, " rows instead of one"));
  }
  return absl::OkStatus();
}

}  // namespace lotse::storage

#endif  // LOTSE_COMMON_STORAGE_ROWS_H_
