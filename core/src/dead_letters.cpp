#include "bellhop/core/dead_letters.hpp"

#include <rapidjson/document.h>

#include <boost/url/parse.hpp>
#include <charconv>
#include <string>

#include "bellhop/core/lua.hpp"
#include "bellhop/core/poison.hpp"
#include "bellhop/json/parse.hpp"

namespace bellhop::gateway {
namespace {

validation_error invalid(int status, std::string code, std::string message, std::string field) {
  return {status, std::move(code), std::move(message), std::move(field)};
}

// `text` cut to dead_letter_raw_bytes (never inside a character), as valid UTF-8.
std::string shown(std::string_view text) {
  if (text.size() > dead_letter_raw_bytes) {
    std::size_t n = dead_letter_raw_bytes;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    text = text.substr(0, n);
  }
  return valid_utf8(text);
}

void put_string_or_null(json::writer& w, const char* key, const rapidjson::Value& obj,
                        const char* member) {
  w.Key(key);
  auto it = obj.FindMember(member);
  if (it != obj.MemberEnd() && it->value.IsString())
    w.String(it->value.GetString(), it->value.GetStringLength());
  else
    w.Null();
}

}  // namespace

boost::system::result<std::int64_t, validation_error> dead_letters_limit(std::string_view target) {
  const auto url = boost::urls::parse_origin_form(target);
  if (!url) return invalid(400, "malformed_query", "the query string is not valid", {});
  std::int64_t limit = dead_letters_default_limit;
  bool seen = false;
  for (const auto& p : url->params()) {
    if (p.key.empty() && !p.has_value) continue;
    if (p.key != "limit")
      return invalid(400, "unknown_parameter", "unknown query parameter; allowed: limit", {});
    if (seen) return invalid(400, "invalid_parameter", "limit is given twice", "limit");
    seen = true;
    std::int64_t value = 0;
    const std::string& text = p.value;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    const bool whole = !text.empty() && end == text.data() + text.size();
    if (!whole || (ec != std::errc() && ec != std::errc::result_out_of_range))
      return invalid(400, "invalid_parameter", "limit must be a whole number", "limit");
    if (ec == std::errc::result_out_of_range || value < 1 || value > dead_letters_max_limit)
      return invalid(422, "out_of_range",
                     "limit must be between 1 and " + std::to_string(dead_letters_max_limit),
                     "limit");
    limit = value;
  }
  return {boost::system::in_place_value, limit};
}

void write_dead_letter(json::writer& w, std::string_view element) {
  rapidjson::Document d;
  const bool object = json::parse(element, d) && d.IsObject();
  w.StartObject();
  if (!object) {
    for (const char* key : {"id", "reason", "attempts", "failed_at", "message"}) {
      w.Key(key);
      w.Null();
    }
    json::put(w, "element", shown(element));
    w.EndObject();
    return;
  }
  const auto letter = d.FindMember("message");
  const bool outbound = letter != d.MemberEnd() && d.HasMember("reason");
  const rapidjson::Value& message = outbound ? letter->value : static_cast<rapidjson::Value&>(d);
  if (message.IsObject()) {
    put_string_or_null(w, "id", message, "id");
  } else {
    w.Key("id");
    w.Null();
  }
  if (outbound) {
    put_string_or_null(w, "reason", d, "reason");
    w.Key("attempts");
    auto attempts = d.FindMember("attempts");
    if (attempts != d.MemberEnd() && attempts->value.IsInt64())
      w.Int64(attempts->value.GetInt64());
    else
      w.Null();
    put_string_or_null(w, "failed_at", d, "failed_at");
  } else {
    for (const char* key : {"reason", "attempts", "failed_at"}) {
      w.Key(key);
      w.Null();
    }
  }
  w.Key("message");
  if (message.IsObject()) {
    message.Accept(w);  // depth bounded by the parser
  } else {
    w.Null();
    json::put(
        w, "element",
        shown(message.IsString() ? std::string_view(message.GetString(), message.GetStringLength())
                                 : element));
  }
  w.EndObject();
}

void read_dead_letters(broker::broker& redis, std::string key, std::int64_t limit,
                       boost::asio::any_io_executor ex,
                       std::function<void(std::optional<std::string>)> done) {
  static const broker::script page =
      broker::script::make("dead_letters_page", std::string(lua::dead_letters_page));
  redis.eval(page, {std::move(key)},
             {std::to_string(limit), std::to_string(dead_letter_whole_bytes),
              std::to_string(dead_letters_total_bytes), std::to_string(dead_letter_raw_bytes)},
             ex, [done = std::move(done)](boost::system::error_code ec, broker::reply r) {
               if (ec || !r.is_array()) return done(std::nullopt);
               rapidjson::StringBuffer b;
               json::writer w(b);
               w.StartArray();
               for (const auto& entry : r.elements()) {
                 const auto& e = entry.elements();
                 if (e.size() < 2 || !e[0].is_integer() || !e[1].is_string()) continue;
                 if (e[0].integer() == 1) {
                   write_dead_letter(w, e[1].str());
                   continue;
                 }
                 w.StartObject();
                 w.Key("id");
                 if (e.size() > 2 && e[2].is_string() && e[2].str().size() <= 64)
                   json::write_string(w, valid_utf8(e[2].str()));
                 else
                   w.Null();
                 for (const char* k : {"reason", "attempts", "failed_at", "message"}) {
                   w.Key(k);
                   w.Null();
                 }
                 json::put(w, "element", shown(e[1].str()));
                 w.Key("truncated");
                 w.Bool(true);
                 w.EndObject();
               }
               w.EndArray();
               done(std::string(b.GetString(), b.GetSize()));
             });
}

}  // namespace bellhop::gateway
