#include "common/audit/witness_store.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/audit/checkpoint.h"
#include "common/errors/status.h"

namespace lotse::audit {
namespace {

namespace v1 = ::lotse::audit::v1;
using storage::Bytes;
using storage::Row;
using storage::Value;

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

google::protobuf::Timestamp ToTimestamp(int64_t micros) {
  google::protobuf::Timestamp t;
  t.set_seconds(micros / 1000000);
  t.set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
  return t;
}

// Page tokens: "<service>|<chain>|<seq>|<id>" of the last row returned,
// web-safe base64. Bound to service and chain so that a token is never used
// with another filter.
std::string PageToken(const std::string& service, int chain, int64_t seq,
                      int64_t id) {
  return absl::WebSafeBase64Escape(
      absl::StrCat(service, "|", chain, "|", seq, "|", id));
}

}  // namespace

std::vector<storage::Migration> WitnessMigrations() {
  return {{"common.audit.witness.0001_init", R"sql(
CREATE TABLE audit_witness (
  id {{AUTO_ID}},
  service TEXT NOT NULL,
  chain TEXT NOT NULL CHECK (chain IN ('changes', 'reads')),
  seq BIGINT NOT NULL,
  hash {{BLOB}} NOT NULL,
  checkpoint_time_micros BIGINT NOT NULL,
  receive_time_micros BIGINT NOT NULL,
  conflicting BIGINT NOT NULL,
  checkpoint {{BLOB}} NOT NULL
);
CREATE UNIQUE INDEX audit_witness_by_head
  ON audit_witness (service, chain, seq, hash);
)sql"}};
}

const char* WitnessOutcomeName(WitnessOutcome outcome) {
  switch (outcome) {
    case WitnessOutcome::kStored:
      return "stored";
    case WitnessOutcome::kDuplicate:
      return "duplicate";
    case WitnessOutcome::kConflict:
      return "conflict";
    case WitnessOutcome::kStale:
      return "stale";
  }
  return "unknown";
}

absl::StatusOr<WitnessOutcome> StoreWitnessedCheckpoint(
    storage::Transaction& tx, const v1::SignedCheckpoint& checkpoint,
    absl::Time receive_time) {
  const v1::AuditHead& head = checkpoint.head();
  std::optional<Chain> chain = ChainFromProto(head.chain());
  if (!chain) return absl::InvalidArgumentError("checkpoint names no chain");
  const std::string chain_name = ChainName(*chain);
  // Classify and insert under one lock: otherwise two deliveries of heads
  // 5 and 4 could both find 3 the newest and both be stored.
  if (absl::Status s = tx.LockNamed("lotse.audit.witness"); !s.ok()) return s;
  auto newest = tx.Query(
      "SELECT MAX(seq) FROM audit_witness WHERE service = $1 AND chain = $2",
      {Value(head.service()), Value(chain_name)});
  if (!newest.ok()) return newest.status();
  bool conflicting = false;
  if (!newest->empty() && !(*newest)[0].IsNull(0)) {
    auto max_seq = (*newest)[0].GetInt(0);
    if (!max_seq.ok()) return max_seq.status();
    if (head.seq() < *max_seq) return WitnessOutcome::kStale;
    if (head.seq() == *max_seq) {
      auto same = tx.Query(
          "SELECT COUNT(*) FROM audit_witness WHERE service = $1 AND "
          "chain = $2 AND seq = $3 AND hash = $4",
          {Value(head.service()), Value(chain_name), Value(head.seq()),
           Value(Bytes{head.hash()})});
      if (!same.ok()) return same.status();
      auto count = (*same)[0].GetInt(0);
      if (!count.ok()) return count.status();
      if (*count > 0) return WitnessOutcome::kDuplicate;
      conflicting = true;
    }
  }
  const int64_t checkpoint_micros =
      checkpoint.time().seconds() * 1000000 + checkpoint.time().nanos() / 1000;
  auto inserted = tx.Execute(
      "INSERT INTO audit_witness (service, chain, seq, hash, "
      "checkpoint_time_micros, receive_time_micros, conflicting, checkpoint) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      {Value(head.service()), Value(chain_name), Value(head.seq()),
       Value(Bytes{head.hash()}), Value(checkpoint_micros),
       Value(absl::ToUnixMicros(receive_time)),
       Value(static_cast<int64_t>(conflicting ? 1 : 0)),
       Value(Bytes{checkpoint.SerializeAsString()})});
  if (!inserted.ok()) return inserted.status();
  return conflicting ? WitnessOutcome::kConflict : WitnessOutcome::kStored;
}

absl::StatusOr<v1::ListWitnessedCheckpointsResponse> ListWitnessedCheckpoints(
    storage::Database& db, const std::string& witness,
    const v1::ListWitnessedCheckpointsRequest& request) {
  FieldViolations violations;
  if (request.service().empty()) {
    violations.Add("service", "required: the service whose checkpoints");
  }
  if (request.page_size() < 0) {
    violations.Add("page_size", "must not be negative");
  }
  if (request.chain() != v1::AUDIT_CHAIN_UNSPECIFIED &&
      !ChainFromProto(request.chain())) {
    violations.Add("chain", "unknown chain");
  }
  // Cursor: the (seq, id) of the last row of the previous page.
  bool has_cursor = false;
  int64_t cursor_seq = 0;
  int64_t cursor_id = 0;
  if (!request.page_token().empty()) {
    std::string raw;
    std::vector<std::string> parts;
    if (absl::WebSafeBase64Unescape(request.page_token(), &raw)) {
      parts = absl::StrSplit(raw, '|');
    }
    if (parts.size() != 4 || parts[0] != request.service() ||
        parts[1] != absl::StrCat(static_cast<int>(request.chain())) ||
        !absl::SimpleAtoi(parts[2], &cursor_seq) ||
        !absl::SimpleAtoi(parts[3], &cursor_id)) {
      violations.Add("page_token",
                     "not a page token of this service and chain");
    }
    has_cursor = true;
  }
  if (!violations.empty()) return violations.ToStatus();
  const int page_size =
      request.page_size() == 0
          ? kDefaultPageSize
          : std::min(static_cast<int>(request.page_size()), kMaxPageSize);

  std::string sql =
      "SELECT id, seq, receive_time_micros, conflicting, checkpoint FROM "
      "audit_witness WHERE service = $1";
  std::vector<Value> params = {Value(request.service())};
  if (std::optional<Chain> chain = ChainFromProto(request.chain())) {
    params.push_back(Value(std::string(ChainName(*chain))));
    absl::StrAppend(&sql, " AND chain = $", params.size());
  }
  if (has_cursor) {
    params.push_back(Value(cursor_seq));
    const size_t seq_param = params.size();
    params.push_back(Value(cursor_id));
    absl::StrAppend(&sql, " AND (seq < $", seq_param, " OR (seq = $", seq_param,
                    " AND id < $", params.size(), "))");
  }
  params.push_back(Value(static_cast<int64_t>(page_size) + 1));
  absl::StrAppend(&sql, " ORDER BY seq DESC, id DESC LIMIT $", params.size());

  auto tx = db.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  auto rows = (*tx)->Query(sql, params);
  if (!rows.ok()) return rows.status();
  v1::ListWitnessedCheckpointsResponse response;
  int64_t last_seq = 0;
  int64_t last_id = 0;
  for (size_t i = 0; i < rows->size() && i < static_cast<size_t>(page_size);
       ++i) {
    const Row& row = (*rows)[i];
    auto id = row.GetInt(0);
    auto seq = row.GetInt(1);
    auto received = row.GetInt(2);
    auto conflicting = row.GetInt(3);
    auto blob = row.GetBytes(4);
    for (const absl::Status& s : {id.status(), seq.status(), received.status(),
                                  conflicting.status(), blob.status()}) {
      if (!s.ok()) return s;
    }
    v1::WitnessedCheckpoint* out = response.add_checkpoints();
    if (!out->mutable_checkpoint()->ParseFromString(*blob)) {
      return absl::DataLossError("audit_witness: a checkpoint does not parse");
    }
    out->set_witness(witness);
    *out->mutable_receive_time() = ToTimestamp(*received);
    out->set_conflicting(*conflicting != 0);
    last_seq = *seq;
    last_id = *id;
  }
  if (rows->size() > static_cast<size_t>(page_size)) {
    response.set_next_page_token(PageToken(request.service(),
                                           static_cast<int>(request.chain()),
                                           last_seq, last_id));
  }
  return response;
}

}  // namespace lotse::audit
