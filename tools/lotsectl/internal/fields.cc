#include "tools/lotsectl/internal/fields.h"

#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"

namespace lotse::lotsectl {
namespace {

namespace pb = ::google::protobuf;
using FD = pb::FieldDescriptor;

bool IsDateType(const pb::Descriptor& type) {
  return type.full_name() == "lotse.type.v1.Date" ||
         type.full_name() == "lotse.type.v1.PartialDate";
}

absl::Status Bad(absl::string_view path, absl::string_view text,
                 absl::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": \"", text, "\" is not ", expected));
}

// Fills a Date/PartialDate from "YYYY[-MM[-DD]]".
absl::Status SetDate(pb::Message* date, absl::string_view path,
                     absl::string_view text) {
  std::vector<std::string> parts = absl::StrSplit(text, '-');
  if (parts.empty() || parts.size() > 3) {
    return Bad(path, text, "a date YYYY[-MM[-DD]]");
  }
  const char* names[] = {"year", "month", "day"};
  const pb::Reflection* r = date->GetReflection();
  for (size_t i = 0; i < parts.size(); ++i) {
    int value = 0;
    if (!absl::SimpleAtoi(parts[i], &value)) {
      return Bad(path, text, "a date YYYY[-MM[-DD]]");
    }
    r->SetInt32(date, date->GetDescriptor()->FindFieldByName(names[i]), value);
  }
  return absl::OkStatus();
}

absl::Status SetMessage(pb::Message* target, absl::string_view path,
                        absl::string_view text) {
  const pb::Descriptor& type = *target->GetDescriptor();
  if (IsDateType(type)) return SetDate(target, path, text);
  std::string json;
  if (type.full_name() == "google.protobuf.Timestamp" ||
      type.full_name() == "google.protobuf.Duration") {
    // Their JSON form is a string; a bare Duration like "90" needs its unit.
    json = absl::StrCat("\"", text, "\"");
  } else {
    json = std::string(text);
  }
  target->Clear();
  auto parsed = pb::util::JsonStringToMessage(json, target);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": \"", text, "\" is not a ", type.full_name(), " (",
                     parsed.message().ToString(), ")"));
  }
  return absl::OkStatus();
}

absl::Status SetScalar(pb::Message* m, const FD& f, absl::string_view path,
                       absl::string_view text) {
  const pb::Reflection* r = m->GetReflection();
  const bool rep = f.is_repeated();
  switch (f.cpp_type()) {
    case FD::CPPTYPE_STRING:
      if (f.type() == FD::TYPE_BYTES) {
        return Bad(path, text, "settable from the command line (bytes)");
      }
      rep ? r->AddString(m, &f, std::string(text))
          : r->SetString(m, &f, std::string(text));
      return absl::OkStatus();
    case FD::CPPTYPE_INT32: {
      int32_t v;
      if (!absl::SimpleAtoi(text, &v)) return Bad(path, text, "an integer");
      rep ? r->AddInt32(m, &f, v) : r->SetInt32(m, &f, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(text, &v)) return Bad(path, text, "an integer");
      rep ? r->AddInt64(m, &f, v) : r->SetInt64(m, &f, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_UINT32: {
      uint32_t v;
      if (!absl::SimpleAtoi(text, &v)) return Bad(path, text, "a number");
      rep ? r->AddUInt32(m, &f, v) : r->SetUInt32(m, &f, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_UINT64: {
      uint64_t v;
      if (!absl::SimpleAtoi(text, &v)) return Bad(path, text, "a number");
      rep ? r->AddUInt64(m, &f, v) : r->SetUInt64(m, &f, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_DOUBLE: {
      double v;
      if (!absl::SimpleAtod(text, &v)) return Bad(path, text, "a number");
      rep ? r->AddDouble(m, &f, v) : r->SetDouble(m, &f, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_FLOAT: {
      float v;
      if (!absl::SimpleAtof(text, &v)) return Bad(path, text, "a number");
      rep ? r->AddFloat(m, &f, v) : r->SetFloat(m, &f, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_BOOL: {
      bool v;
      if (!absl::SimpleAtob(text, &v)) return Bad(path, text, "true or false");
      rep ? r->AddBool(m, &f, v) : r->SetBool(m, &f, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* v = FindEnumValue(*f.enum_type(), text);
      if (v == nullptr) {
        std::vector<std::string> names;
        for (int i = 1; i < f.enum_type()->value_count(); ++i) {
          names.push_back(ShortEnumName(*f.enum_type()->value(i)));
        }
        return Bad(path, text,
                   absl::StrCat("one of ", absl::StrJoin(names, ", ")));
      }
      rep ? r->AddEnum(m, &f, v) : r->SetEnum(m, &f, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_MESSAGE:
      break;
  }
  pb::Message* sub = rep ? r->AddMessage(m, &f) : r->MutableMessage(m, &f);
  return SetMessage(sub, path, text);
}

std::string TimestampText(const pb::Message& ts) {
  const pb::Reflection* r = ts.GetReflection();
  const pb::Descriptor* d = ts.GetDescriptor();
  absl::Time t =
      absl::FromUnixSeconds(r->GetInt64(ts, d->FindFieldByName("seconds"))) +
      absl::Nanoseconds(r->GetInt32(ts, d->FindFieldByName("nanos")));
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

std::string MessageText(const pb::Message& m) {
  const pb::Descriptor& type = *m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  if (IsDateType(type)) {
    auto part = [&](const char* name, int width) -> std::string {
      int v = r->GetInt32(m, type.FindFieldByName(name));
      if (v == 0) return std::string(width, '?');
      return absl::StrFormat("%0*d", width, v);
    };
    if (r->GetInt32(m, type.FindFieldByName("year")) == 0) return "";
    return absl::StrCat(part("year", 4), "-", part("month", 2), "-",
                        part("day", 2));
  }
  if (type.full_name() == "google.protobuf.Timestamp") return TimestampText(m);
  std::string json;
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!pb::util::MessageToJsonString(m, &json, options).ok()) return "?";
  if (type.full_name() == "google.protobuf.Duration" && json.size() >= 2) {
    return json.substr(1, json.size() - 2);
  }
  return json;
}

std::string ElementText(const pb::Message& m, const FD& f, int index) {
  const pb::Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f.cpp_type()) {
    case FD::CPPTYPE_STRING:
      if (f.type() == FD::TYPE_BYTES) {
        std::string bytes =
            rep ? r->GetRepeatedString(m, &f, index) : r->GetString(m, &f);
        std::string hex;
        for (unsigned char c : bytes) absl::StrAppendFormat(&hex, "%02x", c);
        return hex;
      }
      return rep ? r->GetRepeatedString(m, &f, index) : r->GetString(m, &f);
    case FD::CPPTYPE_INT32:
      return absl::StrCat(rep ? r->GetRepeatedInt32(m, &f, index)
                              : r->GetInt32(m, &f));
    case FD::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(m, &f, index)
                              : r->GetInt64(m, &f));
    case FD::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r->GetRepeatedUInt32(m, &f, index)
                              : r->GetUInt32(m, &f));
    case FD::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(m, &f, index)
                              : r->GetUInt64(m, &f));
    case FD::CPPTYPE_DOUBLE:
      return absl::StrFormat("%.3g", rep ? r->GetRepeatedDouble(m, &f, index)
                                         : r->GetDouble(m, &f));
    case FD::CPPTYPE_FLOAT:
      return absl::StrFormat(
          "%.3g", rep ? r->GetRepeatedFloat(m, &f, index) : r->GetFloat(m, &f));
    case FD::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(m, &f, index) : r->GetBool(m, &f))
                 ? "yes"
                 : "no";
    case FD::CPPTYPE_ENUM:
      return ShortEnumName(
          *(rep ? r->GetRepeatedEnum(m, &f, index) : r->GetEnum(m, &f)));
    case FD::CPPTYPE_MESSAGE:
      if (!rep && !r->HasField(m, &f)) return "";
      return MessageText(rep ? r->GetRepeatedMessage(m, &f, index)
                             : r->GetMessage(m, &f));
  }
  return "";
}

}  // namespace

absl::StatusOr<std::vector<const FD*>> ResolvePath(const pb::Descriptor* type,
                                                   absl::string_view path) {
  std::vector<const FD*> fields;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (type == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", fields.back()->name(), " is not a message"));
    }
    const FD* f = type->FindFieldByName(std::string(part));
    if (f == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": ", type->full_name(), " has no field \"", part, "\""));
    }
    fields.push_back(f);
    type = f->message_type();
  }
  return fields;
}

absl::Status SetField(pb::Message* message, absl::string_view path,
                      absl::string_view text) {
  auto fields = ResolvePath(message->GetDescriptor(), path);
  if (!fields.ok()) return fields.status();
  pb::Message* m = message;
  for (size_t i = 0; i + 1 < fields->size(); ++i) {
    const FD* f = (*fields)[i];
    const pb::Reflection* r = m->GetReflection();
    if (f->is_repeated()) {
      int n = r->FieldSize(*m, f);
      m = n == 0 ? r->AddMessage(m, f) : r->MutableRepeatedMessage(m, f, n - 1);
    } else {
      m = r->MutableMessage(m, f);
    }
  }
  const FD* leaf = fields->back();
  if (leaf->is_repeated() && leaf->cpp_type() != FD::CPPTYPE_MESSAGE) {
    for (absl::string_view part :
         absl::StrSplit(text, ',', absl::SkipEmpty())) {
      absl::Status s =
          SetScalar(m, *leaf, path, absl::StripAsciiWhitespace(part));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  return SetScalar(m, *leaf, path, text);
}

absl::StatusOr<std::string> FieldText(const pb::Message& message,
                                      absl::string_view path) {
  auto fields = ResolvePath(message.GetDescriptor(), path);
  if (!fields.ok()) return fields.status();
  const pb::Message* m = &message;
  for (size_t i = 0; i + 1 < fields->size(); ++i) {
    const FD* f = (*fields)[i];
    const pb::Reflection* r = m->GetReflection();
    if (f->is_repeated()) {
      int n = r->FieldSize(*m, f);
      if (n == 0) return std::string();
      m = &r->GetRepeatedMessage(*m, f, n - 1);
    } else {
      if (!r->HasField(*m, f)) return std::string();
      m = &r->GetMessage(*m, f);
    }
  }
  return ValueText(*m, *fields->back());
}

std::string ValueText(const pb::Message& message, const FD& field) {
  if (!field.is_repeated()) return ElementText(message, field, -1);
  std::vector<std::string> parts;
  const int n = message.GetReflection()->FieldSize(message, &field);
  for (int i = 0; i < n; ++i) parts.push_back(ElementText(message, field, i));
  return absl::StrJoin(parts, ", ");
}

std::string ShortEnumName(const pb::EnumValueDescriptor& value) {
  const pb::EnumDescriptor& type = *value.type();
  const pb::EnumValueDescriptor* zero = type.FindValueByNumber(0);
  if (zero != nullptr && absl::EndsWith(zero->name(), "UNSPECIFIED")) {
    absl::string_view prefix = zero->name();
    prefix.remove_suffix(std::string("UNSPECIFIED").size());
    absl::string_view name = value.name();
    if (!prefix.empty() && absl::StartsWith(name, prefix) &&
        name.size() > prefix.size()) {
      return std::string(name.substr(prefix.size()));
    }
  }
  return value.name();
}

const pb::EnumValueDescriptor* FindEnumValue(const pb::EnumDescriptor& type,
                                             absl::string_view text) {
  std::string wanted =
      absl::AsciiStrToUpper(absl::StrReplaceAll(text, {{"-", "_"}}));
  for (int i = 0; i < type.value_count(); ++i) {
    const pb::EnumValueDescriptor* v = type.value(i);
    if (v->name() == wanted || ShortEnumName(*v) == wanted) return v;
  }
  int number = 0;
  if (absl::SimpleAtoi(text, &number)) return type.FindValueByNumber(number);
  return nullptr;
}

}  // namespace lotse::lotsectl
