#pragma once

#include <filesystem>
#include <string>

namespace bellhop::test {

// The answer the demo engine gives for the rule named `rule` in its FAQ file (a JSON array of
// {"name", "answer", ...}), or a text that names what is missing.
std::string faq_answer(const std::filesystem::path& faq_json, const std::string& rule);

}  // namespace bellhop::test
