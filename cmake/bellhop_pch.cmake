# Precompiled headers: the standard library, Asio/Beast, RapidJSON and spdlog are parsed once
# per build instead of once per translation unit, most of the CI's build time. Two headers, each built
# once: bellhop_pch for the libraries and programs, bellhop_test_pch (the same plus GoogleTest)
# for the tests. A module's CMakeLists.txt opts in with one line:
#   bellhop_use_pch(<target>)        a library or program
#   bellhop_use_test_pch(<target>)   a test executable or test library
#
# GCC uses a precompiled header only if the macros it was built with are defined the same way
# where it is used (CMake passes -Winvalid-pch, so with -Werror a mismatch fails the build
# instead of silently parsing every header again). The users therefore take the compile
# definitions of bellhop_pch_usage (spdlog's, Boost's, hiredis' _FILE_OFFSET_BITS) whether they
# link those libraries or not.
#
# Off by default when ccache is the compiler launcher: ccache does not cache a translation
# unit that uses a precompiled header unless its sloppiness allows it, so a developer's cached
# rebuilds would get slower. CI builds without ccache, with BELLHOP_PCH on.
if(CMAKE_CXX_COMPILER_LAUNCHER MATCHES "ccache")
  set(bellhop_pch_default OFF)
else()
  set(bellhop_pch_default ON)
endif()
option(BELLHOP_PCH "Precompiled headers for the libraries, programs and tests" ${bellhop_pch_default})
if(BELLHOP_FUZZ)
  set(BELLHOP_PCH OFF)
endif()

set(BELLHOP_PCH_HEADERS
  <algorithm> <array> <atomic> <charconv> <chrono> <cstdint> <deque> <functional> <map>
  <memory> <mutex> <optional> <set> <string> <string_view> <thread> <unordered_map>
  <utility> <vector>
  <boost/asio/any_io_executor.hpp> <boost/asio/io_context.hpp> <boost/asio/ip/tcp.hpp>
  <boost/asio/post.hpp> <boost/asio/steady_timer.hpp> <boost/asio/strand.hpp>
  <boost/beast/core/flat_buffer.hpp> <boost/beast/core/tcp_stream.hpp>
  <boost/beast/http.hpp> <boost/system/result.hpp>
  <rapidjson/document.h> <rapidjson/stringbuffer.h> <rapidjson/writer.h>
  <spdlog/spdlog.h>)

set(BELLHOP_PCH_SOURCE ${CMAKE_CURRENT_LIST_DIR}/pch.cpp)
if(BELLHOP_PCH)
  add_library(bellhop_pch_usage INTERFACE)
  target_link_libraries(bellhop_pch_usage INTERFACE
    Boost::headers Boost::system Boost::url spdlog::spdlog PkgConfig::HIREDIS)
  target_include_directories(bellhop_pch_usage INTERFACE ${RAPIDJSON_INCLUDE_DIR})
  # GCC 12 does not keep the `#pragma GCC diagnostic` of a header in its precompiled form
  # (fixed in GCC 13), so libstdc++'s char_traits.h no longer silences three middle-end
  # warnings it knows to be false inside std::string; they would fail -Werror at -O3. The same
  # three are off in what uses the precompiled header; builds without it keep them.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(bellhop_pch_usage INTERFACE
      -Wno-array-bounds -Wno-stringop-overflow -Wno-stringop-overread)
  endif()

  add_library(bellhop_pch OBJECT ${BELLHOP_PCH_SOURCE})
  target_link_libraries(bellhop_pch PRIVATE bellhop_pch_usage)
  target_precompile_headers(bellhop_pch PRIVATE ${BELLHOP_PCH_HEADERS})
endif()

function(bellhop_use_pch target)
  if(BELLHOP_PCH)
    target_link_libraries(${target} PRIVATE bellhop_pch_usage)
    target_precompile_headers(${target} REUSE_FROM bellhop_pch)
  endif()
endfunction()

# Built on first use: GoogleTest is found by tests/CMakeLists.txt.
function(bellhop_use_test_pch target)
  if(NOT BELLHOP_PCH)
    return()
  endif()
  if(NOT TARGET bellhop_test_pch)
    add_library(bellhop_test_pch OBJECT ${BELLHOP_PCH_SOURCE})
    target_link_libraries(bellhop_test_pch PRIVATE bellhop_pch_usage GTest::gtest GTest::gmock)
    target_precompile_headers(bellhop_test_pch PRIVATE ${BELLHOP_PCH_HEADERS}
      <gtest/gtest.h> <gmock/gmock.h>)
    # Built with the tests' own optimization level (tests/CMakeLists.txt), as its users are.
    target_compile_options(bellhop_test_pch PRIVATE ${BELLHOP_TEST_OPTIMIZE})
  endif()
  target_link_libraries(${target} PRIVATE bellhop_pch_usage GTest::gtest GTest::gmock)
  target_precompile_headers(${target} REUSE_FROM bellhop_test_pch)
endfunction()
