// A lotsectl verb ("persons create") declared as data: which RPC it calls,
// which flag sets which request field, which response fields make the
// table. Most verbs need nothing else; the few that do more (choose the RPC
// by a flag, stream) bring a handler of their own.
//
// A declared verb runs so: the request is built from the flags (fixed
// values first), a request_id field left empty gets --request_id or a
// fresh random key (so a retried command line with the same --request_id
// creates nothing twice), an etag field left empty is read from the
// resource first when the verb names a method for that (etag_from), the
// call goes out, the response is printed. A refused call prints its status
// details and exits 1.
#ifndef LOTSE_TOOLS_LOTSECTL_INTERNAL_VERB_H_
#define LOTSE_TOOLS_LOTSECTL_INTERNAL_VERB_H_

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "tools/lotsectl/internal/client.h"
#include "tools/lotsectl/internal/options.h"
#include "tools/lotsectl/internal/output.h"

namespace lotse::lotsectl {

// A flag of a verb.
struct VerbFlag {
  std::string name = "";  // "given-names"
  // Request field it sets (fields.h); empty when the handler reads it.
  std::string path = "";
  std::string help = "";
  bool required = false;
  // May be given as a bare word instead, in declaration order.
  bool positional = false;
  bool takes_value = true;
};

struct Verb;
class Invocation;
using Handler = std::function<int(const Verb&, Invocation&)>;

struct Verb {
  std::string group = "";    // "persons"
  std::string name = "";     // "create"
  std::string summary = "";  // one line for --help
  std::string service = "";  // the process: identity, cases, ...
  std::string method = "";   // "CreatePerson" (see FindMethod)
  std::string purpose = "";  // sent unless --purpose names another
  std::vector<VerbFlag> flags = {};
  // Request fields every call of the verb sets, before the flags.
  std::vector<std::pair<std::string, std::string>> fixed = {};
  TableSpec table = {};
  // A Get method of the same service taking {name}: when the request has
  // an empty etag, the resource's current etag is read with it first.
  std::string etag_from = "";
  Handler handler = nullptr;  // empty: RunDeclared
};

// One run of a verb: its arguments, the global options, the streams, and
// the client (connected on first use).
class Invocation {
 public:
  Invocation(const GlobalOptions& options, VerbArgs args, std::ostream& out,
             std::ostream& err)
      : options_(options), args_(std::move(args)), out_(out), err_(err) {}

  const GlobalOptions& options() const { return options_; }
  const VerbArgs& args() const { return args_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  // The last value of flag `name`, or `fallback`.
  std::string Flag(const std::string& name,
                   const std::string& fallback = "") const;
  bool Has(const std::string& name) const {
    return args_.flags.count(name) > 0;
  }
  // The client, or the reason it cannot be made (certificates).
  absl::StatusOr<Client*> client();

 private:
  const GlobalOptions& options_;
  VerbArgs args_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<Client> client_;
};

// The request `verb` describes for these arguments: fixed values, then
// each flag's values in order. INVALID_ARGUMENT when a value does not
// parse.
absl::Status FillRequest(const Verb& verb, const VerbArgs& args,
                         google::protobuf::Message* request);

// Sends `request` to `method` the declared way (request_id, etag_from,
// --all) and prints the response as `verb.table` says. Returns the exit
// code.
int CallAndPrint(const Verb& verb, Invocation& run,
                 const google::protobuf::MethodDescriptor& method,
                 google::protobuf::Message& request);

// The flag every listing verb gets (AllVerbs adds it): CallAndPrint then
// follows next_page_token to the end and prints the pages as one answer.
inline constexpr char kAllFlag[] = "all";

// The whole declared run: FillRequest, then CallAndPrint.
int RunDeclared(const Verb& verb, Invocation& run);

// A random idempotency key ("lotsectl-" and 32 hex digits).
std::string NewRequestId();

// Every verb lotsectl has, in the order --help lists them.
const std::vector<Verb>& AllVerbs();

// The verb groups, one file each.
std::vector<Verb> AgencyVerbs();
std::vector<Verb> PersonVerbs();
std::vector<Verb> CaseVerbs();
std::vector<Verb> CourseVerbs();
std::vector<Verb> OfferVerbs();
std::vector<Verb> AuditVerbs();
std::vector<Verb> LifecycleVerbs();

}  // namespace lotse::lotsectl

#endif  // LOTSE_TOOLS_LOTSECTL_INTERNAL_VERB_H_
