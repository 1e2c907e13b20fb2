#include "services/cases/store/case_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/lifecycle/person_keys.h"

namespace lotse::cases {
namespace {

using storage::Bytes;
using storage::Row;
using storage::Rows;
using storage::Transaction;
using storage::Value;

constexpr char kInitSql[] = R"sql(
CREATE TABLE cases_agencies (
  id TEXT PRIMARY KEY,
  legal_domain TEXT NOT NULL,
  municipality_code TEXT NOT NULL,
  certificate_identity TEXT NOT NULL,
  suspended BIGINT NOT NULL
);
CREATE INDEX cases_agencies_cert ON cases_agencies (certificate_identity);
CREATE TABLE cases (
  id TEXT PRIMARY KEY,
  person TEXT NOT NULL,
  owner_agency TEXT NOT NULL,
  state BIGINT NOT NULL,
  create_us BIGINT NOT NULL,
  version BIGINT NOT NULL,
  body {{BLOB}} NOT NULL
);
CREATE INDEX cases_person ON cases (person, state);
CREATE INDEX cases_create ON cases (create_us, id);
CREATE TABLE case_participants (
  case_id TEXT NOT NULL,
  agency TEXT NOT NULL,
  PRIMARY KEY (case_id, agency)
);
CREATE INDEX case_participants_agency ON case_participants (agency, case_id);
CREATE TABLE plan_versions (
  case_id TEXT NOT NULL,
  version BIGINT NOT NULL,
  body {{BLOB}} NOT NULL,
  PRIMARY KEY (case_id, version)
);
CREATE TABLE steps (
  id TEXT PRIMARY KEY,
  case_id TEXT NOT NULL,
  state BIGINT NOT NULL,
  kind BIGINT NOT NULL,
  receiving_agency TEXT NOT NULL,
  municipality_code TEXT NOT NULL,
  create_us BIGINT NOT NULL,
  accept_us BIGINT NOT NULL,
  start_us BIGINT NOT NULL,
  due_key BIGINT NOT NULL,
  version BIGINT NOT NULL,
  body {{BLOB}} NOT NULL
);
CREATE INDEX steps_case ON steps (case_id, create_us, id);
CREATE INDEX steps_receiver ON steps (receiving_agency, create_us, id);
CREATE INDEX steps_referred ON steps (municipality_code, create_us);
CREATE INDEX steps_due ON steps (municipality_code, state, due_key);
CREATE TABLE step_dependencies (
  step_id TEXT NOT NULL,
  depends_on TEXT NOT NULL,
  PRIMARY KEY (step_id, depends_on)
);
CREATE TABLE unassigned_activities (
  id {{AUTO_ID}},
  person TEXT NOT NULL,
  case_id TEXT NOT NULL,
  body {{BLOB}} NOT NULL
);
CREATE INDEX unassigned_activities_person
  ON unassigned_activities (person, case_id, id);
CREATE TABLE notes (
  id TEXT PRIMARY KEY,
  case_id TEXT NOT NULL,
  step_id TEXT NOT NULL,
  author_agency TEXT NOT NULL,
  create_us BIGINT NOT NULL,
  version BIGINT NOT NULL,
  body {{BLOB}} NOT NULL
);
CREATE INDEX notes_case ON notes (case_id, author_agency, create_us, id);
CREATE TABLE person_merges (
  merged TEXT PRIMARY KEY,
  survivor TEXT NOT NULL
);
CREATE TABLE case_events (
  seq BIGINT PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  case_id TEXT NOT NULL,
  person TEXT NOT NULL,
  body {{BLOB}} NOT NULL
);
CREATE TABLE case_event_audience (
  agency TEXT NOT NULL,
  seq BIGINT NOT NULL,
  case_id TEXT NOT NULL,
  PRIMARY KEY (agency, seq)
);
)sql";

Value Blob(const google::protobuf::Message& m) {
  return Bytes{m.SerializeAsString()};
}

template <typename Message>
absl::StatusOr<Message> ParseBlob(const Row& row, size_t column) {
  absl::StatusOr<std::string> bytes = row.GetBytes(column);
  if (!bytes.ok()) return bytes.status();
  Message m;
  if (!m.ParseFromString(*bytes)) {
    return absl::InternalError("stored record does not parse");
  }
  return m;
}

int64_t TsMicros(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000 + ts.nanos() / 1000;
}

// "(1,2,3)" for an IN list of validated enum numbers.
std::string IntList(const std::vector<int>& values) {
  return absl::StrCat("(", absl::StrJoin(values, ","), ")");
}

std::string Param(std::vector<Value>* params, Value v) {
  params->push_back(std::move(v));
  return absl::StrCat("$", params->size());
}

// Rows of (id, version, body) into CaseRows.
absl::StatusOr<std::vector<CaseRow>> CaseRows(const Rows& rows) {
  std::vector<CaseRow> out;
  for (const Row& row : rows) {
    CaseRow c;
    absl::StatusOr<std::string> id = row.GetText(0);
    if (!id.ok()) return id.status();
    c.id = *id;
    absl::StatusOr<int64_t> version = row.GetInt(1);
    if (!version.ok()) return version.status();
    c.version = *version;
    absl::StatusOr<v1::Case> body = ParseBlob<v1::Case>(row, 2);
    if (!body.ok()) return body.status();
    c.record = *std::move(body);
    out.push_back(std::move(c));
  }
  return out;
}

// Rows of (id, case_id, version, municipality_code, body) into StepRows.
absl::StatusOr<std::vector<StepRow>> StepRows(const Rows& rows) {
  std::vector<StepRow> out;
  for (const Row& row : rows) {
    StepRow s;
    absl::StatusOr<std::string> text = row.GetText(0);
    if (!text.ok()) return text.status();
    s.id = *text;
    if (text = row.GetText(1); !text.ok()) return text.status();
    s.case_id = *text;
    absl::StatusOr<int64_t> version = row.GetInt(2);
    if (!version.ok()) return version.status();
    s.version = *version;
    if (text = row.GetText(3); !text.ok()) return text.status();
    s.municipality_code = *text;
    absl::StatusOr<v1::Step> body = ParseBlob<v1::Step>(row, 4);
    if (!body.ok()) return body.status();
    s.record = *std::move(body);
    out.push_back(std::move(s));
  }
  return out;
}

constexpr char kStepColumns[] = "id, case_id, version, municipality_code, body";

// The sealing context of case_events bodies (person_keys.h).
constexpr char kCaseEventsContext[] = "case_events";

// "p1" of "persons/p1" (the form person keys are kept under).
std::string PersonId(absl::string_view person) {
  absl::ConsumePrefix(&person, "persons/");
  return std::string(person);
}

// The event of a case_events row whose person and body are at `column`
// and `column + 1`: nullopt when the row cannot be read any more because
// its person was erased (the key is shredded, or the body was emptied).
absl::StatusOr<std::optional<v1::CaseEvent>> OpenEventRow(Transaction& tx,
                                                          const Row& row,
                                                          size_t column) {
  absl::StatusOr<std::string> person = row.GetText(column);
  if (!person.ok()) return person.status();
  absl::StatusOr<std::string> body = row.GetBytes(column + 1);
  if (!body.ok()) return body.status();
  if (body->empty()) return std::optional<v1::CaseEvent>();
  std::string plain;
  if (lifecycle::IsSealed(*body)) {
    absl::StatusOr<std::string> opened = lifecycle::OpenForPerson(
        tx, PersonId(*person), kCaseEventsContext, *body);
    if (absl::IsNotFound(opened.status())) {
      return std::optional<v1::CaseEvent>();
    }
    if (!opened.ok()) return opened.status();
    plain = *std::move(opened);
  } else {
    plain = *std::move(body);  // written before sealing existed
  }
  v1::CaseEvent e;
  if (!e.ParseFromString(plain)) {
    return absl::InternalError("stored record does not parse");
  }
  return std::optional<v1::CaseEvent>(std::move(e));
}

absl::Status WriteParticipants(Transaction& tx, const CaseRow& row) {
  absl::StatusOr<int64_t> n =
      tx.Execute("DELETE FROM case_participants WHERE case_id = $1", {row.id});
  if (!n.ok()) return n.status();
  for (const std::string& agency : row.record.participating_agencies()) {
    n = tx.Execute(
        "INSERT INTO case_participants (case_id, agency) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        {row.id, agency});
    if (!n.ok()) return n.status();
  }
  return absl::OkStatus();
}

absl::Status WriteDependencies(Transaction& tx, const StepRow& row) {
  absl::StatusOr<int64_t> n =
      tx.Execute("DELETE FROM step_dependencies WHERE step_id = $1", {row.id});
  if (!n.ok()) return n.status();
  for (const std::string& dep : row.record.depends_on()) {
    n = tx.Execute(
        "INSERT INTO step_dependencies (step_id, depends_on) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        {row.id, dep});
    if (!n.ok()) return n.status();
  }
  return absl::OkStatus();
}

std::vector<Value> StepValues(const StepRow& row) {
  const v1::Step& s = row.record;
  return {row.id,
          row.case_id,
          static_cast<int64_t>(s.state()),
          static_cast<int64_t>(s.kind()),
          s.receiving_agency(),
          row.municipality_code,
          TsMicros(s.create_time()),
          s.has_accept_time() ? TsMicros(s.accept_time()) : int64_t{0},
          s.has_start_time() ? TsMicros(s.start_time()) : int64_t{0},
          s.has_due_date() ? static_cast<int64_t>(s.due_date().year() * 10000 +
                                                  s.due_date().month() * 100 +
                                                  s.due_date().day())
                           : int64_t{0},
          row.version,
          Blob(s)};
}

absl::StatusOr<std::vector<NoteRow>> NoteRows(const Rows& rows) {
  std::vector<NoteRow> out;
  for (const Row& row : rows) {
    NoteRow n;
    absl::StatusOr<std::string> text = row.GetText(0);
    if (!text.ok()) return text.status();
    n.id = *text;
    if (text = row.GetText(1); !text.ok()) return text.status();
    n.case_id = *text;
    if (text = row.GetText(2); !text.ok()) return text.status();
    n.step_id = *text;
    absl::StatusOr<int64_t> version = row.GetInt(3);
    if (!version.ok()) return version.status();
    n.version = *version;
    absl::StatusOr<v1::Note> body = ParseBlob<v1::Note>(row, 4);
    if (!body.ok()) return body.status();
    n.record = *std::move(body);
    out.push_back(std::move(n));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> TextColumn(const Rows& rows) {
  std::vector<std::string> out;
  for (const Row& row : rows) {
    absl::StatusOr<std::string> s = row.GetText(0);
    if (!s.ok()) return s.status();
    out.push_back(*std::move(s));
  }
  return out;
}

}  // namespace

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

std::vector<storage::Migration> CaseStoreMigrations() {
  // 0002: the agency registry moved to common/agencies (local_agencies,
  // created by agencies::RegistryMigration just before this one); the rows
  // learned so far move with it.
  return {{"cases.0001_init", kInitSql},
          agencies::RegistryMigration(),
          {"cases.0002_agencies_to_local",
           "INSERT INTO local_agencies (id, certificate_identity, "
           "legal_domain, municipality_code, suspended, update_us) "
           "SELECT id, certificate_identity, legal_domain, municipality_code, "
           "suspended, 0 FROM cases_agencies;\n"
           "DROP TABLE cases_agencies;"},
          // The AuditService's person filter asks which ids were merged
          // into a survivor.
          {"cases.0003_person_merges_by_survivor",
           "CREATE INDEX person_merges_by_survivor ON person_merges "
           "(survivor, merged);"}};
}

std::vector<storage::Migration> CaseLifecycleMigrations() {
  // close_us: the anchor of the retention kinds "case" and "note", found by
  // the purge tasks through cases_closed. step_statistics: the kept timing
  // facts of removed cases' steps, indexed like steps for the statistics.
  // case_events_case and case_event_audience_case: removing a case finds
  // its event rows.
  return {{"cases.0004_lifecycle", R"sql(
ALTER TABLE cases ADD COLUMN close_us BIGINT NOT NULL DEFAULT 0;
CREATE INDEX cases_closed ON cases (state, close_us);
CREATE TABLE step_statistics (
  id {{AUTO_ID}},
  kind BIGINT NOT NULL,
  receiving_agency TEXT NOT NULL,
  municipality_code TEXT NOT NULL,
  create_us BIGINT NOT NULL,
  accept_us BIGINT NOT NULL,
  start_us BIGINT NOT NULL,
  state BIGINT NOT NULL,
  due_key BIGINT NOT NULL
);
CREATE INDEX step_statistics_referred
  ON step_statistics (municipality_code, create_us);
CREATE INDEX step_statistics_due
  ON step_statistics (municipality_code, state, due_key);
CREATE INDEX case_events_case ON case_events (case_id, seq);
CREATE INDEX case_event_audience_case ON case_event_audience (case_id);
)sql"}};
}

std::vector<storage::Migration> CaseEventRestoreMigrations() {
  // One row per restore of the database from a backup: the newest cursor
  // of the restored history and the cursor after which new events are
  // numbered (FenceRestoredCaseEvents).
  return {{"cases.0005_case_event_restores", R"sql(
CREATE TABLE case_event_restores (
  restored_seq BIGINT PRIMARY KEY,
  resume_after BIGINT NOT NULL,
  restore_us BIGINT NOT NULL
);
)sql"}};
}

absl::StatusOr<std::vector<std::string>> PersonsOfCaseResource(
    Transaction& tx, const std::string& resource) {
  absl::string_view rest = resource;
  if (!absl::ConsumePrefix(&rest, "cases/")) return std::vector<std::string>{};
  const std::string case_id(rest.substr(0, rest.find('/')));
  if (case_id.empty()) return std::vector<std::string>{};
  absl::StatusOr<storage::Rows> rows =
      tx.Query("SELECT person FROM cases WHERE id = $1", {case_id});
  if (!rows.ok()) return rows.status();
  std::vector<std::string> out;
  for (const storage::Row& row : *rows) {
    absl::StatusOr<std::string> person = row.GetText(0);
    if (!person.ok()) return person.status();
    absl::string_view id = *person;
    absl::ConsumePrefix(&id, "persons/");
    if (!id.empty()) out.emplace_back(id);
  }
  return out;
}

absl::StatusOr<std::optional<std::string>> OwnerOfCaseResource(
    Transaction& tx, const std::string& resource) {
  absl::string_view rest = resource;
  if (!absl::ConsumePrefix(&rest, "cases/")) return std::nullopt;
  const std::string case_id(rest.substr(0, rest.find('/')));
  if (case_id.empty()) return std::nullopt;
  absl::StatusOr<storage::Rows> rows =
      tx.Query("SELECT owner_agency FROM cases WHERE id = $1", {case_id});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::nullopt;
  absl::StatusOr<std::string> owner = rows->front().GetText(0);
  if (!owner.ok()) return owner.status();
  return *std::move(owner);
}

absl::Status LockCase(Transaction& tx, const std::string& case_id) {
  return tx.LockNamed(absl::StrCat("case/", case_id));
}

// ---- Cases ----

absl::Status InsertCase(Transaction& tx, const CaseRow& row) {
  absl::StatusOr<int64_t> n = tx.Execute(
      "INSERT INTO cases (id, person, owner_agency, state, create_us, "
      "version, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
      {row.id, row.record.person(), row.record.owner_agency(),
       static_cast<int64_t>(row.record.state()),
       TsMicros(row.record.create_time()), row.version, Blob(row.record)});
  if (!n.ok()) return n.status();
  return WriteParticipants(tx, row);
}

absl::Status UpdateCase(Transaction& tx, const CaseRow& row) {
  const int64_t close_us =
      row.record.state() == v1::CASE_STATE_CLOSED && row.record.has_close_time()
          ? TsMicros(row.record.close_time())
          : int64_t{0};
  absl::StatusOr<int64_t> n = tx.Execute(
      "UPDATE cases SET person = $2, owner_agency = $3, state = $4, "
      "version = $5, body = $6, close_us = $7 WHERE id = $1",
      {row.id, row.record.person(), row.record.owner_agency(),
       static_cast<int64_t>(row.record.state()), row.version, Blob(row.record),
       close_us});
  if (!n.ok()) return n.status();
  if (*n != 1) return absl::NotFoundError("case vanished");
  return WriteParticipants(tx, row);
}

absl::StatusOr<std::optional<CaseRow>> ReadCase(Transaction& tx,
                                                const std::string& id) {
  absl::StatusOr<Rows> rows =
      tx.Query("SELECT id, version, body FROM cases WHERE id = $1", {id});
  if (!rows.ok()) return rows.status();
  absl::StatusOr<std::vector<CaseRow>> cases = CaseRows(*rows);
  if (!cases.ok()) return cases.status();
  if (cases->empty()) return std::optional<CaseRow>();
  return std::optional<CaseRow>(std::move(cases->front()));
}

absl::StatusOr<std::optional<std::string>> FindOpenCase(
    Transaction& tx, const std::string& person,
    const std::string& owner_agency_name) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT id FROM cases WHERE person = $1 AND state <> $2 AND "
      "owner_agency = $3 ORDER BY create_us LIMIT 1",
      {person, static_cast<int64_t>(v1::CASE_STATE_CLOSED), owner_agency_name});
  if (!rows.ok()) return rows.status();
  absl::StatusOr<std::vector<std::string>> ids = TextColumn(*rows);
  if (!ids.ok()) return ids.status();
  if (ids->empty()) return std::optional<std::string>();
  return std::optional<std::string>(ids->front());
}

absl::StatusOr<std::vector<std::string>> OpenCasesOfPerson(
    Transaction& tx, const std::string& person) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT id FROM cases WHERE person = $1 AND state <> $2 "
      "ORDER BY create_us, id",
      {person, static_cast<int64_t>(v1::CASE_STATE_CLOSED)});
  if (!rows.ok()) return rows.status();
  return TextColumn(*rows);
}

absl::StatusOr<std::vector<std::string>> CasesOfPerson(
    Transaction& tx, const std::string& person) {
  absl::StatusOr<Rows> rows =
      tx.Query("SELECT id FROM cases WHERE person = $1 ORDER BY create_us, id",
               {person});
  if (!rows.ok()) return rows.status();
  return TextColumn(*rows);
}

absl::StatusOr<std::vector<CaseRow>> ListCases(Transaction& tx,
                                               const CaseFilter& f) {
  std::vector<Value> params;
  std::string sql = absl::StrCat(
      "SELECT id, version, body FROM cases WHERE id IN (SELECT case_id FROM "
      "case_participants WHERE agency = ",
      Param(&params, f.viewer_agency), ")");
  if (!f.states.empty()) {
    absl::StrAppend(&sql, " AND state IN ", IntList(f.states));
  }
  if (!f.owner_agency.empty()) {
    absl::StrAppend(&sql,
                    " AND owner_agency = ", Param(&params, f.owner_agency));
  }
  if (!f.participating_agency.empty()) {
    absl::StrAppend(
        &sql,
        " AND id IN (SELECT case_id FROM case_participants WHERE agency = ",
        Param(&params, f.participating_agency), ")");
  }
  if (!f.person.empty()) {
    absl::StrAppend(&sql, " AND person = ", Param(&params, f.person));
  }
  if (f.has_after) {
    const std::string t = Param(&params, f.after_create_us);
    const std::string id = Param(&params, f.after_id);
    absl::StrAppend(&sql, " AND (create_us < ", t, " OR (create_us = ", t,
                    " AND id < ", id, "))");
  }
  absl::StrAppend(&sql, " ORDER BY create_us DESC, id DESC LIMIT ",
                  Param(&params, int64_t{f.limit}));
  absl::StatusOr<Rows> rows = tx.Query(sql, params);
  if (!rows.ok()) return rows.status();
  return CaseRows(*rows);
}

// ---- Plans ----

absl::Status InsertPlan(Transaction& tx, const std::string& case_id,
                        const v1::IntegrationPlan& plan) {
  return tx
      .Execute(
          "INSERT INTO plan_versions (case_id, version, body) "
          "VALUES ($1, $2, $3)",
          {case_id, static_cast<int64_t>(plan.version()), Blob(plan)})
      .status();
}

absl::StatusOr<std::optional<v1::IntegrationPlan>> ReadPlan(
    Transaction& tx, const std::string& case_id, int version) {
  absl::StatusOr<Rows> rows =
      version == 0
          ? tx.Query(
                "SELECT body FROM plan_versions WHERE case_id = $1 "
                "ORDER BY version DESC LIMIT 1",
                {case_id})
          : tx.Query(
                "SELECT body FROM plan_versions WHERE case_id = $1 AND "
                "version = $2",
                {case_id, static_cast<int64_t>(version)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<v1::IntegrationPlan>();
  absl::StatusOr<v1::IntegrationPlan> plan =
      ParseBlob<v1::IntegrationPlan>(rows->front(), 0);
  if (!plan.ok()) return plan.status();
  return std::optional<v1::IntegrationPlan>(*std::move(plan));
}

absl::StatusOr<std::vector<v1::IntegrationPlan>> ListPlans(
    Transaction& tx, const std::string& case_id, int before_version,
    int limit) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT body FROM plan_versions WHERE case_id = $1 AND version < $2 "
      "ORDER BY version DESC LIMIT $3",
      {case_id,
       before_version == 0 ? int64_t{1} << 40
                           : static_cast<int64_t>(before_version),
       static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  std::vector<v1::IntegrationPlan> out;
  for (const Row& row : *rows) {
    absl::StatusOr<v1::IntegrationPlan> plan =
        ParseBlob<v1::IntegrationPlan>(row, 0);
    if (!plan.ok()) return plan.status();
    out.push_back(*std::move(plan));
  }
  return out;
}

// ---- Steps ----

absl::Status InsertStep(Transaction& tx, const StepRow& row) {
  absl::StatusOr<int64_t> n = tx.Execute(
      "INSERT INTO steps (id, case_id, state, kind, receiving_agency, "
      "municipality_code, create_us, accept_us, start_us, due_key, version, "
      "body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
      StepValues(row));
  if (!n.ok()) return n.status();
  return WriteDependencies(tx, row);
}

absl::Status UpdateStep(Transaction& tx, const StepRow& row,
                        bool dependencies_changed) {
  absl::StatusOr<int64_t> n = tx.Execute(
      "UPDATE steps SET case_id = $2, state = $3, kind = $4, "
      "receiving_agency = $5, municipality_code = $6, create_us = $7, "
      "accept_us = $8, start_us = $9, due_key = $10, version = $11, "
      "body = $12 WHERE id = $1",
      StepValues(row));
  if (!n.ok()) return n.status();
  if (*n != 1) return absl::NotFoundError("step vanished");
  if (!dependencies_changed) return absl::OkStatus();
  return WriteDependencies(tx, row);
}

absl::Status UpdateStepState(Transaction& tx, const StepRow& row) {
  const v1::Step& s = row.record;
  absl::StatusOr<int64_t> n = tx.Execute(
      "UPDATE steps SET state = $2, accept_us = $3, start_us = $4, "
      "version = $5, body = $6 WHERE id = $1",
      {row.id, static_cast<int64_t>(s.state()),
       s.has_accept_time() ? TsMicros(s.accept_time()) : int64_t{0},
       s.has_start_time() ? TsMicros(s.start_time()) : int64_t{0}, row.version,
       Blob(s)});
  if (!n.ok()) return n.status();
  if (*n != 1) return absl::NotFoundError("step vanished");
  return absl::OkStatus();
}

absl::StatusOr<std::optional<StepRow>> ReadStep(Transaction& tx,
                                                const std::string& case_id,
                                                const std::string& step_id) {
  absl::StatusOr<Rows> rows =
      tx.Query(absl::StrCat("SELECT ", kStepColumns,
                            " FROM steps WHERE id = $1 AND case_id = $2"),
               {step_id, case_id});
  if (!rows.ok()) return rows.status();
  absl::StatusOr<std::vector<StepRow>> steps = StepRows(*rows);
  if (!steps.ok()) return steps.status();
  if (steps->empty()) return std::optional<StepRow>();
  return std::optional<StepRow>(std::move(steps->front()));
}

absl::StatusOr<std::vector<StepRow>> StepsOfCase(Transaction& tx,
                                                 const std::string& case_id) {
  absl::StatusOr<Rows> rows = tx.Query(
      absl::StrCat("SELECT ", kStepColumns,
                   " FROM steps WHERE case_id = $1 ORDER BY create_us, id"),
      {case_id});
  if (!rows.ok()) return rows.status();
  return StepRows(*rows);
}

absl::StatusOr<std::vector<StepRow>> ListSteps(Transaction& tx,
                                               const StepFilter& f) {
  std::vector<Value> params;
  std::string sql = absl::StrCat(
      "SELECT ", kStepColumns,
      " FROM steps WHERE case_id IN (SELECT case_id FROM case_participants "
      "WHERE agency = ",
      Param(&params, f.viewer_agency), ")");
  if (!f.case_id.empty()) {
    absl::StrAppend(&sql, " AND case_id = ", Param(&params, f.case_id));
  }
  if (!f.states.empty()) {
    absl::StrAppend(&sql, " AND state IN ", IntList(f.states));
  }
  if (!f.kinds.empty()) {
    absl::StrAppend(&sql, " AND kind IN ", IntList(f.kinds));
  }
  if (!f.receiving_agency.empty()) {
    absl::StrAppend(
        &sql, " AND receiving_agency = ", Param(&params, f.receiving_agency));
  }
  if (f.has_after) {
    const std::string t = Param(&params, f.after_create_us);
    const std::string id = Param(&params, f.after_id);
    absl::StrAppend(&sql, " AND (create_us > ", t, " OR (create_us = ", t,
                    " AND id > ", id, "))");
  }
  absl::StrAppend(&sql, " ORDER BY create_us, id LIMIT ",
                  Param(&params, int64_t{f.limit}));
  absl::StatusOr<Rows> rows = tx.Query(sql, params);
  if (!rows.ok()) return rows.status();
  return StepRows(*rows);
}

// ---- Activities without a step ----

absl::Status InsertUnassignedActivity(Transaction& tx,
                                      const std::string& person,
                                      const std::string& case_id,
                                      const v1::StepActivity& activity) {
  return tx
      .Execute(
          "INSERT INTO unassigned_activities (person, case_id, body) "
          "VALUES ($1, $2, $3)",
          {person, case_id, Blob(activity)})
      .status();
}

absl::StatusOr<std::vector<v1::StepActivity>> ReadUnassignedActivities(
    Transaction& tx, const std::string& person, const std::string& case_id) {
  absl::StatusOr<Rows> rows =
      case_id.empty()
          ? tx.Query(
                "SELECT body FROM unassigned_activities WHERE person = $1 "
                "AND case_id = '' ORDER BY id",
                {person})
          : tx.Query(
                "SELECT body FROM unassigned_activities WHERE case_id = $1 "
                "ORDER BY id",
                {case_id});
  if (!rows.ok()) return rows.status();
  std::vector<v1::StepActivity> out;
  for (const Row& row : *rows) {
    absl::StatusOr<v1::StepActivity> a = ParseBlob<v1::StepActivity>(row, 0);
    if (!a.ok()) return a.status();
    out.push_back(*std::move(a));
  }
  return out;
}

absl::Status AssignUnassignedActivities(Transaction& tx,
                                        const std::string& person,
                                        const std::string& case_id) {
  return tx
      .Execute(
          "UPDATE unassigned_activities SET case_id = $2 WHERE person = $1 "
          "AND case_id = ''",
          {person, case_id})
      .status();
}

absl::Status MoveUnassignedActivities(Transaction& tx,
                                      const std::string& from_person,
                                      const std::string& to_person) {
  return tx
      .Execute("UPDATE unassigned_activities SET person = $2 WHERE person = $1",
               {from_person, to_person})
      .status();
}

// ---- Notes ----

absl::Status InsertNote(Transaction& tx, const NoteRow& row) {
  return tx
      .Execute(
          "INSERT INTO notes (id, case_id, step_id, author_agency, create_us, "
          "version, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
          {row.id, row.case_id, row.step_id, row.record.author_agency(),
           TsMicros(row.record.create_time()), row.version, Blob(row.record)})
      .status();
}

absl::Status UpdateNote(Transaction& tx, const NoteRow& row) {
  return tx
      .Execute("UPDATE notes SET version = $2, body = $3 WHERE id = $1",
               {row.id, row.version, Blob(row.record)})
      .status();
}

absl::Status DeleteNote(Transaction& tx, const std::string& id) {
  return tx.Execute("DELETE FROM notes WHERE id = $1", {id}).status();
}

absl::StatusOr<std::optional<NoteRow>> ReadNote(Transaction& tx,
                                                const std::string& id) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT id, case_id, step_id, version, body FROM notes WHERE id = $1",
      {id});
  if (!rows.ok()) return rows.status();
  absl::StatusOr<std::vector<NoteRow>> notes = NoteRows(*rows);
  if (!notes.ok()) return notes.status();
  if (notes->empty()) return std::optional<NoteRow>();
  return std::optional<NoteRow>(std::move(notes->front()));
}

absl::StatusOr<std::vector<NoteRow>> ListNotes(
    Transaction& tx, const std::string& case_id, const std::string& step_id,
    bool only_step, const std::string& author_agency, bool has_after,
    int64_t after_create_us, const std::string& after_id, int limit) {
  std::vector<Value> params;
  std::string sql = absl::StrCat(
      "SELECT id, case_id, step_id, version, body FROM notes WHERE case_id = ",
      Param(&params, case_id),
      " AND author_agency = ", Param(&params, author_agency));
  if (only_step) {
    absl::StrAppend(&sql, " AND step_id = ", Param(&params, step_id));
  }
  if (has_after) {
    const std::string t = Param(&params, after_create_us);
    const std::string id = Param(&params, after_id);
    absl::StrAppend(&sql, " AND (create_us < ", t, " OR (create_us = ", t,
                    " AND id < ", id, "))");
  }
  absl::StrAppend(&sql, " ORDER BY create_us DESC, id DESC LIMIT ",
                  Param(&params, int64_t{limit}));
  absl::StatusOr<Rows> rows = tx.Query(sql, params);
  if (!rows.ok()) return rows.status();
  return NoteRows(*rows);
}

// ---- Person merges ----

absl::Status RecordMerge(Transaction& tx, const std::string& merged,
                         const std::string& survivor) {
  return tx
      .Execute(
          "INSERT INTO person_merges (merged, survivor) VALUES ($1, $2) "
          "ON CONFLICT (merged) DO UPDATE SET survivor = excluded.survivor",
          {merged, survivor})
      .status();
}

absl::StatusOr<std::string> ResolveSurvivor(Transaction& tx,
                                            const std::string& person) {
  std::string current = person;
  for (int hops = 0; hops < 16; ++hops) {
    absl::StatusOr<Rows> rows = tx.Query(
        "SELECT survivor FROM person_merges WHERE merged = $1", {current});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return current;
    absl::StatusOr<std::string> next = rows->front().GetText(0);
    if (!next.ok()) return next.status();
    current = *next;
  }
  return current;
}

// ---- Case-event log ----

absl::StatusOr<int64_t> AppendCaseEvent(
    Transaction& tx, const v1::CaseEvent& event, const std::string& person,
    const std::vector<std::string>& audience) {
  if (absl::Status s = tx.LockNamed("cases.events"); !s.ok()) return s;
  absl::StatusOr<int64_t> latest = LatestCursor(tx);
  if (!latest.ok()) return latest.status();
  const int64_t seq = *latest + 1;
  std::string case_id(event.case_name());
  if (case_id.rfind("cases/", 0) == 0) case_id = case_id.substr(6);
  v1::CaseEvent stored = event;
  stored.set_cursor(seq);
  absl::StatusOr<std::string> sealed = lifecycle::SealForPerson(
      tx, PersonId(person), kCaseEventsContext, stored.SerializeAsString());
  if (!sealed.ok()) return sealed.status();
  absl::StatusOr<int64_t> n = tx.Execute(
      "INSERT INTO case_events (seq, event_id, case_id, person, body) "
      "VALUES ($1, $2, $3, $4, $5)",
      {seq, event.event_id(), case_id, person, Bytes{*std::move(sealed)}});
  if (!n.ok()) return n.status();
  if (audience.empty()) return seq;
  // One statement for all agencies of the audience.
  std::vector<Value> params = {seq, case_id};
  std::string sql =
      "INSERT INTO case_event_audience (agency, seq, case_id) VALUES ";
  for (size_t i = 0; i < audience.size(); ++i) {
    absl::StrAppend(&sql, i ? ", " : "", "(", Param(&params, audience[i]),
                    ", $1, $2)");
  }
  absl::StrAppend(&sql, " ON CONFLICT DO NOTHING");
  n = tx.Execute(sql, params);
  if (!n.ok()) return n.status();
  return seq;
}

absl::StatusOr<CaseEventPage> ReadCaseEventPage(Transaction& tx,
                                                const std::string& agency,
                                                int64_t after_cursor,
                                                const std::string& case_id,
                                                int limit) {
  absl::StatusOr<Rows> rows =
      case_id.empty()
          ? tx.Query(
                "SELECT e.seq, e.person, e.body FROM case_event_audience a "
                "JOIN case_events e ON e.seq = a.seq WHERE a.agency = $1 AND "
                "a.seq > $2 ORDER BY a.seq LIMIT $3",
                {agency, after_cursor, static_cast<int64_t>(limit)})
          : tx.Query(
                "SELECT e.seq, e.person, e.body FROM case_event_audience a "
                "JOIN case_events e ON e.seq = a.seq WHERE a.agency = $1 AND "
                "a.seq > $2 AND a.case_id = $4 ORDER BY a.seq LIMIT $3",
                {agency, after_cursor, static_cast<int64_t>(limit), case_id});
  if (!rows.ok()) return rows.status();
  CaseEventPage page;
  page.events.reserve(rows->size());
  for (const Row& row : *rows) {
    absl::StatusOr<int64_t> seq = row.GetInt(0);
    if (!seq.ok()) return seq.status();
    ++page.rows_read;
    page.last_cursor = *seq;
    absl::StatusOr<std::optional<v1::CaseEvent>> e = OpenEventRow(tx, row, 1);
    if (!e.ok()) return e.status();
    if (e->has_value()) page.events.push_back(**std::move(e));
  }
  return page;
}

absl::StatusOr<std::vector<v1::CaseEvent>> ReadCaseEvents(
    Transaction& tx, const std::string& agency, int64_t after_cursor,
    const std::string& case_id, int limit) {
  absl::StatusOr<CaseEventPage> page =
      ReadCaseEventPage(tx, agency, after_cursor, case_id, limit);
  if (!page.ok()) return page.status();
  return std::move(page->events);
}

absl::StatusOr<std::vector<LoggedEvent>> ReadCaseEventRange(
    Transaction& tx, int64_t after_cursor, int64_t upto_cursor) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT e.seq, e.person, e.body, a.agency FROM case_events e JOIN "
      "case_event_audience a ON a.seq = e.seq WHERE e.seq > $1 AND "
      "e.seq <= $2 ORDER BY e.seq",
      {after_cursor, upto_cursor});
  if (!rows.ok()) return rows.status();
  std::vector<LoggedEvent> out;
  int64_t last = -1;
  bool skipped = false;  // the row of `last` cannot be opened
  for (const Row& row : *rows) {
    absl::StatusOr<int64_t> seq = row.GetInt(0);
    if (!seq.ok()) return seq.status();
    if (*seq != last) {
      last = *seq;
      absl::StatusOr<std::optional<v1::CaseEvent>> e = OpenEventRow(tx, row, 1);
      if (!e.ok()) return e.status();
      skipped = !e->has_value();
      if (!skipped) out.push_back(LoggedEvent{**std::move(e), {}});
    }
    if (skipped) continue;
    absl::StatusOr<std::string> agency = row.GetText(3);
    if (!agency.ok()) return agency.status();
    out.back().audience.push_back(*std::move(agency));
  }
  return out;
}

absl::StatusOr<int64_t> LatestCursor(Transaction& tx) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT COALESCE(MAX(c), 0) FROM (SELECT MAX(seq) AS c FROM "
      "case_events UNION ALL SELECT MAX(resume_after) FROM "
      "case_event_restores) latest");
  if (!rows.ok()) return rows.status();
  return rows->front().GetInt(0);
}

absl::Status FenceRestoredCaseEvents(Transaction& tx, absl::Time now) {
  if (absl::Status s = tx.LockNamed("cases.events"); !s.ok()) return s;
  absl::StatusOr<int64_t> latest = LatestCursor(tx);
  if (!latest.ok()) return latest.status();
  const int64_t resume_after = std::max(*latest, absl::ToUnixMicros(now));
  absl::StatusOr<int64_t> n = tx.Execute(
      "INSERT INTO case_event_restores (restored_seq, resume_after, "
      "restore_us) VALUES ($1, $2, $3) ON CONFLICT (restored_seq) DO NOTHING",
      {*latest, resume_after, absl::ToUnixMicros(now)});
  if (!n.ok()) return n.status();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<int64_t>> RestoredBefore(Transaction& tx,
                                                      int64_t cursor) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT restored_seq FROM case_event_restores WHERE restored_seq < $1 "
      "AND resume_after > $1 ORDER BY restored_seq LIMIT 1",
      {cursor});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<int64_t>();
  absl::StatusOr<int64_t> restored = rows->front().GetInt(0);
  if (!restored.ok()) return restored.status();
  return std::optional<int64_t>(*restored);
}

// ---- Statistics ----

absl::StatusOr<std::vector<StepTiming>> StepTimings(
    Transaction& tx, const std::string& municipality, int64_t from_us,
    int64_t to_us) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT kind, receiving_agency, create_us, accept_us, start_us "
      "FROM steps WHERE municipality_code = $1 AND create_us >= $2 AND "
      "create_us < $3 UNION ALL "
      "SELECT kind, receiving_agency, create_us, accept_us, start_us "
      "FROM step_statistics WHERE municipality_code = $1 AND "
      "create_us >= $2 AND create_us < $3",
      {municipality, from_us, to_us});
  if (!rows.ok()) return rows.status();
  std::vector<StepTiming> out;
  for (const Row& row : *rows) {
    StepTiming t;
    absl::StatusOr<int64_t> v = row.GetInt(0);
    if (!v.ok()) return v.status();
    t.kind = static_cast<int>(*v);
    absl::StatusOr<std::string> agency = row.GetText(1);
    if (!agency.ok()) return agency.status();
    t.receiving_agency = *agency;
    if (v = row.GetInt(2); !v.ok()) return v.status();
    t.create_us = *v;
    if (v = row.GetInt(3); !v.ok()) return v.status();
    t.accept_us = *v;
    if (v = row.GetInt(4); !v.ok()) return v.status();
    t.start_us = *v;
    out.push_back(std::move(t));
  }
  return out;
}

absl::StatusOr<std::vector<OverdueCount>> OverdueSteps(
    Transaction& tx, const std::string& municipality, int32_t today_key) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT kind, receiving_agency, COUNT(*) FROM ("
      "SELECT kind, receiving_agency FROM steps WHERE "
      "municipality_code = $1 AND state IN (1, 2, 4) AND due_key > 0 AND "
      "due_key < $2 UNION ALL "
      "SELECT kind, receiving_agency FROM step_statistics WHERE "
      "municipality_code = $1 AND state IN (1, 2, 4) AND due_key > 0 AND "
      "due_key < $2) AS o GROUP BY kind, receiving_agency",
      {municipality, static_cast<int64_t>(today_key)});
  if (!rows.ok()) return rows.status();
  std::vector<OverdueCount> out;
  for (const Row& row : *rows) {
    OverdueCount c;
    absl::StatusOr<int64_t> v = row.GetInt(0);
    if (!v.ok()) return v.status();
    c.kind = static_cast<int>(*v);
    absl::StatusOr<std::string> agency = row.GetText(1);
    if (!agency.ok()) return agency.status();
    c.receiving_agency = *agency;
    if (v = row.GetInt(2); !v.ok()) return v.status();
    c.count = *v;
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace lotse::cases
