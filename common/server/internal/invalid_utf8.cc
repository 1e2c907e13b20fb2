#include "common/server/internal/invalid_utf8.h"

#include <climits>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/api/text.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace lotse::server::internal {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::FileDescriptor;
using ::google::protobuf::internal::WireFormatLite;
using ::google::protobuf::io::CodedInputStream;

// Map keys longer than this (after escaping) are not quoted in paths: a
// path is for finding the field, not for echoing large client input.
constexpr size_t kMaxKeyCharsInPath = 64;

constexpr char kMapKeyDescription[] = "has a key that is not valid UTF-8";
constexpr char kMapValueDescription[] = "has a value that is not valid UTF-8";

// Where protobuf itself insists on UTF-8 (and fails the parse otherwise).
bool RequiresUtf8(const FieldDescriptor& field) {
  return field.type() == FieldDescriptor::TYPE_STRING &&
         field.file()->syntax() == FileDescriptor::SYNTAX_PROTO3;
}

WireFormatLite::WireType WireTypeOf(const FieldDescriptor& field) {
  return WireFormatLite::WireTypeForFieldType(
      static_cast<WireFormatLite::FieldType>(field.type()));
}

// The key of one map entry as it appears in a path.
struct MapKey {
  std::string text;  // `"de"`, `7`, `true`; empty when it cannot be named
  bool invalid_utf8 = false;
};

std::string DefaultKeyText(const FieldDescriptor& key_field) {
  switch (key_field.type()) {
    case FieldDescriptor::TYPE_STRING:
    case FieldDescriptor::TYPE_BYTES:
      return "\"\"";
    case FieldDescriptor::TYPE_BOOL:
      return "false";
    default:
      return "0";
  }
}

// An integral map key, from its raw wire value.
std::string IntegralKeyText(FieldDescriptor::Type type, uint64_t raw) {
  switch (type) {
    case FieldDescriptor::TYPE_INT32:
    case FieldDescriptor::TYPE_SFIXED32:
      return absl::StrCat(static_cast<int32_t>(static_cast<uint32_t>(raw)));
    case FieldDescriptor::TYPE_INT64:
    case FieldDescriptor::TYPE_SFIXED64:
      return absl::StrCat(static_cast<int64_t>(raw));
    case FieldDescriptor::TYPE_UINT32:
    case FieldDescriptor::TYPE_FIXED32:
      return absl::StrCat(static_cast<uint32_t>(raw));
    case FieldDescriptor::TYPE_SINT32:
      return absl::StrCat(
          WireFormatLite::ZigZagDecode32(static_cast<uint32_t>(raw)));
    case FieldDescriptor::TYPE_SINT64:
      return absl::StrCat(WireFormatLite::ZigZagDecode64(raw));
    case FieldDescriptor::TYPE_BOOL:
      return raw != 0 ? "true" : "false";
    default:
      return absl::StrCat(raw);
  }
}

class Walker {
 public:
  Walker(absl::string_view wire, size_t max_kept)
      : wire_(wire),
        input_(reinterpret_cast<const uint8_t*>(wire.data()),
               static_cast<int>(wire.size())),
        max_kept_(max_kept) {}

  bool Run(const Descriptor& type, std::vector<FieldViolation>* found) {
    input_.PushLimit(static_cast<int>(wire_.size()));
    return WalkFields(type, /*end_group=*/0, found, /*key=*/nullptr);
  }

  bool dropped() const { return dropped_; }

 private:
  // Walks the fields of one `type` up to the current limit or, for a group,
  // up to its END_GROUP tag `end_group`. Paths in `found` are relative to
  // the message. For a map entry, `key` receives the entry's key.
  bool WalkFields(const Descriptor& type, uint32_t end_group,
                  std::vector<FieldViolation>* found, MapKey* key) {
    // Elements of each repeated field seen so far: the next one's index.
    absl::flat_hash_map<int, int> next_index;
    while (true) {
      if (end_group == 0 && input_.BytesUntilLimit() == 0) return true;
      const uint32_t tag = input_.ReadTag();
      if (tag == 0) return false;  // garbage, or the data ended early
      const WireFormatLite::WireType wire_type =
          WireFormatLite::GetTagWireType(tag);
      if (wire_type == WireFormatLite::WIRETYPE_END_GROUP) {
        return tag == end_group;
      }
      const int number = WireFormatLite::GetTagFieldNumber(tag);
      const FieldDescriptor* field = type.FindFieldByNumber(number);
      // Unknown fields, and known ones with a foreign wire type (which the
      // parser keeps as unknown), are not checked.
      if (field == nullptr || wire_type != WireTypeOf(*field)) {
        if (!WireFormatLite::SkipField(&input_, tag)) return false;
        continue;
      }
      if (key != nullptr && number == 1) {
        if (!ReadKey(*field, wire_type, key, found)) return false;
        continue;
      }
      std::string path = field->name();
      if (field->is_repeated() && !field->is_map()) {
        absl::StrAppend(&path, "[", next_index[number]++, "]");
      }
      switch (field->type()) {
        case FieldDescriptor::TYPE_STRING: {
          absl::string_view text;
          if (!ReadBytes(&text)) return false;
          if (RequiresUtf8(*field) && !api::IsValidUtf8(text)) {
            Keep(found, {std::move(path), kInvalidUtf8Description});
          }
          break;
        }
        case FieldDescriptor::TYPE_MESSAGE:
        case FieldDescriptor::TYPE_GROUP:
          if (!WalkNested(*field, tag, path, found)) return false;
          break;
        default:
          if (!WireFormatLite::SkipField(&input_, tag)) return false;
          break;
      }
    }
  }

  // A nested message, group or map entry; its findings are added to
  // `found` under `path`.
  bool WalkNested(const FieldDescriptor& field, uint32_t tag,
                  const std::string& path, std::vector<FieldViolation>* found) {
    std::vector<FieldViolation> inner;
    MapKey entry_key;
    const bool is_map = field.is_map();
    if (is_map) {
      entry_key.text = DefaultKeyText(*field.message_type()->map_key());
    }
    if (!input_.IncrementRecursionDepth()) return false;
    bool ok;
    if (field.type() == FieldDescriptor::TYPE_GROUP) {
      ok = WalkFields(*field.message_type(),
                      WireFormatLite::MakeTag(
                          field.number(), WireFormatLite::WIRETYPE_END_GROUP),
                      &inner, nullptr);
    } else {
      uint32_t length;
      if (!input_.ReadVarint32(&length) || length > INT_MAX) return false;
      const CodedInputStream::Limit limit =
          input_.PushLimit(static_cast<int>(length));
      ok = WalkFields(*field.message_type(), 0, &inner,
                      is_map ? &entry_key : nullptr);
      // A length beyond the data: the walk above stopped short of it.
      ok = ok && input_.BytesUntilLimit() == 0;
      input_.PopLimit(limit);
    }
    input_.DecrementRecursionDepth();
    if (!ok) return false;
    if (!is_map) {
      for (FieldViolation& v : inner) {
        found->push_back(
            {absl::StrCat(path, ".", v.field), std::move(v.description)});
      }
      return true;
    }
    // In a map entry the findings are "key" (added by ReadKey) and "value",
    // "value.<...>"; they become `path[key]`, `path[key].<...>`.
    for (FieldViolation& v : inner) {
      if (v.field == "key") {
        found->push_back({path, kMapKeyDescription});
      } else if (entry_key.invalid_utf8 || entry_key.text.empty()) {
        found->push_back({path, kMapValueDescription});
      } else {
        absl::string_view rest = v.field;
        absl::ConsumePrefix(&rest, "value");
        found->push_back({absl::StrCat(path, "[", entry_key.text, "]", rest),
                          std::move(v.description)});
      }
    }
    return true;
  }

  // Field 1 of a map entry (wire type already checked).
  bool ReadKey(const FieldDescriptor& field, WireFormatLite::WireType wire_type,
               MapKey* key, std::vector<FieldViolation>* found) {
    switch (wire_type) {
      case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
        absl::string_view text;
        if (!ReadBytes(&text)) return false;
        key->invalid_utf8 = RequiresUtf8(field) && !api::IsValidUtf8(text);
        key->text.clear();
        if (key->invalid_utf8) {
          Keep(found, {"key", kInvalidUtf8Description});
        } else if (field.type() == FieldDescriptor::TYPE_STRING) {
          std::string escaped = absl::Utf8SafeCEscape(text);
          if (escaped.size() <= kMaxKeyCharsInPath) {
            key->text = absl::StrCat("\"", escaped, "\"");
          }
        }
        return true;
      }
      case WireFormatLite::WIRETYPE_VARINT: {
        uint64_t raw;
        if (!input_.ReadVarint64(&raw)) return false;
        key->text = IntegralKeyText(field.type(), raw);
        return true;
      }
      case WireFormatLite::WIRETYPE_FIXED32: {
        uint32_t raw;
        if (!input_.ReadLittleEndian32(&raw)) return false;
        key->text = IntegralKeyText(field.type(), raw);
        return true;
      }
      case WireFormatLite::WIRETYPE_FIXED64: {
        uint64_t raw;
        if (!input_.ReadLittleEndian64(&raw)) return false;
        key->text = IntegralKeyText(field.type(), raw);
        return true;
      }
      default:
        return false;  // map keys are never messages or groups
    }
  }

  // A length-delimited value, as a view into the wire bytes.
  bool ReadBytes(absl::string_view* out) {
    uint32_t length;
    if (!input_.ReadVarint32(&length) || length > INT_MAX) return false;
    const int start = input_.CurrentPosition();
    if (!input_.Skip(static_cast<int>(length))) return false;
    *out = wire_.substr(start, length);
    return true;
  }

  // Keeps a finding unless enough have been kept already; the walk goes on
  // regardless, to tell whether the message is well-formed.
  void Keep(std::vector<FieldViolation>* found, FieldViolation violation) {
    if (kept_ >= max_kept_) {
      dropped_ = true;
      return;
    }
    ++kept_;
    found->push_back(std::move(violation));
  }

  const absl::string_view wire_;
  CodedInputStream input_;
  const size_t max_kept_;
  size_t kept_ = 0;
  bool dropped_ = false;
};

}  // namespace

Utf8Scan FindInvalidUtf8Fields(const Descriptor& type, absl::string_view wire,
                               size_t max_violations) {
  Utf8Scan scan;
  if (wire.size() > static_cast<size_t>(INT_MAX)) return scan;
  // Findings inside map entries can collapse into one per map, so keep some
  // more than asked for before removing duplicates.
  Walker walker(wire, max_violations * 4);
  std::vector<FieldViolation> found;
  if (!walker.Run(type, &found)) return scan;
  scan.well_formed = true;
  scan.truncated = walker.dropped();
  absl::flat_hash_set<std::pair<std::string, std::string>> seen;
  for (FieldViolation& v : found) {
    if (!seen.insert({v.field, v.description}).second) continue;
    if (scan.violations.size() >= max_violations) {
      scan.truncated = true;
      break;
    }
    scan.violations.push_back(std::move(v));
  }
  return scan;
}

}  // namespace lotse::server::internal
