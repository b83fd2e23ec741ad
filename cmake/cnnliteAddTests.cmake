# Script mode (cmake -P), run after each build of a test executable by cnnlite_discover_tests():
# writes CTEST_FILE with one add_test() per doctest case of TEST_EXECUTABLE.
# Inputs: TEST_EXECUTABLE, TEST_WORKING_DIR, TEST_PROPERTIES (list), CTEST_FILE.
execute_process(
    COMMAND "${TEST_EXECUTABLE}" --list-test-cases --reporters=xml
    OUTPUT_VARIABLE listing
    RESULT_VARIABLE status
    WORKING_DIRECTORY "${TEST_WORKING_DIR}")
if(NOT status EQUAL 0)
    message(FATAL_ERROR "cnnlite: '${TEST_EXECUTABLE} --list-test-cases' failed (${status}):\n${listing}")
endif()

# An argument as a bracket argument, so that no character of a test name needs escaping.
function(_cnnlite_quote out value)
    set(${out} "[==[${value}]==]" PARENT_SCOPE)
endfunction()

# The text of an XML attribute, with the characters hidden for list splitting (below) restored.
function(_cnnlite_xml_unescape out value)
    string(REPLACE "@semicolon@" ";" value "${value}")
    string(REPLACE "@open@" "[" value "${value}")
    string(REPLACE "@close@" "]" value "${value}")
    string(REPLACE "&quot;" "\"" value "${value}")
    string(REPLACE "&apos;" "'" value "${value}")
    string(REPLACE "&lt;" "<" value "${value}")
    string(REPLACE "&gt;" ">" value "${value}")
    string(REPLACE "&amp;" "&" value "${value}")   # last: "&amp;lt;" is the text "&lt;"
    set(${out} "${value}" PARENT_SCOPE)
endfunction()

# CMake lists are ';'-separated and treat brackets specially: hide both characters while the
# listing is split into one entry per case, and put them back in each name.
string(REPLACE ";" "@semicolon@" listing "${listing}")
string(REPLACE "[" "@open@" listing "${listing}")
string(REPLACE "]" "@close@" listing "${listing}")

set(script "")
set(count 0)
string(REGEX MATCHALL "<TestCase name=\"[^\"]*\" filename=\"[^\"]*\"" cases "${listing}")
foreach(entry IN LISTS cases)
    string(REGEX MATCH "name=\"([^\"]*)\" filename=\"([^\"]*)\"" _ "${entry}")
    _cnnlite_xml_unescape(name "${CMAKE_MATCH_1}")
    _cnnlite_xml_unescape(file "${CMAKE_MATCH_2}")
    get_filename_component(file_name "${file}" NAME)
    if(NOT file_name MATCHES "^test_(.+)\\.cpp$")
        message(FATAL_ERROR "cnnlite: test case '${name}' is in ${file}, not in a tests/test_<area>.cpp")
    endif()
    set(area "${CMAKE_MATCH_1}")
    # doctest reads --test-case as a comma-separated list of patterns: escape the commas.
    string(REPLACE "," "\\," filter "${name}")
    _cnnlite_quote(q_test "${area}/${name}")
    _cnnlite_quote(q_exe "${TEST_EXECUTABLE}")
    _cnnlite_quote(q_case "--test-case=${filter}")
    _cnnlite_quote(q_file "--source-file=*/test_${area}.cpp")
    _cnnlite_quote(q_dir "${TEST_WORKING_DIR}")
    string(APPEND script "add_test(${q_test} ${q_exe} ${q_case} ${q_file})\n")
    set(props "")
    foreach(prop IN LISTS TEST_PROPERTIES)
        _cnnlite_quote(q "${prop}")
        string(APPEND props " ${q}")
    endforeach()
    _cnnlite_quote(q_area "${area}")
    string(APPEND script "set_tests_properties(${q_test} PROPERTIES WORKING_DIRECTORY ${q_dir} LABELS ${q_area}${props})\n")
    math(EXPR count "${count} + 1")
endforeach()
if(count EQUAL 0)
    message(FATAL_ERROR "cnnlite: ${TEST_EXECUTABLE} lists no test cases")
endif()
file(WRITE "${CTEST_FILE}" "${script}")
