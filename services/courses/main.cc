// lotse_courses: the courses service process. See common/server/service_main.h
// for flags, start-up and shutdown.
#include <memory>
#include <vector>

#include "common/server/service_main.h"
#include "services/courses/service/courses_service.h"
#include "services/courses/store/migrations.h"

int main(int argc, char** argv) {
  lotse::server::ServiceDefinition definition;
  definition.name = "courses";
  definition.default_listen = "127.0.0.1:50053";
  definition.health_service_names = {
      lotse::courses::v1::CoursesService::service_full_name()};
  definition.migrations = lotse::courses::CoursesMigrations();
  definition.make_services = [](lotse::server::ServiceRuntime& runtime)
      -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
    std::vector<std::unique_ptr<grpc::Service>> services;
    services.push_back(
        std::make_unique<lotse::courses::CoursesServiceImpl>(runtime));
    return services;
  };
  return lotse::server::RunService(argc, argv, definition);
}
