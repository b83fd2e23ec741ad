# Finds the stb single-file headers (Debian: libstb-dev, in /usr/include/stb) and provides the
# header-only target cnnlite::stb. cnnlite uses stb in its static-implementation mode
# (STB_*_STATIC), so nothing links against Debian's libstb.so and two translation units that
# both include cnnlite never clash. Used by the build and by the installed cnnliteConfig.cmake.
if(TARGET cnnlite::stb)
    return()
endif()

find_path(CNNLITE_STB_INCLUDE_DIR
    NAMES stb_image_write.h
    PATH_SUFFIXES stb
    DOC "Folder holding stb_image_write.h (Debian: /usr/include/stb from libstb-dev)")

if(NOT CNNLITE_STB_INCLUDE_DIR)
    set(_cnnlite_stb_message
        "cnnlite: the stb headers (stb_image_write.h) were not found.\n"
        "Install them (Debian/Ubuntu: apt-get install libstb-dev) or pass -DCNNLITE_STB_INCLUDE_DIR=<folder>.")
    if(CMAKE_FIND_PACKAGE_NAME)   # inside find_package(cnnlite): report through the package
        set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
        string(JOIN "" ${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE ${_cnnlite_stb_message})
        return()
    endif()
    message(FATAL_ERROR ${_cnnlite_stb_message})
endif()

add_library(cnnlite::stb INTERFACE IMPORTED)
set_target_properties(cnnlite::stb PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CNNLITE_STB_INCLUDE_DIR}")
