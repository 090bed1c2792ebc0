# Writes OUTPUT: every gateway/lua/*.lua as `bellhop::gateway::lua::<stem>` (std::string_view),
# so the scripts ship inside the binary and are still edited as plain .lua files.
file(GLOB scripts ${LUA_DIR}/*.lua)
list(SORT scripts)
set(text "// Generated from gateway/lua/*.lua by gateway/embed_lua.cmake. Do not edit.\n#pragma once\n\n#include <string_view>\n\nnamespace bellhop::gateway::lua {\n")
foreach(script IN LISTS scripts)
  get_filename_component(stem ${script} NAME_WE)
  file(READ ${script} body)
  string(APPEND text "inline constexpr std::string_view ${stem} = R\"bellhop_lua(${body})bellhop_lua\";\n")
endforeach()
string(APPEND text "}  // namespace bellhop::gateway::lua\n")
file(WRITE ${OUTPUT}.tmp "${text}")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
