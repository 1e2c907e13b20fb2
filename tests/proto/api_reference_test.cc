// The API reference generator (tools/api_reference): errors read from
// comments, the check for missing comments, and the rendered pages, on
// small hand-made descriptor sets.
#include "tools/api_reference/api_reference.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace lotse::api_reference {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

MATCHER_P2(Error, code, reason, "") {
  return arg.code == code && arg.reason == reason;
}

TEST(ExtractErrorsTest, ReadsCodesWithTheirReasons) {
  const std::vector<ErrorRow> rows = ExtractErrors(
      "Registers an agency. Only ADMINISTRATION may call it\n"
      "(PERMISSION_DENIED, reason WRONG_LEGAL_DOMAIN). NOT_FOUND if the\n"
      "person is unknown. FAILED_PRECONDITION (reason A_STATE or B_STATE)\n"
      "if it is closed.",
      {});
  EXPECT_THAT(rows,
              ElementsAre(Error("PERMISSION_DENIED", "WRONG_LEGAL_DOMAIN"),
                          Error("NOT_FOUND", ""),
                          Error("FAILED_PRECONDITION", "A_STATE"),
                          Error("FAILED_PRECONDITION", "B_STATE")));
  // Each row carries the sentence that documents it.
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[1].when, "NOT_FOUND if the person is unknown.");
}

TEST(ExtractErrorsTest, ReasonListsWithCommaAndOr) {
  EXPECT_THAT(
      ExtractErrors("Publisher only (PERMISSION_DENIED, reason A_REASON, or "
                    "B_REASON for others).",
                    {}),
      ElementsAre(Error("PERMISSION_DENIED", "A_REASON"),
                  Error("PERMISSION_DENIED", "B_REASON")));
}

TEST(ExtractErrorsTest, ReasonsRightAfterTheCode) {
  EXPECT_THAT(ExtractErrors("Booking twice is ALREADY_EXISTS "
                            "ACTIVE_BOOKING_EXISTS.",
                            {}),
              ElementsAre(Error("ALREADY_EXISTS", "ACTIVE_BOOKING_EXISTS")));
}

TEST(ExtractErrorsTest, EnumValueAfterACodeIsNoReason) {
  // "CANCELLED ATTENDING" names two booking states, not a reason.
  EXPECT_THAT(ExtractErrors("Moves from CANCELLED ATTENDING to DONE.",
                            {"BOOKING_STATE_ATTENDING"}),
              ElementsAre(Error("CANCELLED", "")));
}

TEST(ExtractErrorsTest, CodesOnlyEnumeratedAreNoErrors) {
  EXPECT_THAT(ExtractErrors("ErrorInfo carries the reason for "
                            "PERMISSION_DENIED, FAILED_PRECONDITION and "
                            "ABORTED.",
                            {}),
              IsEmpty());
}

TEST(ExtractErrorsTest, SemicolonPartsWithTheirOwnCodesAreSeparate) {
  const std::vector<ErrorRow> rows = ExtractErrors(
      "Errors: INVALID_ARGUMENT for bad fields; NOT_FOUND (reason "
      "X_NOT_FOUND) for unknown things.",
      {});
  ASSERT_THAT(rows, ElementsAre(Error("INVALID_ARGUMENT", ""),
                                Error("NOT_FOUND", "X_NOT_FOUND")));
  EXPECT_EQ(rows[0].when, "Errors: INVALID_ARGUMENT for bad fields");
  // A part without a code keeps the sentence whole.
  const std::vector<ErrorRow> whole = ExtractErrors(
      "It must be registered; else PERMISSION_DENIED (reason UNKNOWN_X).", {});
  ASSERT_THAT(whole, ElementsAre(Error("PERMISSION_DENIED", "UNKNOWN_X")));
  EXPECT_EQ(whole[0].when,
            "It must be registered; else PERMISSION_DENIED (reason "
            "UNKNOWN_X).");
}

TEST(ExtractErrorsTest, ReasonListWithoutCode) {
  EXPECT_THAT(
      ExtractErrors("Reasons: COURSE_FULL, NO_ENTITLEMENT.", {}),
      ElementsAre(Error("", "COURSE_FULL"), Error("", "NO_ENTITLEMENT")));
  // An audit reason in passing is not an error.
  EXPECT_THAT(ExtractErrors("Audited with reason MATCH_ONLY.", {}), IsEmpty());
}

// A file lotse/demo/v1/demo.proto:
//   // Demo service.                       (line 5)
//   service DemoService {
//     // Gets a thing. NOT_FOUND (reason THING_NOT_FOUND) if unknown.
//     rpc GetThing(Thing) returns (Thing);       (line 8)
//     rpc DropThing(Thing) returns (Thing);      (line 9, no comment)
//   }
//   // A thing.
//   message Thing {                        (line 12)
//     // Its name.
//     string name = 1;                     (line 14)
//     int32 size = 2;  // trailing only    (line 15)
//     Color color = 3;                     (line 16, no comment)
//   }
//   enum Color {                           (line 18, no comment)
//     // Not set.
//     COLOR_UNSPECIFIED = 0;               (line 20)
//     COLOR_RED = 1;                       (line 21, no comment)
//   }
// and lotse/bench/v1/bench.proto with an uncommented message, which is no
// contract.
constexpr char kDemoSet[] = R"pb(
  file {
    name: "lotse/demo/v1/demo.proto"
    package: "lotse.demo.v1"
    syntax: "proto3"
    message_type {
      name: "Thing"
      field {
        name: "name"
        number: 1
        type: TYPE_STRING
        label: LABEL_OPTIONAL
        json_name: "name"
      }
      field {
        name: "size"
        number: 2
        type: TYPE_INT32
        label: LABEL_OPTIONAL
        json_name: "size"
      }
      field {
        name: "color"
        number: 3
        type: TYPE_ENUM
        type_name: ".lotse.demo.v1.Color"
        label: LABEL_OPTIONAL
        json_name: "color"
      }
    }
    enum_type {
      name: "Color"
      value { name: "COLOR_UNSPECIFIED" number: 0 }
      value { name: "COLOR_RED" number: 1 }
    }
    service {
      name: "DemoService"
      method {
        name: "GetThing"
        input_type: ".lotse.demo.v1.Thing"
        output_type: ".lotse.demo.v1.Thing"
      }
      method {
        name: "DropThing"
        input_type: ".lotse.demo.v1.Thing"
        output_type: ".lotse.demo.v1.Thing"
      }
    }
    source_code_info {
      location {
        path: [ 6, 0 ]
        span: [ 5, 0, 10, 1 ]
        leading_comments: " Demo service.\n"
      }
      location {
        path: [ 6, 0, 2, 0 ]
        span: [ 7, 2, 38 ]
        leading_comments: " Gets a thing. NOT_FOUND (reason THING_NOT_FOUND) if unknown.\n"
      }
      location {
        path: [ 6, 0, 2, 1 ]
        span: [ 8, 2, 38 ]
      }
      location {
        path: [ 4, 0 ]
        span: [ 11, 0, 16, 1 ]
        leading_comments: " A thing.\n"
      }
      location {
        path: [ 4, 0, 2, 0 ]
        span: [ 13, 2, 18 ]
        leading_comments: " Its name.\n"
      }
      location {
        path: [ 4, 0, 2, 1 ]
        span: [ 14, 2, 17 ]
        trailing_comments: " trailing only\n"
      }
      location {
        path: [ 4, 0, 2, 2 ]
        span: [ 15, 2, 18 ]
      }
      location {
        path: [ 5, 0 ]
        span: [ 17, 0, 21, 1 ]
      }
      location {
        path: [ 5, 0, 2, 0 ]
        span: [ 19, 2, 24 ]
        leading_comments: " Not set.\n"
      }
      location {
        path: [ 5, 0, 2, 1 ]
        span: [ 20, 2, 16 ]
      }
    }
  }
  file {
    name: "lotse/bench/v1/bench.proto"
    package: "lotse.bench.v1"
    syntax: "proto3"
    message_type { name: "Echo" }
    source_code_info {
      location {
        path: [ 4, 0 ]
        span: [ 3, 0, 10 ]
      }
    }
  }
)pb";

google::protobuf::FileDescriptorSet DemoSet() {
  google::protobuf::FileDescriptorSet set;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(kDemoSet, &set));
  return set;
}

TEST(FindMissingCommentsTest, ListsEveryElementWithoutLeadingComment) {
  auto missing = FindMissingComments(DemoSet());
  ASSERT_TRUE(missing.ok()) << missing.status();
  std::vector<std::string> found;
  for (const MissingComment& m : *missing) {
    found.push_back(
        absl::StrCat(m.file, ":", m.line, " ", m.kind, " ", m.full_name));
  }
  // A trailing comment is not enough; lotse/bench is not checked.
  EXPECT_THAT(found, ElementsAre("lotse/demo/v1/demo.proto:9 rpc "
                                 "lotse.demo.v1.DemoService.DropThing",
                                 "lotse/demo/v1/demo.proto:15 field "
                                 "lotse.demo.v1.Thing.size",
                                 "lotse/demo/v1/demo.proto:16 field "
                                 "lotse.demo.v1.Thing.color",
                                 "lotse/demo/v1/demo.proto:18 enum "
                                 "lotse.demo.v1.Color",
                                 "lotse/demo/v1/demo.proto:21 enum value "
                                 "lotse.demo.v1.COLOR_RED"));
}

TEST(FindMissingCommentsTest, RefusesASetWithUnresolvedTypes) {
  google::protobuf::FileDescriptorSet set = DemoSet();
  set.mutable_file(0)->mutable_message_type(0)->mutable_field(2)->set_type_name(
      ".lotse.demo.v1.Unknown");
  EXPECT_FALSE(FindMissingComments(set).ok());
  EXPECT_FALSE(RenderReference(set).ok());
}

TEST(RenderReferenceTest, OnePagePerPackageAndAnIndex) {
  auto pages = RenderReference(DemoSet());
  ASSERT_TRUE(pages.ok()) << pages.status();
  ASSERT_EQ(pages->size(), 2u);
  ASSERT_EQ(pages->count("index.md"), 1u);
  ASSERT_EQ(pages->count("demo.md"), 1u);
  const std::string& page = pages->at("demo.md");
  // The RPC with its signature, comment and error table.
  EXPECT_THAT(page, HasSubstr("<a id=\"lotse.demo.v1.DemoService.GetThing\">"));
  EXPECT_THAT(page, HasSubstr("rpc GetThing(lotse.demo.v1.Thing) returns "
                              "(lotse.demo.v1.Thing);"));
  EXPECT_THAT(page, HasSubstr("| `NOT_FOUND` | `THING_NOT_FOUND` | "
                              "NOT_FOUND (reason THING_NOT_FOUND) if "
                              "unknown. |"));
  // Fields with number, linked type and comment; enum values likewise.
  EXPECT_THAT(page, HasSubstr("`name` | 1 | `string` | Its name. |"));
  EXPECT_THAT(page,
              HasSubstr("`color` | 3 | [`Color`](#lotse.demo.v1.Color) |"));
  EXPECT_THAT(page, HasSubstr("`COLOR_UNSPECIFIED` | 0 | Not set. |"));
  // The bench package is no contract.
  EXPECT_THAT(page, Not(HasSubstr("Echo")));
  EXPECT_THAT(pages->at("index.md"), Not(HasSubstr("bench")));
  EXPECT_THAT(
      pages->at("index.md"),
      HasSubstr("[`lotse.demo.v1.Thing`](demo.md#lotse.demo.v1.Thing)"));
}

TEST(RenderReferenceTest, IndentedLinesStayAsWritten) {
  google::protobuf::FileDescriptorSet set = DemoSet();
  // The message's comment: a bullet with its continuation line, then a
  // drawing.
  set.mutable_file(0)
      ->mutable_source_code_info()
      ->mutable_location(3)
      ->set_leading_comments(
          " A thing.\n - a bullet\n   continued\n\n States:\n   NEW -> OLD\n"
          "   OLD is final.\n");
  auto pages = RenderReference(set);
  ASSERT_TRUE(pages.ok()) << pages.status();
  EXPECT_THAT(pages->at("demo.md"),
              HasSubstr("A thing.\n- a bullet\n  continued\n\nStates:\n\n"
                        "```text\n  NEW -> OLD\n  OLD is final.\n```\n"));
}

TEST(RenderReferenceTest, NamesInCommentsAreLinks) {
  google::protobuf::FileDescriptorSet set = DemoSet();
  set.mutable_file(0)
      ->mutable_source_code_info()
      ->mutable_location(2)
      ->set_leading_comments(
          " Like GetThing, sets Thing.name; see lotse.demo.v1.Color and\n"
          " `GetThing`.\n");
  auto pages = RenderReference(set);
  ASSERT_TRUE(pages.ok()) << pages.status();
  EXPECT_THAT(pages->at("demo.md"),
              HasSubstr("Like [GetThing](#lotse.demo.v1.DemoService.GetThing), "
                        "sets [Thing.name](#lotse.demo.v1.Thing.name); see "
                        "[lotse.demo.v1.Color](#lotse.demo.v1.Color) and\n"
                        "`GetThing`."));
}

TEST(RenderReferenceTest, SameInputSamePages) {
  auto first = RenderReference(DemoSet());
  auto second = RenderReference(DemoSet());
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
}

}  // namespace
}  // namespace lotse::api_reference
