// lotse_courses: the courses service process. See
// common/server/service_main.h for the shared flags, start-up and shutdown.
//
// Flags of this service (each also LOTSE_<NAME> in the environment):
//   --identity_*             where identity is and how to call it
//                            (common/clients/identity_client_flags.h).
//   --default_hold           hold length of courses that set none (72h).
//   --hold_sweep_interval    how often expired holds are released (15s).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "common/audit/audit_service.h"
#include "common/clients/identity_client.h"
#include "common/clients/identity_client_flags.h"
#include "common/server/flags.h"
#include "common/server/service_main.h"
#include "services/courses/service/courses_service.h"
#include "services/courses/store/migrations.h"

ABSL_FLAG(absl::Duration, default_hold, absl::Hours(72),
          "hold length of courses that set no hold_duration");
ABSL_FLAG(absl::Duration, hold_sweep_interval, absl::Seconds(15),
          "how often expired holds are released");

int main(int argc, char** argv) {
  lotse::server::ServiceDefinition definition;
  definition.name = "courses";
  definition.default_listen = "127.0.0.1:50053";
  definition.description =
      "The courses service of Lotse: the course catalogue, entitlements and "
      "obligations, search, booking, holds, waitlists, attendance and results.";
  definition.flag_groups = {
      lotse::clients::IdentityClientFlagGroup(),
      {"Courses", {"default_hold", "hold_sweep_interval"}}};
  definition.health_service_names = {
      lotse::courses::v1::CoursesService::service_full_name()};
  definition.migrations = lotse::courses::CoursesMigrations();
  // Built by make_services, used by the event handler made after it.
  lotse::courses::CoursesServiceImpl* service = nullptr;
  definition.make_services = [&service](lotse::server::ServiceRuntime& runtime)
      -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
    absl::StatusOr<std::unique_ptr<lotse::clients::GrpcIdentityClient>>
        identity =
            lotse::clients::IdentityClientFromFlags("courses", runtime.metrics);
    if (!identity.ok()) return identity.status();
    lotse::courses::CoursesOptions options;
    options.identity = *std::move(identity);
    options.default_hold = absl::GetFlag(FLAGS_default_hold);
    options.sweep_interval = absl::GetFlag(FLAGS_hold_sweep_interval);
    auto courses = std::make_unique<lotse::courses::CoursesServiceImpl>(
        runtime, std::move(options));
    courses->StartSweeper();
    service = courses.get();
    std::vector<std::unique_ptr<grpc::Service>> services;
    services.push_back(lotse::audit::MakeAuditService(
        runtime, "courses", service->call_env(),
        lotse::audit::MergedIdsFromTable("course_person_merges", "merged",
                                         "survivor", "persons/")));
    services.push_back(std::move(courses));
    return services;
  };
  // Identity's agency and merge events keep the local registry.
  definition.make_event_handler = [&service](lotse::server::ServiceRuntime&) {
    return service->EventHandler();
  };
  // Retention: the courses service's kinds (see CoursesPurgeTasks).
  definition.make_purge_tasks = [](lotse::server::ServiceRuntime&) {
    return lotse::courses::CoursesPurgeTasks();
  };
  return lotse::server::RunService(argc, argv, definition);
}
