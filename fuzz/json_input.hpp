#pragma once

#include <string_view>

#include "bellhop/json/parse.hpp"

// Whether bellhop::json::parse accepts the text as JSON at any depth and size. Invariants about
// the JSON a parser writes out are checked for such inputs only: every parser of outside JSON
// goes through bellhop::json::parse (docs/security.md), which refuses the others (invalid
// UTF-8, an escaped lone surrogate) before the parser sees them.
inline bool json_input_valid(std::string_view text) {
  rapidjson::Document doc;
  bellhop::json::limits lim;
  lim.max_bytes = text.size();
  lim.max_depth = 1u << 20;
  return static_cast<bool>(bellhop::json::parse(text, doc, lim));
}
