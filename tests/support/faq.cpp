#include "support/faq.hpp"

#include <fstream>
#include <sstream>

#include "support/json.hpp"

namespace bellhop::test {

std::string faq_answer(const std::filesystem::path& faq_json, const std::string& rule) {
  std::ifstream in(faq_json);
  std::stringstream content;
  content << in.rdbuf();
  auto doc = parse_json(content.str());
  if (!doc.IsArray()) return "<faq.json unreadable>";
  for (const auto& r : doc.GetArray())
    if (string_member(r, "name") == rule) return string_member(r, "answer");
  return "<no rule " + rule + ">";
}

}  // namespace bellhop::test
