#include "services/placement/store/placement_store.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/storage/rows.h"

namespace lotse::placement {
namespace {

using ::lotse::storage::Blob;
using ::lotse::storage::Bytes;
using ::lotse::storage::FirstRow;
using ::lotse::storage::MapRows;
using ::lotse::storage::ParseBlob;
using ::lotse::storage::Row;
using ::lotse::storage::Rows;
using ::lotse::storage::Sql;
using ::lotse::storage::Transaction;
using ::lotse::storage::Value;

// Newest first after `after`: " AND (create_us, id) < (...)".
void Before(Sql& sql, const PageKey& after, absl::string_view id_column) {
  if (after.empty()) return;
  sql.S(" AND (create_us < ").P(after.create_us).S(" OR (create_us = ");
  sql.P(after.create_us)
      .S(absl::StrCat(" AND ", id_column, " < "))
      .P(after.id)
      .S("))");
}

// "persons/x" / "agencies/x" -> "x".
std::string IdOf(absl::string_view name) {
  const size_t slash = name.rfind('/');
  return std::string(slash == absl::string_view::npos ? name
                                                      : name.substr(slash + 1));
}

int64_t Micros(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000 + ts.nanos() / 1000;
}

// `values` with one more: the record's update time, for the lifecycle
// anchor columns (migrations.cc, placement.0003).
std::vector<Value> WithTime(std::vector<Value> values,
                            const google::protobuf::Timestamp& update) {
  values.push_back(Micros(update));
  return values;
}

// --- offers ---

constexpr char kOfferColumns[] = "id, version, data";

absl::StatusOr<OfferRow> ParseOffer(const Row& r) {
  OfferRow row;
  absl::StatusOr<std::string> id = r.GetText(0);
  if (!id.ok()) return id.status();
  row.id = *id;
  absl::StatusOr<int64_t> version = r.GetInt(1);
  if (!version.ok()) return version.status();
  row.version = *version;
  if (absl::Status s = ParseBlob(r, 2, &row.offer); !s.ok()) return s;
  return row;
}

std::vector<Value> OfferValues(const OfferRow& row, int64_t index_seq) {
  const v1::Offer& o = row.offer;
  return {row.id,
          o.publishing_agency(),
          static_cast<int64_t>(o.kind()),
          static_cast<int64_t>(o.state()),
          o.occupation_code(),
          o.place().municipality_code(),
          static_cast<int64_t>(o.positions_total()),
          static_cast<int64_t>(o.positions_open()),
          Micros(o.create_time()),
          row.version,
          index_seq,
          Blob(o)};
}

// --- candidates ---

constexpr char kCandidateColumns[] = "person_id, version, merged_into, data";

absl::StatusOr<CandidateRow> ParseCandidate(const Row& r) {
  CandidateRow row;
  absl::StatusOr<std::string> id = r.GetText(0);
  if (!id.ok()) return id.status();
  row.person_id = *id;
  absl::StatusOr<int64_t> version = r.GetInt(1);
  if (!version.ok()) return version.status();
  row.version = *version;
  if (!r.IsNull(2)) {
    absl::StatusOr<std::string> merged = r.GetText(2);
    if (!merged.ok()) return merged.status();
    row.merged_into = *merged;
  }
  if (absl::Status s = ParseBlob(r, 3, &row.profile); !s.ok()) return s;
  return row;
}

std::vector<Value> CandidateValues(const CandidateRow& row, int64_t index_seq) {
  v1::CandidateProfile stored = row.profile;
  stored.clear_certified_language_level();
  stored.clear_certified_language_time();
  Value merged;
  if (!row.merged_into.empty()) merged = row.merged_into;
  return {row.person_id,
          stored.creating_agency(),
          static_cast<int64_t>(stored.state()),
          merged,
          Micros(stored.create_time()),
          row.version,
          index_seq,
          Blob(stored)};
}

// --- facts ---

constexpr char kFactsColumns[] =
    "person_id, work_permission, work_permission_valid_until, "
    "residence_recording_agency, residence_event_us, certified_level, "
    "certified_us, update_us";

absl::StatusOr<PersonFacts> ParseFacts(const Row& r, size_t first = 0) {
  PersonFacts f;
  absl::StatusOr<std::string> id = r.GetText(first);
  if (!id.ok()) return id.status();
  f.person_id = *id;
  absl::StatusOr<int64_t> wp = r.GetInt(first + 1);
  if (!wp.ok()) return wp.status();
  f.work_permission = static_cast<type::v1::WorkPermission>(*wp);
  if (!r.IsNull(first + 2)) {
    absl::StatusOr<int64_t> until = r.GetInt(first + 2);
    if (!until.ok()) return until.status();
    f.work_permission_valid_until = *until;
  }
  absl::StatusOr<std::string> agency = r.GetText(first + 3);
  if (!agency.ok()) return agency.status();
  f.residence_recording_agency = *agency;
  absl::StatusOr<int64_t> ev = r.GetInt(first + 4);
  absl::StatusOr<int64_t> level = r.GetInt(first + 5);
  absl::StatusOr<int64_t> cert = r.GetInt(first + 6);
  absl::StatusOr<int64_t> update = r.GetInt(first + 7);
  for (const auto* s : {&ev, &level, &cert, &update}) {
    if (!s->ok()) return s->status();
  }
  f.residence_event_us = *ev;
  f.certified_level = static_cast<type::v1::CefrLevel>(*level);
  f.certified_us = *cert;
  f.update_us = *update;
  return f;
}

// --- placements ---

constexpr char kPlacementColumns[] = "id, version, data";

absl::StatusOr<PlacementRow> ParsePlacement(const Row& r) {
  PlacementRow row;
  absl::StatusOr<std::string> id = r.GetText(0);
  if (!id.ok()) return id.status();
  row.id = *id;
  absl::StatusOr<int64_t> version = r.GetInt(1);
  if (!version.ok()) return version.status();
  row.version = *version;
  if (absl::Status s = ParseBlob(r, 2, &row.placement); !s.ok()) return s;
  return row;
}

std::vector<Value> PlacementValues(const PlacementRow& row) {
  const v1::Placement& p = row.placement;
  return {row.id,
          IdOf(p.offer()),
          IdOf(p.person()),
          p.proposing_agency(),
          static_cast<int64_t>(p.state()),
          Micros(p.create_time()),
          row.version,
          Blob(p)};
}

// --- notices ---

constexpr char kNoticeColumns[] = "id, version, hiring_agency, data";

absl::StatusOr<NoticeRow> ParseNotice(const Row& r) {
  NoticeRow row;
  absl::StatusOr<std::string> id = r.GetText(0);
  if (!id.ok()) return id.status();
  row.id = *id;
  absl::StatusOr<int64_t> version = r.GetInt(1);
  if (!version.ok()) return version.status();
  row.version = *version;
  absl::StatusOr<std::string> hiring = r.GetText(2);
  if (!hiring.ok()) return hiring.status();
  row.hiring_agency = *hiring;
  if (absl::Status s = ParseBlob(r, 3, &row.notice); !s.ok()) return s;
  return row;
}

std::vector<Value> NoticeValues(const NoticeRow& row) {
  const v1::TrainingTolerationNotice& n = row.notice;
  return {row.id,
          IdOf(n.immigration_office()),
          row.hiring_agency,
          IdOf(n.person()),
          static_cast<int64_t>(n.acknowledged() ? 1 : 0),
          Micros(n.create_time()),
          row.version,
          Blob(n)};
}

}  // namespace

std::string PageKey::Encode() const { return absl::StrCat(create_us, "|", id); }

std::optional<PageKey> PageKey::Decode(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '|');
  PageKey key;
  if (parts.size() != 2 || parts[1].empty() ||
      !absl::SimpleAtoi(parts[0], &key.create_us)) {
    return std::nullopt;
  }
  key.id = std::string(parts[1]);
  return key;
}

// --- change counter ---

absl::StatusOr<int64_t> NextIndexSeq(Transaction& tx) {
  absl::StatusOr<int64_t> changed = tx.Execute(
      "UPDATE placement_index_version SET seq = seq + 1 WHERE id = 1");
  if (!changed.ok()) return changed.status();
  return CurrentIndexSeq(tx);
}

absl::StatusOr<int64_t> CurrentIndexSeq(Transaction& tx) {
  absl::StatusOr<Rows> rows =
      tx.Query("SELECT seq FROM placement_index_version WHERE id = 1");
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::InternalError("change counter is missing");
  return rows->front().GetInt(0);
}

// --- offers ---

absl::Status LockOffer(Transaction& tx, absl::string_view id) {
  return tx.LockNamed(absl::StrCat("placement.offer.", id));
}

absl::Status InsertOffer(Transaction& tx, const OfferRow& row,
                         int64_t index_seq) {
  return tx
      .Execute(
          "INSERT INTO placement_offers (id, publisher, kind, state, "
          "occupation_code, municipality_code, positions_total, "
          "positions_open, create_us, version, index_seq, data) VALUES ($1, "
          "$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
          OfferValues(row, index_seq))
      .status();
}

absl::Status UpdateOffer(Transaction& tx, const OfferRow& row,
                         int64_t index_seq) {
  return storage::ExpectOneRow(
      tx.Execute(
          "UPDATE placement_offers SET publisher = $2, kind = $3, "
          "state = $4, occupation_code = $5, municipality_code = $6, "
          "positions_total = $7, positions_open = $8, create_us = $9, "
          "version = $10, index_seq = $11, data = $12, withdraw_us = "
          "CASE WHEN $4 = 3 THEN COALESCE(withdraw_us, $13) ELSE NULL "
          "END WHERE id = $1",
          WithTime(OfferValues(row, index_seq), row.offer.update_time())),
      "offer");
}

absl::StatusOr<std::optional<OfferRow>> ReadOffer(Transaction& tx,
                                                  absl::string_view id) {
  return FirstRow<OfferRow>(
      tx.Query(absl::StrCat("SELECT ", kOfferColumns,
                            " FROM placement_offers WHERE id = $1"),
               {std::string(id)}),
      ParseOffer);
}

absl::StatusOr<std::vector<OfferRow>> ListOffers(Transaction& tx,
                                                 const OfferFilter& filter,
                                                 const PageKey& after,
                                                 int limit) {
  Sql sql(absl::StrCat("SELECT ", kOfferColumns,
                       " FROM placement_offers WHERE 1 = 1"));
  sql.In("state", filter.states);
  if (filter.kind != 0) sql.S(" AND kind = ").P(int64_t{filter.kind});
  if (!filter.occupation_code_prefix.empty()) {
    // The prefix is validated to be digits, so it needs no LIKE escaping.
    sql.S(" AND occupation_code LIKE ")
        .P(absl::StrCat(filter.occupation_code_prefix, "%"));
  }
  if (!filter.municipality_code.empty()) {
    sql.S(" AND municipality_code = ").P(filter.municipality_code);
  }
  if (!filter.publisher.empty()) {
    sql.S(" AND publisher = ").P(filter.publisher);
  }
  Before(sql, after, "id");
  sql.S(" ORDER BY create_us DESC, id DESC LIMIT ").P(int64_t{limit});
  return MapRows<OfferRow>(sql.Query(tx), ParseOffer);
}

// --- candidates ---

absl::Status InsertCandidate(Transaction& tx, const CandidateRow& row,
                             int64_t index_seq) {
  return tx
      .Execute(
          "INSERT INTO placement_candidates (person_id, creating_agency, "
          "state, merged_into, create_us, version, index_seq, data, "
          "change_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
          WithTime(CandidateValues(row, index_seq), row.profile.update_time()))
      .status();
}

absl::Status UpdateCandidate(Transaction& tx, const CandidateRow& row,
                             int64_t index_seq) {
  return storage::ExpectOneRow(
      tx.Execute(
          "UPDATE placement_candidates SET creating_agency = $2, "
          "state = $3, merged_into = $4, create_us = $5, version = $6, "
          "index_seq = $7, data = $8, change_us = $9 WHERE person_id = "
          "$1",
          WithTime(CandidateValues(row, index_seq), row.profile.update_time())),
      "candidate");
}

absl::StatusOr<std::optional<CandidateRow>> ReadCandidate(
    Transaction& tx, absl::string_view person_id) {
  return FirstRow<CandidateRow>(
      tx.Query(absl::StrCat("SELECT ", kCandidateColumns,
                            " FROM placement_candidates WHERE person_id = $1"),
               {std::string(person_id)}),
      ParseCandidate);
}

absl::StatusOr<std::vector<CandidateRow>> ListCandidates(
    Transaction& tx, const CandidateFilter& filter, const PageKey& after,
    int limit) {
  Sql sql(absl::StrCat("SELECT ", kCandidateColumns,
                       " FROM placement_candidates WHERE merged_into IS NULL"));
  if (filter.state != 0) sql.S(" AND state = ").P(int64_t{filter.state});
  if (!filter.creating_agency.empty()) {
    sql.S(" AND creating_agency = ").P(filter.creating_agency);
  }
  Before(sql, after, "person_id");
  sql.S(" ORDER BY create_us DESC, person_id DESC LIMIT ").P(int64_t{limit});
  return MapRows<CandidateRow>(sql.Query(tx), ParseCandidate);
}

// --- facts ---

absl::StatusOr<std::optional<PersonFacts>> ReadFacts(
    Transaction& tx, absl::string_view person_id) {
  return FirstRow<PersonFacts>(
      tx.Query(absl::StrCat("SELECT ", kFactsColumns,
                            " FROM placement_person_facts WHERE person_id = "
                            "$1"),
               {std::string(person_id)}),
      [](const Row& r) { return ParseFacts(r); });
}

absl::Status UpsertFacts(Transaction& tx, const PersonFacts& f,
                         int64_t index_seq) {
  Value until;
  if (f.work_permission_valid_until) until = *f.work_permission_valid_until;
  return tx
      .Execute(
          "INSERT INTO placement_person_facts (person_id, work_permission, "
          "work_permission_valid_until, residence_recording_agency, "
          "residence_event_us, certified_level, certified_us, update_us, "
          "index_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
          "ON CONFLICT (person_id) DO UPDATE SET "
          "work_permission = excluded.work_permission, "
          "work_permission_valid_until = excluded.work_permission_valid_until, "
          "residence_recording_agency = excluded.residence_recording_agency, "
          "residence_event_us = excluded.residence_event_us, "
          "certified_level = excluded.certified_level, "
          "certified_us = excluded.certified_us, "
          "update_us = excluded.update_us, index_seq = excluded.index_seq",
          {f.person_id, static_cast<int64_t>(f.work_permission), until,
           f.residence_recording_agency, f.residence_event_us,
           static_cast<int64_t>(f.certified_level), f.certified_us, f.update_us,
           index_seq})
      .status();
}

// --- merges ---

absl::Status RecordMerge(Transaction& tx, absl::string_view merged,
                         absl::string_view survivor) {
  return tx
      .Execute(
          "INSERT INTO placement_person_merges (merged, survivor) VALUES ($1, "
          "$2) ON CONFLICT (merged) DO NOTHING",
          {std::string(merged), std::string(survivor)})
      .status();
}

absl::StatusOr<std::string> SurvivorOf(Transaction& tx,
                                       absl::string_view person_id) {
  std::string current(person_id);
  // Merges form chains (a merged into b, later b into c); they never form
  // cycles, but a bound keeps a corrupt table from looping.
  for (int hop = 0; hop < 16; ++hop) {
    absl::StatusOr<Rows> rows = tx.Query(
        "SELECT survivor FROM placement_person_merges WHERE merged = $1",
        {current});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return current;
    absl::StatusOr<std::string> next = rows->front().GetText(0);
    if (!next.ok()) return next.status();
    current = *next;
  }
  return current;
}

// --- placements ---

absl::Status InsertPlacement(Transaction& tx, const PlacementRow& row) {
  return tx
      .Execute(
          "INSERT INTO placement_placements (id, offer_id, person_id, "
          "proposing_agency, state, create_us, version, data) VALUES ($1, $2, "
          "$3, $4, $5, $6, $7, $8)",
          PlacementValues(row))
      .status();
}

absl::Status UpdatePlacement(Transaction& tx, const PlacementRow& row) {
  return storage::ExpectOneRow(
      tx.Execute("UPDATE placement_placements SET offer_id = $2, person_id = "
                 "$3, proposing_agency = $4, state = $5, create_us = $6, "
                 "version = $7, data = $8, end_us = CASE WHEN $5 IN (4, 5, 6) "
                 "THEN COALESCE(end_us, $9) ELSE NULL END WHERE id = $1",
                 WithTime(PlacementValues(row), row.placement.update_time())),
      "placement");
}

absl::StatusOr<std::optional<PlacementRow>> ReadPlacement(
    Transaction& tx, absl::string_view id) {
  return FirstRow<PlacementRow>(
      tx.Query(absl::StrCat("SELECT ", kPlacementColumns,
                            " FROM placement_placements WHERE id = $1 AND "
                            "person_id NOT LIKE 'erased:%'"),
               {std::string(id)}),
      ParsePlacement);
}

absl::StatusOr<std::vector<PlacementRow>> ListPlacements(
    Transaction& tx, const PlacementFilter& filter, const PageKey& after,
    int limit) {
  Sql sql(absl::StrCat("SELECT ", kPlacementColumns,
                       " FROM placement_placements WHERE person_id NOT "
                       "LIKE 'erased:%'"));
  if (!filter.offer_id.empty()) sql.S(" AND offer_id = ").P(filter.offer_id);
  if (!filter.person_id.empty()) {
    sql.S(" AND person_id = ").P(filter.person_id);
  }
  sql.In("state", filter.states);
  Before(sql, after, "id");
  sql.S(" ORDER BY create_us DESC, id DESC LIMIT ").P(int64_t{limit});
  return MapRows<PlacementRow>(sql.Query(tx), ParsePlacement);
}

absl::StatusOr<std::vector<PlacementRow>> OpenPlacementsOfOffer(
    Transaction& tx, absl::string_view offer_id) {
  return MapRows<PlacementRow>(
      tx.Query(absl::StrCat("SELECT ", kPlacementColumns,
                            " FROM placement_placements WHERE offer_id = $1 "
                            "AND state IN (1, 2, 3) ORDER BY create_us, id"),
               {std::string(offer_id)}),
      ParsePlacement);
}

absl::StatusOr<std::optional<PlacementRow>> OpenPlacement(
    Transaction& tx, absl::string_view offer_id, absl::string_view person_id) {
  return FirstRow<PlacementRow>(
      tx.Query(absl::StrCat("SELECT ", kPlacementColumns,
                            " FROM placement_placements WHERE offer_id = $1 "
                            "AND person_id = $2 AND state IN (1, 2, 3)"),
               {std::string(offer_id), std::string(person_id)}),
      ParsePlacement);
}

absl::StatusOr<std::vector<PlacementRow>> PlacementsOfPerson(
    Transaction& tx, absl::string_view person_id) {
  return MapRows<PlacementRow>(
      tx.Query(absl::StrCat("SELECT ", kPlacementColumns,
                            " FROM placement_placements WHERE person_id = $1 "
                            "ORDER BY create_us, id"),
               {std::string(person_id)}),
      ParsePlacement);
}

// --- notices ---

absl::Status InsertNotice(Transaction& tx, const NoticeRow& row) {
  return tx
      .Execute(
          "INSERT INTO placement_notices (id, office, hiring_agency, "
          "person_id, acknowledged, create_us, version, data) VALUES ($1, $2, "
          "$3, $4, $5, $6, $7, $8)",
          NoticeValues(row))
      .status();
}

absl::Status UpdateNotice(Transaction& tx, const NoticeRow& row) {
  return storage::ExpectOneRow(
      tx.Execute("UPDATE placement_notices SET office = $2, hiring_agency = "
                 "$3, person_id = $4, acknowledged = $5, create_us = $6, "
                 "version = $7, data = $8 WHERE id = $1",
                 NoticeValues(row)),
      "notice");
}

absl::StatusOr<std::optional<NoticeRow>> ReadNotice(Transaction& tx,
                                                    absl::string_view id) {
  return FirstRow<NoticeRow>(
      tx.Query(absl::StrCat("SELECT ", kNoticeColumns,
                            " FROM placement_notices WHERE id = $1"),
               {std::string(id)}),
      ParseNotice);
}

absl::StatusOr<std::vector<PlacementOutcome>> PlacementOutcomes(
    Transaction& tx, const std::string& municipality, int64_t from_us,
    int64_t to_us) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT p.proposing_agency, p.state FROM placement_placements p JOIN "
      "placement_offers o ON o.id = p.offer_id WHERE o.municipality_code = $1 "
      "AND p.create_us >= $2 AND p.create_us < $3",
      {municipality, from_us, to_us});
  if (!rows.ok()) return rows.status();
  std::vector<PlacementOutcome> out;
  for (const Row& row : *rows) {
    PlacementOutcome p;
    absl::StatusOr<std::string> agency = row.GetText(0);
    if (!agency.ok()) return agency.status();
    p.proposing_agency = *agency;
    absl::StatusOr<int64_t> state = row.GetInt(1);
    if (!state.ok()) return state.status();
    p.state = static_cast<v1::PlacementState>(*state);
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<std::vector<NoticeRow>> ListNotices(Transaction& tx,
                                                   absl::string_view office,
                                                   bool unacknowledged_only,
                                                   const PageKey& after,
                                                   int limit) {
  Sql sql(absl::StrCat("SELECT ", kNoticeColumns,
                       " FROM placement_notices WHERE office = "));
  sql.P(std::string(office));
  if (unacknowledged_only) sql.S(" AND acknowledged = 0");
  Before(sql, after, "id");
  sql.S(" ORDER BY create_us DESC, id DESC LIMIT ").P(int64_t{limit});
  return MapRows<NoticeRow>(sql.Query(tx), ParseNotice);
}

absl::StatusOr<std::vector<NoticeRow>> NoticesOfPerson(
    Transaction& tx, absl::string_view person_id) {
  return MapRows<NoticeRow>(
      tx.Query(absl::StrCat("SELECT ", kNoticeColumns,
                            " FROM placement_notices WHERE person_id = $1 "
                            "ORDER BY create_us, id"),
               {std::string(person_id)}),
      ParseNotice);
}

// --- the match index's feed ---

absl::StatusOr<IndexChanges> ChangedSince(Transaction& tx, int64_t since) {
  IndexChanges out;
  // The counter first: everything up to it has committed (see
  // migrations.cc), so rows read afterwards include all of it.
  absl::StatusOr<int64_t> seq = CurrentIndexSeq(tx);
  if (!seq.ok()) return seq.status();
  out.seq = *seq;
  if (out.seq <= since) return out;
  absl::StatusOr<std::vector<OfferRow>> offers = MapRows<OfferRow>(
      tx.Query(absl::StrCat("SELECT ", kOfferColumns,
                            " FROM placement_offers WHERE index_seq > $1"),
               {since}),
      ParseOffer);
  if (!offers.ok()) return offers.status();
  out.offers = *std::move(offers);
  // Candidates whose profile changed, or whose person facts changed.
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT c.person_id, c.version, c.merged_into, c.data, f.person_id, "
      "f.work_permission, f.work_permission_valid_until, "
      "f.residence_recording_agency, f.residence_event_us, f.certified_level, "
      "f.certified_us, f.update_us FROM placement_candidates c LEFT JOIN "
      "placement_person_facts f ON f.person_id = c.person_id WHERE "
      "c.index_seq > $1 OR f.index_seq > $2",
      {since, since});
  if (!rows.ok()) return rows.status();
  for (const Row& r : *rows) {
    absl::StatusOr<CandidateRow> c = ParseCandidate(r);
    if (!c.ok()) return c.status();
    std::optional<PersonFacts> facts;
    if (!r.IsNull(4)) {
      absl::StatusOr<PersonFacts> f = ParseFacts(r, 4);
      if (!f.ok()) return f.status();
      facts = *std::move(f);
    }
    out.candidates.emplace_back(*std::move(c), std::move(facts));
  }
  return out;
}

// --- lifecycle ---

absl::Status EraseCandidate(Transaction& tx, absl::string_view person_id,
                            int64_t index_seq) {
  v1::CandidateProfile empty;
  empty.set_state(v1::CANDIDATE_STATE_INACTIVE);
  return tx
      .Execute(
          "UPDATE placement_candidates SET creating_agency = '', state = $2, "
          "merged_into = $3, version = version + 1, index_seq = $4, data = $5 "
          "WHERE person_id = $1",
          {std::string(person_id), int64_t{v1::CANDIDATE_STATE_INACTIVE},
           std::string(kErasedCandidate), index_seq, Blob(empty)})
      .status();
}

absl::Status DeleteFacts(Transaction& tx, absl::string_view person_id) {
  return tx
      .Execute("DELETE FROM placement_person_facts WHERE person_id = $1",
               {std::string(person_id)})
      .status();
}

absl::Status AnonymisePlacement(Transaction& tx, PlacementRow* row) {
  row->placement.clear_person();
  row->placement.clear_candidate();
  row->placement.clear_case_step();
  ++row->version;
  // A person column no person id has and no other row shares, so the
  // one-open-placement index holds for anonymised rows too.
  return storage::ExpectOneRow(
      tx.Execute("UPDATE placement_placements SET person_id = $2, version = "
                 "$3, data = $4 WHERE id = $1",
                 {row->id, absl::StrCat("erased:", row->id), row->version,
                  Blob(row->placement)}),
      "placement");
}

absl::Status DeleteNotice(Transaction& tx, absl::string_view id) {
  return tx
      .Execute("DELETE FROM placement_notices WHERE id = $1", {std::string(id)})
      .status();
}

absl::Status DeleteOffer(Transaction& tx, absl::string_view id) {
  return tx
      .Execute("DELETE FROM placement_offers WHERE id = $1", {std::string(id)})
      .status();
}

absl::Status DeleteMergesOf(Transaction& tx, absl::string_view person_id) {
  return tx
      .Execute(
          "DELETE FROM placement_person_merges WHERE merged = $1 OR survivor "
          "= $1",
          {std::string(person_id)})
      .status();
}

}  // namespace lotse::placement
