// What lotsectl prints: results on stdout as a table for people or as
// protobuf JSON for scripts, and a failed call on stderr with its status
// code, reason (google.rpc.ErrorInfo) and every field violation
// (google.rpc.BadRequest).
#ifndef LOTSE_TOOLS_LOTSECTL_INTERNAL_OUTPUT_H_
#define LOTSE_TOOLS_LOTSECTL_INTERNAL_OUTPUT_H_

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"
#include "tools/lotsectl/internal/options.h"

namespace lotse::lotsectl {

// One table column: its header and the path of its field in a row message
// (see fields.h).
struct Column {
  std::string header;
  std::string path;
};

// How a response shows as a table.
struct TableSpec {
  // The repeated message field of the response that holds the rows; empty
  // when the response is one record.
  std::string rows = "";
  // The columns. For one record, empty means every set field of it.
  std::vector<Column> columns = {};
  // Called after the table (table output only) to print what its cells
  // cannot hold, e.g. one line per element of a list inside a row. May be
  // empty.
  std::function<void(const google::protobuf::Message& response,
                     std::ostream& out)>
      after = nullptr;
};

// The protobuf JSON of `message` (proto field names, enum names); on one
// line when `multiline` is false.
std::string JsonOf(const google::protobuf::Message& message, bool multiline);

// Prints `response` as `spec` says (table), as JSON, or as names: the
// "name" field of a record (else its first column), the first column of
// each row of a list. A record shows one
// "field: value" line per column that has a value (unset and UNSPECIFIED
// ones are left out). A list shows its rows, then the response's other
// set fields, and a next_page_token as a "more: --page-token ..." hint on
// `err`. A table is followed by what spec.after prints.
void PrintResponse(const google::protobuf::Message& response,
                   const TableSpec& spec, OutputFormat format,
                   std::ostream& out, std::ostream& err);

// Aligned columns with a header line; line breaks in cells show as spaces
// and cells longer than `max_cell` characters are cut (0: never).
std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows,
                        size_t max_cell = 0);

// "INVALID_ARGUMENT" for grpc::StatusCode::INVALID_ARGUMENT.
std::string CodeName(grpc::StatusCode code);

// Prints a failed call on `err`: with a table, "error: CODE: message",
// then "  reason: R (domain)", metadata, one "  field F: description" line
// per violation and "  retry after: D" when the server advises a delay;
// with JSON, one object {"code", "message", "error_info", "bad_request",
// "retry_info"} (the last three only when present, as google.rpc JSON).
// Returns the exit code: kExitConnection for UNAVAILABLE, kExitRpcError
// otherwise.
int ReportRpcError(const grpc::Status& status, OutputFormat format,
                   std::ostream& err);

// Prints a usage problem ("lotsectl: ..." and a hint at --help) and
// returns kExitUsage.
int ReportUsage(const absl::Status& status, std::ostream& err);

}  // namespace lotse::lotsectl

#endif  // LOTSE_TOOLS_LOTSECTL_INTERNAL_OUTPUT_H_
