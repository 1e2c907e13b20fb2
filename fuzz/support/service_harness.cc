#include "fuzz/support/service_harness.h"

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/errors/status.h"
#include "fuzz/support/service_input.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/time_util.h"
#include "lotse/events/v1/events.pb.h"
#include "tests/support/service_server_fixture.h"

namespace lotse::fuzz {
namespace {

[[noreturn]] void Fail(absl::string_view what, const absl::Status& status) {
  std::fprintf(stderr, "fuzz harness: %s: %s\n", std::string(what).c_str(),
               status.ToString().c_str());
  std::abort();
}

// The temporary directories of the harnesses of this process, removed at
// exit (libFuzzer ends the process with exit()).
std::vector<std::string>& TemporaryDirs() {
  static auto* const dirs = new std::vector<std::string>;
  return *dirs;
}

void RemoveTemporaryDirs() {
  for (const std::string& dir : TemporaryDirs()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
}

std::string MakeTemporaryDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(
      tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/lotse-fuzz-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    Fail("cannot create a temporary directory", absl::InternalError(pattern));
  }
  if (TemporaryDirs().empty()) std::atexit(RemoveTemporaryDirs);
  TemporaryDirs().push_back(pattern);
  return pattern;
}

// The checks EventSinkService.DeliverEvent makes before the inbox, then
// the inbox with the service's handler.
absl::Status DeliverEvent(storage::Database& db, const events::ApplyFn& apply,
                          absl::string_view bytes) {
  lotse::events::v1::Event event;
  if (!event.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("not a lotse.events.v1.Event");
  }
  if (event.event_id().empty()) {
    return absl::InvalidArgumentError("event.event_id is required");
  }
  if (!event.has_payload() || event.payload().type_url().empty()) {
    return absl::InvalidArgumentError("event.payload is required");
  }
  return events::ApplyEventOnce(db, event, apply).status();
}

}  // namespace

ServiceHarness::ServiceHarness(
    const std::vector<storage::Migration>& migrations,
    const std::string& error_domain)
    : dir_(MakeTemporaryDir()) {
  // Protobuf logs every string field that is not UTF-8 when parsing; the
  // fuzzer sends little else, and the edge reports them to the client.
  google::protobuf::SetLogHandler(nullptr);
  absl::StatusOr<std::unique_ptr<storage::Database>> db =
      storage::OpenDatabase(absl::StrCat("sqlite:", dir_, "/service.db"),
                            /*pool_size=*/2);
  if (!db.ok()) Fail("cannot open the database", db.status());
  db_ = *std::move(db);
  if (absl::Status s = storage::ApplyMigrations(*db_, migrations); !s.ok()) {
    Fail("cannot migrate the database", s);
  }
  pool_ = std::make_unique<server::WorkerPool>(/*threads=*/1,
                                               /*max_queued=*/16);
  runtime_.database = db_.get();
  runtime_.env.pool = pool_.get();
  runtime_.env.error_domain = error_domain;
  runtime_.retention = &retention_;
}

ServiceHarness::~ServiceHarness() = default;

void RunServiceInput(const server::UnaryService& service, storage::Database& db,
                     const events::ApplyFn& apply, const uint8_t* data,
                     size_t size) {
  const std::vector<std::string> calls = FuzzCalls(service.descriptor());
  const ServiceInput input = DecodeServiceInput(calls, data, size);
  if (input.call.empty()) return;

  absl::Status status;
  if (input.call == kDeliverEvent) {
    // Only Lotse services may deliver (service_main.cc authorises by
    // certificate), so the caller byte plays no part.
    status = DeliverEvent(db, apply, input.payload);
  } else {
    server::RequestContext rc;
    rc.caller = *input.caller;
    rc.actor = "fuzz-actor";
    rc.purpose = "case-management";
    rc.deadline = absl::Now() + absl::Seconds(30);
    std::string response;
    status = service.CallInProcess(input.call, std::move(rc), input.payload,
                                   &response);
  }

  if (status.code() == absl::StatusCode::kInternal ||
      status.code() == absl::StatusCode::kUnknown) {
    Fail(
        absl::StrCat(service.descriptor().name(), ".", input.call, " answered"),
        status);
  }
  // The edge maps every refusal; the mapping must not lose its code.
  const grpc::Status mapped =
      ToGrpcStatus(status, service.descriptor().full_name());
  if (static_cast<int>(mapped.error_code()) !=
      static_cast<int>(status.code())) {
    Fail(absl::StrCat(service.descriptor().name(), ".", input.call,
                      " changed code at the edge"),
         status);
  }
}

void RegisterDevAgenciesOrAbort(storage::Database& db,
                                const events::ApplyFn& apply,
                                const std::vector<std::string>& ids) {
  int version = 0;
  const absl::Status registered =
      testing::RegisterDevAgencies(ids, [&](identity::v1::Agency agency) {
        *agency.mutable_update_time() =
            google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
                ++version);
        return events::ApplyEventOnce(
                   db,
                   testing::AgencyEventOf(
                       agency, absl::StrCat("agency-event-", version)),
                   apply)
            .status();
      });
  if (!registered.ok()) Fail("registering the dev agencies", registered);
}

}  // namespace lotse::fuzz
