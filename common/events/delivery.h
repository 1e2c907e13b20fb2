// A service's event delivery as a whole: one OutboxRelay per subscribed
// destination over the service's outbox, each sending over its own channel
// to the destination's EventSinkService.
//
// Destinations are configuration ("cases=cases.lotse.svc:50052,placement=
// 127.0.0.1:50054"), because which service consumes what is deployment
// knowledge: a producer that lists a destination delivers its whole outbox
// there (see relay.h), and the receiver ignores what it does not consume.
#ifndef LOTSE_COMMON_EVENTS_DELIVERY_H_
#define LOTSE_COMMON_EVENTS_DELIVERY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/events/relay.h"
#include "common/storage/database.h"
#include "grpcpp/security/credentials.h"

namespace lotse::events {

struct Destination {
  std::string name;     // e.g. "cases"; names the relay's delivery state
  std::string address;  // gRPC target, e.g. "127.0.0.1:50052"
};

// Parses "name=address,name=address". Empty text is no destination.
// INVALID_ARGUMENT for a malformed entry or a name given twice.
absl::StatusOr<std::vector<Destination>> ParseDestinations(
    absl::string_view text);

// Runs the relays. Thread-safe.
class EventDelivery {
 public:
  // Starts a relay per destination over `db` (which must outlive this),
  // calling with `credentials` (the service's client certificate). `options`
  // is the template for every relay; its destination is set per relay.
  static absl::StatusOr<std::unique_ptr<EventDelivery>> Start(
      storage::Database& db, const std::vector<Destination>& destinations,
      std::shared_ptr<grpc::ChannelCredentials> credentials,
      RelayOptions options = RelayOptions());

  // Stops the relays; undelivered events stay in the outbox.
  ~EventDelivery();

  // Wakes every relay now. (Commits that enqueued events do so by
  // themselves, see NotifyAllRelays.)
  void Notify();

  // Waits until `destination` has acknowledged the events `seqs`, or
  // `deadline` passes (OutboxRelay::AwaitDelivered). True at once when
  // there is nothing to wait for: no seqs, or no such destination (its
  // events go nowhere).
  bool AwaitDelivered(absl::string_view destination,
                      const std::vector<int64_t>& seqs, absl::Time deadline);

  // Delivered events and failed attempts over all relays.
  RelayStats stats() const;

 private:
  EventDelivery() = default;

  std::vector<std::unique_ptr<GrpcEventSender>> senders_;
  std::vector<std::unique_ptr<OutboxRelay>> relays_;
};

}  // namespace lotse::events

#endif  // LOTSE_COMMON_EVENTS_DELIVERY_H_
