#include "bellhop/json/write.hpp"

namespace bellhop::json {

void write_string(writer& w, std::string_view value) {
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void put(writer& w, std::string_view key, std::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  write_string(w, value);
}

void put_or_null(writer& w, std::string_view key, std::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  if (value.empty()) {
    w.Null();
  } else {
    write_string(w, value);
  }
}

std::string quote(std::string_view s) {
  rapidjson::StringBuffer out;
  writer w(out);
  write_string(w, s);
  return {out.GetString(), out.GetSize()};
}

}  // namespace bellhop::json
