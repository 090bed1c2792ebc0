#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>

namespace bellhop::json {

// The one kind of writer Bellhop serializes with: compact, UTF-8, RapidJSON's escaping.
using writer = rapidjson::Writer<rapidjson::StringBuffer>;

// A string value (its length given: NUL bytes are kept).
void write_string(writer& w, std::string_view value);

// "key": "value".
void put(writer& w, std::string_view key, std::string_view value);

// "key": "value", or "key": null when `value` is empty.
void put_or_null(writer& w, std::string_view key, std::string_view value);

// `s` as a JSON string literal, quotes included: for a JSON text put together from pieces.
std::string quote(std::string_view s);

}  // namespace bellhop::json
