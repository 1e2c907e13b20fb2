// lotse_seed_demo: registers the demo agencies of tools/dev-pki.sh with the
// identity service, acting as the administering agency (lotse-admin), so
// that every demo client certificate can call Lotse right away. A real
// client of the public API: mutual TLS, actor and purpose metadata, a
// request_id per agency so that running it again creates nothing twice.
//
// With --placement it then adds placement demo data, as the agencies that
// own it would: a person (identity, as the Jobcenter, which links its
// customer number DEMO-4711) with a residence status permitting work (as
// the immigration office), the person's candidate profile (as the
// Jobcenter) and two offers (one by the employment agency requiring B1,
// one by the Jobcenter requiring A2). Running it again finds what exists
// (the linked number, the profile, the offers by title) and creates
// nothing twice.
//
// With --municipality it also registers the agencies of the demo
// municipality Lindenbrück (tools/demo/plan.h) and loads its newcomers,
// cases, courses, offers and placements with months of history
// (tools/demo/load.h; the services must run with --dev_clock). A
// municipality loaded before is left as it is.
//
// Exit status: 0 done, 1 an agency could not be registered, 3 the
// placement demo data could not be created, 4 the demo municipality could
// not be loaded completely.
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/errors/status.h"
#include "common/server/request_context.h"
#include "common/server/server.h"
#include "common/server/usage.h"
#include "grpcpp/create_channel.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"
#include "tools/demo/load.h"
#include "tools/demo/plan.h"

ABSL_FLAG(std::string, identity, "127.0.0.1:50051", "identity service");
ABSL_FLAG(std::string, placement, "",
          "placement service (host:port); empty: no placement demo data");
ABSL_FLAG(std::string, tls_dir, ".dev/pki", "dev-pki directory");
ABSL_FLAG(std::string, admin, "lotse-admin", "administering agency's cert");
ABSL_FLAG(bool, municipality, false,
          "also load the demo municipality Lindenbrück (needs --cases, "
          "--courses, --placement and services started with --dev_clock)");
ABSL_FLAG(std::string, cases, "127.0.0.1:50052", "cases service");
ABSL_FLAG(std::string, courses, "127.0.0.1:50053", "courses service");
ABSL_FLAG(int32_t, persons, 2400, "demo municipality: newcomers registered");
ABSL_FLAG(int32_t, demo_cases, 600, "demo municipality: of them with a case");
ABSL_FLAG(int32_t, history_days, 200,
          "demo municipality: days of history before today");
ABSL_FLAG(uint64_t, seed, 17, "demo municipality: seed of the plan");
ABSL_FLAG(int32_t, threads, 32, "demo municipality: persons loaded at once");

namespace {

using ::lotse::type::v1::LegalDomain;

struct DemoAgency {
  const char* id;
  const char* display_name;
  LegalDomain domain;
  const char* municipality_code;  // AGS; Köln is 05315000
};

// Mirrors the client certificates tools/dev-pki.sh issues.
const std::vector<DemoAgency>& DemoAgencies() {
  static const auto* agencies = new std::vector<DemoAgency>{
      {"kim-koeln", "Kommunales Integrationsmanagement Köln",
       lotse::type::v1::LEGAL_DOMAIN_KOMMUNE, "05315000"},
      // A second municipality, so that a case can move between towns.
      {"kim-bonn", "Kommunales Integrationsmanagement Bonn",
       lotse::type::v1::LEGAL_DOMAIN_KOMMUNE, "05314000"},
      {"abh-koeln", "Ausländerbehörde Köln",
       lotse::type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE, "05315000"},
      {"bamf-nuernberg", "Bundesamt für Migration und Flüchtlinge",
       lotse::type::v1::LEGAL_DOMAIN_BAMF, ""},
      {"jobcenter-koeln", "Jobcenter Köln",
       lotse::type::v1::LEGAL_DOMAIN_JOBCENTER, "05315000"},
      {"aa-koeln", "Agentur für Arbeit Köln",
       lotse::type::v1::LEGAL_DOMAIN_ARBEITSAGENTUR, "05315000"},
      {"vhs-koeln", "Volkshochschule Köln (Integrationskurse)",
       lotse::type::v1::LEGAL_DOMAIN_KURSTRAEGER, "05315000"},
      {"ihk-koeln", "IHK Köln", lotse::type::v1::LEGAL_DOMAIN_KAMMER,
       "05315000"},
      {"caritas-koeln", "Caritasverband Köln (Migrationsberatung)",
       lotse::type::v1::LEGAL_DOMAIN_FREIER_TRAEGER, "05315000"},
      {"jugendamt-koeln", "Jugendamt Köln",
       lotse::type::v1::LEGAL_DOMAIN_JUGENDAMT, "05315000"},
      {"sozialamt-koeln", "Sozialamt Köln",
       lotse::type::v1::LEGAL_DOMAIN_SOZIALAMT, "05315000"},
      // The deployment's data-protection officer: reads the services'
      // audit chains (AuditService), no person data.
      {"dsb-nrw", "Datenschutzbeauftragte der Lotse-Betreiberin",
       lotse::type::v1::LEGAL_DOMAIN_DATA_PROTECTION, ""},
  };
  return *agencies;
}

namespace pv1 = ::lotse::placement::v1;
namespace iv1 = ::lotse::identity::v1;

void Prepare(grpc::ClientContext* context, const char* purpose) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  context->AddMetadata(lotse::server::kActorMetadataKey, "demo-seed");
  context->AddMetadata(lotse::server::kPurposeMetadataKey, purpose);
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(
      status.error_message(), " (",
      lotse::ReasonOf(lotse::FromGrpcStatus(status)).value_or("no reason"),
      ")");
}

// One call with a fresh context, repeated for up to 30 s while it is
// UNAVAILABLE: the service is still starting, or could not confirm a just
// registered agency with identity in time (AGENCY_REGISTRY_UNAVAILABLE).
// Any other answer is final; an agency identity has registered is accepted
// by every service at once (README, "Consistency").
grpc::Status CallWhileStarting(
    const char* purpose,
    const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (true) {
    grpc::ClientContext context;
    Prepare(&context, purpose);
    grpc::Status status = call(&context);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE ||
        absl::Now() > give_up) {
      return status;
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
}

lotse::type::v1::Date DateInDays(int days) {
  const absl::CivilDay day = absl::ToCivilDay(
      absl::Now() + absl::Hours(24) * days, absl::UTCTimeZone());
  lotse::type::v1::Date date;
  date.set_year(static_cast<int>(day.year()));
  date.set_month(day.month());
  date.set_day(day.day());
  return date;
}

std::shared_ptr<grpc::Channel> Channel(const std::string& target,
                                       const std::string& agency) {
  auto creds = lotse::server::ClientCredentialsFromDir(
      absl::GetFlag(FLAGS_tls_dir), agency);
  if (!creds.ok()) {
    std::fprintf(stderr, "%s\n", creds.status().ToString().c_str());
    return nullptr;
  }
  return grpc::CreateChannel(target, *creds);
}

// The demo person, found by the Jobcenter's customer number or created and
// linked to it; empty on failure.
std::string DemoPerson(iv1::IdentityService::Stub& jobcenter) {
  constexpr char kPurpose[] = "job-placement";
  iv1::LookupPersonByAgencyIdRequest lookup;
  lookup.set_kind(iv1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER);
  lookup.set_value("DEMO-4711");
  iv1::Person person;
  grpc::Status status =
      CallWhileStarting(kPurpose, [&](grpc::ClientContext* context) {
        return jobcenter.LookupPersonByAgencyId(context, lookup, &person);
      });
  if (status.ok()) return person.name();
  if (status.error_code() != grpc::StatusCode::NOT_FOUND) {
    std::fprintf(stderr, "demo person: %s\n", Describe(status).c_str());
    return "";
  }
  iv1::CreatePersonRequest create;
  create.set_request_id("demo-seed-person-1");
  iv1::PersonName* name = create.mutable_person()->add_names();
  name->set_given_names("Amina");
  name->set_family_names("Haddad");
  name->set_script("Latn");
  name->set_kind(iv1::NAME_KIND_CURRENT);
  create.mutable_person()->mutable_birth_date()->set_year(1995);
  create.mutable_person()->mutable_birth_date()->set_month(3);
  create.mutable_person()->mutable_birth_date()->set_day(14);
  create.mutable_person()->add_nationality_codes("SY");
  status = CallWhileStarting(kPurpose, [&](grpc::ClientContext* context) {
    return jobcenter.CreatePerson(context, create, &person);
  });
  if (!status.ok()) {
    std::fprintf(stderr, "demo person: %s\n", Describe(status).c_str());
    return "";
  }
  iv1::LinkAgencyIdRequest link;
  link.set_parent(person.name());
  link.set_request_id("demo-seed-link-1");
  link.mutable_agency_id()->set_kind(
      iv1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER);
  link.mutable_agency_id()->set_value("DEMO-4711");
  iv1::AgencyId linked;
  status = CallWhileStarting(kPurpose, [&](grpc::ClientContext* context) {
    return jobcenter.LinkAgencyId(context, link, &linked);
  });
  if (!status.ok()) {
    std::fprintf(stderr, "demo person's customer number: %s\n",
                 Describe(status).c_str());
    return "";
  }
  std::printf("created %s (Jobcenter customer number DEMO-4711)\n",
              person.name().c_str());
  return person.name();
}

bool DemoResidence(iv1::IdentityService::Stub& immigration_office,
                   const std::string& person) {
  constexpr char kPurpose[] = "residence-status";
  iv1::GetCurrentResidenceStatusRequest get;
  get.set_person(person);
  iv1::ResidenceStatus current;
  grpc::Status status =
      CallWhileStarting(kPurpose, [&](grpc::ClientContext* context) {
        return immigration_office.GetCurrentResidenceStatus(context, get,
                                                            &current);
      });
  if (status.ok()) return true;
  if (status.error_code() != grpc::StatusCode::NOT_FOUND) {
    std::fprintf(stderr, "demo residence status: %s\n",
                 Describe(status).c_str());
    return false;
  }
  iv1::RecordResidenceStatusRequest record;
  record.set_parent(person);
  record.set_request_id("demo-seed-residence-1");
  iv1::ResidenceStatus* rs = record.mutable_residence_status();
  rs->set_title_kind(iv1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT);
  rs->set_legal_basis("§ 25 Abs. 2 AufenthG");
  *rs->mutable_valid_from() = DateInDays(-60);
  *rs->mutable_valid_until() = DateInDays(3 * 365);
  rs->set_work_permission(lotse::type::v1::WORK_PERMISSION_PERMITTED);
  status = CallWhileStarting(kPurpose, [&](grpc::ClientContext* context) {
    return immigration_office.RecordResidenceStatus(context, record, &current);
  });
  if (!status.ok()) {
    std::fprintf(stderr, "demo residence status: %s\n",
                 Describe(status).c_str());
    return false;
  }
  return true;
}

bool DemoProfile(pv1::PlacementService::Stub& jobcenter,
                 const std::string& person) {
  pv1::CreateCandidateProfileRequest create;
  create.set_request_id("demo-seed-profile-1");
  pv1::CandidateProfile* p = create.mutable_candidate_profile();
  p->set_person(person);
  pv1::Skill* skill = p->add_skills();
  skill->set_label("Kundenservice");
  skill->set_level(pv1::SKILL_LEVEL_EXPERIENCED);
  skill = p->add_skills();
  skill->set_label("Gabelstapler");
  skill->set_level(pv1::SKILL_LEVEL_BASIC);
  pv1::OccupationExperience* experience = p->add_experience();
  experience->set_occupation_code("51312");
  experience->set_months(18);
  experience->set_description("Lager eines Großhändlers in Aleppo");
  pv1::PreferredPlace* place = p->add_preferred_places();
  place->set_municipality_code("05315000");
  place->set_max_distance_km(25);
  p->mutable_preferred_hours()->set_min_hours_per_week(25);
  p->mutable_preferred_hours()->set_max_hours_per_week(40);
  p->set_stated_language_level(lotse::type::v1::CEFR_LEVEL_A2);
  pv1::CandidateProfile profile;
  grpc::Status status =
      CallWhileStarting("job-placement", [&](grpc::ClientContext* context) {
        return jobcenter.CreateCandidateProfile(context, create, &profile);
      });
  if (status.ok()) {
    std::printf("created %s\n", profile.name().c_str());
  } else if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
    std::printf("candidate profile of %s exists\n", person.c_str());
  } else {
    std::fprintf(stderr, "demo candidate profile: %s\n",
                 Describe(status).c_str());
    return false;
  }
  return true;
}

// Publishes `offer` as the calling agency unless an offer of the same title
// by it is open already.
bool DemoOffer(pv1::PlacementService::Stub& publisher, const char* agency,
               const char* request_id, pv1::Offer offer) {
  constexpr char kPurpose[] = "job-placement";
  pv1::ListOffersRequest list;
  list.set_page_size(500);
  list.set_publishing_agency(absl::StrCat("agencies/", agency));
  pv1::ListOffersResponse listed;
  grpc::Status status =
      CallWhileStarting(kPurpose, [&](grpc::ClientContext* context) {
        return publisher.ListOffers(context, list, &listed);
      });
  if (!status.ok()) {
    std::fprintf(stderr, "demo offers of %s: %s\n", agency,
                 Describe(status).c_str());
    return false;
  }
  for (const pv1::Offer& existing : listed.offers()) {
    if (existing.title() == offer.title()) {
      std::printf("%s (%s) exists\n", existing.name().c_str(),
                  existing.title().c_str());
      return true;
    }
  }
  pv1::CreateOfferRequest create;
  create.set_request_id(request_id);
  *create.mutable_offer() = std::move(offer);
  pv1::Offer created;
  status = CallWhileStarting(kPurpose, [&](grpc::ClientContext* context) {
    return publisher.CreateOffer(context, create, &created);
  });
  if (!status.ok()) {
    std::fprintf(stderr, "demo offer of %s: %s\n", agency,
                 Describe(status).c_str());
    return false;
  }
  std::printf("created %s (%s)\n", created.name().c_str(),
              created.title().c_str());
  return true;
}

pv1::Offer DemoOfferDraft(const char* title, const char* occupation_code,
                          const char* employer, const char* postal_code,
                          lotse::type::v1::CefrLevel level) {
  pv1::Offer offer;
  offer.set_kind(pv1::OFFER_KIND_JOB);
  offer.set_title(title);
  offer.set_occupation_code(occupation_code);
  offer.set_employer_name(employer);
  offer.mutable_place()->set_postal_code(postal_code);
  offer.mutable_place()->set_locality("Köln");
  offer.mutable_place()->set_municipality_code("05315000");
  offer.mutable_hours()->set_min_hours_per_week(30);
  offer.mutable_hours()->set_max_hours_per_week(40);
  *offer.mutable_start_date() = DateInDays(30);
  offer.set_required_language_level(level);
  offer.set_positions_total(2);
  return offer;
}

// The placement demo data; false if any of it could not be created.
bool SeedPlacement(const std::string& identity, const std::string& placement) {
  auto identity_channel = Channel(identity, "jobcenter-koeln");
  auto office_channel = Channel(identity, "abh-koeln");
  auto jobcenter_channel = Channel(placement, "jobcenter-koeln");
  auto agency_channel = Channel(placement, "aa-koeln");
  if (!identity_channel || !office_channel || !jobcenter_channel ||
      !agency_channel) {
    return false;
  }
  auto jobcenter_identity = iv1::IdentityService::NewStub(identity_channel);
  auto office = iv1::IdentityService::NewStub(office_channel);
  auto jobcenter = pv1::PlacementService::NewStub(jobcenter_channel);
  auto employment_agency = pv1::PlacementService::NewStub(agency_channel);
  const std::string person = DemoPerson(*jobcenter_identity);
  if (person.empty() || !DemoResidence(*office, person) ||
      !DemoProfile(*jobcenter, person)) {
    return false;
  }
  pv1::Offer warehouse = DemoOfferDraft(
      "Fachkraft Lagerlogistik (m/w/d)", "51312", "Rheinlager Logistik GmbH",
      "50735", lotse::type::v1::CEFR_LEVEL_B1);
  warehouse.add_required_skills("Gabelstapler");
  pv1::Offer kitchen =
      DemoOfferDraft("Küchenhilfe (m/w/d)", "29301", "Brauhaus am Dom GmbH",
                     "50667", lotse::type::v1::CEFR_LEVEL_A2);
  kitchen.mutable_hours()->add_day_periods(
      lotse::type::v1::DAY_PERIOD_AFTERNOON);
  return DemoOffer(*employment_agency, "aa-koeln", "demo-seed-offer-1",
                   std::move(warehouse)) &&
         DemoOffer(*jobcenter, "jobcenter-koeln", "demo-seed-offer-2",
                   std::move(kitchen));
}

// Loads the demo municipality; the exit status of main.
int LoadMunicipality() {
  lotse::demo::PlanOptions options;
  options.seed = absl::GetFlag(FLAGS_seed);
  options.persons = absl::GetFlag(FLAGS_persons);
  options.cases = absl::GetFlag(FLAGS_demo_cases);
  options.history_days = absl::GetFlag(FLAGS_history_days);
  const lotse::demo::Plan plan = lotse::demo::MakePlan(options);
  lotse::demo::LoadTargets targets;
  targets.identity = absl::GetFlag(FLAGS_identity);
  targets.cases = absl::GetFlag(FLAGS_cases);
  targets.courses = absl::GetFlag(FLAGS_courses);
  targets.placement = absl::GetFlag(FLAGS_placement);
  targets.tls_dir = absl::GetFlag(FLAGS_tls_dir);
  targets.threads = absl::GetFlag(FLAGS_threads);
  absl::StatusOr<lotse::demo::LoadResult> loaded =
      lotse::demo::LoadPlan(plan, targets, absl::Now());
  if (!loaded.ok()) {
    std::fprintf(stderr, "demo municipality: %s\n",
                 loaded.status().ToString().c_str());
    return 4;
  }
  if (loaded->already_loaded) {
    std::printf("demo municipality %s (%s) is loaded already\n",
                lotse::demo::kMunicipalityName, lotse::demo::kMunicipalityCode);
    return 0;
  }
  std::printf(
      "demo municipality %s (%s): %d persons, %d cases, %d steps, %d "
      "courses, %d bookings, %d waitlist entries, %d offers, %d placements; "
      "%d calls in %.1f s, %d failed\n",
      lotse::demo::kMunicipalityName, lotse::demo::kMunicipalityCode,
      loaded->persons, loaded->cases, loaded->steps, loaded->courses,
      loaded->bookings, loaded->waitlist_entries, loaded->offers,
      loaded->placements, loaded->calls, absl::ToDoubleSeconds(loaded->took),
      loaded->failures);
  if (!loaded->tour_person.empty()) {
    std::printf("guided tour: %s, %s\n", loaded->tour_person.c_str(),
                loaded->tour_case.c_str());
  }
  return loaded->failures == 0 ? 0 : 4;
}

}  // namespace

int main(int argc, char** argv) {
  lotse::server::ParseToolFlags(
      argc, argv,
      "Usage: lotse_seed_demo [--flag=value ...]\n\n"
      "Registers the demo agencies of tools/dev-pki.sh with the identity\n"
      "service as the administering agency; with --placement also adds the\n"
      "placement demo data. Running it again creates nothing twice. Exit\n"
      "status 0 done, 1 an agency could not be registered, 3 the placement\n"
      "demo data could not be created.\n",
      {{"Services", {"identity", "cases", "courses", "placement"}},
       {"TLS", {"tls_dir", "admin"}},
       {"Demo municipality",
        {"municipality", "persons", "demo_cases", "history_days", "seed",
         "threads"}}});
  auto creds = lotse::server::ClientCredentialsFromDir(
      absl::GetFlag(FLAGS_tls_dir), absl::GetFlag(FLAGS_admin));
  if (!creds.ok()) {
    std::fprintf(stderr, "%s\n", creds.status().ToString().c_str());
    return 2;
  }
  auto stub = lotse::identity::v1::IdentityService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_identity), *creds));
  std::vector<DemoAgency> agencies = DemoAgencies();
  if (absl::GetFlag(FLAGS_municipality)) {
    for (const lotse::demo::Agency& a : lotse::demo::Agencies()) {
      agencies.push_back({a.id, a.display_name, a.domain, a.municipality_code});
    }
  }
  int failures = 0;
  for (const DemoAgency& demo : agencies) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    context.AddMetadata(lotse::server::kActorMetadataKey, "demo-seed");
    context.AddMetadata(lotse::server::kPurposeMetadataKey,
                        "agency-administration");
    lotse::identity::v1::RegisterAgencyRequest request;
    request.set_request_id(absl::StrCat("demo-seed-", demo.id));
    request.set_agency_id(demo.id);
    auto* agency = request.mutable_agency();
    agency->set_display_name(demo.display_name);
    agency->set_legal_domain(demo.domain);
    agency->set_municipality_code(demo.municipality_code);
    agency->set_certificate_identity(demo.id);
    lotse::identity::v1::Agency response;
    grpc::Status status = stub->RegisterAgency(&context, request, &response);
    const auto reason = lotse::ReasonOf(lotse::FromGrpcStatus(status));
    if (status.ok()) {
      std::printf("registered %s\n", response.name().c_str());
    } else if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS &&
               reason.value_or("") == "AGENCY_EXISTS") {
      std::printf("agencies/%s already registered\n", demo.id);
    } else {
      std::fprintf(stderr, "agencies/%s: %s (%s)\n", demo.id,
                   status.error_message().c_str(),
                   reason.value_or("no reason").c_str());
      ++failures;
    }
  }
  if (failures > 0) return 1;
  const std::string placement = absl::GetFlag(FLAGS_placement);
  if (!placement.empty() &&
      !SeedPlacement(absl::GetFlag(FLAGS_identity), placement)) {
    std::fprintf(stderr, "placement demo data incomplete\n");
    return 3;
  }
  if (absl::GetFlag(FLAGS_municipality)) return LoadMunicipality();
  return 0;
}
