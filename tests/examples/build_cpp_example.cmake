# Configures and builds the standalone C++ example, as its README says:
#   cmake -DSOURCE_DIR=... -DBUILD_DIR=... -DGENERATOR=... [-DLAUNCHER=...]
#         -P build_cpp_example.cmake
# LAUNCHER (e.g. ccache) is passed on when the main build uses one.
set(configure ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BUILD_DIR}
    -G ${GENERATOR})
if(LAUNCHER)
  list(APPEND configure -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
execute_process(COMMAND ${configure} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "configuring the C++ example failed")
endif()
# One compile job per core, as the test command's own build: generated
# protobuf code needs much memory per job.
cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
string(TIMESTAMP start "%s")
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --parallel ${cores}
                RESULT_VARIABLE result)
string(TIMESTAMP end "%s")
math(EXPR seconds "${end} - ${start}")
message(STATUS "building the C++ example took ${seconds} s")
if(NOT result EQUAL 0)
  message(FATAL_ERROR "building the C++ example failed")
endif()
