#include "common/audit/checkpoint_exchange.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"

namespace lotse::audit {
namespace {

namespace v1 = ::lotse::audit::v1;
using storage::Row;
using storage::Value;

constexpr Chain kChains[] = {Chain::kChanges, Chain::kReads};

int Index(Chain chain) { return chain == Chain::kReads ? 1 : 0; }

}  // namespace

// --- publisher
// ----------------------------------------------------------------

CheckpointPublisher::CheckpointPublisher(
    storage::Database& db, storage::Database* read_audit_db,
    std::unique_ptr<CheckpointSigner> signer, prometheus::Registry* metrics,
    CheckpointPublisherOptions options)
    : db_(db),
      read_audit_db_(read_audit_db),
      signer_(std::move(signer)),
      options_(std::move(options)) {
  if (metrics != nullptr) {
    published_ = &prometheus::BuildCounter()
                      .Name("lotse_audit_checkpoints_published_total")
                      .Help("Signed audit checkpoints enqueued for witnesses")
                      .Register(*metrics);
    delivered_ = &prometheus::BuildCounter()
                      .Name("lotse_audit_checkpoints_delivered_total")
                      .Help("Audit checkpoints a witness acknowledged")
                      .Register(*metrics);
  }
}

CheckpointPublisher::~CheckpointPublisher() {
  absl::MutexLock lock(&thread_mu_);
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void CheckpointPublisher::Start() {
  absl::MutexLock lock(&thread_mu_);
  if (thread_.joinable() || stopped_) return;
  thread_ = std::thread([this] { Loop(); });
}

std::vector<int64_t> CheckpointPublisher::Stop() {
  {
    absl::MutexLock lock(&thread_mu_);
    if (stopped_) return {};
    stopped_ = true;
    if (!stop_.HasBeenNotified()) stop_.Notify();
    if (thread_.joinable()) thread_.join();
  }
  std::vector<int64_t> seqs;
  absl::StatusOr<int> published = PublishIfMoved(&seqs);
  if (!published.ok() && options_.on_error)
    options_.on_error(published.status());
  return seqs;
}

void CheckpointPublisher::Loop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.interval)) {
    absl::StatusOr<int> published = PublishIfMoved();
    if (!published.ok() && options_.on_error) {
      options_.on_error(published.status());
    }
    absl::StatusOr<int> delivered = CountDelivered();
    if (!delivered.ok() && options_.on_error) {
      options_.on_error(delivered.status());
    }
  }
}

absl::StatusOr<int> CheckpointPublisher::PublishIfMoved() {
  return PublishIfMoved(nullptr);
}

absl::StatusOr<int> CheckpointPublisher::PublishIfMoved(
    std::vector<int64_t>* seqs) {
  absl::MutexLock lock(&mu_);
  int published = 0;
  for (Chain chain : kChains) {
    storage::Database& chain_db =
        (chain == Chain::kReads && read_audit_db_ != nullptr) ? *read_audit_db_
                                                              : db_;
    absl::StatusOr<AuditHead> head = ReadAuditHead(chain_db, chain);
    if (!head.ok()) return head.status();
    std::optional<AuditHead>& last = last_[Index(chain)];
    if (head->seq == 0) continue;  // nothing to witness yet
    if (last && last->seq == head->seq && last->hash == head->hash) continue;
    absl::StatusOr<v1::SignedCheckpoint> checkpoint =
        signer_->Sign(chain, *head, absl::Now());
    if (!checkpoint.ok()) return checkpoint.status();
    lotse::events::v1::Event event;
    // One ordering key per chain: a chain's checkpoints reach each witness
    // in the order they were taken, so a witness never sees an older one
    // after a newer (which it would refuse as stale).
    event.set_ordering_key(absl::StrCat(
        "audit-checkpoints/", signer_->service(), "/", ChainName(chain)));
    event.set_source(signer_->service());
    *event.mutable_occurred_at() = checkpoint->time();
    event.mutable_payload()->PackFrom(*checkpoint);
    events::CommittedEvents committed;
    absl::Status enqueued;
    {
      events::CollectCommittedEvents collect(&committed);
      enqueued = storage::RunInTransaction(db_, [&](storage::Transaction& tx) {
        return events::EnqueueEvent(tx, event);
      });
    }
    if (!enqueued.ok()) return enqueued;
    last = *head;
    ++published;
    if (published_ != nullptr) {
      published_->Add({{"chain", ChainName(chain)}}).Increment();
    }
    if (seqs != nullptr) {
      for (int64_t seq : committed.seqs()) seqs->push_back(seq);
    }
    if (!options_.destinations.empty()) {
      for (int64_t seq : committed.seqs()) {
        pending_[seq] = options_.destinations;
      }
      while (pending_.size() > kMaxPending) pending_.erase(pending_.begin());
    }
  }
  return published;
}

absl::StatusOr<int> CheckpointPublisher::CountDelivered() {
  absl::MutexLock lock(&mu_);
  if (pending_.empty()) return 0;
  auto tx = db_.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  auto rows = (*tx)->Query(
      "SELECT destination, seq FROM event_outbox_delivery WHERE seq >= $1 "
      "AND seq <= $2 AND delivered_at IS NOT NULL",
      {Value(pending_.begin()->first), Value(pending_.rbegin()->first)});
  if (!rows.ok()) return rows.status();
  int counted = 0;
  for (const Row& row : *rows) {
    auto destination = row.GetText(0);
    auto seq = row.GetInt(1);
    if (!destination.ok() || !seq.ok()) continue;
    auto it = pending_.find(*seq);
    if (it == pending_.end()) continue;  // another event in the range
    std::vector<std::string>& waiting = it->second;
    auto found = std::find(waiting.begin(), waiting.end(), *destination);
    if (found == waiting.end()) continue;
    waiting.erase(found);
    ++counted;
    if (delivered_ != nullptr) {
      delivered_->Add({{"destination", *destination}}).Increment();
    }
    if (waiting.empty()) pending_.erase(it);
  }
  return counted;
}

// --- witness
// ------------------------------------------------------------------

CheckpointWitness::CheckpointWitness(
    std::string self, std::unique_ptr<CheckpointVerifier> verifier,
    prometheus::Registry* metrics,
    std::function<void(const CheckpointReceipt&)> on_receipt)
    : self_(std::move(self)),
      verifier_(std::move(verifier)),
      on_receipt_(std::move(on_receipt)) {
  if (metrics != nullptr) {
    witnessed_ = &prometheus::BuildCounter()
                      .Name("lotse_audit_checkpoints_witnessed_total")
                      .Help(
                          "Audit checkpoints of other services kept as "
                          "a witness (outcome stored or conflict)")
                      .Register(*metrics);
    rejected_ = &prometheus::BuildCounter()
                     .Name("lotse_audit_checkpoints_rejected_total")
                     .Help("Audit checkpoints received and refused, by reason")
                     .Register(*metrics);
  }
}

bool CheckpointWitness::IsCheckpoint(const lotse::events::v1::Event& event) {
  return event.payload().Is<v1::SignedCheckpoint>();
}

absl::Status CheckpointWitness::Apply(storage::Transaction& tx,
                                      const lotse::events::v1::Event& event) {
  v1::SignedCheckpoint checkpoint;
  CheckpointReceipt receipt;
  absl::Status valid;
  if (!event.payload().UnpackTo(&checkpoint)) {
    valid = ErrorWithReason(absl::StatusCode::kInvalidArgument,
                            kMalformedCheckpoint,
                            "the checkpoint payload does not parse");
  } else if (verifier_ == nullptr) {
    valid = ErrorWithReason(absl::StatusCode::kPermissionDenied,
                            kUntrustedCertificate,
                            "this process has no CA to verify checkpoints "
                            "against");
  } else if (checkpoint.head().service() == self_) {
    valid =
        ErrorWithReason(absl::StatusCode::kPermissionDenied, kUnknownService,
                        "a service does not witness its own checkpoints");
  } else {
    valid = verifier_->Verify(checkpoint);
  }
  receipt.service = checkpoint.head().service();
  std::optional<Chain> chain = ChainFromProto(checkpoint.head().chain());
  receipt.chain = chain ? ChainName(*chain) : "";
  receipt.seq = checkpoint.head().seq();

  if (valid.ok()) {
    absl::StatusOr<WitnessOutcome> outcome =
        StoreWitnessedCheckpoint(tx, checkpoint, absl::Now());
    if (!outcome.ok()) return outcome.status();  // the relay retries
    if (*outcome == WitnessOutcome::kStale) {
      receipt.outcome = kStaleHead;
      receipt.message =
          "the head is older than one already witnessed for this service "
          "and chain";
    } else {
      receipt.outcome = WitnessOutcomeName(*outcome);
    }
  } else {
    receipt.outcome = ReasonOf(valid).value_or(kMalformedCheckpoint);
    receipt.message = std::string(valid.message());
  }
  // Counted and reported once the inbox transaction committed: a body that
  // is retried or rolled back counts nothing.
  tx.OnCommit([this, receipt = std::move(receipt)] {
    const bool kept =
        receipt.outcome == WitnessOutcomeName(WitnessOutcome::kStored) ||
        receipt.outcome == WitnessOutcomeName(WitnessOutcome::kConflict);
    const bool duplicate =
        receipt.outcome == WitnessOutcomeName(WitnessOutcome::kDuplicate);
    if (kept && witnessed_ != nullptr) {
      witnessed_
          ->Add({{"service", receipt.service}, {"outcome", receipt.outcome}})
          .Increment();
    }
    if (!kept && !duplicate && rejected_ != nullptr) {
      rejected_->Add({{"reason", receipt.outcome}}).Increment();
    }
    const bool notable =
        !duplicate &&
        receipt.outcome != WitnessOutcomeName(WitnessOutcome::kStored);
    if (notable && on_receipt_) on_receipt_(receipt);
  });
  return absl::OkStatus();
}

events::ApplyFn CheckpointWitness::Wrap(events::ApplyFn inner) {
  return [this, inner = std::move(inner)](
             storage::Transaction& tx,
             const lotse::events::v1::Event& event) -> absl::Status {
    if (IsCheckpoint(event)) return Apply(tx, event);
    return inner(tx, event);
  };
}

}  // namespace lotse::audit
