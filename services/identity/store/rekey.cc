#include "services/identity/store/rekey.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "common/server/log.h"
#include "lotse/identity/v1/person.pb.h"
#include "services/identity/domain/person.h"
#include "services/identity/store/person_store.h"

namespace lotse::identity {
namespace {

using ::lotse::storage::Transaction;
using ::lotse::storage::TxMode;

// How often RekeyStaleKeys reports progress while it runs.
constexpr absl::Duration kProgressEvery = absl::Seconds(10);

// A stale row with what RekeyRows needs to write it.
struct Planned {
  PersonStore::StaleKeyRow row;
  PreparedRecord prepared;  // live persons only
  std::string form;         // a new match_form; "" keeps the stored one
};

// The form of a live person under the current rules: its stored form when
// that is of the current format, else prepared from its record.
absl::Status Plan(const DuplicateMatcher& matcher, Planned* planned) {
  const PersonStore::StaleKeyRow& row = planned->row;
  if (!row.live) return absl::OkStatus();
  if (!row.match_form.empty()) {
    absl::StatusOr<PreparedRecord> decoded =
        matcher.DecodePrepared(row.match_form);
    if (decoded.ok()) {
      planned->prepared = *std::move(decoded);
      return absl::OkStatus();
    }
    // Of another format (or damaged): prepared afresh below, and the new
    // form stored with the keys.
  }
  v1::Person person;
  if (!person.ParseFromString(row.data)) {
    return absl::DataLossError("a stored person record does not parse");
  }
  absl::StatusOr<PreparedRecord> prepared =
      matcher.Prepare(ToMatchRecord(person));
  if (!prepared.ok()) return prepared.status();
  planned->prepared = *std::move(prepared);
  planned->form = matcher.EncodePrepared(planned->prepared);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RekeyBatchResult> RekeyBatch(storage::Database& db,
                                            const DuplicateMatcher& matcher,
                                            int batch_size) {
  if (batch_size <= 0) {
    return absl::InvalidArgumentError("batch_size must be positive");
  }
  std::vector<Planned> batch;
  absl::Status read = storage::RunInTransaction(
      db,
      [&](Transaction& tx) -> absl::Status {
        PersonStore store(tx, matcher);
        absl::StatusOr<std::vector<PersonStore::StaleKeyRow>> rows =
            store.ReadStaleKeyRows(batch_size);
        if (!rows.ok()) return rows.status();
        batch.clear();
        batch.reserve(rows->size());
        for (PersonStore::StaleKeyRow& row : *rows) {
          batch.push_back(Planned{std::move(row), PreparedRecord(), ""});
        }
        return absl::OkStatus();
      },
      TxMode::kReadOnly);
  if (!read.ok()) return read;
  RekeyBatchResult result;
  if (batch.empty()) {
    result.done = true;
    return result;
  }
  for (Planned& planned : batch) {
    if (absl::Status s = Plan(matcher, &planned); !s.ok()) return s;
  }
  absl::Status written =
      storage::RunInTransaction(db, [&](Transaction& tx) -> absl::Status {
        // A retried transaction starts the counts afresh.
        result = RekeyBatchResult();
        PersonStore store(tx, matcher);
        std::vector<PersonStore::RekeyItem> items;
        items.reserve(batch.size());
        for (const Planned& planned : batch) {
          items.push_back({&planned.row,
                           planned.row.live ? &planned.prepared : nullptr,
                           planned.form});
        }
        absl::StatusOr<PersonStore::Rekeyed> rekeyed = store.RekeyRows(items);
        if (!rekeyed.ok()) return rekeyed.status();
        result.rows = rekeyed->rows;
        result.persons = rekeyed->persons;
        result.skipped = static_cast<int64_t>(batch.size()) - rekeyed->rows;
        return absl::OkStatus();
      });
  if (!written.ok()) return written;
  return result;
}

absl::StatusOr<RekeyResult> RekeyStaleKeys(storage::Database& db,
                                           const DuplicateMatcher& matcher,
                                           int batch_size) {
  const absl::Time start = absl::Now();
  RekeyResult result;
  absl::Status counted = storage::RunInTransaction(
      db,
      [&](Transaction& tx) -> absl::Status {
        PersonStore store(tx, matcher);
        absl::StatusOr<int64_t> stale = store.CountStaleKeyRows();
        if (!stale.ok()) return stale.status();
        result.stale = *stale;
        return absl::OkStatus();
      },
      TxMode::kReadOnly);
  if (!counted.ok()) return counted;
  if (result.stale == 0) {
    result.elapsed = absl::Now() - start;
    return result;
  }
  // Counts and times only: the rows are persons.
  server::Log(server::LogLevel::kInfo,
              "re-keying persons: their blocking keys follow other rules",
              {{"rows", result.stale},
               {"key_rules",
                static_cast<int64_t>(DuplicateMatcher::kBlockingKeyVersion)},
               {"batch_size", static_cast<int64_t>(batch_size)}});
  absl::Time last_report = start;
  for (;;) {
    absl::StatusOr<RekeyBatchResult> batch =
        RekeyBatch(db, matcher, batch_size);
    if (!batch.ok()) {
      server::Log(server::LogLevel::kError, "re-keying persons failed",
                  {{"rows_done", result.rows},
                   {"error", std::string(batch.status().message())}});
      return batch.status();
    }
    if (batch->done) break;
    result.rows += batch->rows;
    result.persons += batch->persons;
    ++result.batches;
    const absl::Time now = absl::Now();
    if (now - last_report >= kProgressEvery) {
      last_report = now;
      server::Log(server::LogLevel::kInfo, "re-keying persons: progress",
                  {{"rows_done", result.rows},
                   {"rows", result.stale},
                   {"seconds", absl::ToDoubleSeconds(now - start)}});
    }
  }
  result.elapsed = absl::Now() - start;
  server::Log(server::LogLevel::kInfo, "re-keyed persons",
              {{"rows", result.rows},
               {"persons", result.persons},
               {"batches", result.batches},
               {"seconds", absl::ToDoubleSeconds(result.elapsed)}});
  return result;
}

}  // namespace lotse::identity
