# cnnlite_discover_tests(<target> PROPERTIES <ctest properties>...)
#
# All test files are linked into one executable (so that the compiler instantiates the
# library's templates once per unity batch rather than once per file), but CTest still sees one
# test per doctest case, named "<area>/<case>" after its file tests/test_<area>.cpp and labelled
# <area>: `ctest -L core`, `ctest -R reshape`. The list is read from the built executable
# (`--list-test-cases --reporters=xml` names each case's file), after every build, by
# cmake/cnnliteAddTests.cmake; each CTest test runs its one case with
# `--test-case=<case> --source-file=*/test_<area>.cpp`.
set(_CNNLITE_ADD_TESTS_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/cnnliteAddTests.cmake")

function(cnnlite_discover_tests target)
    cmake_parse_arguments(PARSE_ARGV 1 arg "" "WORKING_DIRECTORY" "PROPERTIES")
    set(tests_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_tests.cmake")
    set(include_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_include.cmake")
    add_custom_command(TARGET ${target} POST_BUILD
        BYPRODUCTS "${tests_file}"
        COMMAND "${CMAKE_COMMAND}"
                -D "TEST_EXECUTABLE=$<TARGET_FILE:${target}>"
                -D "TEST_WORKING_DIR=${arg_WORKING_DIRECTORY}"
                -D "TEST_PROPERTIES=${arg_PROPERTIES}"
                -D "CTEST_FILE=${tests_file}"
                -P "${_CNNLITE_ADD_TESTS_SCRIPT}"
        VERBATIM)
    # Before the first build there is no list yet: a placeholder test says so instead of CTest
    # silently running nothing.
    file(WRITE "${include_file}"
        "if(EXISTS \"${tests_file}\")\n"
        "    include(\"${tests_file}\")\n"
        "else()\n"
        "    add_test(${target}_NOT_BUILT ${target}_NOT_BUILT)\n"
        "endif()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${include_file}")
endfunction()
