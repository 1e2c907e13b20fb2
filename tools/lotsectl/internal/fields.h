// Reading and writing protobuf fields by dotted path ("person.names.
// given_names"), so that a verb can be declared as flags -> request fields
// and response fields -> table columns instead of code per RPC.
//
// A path names fields by their proto names, separated by '.'. Passing
// through a repeated message field means its last element (one is added
// when writing to an empty list).
#ifndef LOTSE_TOOLS_LOTSECTL_INTERNAL_FIELDS_H_
#define LOTSE_TOOLS_LOTSECTL_INTERNAL_FIELDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace lotse::lotsectl {

// The field descriptors along `path` from `type`; INVALID_ARGUMENT naming
// the first part that is not a field (or passes through a non-message).
absl::StatusOr<std::vector<const google::protobuf::FieldDescriptor*>>
ResolvePath(const google::protobuf::Descriptor* type, absl::string_view path);

// Sets the field at `path` from command-line text. Scalars parse as their
// type (bool: true/false); enums take the value name with or without the
// enum's prefix, in any case, '-' for '_' ("kommune" for
// LEGAL_DOMAIN_KOMMUNE); repeated scalars append (a comma-separated value
// appends each part). Message fields: lotse.type.v1.Date and PartialDate
// take "YYYY", "YYYY-MM" or "YYYY-MM-DD"; google.protobuf.Timestamp takes
// RFC 3339; google.protobuf.Duration takes "90s"/"1h"; any other message
// takes its protobuf JSON. INVALID_ARGUMENT naming the path when the text
// does not parse.
absl::Status SetField(google::protobuf::Message* message,
                      absl::string_view path, absl::string_view text);

// The value at `path` as text for a table cell: enums without their
// prefix ("KOMMUNE"), dates as YYYY-MM-DD (partial dates with "??" for
// unknown parts), timestamps in RFC 3339 UTC, durations as "90s", repeated
// fields joined with ", ", other messages as compact JSON, unset message
// fields as "". INVALID_ARGUMENT when `path` is not a field.
absl::StatusOr<std::string> FieldText(const google::protobuf::Message& message,
                                      absl::string_view path);

// `value` of a set field, formatted as FieldText does.
std::string ValueText(const google::protobuf::Message& message,
                      const google::protobuf::FieldDescriptor& field);

// The name of an enum value without its enum's prefix
// ("LEGAL_DOMAIN_KOMMUNE" -> "KOMMUNE"); the prefix is the part before
// UNSPECIFIED of the enum's zero value.
std::string ShortEnumName(const google::protobuf::EnumValueDescriptor& value);

// The enum value `text` names, as SetField accepts it; nullptr if none.
const google::protobuf::EnumValueDescriptor* FindEnumValue(
    const google::protobuf::EnumDescriptor& type, absl::string_view text);

}  // namespace lotse::lotsectl

#endif  // LOTSE_TOOLS_LOTSECTL_INTERNAL_FIELDS_H_
