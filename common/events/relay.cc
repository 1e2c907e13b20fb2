#include "common/events/relay.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/disclosure.h"
#include "common/events/outbox.h"

namespace lotse::events {
namespace {

using storage::Value;

// Rows examined per cycle at most while looking for due events behind keys
// that wait for a retry; bounds a cycle's cost when one key is stuck.
constexpr int kMaxScannedPerCycle = 10000;
constexpr int kScanPage = 500;
// New outbox rows taken into delivery state per cycle at most.
constexpr int64_t kAdmitLimit = 1000;
// last_error is for operators; receivers' messages carry no personal data,
// but keep the column small anyway.
constexpr size_t kMaxErrorLength = 300;
// How often the holder of the process lock checks that it still holds it
// (a round trip on PostgreSQL).
constexpr absl::Duration kLeadCheckInterval = absl::Seconds(1);
// Delivered seqs kept in memory for AwaitDelivered.
constexpr size_t kRecentDelivered = 4096;

// The started relays of the process, for NotifyAllRelays.
struct LiveRelays {
  absl::Mutex mu;
  std::vector<OutboxRelay*> relays ABSL_GUARDED_BY(mu);
};

LiveRelays& Live() {
  static auto* live = new LiveRelays();
  return *live;
}

// The audit records of delivering `event` to `destination`: one per person
// the event names (disclosure.h), in the producer's change chain. An event
// whose payload cannot be read is recorded against its ordering key, so no
// delivery of personal data goes unrecorded.
std::vector<audit::AuditRecord> DisclosureRecords(
    const lotse::events::v1::Event& event, const std::string& destination) {
  audit::AuditRecord base;
  base.time = absl::Now();
  // Audited as "services/{destination}" (the agency of a Lotse service).
  base.agency_id = destination;
  base.legal_domain = "SERVICE";
  base.actor = "outbox-relay";
  base.purpose = "event-delivery";
  base.outcome = audit::Outcome::kAllowed;
  absl::StatusOr<Disclosure> disclosure = DisclosureOf(event);
  std::vector<audit::AuditRecord> out;
  if (!disclosure.ok()) {
    if (event.ordering_key().empty()) return out;
    base.operation = absl::StrCat("event:", event.payload().type_url());
    base.resource = event.ordering_key();
    base.reason = "PAYLOAD_UNREADABLE";
    out.push_back(std::move(base));
    return out;
  }
  // Events that name the person but carry none of their data (the
  // lifecycle events) disclose nothing.
  if (disclosure->categories.empty()) return out;
  base.operation = absl::StrCat("event:", disclosure->payload_type);
  base.data_categories = disclosure->categories;
  for (const std::string& category : disclosure->categories) {
    audit::LegalBasis basis;
    basis.category = category;
    basis.kind = audit::BasisKind::kService;
    base.legal_bases.push_back(std::move(basis));
  }
  for (const std::string& person : disclosure->persons) {
    audit::AuditRecord r = base;
    r.resource = person;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

void NotifyAllRelays() {
  LiveRelays& live = Live();
  absl::MutexLock lock(&live.mu);
  for (OutboxRelay* relay : live.relays) relay->Notify();
}

GrpcEventSender::GrpcEventSender(std::shared_ptr<grpc::Channel> channel)
    : stub_(lotse::events::v1::EventSinkService::NewStub(std::move(channel))) {}

absl::Status GrpcEventSender::Send(const lotse::events::v1::Event& event,
                                   absl::Time deadline) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  {
    absl::MutexLock lock(&mu_);
    in_flight_.push_back(&context);
  }
  lotse::events::v1::DeliverEventRequest request;
  *request.mutable_event() = event;
  lotse::events::v1::DeliverEventResponse response;
  // No wait_for_ready: an unreachable receiver fails fast and the relay's
  // own backoff decides when to try again.
  grpc::Status status = stub_->DeliverEvent(&context, request, &response);
  {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(std::find(in_flight_.begin(), in_flight_.end(), &context));
  }
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

void GrpcEventSender::CancelInFlight() {
  absl::MutexLock lock(&mu_);
  for (grpc::ClientContext* context : in_flight_) context->TryCancel();
}

OutboxRelay::OutboxRelay(storage::Database& db, EventSender& sender,
                         RelayOptions options)
    : db_(db), sender_(sender), options_(std::move(options)) {}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (thread_.joinable() || stopping_) return;
    thread_ = std::thread([this] { Loop(); });
  }
  LiveRelays& live = Live();
  absl::MutexLock lock(&live.mu);
  live.relays.push_back(this);
}

void OutboxRelay::Notify() {
  absl::MutexLock lock(&mu_);
  notified_ = true;
}

void OutboxRelay::Stop() {
  {
    LiveRelays& live = Live();
    absl::MutexLock lock(&live.mu);
    live.relays.erase(std::remove(live.relays.begin(), live.relays.end(), this),
                      live.relays.end());
  }
  std::thread thread;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    thread = std::move(thread_);
  }
  sender_.CancelInFlight();
  if (thread.joinable()) thread.join();
  // Hand over at once rather than when the process exits.
  absl::MutexLock cycle_lock(&cycle_mu_);
  SetLead(nullptr);
}

void OutboxRelay::SetLead(std::unique_ptr<storage::ProcessLock> lock) {
  const bool was_leading = lead_ != nullptr;
  lead_ = std::move(lock);
  const bool leading = lead_ != nullptr;
  leading_.store(leading);
  if (leading != was_leading && options_.on_lead_change) {
    options_.on_lead_change(options_.destination, leading);
  }
}

bool OutboxRelay::ShouldWake() const { return stopping_ || notified_; }

bool OutboxRelay::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

RelayStats OutboxRelay::stats() const {
  return RelayStats{delivered_.load(), failed_attempts_.load(), leading_.load(),
                    shredded_.load()};
}

void OutboxRelay::Delivered(int64_t seq) {
  absl::MutexLock lock(&mu_);
  unreachable_ = false;
  if (recent_.insert(seq).second) recent_order_.push_back(seq);
  while (recent_order_.size() > kRecentDelivered) {
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
}

void OutboxRelay::Failed(absl::StatusCode code) {
  absl::MutexLock lock(&mu_);
  unreachable_ = code == absl::StatusCode::kUnavailable ||
                 code == absl::StatusCode::kDeadlineExceeded;
}

bool OutboxRelay::DeliveredInDatabase(const std::vector<int64_t>& seqs) {
  std::string in;
  std::vector<Value> params = {Value(options_.destination)};
  for (int64_t seq : seqs) {
    absl::StrAppend(&in, in.empty() ? "" : ", ", "$", params.size() + 1);
    params.push_back(Value(seq));
  }
  int64_t delivered = -1;
  absl::Status read = storage::RunInTransaction(
      db_,
      [&](storage::Transaction& tx) -> absl::Status {
        auto rows = tx.Query(
            absl::StrCat("SELECT COUNT(*) FROM event_outbox_delivery "
                         "WHERE destination = $1 AND delivered_at IS NOT NULL "
                         "AND seq IN (",
                         in, ")"),
            params);
        if (!rows.ok()) return rows.status();
        auto n = rows->front().GetInt(0);
        if (!n.ok()) return n.status();
        delivered = *n;
        return absl::OkStatus();
      },
      storage::TxMode::kReadOnly);
  return read.ok() && delivered == static_cast<int64_t>(seqs.size());
}

bool OutboxRelay::AwaitDelivered(const std::vector<int64_t>& seqs,
                                 absl::Time deadline) {
  if (seqs.empty()) return true;
  Notify();
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto all_here = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        for (int64_t seq : seqs) {
          if (!recent_.contains(seq)) return false;
        }
        return true;
      };
      auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || unreachable_ || all_here();
      };
      mu_.AwaitWithDeadline(absl::Condition(&settled),
                            std::min(deadline, absl::Now() + kAwaitRecheck));
      if (all_here()) return true;
      if (stopping_ || unreachable_) return false;
    }
    // Not delivered here; another replica's relay may hold the lead, or
    // this relay delivered it before it was asked and forgot.
    if (DeliveredInDatabase(seqs)) return true;
    if (absl::Now() >= deadline) return false;
  }
}

absl::StatusOr<bool> OutboxRelay::Leading() {
  const absl::Time now = absl::Now();
  if (lead_ != nullptr) {
    if (now - lead_checked_ < kLeadCheckInterval) return true;
    if (lead_->Held()) {
      lead_checked_ = now;
      return true;
    }
    // Lost (PostgreSQL connection gone): another relay may be sending.
    SetLead(nullptr);
  }
  if (now < next_lead_attempt_) return false;
  next_lead_attempt_ = now + options_.standby_retry;
  absl::StatusOr<std::unique_ptr<storage::ProcessLock>> lock =
      db_.TryLockForProcess(
          absl::StrCat("lotse.outbox.relay/", options_.destination));
  if (!lock.ok()) return lock.status();
  if (*lock == nullptr) return false;
  SetLead(*std::move(lock));
  lead_checked_ = now;
  return true;
}

absl::StatusOr<int> OutboxRelay::DeliverPendingOnce() {
  absl::MutexLock lock(&cycle_mu_);
  auto result = RunCycle();
  if (!result.ok()) return result.status();
  return result->delivered;
}

void OutboxRelay::Loop() {
  while (true) {
    absl::Time wake_at;
    {
      absl::MutexLock cycle_lock(&cycle_mu_);
      if (stopping()) return;
      auto result = RunCycle();
      const absl::Time now = absl::Now();
      if (!result.ok()) {
        // Database trouble: try again after a poll interval. The status is
        // not logged here because the library has no logger of its own;
        // failed attempts show in stats().
        wake_at = now + options_.poll_interval;
      } else if (result->more) {
        wake_at = now;
      } else {
        wake_at = std::min(now + options_.poll_interval, result->next_due);
      }
    }
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(this, &OutboxRelay::ShouldWake),
                          wake_at);
    notified_ = false;
    if (stopping_) return;
  }
}

absl::Duration OutboxRelay::Backoff(int64_t attempts, absl::StatusCode code) {
  absl::Duration cap = options_.backoff_max;
  if (code == absl::StatusCode::kUnavailable ||
      code == absl::StatusCode::kDeadlineExceeded) {
    cap = std::min(cap, options_.unreachable_backoff_max);
  }
  absl::Duration delay = options_.backoff_initial;
  for (int64_t i = 1; i < attempts && delay < cap; ++i) {
    delay *= 2;
  }
  delay = std::min(delay, cap);
  thread_local absl::BitGen gen;
  const double factor = absl::Uniform(gen, 0.5, 1.0);
  return delay * factor;
}

absl::Status OutboxRelay::Admit() {
  return storage::RunInTransaction(db_, [&](storage::Transaction& tx) {
    // Two relays for one destination (a misconfiguration) must not take the
    // same rows in twice.
    if (absl::Status s = tx.LockNamed(
            absl::StrCat("lotse.outbox.relay/", options_.destination));
        !s.ok()) {
      return s;
    }
    auto cursor = tx.Query(
        "SELECT next_seq FROM event_outbox_cursor WHERE destination = $1",
        {Value(options_.destination)});
    if (!cursor.ok()) return cursor.status();
    int64_t next_seq = 0;
    if (!cursor->empty()) {
      auto v = (*cursor)[0].GetInt(0);
      if (!v.ok()) return v.status();
      next_seq = *v;
    }
    // The highest seq of the next admission window.
    auto last = tx.Query(
        "SELECT seq FROM event_outbox WHERE seq >= $1 ORDER BY seq LIMIT $2",
        {Value(next_seq), Value(kAdmitLimit)});
    if (!last.ok()) return last.status();
    if (last->empty()) return absl::OkStatus();
    auto max_seq = last->back().GetInt(0);
    if (!max_seq.ok()) return max_seq.status();
    auto inserted = tx.Execute(
        "INSERT INTO event_outbox_delivery (destination, seq, ordering_key) "
        "SELECT $1, seq, ordering_key FROM event_outbox "
        "WHERE seq >= $2 AND seq <= $3",
        {Value(options_.destination), Value(next_seq), Value(*max_seq)});
    if (!inserted.ok()) return inserted.status();
    auto updated = tx.Execute(
        cursor->empty()
            ? "INSERT INTO event_outbox_cursor (destination, next_seq) "
              "VALUES ($1, $2)"
            : "UPDATE event_outbox_cursor SET next_seq = $2 "
              "WHERE destination = $1",
        {Value(options_.destination), Value(*max_seq + 1)});
    if (!updated.ok()) return updated.status();
    return absl::OkStatus();
  });
}

absl::Status OutboxRelay::MarkShredded(int64_t seq) {
  absl::Status marked = storage::RunInTransaction(
      db_, [&](storage::Transaction& tx) -> absl::Status {
        return tx
            .Execute(
                "UPDATE event_outbox_delivery SET delivered_at = $3, "
                "last_error = $4 WHERE destination = $1 AND seq = $2",
                {Value(options_.destination), Value(seq),
                 Value(absl::ToUnixMicros(absl::Now())),
                 Value(std::string(kShreddedError))})
            .status();
      });
  if (!marked.ok()) return marked;
  // Waiters for this seq are done with it: it will never be sent.
  Delivered(seq);
  ++shredded_;
  return absl::OkStatus();
}

absl::StatusOr<OutboxRelay::CycleResult> OutboxRelay::RunCycle() {
  CycleResult result;
  absl::StatusOr<bool> leading = Leading();
  if (!leading.ok()) return leading.status();
  if (!*leading) return result;
  if (absl::Status s = Admit(); !s.ok()) return s;

  const int batch_size = std::max(1, options_.batch_size);
  const int64_t now_micros = absl::ToUnixMicros(absl::Now());
  // Keys whose earliest pending event is not deliverable now: all their
  // later events wait, which is what keeps each key in order.
  absl::flat_hash_set<std::string> blocked;
  int attempted = 0;
  int scanned = 0;
  int64_t after_seq = -1;

  auto block = [&](const std::string& key, absl::Time due) {
    blocked.insert(key);
    result.next_due = std::min(result.next_due, due);
  };

  while (scanned < kMaxScannedPerCycle) {
    storage::Rows rows;
    {
      auto tx = db_.Begin(storage::TxMode::kReadOnly);
      if (!tx.ok()) return tx.status();
      auto page = (*tx)->Query(
          "SELECT seq, ordering_key, attempts, next_attempt_at "
          "FROM event_outbox_delivery "
          "WHERE destination = $1 AND delivered_at IS NULL AND seq > $2 "
          "ORDER BY seq LIMIT $3",
          {Value(options_.destination), Value(after_seq),
           Value(static_cast<int64_t>(kScanPage))});
      if (!page.ok()) return page.status();
      rows = *std::move(page);
    }

    for (const storage::Row& row : rows) {
      auto seq = row.GetInt(0);
      auto key = row.GetText(1);
      auto attempts = row.GetInt(2);
      auto next_attempt_at = row.GetInt(3);
      if (!seq.ok()) return seq.status();
      if (!key.ok()) return key.status();
      if (!attempts.ok()) return attempts.status();
      if (!next_attempt_at.ok()) return next_attempt_at.status();
      after_seq = *seq;
      ++scanned;

      if (blocked.contains(*key)) continue;
      if (*next_attempt_at > now_micros) {
        block(*key, absl::FromUnixMicros(*next_attempt_at));
        continue;
      }
      if (attempted >= batch_size) {
        result.more = true;
        return result;
      }
      if (stopping()) return result;
      // A long cycle (slow receiver) must not outlive the lock.
      absl::StatusOr<bool> still_leading = Leading();
      if (!still_leading.ok()) return still_leading.status();
      if (!*still_leading) return result;

      // The payload is read only for the event actually sent, so skipping
      // blocked keys stays cheap.
      lotse::events::v1::Event event;
      absl::Status sent;
      {
        auto tx = db_.Begin(storage::TxMode::kReadOnly);
        if (!tx.ok()) return tx.status();
        absl::StatusOr<lotse::events::v1::Event> read =
            ReadOutboxEvent(**tx, *seq);
        if (read.ok()) {
          event = *std::move(read);
        } else if (ReasonOf(read.status()) == "PERSON_KEY_SHREDDED") {
          // The person was erased after the event was written: it is not
          // sent, and its key does not hold back the events behind it.
          tx->reset();
          if (absl::Status s = MarkShredded(*seq); !s.ok()) return s;
          continue;
        } else if (read.status().code() == absl::StatusCode::kNotFound) {
          sent = absl::DataLossError("outbox row missing");
        } else if (read.status().code() == absl::StatusCode::kDataLoss) {
          sent = read.status();
        } else {
          return read.status();
        }
      }
      ++attempted;
      if (sent.ok()) {
        sent = sender_.Send(event, absl::Now() + options_.call_timeout);
      }

      if (sent.ok()) {
        // The disclosure is recorded in the transaction that marks the
        // event delivered: if either fails, the event is sent (and
        // recorded) again, so no delivery goes unrecorded.
        const std::vector<audit::AuditRecord> disclosures =
            options_.audit_disclosures
                ? DisclosureRecords(event, options_.destination)
                : std::vector<audit::AuditRecord>();
        absl::Status marked = storage::RunInTransaction(
            db_, [&](storage::Transaction& tx) -> absl::Status {
              for (const audit::AuditRecord& r : disclosures) {
                if (absl::Status s = audit::AppendAudit(tx, r); !s.ok()) {
                  return s;
                }
              }
              auto n = tx.Execute(
                  "UPDATE event_outbox_delivery SET delivered_at = $3, "
                  "attempts = attempts + 1, last_error = NULL "
                  "WHERE destination = $1 AND seq = $2",
                  {Value(options_.destination), Value(*seq),
                   Value(absl::ToUnixMicros(absl::Now()))});
              return n.status();
            });
        // If marking fails the event is sent again later, which the
        // receiver's inbox absorbs.
        if (!marked.ok()) return marked;
        Delivered(*seq);
        ++delivered_;
        ++result.delivered;
        if (options_.on_delivered) options_.on_delivered(options_.destination);
      } else {
        ++failed_attempts_;
        Failed(sent.code());
        const absl::Time due =
            absl::Now() + Backoff(*attempts + 1, sent.code());
        // Only the status code and the receiver's message are kept; never
        // the event, which may carry personal data.
        std::string error = absl::StrCat(absl::StatusCodeToString(sent.code()),
                                         ": ", sent.message());
        if (error.size() > kMaxErrorLength) error.resize(kMaxErrorLength);
        absl::Status marked = storage::RunInTransaction(
            db_, [&](storage::Transaction& tx) -> absl::Status {
              auto n = tx.Execute(
                  "UPDATE event_outbox_delivery SET attempts = attempts + 1, "
                  "next_attempt_at = $3, last_error = $4 "
                  "WHERE destination = $1 AND seq = $2",
                  {Value(options_.destination), Value(*seq),
                   Value(absl::ToUnixMicros(due)), Value(error)});
              return n.status();
            });
        if (!marked.ok()) return marked;
        if (options_.on_failure) {
          DeliveryFailure failure;
          failure.destination = options_.destination;
          failure.seq = *seq;
          failure.attempts = *attempts + 1;
          failure.code = sent.code();
          failure.message = std::string(sent.message());
          failure.next_attempt = due;
          options_.on_failure(failure);
        }
        block(*key, due);
      }
    }
    if (static_cast<int>(rows.size()) < kScanPage) break;
  }
  return result;
}

}  // namespace lotse::events
