// bellhop::json::parse, the one bounded parser of untrusted JSON. The first byte picks the
// limits (comments or not, depth); the rest is the text.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bellhop/json/parse.hpp"
#include "fuzz_check.hpp"

namespace {

struct shape {
  unsigned depth = 0;
  bool has_double = false;
};

// Walked with an explicit stack, so a too-deep document (a bug) is reported, not recursed into.
shape measure(const rapidjson::Value& root) {
  shape s;
  std::vector<std::pair<const rapidjson::Value*, unsigned>> todo{{&root, 1}};
  while (!todo.empty()) {
    auto [v, level] = todo.back();
    todo.pop_back();
    if (v->IsDouble()) s.has_double = true;
    if (v->IsArray()) {
      if (level > s.depth) s.depth = level;
      for (const auto& e : v->GetArray()) todo.emplace_back(&e, level + 1);
    } else if (v->IsObject()) {
      if (level > s.depth) s.depth = level;
      for (const auto& m : v->GetObject()) todo.emplace_back(&m.value, level + 1);
    }
  }
  return s;
}

std::string write(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  FUZZ_CHECK(v.Accept(w));
  return {b.GetString(), b.GetSize()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  bellhop::json::limits lim;
  lim.comments = (data[0] & 1) != 0;
  lim.max_depth = 1 + (data[0] >> 1) % 40;
  lim.max_bytes = 64 * 1024;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  rapidjson::Document doc;
  const auto r = bellhop::json::parse(text, doc, lim);
  FUZZ_CHECK(!r.message().empty());
  if (!r) {
    FUZZ_CHECK(doc.IsNull());
    FUZZ_CHECK(r.offset <= text.size() || r.code == bellhop::json::error::too_large);
    FUZZ_CHECK(r.message().size() < 200);  // never quotes the input
    return 0;
  }
  const shape s = measure(doc);
  FUZZ_CHECK(s.depth <= lim.max_depth);

  // What Bellhop writes back out parses again, without comments, to the same text (doubles
  // aside: RapidJSON's default number parsing may move the last bit).
  const std::string once = write(doc);
  rapidjson::Document again;
  bellhop::json::limits strict;
  strict.max_bytes = 4 * once.size() + 16;
  strict.max_depth = lim.max_depth;
  FUZZ_CHECK(bellhop::json::parse(once, again, strict));
  if (!s.has_double) FUZZ_CHECK(write(again) == once);
  return 0;
}
