#include "bellhop/gateway/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>

namespace bellhop::gateway {
namespace {

constexpr std::string_view default_logger_name = "bellhop";

std::optional<spdlog::level::level_enum> parse_level(std::string_view name) {
  using spdlog::level::level_enum;
  constexpr std::pair<std::string_view, level_enum> levels[] = {{"trace", level_enum::trace},
                                                                {"debug", level_enum::debug},
                                                                {"info", level_enum::info},
                                                                {"warn", level_enum::warn},
                                                                {"error", level_enum::err}};
  for (const auto& [n, level] : levels) {
    if (n == name) return level;
  }
  return std::nullopt;
}

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

void append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

void append_hex_escape(spdlog::memory_buf_t& dest, std::string_view prefix, unsigned value,
                       int digits) {
  static constexpr char hex[] = "0123456789abcdef";
  append(dest, prefix);
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
    dest.push_back(hex[(value >> shift) & 0xf]);
}

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not valid (overlong forms,
// surrogates and code points above U+10FFFF are invalid).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  std::size_t length;
  unsigned char min1 = 0x80, max1 = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) min1 = 0xA0;
    if (b0 == 0xED) max1 = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) min1 = 0x90;
    if (b0 == 0xF4) max1 = 0x8F;
  } else {
    return 0;
  }
  if (i + length > s.size()) return 0;
  if (byte(i + 1) < min1 || byte(i + 1) > max1) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return length;
}

// JSON string contents: quotes, backslashes and control characters escaped; invalid UTF-8
// replaced by U+FFFD so every line stays valid JSON.
void append_json_escaped(spdlog::memory_buf_t& dest, std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::size_t length = utf8_sequence_length(s, i);
      if (length == 0) {
        append(dest, "\\ufffd");
        ++i;
      } else {
        append(dest, s.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        append(dest, "\\\"");
        break;
      case '\\':
        append(dest, "\\\\");
        break;
      case '\n':
        append(dest, "\\n");
        break;
      case '\r':
        append(dest, "\\r");
        break;
      case '\t':
        append(dest, "\\t");
        break;
      case '\b':
        append(dest, "\\b");
        break;
      case '\f':
        append(dest, "\\f");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          append_hex_escape(dest, "\\u", c, 4);
        } else {
          dest.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
}

// Text lines keep the message readable but still one line per event.
void append_text_escaped(spdlog::memory_buf_t& dest, std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      append(dest, "\\n");
    } else if (c == '\r') {
      append(dest, "\\r");
    } else if (c == '\t') {
      append(dest, "\\t");
    } else if (c < 0x20 || c == 0x7f) {
      append_hex_escape(dest, "\\x", c, 2);
    } else {
      dest.push_back(ch);
    }
  }
}

class log_formatter final : public spdlog::formatter {
 public:
  explicit log_formatter(bool json) : json_(json) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    std::string_view logger(msg.logger_name.data(), msg.logger_name.size());
    if (json_) {
      append(dest, "{\"ts\":\"");
      append_timestamp(msg.time, dest);
      append(dest, "\",\"level\":\"");
      append(dest, level_name(msg.level));
      append(dest, "\",\"msg\":\"");
      append_json_escaped(dest, payload);
      append(dest, "\",\"logger\":\"");
      append_json_escaped(dest, logger.empty() ? default_logger_name : logger);
      append(dest, "\"}\n");
    } else {
      append_timestamp(msg.time, dest);
      dest.push_back(' ');
      append(dest, level_name(msg.level));
      dest.push_back(' ');
      if (!logger.empty() && logger != default_logger_name) {
        dest.push_back('[');
        append_text_escaped(dest, logger);
        append(dest, "] ");
      }
      append_text_escaped(dest, payload);
      dest.push_back('\n');
    }
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<log_formatter>(json_);
  }

 private:
  // 2026-11-27T20:55:15.123Z; the date part is cached per second.
  void append_timestamp(spdlog::log_clock::time_point time, spdlog::memory_buf_t& dest) {
    using namespace std::chrono;
    auto seconds = floor<std::chrono::seconds>(time);
    auto millis = duration_cast<milliseconds>(time - seconds).count();
    std::time_t t = system_clock::to_time_t(time_point_cast<system_clock::duration>(seconds));
    if (t != cached_second_ || cached_length_ == 0) {
      std::tm tm{};
      ::gmtime_r(&t, &tm);
      cached_length_ = std::strftime(cached_.data(), cached_.size(), "%Y-%m-%dT%H:%M:%S", &tm);
      cached_second_ = t;
    }
    dest.append(cached_.data(), cached_.data() + cached_length_);
    std::array<char, 8> ms{};
    int n = std::snprintf(ms.data(), ms.size(), ".%03dZ", static_cast<int>(millis));
    dest.append(ms.data(), ms.data() + n);
  }

  bool json_;
  std::time_t cached_second_ = 0;
  std::array<char, 32> cached_{};
  std::size_t cached_length_ = 0;
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_log_formatter(std::string_view format) {
  if (format == "text") return std::make_unique<log_formatter>(false);
  if (format == "json") return std::make_unique<log_formatter>(true);
  return nullptr;
}

boost::system::result<void, std::string> setup_logging(const config::log_t& cfg) {
  using result = boost::system::result<void, std::string>;
  auto level = parse_level(cfg.level);
  if (!level) {
    return result(boost::system::in_place_error,
                  "'log.level' must be one of trace, debug, info, warn, error");
  }
  auto formatter = make_log_formatter(cfg.format);
  if (!formatter)
    return result(boost::system::in_place_error, "'log.format' must be one of text, json");

  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(std::string(default_logger_name), std::move(sink));
  spdlog::set_default_logger(std::move(logger));
  // Applies to every registered logger and to those registered later.
  spdlog::set_formatter(std::move(formatter));
  spdlog::set_level(*level);
  return {};
}

}  // namespace bellhop::gateway
