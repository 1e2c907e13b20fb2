// Finds the string fields of a serialized request that protobuf refuses to
// parse because they are not valid UTF-8, so that the runtime can name them
// in field violations instead of answering "unparseable".
//
// The walk follows the wire bytes against the message's Descriptor, into
// nested messages, repeated fields, map entries, oneof members and groups.
// A string field is checked where protobuf checks it: TYPE_STRING fields of
// proto3 files. Unknown fields, and known fields sent with a wire type other
// than their own (which the parser keeps as unknown fields), are skipped.
//
// Paths follow the style of the code base's field violations: field names
// joined by '.', repeated elements by their index on the wire, map entries
// by their key, e.g. `person.names[0].given`, `labels["de"]`, `scores[7]`.
// A map entry whose key cannot be named (not valid UTF-8 itself, or too long
// for a path) is reported at the map field.
#ifndef LOTSE_COMMON_SERVER_INTERNAL_INVALID_UTF8_H_
#define LOTSE_COMMON_SERVER_INTERNAL_INVALID_UTF8_H_

#include <cstddef>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/errors/status.h"
#include "google/protobuf/descriptor.h"

namespace lotse::server::internal {

// What FindInvalidUtf8Fields() uses as the description of a string field
// that is not valid UTF-8 (the same text as api::ValidateText's).
inline constexpr char kInvalidUtf8Description[] = "must be valid UTF-8";

struct Utf8Scan {
  // False when the bytes are not a well-formed encoding of the message
  // (truncated, bad tags or lengths, nesting deeper than protobuf allows);
  // `violations` are then meaningless and empty.
  bool well_formed = false;
  // One per offending field path, in wire order, at most `max_violations`.
  std::vector<FieldViolation> violations;
  // True when more offending fields were found than were kept.
  bool truncated = false;
};

// Walks `wire`, a serialized `type`, and reports the string fields that are
// not valid UTF-8.
Utf8Scan FindInvalidUtf8Fields(const google::protobuf::Descriptor& type,
                               absl::string_view wire,
                               size_t max_violations = 20);

}  // namespace lotse::server::internal

#endif  // LOTSE_COMMON_SERVER_INTERNAL_INVALID_UTF8_H_
