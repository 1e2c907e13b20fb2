#include "services/identity/store/consent_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lotse::identity {
namespace {

using ::lotse::storage::Row;
using ::lotse::storage::Rows;
using ::lotse::storage::Transaction;

constexpr char kColumns[] = "id, person_id, version, create_us, data";

absl::StatusOr<std::vector<ConsentRecord>> DecodeAll(
    absl::StatusOr<Rows> rows) {
  if (!rows.ok()) return rows.status();
  std::vector<ConsentRecord> out;
  out.reserve(rows->size());
  for (const Row& row : *rows) {
    absl::StatusOr<std::string> id = row.GetText(0);
    absl::StatusOr<std::string> person_id = row.GetText(1);
    absl::StatusOr<int64_t> version = row.GetInt(2);
    absl::StatusOr<int64_t> create_us = row.GetInt(3);
    absl::StatusOr<std::string> data = row.GetBytes(4);
    for (const absl::Status& s :
         {id.status(), person_id.status(), version.status(), create_us.status(),
          data.status()}) {
      if (!s.ok()) return s;
    }
    ConsentRecord record;
    record.id = *std::move(id);
    record.person_id = *std::move(person_id);
    record.version = *version;
    record.create_time = absl::FromUnixMicros(*create_us);
    if (!record.fields.ParseFromString(*data)) {
      return absl::InternalError("unreadable consent record");
    }
    out.push_back(std::move(record));
  }
  return out;
}

absl::StatusOr<std::optional<ConsentRecord>> FirstOf(
    absl::StatusOr<Rows> rows) {
  absl::StatusOr<std::vector<ConsentRecord>> all = DecodeAll(std::move(rows));
  if (!all.ok()) return all.status();
  if (all->empty()) return std::nullopt;
  return std::move(all->front());
}

}  // namespace

storage::Migration ConsentMigration() {
  return {"identity.0301_consents", R"sql(
CREATE TABLE identity_consents (
  id TEXT PRIMARY KEY,
  person_id TEXT NOT NULL,
  version BIGINT NOT NULL,
  create_us BIGINT NOT NULL,
  withdraw_us BIGINT,
  data {{BLOB}} NOT NULL
);
CREATE INDEX identity_consents_by_person
  ON identity_consents (person_id, create_us, id);
)sql"};
}

std::string ConsentResourceName(absl::string_view person_id,
                                absl::string_view id) {
  return absl::StrCat("persons/", person_id, "/consents/", id);
}

absl::Status LockConsents(Transaction& tx, absl::string_view person_id) {
  return tx.LockNamed(absl::StrCat("identity.consents.", person_id));
}

absl::Status InsertConsent(Transaction& tx, const ConsentRecord& record) {
  return tx
      .Execute(
          "INSERT INTO identity_consents "
          "(id, person_id, version, create_us, data, valid_until_us) "
          "VALUES ($1, $2, $3, $4, $5, $6)",
          {record.id, record.person_id, record.version,
           absl::ToUnixMicros(record.create_time),
           storage::Bytes{record.fields.SerializeAsString()},
           record.fields.has_valid_until()
               ? storage::Value(absl::ToUnixMicros(
                     absl::FromUnixSeconds(
                         record.fields.valid_until().seconds()) +
                     absl::Nanoseconds(record.fields.valid_until().nanos())))
               : storage::Value()})
      .status();
}

absl::StatusOr<std::optional<ConsentRecord>> ReadConsent(
    Transaction& tx, absl::string_view person_id, absl::string_view id) {
  return FirstOf(tx.Query(absl::StrCat("SELECT ", kColumns,
                                       " FROM identity_consents WHERE id = $1 "
                                       "AND person_id = $2"),
                          {std::string(id), std::string(person_id)}));
}

absl::StatusOr<std::optional<ConsentRecord>> ReadConsentById(
    Transaction& tx, absl::string_view id) {
  return FirstOf(tx.Query(absl::StrCat("SELECT ", kColumns,
                                       " FROM identity_consents WHERE id = $1"),
                          {std::string(id)}));
}

absl::StatusOr<bool> WriteWithdrawal(Transaction& tx,
                                     const ConsentRecord& record,
                                     int64_t expected_version) {
  const absl::Time withdrawn =
      absl::FromUnixSeconds(record.fields.withdraw_time().seconds()) +
      absl::Nanoseconds(record.fields.withdraw_time().nanos());
  absl::StatusOr<int64_t> changed = tx.Execute(
      "UPDATE identity_consents SET version = $1, withdraw_us = $2, "
      "data = $3 WHERE id = $4 AND version = $5",
      {record.version, absl::ToUnixMicros(withdrawn),
       storage::Bytes{record.fields.SerializeAsString()}, record.id,
       expected_version});
  if (!changed.ok()) return changed.status();
  return *changed == 1;
}

absl::StatusOr<std::vector<ConsentRecord>> ListPersonConsents(
    Transaction& tx, absl::string_view person_id) {
  return DecodeAll(
      tx.Query(absl::StrCat("SELECT ", kColumns,
                            " FROM identity_consents WHERE person_id = $1 "
                            "ORDER BY create_us DESC, id DESC"),
               {std::string(person_id)}));
}

absl::StatusOr<std::vector<ConsentRecord>> ListConsentsOfPersons(
    Transaction& tx, const std::vector<std::string>& person_ids) {
  std::vector<ConsentRecord> all;
  // Bounded statements: a few hundred parameters each.
  constexpr size_t kChunk = 200;
  for (size_t begin = 0; begin < person_ids.size(); begin += kChunk) {
    const size_t end = std::min(person_ids.size(), begin + kChunk);
    std::vector<storage::Value> params;
    std::string placeholders;
    for (size_t i = begin; i < end; ++i) {
      params.emplace_back(person_ids[i]);
      absl::StrAppend(&placeholders, i == begin ? "" : ",", "$", i - begin + 1);
    }
    absl::StatusOr<std::vector<ConsentRecord>> chunk = DecodeAll(
        tx.Query(absl::StrCat("SELECT ", kColumns,
                              " FROM identity_consents WHERE person_id IN (",
                              placeholders, ")"),
                 params));
    if (!chunk.ok()) return chunk.status();
    for (ConsentRecord& r : *chunk) all.push_back(std::move(r));
  }
  return all;
}

absl::Status MoveConsents(Transaction& tx, absl::string_view from_person,
                          absl::string_view to_person) {
  return tx
      .Execute(
          "UPDATE identity_consents SET person_id = $1 WHERE person_id = $2",
          {std::string(to_person), std::string(from_person)})
      .status();
}

}  // namespace lotse::identity
