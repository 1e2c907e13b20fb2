#include "services/identity/store/agency_store.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace lotse::identity {
namespace {

constexpr char kColumns[] =
    "id, display_name, legal_domain, municipality_code, certificate_identity, "
    "state, suspension_reason, version, create_micros, update_micros";

const char* StateName(AgencyState state) {
  return state == AgencyState::kSuspended ? "SUSPENDED" : "ACTIVE";
}

absl::StatusOr<AgencyRecord> FromRow(const storage::Row& row) {
  AgencyRecord r;
  std::string state;
  int64_t created = 0, updated = 0;
  struct TextCol {
    size_t column;
    std::string* out;
  };
  for (const TextCol& c :
       {TextCol{0, &r.id}, TextCol{1, &r.display_name},
        TextCol{2, &r.legal_domain}, TextCol{3, &r.municipality_code},
        TextCol{4, &r.certificate_identity}, TextCol{5, &state},
        TextCol{6, &r.suspension_reason}}) {
    absl::StatusOr<std::string> v = row.GetText(c.column);
    if (!v.ok()) return v.status();
    *c.out = *std::move(v);
  }
  struct IntCol {
    size_t column;
    int64_t* out;
  };
  for (const IntCol& c :
       {IntCol{7, &r.version}, IntCol{8, &created}, IntCol{9, &updated}}) {
    absl::StatusOr<int64_t> v = row.GetInt(c.column);
    if (!v.ok()) return v.status();
    *c.out = *v;
  }
  if (state == "ACTIVE") {
    r.state = AgencyState::kActive;
  } else if (state == "SUSPENDED") {
    r.state = AgencyState::kSuspended;
  } else {
    return absl::InternalError(absl::StrCat("agency row with state ", state));
  }
  r.create_time = absl::FromUnixMicros(created);
  r.update_time = absl::FromUnixMicros(updated);
  return r;
}

absl::StatusOr<std::optional<AgencyRecord>> QueryOne(storage::Transaction& tx,
                                                     absl::string_view column,
                                                     absl::string_view value) {
  absl::StatusOr<storage::Rows> rows =
      tx.Query(absl::StrCat("SELECT ", kColumns,
                            " FROM identity_agencies WHERE ", column, " = $1"),
               {std::string(value)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<AgencyRecord>();
  absl::StatusOr<AgencyRecord> record = FromRow(rows->front());
  if (!record.ok()) return record.status();
  return std::optional<AgencyRecord>(*std::move(record));
}

}  // namespace

storage::Migration AgencyMigration() {
  // State is text with a CHECK rather than a number so that the table
  // reads plainly in an incident; legal_domain is the certificate's OU.
  return {"identity.0001_agencies", R"sql(
CREATE TABLE identity_agencies (
  id TEXT PRIMARY KEY,
  display_name TEXT NOT NULL,
  legal_domain TEXT NOT NULL,
  municipality_code TEXT NOT NULL,
  certificate_identity TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL CHECK (state IN ('ACTIVE', 'SUSPENDED')),
  suspension_reason TEXT NOT NULL,
  version BIGINT NOT NULL,
  create_micros BIGINT NOT NULL,
  update_micros BIGINT NOT NULL
);
CREATE INDEX identity_agencies_by_domain ON identity_agencies (legal_domain, id);
)sql"};
}

absl::Status LockAgencies(storage::Transaction& tx) {
  return tx.LockNamed("identity.agencies");
}

absl::StatusOr<std::optional<AgencyRecord>> ReadAgency(storage::Transaction& tx,
                                                       absl::string_view id) {
  return QueryOne(tx, "id", id);
}

absl::StatusOr<std::optional<AgencyRecord>> FindAgencyByCertificate(
    storage::Transaction& tx, absl::string_view certificate_identity) {
  return QueryOne(tx, "certificate_identity", certificate_identity);
}

absl::StatusOr<bool> InsertAgency(storage::Transaction& tx,
                                  const AgencyRecord& record) {
  absl::StatusOr<int64_t> changed = tx.Execute(
      absl::StrCat("INSERT INTO identity_agencies (", kColumns,
                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                   "ON CONFLICT DO NOTHING"),
      {record.id, record.display_name, record.legal_domain,
       record.municipality_code, record.certificate_identity,
       std::string(StateName(record.state)), record.suspension_reason,
       record.version, absl::ToUnixMicros(record.create_time),
       absl::ToUnixMicros(record.update_time)});
  if (!changed.ok()) return changed.status();
  return *changed == 1;
}

absl::StatusOr<bool> WriteAgency(storage::Transaction& tx,
                                 const AgencyRecord& record,
                                 int64_t expected_version) {
  absl::StatusOr<int64_t> changed = tx.Execute(
      "UPDATE identity_agencies SET display_name = $1, "
      "municipality_code = $2, certificate_identity = $3, state = $4, "
      "suspension_reason = $5, version = $6, update_micros = $7 "
      "WHERE id = $8 AND version = $9",
      {record.display_name, record.municipality_code,
       record.certificate_identity, std::string(StateName(record.state)),
       record.suspension_reason, record.version,
       absl::ToUnixMicros(record.update_time), record.id, expected_version});
  if (!changed.ok()) return changed.status();
  return *changed == 1;
}

absl::StatusOr<std::vector<AgencyRecord>> QueryAgencies(
    storage::Transaction& tx, const AgencyFilter& filter,
    absl::string_view after_id, int limit) {
  const std::string state =
      filter.state.has_value() ? StateName(*filter.state) : "";
  absl::StatusOr<storage::Rows> rows =
      tx.Query(absl::StrCat("SELECT ", kColumns,
                            " FROM identity_agencies WHERE id > $1 "
                            "AND ($2 = '' OR legal_domain = $2) "
                            "AND ($3 = '' OR municipality_code = $3) "
                            "AND ($4 = '' OR state = $4) ORDER BY id LIMIT $5"),
               {std::string(after_id), filter.legal_domain,
                filter.municipality_code, state, static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  std::vector<AgencyRecord> out;
  out.reserve(rows->size());
  for (const storage::Row& row : *rows) {
    absl::StatusOr<AgencyRecord> record = FromRow(row);
    if (!record.ok()) return record.status();
    out.push_back(*std::move(record));
  }
  return out;
}

}  // namespace lotse::identity
