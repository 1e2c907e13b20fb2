#include "services/identity/store/person_store.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/api/etag.h"
#include "common/api/names.h"
#include "common/errors/status.h"
#include "google/protobuf/timestamp.pb.h"
#include "services/identity/domain/person.h"
#include "services/identity/store/key_index.h"

namespace lotse::identity {
namespace {

using ::lotse::identity::v1::AgencyId;
using ::lotse::identity::v1::AgencyIdKind;
using ::lotse::identity::v1::Person;
using ::lotse::storage::Bytes;
using ::lotse::storage::Rows;
using ::lotse::storage::Value;

// A merge re-points everything merged into the merged person to the
// survivor, so chains stay one hop long; this only guards against a
// corrupted table turning a read into an endless loop.
constexpr int kMaxMergeHops = 16;
// Rows per multi-row INSERT of blocking keys.
constexpr size_t kKeysPerInsert = 100;
// The key rules this binary derives keys under, as stored in key_rules.
constexpr int64_t kKeyRules = DuplicateMatcher::kBlockingKeyVersion;

constexpr char kPersonColumns[] =
    "id, version, create_us, update_us, creating_agency, merged_into, data";
constexpr char kAgencyIdColumns[] =
    "id, person_id, kind, value, issuing_agency, version, link_us, unlink_us";

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

void SetTimestamp(int64_t micros, google::protobuf::Timestamp* ts) {
  int64_t seconds = micros / 1000000;
  int64_t rest = micros % 1000000;
  if (rest < 0) {
    rest += 1000000;
    --seconds;
  }
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(rest * 1000));
}

// The fields a client may set; everything output-only is derived from
// columns on every read, and unknown fields (from a newer client) are not
// stored because no rule has validated them.
Person ClientFields(const Person& person) {
  Person out = person;
  out.clear_name();
  out.clear_merged_names();
  out.clear_etag();
  out.clear_create_time();
  out.clear_update_time();
  out.clear_creating_agency();
  out.DiscardUnknownFields();
  return out;
}

std::string PersonEtag(absl::string_view id, int64_t version) {
  return api::ComputeEtag(PersonResourceName(id), version);
}

std::string AgencyIdEtag(absl::string_view link_id, int64_t version) {
  return api::ComputeEtag(absl::StrCat("agencyIds/", link_id), version);
}

// Cursors "{micros}:{id}"; ids never contain ':'.
std::string EncodeCursor(int64_t micros, absl::string_view id) {
  return absl::StrCat(micros, ":", id);
}

absl::Status DecodeCursor(absl::string_view cursor, int64_t* micros,
                          std::string* id) {
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(cursor, absl::MaxSplits(':', 1));
  if (!absl::SimpleAtoi(parts.first, micros) || parts.second.empty()) {
    return InvalidArgumentError(
        {{"page_token", "is not a page token issued by this service"}});
  }
  *id = std::string(parts.second);
  return absl::OkStatus();
}

absl::StatusOr<AgencyId> ToAgencyId(const storage::Row& row) {
  absl::StatusOr<std::string> id = row.GetText(0);
  absl::StatusOr<std::string> person_id = row.GetText(1);
  absl::StatusOr<int64_t> kind = row.GetInt(2);
  absl::StatusOr<std::string> value = row.GetText(3);
  absl::StatusOr<std::string> issuing_agency = row.GetText(4);
  absl::StatusOr<int64_t> version = row.GetInt(5);
  absl::StatusOr<int64_t> link_us = row.GetInt(6);
  for (const absl::Status& s :
       {id.status(), person_id.status(), kind.status(), value.status(),
        issuing_agency.status(), version.status(), link_us.status()}) {
    if (!s.ok()) return s;
  }
  AgencyId out;
  out.set_name(
      absl::StrCat(PersonResourceName(*person_id), "/agencyIds/", *id));
  out.set_kind(static_cast<AgencyIdKind>(*kind));
  out.set_value(*value);
  out.set_issuing_agency(*issuing_agency);
  SetTimestamp(*link_us, out.mutable_create_time());
  if (!row.IsNull(7)) {
    absl::StatusOr<int64_t> unlink_us = row.GetInt(7);
    if (!unlink_us.ok()) return unlink_us.status();
    out.set_unlinked(true);
    SetTimestamp(*unlink_us, out.mutable_unlink_time());
  }
  out.set_etag(AgencyIdEtag(*id, *version));
  return out;
}

// The link id in an AgencyId resource name.
std::string LinkIdOf(const AgencyId& agency_id) {
  const size_t slash = agency_id.name().rfind('/');
  return agency_id.name().substr(slash + 1);
}

// Appends "$n, $n+1, ..." for values[begin, end) to `sql`, numbered after
// the parameters already in `params`, and adds those values to `params`:
// the list of an "IN (...)" of one batch.
void AppendInList(const std::vector<std::string>& values, size_t begin,
                  size_t end, std::string* sql, std::vector<Value>* params) {
  for (size_t i = begin; i < end; ++i) {
    absl::StrAppend(sql, i == begin ? "" : ", ", "$", params->size() + 1);
    params->push_back(values[i]);
  }
}

}  // namespace

std::vector<storage::Migration> PersonMigrations() {
  return {
      {"identity.0101_persons",
       R"sql(
CREATE TABLE identity_persons (
  id TEXT PRIMARY KEY,
  version BIGINT NOT NULL,
  create_us BIGINT NOT NULL,
  update_us BIGINT NOT NULL,
  creating_agency TEXT NOT NULL,
  merged_into TEXT,
  merge_us BIGINT,
  data {{BLOB}} NOT NULL
);
CREATE INDEX identity_persons_by_create ON identity_persons (create_us, id);
CREATE INDEX identity_persons_by_agency
  ON identity_persons (creating_agency, create_us, id);
CREATE INDEX identity_persons_by_merged_into ON identity_persons (merged_into);
)sql"},
      {"identity.0102_person_keys",
       R"sql(
CREATE TABLE identity_person_keys (
  block_key TEXT NOT NULL,
  person_id TEXT NOT NULL,
  PRIMARY KEY (block_key, person_id)
);
CREATE INDEX identity_person_keys_by_person
  ON identity_person_keys (person_id);
)sql"},
      {"identity.0103_person_agency_ids",
       R"sql(
CREATE TABLE identity_person_agency_ids (
  id TEXT PRIMARY KEY,
  person_id TEXT NOT NULL,
  kind BIGINT NOT NULL,
  scope TEXT NOT NULL,
  value TEXT NOT NULL,
  issuing_agency TEXT NOT NULL,
  version BIGINT NOT NULL,
  link_us BIGINT NOT NULL,
  unlink_us BIGINT
);
CREATE UNIQUE INDEX identity_person_agency_ids_linked
  ON identity_person_agency_ids (kind, scope, value)
  WHERE unlink_us IS NULL;
CREATE INDEX identity_person_agency_ids_by_person
  ON identity_person_agency_ids (person_id, link_us, id);
)sql"},
      // ListPersons finds the persons an agency holds ids for through this
      // index; without it the query would scan every agency's links.
      {"identity.0104_person_agency_ids_by_issuer",
       R"sql(
CREATE INDEX identity_person_agency_ids_by_issuer
  ON identity_person_agency_ids (issuing_agency, person_id)
  WHERE unlink_us IS NULL;
)sql"},
      // The stored prepared form and the key clock (see the header). Rows
      // of earlier releases keep match_form NULL and key_stamp 0: they are
      // prepared when read, and older than any read phase.
      {"identity.0105_person_match_forms",
       R"sql(
ALTER TABLE identity_persons ADD COLUMN match_form {{BLOB}};
ALTER TABLE identity_persons ADD COLUMN key_stamp BIGINT NOT NULL DEFAULT 0;
CREATE INDEX identity_persons_by_key_stamp ON identity_persons (key_stamp);
CREATE TABLE identity_key_clock (
  id BIGINT PRIMARY KEY,
  stamp BIGINT NOT NULL
);
INSERT INTO identity_key_clock (id, stamp) VALUES (1, 0);
)sql"},
      // The key rules each row's blocking keys follow (see the header).
      // Rows of earlier releases read 0, "unknown": the start-up re-key
      // (rekey.h) derives their keys afresh. The index makes finding the
      // stale rows two range reads, and lets a batch take them in order.
      {"identity.0106_person_key_rules",
       R"sql(
ALTER TABLE identity_persons ADD COLUMN key_rules BIGINT NOT NULL DEFAULT 0;
CREATE INDEX identity_persons_by_key_rules ON identity_persons (key_rules);
)sql"},
  };
}

storage::Migration PersonErasureMigration() {
  return {"identity.0601_person_erasure", R"sql(
ALTER TABLE identity_persons ADD COLUMN erase_us BIGINT;
)sql"};
}

struct PersonStore::Row {
  std::string id;
  int64_t version = 0;
  int64_t create_us = 0;
  int64_t update_us = 0;
  std::string creating_agency;
  std::string merged_into;  // empty unless merged
  std::string data;
};

PersonStore::PersonStore(storage::Transaction& tx,
                         const DuplicateMatcher& matcher)
    : tx_(tx), matcher_(matcher) {}

absl::Status PersonStore::LockPerson(absl::string_view id) {
  return tx_.LockNamed(absl::StrCat("identity.person.", id));
}

absl::Status PersonStore::DecodeRow(const storage::Row& r, Row* row) {
  absl::StatusOr<std::string> rid = r.GetText(0);
  absl::StatusOr<int64_t> version = r.GetInt(1);
  absl::StatusOr<int64_t> create_us = r.GetInt(2);
  absl::StatusOr<int64_t> update_us = r.GetInt(3);
  absl::StatusOr<std::string> agency = r.GetText(4);
  absl::StatusOr<std::string> data = r.GetBytes(6);
  for (const absl::Status& s :
       {rid.status(), version.status(), create_us.status(), update_us.status(),
        agency.status(), data.status()}) {
    if (!s.ok()) return s;
  }
  row->id = *std::move(rid);
  row->version = *version;
  row->create_us = *create_us;
  row->update_us = *update_us;
  row->creating_agency = *std::move(agency);
  row->merged_into.clear();
  if (!r.IsNull(5)) {
    absl::StatusOr<std::string> merged_into = r.GetText(5);
    if (!merged_into.ok()) return merged_into.status();
    row->merged_into = *std::move(merged_into);
  }
  row->data = *std::move(data);
  return absl::OkStatus();
}

absl::StatusOr<bool> PersonStore::ReadRow(absl::string_view id, Row* row) {
  // An erased person's row is a tombstone for the key clock only: to every
  // reader and writer it is no person.
  absl::StatusOr<Rows> rows = tx_.Query(
      absl::StrCat("SELECT ", kPersonColumns,
                   " FROM identity_persons WHERE id = $1 AND erase_us IS NULL"),
      {std::string(id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return false;
  if (absl::Status s = DecodeRow(rows->front(), row); !s.ok()) return s;
  return true;
}

absl::StatusOr<Person> PersonStore::ToPerson(const Row& row,
                                             bool with_merged_names) {
  Person person;
  if (!person.ParseFromString(row.data)) {
    return absl::DataLossError("a stored person record does not parse");
  }
  person.set_name(PersonResourceName(row.id));
  person.set_etag(PersonEtag(row.id, row.version));
  SetTimestamp(row.create_us, person.mutable_create_time());
  SetTimestamp(row.update_us, person.mutable_update_time());
  person.set_creating_agency(row.creating_agency);
  if (!with_merged_names) return person;
  absl::StatusOr<Rows> merged = tx_.Query(
      "SELECT id FROM identity_persons WHERE merged_into = $1 "
      "ORDER BY merge_us, id",
      {row.id});
  if (!merged.ok()) return merged.status();
  for (const storage::Row& m : *merged) {
    absl::StatusOr<std::string> id = m.GetText(0);
    if (!id.ok()) return id.status();
    person.add_merged_names(PersonResourceName(*id));
  }
  return person;
}

absl::Status PersonStore::MergedError(const Row& row) {
  // Name the final survivor, so the client can retry against it.
  std::string survivor = row.merged_into;
  Row next;
  for (int hop = 0; hop < kMaxMergeHops; ++hop) {
    absl::StatusOr<bool> found = ReadRow(survivor, &next);
    if (!found.ok()) return found.status();
    if (!*found || next.merged_into.empty()) break;
    survivor = next.merged_into;
  }
  return ErrorWithReason(absl::StatusCode::kFailedPrecondition, "PERSON_MERGED",
                         "the person was merged into another; use the "
                         "survivor",
                         {{"survivor", PersonResourceName(survivor)}});
}

absl::Status PersonStore::ReplaceKeys(absl::string_view id,
                                      const PreparedRecord& prepared,
                                      bool fresh) {
  std::vector<std::string> keys = matcher_.BlockingKeys(prepared);
  if (!fresh) {
    absl::StatusOr<int64_t> deleted =
        tx_.Execute("DELETE FROM identity_person_keys WHERE person_id = $1",
                    {std::string(id)});
    if (!deleted.ok()) return deleted.status();
  }
  std::vector<std::pair<std::string, std::string>> rows;  // (person, key)
  absl::flat_hash_set<std::string> seen;
  for (std::string& key : keys) {
    if (seen.insert(key).second)
      rows.emplace_back(std::string(id), std::move(key));
  }
  return InsertKeys(rows);
}

absl::Status PersonStore::InsertKeys(
    const std::vector<std::pair<std::string, std::string>>& rows) {
  for (size_t begin = 0; begin < rows.size(); begin += kKeysPerInsert) {
    const size_t end = std::min(rows.size(), begin + kKeysPerInsert);
    std::string sql =
        "INSERT INTO identity_person_keys (block_key, person_id) VALUES ";
    std::vector<Value> params;
    for (size_t i = begin; i < end; ++i) {
      absl::StrAppend(&sql, i == begin ? "" : ", ", "($", params.size() + 1,
                      ", $", params.size() + 2, ")");
      params.push_back(rows[i].second);
      params.push_back(rows[i].first);
    }
    absl::StrAppend(&sql, " ON CONFLICT DO NOTHING");
    absl::StatusOr<int64_t> inserted = tx_.Execute(sql, params);
    if (!inserted.ok()) return inserted.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<Person> PersonStore::Create(const Person& person,
                                           absl::string_view creating_agency) {
  absl::StatusOr<PreparedRecord> prepared =
      matcher_.Prepare(ToMatchRecord(ClientFields(person)));
  if (!prepared.ok()) return prepared.status();
  return Create(person, creating_agency, *prepared);
}

absl::StatusOr<Person> PersonStore::Create(const Person& person,
                                           absl::string_view creating_agency,
                                           const PreparedRecord& prepared) {
  Row row;
  const Person fields = ClientFields(person);
  absl::StatusOr<int64_t> stamp = ClaimKeyStamp();
  if (!stamp.ok()) return stamp.status();
  absl::StatusOr<std::string> id = api::NewId();
  if (!id.ok()) return id.status();
  row.id = *std::move(id);
  row.version = 1;
  row.create_us = row.update_us = NowMicros();
  row.creating_agency = std::string(creating_agency);
  row.data = fields.SerializeAsString();
  absl::StatusOr<int64_t> inserted = tx_.Execute(
      "INSERT INTO identity_persons (id, version, create_us, update_us, "
      "creating_agency, data, match_form, key_stamp, key_rules) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
      {row.id, row.version, row.create_us, row.update_us, row.creating_agency,
       Bytes{row.data}, Bytes{matcher_.EncodePrepared(prepared)}, *stamp,
       kKeyRules});
  if (!inserted.ok()) return inserted.status();
  // A new id has no keys yet: no DELETE.
  if (absl::Status s = ReplaceKeys(row.id, prepared, /*fresh=*/true); !s.ok()) {
    return s;
  }
  return ToPerson(row, /*with_merged_names=*/false);
}

absl::StatusOr<int64_t> PersonStore::ReadKeyStamp() {
  absl::StatusOr<Rows> rows =
      tx_.Query("SELECT stamp FROM identity_key_clock WHERE id = 1");
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::InternalError("the key clock row is missing");
  return rows->front().GetInt(0);
}

absl::StatusOr<int64_t> PersonStore::ClaimKeyStamp() {
  if (claimed_stamp_ != 0) return claimed_stamp_;
  // The update locks the clock row until commit (PostgreSQL) and reads the
  // value it wrote, so stamps follow the order in which key writers commit.
  absl::StatusOr<Rows> rows = tx_.Query(
      "UPDATE identity_key_clock SET stamp = stamp + 1 WHERE id = 1 "
      "RETURNING stamp");
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::InternalError("the key clock row is missing");
  absl::StatusOr<int64_t> stamp = rows->front().GetInt(0);
  if (!stamp.ok()) return stamp.status();
  claimed_stamp_ = *stamp;
  return claimed_stamp_;
}

absl::StatusOr<std::vector<std::string>> PersonStore::KeyedSince(
    int64_t stamp, const std::vector<std::string>& lookup_keys) {
  std::vector<std::string> out;
  if (lookup_keys.empty()) return out;
  absl::flat_hash_set<std::string> seen;
  // Driven by the key_stamp index (few rows: the persons written since the
  // read phase), each probed with point lookups on the key index. No
  // condition on merged_into: merged persons have no keys, and SQLite would
  // pick that column's index and scan every unmerged person.
  for (size_t begin = 0; begin < lookup_keys.size(); begin += kKeysPerInsert) {
    const size_t end = std::min(lookup_keys.size(), begin + kKeysPerInsert);
    std::string sql =
        "SELECT p.id FROM identity_persons p WHERE p.key_stamp > $1 "
        "AND EXISTS (SELECT 1 FROM "
        "identity_person_keys k WHERE k.person_id = p.id AND k.block_key IN (";
    std::vector<Value> params = {stamp};
    AppendInList(lookup_keys, begin, end, &sql, &params);
    absl::StrAppend(&sql, "))");
    absl::StatusOr<Rows> rows = tx_.Query(sql, params);
    if (!rows.ok()) return rows.status();
    for (const storage::Row& row : *rows) {
      absl::StatusOr<std::string> id = row.GetText(0);
      if (!id.ok()) return id.status();
      if (seen.insert(*id).second) out.push_back(*std::move(id));
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> PersonStore::KeyedBetween(
    int64_t after, int64_t upto, int limit) {
  absl::StatusOr<Rows> rows = tx_.Query(
      "SELECT id FROM identity_persons WHERE key_stamp > $1 AND "
      "key_stamp <= $2 LIMIT $3",
      {after, upto, static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  std::vector<std::string> out;
  out.reserve(rows->size());
  for (const storage::Row& row : *rows) {
    absl::StatusOr<std::string> id = row.GetText(0);
    if (!id.ok()) return id.status();
    out.push_back(*std::move(id));
  }
  return out;
}

absl::StatusOr<std::vector<PersonStore::StampedId>>
PersonStore::KeyedInStampOrder(int64_t after, int64_t upto, int limit) {
  absl::StatusOr<Rows> rows = tx_.Query(
      "SELECT key_stamp, id FROM identity_persons WHERE key_stamp > $1 AND "
      "key_stamp <= $2 ORDER BY key_stamp LIMIT $3",
      {after, upto, static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  std::vector<StampedId> out;
  out.reserve(rows->size());
  for (const storage::Row& row : *rows) {
    absl::StatusOr<int64_t> stamp = row.GetInt(0);
    if (!stamp.ok()) return stamp.status();
    absl::StatusOr<std::string> id = row.GetText(1);
    if (!id.ok()) return id.status();
    out.push_back({*stamp, *std::move(id)});
  }
  return out;
}

namespace {

absl::Status AppendKeyRows(const Rows& rows,
                           std::vector<PersonStore::KeyRow>* out) {
  out->reserve(out->size() + rows.size());
  for (const storage::Row& row : rows) {
    absl::StatusOr<std::string> key = row.GetText(0);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> id = row.GetText(1);
    if (!id.ok()) return id.status();
    out->push_back({*std::move(key), *std::move(id)});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<PersonStore::KeyRow>> PersonStore::ScanKeys(
    bool first, absl::string_view after_key, absl::string_view after_id,
    int limit) {
  // A row-value comparison: both backends read it as one range of the
  // primary key's index.
  absl::StatusOr<Rows> rows =
      first ? tx_.Query(
                  "SELECT block_key, person_id FROM identity_person_keys "
                  "ORDER BY block_key, person_id LIMIT $1",
                  {static_cast<int64_t>(limit)})
            : tx_.Query(
                  "SELECT block_key, person_id FROM identity_person_keys "
                  "WHERE (block_key, person_id) > ($1, $2) "
                  "ORDER BY block_key, person_id LIMIT $3",
                  {std::string(after_key), std::string(after_id),
                   static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  std::vector<KeyRow> out;
  if (absl::Status s = AppendKeyRows(*rows, &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<PersonStore::KeyRow>> PersonStore::KeysOf(
    const std::vector<std::string>& ids) {
  constexpr size_t kIdsPerQuery = 100;
  std::vector<KeyRow> out;
  for (size_t begin = 0; begin < ids.size(); begin += kIdsPerQuery) {
    const size_t end = std::min(ids.size(), begin + kIdsPerQuery);
    std::string sql =
        "SELECT block_key, person_id FROM identity_person_keys "
        "WHERE person_id IN (";
    std::vector<Value> params;
    AppendInList(ids, begin, end, &sql, &params);
    absl::StrAppend(&sql, ")");
    absl::StatusOr<Rows> rows = tx_.Query(sql, params);
    if (!rows.ok()) return rows.status();
    if (absl::Status s = AppendKeyRows(*rows, &out); !s.ok()) return s;
  }
  return out;
}

absl::StatusOr<std::vector<PersonStore::StaleKeyRow>>
PersonStore::ReadStaleKeyRows(int limit) {
  std::vector<StaleKeyRow> out;
  // Older rules first, then newer ones (a binary rolled back): each an
  // indexed range read that stops after `limit` rows. Rows a batch brought
  // to the current rules leave the range, so the next read starts with
  // those still left, without a cursor.
  for (const char* range : {"key_rules < $1", "key_rules > $1"}) {
    if (out.size() >= static_cast<size_t>(limit)) break;
    absl::StatusOr<Rows> rows = tx_.Query(
        absl::StrCat(
            "SELECT id, version, key_rules, CASE WHEN merged_into IS NULL AND "
            "erase_us IS NULL THEN 1 ELSE 0 END, match_form, data "
            "FROM identity_persons WHERE ",
            range, " ORDER BY key_rules LIMIT $2"),
        {kKeyRules, static_cast<int64_t>(limit - out.size())});
    if (!rows.ok()) return rows.status();
    for (const storage::Row& r : *rows) {
      StaleKeyRow row;
      absl::StatusOr<std::string> id = r.GetText(0);
      absl::StatusOr<int64_t> version = r.GetInt(1);
      absl::StatusOr<int64_t> key_rules = r.GetInt(2);
      absl::StatusOr<int64_t> live = r.GetInt(3);
      for (const absl::Status& s :
           {id.status(), version.status(), key_rules.status(), live.status()}) {
        if (!s.ok()) return s;
      }
      row.id = *std::move(id);
      row.version = *version;
      row.key_rules = *key_rules;
      row.live = *live == 1;
      if (row.live) {
        if (!r.IsNull(4)) {
          absl::StatusOr<std::string> form = r.GetBytes(4);
          if (!form.ok()) return form.status();
          row.match_form = *std::move(form);
        }
        absl::StatusOr<std::string> data = r.GetBytes(5);
        if (!data.ok()) return data.status();
        row.data = *std::move(data);
      }
      out.push_back(std::move(row));
    }
  }
  return out;
}

absl::StatusOr<int64_t> PersonStore::CountStaleKeyRows() {
  absl::StatusOr<Rows> rows = tx_.Query(
      "SELECT (SELECT COUNT(*) FROM identity_persons WHERE key_rules < $1), "
      "(SELECT COUNT(*) FROM identity_persons WHERE key_rules > $1)",
      {kKeyRules});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::InternalError("COUNT returned no row");
  absl::StatusOr<int64_t> older = rows->front().GetInt(0);
  if (!older.ok()) return older.status();
  absl::StatusOr<int64_t> newer = rows->front().GetInt(1);
  if (!newer.ok()) return newer.status();
  return *older + *newer;
}

absl::StatusOr<PersonStore::Rekeyed> PersonStore::RekeyRows(
    const std::vector<RekeyItem>& items) {
  // Statements per chunk, not per person: on PostgreSQL each statement is a
  // round trip, and at a million persons three per person took minutes.
  constexpr size_t kRowsPerStatement = 100;
  int64_t stamp = 0;
  Rekeyed rekeyed;
  for (size_t begin = 0; begin < items.size(); begin += kRowsPerStatement) {
    const size_t end = std::min(items.size(), begin + kRowsPerStatement);
    // Merged and erased persons have no keys: they only get their rules
    // recorded, so that they stop counting as stale. Live ones get a key
    // stamp, so in-memory copies of the index and the forms learn of them.
    bool any_live = false;
    for (size_t i = begin; i < end; ++i) {
      if (!items[i].row->live) continue;
      if (items[i].prepared == nullptr) {
        return absl::InvalidArgumentError(
            "a live person needs its prepared form");
      }
      any_live = true;
    }
    if (any_live && stamp == 0) {
      absl::StatusOr<int64_t> claimed = ClaimKeyStamp();
      if (!claimed.ok()) return claimed.status();
      stamp = *claimed;
    }
    for (const bool live : {false, true}) {
      std::vector<std::string> ids;
      for (size_t i = begin; i < end; ++i) {
        if (items[i].row->live == live) ids.push_back(items[i].row->id);
      }
      if (ids.empty()) continue;
      // Only rows as they were read (version and rules): a row changed
      // since was written by someone else, whose write stands. The id list
      // makes both backends read the rows through the primary key; the
      // VALUES list is the per-row check. On PostgreSQL the update holds
      // the rows until commit, so a concurrent Update or Merge (which
      // writes the row before the keys) waits and then replaces these keys
      // with its own.
      std::vector<Value> params = {kKeyRules};
      std::string sql = "UPDATE identity_persons SET key_rules = $1";
      if (live) {
        params.push_back(stamp);
        absl::StrAppend(&sql, ", key_stamp = $2");
      }
      absl::StrAppend(&sql, " WHERE id IN (");
      AppendInList(ids, 0, ids.size(), &sql, &params);
      absl::StrAppend(&sql, ") AND (id, version, key_rules) IN (VALUES ");
      bool first = true;
      for (size_t i = begin; i < end; ++i) {
        const StaleKeyRow& row = *items[i].row;
        if (row.live != live) continue;
        absl::StrAppend(&sql, first ? "" : ", ", "($", params.size() + 1, ", $",
                        params.size() + 2, ", $", params.size() + 3, ")");
        params.push_back(row.id);
        params.push_back(row.version);
        params.push_back(row.key_rules);
        first = false;
      }
      // No condition on merged_into or erase_us: a merge or an erasure
      // changes the version, so an unchanged row is as live as it was read;
      // and SQLite would read through merged_into's index, all unmerged
      // persons, for every statement (measured: 40 times slower).
      absl::StrAppend(&sql, ") RETURNING id");
      absl::StatusOr<Rows> rows = tx_.Query(sql, params);
      if (!rows.ok()) return rows.status();
      rekeyed.rows += static_cast<int64_t>(rows->size());
      if (!live || rows->empty()) continue;
      rekeyed.persons += static_cast<int64_t>(rows->size());
      absl::flat_hash_set<std::string> written;
      for (const storage::Row& row : *rows) {
        absl::StatusOr<std::string> id = row.GetText(0);
        if (!id.ok()) return id.status();
        written.insert(*std::move(id));
      }
      // The old keys go and the new ones come in this transaction: no
      // reader ever sees the person without keys.
      std::vector<std::string> gone(written.begin(), written.end());
      std::string del = "DELETE FROM identity_person_keys WHERE person_id IN (";
      std::vector<Value> del_params;
      AppendInList(gone, 0, gone.size(), &del, &del_params);
      absl::StrAppend(&del, ")");
      absl::StatusOr<int64_t> deleted = tx_.Execute(del, del_params);
      if (!deleted.ok()) return deleted.status();
      std::vector<std::pair<std::string, std::string>> keys;  // (id, key)
      for (size_t i = begin; i < end; ++i) {
        const RekeyItem& item = items[i];
        if (!item.row->live || !written.contains(item.row->id)) continue;
        absl::flat_hash_set<std::string> seen;
        for (std::string& key : matcher_.BlockingKeys(*item.prepared)) {
          if (seen.insert(key).second) {
            keys.emplace_back(item.row->id, std::move(key));
          }
        }
        if (item.form.empty()) continue;
        absl::StatusOr<int64_t> formed = tx_.Execute(
            "UPDATE identity_persons SET match_form = $1 WHERE id = $2",
            {Bytes{std::string(item.form)}, item.row->id});
        if (!formed.ok()) return formed.status();
      }
      if (absl::Status s = InsertKeys(keys); !s.ok()) return s;
    }
  }
  return rekeyed;
}

absl::StatusOr<std::vector<MatchCandidate>> PersonStore::LoadMatchForms(
    const std::vector<std::string>& ids) {
  absl::StatusOr<std::vector<EncodedMatchCandidate>> encoded =
      LoadEncodedMatchForms(ids);
  if (!encoded.ok()) return encoded.status();
  std::vector<MatchCandidate> out;
  out.reserve(encoded->size());
  for (EncodedMatchCandidate& candidate : *encoded) {
    out.push_back({std::move(candidate.id), std::move(candidate.prepared)});
  }
  return out;
}

absl::StatusOr<std::vector<PersonStore::StoredForm>>
PersonStore::ScanMatchForms(absl::string_view after, int limit) {
  const bool by_rowid = tx_.dialect() == storage::Dialect::kSqlite;
  absl::StatusOr<Rows> rows;
  if (by_rowid) {
    int64_t after_rowid = 0;
    if (!after.empty() && !absl::SimpleAtoi(after, &after_rowid)) {
      return absl::InvalidArgumentError("not a position of this scan");
    }
    rows = tx_.Query(
        "SELECT id, match_form, rowid FROM identity_persons WHERE rowid > $1 "
        "AND merged_into IS NULL AND match_form IS NOT NULL ORDER BY rowid "
        "LIMIT $2",
        {after_rowid, static_cast<int64_t>(limit)});
  } else {
    rows = tx_.Query(
        "SELECT id, match_form FROM identity_persons WHERE id > $1 AND "
        "merged_into IS NULL AND match_form IS NOT NULL ORDER BY id LIMIT $2",
        {std::string(after), static_cast<int64_t>(limit)});
  }
  if (!rows.ok()) return rows.status();
  std::vector<StoredForm> out;
  out.reserve(rows->size());
  for (const storage::Row& row : *rows) {
    absl::StatusOr<std::string> id = row.GetText(0);
    if (!id.ok()) return id.status();
    absl::StatusOr<std::string> form = row.GetBytes(1);
    if (!form.ok()) return form.status();
    std::string position = *id;
    if (by_rowid) {
      absl::StatusOr<int64_t> rowid = row.GetInt(2);
      if (!rowid.ok()) return rowid.status();
      position = absl::StrCat(*rowid);
    }
    out.push_back({*std::move(id), *std::move(form), std::move(position)});
  }
  return out;
}

absl::StatusOr<std::vector<EncodedMatchCandidate>>
PersonStore::LoadEncodedMatchForms(const std::vector<std::string>& ids) {
  // Rows per query: a statement's parameters stay well below both
  // backends' limits.
  constexpr size_t kIdsPerQuery = 100;
  struct Form {
    PreparedRecord prepared;
    std::string encoded;
  };
  absl::flat_hash_map<std::string, Form> forms;
  for (size_t begin = 0; begin < ids.size(); begin += kIdsPerQuery) {
    const size_t end = std::min(ids.size(), begin + kIdsPerQuery);
    // The record itself only where its form must be prepared afresh.
    std::string sql =
        "SELECT id, match_form, CASE WHEN match_form IS NULL THEN data END "
        "FROM identity_persons WHERE erase_us IS NULL AND id IN (";
    std::vector<Value> params;
    AppendInList(ids, begin, end, &sql, &params);
    absl::StrAppend(&sql, ")");
    absl::StatusOr<Rows> rows = tx_.Query(sql, params);
    if (!rows.ok()) return rows.status();
    for (const storage::Row& row : *rows) {
      absl::StatusOr<std::string> id = row.GetText(0);
      if (!id.ok()) return id.status();
      std::string data;
      if (!row.IsNull(1)) {
        absl::StatusOr<std::string> form = row.GetBytes(1);
        if (!form.ok()) return form.status();
        absl::StatusOr<PreparedRecord> decoded = matcher_.DecodePrepared(*form);
        if (decoded.ok()) {
          forms[*id] = Form{*std::move(decoded), *std::move(form)};
          continue;
        }
        // Stored under other rules (or damaged): prepare afresh below.
        absl::StatusOr<Rows> record =
            tx_.Query("SELECT data FROM identity_persons WHERE id = $1", {*id});
        if (!record.ok()) return record.status();
        if (record->empty()) continue;
        absl::StatusOr<std::string> bytes = record->front().GetBytes(0);
        if (!bytes.ok()) return bytes.status();
        data = *std::move(bytes);
      } else {
        absl::StatusOr<std::string> bytes = row.GetBytes(2);
        if (!bytes.ok()) return bytes.status();
        data = *std::move(bytes);
      }
      Person person;
      if (!person.ParseFromString(data)) {
        return absl::DataLossError("a stored person record does not parse");
      }
      absl::StatusOr<PreparedRecord> prepared =
          matcher_.Prepare(ToMatchRecord(person));
      if (!prepared.ok()) return prepared.status();
      std::string encoded = matcher_.EncodePrepared(*prepared);
      forms[*id] = Form{*std::move(prepared), std::move(encoded)};
    }
  }
  std::vector<EncodedMatchCandidate> out;
  out.reserve(forms.size());
  for (const std::string& id : ids) {
    auto it = forms.find(id);
    if (it != forms.end()) {
      out.push_back({id, it->second.prepared, it->second.encoded});
    }
  }
  return out;
}

absl::StatusOr<std::string> PersonStore::ReadStoredMatchForm(
    absl::string_view id) {
  absl::StatusOr<Rows> rows =
      tx_.Query("SELECT match_form FROM identity_persons WHERE id = $1",
                {std::string(id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return PersonNotFoundError(id);
  if (rows->front().IsNull(0)) return std::string();
  return rows->front().GetBytes(0);
}

absl::StatusOr<PersonLookup> PersonStore::Get(absl::string_view id) {
  Row row;
  absl::StatusOr<bool> found = ReadRow(id, &row);
  if (!found.ok()) return found.status();
  if (!*found) return PersonNotFoundError(id);
  PersonLookup out;
  for (int hop = 0; !row.merged_into.empty(); ++hop) {
    if (hop == kMaxMergeHops) {
      return absl::InternalError("merge chain too long");
    }
    out.merged = true;
    const std::string next = row.merged_into;
    found = ReadRow(next, &row);
    if (!found.ok()) return found.status();
    if (!*found) return absl::InternalError("merged into a missing person");
  }
  absl::StatusOr<Person> person = ToPerson(row);
  if (!person.ok()) return person.status();
  out.person = *std::move(person);
  out.id = row.id;
  return out;
}

absl::StatusOr<Person> PersonStore::Update(absl::string_view id,
                                           const Person& replacement,
                                           absl::string_view etag) {
  if (absl::Status s = LockPerson(id); !s.ok()) return s;
  Row row;
  absl::StatusOr<bool> found = ReadRow(id, &row);
  if (!found.ok()) return found.status();
  if (!*found) return PersonNotFoundError(id);
  if (!row.merged_into.empty()) return MergedError(row);
  if (absl::Status s = api::CheckEtag(etag, PersonEtag(row.id, row.version));
      !s.ok()) {
    return s;
  }
  const Person fields = ClientFields(replacement);
  absl::StatusOr<PreparedRecord> prepared =
      matcher_.Prepare(ToMatchRecord(fields));
  if (!prepared.ok()) return prepared.status();
  absl::StatusOr<int64_t> stamp = ClaimKeyStamp();
  if (!stamp.ok()) return stamp.status();
  const int64_t old_version = row.version;
  row.version = old_version + 1;
  row.update_us = std::max(NowMicros(), row.update_us);
  row.data = fields.SerializeAsString();
  absl::StatusOr<int64_t> updated = tx_.Execute(
      "UPDATE identity_persons SET data = $1, version = $2, update_us = $3, "
      "match_form = $4, key_stamp = $5, key_rules = $8 "
      "WHERE id = $6 AND version = $7 AND merged_into IS NULL",
      {Bytes{row.data}, row.version, row.update_us,
       Bytes{matcher_.EncodePrepared(*prepared)}, *stamp, row.id, old_version,
       kKeyRules});
  if (!updated.ok()) return updated.status();
  if (*updated != 1) return api::CheckEtag(etag, "");  // moved on meanwhile
  if (absl::Status s = ReplaceKeys(row.id, *prepared, /*fresh=*/false);
      !s.ok()) {
    return s;
  }
  return ToPerson(row);
}

absl::StatusOr<PersonPage> PersonStore::List(absl::string_view creating_agency,
                                             absl::string_view cursor,
                                             int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit must be positive");
  std::string sql = absl::StrCat("SELECT ", kPersonColumns,
                                 " FROM identity_persons WHERE "
                                 "merged_into IS NULL AND erase_us IS NULL");
  std::vector<Value> params;
  if (!creating_agency.empty()) {
    params.push_back(std::string(creating_agency));
    absl::StrAppend(&sql, " AND creating_agency = $", params.size());
  }
  if (!cursor.empty()) {
    int64_t after_us;
    std::string after_id;
    if (absl::Status s = DecodeCursor(cursor, &after_us, &after_id); !s.ok()) {
      return s;
    }
    params.push_back(after_us);
    params.push_back(after_id);
    absl::StrAppend(&sql, " AND (create_us < $", params.size() - 1,
                    " OR (create_us = $", params.size() - 1, " AND id < $",
                    params.size(), "))");
  }
  // One more than asked tells whether another page follows.
  params.push_back(static_cast<int64_t>(limit) + 1);
  absl::StrAppend(&sql, " ORDER BY create_us DESC, id DESC LIMIT $",
                  params.size());
  absl::StatusOr<Rows> rows = tx_.Query(sql, params);
  if (!rows.ok()) return rows.status();
  PersonPage page;
  const bool more = rows->size() > static_cast<size_t>(limit);
  for (size_t i = 0; i < rows->size() && i < static_cast<size_t>(limit); ++i) {
    Row row;
    if (absl::Status s = DecodeRow((*rows)[i], &row); !s.ok()) return s;
    absl::StatusOr<Person> person = ToPerson(row);
    if (!person.ok()) return person.status();
    page.persons.push_back(*std::move(person));
    if (more && i + 1 == static_cast<size_t>(limit)) {
      page.next_cursor = EncodeCursor(row.create_us, row.id);
    }
  }
  return page;
}

absl::StatusOr<PersonPage> PersonStore::ListVisible(absl::string_view agency,
                                                    absl::string_view cursor,
                                                    int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit must be positive");
  if (agency.empty()) return absl::InvalidArgumentError("agency is required");
  std::string after;
  std::vector<Value> params = {std::string(agency)};
  if (!cursor.empty()) {
    int64_t after_us;
    std::string after_id;
    if (absl::Status s = DecodeCursor(cursor, &after_us, &after_id); !s.ok()) {
      return s;
    }
    params.push_back(after_us);
    params.push_back(after_id);
    after = " AND (p.create_us < $2 OR (p.create_us = $2 AND p.id < $3))";
  }
  // One more than asked tells whether another page follows.
  params.push_back(static_cast<int64_t>(limit) + 1);
  const std::string order_limit = absl::StrCat(
      " ORDER BY p.create_us DESC, p.id DESC LIMIT $", params.size());
  std::string columns;
  for (absl::string_view column : absl::StrSplit(kPersonColumns, ", ")) {
    absl::StrAppend(&columns, columns.empty() ? "" : ", ", "p.", column);
  }
  // The two ways an agency relates to a person, each its own indexed
  // query: the persons it created walk identity_persons_by_agency in list
  // order and stop after the page; the persons it holds ids for come from
  // its own links (identity_person_agency_ids_by_issuer), each joined by
  // primary key. Neither reads another agency's persons. DISTINCT because
  // an agency may hold several ids for one person.
  absl::StatusOr<Rows> created = tx_.Query(
      absl::StrCat("SELECT ", columns,
                   " FROM identity_persons p WHERE p.creating_agency = $1 "
                   "AND p.merged_into IS NULL",
                   after, order_limit),
      params);
  if (!created.ok()) return created.status();
  absl::StatusOr<Rows> linked = tx_.Query(
      absl::StrCat("SELECT DISTINCT ", columns,
                   " FROM identity_person_agency_ids a JOIN identity_persons p "
                   "ON p.id = a.person_id WHERE a.issuing_agency = $1 "
                   "AND a.unlink_us IS NULL AND p.merged_into IS NULL",
                   after, order_limit),
      params);
  if (!linked.ok()) return linked.status();
  // Relations other services established (identity_relations, keyed by the
  // agency id, through identity_relations_by_agency).
  std::vector<Value> related_params = params;
  related_params[0] = std::string(absl::StripPrefix(agency, "agencies/"));
  absl::StatusOr<Rows> related = tx_.Query(
      absl::StrCat("SELECT DISTINCT ", columns,
                   " FROM identity_relations r JOIN identity_persons p "
                   "ON p.id = r.person_id WHERE r.agency_id = $1 "
                   "AND p.merged_into IS NULL",
                   after, order_limit),
      related_params);
  if (!related.ok()) return related.status();

  // All are sorted newest first: merge them, dropping a person the agency
  // relates to in more than one way.
  std::vector<Row> rows;
  for (const Rows* part : {&*created, &*linked, &*related}) {
    for (const storage::Row& r : *part) {
      Row row;
      if (absl::Status s = DecodeRow(r, &row); !s.ok()) return s;
      rows.push_back(std::move(row));
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.create_us != b.create_us ? a.create_us > b.create_us : a.id > b.id;
  });
  rows.erase(
      std::unique(rows.begin(), rows.end(),
                  [](const Row& a, const Row& b) { return a.id == b.id; }),
      rows.end());

  PersonPage page;
  const bool more = rows.size() > static_cast<size_t>(limit);
  if (more) rows.resize(limit);
  for (const Row& row : rows) {
    absl::StatusOr<Person> person = ToPerson(row);
    if (!person.ok()) return person.status();
    page.persons.push_back(*std::move(person));
  }
  if (more)
    page.next_cursor = EncodeCursor(rows.back().create_us, rows.back().id);
  return page;
}

absl::StatusOr<Candidates> PersonStore::Lookup(
    const std::vector<std::string>& keys, const CandidateLimits& limits,
    absl::string_view exclude_id) {
  if (key_index_ != nullptr && claimed_stamp_ == 0) {
    return key_index_->Lookup(*this, keys, limits, exclude_id);
  }
  Candidates out;
  if (limits.per_key <= 0 || limits.total <= 0) return out;
  absl::flat_hash_set<std::string> seen_keys;
  absl::flat_hash_map<std::string, int> hits;
  std::vector<std::string> order;
  for (const std::string& key : keys) {
    if (!seen_keys.insert(key).second) continue;
    if (seen_keys.size() > kMaxCandidateLookupKeys) {
      out.truncated = true;
      break;
    }
    absl::StatusOr<Rows> rows = tx_.Query(
        "SELECT person_id FROM identity_person_keys WHERE block_key = $1 "
        "ORDER BY person_id LIMIT $2",
        {key, static_cast<int64_t>(limits.per_key) + 1});
    if (!rows.ok()) return rows.status();
    if (rows->size() > static_cast<size_t>(limits.per_key)) {
      out.truncated = true;
      rows->erase(rows->begin() + limits.per_key, rows->end());
    }
    for (const storage::Row& row : *rows) {
      absl::StatusOr<std::string> id = row.GetText(0);
      if (!id.ok()) return id.status();
      if (*id == exclude_id) continue;
      if (hits[*id]++ == 0) order.push_back(*id);
    }
  }
  // Persons sharing more keys with the query are likelier duplicates; ties
  // keep a deterministic order. The counts are copied next to the ids first:
  // looking them up in the comparator hashed two strings per comparison
  // (measured: 7 % of a FindDuplicates call at 1M persons).
  std::vector<std::pair<int, std::string>> ranked;
  ranked.reserve(order.size());
  for (std::string& id : order) {
    const int count = hits[id];
    ranked.emplace_back(count, std::move(id));
  }
  const size_t keep =
      std::min(ranked.size(), static_cast<size_t>(limits.total));
  auto better = [](const std::pair<int, std::string>& a,
                   const std::pair<int, std::string>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  std::partial_sort(ranked.begin(), ranked.begin() + keep, ranked.end(),
                    better);
  if (ranked.size() > keep) out.truncated = true;
  out.person_ids.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    out.person_ids.push_back(std::move(ranked[i].second));
  }
  return out;
}

absl::StatusOr<Candidates> PersonStore::FindCandidates(
    const MatchRecord& record, const CandidateLimits& limits,
    absl::string_view exclude_id) {
  absl::StatusOr<std::vector<std::string>> keys =
      matcher_.LookupKeys(record.names, record.birth_date);
  if (!keys.ok()) return keys.status();
  return Lookup(*keys, limits, exclude_id);
}

absl::StatusOr<Candidates> PersonStore::FindCandidates(
    const PreparedRecord& record, const CandidateLimits& limits,
    absl::string_view exclude_id) {
  return Lookup(matcher_.LookupKeys(record), limits, exclude_id);
}

absl::StatusOr<Candidates> PersonStore::Search(const MatchRecord& record,
                                               const CandidateLimits& limits) {
  absl::StatusOr<std::vector<std::string>> keys =
      matcher_.LookupKeys(record.names, record.birth_date);
  if (!keys.ok()) return keys.status();
  return SearchKeys(*std::move(keys), limits);
}

absl::StatusOr<Candidates> PersonStore::Search(const PreparedRecord& record,
                                               const CandidateLimits& limits) {
  return SearchKeys(matcher_.LookupKeys(record), limits);
}

absl::StatusOr<Candidates> PersonStore::SearchKeys(
    std::vector<std::string> keys, const CandidateLimits& limits) {
  std::vector<std::string> widened;
  for (const std::string& key : keys) {
    widened.push_back(key);
    const size_t bar = key.find("|-@");
    if (bar == std::string::npos) continue;
    for (char c = 'A'; c <= 'Z'; ++c) {
      std::string other = key;
      other[bar + 1] = c;
      widened.push_back(std::move(other));
    }
  }
  return Lookup(widened, limits, "");
}

absl::StatusOr<LinkResult> PersonStore::LinkAgencyId(
    absl::string_view id, AgencyIdKind kind, absl::string_view value,
    absl::string_view issuing_agency) {
  const std::string normalized = NormalizeAgencyIdValue(value);
  const std::string scope =
      IsNationalAgencyIdKind(kind) ? "" : std::string(issuing_agency);
  if (absl::Status s = LockPerson(id); !s.ok()) return s;
  Row person;
  absl::StatusOr<bool> found = ReadRow(id, &person);
  if (!found.ok()) return found.status();
  if (!*found) return PersonNotFoundError(id);
  if (!person.merged_into.empty()) return MergedError(person);

  absl::StatusOr<std::string> link_id = api::NewId();
  if (!link_id.ok()) return link_id.status();
  // ON CONFLICT DO NOTHING: a taken id must not abort the caller's
  // transaction; on PostgreSQL the insert waits for a concurrent linker of
  // the same id and then sees its committed row below.
  absl::StatusOr<int64_t> inserted = tx_.Execute(
      "INSERT INTO identity_person_agency_ids (id, person_id, kind, scope, "
      "value, issuing_agency, version, link_us) "
      "VALUES ($1, $2, $3, $4, $5, $6, 1, $7) ON CONFLICT DO NOTHING",
      {*link_id, std::string(id), static_cast<int64_t>(kind), scope, normalized,
       std::string(issuing_agency), NowMicros()});
  if (!inserted.ok()) return inserted.status();

  absl::StatusOr<Rows> rows = tx_.Query(
      absl::StrCat("SELECT ", kAgencyIdColumns,
                   " FROM identity_person_agency_ids WHERE kind = $1 AND "
                   "scope = $2 AND value = $3 AND unlink_us IS NULL"),
      {static_cast<int64_t>(kind), scope, normalized});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) {
    // The conflicting link was unlinked between our insert and this read: a
    // conflict like a serialization failure, which RunInTransaction retries.
    return storage::ConflictError("agency id changed concurrently; retry");
  }
  absl::StatusOr<std::string> holder = rows->front().GetText(1);
  if (!holder.ok()) return holder.status();
  if (*holder != id) {
    return ErrorWithReason(absl::StatusCode::kAlreadyExists, "AGENCY_ID_TAKEN",
                           "this agency id is linked to another person",
                           {{"person", PersonResourceName(*holder)}});
  }
  absl::StatusOr<AgencyId> agency_id = ToAgencyId(rows->front());
  if (!agency_id.ok()) return agency_id.status();
  LinkResult result;
  result.created = *inserted == 1;
  result.agency_id = *std::move(agency_id);
  return result;
}

absl::StatusOr<AgencyId> PersonStore::UnlinkAgencyId(absl::string_view id,
                                                     absl::string_view link_id,
                                                     absl::string_view etag) {
  if (absl::Status s = LockPerson(id); !s.ok()) return s;
  Row person;
  absl::StatusOr<bool> found = ReadRow(id, &person);
  if (!found.ok()) return found.status();
  if (!*found) return PersonNotFoundError(id);
  if (!person.merged_into.empty()) return MergedError(person);
  absl::StatusOr<Rows> rows = tx_.Query(
      absl::StrCat("SELECT ", kAgencyIdColumns,
                   " FROM identity_person_agency_ids WHERE id = $1 AND "
                   "person_id = $2"),
      {std::string(link_id), std::string(id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::NotFoundError("no such agency id");
  absl::StatusOr<AgencyId> current = ToAgencyId(rows->front());
  if (!current.ok()) return current.status();
  if (current->unlinked()) {
    return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                           "ALREADY_UNLINKED",
                           "the agency id is already unlinked");
  }
  if (absl::Status s = api::CheckEtag(etag, current->etag()); !s.ok()) {
    return s;
  }
  absl::StatusOr<int64_t> version = rows->front().GetInt(5);
  if (!version.ok()) return version.status();
  absl::StatusOr<int64_t> updated = tx_.Execute(
      "UPDATE identity_person_agency_ids SET unlink_us = $1, version = $2 "
      "WHERE id = $3 AND version = $4 AND unlink_us IS NULL",
      {NowMicros(), *version + 1, std::string(link_id), *version});
  if (!updated.ok()) return updated.status();
  if (*updated != 1) return api::CheckEtag(etag, "");
  rows = tx_.Query(absl::StrCat("SELECT ", kAgencyIdColumns,
                                " FROM identity_person_agency_ids "
                                "WHERE id = $1"),
                   {std::string(link_id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::InternalError("unlinked row vanished");
  return ToAgencyId(rows->front());
}

absl::StatusOr<AgencyIdPage> PersonStore::ListAgencyIds(
    absl::string_view id, bool include_unlinked, absl::string_view cursor,
    int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit must be positive");
  std::string sql = absl::StrCat("SELECT ", kAgencyIdColumns,
                                 " FROM identity_person_agency_ids "
                                 "WHERE person_id = $1");
  std::vector<Value> params = {std::string(id)};
  if (!include_unlinked) absl::StrAppend(&sql, " AND unlink_us IS NULL");
  if (!cursor.empty()) {
    int64_t after_us;
    std::string after_id;
    if (absl::Status s = DecodeCursor(cursor, &after_us, &after_id); !s.ok()) {
      return s;
    }
    params.push_back(after_us);
    params.push_back(after_id);
    absl::StrAppend(&sql, " AND (link_us > $2 OR (link_us = $2 AND id > $3))");
  }
  params.push_back(static_cast<int64_t>(limit) + 1);
  absl::StrAppend(&sql, " ORDER BY link_us, id LIMIT $", params.size());
  absl::StatusOr<Rows> rows = tx_.Query(sql, params);
  if (!rows.ok()) return rows.status();
  AgencyIdPage page;
  const bool more = rows->size() > static_cast<size_t>(limit);
  for (size_t i = 0; i < rows->size() && i < static_cast<size_t>(limit); ++i) {
    absl::StatusOr<AgencyId> agency_id = ToAgencyId((*rows)[i]);
    if (!agency_id.ok()) return agency_id.status();
    if (more && i + 1 == static_cast<size_t>(limit)) {
      absl::StatusOr<int64_t> link_us = (*rows)[i].GetInt(6);
      if (!link_us.ok()) return link_us.status();
      page.next_cursor = EncodeCursor(*link_us, LinkIdOf(*agency_id));
    }
    page.agency_ids.push_back(*std::move(agency_id));
  }
  return page;
}

absl::Status PersonNotFoundError(absl::string_view id) {
  return ErrorWithReason(absl::StatusCode::kNotFound, "PERSON_NOT_FOUND",
                         absl::StrCat("no person ", PersonResourceName(id)));
}

absl::StatusOr<std::optional<PersonStore::LinkedId>>
PersonStore::FindNationalLink(AgencyIdKind kind, absl::string_view value) {
  absl::StatusOr<Rows> rows = tx_.Query(
      "SELECT person_id, issuing_agency FROM identity_person_agency_ids "
      "WHERE kind = $1 AND scope = '' AND value = $2 AND unlink_us IS NULL",
      {static_cast<int64_t>(kind), NormalizeAgencyIdValue(value)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::nullopt;
  LinkedId link;
  absl::StatusOr<std::string> person = rows->front().GetText(0);
  if (!person.ok()) return person.status();
  absl::StatusOr<std::string> issuer = rows->front().GetText(1);
  if (!issuer.ok()) return issuer.status();
  link.person_id = *std::move(person);
  link.issuing_agency = *std::move(issuer);
  return link;
}

absl::StatusOr<PersonLookup> PersonStore::LookupByAgencyId(
    AgencyIdKind kind, absl::string_view value,
    absl::string_view issuing_agency) {
  const std::string scope =
      IsNationalAgencyIdKind(kind) ? "" : std::string(issuing_agency);
  absl::StatusOr<Rows> rows = tx_.Query(
      "SELECT person_id FROM identity_person_agency_ids WHERE kind = $1 AND "
      "scope = $2 AND value = $3 AND unlink_us IS NULL",
      {static_cast<int64_t>(kind), scope, NormalizeAgencyIdValue(value)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::NotFoundError("no person has this agency id");
  absl::StatusOr<std::string> person_id = rows->front().GetText(0);
  if (!person_id.ok()) return person_id.status();
  return Get(*person_id);
}

absl::StatusOr<Person> PersonStore::Merge(absl::string_view survivor_id,
                                          absl::string_view survivor_etag,
                                          absl::string_view merged_id,
                                          absl::string_view merged_etag) {
  if (survivor_id == merged_id) {
    return InvalidArgumentError(
        {{"merged", "must name another person than survivor"}});
  }
  // Both locks, always in the same order, so two opposite merges of the
  // same pair cannot deadlock.
  const bool survivor_first = survivor_id < merged_id;
  for (absl::string_view id :
       survivor_first
           ? std::vector<absl::string_view>{survivor_id, merged_id}
           : std::vector<absl::string_view>{merged_id, survivor_id}) {
    if (absl::Status s = LockPerson(id); !s.ok()) return s;
  }
  // Every precondition is checked before the first write, so a refused
  // merge writes nothing at all.
  Row survivor;
  Row merged;
  absl::StatusOr<bool> found = ReadRow(survivor_id, &survivor);
  if (!found.ok()) return found.status();
  if (!*found) return absl::NotFoundError("no survivor person with this id");
  found = ReadRow(merged_id, &merged);
  if (!found.ok()) return found.status();
  if (!*found) return absl::NotFoundError("no merged person with this id");
  if (!survivor.merged_into.empty()) return MergedError(survivor);
  if (!merged.merged_into.empty()) return MergedError(merged);
  if (absl::Status s = api::CheckEtag(
          survivor_etag, PersonEtag(survivor.id, survivor.version));
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          api::CheckEtag(merged_etag, PersonEtag(merged.id, merged.version));
      !s.ok()) {
    return s;
  }

  const int64_t now = std::max(NowMicros(), survivor.update_us);
  // The merged person's keys are removed below: a key write like any other,
  // so in-memory copies of the index (KeyIndex) learn of it.
  absl::StatusOr<int64_t> stamp = ClaimKeyStamp();
  if (!stamp.ok()) return stamp.status();
  absl::StatusOr<int64_t> changed = tx_.Execute(
      "UPDATE identity_persons SET merged_into = $1, merge_us = $2, "
      "update_us = $2, version = version + 1, key_stamp = $5 "
      "WHERE id = $3 AND version = $4 AND merged_into IS NULL",
      {survivor.id, now, merged.id, merged.version, *stamp});
  if (!changed.ok()) return changed.status();
  if (*changed != 1) return api::CheckEtag(merged_etag, "");
  // Keep chains one hop long: whatever was merged into the merged person
  // now points at the survivor directly.
  changed = tx_.Execute(
      "UPDATE identity_persons SET merged_into = $1 WHERE merged_into = $2",
      {survivor.id, merged.id});
  if (!changed.ok()) return changed.status();
  changed = tx_.Execute(
      "UPDATE identity_person_agency_ids SET person_id = $1, "
      "version = version + 1 WHERE person_id = $2",
      {survivor.id, merged.id});
  if (!changed.ok()) return changed.status();
  changed = tx_.Execute("DELETE FROM identity_person_keys WHERE person_id = $1",
                        {merged.id});
  if (!changed.ok()) return changed.status();
  // The survivor's merged_names changed, so its etag must change too.
  changed = tx_.Execute(
      "UPDATE identity_persons SET version = $1, update_us = $2 "
      "WHERE id = $3 AND version = $4 AND merged_into IS NULL",
      {survivor.version + 1, now, survivor.id, survivor.version});
  if (!changed.ok()) return changed.status();
  if (*changed != 1) return api::CheckEtag(survivor_etag, "");
  survivor.version += 1;
  survivor.update_us = now;
  return ToPerson(survivor);
}

absl::StatusOr<std::vector<std::string>> PersonStore::Erase(
    absl::string_view id) {
  if (absl::Status s = LockPerson(id); !s.ok()) return s;
  Row row;
  absl::StatusOr<bool> found = ReadRow(id, &row);
  if (!found.ok()) return found.status();
  if (!*found) return PersonNotFoundError(id);
  if (!row.merged_into.empty()) return MergedError(row);
  absl::StatusOr<Rows> merged = tx_.Query(
      "SELECT id FROM identity_persons WHERE merged_into = $1 ORDER BY id",
      {row.id});
  if (!merged.ok()) return merged.status();
  std::vector<std::string> ids = {row.id};
  for (const storage::Row& m : *merged) {
    absl::StatusOr<std::string> merged_id = m.GetText(0);
    if (!merged_id.ok()) return merged_id.status();
    ids.push_back(*std::move(merged_id));
  }
  // The removal of the keys is a key write like any other: the stamp tells
  // the in-memory copies (KeyIndex, MatchFormCache) to drop these persons.
  absl::StatusOr<int64_t> stamp = ClaimKeyStamp();
  if (!stamp.ok()) return stamp.status();
  const int64_t now = std::max(NowMicros(), row.update_us);
  const std::string empty = Person().SerializeAsString();
  for (const std::string& erased : ids) {
    absl::StatusOr<int64_t> changed = tx_.Execute(
        "UPDATE identity_persons SET data = $1, match_form = NULL, "
        "creating_agency = '', version = version + 1, update_us = $2, "
        "erase_us = $2, key_stamp = $3 WHERE id = $4",
        {Bytes{empty}, now, *stamp, erased});
    if (!changed.ok()) return changed.status();
    for (const char* sql :
         {"DELETE FROM identity_person_keys WHERE person_id = $1",
          "DELETE FROM identity_person_agency_ids WHERE person_id = $1"}) {
      changed = tx_.Execute(sql, {erased});
      if (!changed.ok()) return changed.status();
    }
  }
  return ids;
}

absl::StatusOr<std::optional<std::string>> PersonStore::ErasedAs(
    absl::string_view id) {
  absl::StatusOr<Rows> rows = tx_.Query(
      "SELECT merged_into, erase_us FROM identity_persons WHERE id = $1",
      {std::string(id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty() || rows->front().IsNull(1)) return std::nullopt;
  if (rows->front().IsNull(0)) return std::string(id);
  return rows->front().GetText(0);
}

}  // namespace lotse::identity
