#pragma once

#include <boost/system/result.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace bellhop::demo {

// One FAQ rule: any keyword found in a guest's text selects the answer.
struct faq_rule {
  std::string name;
  std::vector<std::string> keywords;  // stored lower-cased (ASCII)
  std::string answer;
};

// The demo engine's whole "intelligence": keyword rules tried in file order, first match wins.
class faq {
 public:
  // Parses `[{"name":…,"keywords":[…],"answer":…},…]`. The error says what is wrong, and where.
  static boost::system::result<faq, std::string> parse(std::string_view json);
  static boost::system::result<faq, std::string> load_file(const std::string& path);

  // The first rule with a keyword that starts at a word boundary of `text` (so "breakfast"
  // matches "breakfasts?" but "dog" does not match "hotdog"); nullptr when none does.
  // Case-insensitive for ASCII letters only; other UTF-8 bytes must match exactly.
  const faq_rule* match(std::string_view text) const;

  const std::vector<faq_rule>& rules() const noexcept { return rules_; }

 private:
  std::vector<faq_rule> rules_;
};

std::string ascii_lower(std::string_view s);

}  // namespace bellhop::demo
