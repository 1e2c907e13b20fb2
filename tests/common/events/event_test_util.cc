#include "tests/common/events/event_test_util.h"

#include <cstdlib>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/events/inbox.h"
#include "common/storage/migrations.h"
#include "google/protobuf/wrappers.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/channel_arguments.h"

namespace lotse::events::testutil {

using lotse::events::v1::Event;

Event MakeEvent(const std::string& key, int n) {
  Event e;
  e.set_ordering_key(key);
  e.set_source("test");
  google::protobuf::StringValue v;
  v.set_value(absl::StrCat(key, "#", n));
  e.mutable_payload()->PackFrom(v);
  return e;
}

std::string PayloadText(const Event& event) {
  google::protobuf::StringValue v;
  if (!event.payload().UnpackTo(&v)) return "<bad payload>";
  return v.value();
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

absl::Status FakeSender::Send(const Event& event, absl::Time deadline) {
  std::function<absl::Status(const Event&)> respond;
  {
    absl::MutexLock lock(&mu_);
    attempts_.push_back(PayloadText(event));
    respond = respond_;
  }
  absl::Status status = respond ? respond(event) : absl::OkStatus();
  if (status.ok()) {
    absl::MutexLock lock(&mu_);
    delivered_.push_back(PayloadText(event));
  }
  return status;
}

void FakeSender::set_respond(std::function<absl::Status(const Event&)> f) {
  absl::MutexLock lock(&mu_);
  respond_ = std::move(f);
}

std::vector<std::string> FakeSender::attempts() {
  absl::MutexLock lock(&mu_);
  return attempts_;
}

std::vector<std::string> FakeSender::delivered() {
  absl::MutexLock lock(&mu_);
  return delivered_;
}

Receiver::Receiver(storage::Database& db) : db_(db) {
  std::vector<storage::Migration> migrations = InboxMigrations();
  migrations.push_back({"test.events.0001_applied", R"sql(
CREATE TABLE applied (
  id {{AUTO_ID}},
  event_id TEXT NOT NULL,
  value TEXT NOT NULL
);
)sql"});
  absl::Status s = storage::ApplyMigrations(db_, migrations);
  if (!s.ok()) std::abort();
  sink_ = std::make_unique<EventSinkService>(
      db_, [this](storage::Transaction& tx, const Event& e) -> absl::Status {
        std::function<absl::Status(const Event&)> fault;
        {
          absl::MutexLock lock(&mu_);
          ++calls_;
          fault = fault_;
        }
        if (fault) {
          if (absl::Status f = fault(e); !f.ok()) return f;
        }
        return tx
            .Execute(
                "INSERT INTO applied (event_id, value) VALUES ($1, $2)",
                {storage::Value(e.event_id()), storage::Value(PayloadText(e))})
            .status();
      });
}

Receiver::~Receiver() { Stop(); }

absl::Status Receiver::Start(int port) {
  grpc::ServerBuilder builder;
  int selected = 0;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port),
                           grpc::InsecureServerCredentials(), &selected);
  builder.RegisterService(sink_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || selected == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", port));
  }
  port_ = selected;
  return absl::OkStatus();
}

void Receiver::Stop() {
  if (server_ == nullptr) return;
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Milliseconds(100)));
  server_->Wait();
  server_.reset();
}

std::string Receiver::target() const {
  return absl::StrCat("127.0.0.1:", port_);
}

void Receiver::set_fault(std::function<absl::Status(const Event&)> f) {
  absl::MutexLock lock(&mu_);
  fault_ = std::move(f);
}

int Receiver::handler_calls() {
  absl::MutexLock lock(&mu_);
  return calls_;
}

std::vector<std::string> Receiver::Applied() {
  std::vector<std::string> out;
  auto tx = db_.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return out;
  auto rows = (*tx)->Query("SELECT value FROM applied ORDER BY id");
  if (!rows.ok()) return out;
  for (const storage::Row& row : *rows) out.push_back(*row.GetText(0));
  return out;
}

std::shared_ptr<grpc::Channel> FastReconnectChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   args);
}

std::string CheckOncePerKeyInOrder(const std::vector<std::string>& applied,
                                   const std::map<std::string, int>& counts) {
  std::map<std::string, int> next;  // per key: the n expected next
  for (const std::string& value : applied) {
    std::vector<std::string> parts = absl::StrSplit(value, '#');
    int n = -1;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &n)) {
      return absl::StrCat("unexpected value ", value);
    }
    int& want = next[parts[0]];
    if (n < want) return absl::StrCat(value, " applied twice or late");
    if (n > want) {
      return absl::StrCat(value, " applied before ", parts[0], "#", want);
    }
    ++want;
  }
  for (const auto& [key, count] : counts) {
    if (next[key] != count) {
      return absl::StrCat(key, ": ", next[key], " of ", count, " applied");
    }
  }
  if (next.size() != counts.size()) return "events of unexpected keys";
  return "";
}

}  // namespace lotse::events::testutil
