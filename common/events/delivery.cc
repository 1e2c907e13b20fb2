#include "common/events/delivery.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace lotse::events {

absl::StatusOr<std::vector<Destination>> ParseDestinations(
    absl::string_view text) {
  std::vector<Destination> out;
  absl::flat_hash_set<std::string> names;
  for (absl::string_view entry : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(entry, '=');
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "event destination \"", entry, "\" must be written name=host:port"));
    }
    for (char c : parts[0]) {
      if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') {
        return absl::InvalidArgumentError(
            absl::StrCat("event destination name \"", parts[0],
                         "\" may hold only a-z, 0-9 and '-'"));
      }
    }
    if (!names.insert(std::string(parts[0])).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("event destination \"", parts[0], "\" is given twice"));
    }
    out.push_back({std::string(parts[0]), std::string(parts[1])});
  }
  return out;
}

absl::StatusOr<std::unique_ptr<EventDelivery>> EventDelivery::Start(
    storage::Database& db, const std::vector<Destination>& destinations,
    std::shared_ptr<grpc::ChannelCredentials> credentials,
    RelayOptions options) {
  std::unique_ptr<EventDelivery> delivery(new EventDelivery());
  for (const Destination& d : destinations) {
    // gRPC's own reconnect backoff grows to 120 s by default; a returning
    // receiver should be reached as soon as the relay's backoff allows.
    grpc::ChannelArguments args;
    const int max_backoff_ms = static_cast<int>(std::max<int64_t>(
        100, absl::ToInt64Milliseconds(options.unreachable_backoff_max)));
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                std::min(max_backoff_ms, 1000));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
    delivery->senders_.push_back(std::make_unique<GrpcEventSender>(
        grpc::CreateCustomChannel(d.address, credentials, args)));
    RelayOptions relay_options = options;
    relay_options.destination = d.name;
    delivery->relays_.push_back(std::make_unique<OutboxRelay>(
        db, *delivery->senders_.back(), relay_options));
  }
  for (auto& relay : delivery->relays_) relay->Start();
  return delivery;
}

EventDelivery::~EventDelivery() {
  // Relays first: they use the senders.
  for (auto& relay : relays_) relay->Stop();
  relays_.clear();
}

void EventDelivery::Notify() {
  for (auto& relay : relays_) relay->Notify();
}

bool EventDelivery::AwaitDelivered(absl::string_view destination,
                                   const std::vector<int64_t>& seqs,
                                   absl::Time deadline) {
  for (auto& relay : relays_) {
    if (relay->destination() == destination) {
      return relay->AwaitDelivered(seqs, deadline);
    }
  }
  return true;
}

RelayStats EventDelivery::stats() const {
  RelayStats total;
  for (const auto& relay : relays_) {
    const RelayStats s = relay->stats();
    total.delivered += s.delivered;
    total.failed_attempts += s.failed_attempts;
  }
  return total;
}

}  // namespace lotse::events
