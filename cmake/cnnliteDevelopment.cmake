# Helpers for cnnlite's own development targets (tests, header checks, examples, benchmarks).
# None of this reaches cnnlite::cnnlite: the library imposes no flags on its users.

include(CheckCXXCompilerFlag)

# Warnings for our own code: -Wall -Wextra everywhere, -Werror with CNNLITE_WERROR=ON.
function(cnnlite_target_warnings target)
    if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
        target_compile_options(${target} PRIVATE -Wall -Wextra)
        if(NOT CNNLITE_USE_OPENMP)
            # The serial fallback is the OpenMP pragmas being ignored; GCC's -Wall reports
            # each one (-Wunknown-pragmas), which is expected here, not a defect.
            target_compile_options(${target} PRIVATE -Wno-unknown-pragmas)
        endif()
        if(CNNLITE_WERROR)
            target_compile_options(${target} PRIVATE -Werror)
        endif()
    elseif(MSVC)
        target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${CNNLITE_WERROR}>:/WX>)
    endif()
endfunction()

# A header-only library is compiled again by every translation unit that uses it: each one
# parses the same headers and instantiates the same layers, kernels and Eigen products, which
# costs 20-40 s per file at -O2 and dominates the build. With CNNLITE_UNITY_BUILD a target's
# sources are compiled in batches of `batch` files (default 6; CMake's UNITY_BUILD), so that
# work is done once per batch; a few batches keep both cores busy. The sources must not define
# the same internal name twice (tests put their helpers in a namespace named after the file).
function(cnnlite_target_unity target)
    cmake_parse_arguments(PARSE_ARGV 1 arg "" "BATCH" "")
    if(NOT arg_BATCH)
        set(arg_BATCH 6)
    endif()
    if(CNNLITE_UNITY_BUILD)
        set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${arg_BATCH})
    endif()
endfunction()

if(CNNLITE_NATIVE)
    check_cxx_compiler_flag(-march=native CNNLITE_COMPILER_HAS_MARCH_NATIVE)
    if(NOT CNNLITE_COMPILER_HAS_MARCH_NATIVE)
        message(STATUS "cnnlite: ${CMAKE_CXX_COMPILER_ID} does not accept -march=native; CNNLITE_NATIVE has no effect")
    endif()
endif()

# -march=native for one target when CNNLITE_NATIVE is on (examples and benchmarks only).
# GCC before 13 warns inside its own AVX-512 intrinsics (`__m512 __Y = __Y;` in
# _mm512_undefined_ps, GCC bug 105593) wherever Eigen's AVX-512 code is inlined, which fails
# every native target under -Werror on an AVX-512 machine: with those compilers the two
# uninitialised-value warnings are off for native targets (tests keep them).
function(cnnlite_target_native target)
    if(CNNLITE_NATIVE AND CNNLITE_COMPILER_HAS_MARCH_NATIVE)
        target_compile_options(${target} PRIVATE -march=native)
        if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
            target_compile_options(${target} PRIVATE -Wno-uninitialized -Wno-maybe-uninitialized)
        endif()
    endif()
endfunction()

# cnnlite_target_native() for every compiled target defined in `dir` and its subfolders, so
# that example authors get the option's effect without having to call anything.
function(cnnlite_directory_native dir)
    get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
    foreach(target IN LISTS targets)
        get_target_property(type ${target} TYPE)
        if(type MATCHES "EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY")
            cnnlite_target_native(${target})
        endif()
    endforeach()
    get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
    foreach(subdir IN LISTS subdirs)
        cnnlite_directory_native("${subdir}")
    endforeach()
endfunction()

# `dir`/cnnlite_source_dir.txt: the repository root, which tests/source_dir.hpp reads at run
# time next to the executable instead of a path compiled in (written only when it changes).
function(cnnlite_write_source_dir_record dir)
    set(CNNLITE_SOURCE_DIR "${PROJECT_SOURCE_DIR}")
    configure_file("${PROJECT_SOURCE_DIR}/tests/cnnlite_source_dir.txt.in" "${dir}/cnnlite_source_dir.txt" @ONLY)
endfunction()
