// Shared pieces of the events tests: test events, a recording fake sender
// and a real gRPC receiver (EventSinkService over an inbox) on loopback
// whose failures the test controls.
#ifndef LOTSE_TESTS_COMMON_EVENTS_EVENT_TEST_UTIL_H_
#define LOTSE_TESTS_COMMON_EVENTS_EVENT_TEST_UTIL_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/events/relay.h"
#include "common/events/sink.h"
#include "common/storage/database.h"
#include "grpcpp/server.h"
#include "lotse/events/v1/events.pb.h"

namespace lotse::events::testutil {

// An event for `key` whose payload (a StringValue) reads "<key>#<n>".
lotse::events::v1::Event MakeEvent(const std::string& key, int n);
// "<key>#<n>" back from an event made by MakeEvent.
std::string PayloadText(const lotse::events::v1::Event& event);

// Polls `done` every 10 ms until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& done,
             absl::Duration timeout = absl::Seconds(10));

// An EventSender that records what it is given and answers with `respond`
// (OK when unset). Thread-safe.
class FakeSender : public EventSender {
 public:
  absl::Status Send(const lotse::events::v1::Event& event,
                    absl::Time deadline) override;
  void set_respond(
      std::function<absl::Status(const lotse::events::v1::Event&)> f);
  // PayloadText of every Send call, in call order.
  std::vector<std::string> attempts();
  // PayloadText of the sends answered OK, in call order.
  std::vector<std::string> delivered();

 private:
  absl::Mutex mu_;
  std::function<absl::Status(const lotse::events::v1::Event&)> respond_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::string> attempts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> delivered_ ABSL_GUARDED_BY(mu_);
};

// A receiving service: its own database with the inbox and a table
// `applied` that the handler appends each applied event to, served by a
// real grpc::Server on 127.0.0.1.
class Receiver {
 public:
  // Applies the inbox migration and the test table to `db`.
  explicit Receiver(storage::Database& db);
  ~Receiver();

  // Listens on 127.0.0.1:`port` (0 picks a free one, kept for restarts).
  absl::Status Start(int port = 0);
  // Shuts the server down (calls in flight are cancelled).
  void Stop();
  int port() const { return port_; }
  std::string target() const;

  // Called first in every handler run; a non-OK status fails the call (and
  // rolls back), a sleep simulates a slow receiver.
  void set_fault(
      std::function<absl::Status(const lotse::events::v1::Event&)> f);
  // Counts handler runs (including failed ones and duplicates' none).
  int handler_calls();

  // PayloadText of every applied event, in commit order.
  std::vector<std::string> Applied();

 private:
  storage::Database& db_;
  std::unique_ptr<EventSinkService> sink_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Mutex mu_;
  std::function<absl::Status(const lotse::events::v1::Event&)> fault_
      ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

// A channel to `target` that reconnects quickly after the receiver comes
// back (gRPC's default reconnect backoff starts at a second).
std::shared_ptr<grpc::Channel> FastReconnectChannel(const std::string& target);

// Checks that `applied` holds each of keys[k]#0..counts[k]-1 exactly once and,
// per key, in increasing n. Returns a description of the first violation.
std::string CheckOncePerKeyInOrder(const std::vector<std::string>& applied,
                                   const std::map<std::string, int>& counts);

}  // namespace lotse::events::testutil

#endif  // LOTSE_TESTS_COMMON_EVENTS_EVENT_TEST_UTIL_H_
