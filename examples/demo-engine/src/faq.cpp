#include "faq.hpp"

#include <rapidjson/document.h>

#include <fstream>
#include <sstream>

#include "bellhop/json/parse.hpp"

namespace bellhop::demo {
namespace {

bool is_word_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  // Bytes of multi-byte UTF-8 sequences are letters as far as word boundaries go ("ü").
  return u >= 0x80 || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
}

bool starts_at_word_boundary(std::string_view text, std::string_view keyword) {
  for (auto pos = text.find(keyword); pos != std::string_view::npos;
       pos = text.find(keyword, pos + 1)) {
    if (pos == 0 || !is_word_byte(text[pos - 1])) return true;
  }
  return false;
}

}  // namespace

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

boost::system::result<faq, std::string> faq::parse(std::string_view json) {
  rapidjson::Document doc;
  if (const auto r = bellhop::json::parse(json, doc, {.max_bytes = 16 << 20, .max_depth = 32}); !r)
    return r.message();
  if (!doc.IsArray()) return std::string("expected a JSON array of rules");
  faq out;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    const auto& r = doc[i];
    const std::string where = "rule " + std::to_string(i);
    if (!r.IsObject()) return where + ": expected an object";
    faq_rule rule;
    if (!r.HasMember("name") || !r["name"].IsString() || r["name"].GetStringLength() == 0) {
      return where + ": \"name\" must be a non-empty string";
    }
    rule.name = r["name"].GetString();
    const std::string named = where + " (" + rule.name + ")";
    if (!r.HasMember("answer") || !r["answer"].IsString() || r["answer"].GetStringLength() == 0) {
      return named + ": \"answer\" must be a non-empty string";
    }
    rule.answer.assign(r["answer"].GetString(), r["answer"].GetStringLength());
    if (!r.HasMember("keywords") || !r["keywords"].IsArray() || r["keywords"].Empty()) {
      return named + ": \"keywords\" must be a non-empty array of strings";
    }
    for (const auto& k : r["keywords"].GetArray()) {
      if (!k.IsString() || k.GetStringLength() == 0) {
        return named + ": every keyword must be a non-empty string";
      }
      rule.keywords.push_back(ascii_lower({k.GetString(), k.GetStringLength()}));
    }
    out.rules_.push_back(std::move(rule));
  }
  if (out.rules_.empty()) return std::string("no rules: the array is empty");
  return out;
}

boost::system::result<faq, std::string> faq::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read " + path;
  std::ostringstream content;
  content << in.rdbuf();
  auto parsed = parse(content.str());
  if (!parsed) return path + ": " + parsed.error();
  return parsed;
}

const faq_rule* faq::match(std::string_view text) const {
  const std::string lowered = ascii_lower(text);
  for (const auto& rule : rules_) {
    for (const auto& keyword : rule.keywords) {
      if (starts_at_word_boundary(lowered, keyword)) return &rule;
    }
  }
  return nullptr;
}

}  // namespace bellhop::demo
