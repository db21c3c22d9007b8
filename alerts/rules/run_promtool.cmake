# cmake -DPROMTOOL=<path or PROMTOOL-NOTFOUND> -DMODE=check|test -DFILE=<yml> -P run_promtool.cmake
# Runs `promtool check rules FILE` or `promtool test rules FILE`. A missing
# promtool fails the test with a clear message: CI installs it, so a silent
# pass would hide untested rules.
if(NOT PROMTOOL OR NOT EXISTS "${PROMTOOL}")
  message(FATAL_ERROR
    "promtool not found: it ships in the Debian package `prometheus`; run tools/install-deps.sh "
    "and reconfigure (cmake finds it with find_program(promtool))")
endif()
if(NOT MODE STREQUAL "check" AND NOT MODE STREQUAL "test")
  message(FATAL_ERROR "MODE must be check or test, got '${MODE}'")
endif()
get_filename_component(dir "${FILE}" DIRECTORY)
execute_process(
  COMMAND "${PROMTOOL}" ${MODE} rules "${FILE}"
  WORKING_DIRECTORY "${dir}"
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "promtool ${MODE} rules ${FILE} failed (exit ${result})")
endif()
