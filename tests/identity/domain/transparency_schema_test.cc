// docs/transparency-report.schema.json against the contract it describes:
// every field of TransparencyReport, TransparencyEntry and LegalBasis is in
// the schema under its proto3 JSON name, every enum lists exactly the
// contract's values, and a report printed the way lotse_transparency_report
// prints it has every field the schema requires.
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/transparency.pb.h"
#include "tests/support/dev_pki.h"

namespace lotse::identity {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Struct;
using ::google::protobuf::Value;

Struct LoadSchema() {
  std::ifstream in(testing::SourceDir() +
                   "/docs/transparency-report.schema.json");
  std::stringstream text;
  text << in.rdbuf();
  Struct schema;
  auto s = google::protobuf::util::JsonStringToMessage(text.str(), &schema);
  EXPECT_TRUE(s.ok()) << s.message();
  return schema;
}

const Struct& Object(const Struct& s, const std::string& key) {
  return s.fields().at(key).struct_value();
}

std::set<std::string> Strings(const Value& list) {
  std::set<std::string> out;
  for (const Value& v : list.list_value().values())
    out.insert(v.string_value());
  return out;
}

// Checks one message's fields against one schema object.
void CheckMessage(const Descriptor* d, const Struct& object) {
  const Struct& properties = Object(object, "properties");
  const std::set<std::string> required =
      Strings(object.fields().at("required"));
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    SCOPED_TRACE(f->full_name());
    auto it = properties.fields().find(f->json_name());
    ASSERT_TRUE(it != properties.fields().end());
    // Scalars and lists are always printed; a singular message only when
    // set, which identity always does for these times (the optional start
    // of the range is left out when none was asked for).
    const std::set<std::string> always_set = {"endTime", "createTime", "time"};
    const bool always = f->is_repeated() ||
                        f->type() != FieldDescriptor::TYPE_MESSAGE ||
                        always_set.count(f->json_name()) > 0;
    EXPECT_EQ(required.count(f->json_name()) > 0, always);
    if (f->type() == FieldDescriptor::TYPE_ENUM) {
      const Struct& p = it->second.struct_value();
      const Value& e =
          f->is_repeated()
              ? p.fields().at("items").struct_value().fields().at("enum")
              : p.fields().at("enum");
      std::set<std::string> names;
      for (int j = 0; j < f->enum_type()->value_count(); ++j) {
        names.insert(f->enum_type()->value(j)->name());
      }
      EXPECT_EQ(Strings(e), names);
    }
  }
  EXPECT_EQ(properties.fields_size(), d->field_count());
}

TEST(TransparencySchemaTest, DescribesEveryFieldOfTheContract) {
  const Struct schema = LoadSchema();
  ASSERT_TRUE(schema.fields().contains("properties"));
  ASSERT_TRUE(schema.fields().contains("$defs"));
  EXPECT_NO_FATAL_FAILURE(
      CheckMessage(v1::TransparencyReport::descriptor(), schema));
  const Struct& defs = Object(schema, "$defs");
  ASSERT_TRUE(defs.fields().contains("entry"));
  ASSERT_TRUE(defs.fields().contains("legalBasis"));
  EXPECT_NO_FATAL_FAILURE(
      CheckMessage(v1::TransparencyEntry::descriptor(), Object(defs, "entry")));
  EXPECT_NO_FATAL_FAILURE(CheckMessage(
      lotse::audit::v1::LegalBasis::descriptor(), Object(defs, "legalBasis")));
  ASSERT_TRUE(defs.fields().contains("legalHold"));
  EXPECT_NO_FATAL_FAILURE(
      CheckMessage(v1::LegalHold::descriptor(), Object(defs, "legalHold")));
}

TEST(TransparencySchemaTest, APrintedReportHasEveryRequiredField) {
  v1::TransparencyReport report;
  report.set_person("persons/p");
  report.add_covered_persons("persons/p");
  report.mutable_end_time()->set_seconds(1);
  report.mutable_create_time()->set_seconds(1);
  v1::TransparencyEntry* e = report.add_entries();
  e->mutable_time()->set_seconds(1);
  e->add_legal_bases();
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(report, &json, options).ok());
  Struct printed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &printed).ok());
  const Struct schema = LoadSchema();
  for (const std::string& key : Strings(schema.fields().at("required"))) {
    EXPECT_TRUE(printed.fields().contains(key)) << key;
  }
  const Struct& entry =
      printed.fields().at("entries").list_value().values(0).struct_value();
  for (const std::string& key : Strings(
           Object(Object(schema, "$defs"), "entry").fields().at("required"))) {
    EXPECT_TRUE(entry.fields().contains(key)) << key;
  }
  // int64 is a string in proto3 JSON, as the schema says.
  EXPECT_TRUE(entry.fields().at("seq").has_string_value());
}

}  // namespace
}  // namespace lotse::identity
