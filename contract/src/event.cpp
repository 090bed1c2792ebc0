#include "bellhop/contract/event.hpp"

#include <array>
#include <charconv>

namespace bellhop::contract {
namespace {

// What a string byte becomes, as RapidJSON's Writer writes it (so an event built here reads the
// same as the JSON around it): short escapes for \b \t \n \f \r, \u00XX for other control
// characters, \" and \\; every other byte as is.
bool needs_escape(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || c == '"' || c == '\\';
}

void append_string(std::string& out, std::string_view s) {
  out += '"';
  std::size_t done = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!needs_escape(c)) continue;
    out.append(s.substr(done, i - done));
    done = i + 1;
    out += '\\';
    constexpr std::string_view shorts = "\"\\\b\t\n\f\r", letters = "\"\\btnfr";
    if (const auto k = shorts.find(c); k != std::string_view::npos) {
      out += letters[k];
    } else {
      constexpr std::string_view hex = "0123456789ABCDEF";
      const auto u = static_cast<unsigned char>(c);
      out += "u00";
      out += hex[u >> 4];
      out += hex[u & 0xF];
    }
  }
  out.append(s.substr(done));
  out += '"';
}

void append_seq(std::string& out, std::uint64_t seq) {
  std::array<char, 24> digits;
  const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), seq);
  out.append(digits.data(), end);
}

// Every member after seq, and the closing brace.
void append_members(std::string& out, const event_envelope& e) {
  out += R"("property_id":)";
  append_string(out, e.property_id);
  out += R"(,"event":)";
  append_string(out, e.event);
  out += R"(,"data":)";
  out += e.data;
  out += R"(,"ts":)";
  append_string(out, e.ts);
  out += '}';
}

std::size_t members_size(const event_envelope& e) {
  // The fixed text, and room for a few escapes.
  return 64 + e.property_id.size() + e.event.size() + e.data.size() + e.ts.size();
}

bool consume(std::string_view& text, std::string_view literal) {
  if (text.substr(0, literal.size()) != literal) return false;
  text.remove_prefix(literal.size());
  return true;
}

// A string of `text` that has no escapes: '"', then bytes from 0x20 other than '"' and '\'.
bool plain_string(std::string_view& text, std::string_view& value) {
  if (text.empty() || text.front() != '"') return false;
  for (std::size_t i = 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      value = text.substr(1, i - 1);
      text.remove_prefix(i + 1);
      return true;
    }
    if (needs_escape(c)) return false;
  }
  return false;
}

}  // namespace

std::string stored_event(std::uint64_t seq, const event_envelope& e) {
  std::string out;
  out.reserve(members_size(e) + 32);
  out += R"({"seq":)";
  append_seq(out, seq);
  out += ',';
  append_members(out, e);
  return out;
}

std::string event_frame(const event_envelope& e, std::optional<std::uint64_t> seq) {
  std::string out;
  out.reserve(members_size(e) + 48);
  out += R"({"type":"event",)";
  if (seq) {
    out += R"("seq":)";
    append_seq(out, *seq);
    out += ',';
  }
  append_members(out, e);
  return out;
}

std::optional<stored_event_view> parse_stored_event(std::string_view text) {
  stored_event_view v;
  v.text = text;
  auto& e = v.envelope;
  if (!consume(text, R"({"seq":)")) return std::nullopt;
  // A whole number as stored_event writes it: digits, no leading zero.
  if (text.empty() || text.front() == '0') return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v.seq);
  if (ec != std::errc{} || end == text.data()) return std::nullopt;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  if (!consume(text, R"(,"property_id":)") || !plain_string(text, e.property_id) ||
      !consume(text, R"(,"event":)") || !plain_string(text, e.event) ||
      !consume(text, R"(,"data":)"))
    return std::nullopt;
  // ts is the last member and has no '"': read from the end, so that nothing inside data (a
  // guest may write `,"ts":"` in a message) is taken for it.
  constexpr std::string_view close = "\"}", ts_key = R"(,"ts":)";
  if (text.size() < close.size() || text.substr(text.size() - close.size()) != close)
    return std::nullopt;
  text.remove_suffix(close.size());
  std::size_t open = text.size();  // of ts: the first '"' back from the end, no escapes after
  while (open > 0 && !needs_escape(text[open - 1])) --open;
  if (open < ts_key.size() + 1 || text[open - 1] != '"' ||
      text.substr(open - 1 - ts_key.size(), ts_key.size()) != ts_key)
    return std::nullopt;
  e.ts = text.substr(open);
  e.data = text.substr(0, open - 1 - ts_key.size());
  if (e.data.size() < 2 || e.data.front() != '{' || e.data.back() != '}') return std::nullopt;
  return v;
}

std::string event_frame(const stored_event_view& v) {
  constexpr std::string_view type = R"({"type":"event",)";
  std::string out;
  out.reserve(type.size() + v.text.size() - 1);
  out += type;
  out += v.text.substr(1);
  return out;
}

}  // namespace bellhop::contract
