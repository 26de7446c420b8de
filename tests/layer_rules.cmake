# The layer rules of DESIGN.md, checked on the source tree (ctest: layer_rules):
#   - nfs/ includes no FUSE header and never names a FUSE type;
#   - exactly one file in fuse/ includes <fuse_lowlevel.h> (the adapter);
#   - fuse/ never includes the NFSv4.1 engine, its XDR or its RPC layer.
# Run as: cmake -DSOURCE_DIR=<repo> -P tests/layer_rules.cmake
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "layer_rules.cmake: pass -DSOURCE_DIR=<repository root>")
endif()
set(broken "")

file(GLOB_RECURSE nfs_files ${SOURCE_DIR}/nfs/*.h ${SOURCE_DIR}/nfs/*.cc)
foreach(f IN LISTS nfs_files)
  file(STRINGS ${f} hits REGEX "#include *[<\"]fuse|fuse_req_t|fuse_ino_t")
  if(hits)
    list(APPEND broken "nfs/ must not know FUSE: ${f}: ${hits}")
  endif()
endforeach()

file(GLOB_RECURSE fuse_files ${SOURCE_DIR}/fuse/*.h ${SOURCE_DIR}/fuse/*.cc)
set(lowlevel_users "")
foreach(f IN LISTS fuse_files)
  file(STRINGS ${f} hits REGEX "#include *[<\"]fuse_lowlevel\\.h")
  if(hits)
    list(APPEND lowlevel_users ${f})
  endif()
  file(STRINGS ${f} hits REGEX "#include *\"nfs/(rpc|v4|v3)/")
  if(hits)
    list(APPEND broken "fuse/ must not see the engines or XDR: ${f}: ${hits}")
  endif()
endforeach()
list(LENGTH lowlevel_users n)
if(NOT n EQUAL 1)
  list(APPEND broken "exactly one file in fuse/ includes <fuse_lowlevel.h>; found ${n}: ${lowlevel_users}")
endif()

if(broken)
  list(JOIN broken "\n  " text)
  message(FATAL_ERROR "Layer rules broken:\n  ${text}")
endif()
message(STATUS "layer rules hold (${SOURCE_DIR})")
