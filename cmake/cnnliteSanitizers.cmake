# Sanitizer builds of cnnlite's own targets (tests, examples), for CI's `sanitize` stage:
#   -DCNNLITE_SANITIZE=address,undefined   ASan + UBSan (GCC or clang)
#   -DCNNLITE_SANITIZE=thread              TSan (clang; see .ci/run for OpenMP under TSan)
# Every finding stops the program (-fno-sanitize-recover=all), so a finding fails its test.
# Top level only: the library target cnnlite::cnnlite never carries these flags.
set(CNNLITE_SANITIZE "" CACHE STRING
    "Sanitizers for tests and examples (-fsanitize= list, e.g. address,undefined or thread; empty: none)")

if(CNNLITE_SANITIZE AND PROJECT_IS_TOP_LEVEL)
    if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
        message(FATAL_ERROR "cnnlite: CNNLITE_SANITIZE needs GCC or clang, not ${CMAKE_CXX_COMPILER_ID}")
    endif()
    # Frame pointers and line tables make the reports readable; -g1 keeps compile time low.
    add_compile_options(-fsanitize=${CNNLITE_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer -g1)
    add_link_options(-fsanitize=${CNNLITE_SANITIZE})
    message(STATUS "cnnlite: sanitizers ${CNNLITE_SANITIZE} for tests and examples")
endif()

# libFuzzer targets of the file readers (tests/fuzz/); clang only, since libFuzzer is part of
# clang's runtime (Debian: libclang-rt-14-dev, pulled in by clang).
option(CNNLITE_BUILD_FUZZERS "Build the libFuzzer targets of tests/fuzz/ (clang only)" OFF)
if(CNNLITE_BUILD_FUZZERS AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "cnnlite: CNNLITE_BUILD_FUZZERS needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}; "
                        "configure with -DCMAKE_CXX_COMPILER=clang++")
endif()
