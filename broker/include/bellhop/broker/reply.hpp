#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace bellhop::broker {

// An owning copy of a Redis reply. hiredis replies live only inside their callback, so every
// reply is converted into this before it leaves the broker thread.
class reply {
 public:
  enum class kind { nil, string, status, error, integer, array };

  reply() = default;
  static reply from_hiredis(const redisReply& r);
  static reply make_string(std::string s) { return reply(kind::string, std::move(s)); }
  static reply make_status(std::string s) { return reply(kind::status, std::move(s)); }
  static reply make_error(std::string s) { return reply(kind::error, std::move(s)); }
  static reply make_integer(std::int64_t v);
  static reply make_array(std::vector<reply> elements);

  kind type() const noexcept { return kind_; }
  bool is_nil() const noexcept { return kind_ == kind::nil; }
  bool is_string() const noexcept { return kind_ == kind::string; }
  bool is_status() const noexcept { return kind_ == kind::status; }
  bool is_error() const noexcept { return kind_ == kind::error; }
  bool is_integer() const noexcept { return kind_ == kind::integer; }
  bool is_array() const noexcept { return kind_ == kind::array; }

  // Text of a string, status or error reply; empty otherwise.
  const std::string& str() const noexcept { return str_; }
  std::int64_t integer() const noexcept { return integer_; }
  const std::vector<reply>& elements() const noexcept { return elements_; }

  // A readable one-line rendering for logs and test failure messages.
  std::string to_string() const;

  friend bool operator==(const reply&, const reply&) = default;

 private:
  reply(kind k, std::string s) : kind_(k), str_(std::move(s)) {}

  kind kind_ = kind::nil;
  std::string str_;
  std::int64_t integer_ = 0;
  std::vector<reply> elements_;
};

}  // namespace bellhop::broker
