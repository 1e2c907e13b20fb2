// lotse_api_reference: writes or checks the API reference (docs/api) from a
// FileDescriptorSet of proto/lotse (see api_reference.h).
//
//   --descriptor_set=FILE   protoc --include_source_info --include_imports
//                           --descriptor_set_out output (required)
//   --out_dir=DIR           write the pages there; other *.md files in DIR
//                           are removed, so DIR holds exactly the reference
//   --check_dir=DIR         compare the pages with DIR's; exit 1 listing
//                           every page that is missing, differs or is extra
//   --require_comments      exit 1 listing every service, RPC, message,
//                           field, enum and enum value without a leading
//                           comment
// Exit status: 0 when everything asked for succeeded, 1 when a check
// failed, 2 on bad usage or unreadable input.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.pb.h"
#include "tools/api_reference/api_reference.h"

ABSL_FLAG(std::string, descriptor_set, "", "FileDescriptorSet to document");
ABSL_FLAG(std::string, out_dir, "", "Directory to write the pages to");
ABSL_FLAG(std::string, check_dir, "", "Directory whose pages must match");
ABSL_FLAG(bool, require_comments, false,
          "Fail when an element lacks a leading comment");

namespace {

constexpr const char* kRegenerate =
    "cmake --build --preset ci --target api_reference_update";

bool ReadFile(const std::filesystem::path& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

std::set<std::string> MarkdownFiles(const std::filesystem::path& dir) {
  std::set<std::string> out;
  if (!std::filesystem::is_directory(dir)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".md") {
      out.insert(entry.path().filename().string());
    }
  }
  return out;
}

// First line where two texts differ, 1-based.
int FirstDifferentLine(const std::string& a, const std::string& b) {
  std::vector<std::string> la = absl::StrSplit(a, '\n');
  std::vector<std::string> lb = absl::StrSplit(b, '\n');
  size_t i = 0;
  while (i < la.size() && i < lb.size() && la[i] == lb[i]) ++i;
  return static_cast<int>(i) + 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string set_path = absl::GetFlag(FLAGS_descriptor_set);
  if (set_path.empty()) {
    std::cerr << "--descriptor_set is required\n";
    return 2;
  }
  std::string bytes;
  google::protobuf::FileDescriptorSet set;
  if (!ReadFile(set_path, &bytes) || !set.ParseFromString(bytes)) {
    std::cerr << "cannot read a FileDescriptorSet from " << set_path << "\n";
    return 2;
  }
  int status = 0;

  if (absl::GetFlag(FLAGS_require_comments)) {
    auto missing = lotse::api_reference::FindMissingComments(set);
    if (!missing.ok()) {
      std::cerr << missing.status() << "\n";
      return 2;
    }
    if (!missing->empty()) {
      std::cerr << missing->size()
                << " elements of proto/lotse have no leading comment (write "
                   "one on the lines right above each: what it means, its "
                   "unit or format, who sets it):\n";
      for (const auto& m : *missing) {
        std::cerr << "  proto/" << m.file << ":" << m.line << ": " << m.kind
                  << " " << m.full_name << "\n";
      }
      status = 1;
    }
  }

  const std::string out_dir = absl::GetFlag(FLAGS_out_dir);
  const std::string check_dir = absl::GetFlag(FLAGS_check_dir);
  if (out_dir.empty() && check_dir.empty()) return status;
  auto pages = lotse::api_reference::RenderReference(set);
  if (!pages.ok()) {
    std::cerr << pages.status() << "\n";
    return 2;
  }

  if (!out_dir.empty()) {
    const std::filesystem::path dir(out_dir);
    std::filesystem::create_directories(dir);
    for (const std::string& name : MarkdownFiles(dir)) {
      if (pages->count(name) == 0) std::filesystem::remove(dir / name);
    }
    for (const auto& [name, text] : *pages) {
      std::string old;
      if (ReadFile(dir / name, &old) && old == text) continue;
      std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
      out << text;
      if (!out) {
        std::cerr << "cannot write " << (dir / name).string() << "\n";
        return 2;
      }
    }
  }

  if (!check_dir.empty()) {
    const std::filesystem::path dir(check_dir);
    std::vector<std::string> problems;
    for (const auto& [name, text] : *pages) {
      std::string committed;
      if (!ReadFile(dir / name, &committed)) {
        problems.push_back(name + ": missing");
      } else if (committed != text) {
        problems.push_back(name + ": differs from line " +
                           std::to_string(FirstDifferentLine(committed, text)));
      }
    }
    for (const std::string& name : MarkdownFiles(dir)) {
      if (pages->count(name) == 0) {
        problems.push_back(name + ": no longer generated (remove it)");
      }
    }
    if (!problems.empty()) {
      std::cerr
          << "The API reference in " << check_dir
          << " is stale: it does not match the comments in proto/lotse.\n";
      for (const std::string& p : problems) std::cerr << "  " << p << "\n";
      std::cerr << "Regenerate it and commit the result:\n  " << kRegenerate
                << "\n";
      status = 1;
    }
  }
  return status;
}
