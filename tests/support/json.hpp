#pragma once

// JSON helpers for tests that read frames and bodies: a parse that never throws and a string
// member that is "" when absent or of another type.
#include <rapidjson/document.h>

#include <string>

namespace bellhop::test {

inline rapidjson::Document parse_json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

inline std::string string_member(const rapidjson::Value& v, const char* name) {
  return v.IsObject() && v.HasMember(name) && v[name].IsString() ? v[name].GetString() : "";
}

}  // namespace bellhop::test
