#include "bellhop/gateway/logging.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace bellhop::gateway {
namespace {

using namespace std::chrono;
using ::testing::HasSubstr;

// 2026-11-27T20:55:15.123Z
const spdlog::log_clock::time_point fixed_time = sys_days{year{2026} / November / 27} + hours{20} +
                                                 minutes{55} + seconds{15} + milliseconds{123};

std::string format(std::string_view format_name, std::string_view message,
                   spdlog::level::level_enum level = spdlog::level::info,
                   std::string_view logger = "bellhop") {
  auto formatter = make_log_formatter(format_name);
  EXPECT_NE(formatter, nullptr);
  spdlog::details::log_msg msg(fixed_time, spdlog::source_loc{},
                               spdlog::string_view_t(logger.data(), logger.size()), level,
                               spdlog::string_view_t(message.data(), message.size()));
  spdlog::memory_buf_t buf;
  formatter->format(msg, buf);
  return std::string(buf.data(), buf.size());
}

// Parses one JSON log line and returns its "msg", failing the test if the line is not valid JSON
// with exactly the expected fields.
std::string json_msg(const std::string& line) {
  EXPECT_TRUE(line.ends_with("}\n")) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one event, one line: " << line;
  rapidjson::Document doc;
  doc.Parse(line.data(), line.size());
  EXPECT_FALSE(doc.HasParseError()) << line;
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("msg") || !doc["msg"].IsString()) {
    ADD_FAILURE() << "not a log object: " << line;
    return {};
  }
  EXPECT_EQ(doc.MemberCount(), 4u);
  return std::string(doc["msg"].GetString(), doc["msg"].GetStringLength());
}

TEST(LoggingTest, TextLine) {
  EXPECT_EQ(format("text", "listening on 0.0.0.0:8080"),
            "2026-11-27T20:55:15.123Z info listening on 0.0.0.0:8080\n");
  EXPECT_EQ(format("text", "redis down", spdlog::level::warn),
            "2026-11-27T20:55:15.123Z warn redis down\n");
  EXPECT_EQ(format("text", "x", spdlog::level::err, "broker"),
            "2026-11-27T20:55:15.123Z error [broker] x\n");
}

TEST(LoggingTest, TextLineEscapesControlCharacters) {
  EXPECT_EQ(format("text", "a\nb\r\tc\x01"), "2026-11-27T20:55:15.123Z info a\\nb\\r\\tc\\x01\n");
}

TEST(LoggingTest, JsonLine) {
  EXPECT_EQ(format("json", "started", spdlog::level::debug),
            "{\"ts\":\"2026-11-27T20:55:15.123Z\",\"level\":\"debug\",\"msg\":\"started\","
            "\"logger\":\"bellhop\"}\n");
  EXPECT_THAT(format("json", "x", spdlog::level::warn, "broker"),
              HasSubstr("\"level\":\"warn\",\"msg\":\"x\",\"logger\":\"broker\""));
  EXPECT_THAT(format("json", "x", spdlog::level::err), HasSubstr("\"level\":\"error\""));
}

TEST(LoggingTest, JsonEscapesQuotesBackslashesNewlinesAndControlCharacters) {
  const std::string message = "say \"hi\" \\ C:\\path\nline2\r\ttab\b\f\x01\x1f\x7f end";
  std::string line = format("json", message);
  EXPECT_THAT(line, HasSubstr(R"(say \"hi\" \\ C:\\path\nline2\r\ttab\b\f\u0001\u001f\u007f end)"));
  EXPECT_EQ(json_msg(line), message);
}

TEST(LoggingTest, JsonKeepsUtf8AndReplacesInvalidBytes) {
  const std::string valid = "Frühstück 7:00–10:30 \xF0\x9F\x8D\xB3";  // ü, en dash, emoji
  EXPECT_EQ(json_msg(format("json", valid)), valid);

  const std::string replacement = "\xEF\xBF\xBD";
  EXPECT_EQ(json_msg(format("json",
                            "a\xFF"
                            "b")),
            "a" + replacement + "b");
  EXPECT_EQ(json_msg(format("json", "cut \xC3")), "cut " + replacement);
  EXPECT_EQ(json_msg(format("json", "overlong \xC0\xAF")), "overlong " + replacement + replacement);
  EXPECT_EQ(json_msg(format("json", "surrogate \xED\xA0\x80")),
            "surrogate " + replacement + replacement + replacement);
  EXPECT_EQ(json_msg(format("json", "too big \xF4\x90\x80\x80")),
            "too big " + replacement + replacement + replacement + replacement);
}

TEST(LoggingTest, JsonEscapesTheLoggerName) {
  EXPECT_THAT(format("json", "x", spdlog::level::info, "we\"ird"),
              HasSubstr(R"("logger":"we\"ird")"));
}

TEST(LoggingTest, UnknownFormatHasNoFormatter) {
  EXPECT_EQ(make_log_formatter("xml"), nullptr);
}

TEST(LoggingTest, SetupRejectsUnknownLevelAndFormat) {
  auto level = setup_logging({.level = "loud", .format = "text"});
  ASSERT_FALSE(level.has_value());
  EXPECT_EQ(level.error(), "'log.level' must be one of trace, debug, info, warn, error");
  auto format = setup_logging({.level = "info", .format = "xml"});
  ASSERT_FALSE(format.has_value());
  EXPECT_EQ(format.error(), "'log.format' must be one of text, json");
}

TEST(LoggingTest, SetupWritesJsonLinesToStderrAtTheConfiguredLevel) {
  ASSERT_TRUE(setup_logging({.level = "warn", .format = "json"}).has_value());
  EXPECT_EQ(spdlog::default_logger()->name(), "bellhop");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);

  ::testing::internal::CaptureStderr();
  spdlog::info("below the level");
  spdlog::warn("quote \" and newline\n");
  // A logger registered after setup shares the format.
  auto late = spdlog::stderr_logger_mt("late");
  late->error("from late");
  spdlog::drop("late");
  std::string out = ::testing::internal::GetCapturedStderr();

  EXPECT_THAT(out, ::testing::Not(HasSubstr("below the level")));
  auto newline = out.find('\n');
  ASSERT_NE(newline, std::string::npos) << out;
  std::string first = out.substr(0, newline + 1);
  std::string second = out.substr(newline + 1);
  EXPECT_EQ(json_msg(first), "quote \" and newline\n");
  EXPECT_THAT(first, HasSubstr("\"level\":\"warn\""));
  EXPECT_EQ(json_msg(second), "from late");
  EXPECT_THAT(second, HasSubstr("\"logger\":\"late\""));

  ASSERT_TRUE(setup_logging({.level = "info", .format = "text"}).has_value());
  ::testing::internal::CaptureStderr();
  spdlog::info("plain");
  out = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(out, ::testing::MatchesRegex(
                       "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z info "
                       "plain\n"));
}

}  // namespace
}  // namespace bellhop::gateway
