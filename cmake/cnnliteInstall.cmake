# install(): the headers, the exported target, a relocatable cnnliteConfig.cmake with its
# version file, and cnnlite.pc. Everything is architecture-independent (header-only), so the
# package files go to share/ and one installed copy serves every architecture.
include(CMakePackageConfigHelpers)

set(CNNLITE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/cnnlite"
    CACHE STRING "Where cnnliteConfig.cmake is installed (relative to the prefix)")
set(CNNLITE_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_DATADIR}/pkgconfig"
    CACHE STRING "Where cnnlite.pc is installed (relative to the prefix)")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/cnnlite"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        FILES_MATCHING PATTERN "*.hpp")
install(TARGETS cnnlite EXPORT cnnliteTargets)
install(EXPORT cnnliteTargets
        NAMESPACE cnnlite::
        DESTINATION "${CNNLITE_INSTALL_CMAKEDIR}")

configure_package_config_file(
    "${CMAKE_CURRENT_LIST_DIR}/cnnliteConfig.cmake.in"
    "${PROJECT_BINARY_DIR}/cnnliteConfig.cmake"
    INSTALL_DESTINATION "${CNNLITE_INSTALL_CMAKEDIR}")
# 0.x releases may break the API at every minor step, so only the same MAJOR.MINOR matches.
write_basic_package_version_file(
    "${PROJECT_BINARY_DIR}/cnnliteConfigVersion.cmake"
    VERSION "${PROJECT_VERSION}"
    COMPATIBILITY SameMinorVersion
    ARCH_INDEPENDENT)
install(FILES
        "${PROJECT_BINARY_DIR}/cnnliteConfig.cmake"
        "${PROJECT_BINARY_DIR}/cnnliteConfigVersion.cmake"
        "${CMAKE_CURRENT_LIST_DIR}/cnnliteFindStb.cmake"
        DESTINATION "${CNNLITE_INSTALL_CMAKEDIR}")

# pkg-config: the flags a plain compiler invocation needs for the public headers.
set(CNNLITE_PC_CFLAGS "-I${CNNLITE_STB_INCLUDE_DIR}")
set(CNNLITE_PC_LIBS "")
set(CNNLITE_PC_REQUIRES_KERAS "")
if(CNNLITE_USE_OPENMP)
    string(APPEND CNNLITE_PC_CFLAGS " -fopenmp")
    set(CNNLITE_PC_LIBS "-fopenmp")
endif()
if(CNNLITE_WITH_MPI)
    # MPI has no portable pkg-config name (ompi-cxx, mpich, ...): compile with mpicxx.
    string(APPEND CNNLITE_PC_CFLAGS " -DCNNLITE_WITH_MPI=1")
endif()
if(CNNLITE_WITH_ONNX)
    # Debian's libonnx-dev has no pkg-config file: its targets' definitions and libraries.
    string(APPEND CNNLITE_PC_CFLAGS " -DCNNLITE_WITH_ONNX=1 -DONNX_ML=1 -DONNX_NAMESPACE=onnx")
    string(APPEND CNNLITE_PC_LIBS " -lonnx_proto -lprotobuf")
endif()
if(CNNLITE_WITH_KERAS)
    # hdf5.pc (Debian's serial HDF5) and libzip.pc are listed in Requires (cnnlite.pc.in).
    string(APPEND CNNLITE_PC_CFLAGS " -DCNNLITE_WITH_KERAS=1")
    set(CNNLITE_PC_REQUIRES_KERAS " hdf5 libzip")
endif()
# The path from the .pc file's folder back to the prefix, so the file stays valid when the
# installed tree is moved (pkg-config defines ${pcfiledir}).
file(RELATIVE_PATH CNNLITE_PC_PREFIX_FROM_PCFILEDIR
     "/prefix/${CNNLITE_INSTALL_PKGCONFIGDIR}" "/prefix")
configure_file("${CMAKE_CURRENT_LIST_DIR}/cnnlite.pc.in" "${PROJECT_BINARY_DIR}/cnnlite.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/cnnlite.pc" DESTINATION "${CNNLITE_INSTALL_PKGCONFIGDIR}")

install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" "${PROJECT_SOURCE_DIR}/README.md" "${PROJECT_SOURCE_DIR}/CHANGELOG.md"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}" OPTIONAL)
