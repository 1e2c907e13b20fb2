// The API reference of Lotse's contracts, generated from the comments in
// proto/lotse: one Markdown page per package (the four services, audit, the
// shared types and the event envelope) and an index page.
//
// Input is a FileDescriptorSet with source info, as written by
// `protoc --include_source_info --include_imports --descriptor_set_out`.
// Only files under "lotse/" are documented, except "lotse/bench/" (the
// benchmark echo service is no contract). Imported files outside it
// (google.protobuf, google.rpc) are referred to by name only.
//
// Errors per RPC are read from the comments, in the convention the
// contracts use and tests/proto/contract_reasons_test.cc checks: a status
// code name followed by its reasons, "PERMISSION_DENIED (reason
// NO_RELATION)", "ALREADY_EXISTS ACTIVE_BOOKING_EXISTS", "FAILED_PRECONDITION,
// reasons A or B", or a bare code, "NOT_FOUND if unknown". Each clause of the
// comment (a sentence, or part of one up to a semicolon) that names a code
// becomes one row per (code, reason) with that clause as its meaning.
// Clauses of the service comment that name an RPC go to that RPC; the
// others are the errors every RPC of the service can return.
//
// Names of documented elements in comments become links to their entries
// (full names; CamelCase message, enum, service and RPC names; dotted field
// names such as "Person.merged_names"). Indented lines that do not continue
// a bullet, such as state-machine drawings, are kept as written.
//
// Output is deterministic: the same input gives byte-identical pages, so
// the committed pages can be compared with freshly generated ones.
#ifndef LOTSE_TOOLS_API_REFERENCE_API_REFERENCE_H_
#define LOTSE_TOOLS_API_REFERENCE_API_REFERENCE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.pb.h"

namespace lotse::api_reference {

// One error an RPC can return, as its comment documents it.
struct ErrorRow {
  std::string code;    // gRPC status code name; empty if the clause has none
  std::string reason;  // google.rpc.ErrorInfo reason; empty if none is named
  std::string when;    // the clause of the comment that documents it
  bool operator==(const ErrorRow& o) const {
    return code == o.code && reason == o.reason && when == o.when;
  }
};

// The errors a comment documents, in the order it names them, without
// duplicates. `enum_values` are the names of the contracts' enum values: a
// word after a code that names one ("CANCELLED ATTENDING", two booking
// states) is no reason.
std::vector<ErrorRow> ExtractErrors(
    absl::string_view comment, const std::vector<std::string>& enum_values);

// An element of the documented files without a leading comment.
struct MissingComment {
  std::string file;  // e.g. "lotse/identity/v1/agency.proto"
  int line = 0;      // 1-based
  std::string
      kind;  // "service", "rpc", "message", "field", "enum", "enum value"
  std::string full_name;
};

// Every service, RPC, message, field, enum and enum value of the documented
// files that has no leading comment (or only whitespace), in file order.
// Map entry messages (generated for map fields) are exempt. Fails if the set
// does not form a valid descriptor pool.
absl::StatusOr<std::vector<MissingComment>> FindMissingComments(
    const google::protobuf::FileDescriptorSet& set);

// The reference pages: file name ("index.md", "identity.md", ...) to
// Markdown text. Fails if the set does not form a valid descriptor pool.
absl::StatusOr<std::map<std::string, std::string>> RenderReference(
    const google::protobuf::FileDescriptorSet& set);

}  // namespace lotse::api_reference

#endif  // LOTSE_TOOLS_API_REFERENCE_API_REFERENCE_H_
