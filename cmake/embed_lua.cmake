# Writes OUTPUT: every LUA_DIR/*.lua as `NAMESPACE::<stem>` (std::string_view), so the scripts
# ship inside the binary and are still edited as plain .lua files.
# `--#include NAME` lines are replaced by FRAGMENTS_DIR/NAME (default LUA_DIR/fragments);
# FRAGMENTS_DIR may name several folders separated by `|`, searched in order.
#   cmake -DLUA_DIR=<module>/lua -DNAMESPACE=bellhop::<module>::lua -DOUTPUT=<header> -P embed_lua.cmake
# PATTERN (default *.lua) embeds other text files the same way (the web chat widget's .js).
# FULL_NAMES=ON names each entry by its whole file name (`console.js` -> `console_js`) and adds
# `files`: every entry with its file name, for a module that serves a folder (the console's web/).
# Modules call it through bellhop_embed_lua() (cmake/bellhop_lua.cmake).
if(NOT PATTERN)
  set(PATTERN "*.lua")
endif()
if(NOT FRAGMENTS_DIR)
  set(FRAGMENTS_DIR ${LUA_DIR}/fragments)
endif()
file(GLOB scripts ${LUA_DIR}/${PATTERN})
list(SORT scripts)
set(text "// Generated from ${LUA_DIR}/${PATTERN} by cmake/embed_lua.cmake. Do not edit.\n#pragma once\n\n#include <string_view>\n\nnamespace ${NAMESPACE} {\n")
set(table "")
foreach(script IN LISTS scripts)
  get_filename_component(stem ${script} NAME_WE)
  if(FULL_NAMES)
    get_filename_component(file_name ${script} NAME)
    string(MAKE_C_IDENTIFIER ${file_name} stem)
    string(APPEND table "    {\"${file_name}\", ${stem}},\n")
  endif()
  file(READ ${script} body)
  # `--#include NAME` lines take the text of FRAGMENTS_DIR/NAME: shared code, one copy.
  string(REGEX MATCHALL "--#include [A-Za-z0-9_]+\\.lua" includes "${body}")
  foreach(line IN LISTS includes)
    string(REPLACE "--#include " "" fragment "${line}")
    string(REPLACE "|" ";" fragment_dirs "${FRAGMENTS_DIR}")
    unset(fragment_file)
    foreach(fragment_dir IN LISTS fragment_dirs)
      if(NOT fragment_file AND EXISTS ${fragment_dir}/${fragment})
        set(fragment_file ${fragment_dir}/${fragment})
      endif()
    endforeach()
    if(NOT fragment_file)
      message(FATAL_ERROR "${script}: no fragment ${fragment} in ${FRAGMENTS_DIR}")
    endif()
    file(READ ${fragment_file} fragment_body)
    string(REPLACE "${line}" "${fragment_body}" body "${body}")
  endforeach()
  string(APPEND text "inline constexpr std::string_view ${stem} = R\"bellhop_lua(${body})bellhop_lua\";\n")
endforeach()
if(FULL_NAMES)
  string(APPEND text "\nstruct file {\n  std::string_view name, body;\n};\ninline constexpr file files[] = {\n${table}};\n")
endif()
string(APPEND text "}  // namespace ${NAMESPACE}\n")
file(WRITE ${OUTPUT}.tmp "${text}")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
