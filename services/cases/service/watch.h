// WatchCaseEvents: server streams of case events, read from the case-event
// log (store/case_store.h), so a stream resumed with a cursor gets exactly
// what it missed, also after a restart.
//
// One pump thread serves all streams of the process. It wakes when a
// commit in this process calls Notify() (the RPCs' writes and the event
// inbox's do; for commits of other replicas it wakes at least every poll
// interval), reads the newest cursor, and for every stream that is behind
// reads that agency's next events from the log into the stream's buffer —
// at most as many as the buffer has room for, so memory per stream is
// bounded. Writes to the client go out one at a time from the buffer (gRPC
// callback API); a write's completion refills the buffer.
//
// Slow consumers: when a stream's buffer is full and no write completed
// for `stall_limit`, the stream ends with RESOURCE_EXHAUSTED, reason
// CONSUMER_TOO_SLOW, metadata resume_after_cursor = the last cursor that
// was written to the client. Other streams are not affected: the pump
// never waits for a client.
//
// Stream caps: at most `max_streams_per_agency` streams of one agency (the
// certificate's) and `max_streams_total` of the process are open at once;
// one more is refused before anything is done for it (no audit record, no
// database read) with RESOURCE_EXHAUSTED, reason TOO_MANY_WATCH_STREAMS,
// metadata `limit` ("watch_streams_per_agency" or "watch_streams_total")
// and `value`, and a retry delay of kWatchStreamRetryDelay. Each refusal
// goes to `on_refused` (counted, not logged per call). Every open stream
// holds a buffer of up to `buffer_messages` events, so the caps bound the
// memory all streams together may hold.
//
// Heartbeats: a stream with nothing to send for `heartbeat` gets a
// heartbeat with the cursor up to which it has seen everything.
//
// Activity details (course, placement) are cleared unless identity lets the
// stream's agency see that category of the person. The answers are shared
// by all streams of one agency and purpose (SharedAccessDecisions), so an
// event costs one identity check however many streams of that agency
// watch it.
#ifndef LOTSE_SERVICES_CASES_SERVICE_WATCH_H_
#define LOTSE_SERVICES_CASES_SERVICE_WATCH_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/server/agency_limits.h"
#include "common/server/request_context.h"
#include "common/storage/database.h"
#include "grpcpp/support/server_callback.h"
#include "lotse/cases/v1/cases_service.pb.h"
#include "services/cases/domain/access_checker.h"
#include "services/cases/store/case_store.h"

namespace lotse::cases {

// The retry delay of a stream refused by a stream cap: streams end when
// their clients go, rarely many within a second.
inline constexpr absl::Duration kWatchStreamRetryDelay = absl::Seconds(1);

struct WatchOptions {
  int buffer_messages = 256;
  // 0: no cap.
  int max_streams_per_agency = 0;
  int max_streams_total = 0;
  // Told of each stream refused by a cap (agency, reason); may be null.
  server::RefusalHook on_refused;
  absl::Duration stall_limit = absl::Seconds(10);
  absl::Duration heartbeat = absl::Seconds(15);
  absl::Duration poll = absl::Milliseconds(500);
  std::string error_domain = "cases.lotse";
};

// Which categories of a person's data an agency may see for a purpose, as
// identity answered (AccessChecker::Check), kept for a short time and shared
// by everyone who asks about the same (agency, purpose, person).
//
// An answer is reused for at most `ttl`: a consent withdrawn or a relation
// ended shows within that time. A check that fails (identity unavailable,
// person unknown, deadline) is remembered as such for `retry`; meanwhile
// every category but those that need no check is refused with
// CHECK_UNAVAILABLE, so an outage never lets a detail through. At most
// `max_entries` answers are kept; when a new one would exceed that, the
// expired ones are dropped, and if none had expired all are (later asks
// go to identity again).
//
// Not thread-safe: the watch hub uses it from its pump thread only.
class SharedAccessDecisions {
 public:
  struct Options {
    absl::Duration ttl = absl::Seconds(30);
    absl::Duration retry = absl::Seconds(1);
    absl::Duration check_deadline = absl::Seconds(2);
    size_t max_entries = 10000;
  };

  // `access` must outlive this object.
  SharedAccessDecisions(AccessChecker* access, Options options);

  // Whether `agency` may see `category` of `person` for `purpose` at `now`.
  // Asks identity (LANGUAGE and EMPLOYMENT at once, as a case participant)
  // when no answer younger than `ttl` is kept. A refusal carries its
  // reason: identity's, NO_LEGAL_BASIS when identity gave none, or
  // CHECK_UNAVAILABLE when the check failed.
  AccessDecision Decide(const std::string& agency, const std::string& purpose,
                        const std::string& person,
                        type::v1::DataCategory category, absl::Time now);

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    absl::Time expire;
    bool unavailable = false;
    absl::flat_hash_map<int, AccessDecision> by_category;
  };
  using Key = std::tuple<std::string, std::string, std::string>;

  AccessChecker* const access_;
  const Options options_;
  absl::flat_hash_map<Key, Entry> entries_;
};

// Per stream: resolved at start by the service (caller, start cursor).
struct WatchStart {
  std::string agency;   // "agencies/x"
  std::string case_id;  // empty: all cases of the agency
  int64_t after_cursor = 0;
  std::string purpose;
};

class WatchHub {
 public:
  // Resolves a new stream on the pump thread (database reads allowed):
  // caller check, cursor check, audit. Returns the start or the status the
  // stream ends with.
  using Resolver = std::function<absl::StatusOr<WatchStart>(
      const server::RequestContext& rc,
      const v1::WatchCaseEventsRequest& request)>;

  WatchHub(storage::Database& db, AccessChecker* access, Resolver resolver,
           WatchOptions options);
  ~WatchHub();  // ends every stream (SERVER_DRAINING) and stops the pump

  // Starts a stream for an RPC, or refuses it when a stream cap is reached;
  // the returned reactor deletes itself.
  grpc::ServerWriteReactor<v1::WatchCaseEventsResponse>* Open(
      server::RequestContext rc, const v1::WatchCaseEventsRequest& request);
  // A reactor that finishes at once with `status` (bad request).
  static grpc::ServerWriteReactor<v1::WatchCaseEventsResponse>* Refuse(
      const absl::Status& status, absl::string_view domain);

  // Wakes the pump: new events were committed.
  void Notify();
  // Ends every stream with UNAVAILABLE, reason SERVER_DRAINING; streams
  // opened afterwards end the same way at once. The process calls it as it
  // drains (ServiceRuntime::on_drain).
  void Drain();

  int open_streams() const;

  struct Stream;

 private:
  // Counts a new stream of `agency` against the caps, or returns the
  // refusal.
  absl::Status CountStream(const std::string& agency)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A counted stream of `agency` ended.
  void ReleaseStream(const std::string& agency) ABSL_LOCKS_EXCLUDED(mu_);

  void Loop();
  // The events the pump read once for all streams that were up to date:
  // those with after < cursor <= upto.
  struct Batch {
    int64_t after = 0;
    int64_t upto = 0;
    std::vector<LoggedEvent> events;
  };
  // Fills what fits into `s`'s buffer: from `batch` when the stream is
  // exactly at its start and everything fits, else from the log.
  void Serve(const std::shared_ptr<Stream>& s, int64_t latest,
             const Batch* batch, absl::Time now);
  // Clears activity details the agency may not see, listing them.
  void Withhold(const std::shared_ptr<Stream>& s, v1::CaseEvent* event);

  storage::Database& db_;
  Resolver resolver_;
  const WatchOptions options_;

  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Set by Drain(): streams opened afterwards end at once (SERVER_DRAINING).
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  // Streams counted against the caps and not yet done: by agency, in all.
  absl::flat_hash_map<std::string, int> streams_by_agency_ ABSL_GUARDED_BY(mu_);
  int counted_streams_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t seen_ = -1;  // pump thread only: `latest` of the last round
  SharedAccessDecisions decisions_;  // pump thread only
  std::thread pump_;
};

}  // namespace lotse::cases

#endif  // LOTSE_SERVICES_CASES_SERVICE_WATCH_H_
