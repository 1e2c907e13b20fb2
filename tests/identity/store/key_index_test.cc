#include "services/identity/store/key_index.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/storage/migrations.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/identity/domain/person.h"
#include "tests/identity/test_matcher.h"
#include "tests/support/test_database.h"

namespace lotse::identity {
namespace {

using ::lotse::storage::Transaction;
using ::lotse::storage::TxMode;

const DuplicateMatcher& Matcher() { return SharedTestMatcher(); }

// Few names and years, so that persons share keys and the caps bite.
const char* const kGiven[] = {"Mohammed", "Muhammad", "Oleksandr", "Aleksandr",
                              "Ayse",     "Hüseyin",  "Tesfaye"};
const char* const kFamily[] = {"Al-Hassan", "Kovalenko", "Yilmaz",
                               "Tesfay",    "Hasan",     "Kowalenko"};

v1::Person MakePerson(const std::string& given, const std::string& family,
                      int year) {
  v1::Person p;
  v1::PersonName* name = p.add_names();
  name->set_given_names(given);
  name->set_family_names(family);
  name->set_script("Latn");
  if (year != 0) p.mutable_birth_date()->set_year(year);
  return p;
}

std::string IdOf(const v1::Person& p) {
  return p.name().substr(std::string("persons/").size());
}

std::string Describe(const Candidates& c) {
  std::string out = c.truncated ? "truncated:" : "complete:";
  for (const std::string& id : c.person_ids) absl::StrAppend(&out, " ", id);
  return out;
}

class KeyIndexTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    std::vector<storage::Migration> migrations = PersonMigrations();
    migrations.push_back(PersonErasureMigration());
    ASSERT_TRUE(storage::ApplyMigrations(db(), migrations).ok());
  }

  absl::Status Tx(const std::function<absl::Status(PersonStore&)>& body) {
    return storage::RunInTransaction(db(), [&](Transaction& tx) {
      PersonStore store(tx, Matcher());
      return body(store);
    });
  }

  v1::Person Create(const v1::Person& p) {
    v1::Person out;
    absl::Status s = Tx([&](PersonStore& store) {
      absl::StatusOr<v1::Person> created =
          store.Create(p, "agencies/kim-koeln");
      if (!created.ok()) return created.status();
      out = *created;
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  v1::Person Update(const v1::Person& current, const v1::Person& fields) {
    v1::Person out;
    absl::Status s = Tx([&](PersonStore& store) {
      absl::StatusOr<v1::Person> updated =
          store.Update(IdOf(current), fields, current.etag());
      if (!updated.ok()) return updated.status();
      out = *updated;
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  // Merges `merged` into `survivor`; returns the survivor as it is now.
  v1::Person Merge(const v1::Person& survivor, const v1::Person& merged) {
    v1::Person out;
    absl::Status s = Tx([&](PersonStore& store) {
      absl::StatusOr<v1::Person> result = store.Merge(
          IdOf(survivor), survivor.etag(), IdOf(merged), merged.etag());
      if (!result.ok()) return result.status();
      out = *result;
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  std::unique_ptr<KeyIndex> Build(int scan_page = KeyIndex::kScanPage,
                                  int catch_up_page = KeyIndex::kCatchUpPage) {
    auto index = std::make_unique<KeyIndex>(scan_page, catch_up_page);
    absl::Status s = index->Build(db(), Matcher());
    EXPECT_TRUE(s.ok()) << s;
    return index;
  }

  // FindCandidates (or Search) of `query` through `index` and through the
  // table, in one read-only transaction; each as Describe() text.
  std::pair<std::string, std::string> BothWays(KeyIndex& index,
                                               const v1::Person& query,
                                               const CandidateLimits& limits,
                                               const std::string& exclude_id,
                                               bool search) {
    std::pair<std::string, std::string> out;
    absl::Status s = storage::RunInTransaction(
        db(),
        [&](Transaction& tx) -> absl::Status {
          PersonStore indexed(tx, Matcher());
          indexed.set_key_index(&index);
          PersonStore plain(tx, Matcher());
          const MatchRecord record = ToMatchRecord(query);
          absl::StatusOr<Candidates> a =
              search ? indexed.Search(record, limits)
                     : indexed.FindCandidates(record, limits, exclude_id);
          if (!a.ok()) return a.status();
          absl::StatusOr<Candidates> b =
              search ? plain.Search(record, limits)
                     : plain.FindCandidates(record, limits, exclude_id);
          if (!b.ok()) return b.status();
          out = {Describe(*a), Describe(*b)};
          return absl::OkStatus();
        },
        TxMode::kReadOnly);
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  // The candidates of `query` through `index` (default limits).
  std::vector<std::string> Indexed(KeyIndex& index, const v1::Person& query) {
    std::vector<std::string> out;
    absl::Status s = storage::RunInTransaction(
        db(),
        [&](Transaction& tx) -> absl::Status {
          PersonStore store(tx, Matcher());
          store.set_key_index(&index);
          absl::StatusOr<Candidates> found =
              store.FindCandidates(ToMatchRecord(query), {});
          if (!found.ok()) return found.status();
          out = found->person_ids;
          return absl::OkStatus();
        },
        TxMode::kReadOnly);
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }
};

// The index answers exactly as the SQL lookup, caps, ranking, exclusion and
// truncation included, while persons are created, renamed and merged (by
// "another process": the index learns of every change from the database).
TEST_P(KeyIndexTest, AnswersLikeTheTableThroughCreatesUpdatesAndMerges) {
  std::mt19937 rng(20261206);
  auto pick = [&](int n) {
    return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(rng));
  };
  auto random_person = [&] {
    const int year = pick(5) == 0 ? 0 : 1980 + pick(3);
    return MakePerson(kGiven[pick(7)], kFamily[pick(6)], year);
  };
  std::vector<v1::Person> live;
  for (int i = 0; i < 60; ++i) live.push_back(Create(random_person()));
  // Small pages, so that the build and the catch-ups page.
  std::unique_ptr<KeyIndex> index = Build(/*scan_page=*/7, /*catch_up_page=*/3);
  EXPECT_EQ(index->stats().persons, 60);

  int compared = 0;
  int truncated = 0;
  auto compare_some = [&] {
    for (int q = 0; q < 12; ++q) {
      const bool search = pick(3) == 0;
      v1::Person query = random_person();
      // A one-field query exercises Search's widened keys.
      if (search && pick(2) == 0) {
        query.mutable_names(0)->clear_given_names();
      }
      CandidateLimits limits;
      if (pick(2) == 0) {
        limits.per_key = 1 + pick(6);
        limits.total = 1 + pick(8);
      }
      const std::string exclude =
          search || pick(2) == 0 ? "" : IdOf(live[pick(live.size())]);
      auto [from_index, from_table] =
          BothWays(*index, query, limits, exclude, search);
      ASSERT_EQ(from_index, from_table)
          << "query " << query.ShortDebugString() << " per_key "
          << limits.per_key << " total " << limits.total;
      ++compared;
      if (from_table.rfind("truncated", 0) == 0) ++truncated;
    }
  };
  compare_some();
  for (int round = 0; round < 8; ++round) {
    for (int op = 0; op < 10; ++op) {
      const int kind = pick(4);
      if (kind == 0 || live.size() < 4) {
        live.push_back(Create(random_person()));
      } else if (kind == 1 || kind == 2) {
        const size_t i = pick(live.size());
        live[i] = Update(live[i], random_person());
      } else {
        const size_t a = pick(live.size());
        size_t b = pick(live.size());
        if (a == b) b = (b + 1) % live.size();
        live[a] = Merge(live[a], live[b]);
        live.erase(live.begin() + b);
      }
    }
    compare_some();
  }
  EXPECT_GT(index->stats().caught_up, 0);
  // The random limits did cut candidates off, and not always.
  EXPECT_GT(truncated, 0);
  EXPECT_LT(truncated, compared);

  // A fresh build sees the same as the index that caught up.
  std::unique_ptr<KeyIndex> rebuilt = Build();
  for (const v1::Person& p : live) {
    EXPECT_EQ(Indexed(*rebuilt, p), Indexed(*index, p));
  }
}

TEST_P(KeyIndexTest, FindsAPersonWrittenAfterTheBuild) {
  const v1::Person first = Create(MakePerson("Oleksandr", "Kovalenko", 1985));
  std::unique_ptr<KeyIndex> index = Build();
  const v1::Person second = Create(MakePerson("Aleksandr", "Kowalenko", 1985));
  const std::vector<std::string> found =
      Indexed(*index, MakePerson("Oleksandr", "Kovalenko", 1985));
  ASSERT_EQ(found.size(), 2u);
  EXPECT_NE(std::find(found.begin(), found.end(), IdOf(first)), found.end());
  EXPECT_NE(std::find(found.begin(), found.end(), IdOf(second)), found.end());

  // Renamed away: no longer found under the old name, found under the new.
  Update(second, MakePerson("Tesfaye", "Tesfay", 1970));
  const std::vector<std::string> after =
      Indexed(*index, MakePerson("Oleksandr", "Kovalenko", 1985));
  EXPECT_EQ(after, std::vector<std::string>{IdOf(first)});
  EXPECT_EQ(Indexed(*index, MakePerson("Tesfaye", "Tesfay", 1970)),
            std::vector<std::string>{IdOf(second)});
}

// A merge removes the merged person's keys; the index must see that
// although no key of the survivor changed.
TEST_P(KeyIndexTest, AMergedPersonIsNotFoundAnyMore) {
  const v1::Person survivor = Create(MakePerson("Mohammed", "Al-Hassan", 1990));
  const v1::Person merged = Create(MakePerson("Muhammad", "Al-Hasan", 1990));
  std::unique_ptr<KeyIndex> index = Build();
  const v1::Person query = MakePerson("Mohammed", "Al-Hassan", 1990);
  ASSERT_EQ(Indexed(*index, query).size(), 2u);
  Merge(survivor, merged);
  EXPECT_EQ(Indexed(*index, query), std::vector<std::string>{IdOf(survivor)});
  auto [from_index, from_table] = BothWays(*index, query, {}, "", false);
  EXPECT_EQ(from_index, from_table);
}

// One transaction that keys more persons than a catch-up page: all of
// them share one stamp and are read together.
TEST_P(KeyIndexTest, CatchesUpOverABatchWithOneStamp) {
  std::unique_ptr<KeyIndex> index = Build(KeyIndex::kScanPage, 2);
  std::vector<std::string> ids;
  ASSERT_TRUE(Tx([&](PersonStore& store) -> absl::Status {
                for (int i = 0; i < 5; ++i) {
                  absl::StatusOr<v1::Person> created = store.Create(
                      MakePerson("Ayse", "Yilmaz", 1979), "agencies/kim-koeln");
                  if (!created.ok()) return created.status();
                  ids.push_back(IdOf(*created));
                }
                return absl::OkStatus();
              }).ok());
  const v1::Person later = Create(MakePerson("Ayse", "Yilmaz", 1979));
  ids.push_back(IdOf(later));
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(Indexed(*index, MakePerson("Ayse", "Yilmaz", 1979)), ids);
}

// A transaction with uncommitted key writes asks the table, which sees
// them; the index follows committed state only.
TEST_P(KeyIndexTest, AWriterThatClaimedAStampUsesTheTable) {
  std::unique_ptr<KeyIndex> index = Build();
  std::vector<std::string> found;
  std::string id;
  ASSERT_TRUE(Tx([&](PersonStore& store) -> absl::Status {
                store.set_key_index(index.get());
                absl::StatusOr<v1::Person> created = store.Create(
                    MakePerson("Hüseyin", "Yilmaz", 1960), "agencies/a");
                if (!created.ok()) return created.status();
                id = IdOf(*created);
                absl::StatusOr<Candidates> c = store.FindCandidates(
                    ToMatchRecord(MakePerson("Hüseyin", "Yilmaz", 1960)), {});
                if (!c.ok()) return c.status();
                found = c->person_ids;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(found, std::vector<std::string>{id});
  EXPECT_EQ(index->stats().lookups, 0);
}

TEST_P(KeyIndexTest, ReportsItsSizeAsMetrics) {
  Create(MakePerson("Tesfaye", "Tesfay", 1970));
  std::unique_ptr<KeyIndex> index = Build();
  prometheus::Registry registry;
  index->ExportMetrics(registry);
  Indexed(*index, MakePerson("Tesfaye", "Tesfay", 1970));
  double persons = -1;
  double lookups = -1;
  for (const auto& family : registry.Collect()) {
    if (family.name == "lotse_identity_key_index_persons") {
      persons = family.metric.at(0).gauge.value;
    }
    if (family.name == "lotse_identity_key_index_lookups_total") {
      lookups = family.metric.at(0).counter.value;
    }
  }
  EXPECT_EQ(persons, 1);
  EXPECT_EQ(lookups, 1);
  EXPECT_GT(index->stats().bytes, 0);
}

TEST(StringTableTest, NumbersStringsOnce) {
  StringTable table;
  EXPECT_EQ(table.Find("a"), StringTable::kNone);
  EXPECT_EQ(table.Intern("a"), 0u);
  EXPECT_EQ(table.Intern("bb"), 1u);
  EXPECT_EQ(table.Intern("a"), 0u);
  EXPECT_EQ(table.Find("bb"), 1u);
  EXPECT_EQ(table.Get(1), "bb");
  const std::string long_one(3 << 20, 'x');  // longer than a chunk
  EXPECT_EQ(table.Intern(long_one), 2u);
  EXPECT_EQ(table.Get(2), long_one);
  EXPECT_EQ(table.size(), 3u);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(KeyIndexTest);

}  // namespace
}  // namespace lotse::identity
