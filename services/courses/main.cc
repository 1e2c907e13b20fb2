// lotse_courses: the courses service process. See
// common/server/service_main.h for the shared flags, start-up and shutdown.
//
// Flags of this service (each also LOTSE_<NAME> in the environment):
//   --identity_target        host:port of the identity service
//                            (default 127.0.0.1:50051); persons and access
//                            decisions are checked there, with a deadline.
//   --identity_client_cert   client certificate under <tls_dir>/clients/
//                            used towards identity (default svc-courses);
//                            with --insecure_dev, plaintext instead.
//   --identity_timeout       longest wait for one identity call (2s).
//   --default_hold           hold length of courses that set none (72h).
//   --hold_sweep_interval    how often expired holds are released (15s).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "common/clients/identity_client.h"
#include "common/server/flags.h"
#include "common/server/server.h"
#include "common/server/service_main.h"
#include "grpcpp/security/credentials.h"
#include "services/courses/service/courses_service.h"
#include "services/courses/store/migrations.h"

ABSL_FLAG(std::string, identity_target, "127.0.0.1:50051",
          "host:port of the identity service");
ABSL_FLAG(std::string, identity_client_cert, "svc-courses",
          "client certificate (under <tls_dir>/clients/) for calls to "
          "identity");
ABSL_FLAG(absl::Duration, identity_timeout, absl::Seconds(2),
          "longest wait for one call to identity");
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
      {"Identity client",
       {"identity_target", "identity_client_cert", "identity_timeout"}},
      {"Courses", {"default_hold", "hold_sweep_interval"}}};
  definition.health_service_names = {
      lotse::courses::v1::CoursesService::service_full_name()};
  definition.migrations = lotse::courses::CoursesMigrations();
  // Built by make_services, used by the event handler made after it.
  lotse::courses::CoursesServiceImpl* service = nullptr;
  definition.make_services = [&service](lotse::server::ServiceRuntime& runtime)
      -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
    lotse::clients::GrpcIdentityClient::Options identity;
    identity.target = absl::GetFlag(FLAGS_identity_target);
    identity.actor = absl::GetFlag(FLAGS_identity_client_cert);
    identity.max_call_time = absl::GetFlag(FLAGS_identity_timeout);
    if (absl::GetFlag(FLAGS_insecure_dev)) {
      identity.credentials = grpc::InsecureChannelCredentials();
    } else if (!absl::GetFlag(FLAGS_tls_dir).empty()) {
      absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
          lotse::server::ClientCredentialsFromDir(
              absl::GetFlag(FLAGS_tls_dir),
              absl::GetFlag(FLAGS_identity_client_cert));
      if (!creds.ok()) return creds.status();
      identity.credentials = *std::move(creds);
    }
    lotse::courses::CoursesOptions options;
    options.identity = std::make_shared<lotse::clients::GrpcIdentityClient>(
        std::move(identity));
    options.default_hold = absl::GetFlag(FLAGS_default_hold);
    options.sweep_interval = absl::GetFlag(FLAGS_hold_sweep_interval);
    auto courses = std::make_unique<lotse::courses::CoursesServiceImpl>(
        runtime, std::move(options));
    courses->StartSweeper();
    service = courses.get();
    std::vector<std::unique_ptr<grpc::Service>> services;
    services.push_back(std::move(courses));
    return services;
  };
  // Identity's agency and merge events keep the local registry.
  definition.make_event_handler = [&service](lotse::server::ServiceRuntime&) {
    return service->EventHandler();
  };
  return lotse::server::RunService(argc, argv, definition);
}
