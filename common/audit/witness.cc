#include "common/audit/witness.h"

#include <algorithm>
#include <map>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/api/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "lotse/audit/v1/audit_service.grpc.pb.h"

namespace lotse::audit {
namespace {

namespace v1 = ::lotse::audit::v1;
using storage::Bytes;
using storage::Row;
using storage::Value;

// Only these two strings are ever spliced into SQL.
const char* TableOf(Chain chain) {
  return chain == Chain::kReads ? "audit_read_log" : "audit_log";
}

// Witnessed seqs looked up per query.
constexpr size_t kLookupBatch = 200;
// Pages asked of one witness at most, so a witness cannot keep the check
// running forever.
constexpr int kMaxPages = 1000;

}  // namespace

absl::StatusOr<WitnessCheck> CheckWitnessedHeads(
    storage::Database& db, Chain chain,
    const std::vector<WitnessedHead>& heads) {
  WitnessCheck check;
  absl::StatusOr<std::vector<RestoreRecord>> restores =
      ListRestoreRecords(db, chain);
  if (!restores.ok()) return restores.status();
  for (RestoreRecord& r : *restores) {
    check.restores.push_back({std::move(r), 0});
  }
  // Heads by seq, lowest first; several witnesses (and conflicting
  // checkpoints) may hold the same seq.
  std::map<int64_t, std::vector<const WitnessedHead*>> by_seq;
  for (const WitnessedHead& h : heads) {
    ++check.checkpoints_checked;
    if (h.seq > 0) by_seq[h.seq].push_back(&h);
  }
  if (by_seq.empty()) return check;

  absl::StatusOr<AuditHead> local_head = ReadAuditHead(db, chain);
  if (!local_head.ok()) return local_head.status();
  // Retention pruned the rows up to the base: a checkpoint below it can no
  // longer be compared with anything, and one at it is compared with the
  // base's hash, which the first remaining row links to.
  absl::StatusOr<std::optional<AuditHead>> base = ReadAuditBase(db, chain);
  if (!base.ok()) return base.status();
  if (base->has_value()) {
    by_seq.erase(by_seq.begin(), by_seq.lower_bound((*base)->seq));
    if (by_seq.empty()) return check;
  }

  // The local hash at every witnessed seq, in batches.
  std::map<int64_t, std::string> local;
  std::vector<int64_t> seqs;
  for (const auto& [seq, unused] : by_seq) seqs.push_back(seq);
  auto tx = db.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  for (size_t start = 0; start < seqs.size(); start += kLookupBatch) {
    const size_t end = std::min(seqs.size(), start + kLookupBatch);
    std::vector<Value> params;
    std::vector<std::string> placeholders;
    for (size_t i = start; i < end; ++i) {
      params.push_back(Value(seqs[i]));
      placeholders.push_back(absl::StrCat("$", params.size()));
    }
    auto rows = (*tx)->Query(
        absl::StrCat("SELECT seq, hash FROM ", TableOf(chain),
                     " WHERE seq IN (", absl::StrJoin(placeholders, ", "), ")"),
        params);
    if (!rows.ok()) return rows.status();
    for (const Row& row : *rows) {
      auto seq = row.GetInt(0);
      auto hash = row.GetBytes(1);
      if (!seq.ok()) return seq.status();
      if (!hash.ok()) return hash.status();
      local[*seq] = *std::move(hash);
    }
  }
  tx->reset();
  if (base->has_value()) local[(*base)->seq] = (*base)->hash;

  // A restore record dated after a witnessed checkpoint that already holds
  // it (a matched head at or after its seq, signed before its time) cannot
  // be what it says: a head that includes the record was signed after the
  // record was written. Such a record explains nothing, so that a restore
  // record dated into the future cannot cover rewrites made after it.
  std::vector<std::string> discredited(check.restores.size());
  for (size_t i = 0; i < check.restores.size(); ++i) {
    const RestoreRecord& r = check.restores[i].record;
    for (auto it = by_seq.lower_bound(r.seq);
         it != by_seq.end() && discredited[i].empty(); ++it) {
      auto row = local.find(it->first);
      if (row == local.end()) continue;
      for (const WitnessedHead* h : it->second) {
        if (h->hash == row->second && h->time < r.time) {
          discredited[i] = absl::StrCat(
              "; the restore record at seq ", r.seq,
              " does not explain it: it is dated after the checkpoint "
              "witnessed by ",
              h->witness, " at seq ", h->seq, ", which already holds it");
          break;
        }
      }
    }
  }
  // The restore that explains `h`, which differs from the local row at its
  // seq or lies past the local head: the lowest restore record at or below
  // h.seq written after h was signed and not discredited. Null when none
  // does; then `why_not` says why a discredited one does not.
  auto explaining = [&](const WitnessedHead& h,
                        std::string* why_not) -> ExplainedRestore* {
    for (size_t i = 0; i < check.restores.size(); ++i) {
      ExplainedRestore& r = check.restores[i];
      if (r.record.seq > h.seq) break;
      if (r.record.time <= h.time) continue;
      if (discredited[i].empty()) return &r;
      if (why_not->empty()) *why_not = discredited[i];
    }
    return nullptr;
  };
  // Only the lowest unexplained head is named; the others are still
  // looked at, so that every restore counts all the heads it explains.
  auto fail = [&check](int64_t first_bad_seq, std::string problem) {
    if (!check.intact) return;
    check.intact = false;
    check.first_bad_seq = first_bad_seq;
    check.problem = std::move(problem);
  };

  // The highest witnessed seq whose hash matches every witness (apart from
  // heads a restore explains), below the first unexplained one that does
  // not.
  int64_t proven = base->has_value() ? (*base)->seq : 0;
  for (const auto& [seq, witnessed] : by_seq) {
    auto row = local.find(seq);
    const bool past_head = seq > local_head->seq;
    bool matched = false;
    bool unexplained = false;
    for (const WitnessedHead* h : witnessed) {
      if (row != local.end() && h->hash == row->second) {
        matched = true;
        continue;
      }
      // A row missing inside the chain (a gap) is never a restore's doing:
      // a restored chain is contiguous.
      std::string why_not;
      if (row != local.end() || past_head) {
        if (ExplainedRestore* r = explaining(*h, &why_not); r != nullptr) {
          ++r->lost_checkpoints;
          continue;
        }
      }
      unexplained = true;
      if (row == local.end()) {
        if (past_head) {
          fail(local_head->seq + 1,
               absl::StrCat("truncated: the chain ends at seq ",
                            local_head->seq, ", but ", h->witness,
                            " witnessed a checkpoint at seq ", seq, why_not));
        } else {
          fail(seq, absl::StrCat("differs from checkpoint witnessed by ",
                                 h->witness, ": seq ", seq, " is missing"));
        }
      } else if (base->has_value() && seq == (*base)->seq) {
        fail(seq,
             absl::StrCat("differs from checkpoint witnessed by ", h->witness,
                          ": seq ", seq,
                          ", the last record retention pruned, had another "
                          "hash than witnessed"));
      } else {
        fail(proven + 1,
             absl::StrCat("differs from checkpoint witnessed by ", h->witness,
                          ": seq ", seq, " has another hash than witnessed",
                          h->conflicting
                              ? " (the witness also holds a conflicting "
                                "checkpoint of it)"
                              : "",
                          "; the first changed record lies in seq ", proven + 1,
                          "..", seq, why_not));
      }
    }
    if (matched && !unexplained) proven = seq;
  }
  return check;
}

void AddRestores(const std::vector<ExplainedRestore>& restores,
                 v1::ChainVerification* verification) {
  for (const ExplainedRestore& r : restores) {
    v1::ChainRestore* out = verification->add_restores();
    out->set_seq(r.record.seq);
    *out->mutable_time() = api::ToTimestamp(r.record.time);
    out->set_source(r.record.source);
    out->set_lost_checkpoints(r.lost_checkpoints);
  }
}

v1::ChainVerification CombineChecks(
    const std::string& service, Chain chain, const VerifyReport& walk,
    const WitnessCheck& witnessed,
    const std::vector<std::string>& unreachable) {
  v1::ChainVerification out;
  out.set_chain(ChainToProto(chain));
  out.set_records_checked(walk.rows_checked);
  out.set_checkpoints_checked(witnessed.checkpoints_checked);
  v1::AuditHead* head = out.mutable_head();
  head->set_service(service);
  head->set_chain(ChainToProto(chain));
  head->set_seq(walk.head.seq);
  head->set_hash(walk.head.hash);
  for (const std::string& w : unreachable) out.add_unreachable_witnesses(w);
  AddRestores(witnessed.restores, &out);
  if (!walk.intact) {
    // The walk's break is exact; what the witnesses saw is added.
    out.set_intact(false);
    out.set_first_bad_seq(walk.first_bad_seq);
    out.set_problem(witnessed.intact ? walk.problem
                                     : absl::StrCat(walk.problem, "; also ",
                                                    witnessed.problem));
  } else if (!witnessed.intact) {
    out.set_intact(false);
    out.set_first_bad_seq(witnessed.first_bad_seq);
    out.set_problem(witnessed.problem);
  } else {
    out.set_intact(true);
  }
  return out;
}

FetchedHeads FetchWitnessedHeads(
    const std::string& service, Chain chain,
    const std::vector<WitnessTarget>& targets,
    std::shared_ptr<grpc::ChannelCredentials> credentials, absl::Time deadline,
    const CheckpointVerifier* verifier) {
  FetchedHeads out;
  absl::Mutex mu;
  std::vector<std::thread> threads;
  for (const WitnessTarget& target : targets) {
    threads.emplace_back([&, target] {
      auto stub = v1::AuditService::NewStub(
          grpc::CreateChannel(target.address, credentials));
      std::vector<WitnessedHead> heads;
      int64_t invalid = 0;
      v1::ListWitnessedCheckpointsRequest request;
      request.set_service(service);
      request.set_chain(ChainToProto(chain));
      request.set_page_size(1000);
      bool ok = false;
      for (int page = 0; page < kMaxPages; ++page) {
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(deadline));
        context.AddMetadata("x-lotse-actor", service);
        context.AddMetadata("x-lotse-purpose", "audit-verification");
        v1::ListWitnessedCheckpointsResponse response;
        grpc::Status status =
            stub->ListWitnessedCheckpoints(&context, request, &response);
        if (!status.ok()) break;
        for (const v1::WitnessedCheckpoint& w : response.checkpoints()) {
          const v1::AuditHead& h = w.checkpoint().head();
          if (h.service() != service || h.chain() != ChainToProto(chain) ||
              (verifier != nullptr && !verifier->Verify(w.checkpoint()).ok())) {
            ++invalid;
            continue;
          }
          heads.push_back({target.name, h.seq(), h.hash(), w.conflicting(),
                           w.checkpoint().has_time()
                               ? api::FromTimestamp(w.checkpoint().time())
                               : absl::InfiniteFuture()});
        }
        if (response.next_page_token().empty()) {
          ok = true;
          break;
        }
        request.set_page_token(response.next_page_token());
      }
      absl::MutexLock lock(&mu);
      out.invalid += invalid;
      if (!ok) {
        out.unreachable.push_back(target.name);
        return;
      }
      for (WitnessedHead& h : heads) out.heads.push_back(std::move(h));
    });
  }
  for (std::thread& t : threads) t.join();
  std::sort(out.unreachable.begin(), out.unreachable.end());
  return out;
}

ServiceWitnesses::ServiceWitnesses(
    std::string service, storage::Database& db,
    storage::Database* read_audit_db, std::vector<WitnessTarget> targets,
    std::shared_ptr<grpc::ChannelCredentials> credentials,
    std::unique_ptr<CheckpointVerifier> verifier)
    : service_(std::move(service)),
      db_(db),
      read_audit_db_(read_audit_db),
      targets_(std::move(targets)),
      credentials_(std::move(credentials)),
      verifier_(std::move(verifier)) {}

absl::StatusOr<v1::ChainVerification> ServiceWitnesses::VerifyChain(
    Chain chain, absl::Time deadline) const {
  storage::Database& chain_db =
      (chain == Chain::kReads && read_audit_db_ != nullptr) ? *read_audit_db_
                                                            : db_;
  // Asked first and in parallel with nothing else: the walk may take long,
  // and the witnesses' deadline is the caller's.
  FetchedHeads fetched;
  if (!targets_.empty() && credentials_ != nullptr) {
    fetched = FetchWitnessedHeads(service_, chain, targets_, credentials_,
                                  deadline, verifier_.get());
  }
  VerifyOptions options;
  options.chain = chain;
  absl::StatusOr<VerifyReport> walk = VerifyAuditChain(chain_db, options);
  if (!walk.ok()) return walk.status();
  absl::StatusOr<WitnessCheck> witnessed =
      CheckWitnessedHeads(chain_db, chain, fetched.heads);
  if (!witnessed.ok()) return witnessed.status();
  return CombineChecks(service_, chain, *walk, *witnessed, fetched.unreachable);
}

absl::Status ServiceWitnesses::CheckChain(
    storage::Database& chain_db, Chain chain, absl::Time deadline,
    v1::ChainVerification* verification) const {
  FetchedHeads fetched;
  if (!targets_.empty() && credentials_ != nullptr) {
    fetched = FetchWitnessedHeads(service_, chain, targets_, credentials_,
                                  deadline, verifier_.get());
  }
  absl::StatusOr<WitnessCheck> witnessed =
      CheckWitnessedHeads(chain_db, chain, fetched.heads);
  if (!witnessed.ok()) return witnessed.status();
  verification->set_checkpoints_checked(verification->checkpoints_checked() +
                                        witnessed->checkpoints_checked);
  for (const std::string& w : fetched.unreachable) {
    verification->add_unreachable_witnesses(w);
  }
  AddRestores(witnessed->restores, verification);
  if (witnessed->intact) return absl::OkStatus();
  if (verification->intact()) {
    verification->set_intact(false);
    verification->set_first_bad_seq(witnessed->first_bad_seq);
    verification->set_problem(witnessed->problem);
  } else {
    verification->set_problem(
        absl::StrCat(verification->problem(), "; also ", witnessed->problem));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ListWitnessedCheckpointsResponse>
ServiceWitnesses::ListWitnessed(
    const v1::ListWitnessedCheckpointsRequest& request) const {
  return ListWitnessedCheckpoints(db_, service_, request);
}

}  // namespace lotse::audit
