#include "services/identity/store/residence_store.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/api/dates.h"
#include "common/api/etag.h"

namespace lotse::identity {
namespace {

using ::lotse::storage::Row;
using ::lotse::storage::Rows;
using ::lotse::storage::Transaction;
using ::lotse::storage::Value;

constexpr char kColumns[] =
    "seq, id, person_id, recording_agency, create_us, data";

absl::StatusOr<ResidenceRecord> Decode(const Row& row) {
  absl::StatusOr<int64_t> seq = row.GetInt(0);
  absl::StatusOr<std::string> id = row.GetText(1);
  absl::StatusOr<std::string> person_id = row.GetText(2);
  absl::StatusOr<std::string> agency = row.GetText(3);
  absl::StatusOr<int64_t> create_us = row.GetInt(4);
  absl::StatusOr<std::string> data = row.GetBytes(5);
  for (const absl::Status& s :
       {seq.status(), id.status(), person_id.status(), agency.status(),
        create_us.status(), data.status()}) {
    if (!s.ok()) return s;
  }
  ResidenceRecord record;
  record.seq = *seq;
  record.id = *std::move(id);
  record.person_id = *std::move(person_id);
  record.recording_agency = *std::move(agency);
  record.create_time = absl::FromUnixMicros(*create_us);
  if (!record.fields.ParseFromString(*data)) {
    return absl::InternalError("unreadable residence status record");
  }
  return record;
}

absl::StatusOr<std::vector<ResidenceRecord>> DecodeAll(
    absl::StatusOr<Rows> rows) {
  if (!rows.ok()) return rows.status();
  std::vector<ResidenceRecord> out;
  out.reserve(rows->size());
  for (const Row& row : *rows) {
    absl::StatusOr<ResidenceRecord> record = Decode(row);
    if (!record.ok()) return record.status();
    out.push_back(*std::move(record));
  }
  return out;
}

absl::StatusOr<std::optional<ResidenceRecord>> FirstOf(
    absl::StatusOr<Rows> rows) {
  absl::StatusOr<std::vector<ResidenceRecord>> all = DecodeAll(std::move(rows));
  if (!all.ok()) return all.status();
  if (all->empty()) return std::nullopt;
  return std::move(all->front());
}

}  // namespace

storage::Migration ResidenceMigration() {
  return {"identity.0201_residence", R"sql(
CREATE TABLE identity_residence_statuses (
  seq {{AUTO_ID}},
  id TEXT NOT NULL UNIQUE,
  person_id TEXT NOT NULL,
  recording_agency TEXT NOT NULL,
  create_us BIGINT NOT NULL,
  data {{BLOB}} NOT NULL
);
CREATE INDEX identity_residence_statuses_by_person
  ON identity_residence_statuses (person_id, seq);
CREATE INDEX identity_residence_statuses_by_agency
  ON identity_residence_statuses (person_id, recording_agency);
)sql"};
}

std::string ResidenceResourceName(absl::string_view person_id,
                                  absl::string_view id) {
  return absl::StrCat("persons/", person_id, "/residenceStatuses/", id);
}

std::string ResidenceEtag(absl::string_view person_id, absl::string_view id) {
  return api::ComputeEtag(ResidenceResourceName(person_id, id), 1);
}

absl::Status LockResidence(Transaction& tx, absl::string_view person_id) {
  return tx.LockNamed(absl::StrCat("identity.residence.", person_id));
}

absl::StatusOr<std::optional<ResidenceRecord>> ReadCurrentResidence(
    Transaction& tx, absl::string_view person_id) {
  return FirstOf(tx.Query(
      absl::StrCat("SELECT ", kColumns,
                   " FROM identity_residence_statuses WHERE person_id = $1 "
                   "ORDER BY seq DESC LIMIT 1"),
      {std::string(person_id)}));
}

absl::StatusOr<std::optional<ResidenceRecord>> ReadResidenceById(
    Transaction& tx, absl::string_view id) {
  return FirstOf(tx.Query(absl::StrCat("SELECT ", kColumns,
                                       " FROM identity_residence_statuses "
                                       "WHERE id = $1"),
                          {std::string(id)}));
}

namespace {

// The end of a record's validity (midnight UTC after valid_until), for the
// retention anchor END; NULL when it has none.
storage::Value EndOf(const ResidenceRecord& record) {
  if (!record.fields.has_valid_until()) return storage::Value();
  std::optional<int64_t> day = api::DayNumber(record.fields.valid_until());
  if (!day.has_value()) return storage::Value();
  return absl::ToUnixMicros(absl::UnixEpoch() + absl::Hours(24) * (*day + 1));
}

}  // namespace

absl::Status InsertResidence(Transaction& tx, const ResidenceRecord& record) {
  absl::StatusOr<int64_t> inserted = tx.Execute(
      "INSERT INTO identity_residence_statuses "
      "(id, person_id, recording_agency, create_us, data, end_us) "
      "VALUES ($1, $2, $3, $4, $5, $6)",
      {record.id, record.person_id, record.recording_agency,
       absl::ToUnixMicros(record.create_time),
       storage::Bytes{record.fields.SerializeAsString()}, EndOf(record)});
  return inserted.status();
}

absl::StatusOr<std::vector<ResidenceRecord>> ListResidence(
    Transaction& tx, absl::string_view person_id, int64_t before_seq,
    int limit) {
  if (before_seq > 0) {
    return DecodeAll(tx.Query(
        absl::StrCat("SELECT ", kColumns,
                     " FROM identity_residence_statuses WHERE person_id = $1 "
                     "AND seq < $2 ORDER BY seq DESC LIMIT $3"),
        {std::string(person_id), before_seq, static_cast<int64_t>(limit)}));
  }
  return DecodeAll(tx.Query(
      absl::StrCat("SELECT ", kColumns,
                   " FROM identity_residence_statuses WHERE person_id = $1 "
                   "ORDER BY seq DESC LIMIT $2"),
      {std::string(person_id), static_cast<int64_t>(limit)}));
}

absl::StatusOr<bool> AgencyRecordedResidence(Transaction& tx,
                                             absl::string_view person_id,
                                             absl::string_view agency) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT 1 FROM identity_residence_statuses WHERE person_id = $1 "
      "AND recording_agency = $2 LIMIT 1",
      {std::string(person_id), std::string(agency)});
  if (!rows.ok()) return rows.status();
  return !rows->empty();
}

absl::Status MoveResidence(Transaction& tx, absl::string_view from_person,
                           absl::string_view to_person) {
  return tx
      .Execute(
          "UPDATE identity_residence_statuses SET person_id = $1 "
          "WHERE person_id = $2",
          {std::string(to_person), std::string(from_person)})
      .status();
}

}  // namespace lotse::identity
