// The walker that names the string fields protobuf refuses to parse: paths
// at every depth, agreement with protobuf on what is invalid, and what is
// not a message at all.
#include "common/server/internal/invalid_utf8.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/server/unary_service_test.pb.h"

namespace lotse::server::internal {
namespace {

using ::lotse::test::v1::EchoRequest;
using ::lotse::test::v1::Name;
using ::lotse::test::v1::Person;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Every "~BAD~" in a string field becomes five bytes that are not UTF-8
// (same length, so the framing stays intact).
constexpr char kMarker[] = "~BAD~";
constexpr char kInvalid[] = "\xff\xfe\xc0\xaf\x80";

std::string Wire(const EchoRequest& request) {
  std::string wire = request.SerializeAsString();
  return absl::StrReplaceAll(wire, {{kMarker, kInvalid}});
}

std::vector<std::string> Paths(const Utf8Scan& scan) {
  std::vector<std::string> paths;
  for (const FieldViolation& v : scan.violations) paths.push_back(v.field);
  return paths;
}

Utf8Scan Scan(const std::string& wire) {
  return FindInvalidUtf8Fields(*EchoRequest::descriptor(), wire);
}

// The premise of the whole exercise: protobuf refuses these bytes.
bool ProtobufParses(const std::string& wire) {
  EchoRequest parsed;
  return parsed.ParseFromString(wire);
}

TEST(InvalidUtf8Test, ValidRequestHasNoViolations) {
  EchoRequest request;
  request.set_text("Muhammad Müller 😀");
  request.mutable_person()->mutable_name()->set_given("Łukasz");
  (*request.mutable_person()->mutable_labels())["de"] = "Straße";
  request.add_tags("ok");
  request.add_numbers(-1);
  request.add_numbers(300);
  const std::string wire = Wire(request);
  ASSERT_TRUE(ProtobufParses(wire));
  Utf8Scan scan = Scan(wire);
  EXPECT_TRUE(scan.well_formed);
  EXPECT_THAT(scan.violations, IsEmpty());
  EXPECT_FALSE(scan.truncated);
}

TEST(InvalidUtf8Test, EmptyRequestIsWellFormed) {
  Utf8Scan scan = Scan("");
  EXPECT_TRUE(scan.well_formed);
  EXPECT_THAT(scan.violations, IsEmpty());
}

TEST(InvalidUtf8Test, TopLevelField) {
  EchoRequest request;
  request.set_text("Mu~BAD~hammad");
  request.set_number(7);
  const std::string wire = Wire(request);
  ASSERT_FALSE(ProtobufParses(wire));
  Utf8Scan scan = Scan(wire);
  EXPECT_TRUE(scan.well_formed);
  ASSERT_EQ(scan.violations.size(), 1u);
  EXPECT_EQ(scan.violations[0].field, "text");
  EXPECT_EQ(scan.violations[0].description, "must be valid UTF-8");
}

TEST(InvalidUtf8Test, NestedAndRepeatedFields) {
  EchoRequest request;
  request.mutable_person()->mutable_name()->set_given("~BAD~");
  request.mutable_person()->mutable_name()->set_family("ok");
  request.add_people()->mutable_name()->set_given("ok");
  Person* second = request.add_people();
  second->add_names()->set_given("ok");
  second->add_names();
  Name* third = second->add_names();
  third->add_aliases("ok");
  third->add_aliases("~BAD~");
  request.add_tags("~BAD~");
  request.add_tags("ok");
  request.add_tags("x~BAD~");
  const std::string wire = Wire(request);
  ASSERT_FALSE(ProtobufParses(wire));
  Utf8Scan scan = Scan(wire);
  EXPECT_TRUE(scan.well_formed);
  EXPECT_THAT(Paths(scan),
              ElementsAre("person.name.given", "people[1].names[2].aliases[1]",
                          "tags[0]", "tags[2]"));
}

TEST(InvalidUtf8Test, MapsAreNamedByTheirKeys) {
  EchoRequest request;
  Person* person = request.mutable_person();
  (*person->mutable_labels())["de"] = "~BAD~";
  (*person->mutable_labels())["fr"] = "ok";
  (*person->mutable_labels())["say \"hi\""] = "~BAD~";
  (*person->mutable_by_number())[-3].set_given("~BAD~");
  (*person->mutable_by_number())[4].add_aliases("ok");
  (*person->mutable_by_sint())[-5] = "~BAD~";
  const std::string wire = Wire(request);
  ASSERT_FALSE(ProtobufParses(wire));
  Utf8Scan scan = Scan(wire);
  EXPECT_TRUE(scan.well_formed);
  // Map order on the wire is unspecified; compare as a set.
  EXPECT_THAT(Paths(scan),
              ::testing::UnorderedElementsAre(
                  "person.labels[\"de\"]", "person.labels[\"say \\\"hi\\\"\"]",
                  "person.by_number[-3].given", "person.by_sint[-5]"));
}

TEST(InvalidUtf8Test, MapKeyThatIsNotUtf8IsReportedAtTheMap) {
  EchoRequest request;
  (*request.mutable_person()->mutable_labels())["k~BAD~"] = "~BAD~";
  const std::string wire = Wire(request);
  ASSERT_FALSE(ProtobufParses(wire));
  Utf8Scan scan = Scan(wire);
  EXPECT_TRUE(scan.well_formed);
  ASSERT_EQ(scan.violations.size(), 2u);
  EXPECT_EQ(scan.violations[0].field, "person.labels");
  EXPECT_EQ(scan.violations[0].description,
            "has a key that is not valid UTF-8");
  EXPECT_EQ(scan.violations[1].field, "person.labels");
  EXPECT_EQ(scan.violations[1].description,
            "has a value that is not valid UTF-8");
}

TEST(InvalidUtf8Test, LongMapKeysAreNotQuoted) {
  EchoRequest request;
  (*request.mutable_person()->mutable_labels())[std::string(100, 'k')] =
      "~BAD~";
  Utf8Scan scan = Scan(Wire(request));
  ASSERT_EQ(scan.violations.size(), 1u);
  EXPECT_EQ(scan.violations[0].field, "person.labels");
  EXPECT_EQ(scan.violations[0].description,
            "has a value that is not valid UTF-8");
}

TEST(InvalidUtf8Test, OneofMembers) {
  EchoRequest request;
  request.mutable_person()->set_email("~BAD~");
  EXPECT_THAT(Paths(Scan(Wire(request))), ElementsAre("person.email"));
  request.mutable_person()->mutable_guardian()->set_family("~BAD~");
  EXPECT_THAT(Paths(Scan(Wire(request))),
              ElementsAre("person.guardian.family"));
}

TEST(InvalidUtf8Test, BytesAndUnknownFieldsAreNotChecked) {
  EchoRequest request;
  request.mutable_person()->set_photo("~BAD~");
  // Field 99 is unknown to EchoRequest; protobuf keeps it as is.
  std::string wire = Wire(request) + std::string("\x9a\x06\x02\xff\xfe", 5);
  ASSERT_TRUE(ProtobufParses(wire));
  Utf8Scan scan = Scan(wire);
  EXPECT_TRUE(scan.well_formed);
  EXPECT_THAT(scan.violations, IsEmpty());
}

TEST(InvalidUtf8Test, KnownFieldWithForeignWireTypeIsSkipped) {
  // Field 1 (text, a string) as a varint: protobuf keeps it as unknown.
  const std::string wire("\x08\x96\x01", 3);
  ASSERT_TRUE(ProtobufParses(wire));
  Utf8Scan scan = Scan(wire);
  EXPECT_TRUE(scan.well_formed);
  EXPECT_THAT(scan.violations, IsEmpty());
}

TEST(InvalidUtf8Test, SameVerdictAsProtobufOnEveryKindOfSequence) {
  const std::vector<std::string> samples = {
      "",
      "plain",
      "Müller",
      "€",
      "😀",
      "\xef\xbf\xbf",      // U+FFFF, a noncharacter but valid
      "\xf4\x8f\xbf\xbf",  // U+10FFFF
      "\x80",              // lone continuation byte
      "\xc3",              // truncated two-byte form
      "\xe2\x82",          // truncated three-byte form
      "\xc0\xaf",          // overlong '/'
      "\xe0\x80\xaf",      // overlong, three bytes
      "\xed\xa0\x80",      // surrogate U+D800
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "\xf8\x88\x80\x80\x80",
      "\xff",
      "ok\xffok",
  };
  for (const std::string& text : samples) {
    EchoRequest request;
    request.mutable_person()->mutable_name()->set_family(text);
    const std::string wire = request.SerializeAsString();
    const bool parses = ProtobufParses(wire);
    Utf8Scan scan = Scan(wire);
    EXPECT_TRUE(scan.well_formed);
    EXPECT_EQ(scan.violations.empty(), parses)
        << "disagreement with protobuf on \"" << absl::CEscape(text) << "\"";
  }
}

TEST(InvalidUtf8Test, BytesThatAreNoMessageAreNotWellFormed) {
  EchoRequest request;
  request.set_text("Mu~BAD~hammad and more text");
  request.mutable_person()->mutable_name()->set_given("x");
  const std::string wire = Wire(request);
  const std::vector<std::string> broken = {
      wire.substr(0, 8),                    // cut inside a string
      wire.substr(0, wire.size() - 1),      // cut inside the nested message
      std::string("\xff\xff\xff", 3),       // endless varint tag
      std::string("\x0a\x7f", 2),           // length beyond the data
      std::string("\x00", 1),               // field number 0
      std::string("\x0c", 1),               // END_GROUP at the top level
      std::string("\x0f\x00", 2),           // wire type 7
      std::string("\x12\x03\x0a\x05x", 5),  // nested length beyond parent
  };
  for (const std::string& bytes : broken) {
    EXPECT_FALSE(ProtobufParses(bytes)) << absl::CEscape(bytes);
    Utf8Scan scan = Scan(bytes);
    EXPECT_FALSE(scan.well_formed) << absl::CEscape(bytes);
    EXPECT_THAT(scan.violations, IsEmpty());
  }
}

TEST(InvalidUtf8Test, ManyViolationsAreCapped) {
  EchoRequest request;
  for (int i = 0; i < 30; ++i) request.add_tags("~BAD~");
  Utf8Scan scan = FindInvalidUtf8Fields(*EchoRequest::descriptor(),
                                        Wire(request), /*max_violations=*/20);
  EXPECT_TRUE(scan.well_formed);
  ASSERT_EQ(scan.violations.size(), 20u);
  EXPECT_EQ(scan.violations[19].field, "tags[19]");
  EXPECT_TRUE(scan.truncated);
}

TEST(InvalidUtf8Test, NestingDeeperThanProtobufAllowsIsNotWellFormed) {
  // 200 nested groups of an unknown field: protobuf's recursion limit is
  // 100.
  std::string wire;
  for (int i = 0; i < 200; ++i) wire += "\xcb\x06";  // field 105, START_GROUP
  for (int i = 0; i < 200; ++i) wire += "\xcc\x06";  // field 105, END_GROUP
  EXPECT_FALSE(ProtobufParses(wire));
  EXPECT_FALSE(Scan(wire).well_formed);
}

}  // namespace
}  // namespace lotse::server::internal
