# bellhop_embed_lua(<target> <module>): the module's Redis scripts (<module dir>/lua/*.lua) in
# the binary, as `bellhop::gateway::lua::<script>` (std::string_view) in the generated header
# "bellhop/<module>/lua.hpp". A script's `--#include NAME.lua` lines take the shared fragments of
# core/lua/fragments (the event envelope, the conversation record, legacy keys), then of
# ratelimit/lua/fragments (the rate-limit algorithms, for the ingest's check): one copy each.
function(bellhop_embed_lua target module)
  set(dir ${CMAKE_CURRENT_SOURCE_DIR}/lua)
  set(fragments ${CMAKE_SOURCE_DIR}/core/lua/fragments)
  set(ratelimit_fragments ${CMAKE_SOURCE_DIR}/ratelimit/lua/fragments)
  file(GLOB scripts CONFIGURE_DEPENDS ${dir}/*.lua ${fragments}/*.lua ${ratelimit_fragments}/*.lua)
  set(header ${CMAKE_CURRENT_BINARY_DIR}/generated/bellhop/${module}/lua.hpp)
  add_custom_command(OUTPUT ${header}
    COMMAND ${CMAKE_COMMAND} -DLUA_DIR=${dir} "-DFRAGMENTS_DIR=${fragments}|${ratelimit_fragments}"
            -DNAMESPACE=bellhop::gateway::lua -DOUTPUT=${header}
            -P ${CMAKE_SOURCE_DIR}/cmake/embed_lua.cmake
    DEPENDS ${scripts} ${CMAKE_SOURCE_DIR}/cmake/embed_lua.cmake
    COMMENT "Embedding ${module}/lua/*.lua" VERBATIM)
  target_sources(${target} PRIVATE ${header})
  target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_BINARY_DIR}/generated)
endfunction()
