#include "services/identity/store/person_store.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/errors/status.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/identity/domain/person.h"
#include "services/identity/store/relation_store.h"
#include "tests/identity/test_matcher.h"
#include "tests/support/test_database.h"

namespace lotse::identity {
namespace {

using ::lotse::storage::Transaction;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

const DuplicateMatcher& Matcher() { return SharedTestMatcher(); }

v1::Person MakePerson(const std::string& given, const std::string& family,
                      int year = 0, int month = 0, int day = 0,
                      const std::string& script = "Latn") {
  v1::Person p;
  v1::PersonName* name = p.add_names();
  name->set_given_names(given);
  name->set_family_names(family);
  name->set_script(script);
  p.mutable_birth_date()->set_year(year);
  p.mutable_birth_date()->set_month(month);
  p.mutable_birth_date()->set_day(day);
  return p;
}

std::string IdOf(const v1::Person& p) {
  return p.name().substr(std::string("persons/").size());
}

std::string LinkIdOf(const v1::AgencyId& a) {
  return a.name().substr(a.name().rfind('/') + 1);
}

MATCHER_P(HasReason, reason, "") {
  const auto actual = ReasonOf(arg);
  return actual.has_value() && *actual == reason;
}

class PersonStoreTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    // ListVisible also reads the relations other services told identity.
    std::vector<storage::Migration> migrations = PersonMigrations();
    migrations.push_back(RelationMigration());
    migrations.push_back(PersonErasureMigration());
    ASSERT_TRUE(storage::ApplyMigrations(db(), migrations).ok());
  }

  // Runs `body` with a store in one committed transaction.
  absl::Status Tx(const std::function<absl::Status(PersonStore&)>& body) {
    return storage::RunInTransaction(db(), [&](Transaction& tx) {
      PersonStore store(tx, Matcher());
      return body(store);
    });
  }

  v1::Person Create(const v1::Person& p,
                    const std::string& agency = "agencies/kim-koeln") {
    v1::Person out;
    absl::Status s = Tx([&](PersonStore& store) {
      auto created = store.Create(p, agency);
      if (!created.ok()) return created.status();
      out = *created;
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  absl::StatusOr<PersonLookup> Get(const std::string& id) {
    absl::StatusOr<PersonLookup> out = absl::UnknownError("not run");
    absl::Status s = Tx([&](PersonStore& store) {
      out = store.Get(id);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<Candidates> FindCandidates(const v1::Person& query,
                                            CandidateLimits limits = {}) {
    absl::StatusOr<Candidates> out = absl::UnknownError("not run");
    absl::Status s = Tx([&](PersonStore& store) {
      out = store.FindCandidates(ToMatchRecord(query), limits);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<Candidates> Search(const std::string& query, int year = 0) {
    lotse::type::v1::PartialDate date;
    date.set_year(year);
    absl::StatusOr<Candidates> out = absl::UnknownError("not run");
    absl::Status s = Tx([&](PersonStore& store) {
      out = store.Search(SearchRecord(query, date), CandidateLimits{});
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<LinkResult> Link(const std::string& id, v1::AgencyIdKind kind,
                                  const std::string& value,
                                  const std::string& agency) {
    absl::StatusOr<LinkResult> out = absl::UnknownError("not run");
    absl::Status s = Tx([&](PersonStore& store) {
      out = store.LinkAgencyId(id, kind, value, agency);
      return out.status();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<v1::Person> Merge(const v1::Person& survivor,
                                   const v1::Person& merged) {
    absl::StatusOr<v1::Person> out = absl::UnknownError("not run");
    absl::Status s = Tx([&](PersonStore& store) {
      out = store.Merge(IdOf(survivor), survivor.etag(), IdOf(merged),
                        merged.etag());
      return out.status();
    });
    if (!s.ok()) return s;
    return out;
  }

  v1::Person Fresh(const v1::Person& p) {
    absl::StatusOr<PersonLookup> got = Get(IdOf(p));
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? got->person : v1::Person();
  }

  // Row counts, to show that refused writes left nothing behind.
  int64_t Count(const std::string& sql) {
    int64_t n = -1;
    absl::Status s = storage::RunInTransaction(db(), [&](Transaction& tx) {
      auto rows = tx.Query(sql);
      if (!rows.ok()) return rows.status();
      auto value = rows->front().GetInt(0);
      if (!value.ok()) return value.status();
      n = *value;
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return n;
  }
};

TEST_P(PersonStoreTest, CreateAndGet) {
  v1::Person input = MakePerson("Mohammed", "Al-Hassan", 1990, 7, 14);
  input.set_sex(v1::SEX_MALE);
  input.add_nationality_codes("SY");
  input.mutable_contact()->set_email("m@example.org");
  // Output-only fields from the client are ignored.
  input.set_name("persons/chosenbytheclientxxxx");
  input.set_etag("client-etag");
  input.add_merged_names("persons/other");
  input.set_creating_agency("agencies/someone-else");

  const v1::Person created = Create(input);
  // New ids in the one format (common/api/names.h).
  EXPECT_EQ(IdOf(created).size(), 26u) << created.name();
  EXPECT_EQ(IdOf(created).find_first_not_of("abcdefghijklmnopqrstuvwxyz234567"),
            std::string::npos)
      << created.name();
  EXPECT_NE(created.name(), input.name());
  EXPECT_FALSE(created.etag().empty());
  EXPECT_NE(created.etag(), "client-etag");
  EXPECT_THAT(created.merged_names(), IsEmpty());
  EXPECT_EQ(created.creating_agency(), "agencies/kim-koeln");
  EXPECT_GT(created.create_time().seconds(), 0);

  absl::StatusOr<PersonLookup> got = Get(IdOf(created));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->merged);
  EXPECT_EQ(got->id, IdOf(created));
  EXPECT_EQ(got->person.SerializeAsString(), created.SerializeAsString());
  EXPECT_EQ(got->person.names(0).family_names(), "Al-Hassan");
  EXPECT_EQ(got->person.contact().email(), "m@example.org");
  EXPECT_EQ(got->person.birth_date().day(), 14);

  EXPECT_EQ(Get("abcdefghijklmnopqrstuvwxyz").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(PersonStoreTest, IdsAreRandomNotSequential) {
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    ids.push_back(IdOf(Create(MakePerson("Anna", absl::StrCat("Test", i)))));
  }
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  // Creation order is not id order (40! orders; sorted by chance: never).
  EXPECT_FALSE(std::is_sorted(ids.begin(), ids.end()));
  // Consecutive ids share no long prefix, as counters or timestamps would.
  for (size_t i = 1; i < ids.size(); ++i) {
    size_t common = 0;
    while (ids[i][common] == ids[i - 1][common]) ++common;
    EXPECT_LT(common, 6u) << ids[i - 1] << " " << ids[i];
  }
}

TEST_P(PersonStoreTest, UpdateChecksEtagAndReindexes) {
  const v1::Person created = Create(MakePerson("Oleksandr", "Kovalenko", 1985));
  v1::Person changed = created;
  changed.mutable_names(0)->set_family_names("Schmidt");
  changed.set_birth_place("Kyiv");

  absl::StatusOr<v1::Person> updated = absl::UnknownError("");
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                updated = store.Update(IdOf(created), changed, created.etag());
                return updated.status();
              }).ok())
      << updated.status();
  EXPECT_NE(updated->etag(), created.etag());
  EXPECT_EQ(updated->birth_place(), "Kyiv");
  EXPECT_EQ(updated->create_time().seconds(), created.create_time().seconds());
  EXPECT_EQ(Fresh(created).SerializeAsString(), updated->SerializeAsString());

  // The old etag is stale now: ABORTED, nothing changes.
  v1::Person again = created;
  again.set_birth_place("Odesa");
  absl::Status stale = Tx([&](PersonStore& store) {
    return store.Update(IdOf(created), again, created.etag()).status();
  });
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(stale, HasReason("ETAG_MISMATCH"));
  EXPECT_EQ(Fresh(created).birth_place(), "Kyiv");

  // The blocking keys follow the record.
  auto by_new = FindCandidates(MakePerson("Oleksandr", "Schmidt", 1985));
  ASSERT_TRUE(by_new.ok());
  EXPECT_THAT(by_new->person_ids, Contains(IdOf(created)));
  auto by_old = FindCandidates(MakePerson("Oleksandr", "Kovalenko", 1985));
  ASSERT_TRUE(by_old.ok());
  EXPECT_THAT(by_old->person_ids, Not(Contains(IdOf(created))));

  EXPECT_EQ(Tx([&](PersonStore& store) {
              return store.Update("abcdefghijklmnopqrstuvwxyz", changed, "x")
                  .status();
            }).code(),
            absl::StatusCode::kNotFound);
}

TEST_P(PersonStoreTest, ListReturnsEveryPersonOnceUnderConcurrentInserts) {
  std::set<std::string> existing;
  for (int i = 0; i < 23; ++i) {
    existing.insert(
        IdOf(Create(MakePerson("Given", absl::StrCat("Family", i)))));
  }
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    PersonPage page;
    ASSERT_TRUE(Tx([&](PersonStore& store) {
                  auto listed = store.List("", cursor, 5);
                  if (!listed.ok()) return listed.status();
                  page = *std::move(listed);
                  return absl::OkStatus();
                }).ok());
    for (const v1::Person& p : page.persons) seen.push_back(IdOf(p));
    cursor = page.next_cursor;
    // Others register persons between our pages.
    Create(MakePerson("Late", absl::StrCat("Comer", pages)));
    ASSERT_LT(++pages, 20);
  } while (!cursor.empty());
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "a person was listed twice";
  for (const std::string& id : existing) {
    EXPECT_EQ(std::count(seen.begin(), seen.end(), id), 1) << id;
  }
  EXPECT_GE(pages, 5);

  // Newest first.
  PersonPage first;
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                auto listed = store.List("", "", 500);
                if (!listed.ok()) return listed.status();
                first = *std::move(listed);
                return absl::OkStatus();
              }).ok());
  EXPECT_TRUE(first.next_cursor.empty());
  for (size_t i = 1; i < first.persons.size(); ++i) {
    const auto& a = first.persons[i - 1].create_time();
    const auto& b = first.persons[i].create_time();
    EXPECT_TRUE(a.seconds() > b.seconds() ||
                (a.seconds() == b.seconds() && a.nanos() >= b.nanos()));
  }

  // A filter by creating agency, and a cursor the store did not issue.
  Create(MakePerson("Other", "Agency"), "agencies/jobcenter-koeln");
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                auto listed = store.List("agencies/jobcenter-koeln", "", 50);
                if (!listed.ok()) return listed.status();
                EXPECT_THAT(listed->persons, SizeIs(1));
                EXPECT_EQ(store.List("", "garbage", 5).status().code(),
                          absl::StatusCode::kInvalidArgument);
                return absl::OkStatus();
              }).ok());
}

TEST_P(PersonStoreTest, ListVisibleShowsCreatedAndLinkedPersonsOnce) {
  const std::string jobcenter = "agencies/jobcenter-koeln";
  std::vector<v1::Person> own;
  for (int i = 0; i < 7; ++i) {
    own.push_back(
        Create(MakePerson("Own", absl::StrCat("Person", i)), jobcenter));
  }
  std::vector<v1::Person> others;
  for (int i = 0; i < 6; ++i) {
    others.push_back(Create(MakePerson("Other", absl::StrCat("Person", i))));
  }
  // Ids the Jobcenter holds: two for others[0] and one for own[0] (each
  // still listed once), one for others[1], which is then merged into
  // others[4], one for others[2] that it unlinks again.
  ASSERT_TRUE(Link(IdOf(others[0]), v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER,
                   "100A001", jobcenter)
                  .ok());
  ASSERT_TRUE(Link(IdOf(others[0]),
                   v1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER, "BG-1",
                   jobcenter)
                  .ok());
  ASSERT_TRUE(Link(IdOf(own[0]), v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER,
                   "100A002", jobcenter)
                  .ok());
  ASSERT_TRUE(Link(IdOf(others[1]), v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER,
                   "100A003", jobcenter)
                  .ok());
  auto unlinked = Link(IdOf(others[2]), v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER,
                       "100A004", jobcenter);
  ASSERT_TRUE(unlinked.ok()) << unlinked.status();
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                return store
                    .UnlinkAgencyId(IdOf(others[2]),
                                    LinkIdOf(unlinked->agency_id),
                                    unlinked->agency_id.etag())
                    .status();
              }).ok());
  // Another agency's link gives the Jobcenter nothing.
  ASSERT_TRUE(Link(IdOf(others[3]), v1::AGENCY_ID_KIND_MUNICIPAL_FILE_NUMBER,
                   "K-7", "agencies/kim-koeln")
                  .ok());
  ASSERT_TRUE(Merge(Fresh(others[4]), Fresh(others[1])).ok());
  // A person the Jobcenter created but that was merged into someone it has
  // no relation to is gone from its list.
  ASSERT_TRUE(Merge(Fresh(others[5]), Fresh(own[6])).ok());

  std::vector<std::string> seen;
  std::vector<v1::Person> listed;
  std::string cursor;
  int pages = 0;
  do {
    PersonPage page;
    ASSERT_TRUE(Tx([&](PersonStore& store) {
                  auto result = store.ListVisible(jobcenter, cursor, 3);
                  if (!result.ok()) return result.status();
                  page = *std::move(result);
                  return absl::OkStatus();
                }).ok());
    EXPECT_LE(page.persons.size(), 3u);
    for (const v1::Person& p : page.persons) {
      seen.push_back(IdOf(p));
      listed.push_back(p);
    }
    cursor = page.next_cursor;
    // Persons created between pages are newer than the cursor: they do
    // not disturb the listing.
    Create(MakePerson("Late", absl::StrCat("Comer", pages)), jobcenter);
    ASSERT_LT(++pages, 10);
  } while (!cursor.empty());
  EXPECT_EQ(pages, 3);

  std::vector<std::string> expected;
  for (int i = 0; i < 6; ++i) expected.push_back(IdOf(own[i]));
  expected.push_back(IdOf(others[0]));
  expected.push_back(IdOf(others[4]));  // holds the moved id of others[1]
  EXPECT_THAT(seen, ::testing::UnorderedElementsAreArray(expected));
  // Newest first, by create time then id.
  for (size_t i = 1; i < listed.size(); ++i) {
    const auto& a = listed[i - 1].create_time();
    const auto& b = listed[i].create_time();
    EXPECT_TRUE(
        a.seconds() > b.seconds() ||
        (a.seconds() == b.seconds() &&
         (a.nanos() > b.nanos() ||
          (a.nanos() == b.nanos() && listed[i - 1].name() > listed[i].name()))))
        << i;
  }

  // An agency related to nobody sees nobody; a foreign cursor is refused.
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                auto none = store.ListVisible("agencies/vhs-koeln", "", 50);
                if (!none.ok()) return none.status();
                EXPECT_THAT(none->persons, IsEmpty());
                EXPECT_TRUE(none->next_cursor.empty());
                EXPECT_EQ(
                    store.ListVisible(jobcenter, "garbage", 5).status().code(),
                    absl::StatusCode::kInvalidArgument);
                return absl::OkStatus();
              }).ok());
}

TEST_P(PersonStoreTest, CandidatesComeFromBlockingKeys) {
  const v1::Person mohammed =
      Create(MakePerson("Mohammed", "Al-Hassan", 1990, 7, 14));
  const v1::Person cyrillic =
      Create(MakePerson("Олександр", "Коваленко", 1988, 3, 2, "Cyrl"));
  const v1::Person anna = Create(MakePerson("Anna", "Schmidt", 1990, 7, 14));

  auto found = FindCandidates(MakePerson("Muhammad", "Alhassan", 1990));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(found->person_ids, Contains(IdOf(mohammed)));
  EXPECT_THAT(found->person_ids, Not(Contains(IdOf(anna))));
  EXPECT_FALSE(found->truncated);

  // Swapped given and family names, a neighbouring year.
  found = FindCandidates(MakePerson("Hasan", "Mohamed", 1991));
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->person_ids, Contains(IdOf(mohammed)));

  // Latin query against a record stored in Cyrillic script.
  found = FindCandidates(MakePerson("Aleksandr", "Kovalenko", 1988));
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->person_ids, ElementsAre(IdOf(cyrillic)));

  // A query without a year still finds persons of any year.
  found = FindCandidates(MakePerson("Muhammad", "Al Hassan"));
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->person_ids, Contains(IdOf(mohammed)));

  // A different name in the same year shares no key.
  found = FindCandidates(MakePerson("Fatima", "Yilmaz", 1990));
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->person_ids, IsEmpty());

  // FindDuplicates of an existing person does not return itself.
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                auto self = store.FindCandidates(ToMatchRecord(mohammed), {},
                                                 IdOf(mohammed));
                if (!self.ok()) return self.status();
                EXPECT_THAT(self->person_ids, IsEmpty());
                return absl::OkStatus();
              }).ok());
}

TEST_P(PersonStoreTest, CandidateCapsHold) {
  std::set<std::string> all;
  for (int i = 0; i < 30; ++i) {
    all.insert(IdOf(Create(MakePerson("Mohammed", "Ahmadi", 1995))));
  }
  CandidateLimits limits;
  limits.per_key = 5;
  limits.total = 100;
  auto found = FindCandidates(MakePerson("Muhammad", "Ahmadi", 1995), limits);
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->truncated);
  // Every key is capped at 5 rows, and the same 5 (by id) come first.
  EXPECT_THAT(found->person_ids, SizeIs(5));
  limits.per_key = 200;
  limits.total = 8;
  found = FindCandidates(MakePerson("Muhammad", "Ahmadi", 1995), limits);
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->truncated);
  EXPECT_THAT(found->person_ids, SizeIs(8));
  limits.total = 100;
  found = FindCandidates(MakePerson("Muhammad", "Ahmadi", 1995), limits);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->truncated);
  EXPECT_EQ(
      std::set<std::string>(found->person_ids.begin(), found->person_ids.end()),
      all);
}

TEST_P(PersonStoreTest, SearchByFreeTextName) {
  const v1::Person mohammed =
      Create(MakePerson("Mohammed", "Al-Hassan", 1990, 7, 14));
  const v1::Person anna = Create(MakePerson("Anna", "Schmidt", 1972));

  for (const char* query : {"Muhammad Al Hassan", "Hassan Mohammed", "Muhammad",
                            "Alhassan", "محمد الحسن"}) {
    SCOPED_TRACE(query);
    auto found = Search(query);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_THAT(found->person_ids, Contains(IdOf(mohammed)));
    EXPECT_THAT(found->person_ids, Not(Contains(IdOf(anna))));
  }
  auto by_year = Search("Mohammed Hassan", 1990);
  ASSERT_TRUE(by_year.ok());
  EXPECT_THAT(by_year->person_ids, ElementsAre(IdOf(mohammed)));
  auto other_year = Search("Mohammed Hassan", 1960);
  ASSERT_TRUE(other_year.ok());
  EXPECT_THAT(other_year->person_ids, IsEmpty());
  auto anna_found = Search("SCHMIDT");
  ASSERT_TRUE(anna_found.ok());
  EXPECT_THAT(anna_found->person_ids, ElementsAre(IdOf(anna)));
}

TEST_P(PersonStoreTest, AgencyIdsAreUniqueAndLookedUp) {
  const v1::Person p1 = Create(MakePerson("Mohammed", "Al-Hassan", 1990));
  const v1::Person p2 = Create(MakePerson("Anna", "Schmidt", 1980));
  const std::string abh = "agencies/abh-koeln";
  const std::string jc1 = "agencies/jobcenter-koeln";
  const std::string jc2 = "agencies/jobcenter-bonn";

  auto linked =
      Link(IdOf(p1), v1::AGENCY_ID_KIND_AZR_NUMBER, "ab 123 456", abh);
  ASSERT_TRUE(linked.ok()) << linked.status();
  EXPECT_TRUE(linked->created);
  EXPECT_EQ(linked->agency_id.value(), "AB123456");
  EXPECT_EQ(linked->agency_id.issuing_agency(), abh);
  EXPECT_TRUE(absl::StartsWith(linked->agency_id.name(),
                               absl::StrCat(p1.name(), "/agencyIds/")));
  EXPECT_FALSE(linked->agency_id.unlinked());

  // Again for the same person: the existing link.
  auto again = Link(IdOf(p1), v1::AGENCY_ID_KIND_AZR_NUMBER, "AB123456",
                    "agencies/bamf");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->agency_id.name(), linked->agency_id.name());

  // A national id names at most one person, whoever links it.
  auto taken = Link(IdOf(p2), v1::AGENCY_ID_KIND_AZR_NUMBER, "ab123456",
                    "agencies/bamf");
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(taken.status(), HasReason("AGENCY_ID_TAKEN"));

  // Agency-local kinds are unique per issuing agency.
  ASSERT_TRUE(
      Link(IdOf(p1), v1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER, "BG-1", jc1)
          .ok());
  ASSERT_TRUE(
      Link(IdOf(p2), v1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER, "BG-1", jc2)
          .ok());
  EXPECT_THAT(
      Link(IdOf(p2), v1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER, "bg-1", jc1)
          .status(),
      HasReason("AGENCY_ID_TAKEN"));
  // The same value of another kind is another id.
  ASSERT_TRUE(
      Link(IdOf(p2), v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER, "AB123456", jc1)
          .ok());

  auto lookup = [&](v1::AgencyIdKind kind, const std::string& value,
                    const std::string& agency) {
    absl::StatusOr<PersonLookup> out = absl::UnknownError("");
    EXPECT_TRUE(Tx([&](PersonStore& store) {
                  out = store.LookupByAgencyId(kind, value, agency);
                  return absl::OkStatus();
                }).ok());
    return out;
  };
  auto found = lookup(v1::AGENCY_ID_KIND_AZR_NUMBER, "AB 123456", "");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->id, IdOf(p1));
  found = lookup(v1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER, "BG-1", jc2);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->id, IdOf(p2));
  EXPECT_EQ(lookup(v1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER, "BG-1",
                   "agencies/nobody")
                .status()
                .code(),
            absl::StatusCode::kNotFound);

  // Unlink: etag checked, then the id no longer resolves and is free.
  const std::string link_id = LinkIdOf(linked->agency_id);
  absl::Status stale = Tx([&](PersonStore& store) {
    return store.UnlinkAgencyId(IdOf(p1), link_id, "stale").status();
  });
  EXPECT_THAT(stale, HasReason("ETAG_MISMATCH"));
  EXPECT_EQ(Tx([&](PersonStore& store) {
              return store
                  .UnlinkAgencyId(IdOf(p2), link_id, linked->agency_id.etag())
                  .status();
            }).code(),
            absl::StatusCode::kNotFound);  // not p2's link
  v1::AgencyId unlinked;
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                auto u = store.UnlinkAgencyId(IdOf(p1), link_id,
                                              linked->agency_id.etag());
                if (!u.ok()) return u.status();
                unlinked = *u;
                return absl::OkStatus();
              }).ok());
  EXPECT_TRUE(unlinked.unlinked());
  EXPECT_GT(unlinked.unlink_time().seconds(), 0);
  EXPECT_NE(unlinked.etag(), linked->agency_id.etag());
  EXPECT_THAT(Tx([&](PersonStore& store) {
                return store.UnlinkAgencyId(IdOf(p1), link_id, unlinked.etag())
                    .status();
              }),
              HasReason("ALREADY_UNLINKED"));
  EXPECT_EQ(
      lookup(v1::AGENCY_ID_KIND_AZR_NUMBER, "AB123456", "").status().code(),
      absl::StatusCode::kNotFound);
  auto relinked =
      Link(IdOf(p2), v1::AGENCY_ID_KIND_AZR_NUMBER, "AB123456", abh);
  ASSERT_TRUE(relinked.ok()) << relinked.status();
  EXPECT_TRUE(relinked->created);

  // Listing: link order, history on request, paged.
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                auto current = store.ListAgencyIds(IdOf(p1), false, "", 50);
                if (!current.ok()) return current.status();
                EXPECT_THAT(current->agency_ids, SizeIs(1));
                std::vector<std::string> names;
                std::string cursor;
                do {
                  auto page = store.ListAgencyIds(IdOf(p1), true, cursor, 1);
                  if (!page.ok()) return page.status();
                  for (const auto& a : page->agency_ids) {
                    names.push_back(a.name());
                  }
                  cursor = page->next_cursor;
                } while (!cursor.empty());
                EXPECT_THAT(names, SizeIs(2));
                EXPECT_EQ(names[0], linked->agency_id.name());
                return absl::OkStatus();
              }).ok());
}

TEST_P(PersonStoreTest, ConcurrentLinksOfOneIdLetOneWin) {
  const v1::Person p1 = Create(MakePerson("Mohammed", "Al-Hassan", 1990));
  const v1::Person p2 = Create(MakePerson("Anna", "Schmidt", 1980));
  std::vector<absl::Status> results(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      results[i] =
          Link(IdOf(i == 0 ? p1 : p2), v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER,
               "123D456789", "agencies/aa")
              .status();
    });
  }
  for (std::thread& t : threads) t.join();
  const int ok = results[0].ok() + results[1].ok();
  EXPECT_EQ(ok, 1) << results[0] << " / " << results[1];
  for (const absl::Status& s : results) {
    if (!s.ok()) {
      EXPECT_THAT(s, HasReason("AGENCY_ID_TAKEN"));
    }
  }
}

TEST_P(PersonStoreTest, MergeMovesIdsAndResolvesMergedId) {
  const v1::Person survivor =
      Create(MakePerson("Mohammed", "Al-Hassan", 1990, 7, 14));
  const v1::Person merged =
      Create(MakePerson("Muhammad", "Alhassan", 1990, 7, 14));
  auto link =
      Link(IdOf(merged), v1::AGENCY_ID_KIND_AZR_NUMBER, "AZR1", "agencies/abh");
  ASSERT_TRUE(link.ok());

  auto result = Merge(survivor, merged);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->name(), survivor.name());
  EXPECT_THAT(result->merged_names(), ElementsAre(merged.name()));
  EXPECT_NE(result->etag(), survivor.etag());  // merged_names changed
  EXPECT_EQ(result->names(0).given_names(), "Mohammed");  // keeps its record

  // The merged id answers with the survivor and says so.
  auto got = Get(IdOf(merged));
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->merged);
  EXPECT_EQ(got->id, IdOf(survivor));
  EXPECT_EQ(got->person.SerializeAsString(), result->SerializeAsString());

  // Agency ids moved; the lookup names the survivor.
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                auto ids = store.ListAgencyIds(IdOf(survivor), true, "", 50);
                if (!ids.ok()) return ids.status();
                EXPECT_THAT(ids->agency_ids, SizeIs(1));
                auto found = store.LookupByAgencyId(
                    v1::AGENCY_ID_KIND_AZR_NUMBER, "AZR1", "");
                if (!found.ok()) return found.status();
                EXPECT_EQ(found->id, IdOf(survivor));
                EXPECT_FALSE(found->merged);
                auto none = store.ListAgencyIds(IdOf(merged), true, "", 50);
                if (!none.ok()) return none.status();
                EXPECT_THAT(none->agency_ids, IsEmpty());
                return absl::OkStatus();
              }).ok());

  // The merged record left the index and the listing.
  auto found = FindCandidates(MakePerson("Muhammad", "Alhassan", 1990));
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->person_ids, ElementsAre(IdOf(survivor)));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_person_keys WHERE "
                  "person_id = '" +
                  IdOf(merged) + "'"),
            0);
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                auto listed = store.List("", "", 50);
                if (!listed.ok()) return listed.status();
                EXPECT_THAT(listed->persons, SizeIs(1));
                return absl::OkStatus();
              }).ok());

  // Writes naming the merged id are refused with the survivor named.
  absl::Status write = Tx([&](PersonStore& store) {
    return store.Update(IdOf(merged), merged, got->person.etag()).status();
  });
  EXPECT_EQ(write.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(write, HasReason("PERSON_MERGED"));
  EXPECT_THAT(
      Link(IdOf(merged), v1::AGENCY_ID_KIND_OTHER, "X", "agencies/a").status(),
      HasReason("PERSON_MERGED"));
}

TEST_P(PersonStoreTest, EraseLeavesATombstoneWithoutData) {
  const v1::Person survivor =
      Create(MakePerson("Mohammed", "Al-Hassan", 1990, 7, 14));
  const v1::Person merged =
      Create(MakePerson("Muhammad", "Alhassan", 1990, 7, 14));
  ASSERT_TRUE(Link(IdOf(survivor), v1::AGENCY_ID_KIND_AZR_NUMBER, "AZR1",
                   "agencies/abh")
                  .ok());
  ASSERT_TRUE(Merge(survivor, merged).ok());

  absl::Status refused = Tx(
      [&](PersonStore& store) { return store.Erase(IdOf(merged)).status(); });
  EXPECT_THAT(refused, HasReason("PERSON_MERGED"));
  std::vector<std::string> erased;
  ASSERT_TRUE(Tx([&](PersonStore& store) -> absl::Status {
                auto ids = store.Erase(IdOf(survivor));
                if (!ids.ok()) return ids.status();
                erased = *ids;
                return absl::OkStatus();
              }).ok());
  EXPECT_THAT(erased, ElementsAre(IdOf(survivor), IdOf(merged)));

  // Both ids are unknown now, to every method.
  EXPECT_EQ(Get(IdOf(survivor)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Get(IdOf(merged)).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Tx([&](PersonStore& store) -> absl::Status {
                auto listed = store.List("", "", 50);
                if (!listed.ok()) return listed.status();
                EXPECT_THAT(listed->persons, IsEmpty());
                auto as = store.ErasedAs(IdOf(merged));
                if (!as.ok()) return as.status();
                EXPECT_EQ(as->value_or(""), IdOf(survivor));
                auto never = store.ErasedAs("nobody");
                if (!never.ok()) return never.status();
                EXPECT_FALSE(never->has_value());
                auto again = store.Erase(IdOf(survivor));
                EXPECT_EQ(again.status().code(), absl::StatusCode::kNotFound);
                return absl::OkStatus();
              }).ok());
  auto found = FindCandidates(MakePerson("Mohammed", "Al-Hassan", 1990));
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->person_ids, IsEmpty());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_person_keys"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_person_agency_ids"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_persons WHERE match_form IS "
                  "NOT NULL OR creating_agency <> ''"),
            0);
}

TEST_P(PersonStoreTest, MergeChainsResolveToFinalSurvivor) {
  const v1::Person a = Create(MakePerson("Ali", "Rezaei", 1980));
  const v1::Person b = Create(MakePerson("Ali", "Rezai", 1980));
  const v1::Person c = Create(MakePerson("Aly", "Rezaee", 1980));
  ASSERT_TRUE(Merge(b, a).ok());   // a -> b
  auto last = Merge(c, Fresh(b));  // b -> c
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_THAT(last->merged_names(), UnorderedElementsAre(a.name(), b.name()));
  for (const v1::Person& p : {a, b, c}) {
    auto got = Get(IdOf(p));
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->id, IdOf(c));
    EXPECT_EQ(got->merged, IdOf(p) != IdOf(c));
  }
}

TEST_P(PersonStoreTest, MatchFormScanPagesThroughEveryPersonNotMerged) {
  std::vector<v1::Person> persons;
  for (int i = 0; i < 10; ++i) {
    persons.push_back(
        Create(MakePerson("Tesfaye", absl::StrCat("Family", i), 1960 + i)));
  }
  ASSERT_TRUE(Merge(persons[1], persons[0]).ok());
  std::vector<std::string> expected;
  for (size_t i = 1; i < persons.size(); ++i) {
    expected.push_back(IdOf(persons[i]));
  }

  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  while (true) {
    std::vector<PersonStore::StoredForm> page;
    ASSERT_TRUE(Tx([&](PersonStore& store) -> absl::Status {
                  absl::StatusOr<std::vector<PersonStore::StoredForm>> got =
                      store.ScanMatchForms(after, 3);
                  if (!got.ok()) return got.status();
                  page = *std::move(got);
                  return absl::OkStatus();
                }).ok());
    if (page.empty()) break;
    ++pages;
    for (const PersonStore::StoredForm& form : page) {
      EXPECT_FALSE(form.encoded.empty());
      EXPECT_FALSE(form.position.empty());
      seen.push_back(form.id);
    }
    after = page.back().position;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(seen, UnorderedElementsAreArray(expected));

  // A position this backend never gave is refused, not read as the start.
  if (GetParam() == storage::Dialect::kSqlite) {
    absl::Status refused = Tx([&](PersonStore& store) {
      return store.ScanMatchForms("not-a-position", 3).status();
    });
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  }
}

TEST_P(PersonStoreTest, InvalidMergesAreRefusedAndWriteNothing) {
  const v1::Person a = Create(MakePerson("Ali", "Rezaei", 1980));
  const v1::Person b = Create(MakePerson("Ali", "Rezai", 1980));
  const v1::Person c = Create(MakePerson("Aly", "Rezaee", 1980));
  ASSERT_TRUE(
      Link(IdOf(b), v1::AGENCY_ID_KIND_AZR_NUMBER, "B1", "agencies/x").ok());
  ASSERT_TRUE(Merge(c, a).ok());  // a is merged into c
  const v1::Person fresh_b = Fresh(b);
  const v1::Person fresh_c = Fresh(c);
  const int64_t keys_before =
      Count("SELECT COUNT(*) FROM identity_person_keys");

  // Each refused merge runs in a transaction that is then committed anyway:
  // a refusal must not have written anything at all.
  auto refused = [&](const std::string& survivor, const std::string& s_etag,
                     const std::string& merged, const std::string& m_etag) {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = db().Begin();
    EXPECT_TRUE(tx.ok());
    PersonStore store(**tx, Matcher());
    absl::Status s = store.Merge(survivor, s_etag, merged, m_etag).status();
    EXPECT_TRUE((*tx)->Commit().ok());
    return s;
  };
  absl::Status s = refused(IdOf(b), fresh_b.etag(), IdOf(b), fresh_b.etag());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  // Into a merged person, or merging a merged person.
  s = refused(IdOf(a), fresh_c.etag(), IdOf(b), fresh_b.etag());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s, HasReason("PERSON_MERGED"));
  s = refused(IdOf(b), fresh_b.etag(), IdOf(a), fresh_c.etag());
  EXPECT_THAT(s, HasReason("PERSON_MERGED"));
  // A merged id that resolves to the survivor is still a merged person.
  s = refused(IdOf(c), fresh_c.etag(), IdOf(a), fresh_c.etag());
  EXPECT_THAT(s, HasReason("PERSON_MERGED"));
  // Stale etags, either side.
  s = refused(IdOf(c), c.etag(), IdOf(b), fresh_b.etag());
  EXPECT_THAT(s, HasReason("ETAG_MISMATCH"));
  s = refused(IdOf(c), fresh_c.etag(), IdOf(b), "stale");
  EXPECT_THAT(s, HasReason("ETAG_MISMATCH"));
  // Unknown persons.
  s = refused(IdOf(c), fresh_c.etag(), "abcdefghijklmnopqrstuvwxyz", "e");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);

  EXPECT_EQ(Fresh(b).SerializeAsString(), fresh_b.SerializeAsString());
  EXPECT_EQ(Fresh(c).SerializeAsString(), fresh_c.SerializeAsString());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_person_keys"), keys_before);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_persons WHERE "
                  "merged_into IS NOT NULL"),
            1);
  auto still = Get(IdOf(b));
  ASSERT_TRUE(still.ok());
  EXPECT_FALSE(still->merged);
}

// The prepared form stored with a person is what Prepare gives for its
// current record: after create, after an update of the names, and for the
// survivor of a merge (whose record a merge leaves alone).
TEST_P(PersonStoreTest, StoredMatchFormFollowsUpdatesAndMerges) {
  auto expected_form = [](const v1::Person& p) {
    auto prepared = Matcher().Prepare(ToMatchRecord(p));
    EXPECT_TRUE(prepared.ok()) << prepared.status();
    return prepared.ok() ? Matcher().EncodePrepared(*prepared) : "";
  };
  auto stored_form = [&](const v1::Person& p) {
    std::string form;
    EXPECT_TRUE(Tx([&](PersonStore& store) {
                  auto read = store.ReadStoredMatchForm(IdOf(p));
                  if (!read.ok()) return read.status();
                  form = *read;
                  return absl::OkStatus();
                }).ok());
    return form;
  };

  v1::Person a = Create(MakePerson("Mohammed", "Al-Hassan", 1990, 3, 15));
  v1::Person b = Create(MakePerson("Олександр", "Коваленко", 1985, 7, 1));
  EXPECT_FALSE(stored_form(a).empty());
  EXPECT_EQ(stored_form(a), expected_form(a));
  EXPECT_EQ(stored_form(b), expected_form(b));

  v1::Person renamed = a;
  renamed.mutable_names(0)->set_given_names("Yusuf");
  absl::Status s = Tx([&](PersonStore& store) {
    auto updated = store.Update(IdOf(a), renamed, a.etag());
    if (!updated.ok()) return updated.status();
    a = *updated;
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(stored_form(a), expected_form(a));
  EXPECT_NE(stored_form(a),
            expected_form(MakePerson("Mohammed", "Al-Hassan", 1990, 3, 15)));

  auto merged = Merge(Fresh(b), Fresh(a));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(stored_form(*merged), expected_form(*merged));

  // Scoring reads the stored form (not a fresh Prepare): replace it by
  // another person's and LoadMatchForms returns that one; a form of another
  // version, or none, is prepared afresh from the record.
  v1::Person c = Create(MakePerson("Olena", "Shevchenko", 1980, 1, 2));
  auto load = [&](const v1::Person& p) {
    std::string encoded;
    EXPECT_TRUE(Tx([&](PersonStore& store) {
                  auto forms = store.LoadMatchForms({IdOf(p), "nosuchid"});
                  if (!forms.ok()) return forms.status();
                  EXPECT_EQ(forms->size(), 1u);
                  if (forms->empty()) return absl::OkStatus();
                  EXPECT_EQ(forms->front().id, IdOf(p));
                  encoded = Matcher().EncodePrepared(forms->front().prepared);
                  return absl::OkStatus();
                }).ok());
    return encoded;
  };
  EXPECT_EQ(load(c), expected_form(c));
  auto set_form = [&](const v1::Person& p, storage::Value form) {
    ASSERT_TRUE(storage::RunInTransaction(db(), [&](Transaction& tx) {
                  return tx
                      .Execute(
                          "UPDATE identity_persons SET match_form = $1 "
                          "WHERE id = $2",
                          {form, IdOf(p)})
                      .status();
                }).ok());
  };
  set_form(c, storage::Bytes{expected_form(*merged)});
  EXPECT_EQ(load(c), expected_form(*merged));
  std::string other_version = expected_form(c);
  other_version[0] = static_cast<char>(other_version[0] + 1);
  set_form(c, storage::Bytes{other_version});
  EXPECT_EQ(load(c), expected_form(c));
  set_form(c, std::monostate{});
  EXPECT_EQ(load(c), expected_form(c));
}

// KeyedSince names exactly the persons sharing a key whose keys were
// written after the stamp was read.
TEST_P(PersonStoreTest, KeyedSinceFindsPersonsWrittenAfterTheStamp) {
  v1::Person before = Create(MakePerson("Mohammed", "Al-Hassan", 1990, 3, 15));
  int64_t stamp = 0;
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                auto read = store.ReadKeyStamp();
                if (!read.ok()) return read.status();
                stamp = *read;
                return absl::OkStatus();
              }).ok());
  v1::Person after = Create(MakePerson("Muhammad", "Alhassan", 1990, 3, 15));
  v1::Person unrelated = Create(MakePerson("Olena", "Kovalenko", 1985, 7, 1));
  auto query = Matcher().Prepare(
      ToMatchRecord(MakePerson("Mohamed", "al Hasan", 1990, 3, 15)));
  ASSERT_TRUE(query.ok());
  std::vector<std::string> since;
  ASSERT_TRUE(Tx([&](PersonStore& store) {
                auto found =
                    store.KeyedSince(stamp, Matcher().LookupKeys(*query));
                if (!found.ok()) return found.status();
                since = *found;
                return absl::OkStatus();
              }).ok());
  EXPECT_THAT(since, ElementsAre(IdOf(after)));
  (void)before;
  (void)unrelated;
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(PersonStoreTest);

}  // namespace
}  // namespace lotse::identity
