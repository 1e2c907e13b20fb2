// lotse_identity_bench: benchmarks of the identity service.
//
//   --mode=create  closed-loop CreatePerson over mutual TLS with unique
//                  synthetic persons (confirm_new_person = true, so a
//                  synthetic name that happens to look like an earlier one
//                  is not refused; a fresh request_id per call, so nothing is
//                  answered from the idempotency record).
//   --mode=load    writes --persons synthetic persons straight into the
//                  service's database through PersonStore (the same code
//                  path and blocking keys as CreatePerson, without gRPC,
//                  audit and outbox), in large transactions. Run it while
//                  the service is stopped: it is a bulk import, not a client.
//   --mode=find    closed-loop FindDuplicates over mutual TLS whose drafts
//                  are spelling variants of the persons --mode=load wrote
//                  (same --seed): another transliteration, swapped names, a
//                  typo, day and month swapped.
//   --mode=lookup  in process, on a loaded database: the candidate lookup
//                  of each such draft through the SQL index and through the
//                  in-memory KeyIndex (answers compared), with the index's
//                  build time and memory. A commit precedes every lookup,
//                  as the audit of every read does in the service.
//
// The closed loop and the histogram are bench/internal/load.h, so the figures
// are measured exactly like the echo baseline they are compared with. One
// JSON line per run on stdout, after one line for humans.
//
// Synthetic persons are a deterministic function of (--seed, index): the
// loader and the finder agree on person i without sharing a file. Names are
// drawn with a Zipf-like skew from pools of Arabic, Turkish, Ukrainian and
// Tigrinya names, each with the Latin spellings German registers actually
// see, so blocking keys get realistic selectivity: a few very common names
// (Mohammed, Mehmet, Oleksandr, Yohannes) dominate, as they do in reality,
// instead of every name being equally rare.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/internal/load.h"
#include "bench/internal/tls.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "services/identity/domain/name_matching.h"
#include "services/identity/domain/person.h"
#include "services/identity/store/key_index.h"
#include "services/identity/store/migrations.h"
#include "services/identity/store/person_store.h"

ABSL_FLAG(std::string, mode, "", "create, load, find or lookup");
ABSL_FLAG(int, queries, 2000, "lookup: queries, each run both ways");
ABSL_FLAG(std::string, target, "127.0.0.1:50051", "identity service");
ABSL_FLAG(std::string, tls_dir, "", "tools/dev-pki.sh directory");
ABSL_FLAG(std::string, client, "kim-koeln",
          "client certificate (an agency registered by lotse-admin)");
ABSL_FLAG(int, concurrency, 32, "calls in flight (create, find)");
ABSL_FLAG(int, channels, 2, "connections (create, find)");
ABSL_FLAG(double, duration_s, 10, "measurement window (create, find)");
ABSL_FLAG(double, warmup_s, 1, "warm-up before the window (create, find)");
ABSL_FLAG(int, rpc_timeout_ms, 5000, "deadline per call");
ABSL_FLAG(std::string, database, "",
          "load: the service's database URL, e.g. sqlite:/tmp/identity.db");
ABSL_FLAG(int64_t, persons, 100000,
          "load: persons to write; find: persons loaded (queries pick one "
          "of them)");
ABSL_FLAG(int, batch, 20000, "load: persons per transaction");
ABSL_FLAG(int64_t, first, 0,
          "load: index of the first person to write (continue an earlier "
          "load of this many persons)");
ABSL_FLAG(bool, defer_indexes, true,
          "load, SQLite: drop the secondary indexes of the person tables "
          "for the load and build them after it");
ABSL_FLAG(int, cache_mb, 2048,
          "load, SQLite: page cache of the loader's connection in MiB");
ABSL_FLAG(uint64_t, seed, 1, "synthetic population (load and find agree)");
ABSL_FLAG(std::string, agency, "kim-koeln",
          "load: creating agency of the loaded persons");

namespace {

namespace v1 = ::lotse::identity::v1;
using ::lotse::bench::CallDone;
using ::lotse::bench::LoadOptions;
using ::lotse::bench::LoadResult;
using ::lotse::bench::StartCall;

// ---------------------------------------------------------------------------
// Deterministic randomness. splitmix64 rather than <random> distributions,
// whose output the standard leaves to the library: the loader and the finder
// must derive the same person i on any build.

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  int Below(int n) {
    return static_cast<int>(Next() % static_cast<uint64_t>(n));
  }
  // True with probability p.
  bool Chance(double p) { return (Next() >> 11) * 0x1.0p-53 < p; }

 private:
  uint64_t state_;
};

// A name with the Latin spellings it is registered under; the first is the
// most common one.
struct NameSpellings {
  std::vector<const char*> spellings;
};

// A pool of names drawn with weight 1/(rank+1)^0.9, the skew of real name
// frequencies (a handful of names cover a large share of people).
class NamePool {
 public:
  explicit NamePool(std::vector<NameSpellings> names)
      : names_(std::move(names)) {
    double total = 0;
    for (size_t i = 0; i < names_.size(); ++i) {
      total += 1.0 / std::pow(static_cast<double>(i + 1), 0.9);
      cumulative_.push_back(total);
    }
    for (double& c : cumulative_) c /= total;
  }
  const NameSpellings& Draw(Rng& rng) const {
    const double u = (rng.Next() >> 11) * 0x1.0p-53;
    size_t i = std::lower_bound(cumulative_.begin(), cumulative_.end(), u) -
               cumulative_.begin();
    return names_[std::min(i, names_.size() - 1)];
  }

 private:
  std::vector<NameSpellings> names_;
  std::vector<double> cumulative_;
};

struct Origin {
  NamePool given;
  NamePool family;
  std::vector<const char*> places;
  const char* nationality;
  int weight;  // share of the population, in percent
};

const std::vector<Origin>& Origins() {
  static const auto* origins = new std::vector<Origin>{
      {NamePool(
           {{{"Mohammed", "Muhammad", "Mohamed", "Mohammad", "Muhammed"}},
            {{"Ahmad", "Ahmed"}},
            {{"Abdulrahman", "Abdul Rahman", "Abd al-Rahman", "Abdelrahman"}},
            {{"Fatima", "Fatimah", "Fatma"}},
            {{"Mahmoud", "Mahmud"}},
            {{"Omar", "Umar"}},
            {{"Aisha", "Aischa", "Aysha"}},
            {{"Khaled", "Khalid", "Chaled"}},
            {{"Yousef", "Youssef", "Yusuf"}},
            {{"Hussein", "Husain", "Hussain"}},
            {{"Zainab", "Zeinab", "Zaynab"}},
            {{"Ali"}},
            {{"Hassan", "Hasan"}},
            {{"Maryam", "Mariam"}},
            {{"Ibrahim", "Ebrahim"}},
            {{"Noor", "Nour", "Nur"}},
            {{"Mustafa", "Moustafa"}},
            {{"Layla", "Leila", "Laila"}},
            {{"Tariq", "Tarek", "Tareq"}},
            {{"Samira", "Sameera"}},
            {{"Walid", "Waleed"}},
            {{"Hiba", "Heba"}},
            {{"Jamal", "Gamal"}},
            {{"Rania"}},
            {{"Karim", "Kareem"}},
            {{"Amal"}},
            {{"Bilal"}},
            {{"Nadia", "Nadja"}},
            {{"Rami", "Ramy"}},
            {{"Abdullah", "Abdallah"}}}),
       NamePool({{{"Al-Hassan", "Alhassan", "al Hasan", "El-Hassan"}},
                 {{"Al-Ahmad", "Alahmad", "Al Ahmed"}},
                 {{"Haddad", "Hadad"}},
                 {{"Khalil", "Chalil"}},
                 {{"Ibrahim", "Ebrahim"}},
                 {{"Mahmoud", "Mahmud"}},
                 {{"Darwish", "Darwisch"}},
                 {{"Hamdan"}},
                 {{"Al-Khatib", "Alkhatib", "El Khatib"}},
                 {{"Nasser", "Nasir", "Naser"}},
                 {{"Saleh", "Salih"}},
                 {{"Abdullah", "Abdallah"}},
                 {{"Othman", "Osman", "Uthman"}},
                 {{"Suleiman", "Sulaiman", "Sleiman"}},
                 {{"Aziz"}},
                 {{"Qasim", "Kassem", "Kasim"}},
                 {{"Sheikh", "Shaikh", "Scheich"}},
                 {{"Al-Masri", "Almasri", "El Masri"}},
                 {{"Zaher", "Zahir"}},
                 {{"Mansour", "Mansur"}},
                 {{"Jaber", "Jabir", "Gaber"}},
                 {{"Hamoud", "Hammoud"}},
                 {{"Bakr", "Bakir"}},
                 {{"Al-Sayed", "Alsayed", "El Sayed"}},
                 {{"Rahman"}},
                 {{"Haidar", "Haider", "Hayder"}},
                 {{"Al-Jabouri", "Aljaburi", "Al Jubouri"}},
                 {{"Khoury", "Khouri", "Churi"}},
                 {{"Najjar", "Nadjar"}},
                 {{"Sabbagh", "Sabbag"}}}),
       {"Aleppo", "Damaskus", "Homs", "Bagdad", "Mossul", "Idlib", "Daraa"},
       "SY",
       35},
      {NamePool({{{"Mehmet", "Mehmed"}},
                 {{"Mustafa", "Moustafa"}},
                 {{"Ayşe", "Ayse", "Aysche"}},
                 {{"Ahmet", "Ahmed"}},
                 {{"Fatma", "Fatima"}},
                 {{"Hüseyin", "Hueseyin", "Huseyin"}},
                 {{"Emine"}},
                 {{"Murat", "Murad"}},
                 {{"Zeynep", "Zeynab"}},
                 {{"Ömer", "Oemer", "Omer"}},
                 {{"Hatice", "Hatidsche"}},
                 {{"Yusuf", "Jusuf"}},
                 {{"Elif"}},
                 {{"İbrahim", "Ibrahim"}},
                 {{"Özlem", "Oezlem", "Ozlem"}},
                 {{"Emre"}},
                 {{"Gül", "Guel", "Gul"}},
                 {{"Şükrü", "Sükrü", "Suekrue"}},
                 {{"Burak"}},
                 {{"Kemal", "Kamal"}},
                 {{"Serkan"}},
                 {{"Deniz"}},
                 {{"Cem", "Djem"}},
                 {{"Hacer", "Hadscher"}},
                 {{"Selin"}}}),
       NamePool({{{"Yılmaz", "Yilmaz", "Jilmaz"}},
                 {{"Kaya", "Kaja"}},
                 {{"Demir"}},
                 {{"Şahin", "Sahin", "Schahin"}},
                 {{"Çelik", "Celik", "Tschelik"}},
                 {{"Yıldız", "Yildiz"}},
                 {{"Yıldırım", "Yildirim"}},
                 {{"Öztürk", "Oeztuerk", "Ozturk"}},
                 {{"Aydın", "Aydin"}},
                 {{"Özdemir", "Oezdemir", "Ozdemir"}},
                 {{"Arslan", "Aslan"}},
                 {{"Doğan", "Dogan"}},
                 {{"Kılıç", "Kilic", "Kilitsch"}},
                 {{"Çetin", "Cetin"}},
                 {{"Kara"}},
                 {{"Koç", "Koc", "Kotsch"}},
                 {{"Kurt"}},
                 {{"Özkan", "Oezkan", "Ozkan"}},
                 {{"Şimşek", "Simsek"}},
                 {{"Polat"}},
                 {{"Korkmaz"}},
                 {{"Erdoğan", "Erdogan"}},
                 {{"Güler", "Gueler", "Guler"}},
                 {{"Aksoy"}},
                 {{"Keskin"}}}),
       {"İstanbul", "Ankara", "Gaziantep", "Diyarbakır", "Konya", "Izmir"},
       "TR",
       25},
      {NamePool({{{"Oleksandr", "Aleksandr", "Alexander", "Olexandr"}},
                 {{"Olena", "Elena", "Yelena", "Jelena"}},
                 {{"Andriy", "Andrii", "Andrij", "Andrei"}},
                 {{"Iryna", "Irina"}},
                 {{"Serhiy", "Serhii", "Sergei", "Sergej"}},
                 {{"Tetiana", "Tatiana", "Tetyana"}},
                 {{"Volodymyr", "Wolodymyr", "Vladimir"}},
                 {{"Nataliia", "Natalia", "Natalija"}},
                 {{"Mykola", "Nikolai", "Mikola"}},
                 {{"Yuliia", "Yulia", "Julia", "Iuliia"}},
                 {{"Dmytro", "Dmitri", "Dmitrij"}},
                 {{"Oksana"}},
                 {{"Kateryna", "Ekaterina", "Katerina"}},
                 {{"Ivan", "Iwan"}},
                 {{"Viktoriia", "Viktoria", "Wiktorija"}},
                 {{"Yurii", "Yuriy", "Jurij"}},
                 {{"Mariia", "Maria"}},
                 {{"Maksym", "Maxim", "Maksim"}},
                 {{"Anastasiia", "Anastasia"}},
                 {{"Svitlana", "Svetlana", "Swetlana"}},
                 {{"Vasyl", "Wasyl", "Vasily"}},
                 {{"Halyna", "Galina", "Halina"}},
                 {{"Petro", "Pjotr", "Petr"}},
                 {{"Hanna", "Anna", "Ganna"}},
                 {{"Bohdan", "Bogdan"}}}),
       NamePool({{{"Kovalenko", "Kowalenko"}},
                 {{"Shevchenko", "Schewtschenko", "Sevcenko"}},
                 {{"Bondarenko"}},
                 {{"Tkachenko", "Tkatschenko", "Tkacenko"}},
                 {{"Kravchenko", "Krawtschenko"}},
                 {{"Melnyk", "Melnik"}},
                 {{"Boiko", "Boyko", "Bojko"}},
                 {{"Kovalchuk", "Kowaltschuk"}},
                 {{"Oliinyk", "Oleynik", "Olijnyk"}},
                 {{"Shevchuk", "Schewtschuk"}},
                 {{"Polishchuk", "Polischtschuk"}},
                 {{"Lysenko", "Lissenko"}},
                 {{"Marchenko", "Martschenko"}},
                 {{"Moroz"}},
                 {{"Rudenko"}},
                 {{"Savchenko", "Sawtschenko"}},
                 {{"Petrenko"}},
                 {{"Kuzmenko", "Kusmenko"}},
                 {{"Pavlenko", "Pawlenko"}},
                 {{"Ivanenko", "Iwanenko"}},
                 {{"Hrytsenko", "Gritsenko", "Hryzenko"}},
                 {{"Zhuk", "Shuk", "Schuk"}},
                 {{"Koval", "Kowal"}},
                 {{"Tkachuk", "Tkatschuk"}},
                 {{"Vasylenko", "Wassylenko", "Vasilenko"}}}),
       {"Kyjiw", "Charkiw", "Odesa", "Dnipro", "Lwiw", "Saporischschja",
        "Mariupol"},
       "UA",
       28},
      {NamePool({{{"Yohannes", "Johannes", "Yohanes"}},
                 {{"Tesfaye", "Tesfay", "Tesfai"}},
                 {{"Senait", "Senayt"}},
                 {{"Mehari", "Mihary"}},
                 {{"Haile", "Hayle"}},
                 {{"Helen", "Hellen"}},
                 {{"Berhane", "Birhane"}},
                 {{"Selam", "Salam"}},
                 {{"Tekle", "Teklay"}},
                 {{"Ghebremedhin", "Gebremedhin"}},
                 {{"Luwam", "Lwam"}},
                 {{"Ghirmay", "Girmay"}},
                 {{"Semere", "Semre"}},
                 {{"Yordanos", "Jordanos"}},
                 {{"Filmon", "Filimon"}},
                 {{"Rahel", "Rachel"}},
                 {{"Kidane", "Kidan"}},
                 {{"Saba"}},
                 {{"Tsega", "Tsegga"}},
                 {{"Abrehet", "Abrehit"}},
                 {{"Negasi", "Negash"}},
                 {{"Feven", "Fiven"}},
                 {{"Aster"}},
                 {{"Eden"}},
                 {{"Robel", "Robiel"}}}),
       NamePool({{{"Tesfamariam", "Tesfamaryam", "Tesfa Mariam"}},
                 {{"Ghebreyesus", "Gebreyesus", "Gebre Yesus"}},
                 {{"Woldemichael", "Weldemichael", "Wolde Michael"}},
                 {{"Haile", "Hayle"}},
                 {{"Kahsay", "Kahsai"}},
                 {{"Tekle", "Teklay"}},
                 {{"Habte", "Habtu"}},
                 {{"Berhe", "Berhane"}},
                 {{"Asmerom", "Asmarom"}},
                 {{"Gebremariam", "Ghebremariam"}},
                 {{"Mebrahtu", "Mebratu"}},
                 {{"Abraha", "Abrha"}},
                 {{"Tsegay", "Tsegai"}},
                 {{"Andemariam", "Andemaryam"}},
                 {{"Okbazghi", "Okbazgi"}},
                 {{"Kidane", "Kidan"}},
                 {{"Zerai", "Zeray"}},
                 {{"Mengisteab", "Mengistab"}},
                 {{"Yemane", "Jemane"}},
                 {{"Hagos", "Hagoss"}},
                 {{"Russom", "Rusom"}},
                 {{"Fessehaye", "Fshaye"}},
                 {{"Weldu", "Woldu"}},
                 {{"Tewelde", "Tewolde"}},
                 {{"Ghebrehiwet", "Gebrehiwet"}}}),
       {"Asmara", "Keren", "Massawa", "Mendefera", "Barentu"},
       "ER",
       12},
  };
  return *origins;
}

// The choices that make up synthetic person i; the stored record and the
// query variants are both rendered from it.
struct Synthetic {
  const Origin* origin;
  std::vector<const NameSpellings*> given;  // one or two given names
  const NameSpellings* family;
  int year = 0, month = 0, day = 0;  // 0 = unknown, as in PartialDate
  const char* place;
  bool female;
};

// Everything about person i is drawn from its own stream, so person i does
// not depend on how many persons come before it.
Synthetic MakeSynthetic(uint64_t seed, uint64_t index) {
  Rng rng(seed * 0x2545f4914f6cdd1dULL ^ (index + 1) * 0x9e3779b97f4a7c15ULL);
  Synthetic s;
  int pick = rng.Below(100);
  for (const Origin& origin : Origins()) {
    s.origin = &origin;
    if (pick < origin.weight) break;
    pick -= origin.weight;
  }
  s.given.push_back(&s.origin->given.Draw(rng));
  // Compound given names (Mohammed Ali, Ayşe Nur) are common in the
  // registers; avoid the same name twice.
  if (rng.Chance(0.15)) {
    const NameSpellings* second = &s.origin->given.Draw(rng);
    if (second != s.given[0]) s.given.push_back(second);
  }
  s.family = &s.origin->family.Draw(rng);
  s.female = rng.Chance(0.5);
  s.place =
      s.origin->places[rng.Below(static_cast<int>(s.origin->places.size()))];
  // Birth dates as registers hold them: mostly complete, a share with the
  // 01.01. placeholder (papers stated only the year), some year-only
  // records, a few unknown.
  const int kind = rng.Below(100);
  s.year = 1950 + rng.Below(70);
  if (kind < 82) {
    s.month = 1 + rng.Below(12);
    s.day = 1 + rng.Below(28);
  } else if (kind < 90) {
    s.month = 1;
    s.day = 1;
  } else if (kind < 97) {
    // year only
  } else {
    s.year = 0;
  }
  return s;
}

// Spelling `variant` of a name (0 = as stored).
std::string Spell(const NameSpellings& name, int variant) {
  return name.spellings[static_cast<size_t>(variant) % name.spellings.size()];
}

// One typo: a letter inside the word replaced by a neighbour in the
// alphabet. Only ASCII letters are touched, so UTF-8 stays valid.
std::string WithTypo(std::string word, Rng& rng) {
  std::vector<size_t> letters;
  for (size_t i = 1; i + 1 < word.size(); ++i) {
    if (word[i] >= 'a' && word[i] < 'z') letters.push_back(i);
  }
  if (letters.empty()) return word;
  word[letters[rng.Below(static_cast<int>(letters.size()))]] += 1;
  return word;
}

// The stored record of synthetic person i, as a client would send it.
v1::Person StoredPerson(const Synthetic& s) {
  v1::Person person;
  v1::PersonName* name = person.add_names();
  std::string given;
  for (const NameSpellings* g : s.given) {
    absl::StrAppend(&given, given.empty() ? "" : " ", Spell(*g, 0));
  }
  name->set_given_names(given);
  name->set_family_names(Spell(*s.family, 0));
  name->set_script("Latn");
  name->set_kind(v1::NAME_KIND_CURRENT);
  if (s.year != 0) {
    person.mutable_birth_date()->set_year(s.year);
    person.mutable_birth_date()->set_month(s.month);
    person.mutable_birth_date()->set_day(s.day);
  }
  person.set_birth_place(s.place);
  person.set_sex(s.female ? v1::SEX_FEMALE : v1::SEX_MALE);
  person.add_nationality_codes(s.origin->nationality);
  person.set_nationality_status(v1::NATIONALITY_STATUS_KNOWN);
  return person;
}

// A draft that names the same person as StoredPerson(s) the way another
// office would have registered them: each name part in another Latin
// spelling where one exists, else (sometimes) with a typo; sometimes given
// and family names swapped, day and month swapped, the place left out.
v1::Person VariantDraft(const Synthetic& s, Rng& rng) {
  v1::Person draft = StoredPerson(s);
  v1::PersonName* name = draft.mutable_names(0);
  auto vary = [&rng](const NameSpellings& n) {
    if (n.spellings.size() > 1) {
      return Spell(n, 1 + rng.Below(static_cast<int>(n.spellings.size()) - 1));
    }
    return rng.Chance(0.3) ? WithTypo(Spell(n, 0), rng) : Spell(n, 0);
  };
  std::string given;
  for (const NameSpellings* g : s.given) {
    absl::StrAppend(&given, given.empty() ? "" : " ", vary(*g));
  }
  std::string family = vary(*s.family);
  if (rng.Chance(0.1)) std::swap(given, family);
  name->set_given_names(given);
  name->set_family_names(family);
  if (s.day != 0 && s.day <= 12 && s.month != s.day && rng.Chance(0.1)) {
    draft.mutable_birth_date()->set_month(s.day);
    draft.mutable_birth_date()->set_day(s.month);
  }
  if (rng.Chance(0.5)) draft.clear_birth_place();
  return draft;
}

// ---------------------------------------------------------------------------
// Load: bulk import through PersonStore.

absl::Status Load() {
  const std::string url = absl::GetFlag(FLAGS_database);
  const int64_t total = absl::GetFlag(FLAGS_persons);
  const int batch = std::max(1, absl::GetFlag(FLAGS_batch));
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  const std::string agency =
      absl::StrCat("agencies/", absl::GetFlag(FLAGS_agency));
  if (url.empty()) return absl::InvalidArgumentError("--database is required");

  absl::StatusOr<std::unique_ptr<lotse::storage::Database>> db =
      lotse::storage::OpenDatabase(url, 1);
  if (!db.ok()) return db.status();
  // The loader may run before the service ever started on this file.
  absl::Status migrated = lotse::storage::ApplyMigrations(
      **db, lotse::identity::IdentityMigrations());
  if (!migrated.ok()) return migrated;
  absl::StatusOr<std::unique_ptr<lotse::identity::DuplicateMatcher>> matcher =
      lotse::identity::DuplicateMatcher::Create();
  if (!matcher.ok()) return matcher.status();

  if (absl::StartsWith(url, "sqlite:")) {
    // Ids are random, so every insert lands on a random page of the person
    // and key indexes; with SQLite's default 2 MB page cache a large load
    // spends most of its time re-reading pages from the OS.
    const int64_t cache_kib = int64_t{absl::GetFlag(FLAGS_cache_mb)} << 10;
    absl::Status cached = lotse::storage::RunInTransaction(
        **db, [&](lotse::storage::Transaction& tx) -> absl::Status {
          return tx.Execute(absl::StrCat("PRAGMA cache_size=-", cache_kib))
              .status();
        });
    if (!cached.ok()) return cached;
  }
  // SQLite: the secondary indexes of the person tables are dropped for the
  // load and built again after it (one sort each instead of a random
  // B-tree insert per row), as bulk imports do. Only the primary keys stay,
  // and PersonStore::Create needs no other index.
  std::vector<std::string> deferred_indexes;
  if (absl::StartsWith(url, "sqlite:") && absl::GetFlag(FLAGS_defer_indexes)) {
    absl::Status dropped = lotse::storage::RunInTransaction(
        **db, [&](lotse::storage::Transaction& tx) -> absl::Status {
          deferred_indexes.clear();
          absl::StatusOr<lotse::storage::Rows> rows = tx.Query(
              "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
              "sql IS NOT NULL AND tbl_name IN ('identity_persons', "
              "'identity_person_keys')");
          if (!rows.ok()) return rows.status();
          for (const lotse::storage::Row& row : *rows) {
            absl::StatusOr<std::string> name = row.GetText(0);
            absl::StatusOr<std::string> sql = row.GetText(1);
            if (!name.ok()) return name.status();
            if (!sql.ok()) return sql.status();
            deferred_indexes.push_back(*sql);
            absl::StatusOr<int64_t> done =
                tx.Execute(absl::StrCat("DROP INDEX ", *name));
            if (!done.ok()) return done.status();
          }
          return absl::OkStatus();
        });
    if (!dropped.ok()) return dropped;
  }
  const absl::Time start = absl::Now();
  const int64_t first = std::max<int64_t>(0, absl::GetFlag(FLAGS_first));
  for (int64_t done = first; done < first + total;) {
    const int64_t end = std::min(first + total, done + batch);
    // Large transactions: one commit (one WAL sync) per batch instead of
    // per person is what makes a million rows take minutes, not hours.
    absl::Status status = lotse::storage::RunInTransaction(
        **db, [&](lotse::storage::Transaction& tx) -> absl::Status {
          lotse::identity::PersonStore store(tx, **matcher);
          for (int64_t i = done; i < end; ++i) {
            absl::StatusOr<v1::Person> created =
                store.Create(StoredPerson(MakeSynthetic(seed, i)), agency);
            if (!created.ok()) return created.status();
          }
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
    done = end;
    const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
    std::fprintf(stderr, "loaded %lld/%lld persons, %.0f/s\n",
                 static_cast<long long>(done),
                 static_cast<long long>(first + total),
                 (done - first) / std::max(elapsed, 1e-9));
  }
  if (!deferred_indexes.empty()) {
    std::fprintf(stderr, "building %zu indexes\n", deferred_indexes.size());
    absl::Status built = lotse::storage::RunInTransaction(
        **db, [&](lotse::storage::Transaction& tx) -> absl::Status {
          for (const std::string& sql : deferred_indexes) {
            absl::StatusOr<int64_t> done = tx.Execute(sql);
            if (!done.ok()) return done.status();
          }
          return absl::OkStatus();
        });
    if (!built.ok()) return built;
  }
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf(
      "{\"mode\":\"load\",\"persons\":%lld,\"seconds\":%.1f,"
      "\"persons_per_s\":%.0f}\n",
      static_cast<long long>(total), elapsed, total / std::max(elapsed, 1e-9));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Lookup: the candidate lookup alone, in process, on a loaded database: the
// SQL lookups on identity_person_keys next to the in-memory KeyIndex, for
// the same queries (the drafts --mode=find sends), with the answers
// compared. Each query runs in its own read-only transaction after a
// one-row commit, as in the service, where every read commits its audit
// records and so empties SQLite's page caches.

int64_t RssKib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  int64_t kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "VmRSS: %lld", reinterpret_cast<long long*>(&kib)) ==
        1) {
      break;
    }
  }
  std::fclose(f);
  return kib;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

absl::Status Lookups() {
  namespace storage = ::lotse::storage;
  const std::string url = absl::GetFlag(FLAGS_database);
  const int64_t persons = absl::GetFlag(FLAGS_persons);
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  const int queries = absl::GetFlag(FLAGS_queries);
  absl::StatusOr<std::unique_ptr<storage::Database>> db =
      storage::OpenDatabase(url, 2);
  if (!db.ok()) return db.status();
  absl::StatusOr<std::unique_ptr<lotse::identity::DuplicateMatcher>> matcher =
      lotse::identity::DuplicateMatcher::Create();
  if (!matcher.ok()) return matcher.status();

  const int64_t rss_before = RssKib();
  const absl::Time build_start = absl::Now();
  lotse::identity::KeyIndex index;
  if (absl::Status s = index.Build(**db, **matcher); !s.ok()) return s;
  const double build_s = absl::ToDoubleSeconds(absl::Now() - build_start);
  const int64_t rss_after = RssKib();

  std::vector<double> sql_us;
  std::vector<double> index_us;
  int64_t mismatches = 0;
  int64_t candidates = 0;
  for (int q = 0; q < queries; ++q) {
    Rng rng(seed ^ (q + 1) * 0x9e3779b97f4a7c15ULL);
    const uint64_t i =
        rng.Next() % static_cast<uint64_t>(std::max<int64_t>(1, persons));
    const v1::Person draft = VariantDraft(MakeSynthetic(seed, i), rng);
    absl::StatusOr<lotse::identity::PreparedRecord> prepared =
        (*matcher)->Prepare(lotse::identity::ToMatchRecord(draft));
    if (!prepared.ok()) return prepared.status();
    lotse::identity::Candidates by_sql;
    lotse::identity::Candidates by_index;
    // Alternate which goes first, so neither always finds the other's
    // pages in the OS cache.
    for (int pass = 0; pass < 2; ++pass) {
      const bool indexed = (pass == 0) == (q % 2 == 0);
      absl::Status committed = storage::RunInTransaction(
          **db, [](storage::Transaction& tx) -> absl::Status {
            return tx
                .Execute(
                    "UPDATE identity_key_clock SET stamp = stamp WHERE id = 1")
                .status();
          });
      if (!committed.ok()) return committed;
      absl::Status s = storage::RunInTransaction(
          **db,
          [&](storage::Transaction& tx) -> absl::Status {
            lotse::identity::PersonStore store(tx, **matcher);
            if (indexed) store.set_key_index(&index);
            const absl::Time start = absl::Now();
            absl::StatusOr<lotse::identity::Candidates> found =
                store.FindCandidates(*prepared, {});
            const double us = absl::ToDoubleMicroseconds(absl::Now() - start);
            if (!found.ok()) return found.status();
            (indexed ? index_us : sql_us).push_back(us);
            (indexed ? by_index : by_sql) = *std::move(found);
            return absl::OkStatus();
          },
          storage::TxMode::kReadOnly);
      if (!s.ok()) return s;
    }
    candidates += static_cast<int64_t>(by_sql.person_ids.size());
    if (by_sql.person_ids != by_index.person_ids ||
        by_sql.truncated != by_index.truncated) {
      ++mismatches;
    }
  }
  const lotse::identity::KeyIndex::Stats stats = index.stats();
  std::printf(
      "{\"mode\":\"lookup\",\"persons\":%lld,\"queries\":%d,"
      "\"build_s\":%.1f,\"index_bytes\":%lld,\"index_keys\":%lld,"
      "\"index_postings\":%lld,\"rss_before_kib\":%lld,"
      "\"rss_after_build_kib\":%lld,\"sql_p50_us\":%.0f,"
      "\"sql_p99_us\":%.0f,\"index_p50_us\":%.0f,\"index_p99_us\":%.0f,"
      "\"mean_candidates\":%.1f,\"mismatches\":%lld}\n",
      static_cast<long long>(persons), queries, build_s,
      static_cast<long long>(stats.bytes), static_cast<long long>(stats.keys),
      static_cast<long long>(stats.postings),
      static_cast<long long>(rss_before), static_cast<long long>(rss_after),
      Percentile(sql_us, 0.5), Percentile(sql_us, 0.99),
      Percentile(index_us, 0.5), Percentile(index_us, 0.99),
      static_cast<double>(candidates) / std::max(1, queries),
      static_cast<long long>(mismatches));
  if (mismatches > 0) {
    return absl::InternalError("the key index answered differently");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Create and find: closed-loop RPCs through bench/internal/load.h.

struct Client {
  std::vector<std::unique_ptr<v1::IdentityService::Stub>> stubs;
  std::atomic<uint64_t> next{0};  // round-robin over stubs, and call index
  absl::Duration rpc_timeout;
  std::string run_id;  // makes request_ids unique across runs on one db
  uint64_t seed = 1;
  int64_t persons = 0;
  // FindDuplicates outcomes, to show the queries really hit candidates.
  std::atomic<int64_t> answered{0};
  std::atomic<int64_t> with_candidates{0};
  std::atomic<int64_t> candidates{0};
};

void Prepare(const Client& client, grpc::ClientContext* context) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + client.rpc_timeout));
  context->AddMetadata("x-lotse-actor", "bench");
  context->AddMetadata("x-lotse-purpose", "benchmark");
}

absl::StatusOr<std::shared_ptr<Client>> Connect() {
  const std::string tls_dir = absl::GetFlag(FLAGS_tls_dir);
  if (tls_dir.empty()) {
    return absl::InvalidArgumentError(
        "--tls_dir is required: the figures are over mutual TLS");
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      lotse::bench::MakeMutualTlsChannelCredentials(
          tls_dir, absl::GetFlag(FLAGS_client));
  if (!credentials.ok()) return credentials.status();
  auto client = std::make_shared<Client>();
  client->rpc_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_rpc_timeout_ms));
  client->seed = absl::GetFlag(FLAGS_seed);
  client->persons = absl::GetFlag(FLAGS_persons);
  client->run_id = absl::StrCat(absl::ToUnixMicros(absl::Now()));
  const std::string target = absl::GetFlag(FLAGS_target);
  for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_channels)); ++i) {
    grpc::ChannelArguments args;
    // As in the echo load generator: a distinct argument per channel and a
    // local subchannel pool, or gRPC would share one TCP connection.
    args.SetInt("lotse.bench.channel_index", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = v1::IdentityService::NewStub(
        grpc::CreateCustomChannel(target, *credentials, args));
    // A cheap authenticated probe per channel: connects it before the clock
    // starts and fails clearly if the agency is not registered.
    grpc::ClientContext context;
    Prepare(*client, &context);
    v1::GetAgencyRequest request;
    request.set_name(absl::StrCat("agencies/", absl::GetFlag(FLAGS_client)));
    v1::Agency agency;
    grpc::Status status = stub->GetAgency(&context, request, &agency);
    if (!status.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "probe GetAgency on channel ", i, " to ", target,
          " failed: ", lotse::bench::StatusCodeName(status.error_code()), ": ",
          status.error_message()));
    }
    client->stubs.push_back(std::move(stub));
  }
  return client;
}

StartCall CreateCalls(std::shared_ptr<Client> client) {
  return [client](CallDone done) {
    struct Call {
      grpc::ClientContext context;
      v1::CreatePersonRequest request;
      v1::Person response;
    };
    const uint64_t n = client->next.fetch_add(1);
    auto* call = new Call;
    Prepare(*client, &call->context);
    call->request.set_request_id(
        absl::StrCat("bench-", client->run_id, "-", n));
    // Indexes far above any --persons of the loader, so a create run on a
    // loaded database adds new persons rather than copies of loaded ones.
    *call->request.mutable_person() =
        StoredPerson(MakeSynthetic(client->seed, (uint64_t{1} << 40) + n));
    call->request.set_confirm_new_person(true);
    v1::IdentityService::Stub& stub = *client->stubs[n % client->stubs.size()];
    stub.async()->CreatePerson(&call->context, &call->request, &call->response,
                               [call, done](grpc::Status status) {
                                 delete call;
                                 done(status);
                               });
  };
}

StartCall FindCalls(std::shared_ptr<Client> client) {
  return [client](CallDone done) {
    struct Call {
      grpc::ClientContext context;
      v1::FindDuplicatesRequest request;
      v1::FindDuplicatesResponse response;
    };
    const uint64_t n = client->next.fetch_add(1);
    Rng rng(client->seed ^ (n + 1) * 0xd1b54a32d192ed03ULL);
    const uint64_t index = rng.Next() % static_cast<uint64_t>(std::max<int64_t>(
                                            1, client->persons));
    auto* call = new Call;
    Prepare(*client, &call->context);
    *call->request.mutable_draft() =
        VariantDraft(MakeSynthetic(client->seed, index), rng);
    v1::IdentityService::Stub& stub = *client->stubs[n % client->stubs.size()];
    stub.async()->FindDuplicates(
        &call->context, &call->request, &call->response,
        [client, call, done](grpc::Status status) {
          if (status.ok()) {
            client->answered.fetch_add(1);
            const int found = call->response.candidates_size();
            client->candidates.fetch_add(found);
            if (found > 0) client->with_candidates.fetch_add(1);
          }
          delete call;
          done(status);
        });
  };
}

absl::Status RunRpcs(const std::string& mode) {
  absl::StatusOr<std::shared_ptr<Client>> client = Connect();
  if (!client.ok()) return client.status();
  LoadOptions options;
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  options.warmup = absl::Seconds(absl::GetFlag(FLAGS_warmup_s));
  absl::StatusOr<LoadResult> result = lotse::bench::RunClosedLoop(
      options, mode == "create" ? CreateCalls(*client) : FindCalls(*client));
  if (!result.ok()) return result.status();
  std::printf("%s %s\n", mode.c_str(),
              lotse::bench::FormatHuman(*result).c_str());
  if (!result->first_error.empty()) {
    std::printf("first error: %s\n", result->first_error.c_str());
  }
  std::string extra;
  if (mode == "find") {
    const int64_t answered = std::max<int64_t>(1, (*client)->answered.load());
    extra = absl::StrFormat(
        ",\"persons\":%d,\"hit_rate\":%.3f,\"mean_candidates\":%.2f",
        (*client)->persons,
        static_cast<double>((*client)->with_candidates.load()) / answered,
        static_cast<double>((*client)->candidates.load()) / answered);
  }
  std::printf("{\"mode\":\"%s\",%s%s,\"tls\":true}\n", mode.c_str(),
              lotse::bench::FormatJsonFields(*result).c_str(), extra.c_str());
  std::fflush(stdout);
  if (result->errors > 0 || result->calls == 0) {
    return absl::InternalError("run saw errors or no calls");
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "identity service benchmarks: --mode=create|load|find|lookup "
      "(bench/README.md)");
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  absl::Status status;
  if (mode == "load") {
    status = Load();
  } else if (mode == "lookup") {
    status = Lookups();
  } else if (mode == "create" || mode == "find") {
    status = RunRpcs(mode);
  } else {
    status = absl::InvalidArgumentError(
        "--mode must be create, load, find or lookup");
  }
  if (!status.ok()) {
    std::fprintf(stderr, "lotse_identity_bench: %s\n",
                 status.ToString().c_str());
    return 1;
  }
  return 0;
}
