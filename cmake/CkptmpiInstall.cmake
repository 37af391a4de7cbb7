# Installed files that must name the prefix they are installed under.
#
# pkg-config files: written at install time with the real prefix
# (`cmake --install build --prefix P` decides it then, not at configure
# time), so that `pkg-config --libs` and the RUNPATHs it gives name
# P/lib/..., never P/lib/pkgconfig/../../lib.

# ckptmpi_install_pc(TEMPLATE NAME): TEMPLATE (cmake/*.pc.in) configured
# now with every variable but the prefix, installed as
# LIBDIR/pkgconfig/NAME.pc with prefix= the install prefix.
function(ckptmpi_install_pc template name)
  set(CKPTMPI_PC_PREFIX "@CKPTMPI_INSTALL_PREFIX@")
  set(staged ${CMAKE_BINARY_DIR}/pkgconfig-staged/${name}.pc.in)
  configure_file(${template} ${staged} @ONLY)
  install(CODE "
    set(CKPTMPI_INSTALL_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    set(_pc \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/${name}.pc\")
    message(STATUS \"Installing: \${_pc}\")
    configure_file(\"${staged}\" \"\${_pc}\" @ONLY)
  ")
endfunction()

# The CMake package (find_package(ckptmpi)): imported targets found
# relative to the config file, so the installed tree can be moved.
function(ckptmpi_install_cmake_package)
  include(CMakePackageConfigHelpers)
  set(dest ${CMAKE_INSTALL_LIBDIR}/cmake/ckptmpi)
  write_basic_package_version_file(${CMAKE_BINARY_DIR}/ckptmpiConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/ckptmpiConfig.cmake.in
                 ${CMAKE_BINARY_DIR}/ckptmpiConfig.cmake @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/ckptmpiConfig.cmake
                ${CMAKE_BINARY_DIR}/ckptmpiConfigVersion.cmake
          DESTINATION ${dest})
endfunction()
