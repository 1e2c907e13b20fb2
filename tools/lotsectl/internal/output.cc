#include "tools/lotsectl/internal/output.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "tools/lotsectl/internal/exit_codes.h"
#include "tools/lotsectl/internal/fields.h"

namespace lotse::lotsectl {
namespace {

namespace pb = ::google::protobuf;

std::string Cell(std::string text, size_t max_cell) {
  text = absl::StrReplaceAll(text, {{"\n", " "}, {"\t", " "}});
  if (max_cell > 3 && text.size() > max_cell) {
    text = text.substr(0, max_cell - 3) + "...";
  }
  return text;
}

// One record as "field: value" lines, its columns or every set field.
void PrintRecord(const pb::Message& record, const std::vector<Column>& columns,
                 std::ostream& out) {
  std::vector<std::pair<std::string, std::string>> lines;
  if (columns.empty()) {
    std::vector<const pb::FieldDescriptor*> fields;
    record.GetReflection()->ListFields(record, &fields);
    for (const pb::FieldDescriptor* f : fields) {
      lines.emplace_back(f->name(), ValueText(record, *f));
    }
  } else {
    for (const Column& c : columns) {
      absl::StatusOr<std::string> text = FieldText(record, c.path);
      lines.emplace_back(c.header, text.ok() ? *text : "?");
    }
  }
  lines.erase(std::remove_if(lines.begin(), lines.end(),
                             [](const auto& line) {
                               return line.second.empty() ||
                                      line.second == "UNSPECIFIED";
                             }),
              lines.end());
  size_t width = 0;
  for (const auto& [name, value] : lines) width = std::max(width, name.size());
  for (const auto& [name, value] : lines) {
    out << name << ":" << std::string(width - name.size() + 1, ' ') << value
        << "\n";
  }
}

}  // namespace

std::string JsonOf(const pb::Message& message, bool multiline) {
  std::string json;
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.add_whitespace = multiline;
  if (!pb::util::MessageToJsonString(message, &json, options).ok()) {
    return "{}";
  }
  if (!multiline) {
    json.erase(std::remove(json.begin(), json.end(), '\n'), json.end());
  }
  return json;
}

std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows,
                        size_t max_cell) {
  std::vector<size_t> widths;
  for (const std::string& h : headers) widths.push_back(h.size());
  std::vector<std::vector<std::string>> cells;
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (size_t i = 0; i < headers.size(); ++i) {
      line.push_back(Cell(i < row.size() ? row[i] : "", max_cell));
      widths[i] = std::max(widths[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  std::string text;
  auto append_line = [&](const std::vector<std::string>& line) {
    std::string l;
    for (size_t i = 0; i < line.size(); ++i) {
      absl::StrAppend(&l, line[i]);
      if (i + 1 < line.size()) {
        absl::StrAppend(&l, std::string(widths[i] - line[i].size() + 2, ' '));
      }
    }
    absl::StrAppend(&text, absl::StripTrailingAsciiWhitespace(l), "\n");
  };
  append_line(headers);
  for (const auto& line : cells) append_line(line);
  return text;
}

void PrintResponse(const pb::Message& response, const TableSpec& spec,
                   OutputFormat format, std::ostream& out, std::ostream& err) {
  if (format == OutputFormat::kJson) {
    out << JsonOf(response, true) << "\n";
    return;
  }
  const pb::Descriptor* type = response.GetDescriptor();
  const pb::FieldDescriptor* rows =
      spec.rows.empty() ? nullptr : type->FindFieldByName(spec.rows);
  if (format == OutputFormat::kName) {
    const std::string first =
        spec.columns.empty() ? "name" : spec.columns.front().path;
    if (rows == nullptr || !rows->is_repeated() ||
        rows->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      absl::StatusOr<std::string> name = FieldText(response, "name");
      if (!name.ok()) name = FieldText(response, first);
      if (name.ok() && !name->empty()) out << *name << "\n";
      return;
    }
    const pb::Reflection* r = response.GetReflection();
    for (int i = 0; i < r->FieldSize(response, rows); ++i) {
      absl::StatusOr<std::string> name =
          FieldText(r->GetRepeatedMessage(response, rows, i), first);
      if (name.ok() && !name->empty()) out << *name << "\n";
    }
    return;
  }
  if (rows == nullptr || !rows->is_repeated() ||
      rows->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) {
    PrintRecord(response, spec.columns, out);
    if (spec.after) spec.after(response, out);
    return;
  }
  const pb::Reflection* r = response.GetReflection();
  const int n = r->FieldSize(response, rows);
  std::vector<std::string> headers;
  for (const Column& c : spec.columns) headers.push_back(c.header);
  std::vector<std::vector<std::string>> lines;
  for (int i = 0; i < n; ++i) {
    const pb::Message& row = r->GetRepeatedMessage(response, rows, i);
    std::vector<std::string> line;
    for (const Column& c : spec.columns) {
      absl::StatusOr<std::string> text = FieldText(row, c.path);
      line.push_back(text.ok() ? *text : "?");
    }
    lines.push_back(std::move(line));
  }
  if (headers.empty()) {
    for (int i = 0; i < n; ++i) {
      PrintRecord(r->GetRepeatedMessage(response, rows, i), {}, out);
      out << "\n";
    }
  } else {
    out << RenderTable(headers, lines);
  }
  // Whatever else the response says (e.g. a threshold), then paging.
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(response, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (f == rows) continue;
    if (f->name() == "next_page_token") {
      err << "more: --page-token " << r->GetString(response, f) << "\n";
    } else {
      out << f->name() << ": " << ValueText(response, *f) << "\n";
    }
  }
  if (spec.after) spec.after(response, out);
}

std::string CodeName(grpc::StatusCode code) {
  static const auto* const kNames =
      new std::map<int, std::string>{{0, "OK"},
                                     {1, "CANCELLED"},
                                     {2, "UNKNOWN"},
                                     {3, "INVALID_ARGUMENT"},
                                     {4, "DEADLINE_EXCEEDED"},
                                     {5, "NOT_FOUND"},
                                     {6, "ALREADY_EXISTS"},
                                     {7, "PERMISSION_DENIED"},
                                     {8, "RESOURCE_EXHAUSTED"},
                                     {9, "FAILED_PRECONDITION"},
                                     {10, "ABORTED"},
                                     {11, "OUT_OF_RANGE"},
                                     {12, "UNIMPLEMENTED"},
                                     {13, "INTERNAL"},
                                     {14, "UNAVAILABLE"},
                                     {15, "DATA_LOSS"},
                                     {16, "UNAUTHENTICATED"}};
  auto it = kNames->find(static_cast<int>(code));
  return it == kNames->end() ? absl::StrCat("CODE_", static_cast<int>(code))
                             : it->second;
}

int ReportRpcError(const grpc::Status& status, OutputFormat format,
                   std::ostream& err) {
  google::rpc::ErrorInfo info;
  google::rpc::BadRequest bad_request;
  google::rpc::RetryInfo retry;
  bool has_retry = false;
  std::vector<std::string> other_details;
  google::rpc::Status details;
  if (!status.error_details().empty() &&
      details.ParseFromString(status.error_details())) {
    for (const pb::Any& any : details.details()) {
      if (any.Is<google::rpc::ErrorInfo>()) {
        any.UnpackTo(&info);
      } else if (any.Is<google::rpc::BadRequest>()) {
        google::rpc::BadRequest more;
        any.UnpackTo(&more);
        bad_request.MergeFrom(more);
      } else if (any.Is<google::rpc::RetryInfo>()) {
        has_retry = any.UnpackTo(&retry);
      } else {
        other_details.push_back(any.type_url());
      }
    }
  }
  if (format == OutputFormat::kJson) {
    // google.rpc.Status would print the code as a number and hide the
    // details in Any; scripts want the names, so a flat object of its own.
    std::string out = absl::StrCat(
        "{\"code\": \"", CodeName(status.error_code()), "\", \"message\": ");
    pb::Value message;
    message.set_string_value(status.error_message());
    absl::StrAppend(&out, JsonOf(message, false));
    if (!info.reason().empty() || !info.domain().empty()) {
      absl::StrAppend(&out, ", \"error_info\": ", JsonOf(info, false));
    }
    if (bad_request.field_violations_size() > 0) {
      absl::StrAppend(&out, ", \"bad_request\": ", JsonOf(bad_request, false));
    }
    if (has_retry) {
      absl::StrAppend(&out, ", \"retry_info\": ", JsonOf(retry, false));
    }
    absl::StrAppend(&out, "}");
    err << out << "\n";
  } else {
    err << "error: " << CodeName(status.error_code()) << ": "
        << status.error_message() << "\n";
    if (!info.reason().empty()) {
      err << "  reason: " << info.reason();
      if (!info.domain().empty()) err << " (" << info.domain() << ")";
      err << "\n";
    }
    for (const auto& [key, value] : info.metadata()) {
      err << "  " << key << ": " << value << "\n";
    }
    for (const auto& v : bad_request.field_violations()) {
      err << "  field " << v.field() << ": " << v.description() << "\n";
    }
    if (has_retry) {
      // The server's advice on when the same call may succeed.
      err << "  retry after: "
          << absl::FormatDuration(
                 absl::Seconds(retry.retry_delay().seconds()) +
                 absl::Nanoseconds(retry.retry_delay().nanos()))
          << "\n";
    }
    for (const std::string& url : other_details) {
      err << "  detail: " << url << "\n";
    }
  }
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ? kExitConnection
                                                              : kExitRpcError;
}

int ReportUsage(const absl::Status& status, std::ostream& err) {
  err << "lotsectl: " << status.message()
      << "\n(see lotsectl --help, or lotsectl <group> <verb> --help)\n";
  return kExitUsage;
}

}  // namespace lotse::lotsectl
