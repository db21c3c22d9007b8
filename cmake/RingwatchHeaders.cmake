# Each target exposes only its own headers.
#
# Sources include headers by their path from the repository root
# ("lib/spec/cluster_spec.h"), which says which part a header belongs to. If
# every target put the repository root on the include path, any file could
# include any header and the include direction (docs/architecture.md) would
# hold only by discipline. Instead each target gets a staging directory,
# build/include/<target>/, holding symbolic links to its own headers under
# their repository paths, and exposes only that directory. A file can then
# include a header only if its target links the header's target: an upward
# include fails to compile.

set(RINGWATCH_HEADER_STAGE ${PROJECT_BINARY_DIR}/include)
# Headers that moved between targets must not linger in the old stage.
file(REMOVE_RECURSE ${RINGWATCH_HEADER_STAGE})

# ringwatch_public_headers(<target> [DIRS <dir>...] [FILES <file>...])
#   DIRS: every *.h directly in each directory (relative to the current
#         source directory; "." for the directory itself).
#   FILES: single headers, relative to the current source directory.
function(ringwatch_public_headers target)
  cmake_parse_arguments(ARG "" "" "DIRS;FILES" ${ARGN})
  set(stage ${RINGWATCH_HEADER_STAGE}/${target})
  set(headers ${ARG_FILES})
  foreach(dir ${ARG_DIRS})
    file(GLOB found RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} CONFIGURE_DEPENDS
         ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*.h)
    list(APPEND headers ${found})
  endforeach()
  if(NOT headers)
    message(FATAL_ERROR "ringwatch_public_headers(${target}): no headers found")
  endif()
  foreach(header ${headers})
    file(RELATIVE_PATH path ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/${header})
    get_filename_component(parent ${stage}/${path} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/${header} ${stage}/${path} SYMBOLIC)
  endforeach()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${stage})
  else()
    target_include_directories(${target} PUBLIC ${stage})
  endif()
endfunction()
