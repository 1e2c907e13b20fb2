#include "services/identity/store/relation_store.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace lotse::identity {

using ::lotse::storage::Rows;
using ::lotse::storage::Transaction;

storage::Migration RelationMigration() {
  return {"identity.0401_relations", R"sql(
CREATE TABLE identity_relations (
  person_id TEXT NOT NULL,
  agency_id TEXT NOT NULL,
  relation INTEGER NOT NULL,
  source TEXT NOT NULL,
  since_us BIGINT NOT NULL,
  PRIMARY KEY (person_id, agency_id, relation, source)
);
CREATE INDEX identity_relations_by_source ON identity_relations (source);
CREATE INDEX identity_relations_by_agency
  ON identity_relations (agency_id, person_id);
)sql"};
}

absl::Status GrantRelation(Transaction& tx, absl::string_view person_id,
                           absl::string_view agency_id, Relation relation,
                           absl::string_view source) {
  return tx
      .Execute(
          "INSERT INTO identity_relations "
          "(person_id, agency_id, relation, source, since_us) "
          "VALUES ($1, $2, $3, $4, $5) "
          "ON CONFLICT (person_id, agency_id, relation, source) DO NOTHING",
          {std::string(person_id), std::string(agency_id),
           static_cast<int64_t>(relation), std::string(source),
           absl::ToUnixMicros(absl::Now())})
      .status();
}

absl::Status RevokeSource(Transaction& tx, absl::string_view source) {
  return tx
      .Execute("DELETE FROM identity_relations WHERE source = $1",
               {std::string(source)})
      .status();
}

absl::Status RevokeSourceRelation(Transaction& tx, absl::string_view source,
                                  absl::string_view agency_id,
                                  Relation relation) {
  return tx
      .Execute(
          "DELETE FROM identity_relations "
          "WHERE source = $1 AND agency_id = $2 AND relation = $3",
          {std::string(source), std::string(agency_id),
           static_cast<int64_t>(relation)})
      .status();
}

namespace {

// Copies the selected rows to `to_person` (skipping ones it already has),
// then deletes them from the old person: an UPDATE could collide with the
// primary key of a relation the new person already holds.
absl::Status MoveRows(Transaction& tx, absl::string_view from_person,
                      absl::string_view to_person,
                      absl::string_view source_filter) {
  const bool by_source = !source_filter.empty();
  std::vector<storage::Value> params = {std::string(from_person),
                                        std::string(to_person)};
  if (by_source) params.push_back(std::string(source_filter));
  absl::Status s =
      tx.Execute(by_source
                     ? "INSERT INTO identity_relations "
                       "(person_id, agency_id, relation, source, since_us) "
                       "SELECT $2, agency_id, relation, source, since_us "
                       "FROM identity_relations "
                       "WHERE person_id = $1 AND source = $3 "
                       "ON CONFLICT (person_id, agency_id, relation, source) "
                       "DO NOTHING"
                     : "INSERT INTO identity_relations "
                       "(person_id, agency_id, relation, source, since_us) "
                       "SELECT $2, agency_id, relation, source, since_us "
                       "FROM identity_relations WHERE person_id = $1 "
                       "ON CONFLICT (person_id, agency_id, relation, source) "
                       "DO NOTHING",
                 params)
          .status();
  if (!s.ok()) return s;
  params.erase(params.begin() + 1);
  return tx
      .Execute(by_source
                   ? "DELETE FROM identity_relations "
                     "WHERE person_id = $1 AND source = $2"
                   : "DELETE FROM identity_relations WHERE person_id = $1",
               params)
      .status();
}

}  // namespace

absl::Status MoveSourcePerson(Transaction& tx, absl::string_view source,
                              absl::string_view from_person,
                              absl::string_view to_person) {
  if (source.empty() || from_person == to_person) return absl::OkStatus();
  return MoveRows(tx, from_person, to_person, source);
}

absl::Status MoveRelations(Transaction& tx, absl::string_view from_person,
                           absl::string_view to_person) {
  if (from_person == to_person) return absl::OkStatus();
  return MoveRows(tx, from_person, to_person, "");
}

absl::StatusOr<std::vector<Relation>> RelationsBetween(
    Transaction& tx, absl::string_view person_id, absl::string_view agency_id) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT DISTINCT relation FROM identity_relations "
      "WHERE person_id = $1 AND agency_id = $2 ORDER BY relation",
      {std::string(person_id), std::string(agency_id)});
  if (!rows.ok()) return rows.status();
  std::vector<Relation> out;
  for (const storage::Row& row : *rows) {
    absl::StatusOr<int64_t> v = row.GetInt(0);
    if (!v.ok()) return v.status();
    out.push_back(static_cast<Relation>(*v));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> PersonsRelatedTo(
    Transaction& tx, absl::string_view agency_id,
    absl::string_view after_person_id, int limit) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT DISTINCT person_id FROM identity_relations "
      "WHERE agency_id = $1 AND person_id > $2 ORDER BY person_id LIMIT $3",
      {std::string(agency_id), std::string(after_person_id),
       static_cast<int64_t>(std::max(limit, 0))});
  if (!rows.ok()) return rows.status();
  std::vector<std::string> out;
  for (const storage::Row& row : *rows) {
    absl::StatusOr<std::string> id = row.GetText(0);
    if (!id.ok()) return id.status();
    out.push_back(*std::move(id));
  }
  return out;
}

namespace {

absl::StatusOr<std::vector<std::string>> TextColumn(absl::StatusOr<Rows> rows) {
  if (!rows.ok()) return rows.status();
  std::vector<std::string> out;
  for (const storage::Row& row : *rows) {
    absl::StatusOr<std::string> value = row.GetText(0);
    if (!value.ok()) return value.status();
    out.push_back(*std::move(value));
  }
  return out;
}

}  // namespace

absl::StatusOr<bool> OwnsCaseOf(Transaction& tx, absl::string_view person_id,
                                absl::string_view agency_id,
                                absl::string_view source) {
  std::string sql =
      "SELECT 1 FROM identity_relations WHERE person_id = $1 "
      "AND agency_id = $2 AND relation = $3";
  std::vector<storage::Value> params = {
      std::string(person_id), std::string(agency_id),
      static_cast<int64_t>(Relation::kCaseOwner)};
  if (!source.empty()) {
    params.push_back(std::string(source));
    sql += " AND source = $4";
  }
  absl::StatusOr<Rows> rows = tx.Query(sql + " LIMIT 1", params);
  if (!rows.ok()) return rows.status();
  return !rows->empty();
}

absl::StatusOr<std::vector<std::string>> CaseOwnersOf(
    Transaction& tx, absl::string_view person_id) {
  return TextColumn(tx.Query(
      "SELECT DISTINCT agency_id FROM identity_relations "
      "WHERE person_id = $1 AND relation = $2 ORDER BY agency_id",
      {std::string(person_id), static_cast<int64_t>(Relation::kCaseOwner)}));
}

absl::StatusOr<std::vector<std::string>> PersonsOfSource(
    Transaction& tx, absl::string_view source) {
  return TextColumn(
      tx.Query("SELECT DISTINCT person_id FROM identity_relations "
               "WHERE source = $1 ORDER BY person_id",
               {std::string(source)}));
}

}  // namespace lotse::identity
