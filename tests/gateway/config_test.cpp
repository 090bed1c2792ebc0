#include "bellhop/gateway/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace bellhop::gateway {
namespace {

namespace fs = std::filesystem;
using env_map = std::map<std::string, std::string>;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Each test gets its own directory; the machine's /etc/bellhop is never consulted.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "bellhop-config-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path no_default() const { return dir_ / "absent-default.json"; }

  boost::system::result<config, std::string> load(const env_map& env = {},
                                                  config_overrides overrides = {}) {
    return load_config(overrides, env, no_default());
  }

  // Loads `json` as the file named by --config.
  boost::system::result<config, std::string> load_json(const std::string& json,
                                                       const env_map& env = {},
                                                       config_overrides overrides = {}) {
    path_ = write("config.json", json).string();
    overrides.config_file = path_;
    return load_config(overrides, env, no_default());
  }

  config load_ok(const std::string& json, const env_map& env = {},
                 config_overrides overrides = {}) {
    auto r = load_json(json, env, overrides);
    EXPECT_TRUE(r.has_value()) << r.error();
    return r.has_value() ? *r : config{};
  }

  // The error for `json`, with the "config <path>: " prefix checked and removed.
  std::string file_error(const std::string& json, const env_map& env = {}) {
    auto r = load_json(json, env);
    if (r.has_value()) return "<loaded without error>";
    std::string prefix = "config " + path_ + ": ";
    EXPECT_TRUE(r.error().starts_with(prefix)) << r.error();
    return r.error().substr(prefix.size());
  }

  std::string env_error(const env_map& env, const std::string& json = "{}") {
    auto r = load_json(json, env);
    return r.has_value() ? "<loaded without error>" : r.error();
  }

  fs::path dir_;
  std::string path_;
};

const std::string valid_key = "0123456789abcdef0123";
const std::string other_key = "fedcba98765432100000";

TEST_F(ConfigTest, DefaultsWhenNoFileExists) {
  auto r = load();
  ASSERT_TRUE(r.has_value()) << r.error();
  const config& c = *r;
  EXPECT_EQ(c.source_file, "");
  EXPECT_EQ(c.listen, "0.0.0.0:8080");
  EXPECT_EQ(c.data_dir, "/var/lib/bellhop");
  EXPECT_EQ(c.http.threads, 0);
  EXPECT_EQ(c.http.max_body_bytes, 1048576u);
  EXPECT_EQ(c.redis.url, "embedded");
  EXPECT_EQ(c.redis.embedded.port, 6390);
  EXPECT_EQ(c.log.level, "info");
  EXPECT_FALSE(c.channels.whatsapp.has_value());
  EXPECT_FALSE(c.channels.twilio.has_value());
}

TEST_F(ConfigTest, DefaultFileIsUsedWhenItExists) {
  fs::path file = write("default.json", R"({"listen": ":9000"})");
  auto r = load_config({}, {}, file);
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->listen, ":9000");
  EXPECT_EQ(r->source_file, file.string());
}

TEST_F(ConfigTest, BellhopConfigVariableNamesTheFile) {
  fs::path file = write("from-env.json", R"({"listen": ":9001"})");
  auto r = load({{"BELLHOP_CONFIG", file.string()}});
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->listen, ":9001");
  EXPECT_EQ(r->source_file, file.string());
  EXPECT_THAT(r->unknown_env, IsEmpty());
}

TEST_F(ConfigTest, ConfigFlagBeatsBellhopConfigVariable) {
  fs::path file = write("from-flag.json", R"({"listen": ":9002"})");
  config_overrides flags;
  flags.config_file = file.string();
  auto r = load({{"BELLHOP_CONFIG", (dir_ / "missing.json").string()}}, flags);
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->listen, ":9002");
}

TEST_F(ConfigTest, ExplicitFileThatDoesNotExistIsAnError) {
  std::string missing = (dir_ / "missing.json").string();
  config_overrides flags;
  flags.config_file = missing;
  auto r = load({}, flags);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), "config " + missing + ": cannot read: No such file or directory");

  auto from_env = load({{"BELLHOP_CONFIG", missing}});
  ASSERT_FALSE(from_env.has_value());
  EXPECT_EQ(from_env.error(), "config " + missing + ": cannot read: No such file or directory");
}

TEST_F(ConfigTest, DirectoryIsNotAConfigFile) {
  config_overrides flags;
  flags.config_file = dir_.string();
  auto r = load({}, flags);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), "config " + dir_.string() + ": cannot read: is a directory");
}

TEST_F(ConfigTest, ProviderPoliciesAreThereByDefaultAndTheFileAddsOrRedefinesByName) {
  const config defaults = load_ok("{}");
  const auto& d = defaults.ratelimit.policies;
  ASSERT_EQ(d.count("whatsapp_business_number"), 1u);
  EXPECT_EQ(d.at("whatsapp_business_number").limit, 80);
  EXPECT_EQ(d.at("whatsapp_business_number").window_ms, 1000);
  EXPECT_EQ(d.at("whatsapp_recipient").window_ms, 6000);
  EXPECT_EQ(d.at("twilio_sms_recipient").limit, 15);
  EXPECT_EQ(d.at("twilio_sms_recipient").window_ms, 30000);
  EXPECT_EQ(d.at("email_property_day").limit, 10000);
  EXPECT_EQ(d.at("sms_property_hour").limit, 500);
  EXPECT_EQ(d.at("whatsapp_business_number").fail, "closed");
  EXPECT_EQ(defaults.ratelimit.inbound_api, "");
  EXPECT_EQ(defaults.ratelimit.staff_replies, "staff_reply");
  for (const auto& [name, p] : d) {
    EXPECT_EQ(ratelimit::validate(to_ratelimit_policy(name, p)), "") << name;
  }

  // The original ADR's "80 per 60 s per phone number" is one more policy.
  const config c = load_ok(R"({"ratelimit": {"policies": {
      "adr_phone_number": {"algorithm": "fixed_window", "limit": 80, "window_ms": 60000},
      "whatsapp_recipient": {"algorithm": "gcra", "limit": 1, "window_ms": 10000, "fail": "open"}},
      "staff_replies": ""}})");
  EXPECT_EQ(c.ratelimit.policies.at("adr_phone_number").limit, 80);
  EXPECT_EQ(c.ratelimit.policies.at("whatsapp_recipient").window_ms, 10000);
  EXPECT_EQ(c.ratelimit.policies.at("whatsapp_recipient").burst, 0);
  EXPECT_EQ(c.ratelimit.policies.at("whatsapp_recipient").fail, "open");
  EXPECT_EQ(c.ratelimit.policies.count("whatsapp_business_number"), 1u) << "defaults are kept";
  EXPECT_EQ(c.ratelimit.staff_replies, "");
  EXPECT_EQ(to_ratelimit_policy("x", c.ratelimit.policies.at("whatsapp_recipient")).fail,
            ratelimit::failure_mode::open);
}

TEST_F(ConfigTest, FileOverridesDefaults) {
  config c = load_ok(R"({
    "listen": "127.0.0.1:9100", "data_dir": "/srv/bellhop", "public_url": "https://gw.example.com",
    "shutdown_timeout_ms": 3000,
    "http": {"threads": 4, "max_body_bytes": 65536, "read_timeout_ms": 1000,
             "idle_timeout_ms": 2000, "max_connections": 50},
    "redis": {"url": "redis://user:pw@redis:6379/2", "key_prefix": "hotel:",
              "command_timeout_ms": 100, "connect_timeout_ms": 200,
              "embedded": {"port": 0, "durability": "always", "maxmemory": "512mb",
                           "redis_server": "/usr/bin/redis-server"}},
    "log": {"level": "debug", "format": "json"},
    "auth": {"adapter_keys": [{"name": "wa", "key": "0123456789abcdef0123",
                               "properties": ["hotel-berlin", "hotel-paris"]}],
             "jwt_secret": "j", "admin_token": "a"},
    "ratelimit": {"policies": {"api": {"algorithm": "gcra", "limit": 10, "window_ms": 1000,
                                       "burst": 5}},
                  "inbound_api": "api"},
    "channels": {"whatsapp": {"app_secret": "s", "verify_token": "v", "access_token": "t",
                              "phone_number_id": "p", "property_id": "hotel-berlin"},
                 "twilio": {"account_sid": "AC1", "auth_token": "tok", "from": "+15550001",
                            "api_base_url": "http://localhost:9999",
                            "property_id": "hotel-berlin"},
                 "email": {"webhook_secret": "w", "from_address": "frontdesk@hotel.example",
                           "from_name": "Hotel Berlin", "smtp_url": "smtps://mail.example:465",
                           "smtp_username": "u", "smtp_password": "pw",
                           "smtp_ca_file": "/etc/ssl/mail-ca.pem",
                           "property_id": "hotel-berlin"}}
  })");
  EXPECT_EQ(c.source_file, path_);
  EXPECT_EQ(c.listen, "127.0.0.1:9100");
  EXPECT_EQ(c.data_dir, "/srv/bellhop");
  EXPECT_EQ(c.public_url, "https://gw.example.com");
  EXPECT_EQ(c.shutdown_timeout_ms, 3000);
  EXPECT_EQ(c.http.threads, 4);
  EXPECT_EQ(c.http.max_body_bytes, 65536u);
  EXPECT_EQ(c.http.read_timeout_ms, 1000);
  EXPECT_EQ(c.http.idle_timeout_ms, 2000);
  EXPECT_EQ(c.http.max_connections, 50u);
  EXPECT_EQ(c.redis.url, "redis://user:pw@redis:6379/2");
  EXPECT_EQ(c.redis.key_prefix, "hotel:");
  EXPECT_EQ(c.redis.command_timeout_ms, 100);
  EXPECT_EQ(c.redis.connect_timeout_ms, 200);
  EXPECT_EQ(c.redis.embedded.port, 0);
  EXPECT_EQ(c.redis.embedded.durability, "always");
  EXPECT_EQ(c.redis.embedded.maxmemory, "512mb");
  EXPECT_EQ(c.redis.embedded.redis_server, "/usr/bin/redis-server");
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.format, "json");
  ASSERT_EQ(c.auth.adapter_keys.size(), 1u);
  EXPECT_EQ(c.auth.adapter_keys[0].name, "wa");
  EXPECT_EQ(c.auth.adapter_keys[0].key, "0123456789abcdef0123");
  EXPECT_THAT(c.auth.adapter_keys[0].properties, ElementsAre("hotel-berlin", "hotel-paris"));
  EXPECT_EQ(c.auth.jwt_secret, "j");
  EXPECT_EQ(c.auth.admin_token, "a");
  ASSERT_EQ(c.ratelimit.policies.count("api"), 1u);
  const ratelimit_policy& p = c.ratelimit.policies.at("api");
  EXPECT_EQ(p.algorithm, "gcra");
  EXPECT_EQ(p.limit, 10);
  EXPECT_EQ(p.window_ms, 1000);
  EXPECT_EQ(p.burst, 5);
  EXPECT_EQ(c.ratelimit.inbound_api, "api");
  ASSERT_TRUE(c.channels.whatsapp.has_value());
  EXPECT_EQ(c.channels.whatsapp->app_secret, "s");
  EXPECT_EQ(c.channels.whatsapp->phone_number_id, "p");
  EXPECT_EQ(c.channels.whatsapp->property_id, "hotel-berlin");
  EXPECT_EQ(c.channels.whatsapp->api_base_url, "https://graph.facebook.com/v21.0");
  ASSERT_TRUE(c.channels.twilio.has_value());
  EXPECT_EQ(c.channels.twilio->from, "+15550001");
  EXPECT_EQ(c.channels.twilio->api_base_url, "http://localhost:9999");
  ASSERT_TRUE(c.channels.email.has_value());
  EXPECT_EQ(c.channels.email->webhook_secret, "w");
  EXPECT_EQ(c.channels.email->from_address, "frontdesk@hotel.example");
  EXPECT_EQ(c.channels.email->from_name, "Hotel Berlin");
  EXPECT_EQ(c.channels.email->smtp_url, "smtps://mail.example:465");
  EXPECT_EQ(c.channels.email->smtp_username, "u");
  EXPECT_EQ(c.channels.email->smtp_password, "pw");
  EXPECT_EQ(c.channels.email->smtp_ca_file, "/etc/ssl/mail-ca.pem");
  EXPECT_EQ(c.channels.email->property_id, "hotel-berlin");
}

TEST_F(ConfigTest, CommentsAndTrailingCommasAreAccepted) {
  config c = load_ok(R"(// leading comment
{
  /* block comment */
  "listen": ":8081", // trailing line comment
  "http": { "threads": 2, },
  "auth": { "adapter_keys": [ { "name": "a", "key": "0123456789abcdef", "properties": ["*",], }, ], },
}
)");
  EXPECT_EQ(c.listen, ":8081");
  EXPECT_EQ(c.http.threads, 2);
  ASSERT_EQ(c.auth.adapter_keys.size(), 1u);
  EXPECT_THAT(c.auth.adapter_keys[0].properties, ElementsAre("*"));
}

TEST_F(ConfigTest, Utf8ByteOrderMarkIsSkipped) {
  config c = load_ok("\xEF\xBB\xBF{\"listen\": \":8082\"}");
  EXPECT_EQ(c.listen, ":8082");
}

TEST_F(ConfigTest, InvalidJsonReportsLineAndColumn) {
  EXPECT_EQ(file_error("{\n  \"listen\": \":1\",\n  \"data_dir\": \"/x\"\n  \"log\": {}\n}\n"),
            "line 4, column 3: invalid JSON: Missing a comma or '}' after an object member.");
  // Columns count characters, not bytes.
  EXPECT_EQ(file_error("{\"data_dir\": \"/ü\" x}"),
            "line 1, column 19: invalid JSON: Missing a comma or '}' after an object member.");
  EXPECT_EQ(file_error(""), "line 1, column 1: invalid JSON: The document is empty.");
}

TEST_F(ConfigTest, TopLevelMustBeAnObject) {
  EXPECT_EQ(file_error("[1, 2]"), "the top level must be a JSON object");
}

TEST_F(ConfigTest, UnknownKeysAreErrorsNamingTheDottedPath) {
  EXPECT_EQ(file_error(R"({"lisen": ":1"})"), "unknown key 'lisen'");
  EXPECT_EQ(file_error(R"({"redis": {"urll": "embedded"}})"), "unknown key 'redis.urll'");
  EXPECT_EQ(file_error(R"({"redis": {"embedded": {"prot": 1}}})"),
            "unknown key 'redis.embedded.prot'");
  EXPECT_EQ(file_error(R"({"channels": {"whatsapp": {"app_secrett": "x"}}})"),
            "unknown key 'channels.whatsapp.app_secrett'");
  EXPECT_EQ(file_error(R"({"channels": {"telegram": {}}})"), "unknown key 'channels.telegram'");
  EXPECT_EQ(file_error(R"({"auth": {"adapter_keys": [{"nme": "a"}]}})"),
            "unknown key 'auth.adapter_keys[0].nme'");
  EXPECT_EQ(file_error(R"({"ratelimit": {"policies": {"api": {"algorithm": "gcra",
              "limitt": 1}}}})"),
            "unknown key 'ratelimit.policies.api.limitt'");
  EXPECT_EQ(file_error(R"({"http.threads": 4})"),
            "key 'http.threads' contains '.': write nested objects instead");
}

TEST_F(ConfigTest, DuplicateKeysAreErrors) {
  EXPECT_EQ(file_error(R"({"listen": ":1", "listen": ":2"})"), "duplicate key 'listen'");
  EXPECT_EQ(file_error(R"({"auth": {"adapter_keys": [{"name": "a", "name": "b"}]}})"),
            "duplicate key 'auth.adapter_keys[0].name'");
}

struct validation_case {
  std::string json;
  std::string error;  // after "config <path>: "
};

class ConfigValidationTest : public ConfigTest,
                             public ::testing::WithParamInterface<validation_case> {};

TEST_P(ConfigValidationTest, ErrorNamesTheKey) {
  EXPECT_EQ(file_error(GetParam().json), GetParam().error) << GetParam().json;
}

std::string key_entry(const std::string& fields) {
  return R"({"auth": {"adapter_keys": [)" + fields + "]}}";
}
std::string policy(const std::string& fields) {
  return R"({"ratelimit": {"policies": {"api": )" + fields + "}}}";
}

INSTANTIATE_TEST_SUITE_P(
    Keys, ConfigValidationTest,
    ::testing::Values(
        // Types.
        validation_case{R"({"listen": 8080})", "'listen' must be a string"},
        validation_case{R"({"http": 5})", "'http' must be an object"},
        validation_case{R"({"http": {"threads": 1.5}})", "'http.threads' must be an integer"},
        validation_case{R"({"http": {"threads": "4"}})", "'http.threads' must be an integer"},
        validation_case{R"({"http": {"threads": null}})", "'http.threads' must be an integer"},
        validation_case{R"({"http": {"threads": 3000000000}})",
                        "'http.threads' must be at most 2147483647"},
        validation_case{R"({"http": {"max_body_bytes": 18446744073709551615}})",
                        "'http.max_body_bytes' is out of range"},
        validation_case{R"({"auth": {"jwt_secret": 5}})", "'auth.jwt_secret' must be a string"},
        validation_case{R"({"channels": {"twilio": []}})", "'channels.twilio' must be an object"},
        // Values.
        validation_case{R"({"listen": "0.0.0.0:70000"})",
                        "'listen' must be host:port, [ipv6]:port or :port (the port must be "
                        "between 0 and 65535)"},
        validation_case{R"({"listen": "8080"})",
                        "'listen' must be host:port, [ipv6]:port or :port (the port is missing)"},
        validation_case{R"({"data_dir": ""})", "'data_dir' must not be empty"},
        validation_case{R"({"public_url": "gateway.example.com"})",
                        "'public_url' must be an http:// or https:// URL"},
        validation_case{R"({"shutdown_timeout_ms": 0})",
                        "'shutdown_timeout_ms' must be a positive integer"},
        validation_case{R"({"http": {"threads": -1}})",
                        "'http.threads' must be a non-negative integer"},
        validation_case{R"({"http": {"max_body_bytes": 0}})",
                        "'http.max_body_bytes' must be a positive integer"},
        validation_case{R"({"http": {"max_body_bytes": -1}})",
                        "'http.max_body_bytes' must be a positive integer"},
        validation_case{R"({"http": {"read_timeout_ms": 0}})",
                        "'http.read_timeout_ms' must be a positive integer"},
        validation_case{R"({"http": {"idle_timeout_ms": -3}})",
                        "'http.idle_timeout_ms' must be a positive integer"},
        validation_case{R"({"http": {"max_connections": 0}})",
                        "'http.max_connections' must be a positive integer"},
        validation_case{R"({"redis": {"url": "http://redis:6379"}})",
                        "'redis.url' must be \"embedded\", redis://[user:password@]host:port[/db] "
                        "or unix:///path"},
        validation_case{R"({"redis": {"url": "redis://"}})",
                        "'redis.url' must be \"embedded\", redis://[user:password@]host:port[/db] "
                        "or unix:///path"},
        validation_case{R"({"redis": {"key_prefix": "my app:"}})",
                        "'redis.key_prefix' must not contain spaces or control characters"},
        validation_case{R"({"redis": {"command_timeout_ms": 0}})",
                        "'redis.command_timeout_ms' must be a positive integer"},
        validation_case{R"({"redis": {"connect_timeout_ms": 0}})",
                        "'redis.connect_timeout_ms' must be a positive integer"},
        validation_case{R"({"redis": {"embedded": {"port": 65536}}})",
                        "'redis.embedded.port' must be a port number (0-65535)"},
        validation_case{R"({"redis": {"embedded": {"port": -1}}})",
                        "'redis.embedded.port' must be a port number (0-65535)"},
        validation_case{R"({"redis": {"embedded": {"durability": "no"}}})",
                        "'redis.embedded.durability' must be one of everysec, always"},
        validation_case{R"({"redis": {"embedded": {"maxmemory": "lots"}}})",
                        "'redis.embedded.maxmemory' must be empty (sized from the machine), 0 "
                        "(no limit) or a size such as 512mb"},
        validation_case{R"({"redis": {"embedded": {"maxmemory": "1gb\nbind 0.0.0.0"}}})",
                        "'redis.embedded.maxmemory' must be empty (sized from the machine), 0 "
                        "(no limit) or a size such as 512mb"},
        validation_case{R"({"redis": {"embedded": {"redis_server": ""}}})",
                        "'redis.embedded.redis_server' must not be empty"},
        validation_case{R"({"log": {"level": "verbose"}})",
                        "'log.level' must be one of trace, debug, info, warn, error"},
        validation_case{R"({"log": {"format": "xml"}})", "'log.format' must be one of text, json"},
        validation_case{R"({"data_dir": "/a\u0000b"})",
                        "'data_dir' must not contain NUL characters"},
        // Adapter keys.
        validation_case{R"({"auth": {"adapter_keys": {}}})",
                        "'auth.adapter_keys' must be an array of objects"},
        validation_case{key_entry("5"), "'auth.adapter_keys[0]' must be an object"},
        validation_case{key_entry(R"({"key": "0123456789abcdef", "properties": ["*"]})"),
                        "'auth.adapter_keys[0].name' is required"},
        validation_case{
            key_entry(R"({"name": "", "key": "0123456789abcdef", "properties": ["*"]})"),
            "'auth.adapter_keys[0].name' must not be empty"},
        validation_case{key_entry(R"({"name": "a", "properties": ["*"]})"),
                        "'auth.adapter_keys[0].key' is required"},
        validation_case{key_entry(R"({"name": "a", "key": "short", "properties": ["*"]})"),
                        "'auth.adapter_keys[0].key' must be at least 16 characters long"},
        validation_case{
            key_entry(R"({"name": "a", "key": "0123456789 abcdef", "properties": ["*"]})"),
            "'auth.adapter_keys[0].key' must contain only printable ASCII characters "
            "without spaces"},
        validation_case{key_entry(R"({"name": "a", "key": "0123456789abcdef"})"),
                        "'auth.adapter_keys[0].properties' is required"},
        validation_case{key_entry(R"({"name": "a", "key": "0123456789abcdef", "properties": []})"),
                        "'auth.adapter_keys[0].properties' must be a non-empty array of strings"},
        validation_case{key_entry(R"({"name": "a", "key": "0123456789abcdef", "properties": "*"})"),
                        "'auth.adapter_keys[0].properties' must be a non-empty array of strings"},
        validation_case{key_entry(R"({"name": "a", "key": "0123456789abcdef",
                                      "properties": ["x", 1]})"),
                        "'auth.adapter_keys[0].properties[1]' must be a non-empty string"},
        validation_case{key_entry(R"({"name": "a", "key": "0123456789abcdef", "properties": ["*"]},
                                     {"name": "a", "key": "fedcba9876543210", "properties": ["*"]})"),
                        "'auth.adapter_keys[1].name' is already used by auth.adapter_keys[0]"},
        validation_case{key_entry(R"({"name": "a", "key": "0123456789abcdef", "properties": ["*"]},
                                     {"name": "b", "key": "0123456789abcdef", "properties": ["*"]})"),
                        "'auth.adapter_keys[1].key' is the same as auth.adapter_keys[0]"},
        // Rate limits.
        validation_case{R"({"ratelimit": {"policies": []}})",
                        "'ratelimit.policies' must be an object"},
        validation_case{policy(R"({"algorithm": "token_bucket", "limit": 1, "window_ms": 1})"),
                        "'ratelimit.policies.api.algorithm' must be one of fixed_window, "
                        "sliding_window, gcra"},
        validation_case{policy(R"({"limit": 1, "window_ms": 1})"),
                        "'ratelimit.policies.api.algorithm' is required"},
        validation_case{policy(R"({"algorithm": "gcra", "limit": 0, "window_ms": 1})"),
                        "'ratelimit.policies.api.limit' must be a positive integer"},
        validation_case{policy(R"({"algorithm": "gcra", "limit": 1})"),
                        "'ratelimit.policies.api.window_ms' is required"},
        validation_case{policy(R"({"algorithm": "gcra", "limit": 1, "window_ms": 1, "burst": -1})"),
                        "'ratelimit.policies.api.burst' must be a non-negative integer"},
        validation_case{R"({"ratelimit": {"policies": {"my api": {"algorithm": "gcra", "limit": 1,
                                                                  "window_ms": 1}}}})",
                        "'ratelimit.policies.my api' is not a valid policy name: it must contain "
                        "only letters, digits, '-', '_' and '.'"},
        validation_case{R"({"ratelimit": {"inbound_api": "nope"}})",
                        "'ratelimit.inbound_api' names policy 'nope', which is not defined in "
                        "ratelimit.policies"},
        validation_case{
            policy(R"({"algorithm": "gcra", "limit": 1, "window_ms": 1, "fail": "maybe"})"),
            "'ratelimit.policies.api.fail' must be one of open, closed"},
        validation_case{
            policy(R"({"algorithm": "sliding_window", "limit": 200000, "window_ms": 1})"),
            "'ratelimit.policies.api' sliding_window keeps one entry per unit: limit "
            "must be at most 100000 (use gcra or fixed_window for more)"},
        validation_case{R"({"ratelimit": {"staff_replies": "nope"}})",
                        "'ratelimit.staff_replies' names policy 'nope', which is not defined in "
                        "ratelimit.policies"},
        validation_case{R"({"realtime": {"heartbeat_s": 75, "idle_timeout_s": 75}})",
                        "'realtime.heartbeat_s' must be less than realtime.idle_timeout_s (75)"},
        // Channels.
        validation_case{R"({"channels": {"whatsapp": {}}})",
                        "'channels.whatsapp.app_secret' is required when channels.whatsapp is "
                        "configured"},
        validation_case{R"({"channels": {"whatsapp": {"app_secret": "s", "verify_token": "v",
                              "access_token": "a"}}})",
                        "'channels.whatsapp.phone_number_id' is required when channels.whatsapp "
                        "is configured"},
        validation_case{R"({"channels": {"whatsapp": {"app_secret": ""}}})",
                        "'channels.whatsapp.app_secret' must not be empty"},
        validation_case{R"({"channels": {"whatsapp": {"api_base_url": "graph.facebook.com"}}})",
                        "'channels.whatsapp.api_base_url' must be an http:// or https:// URL"},
        validation_case{R"({"channels": {"twilio": {"account_sid": "AC", "auth_token": "t"}}})",
                        "'channels.twilio.from' is required when channels.twilio is configured"},
        validation_case{R"({"channels": {"email": {"from_address": "a@b.example"}}})",
                        "'channels.email.webhook_secret' is required when channels.email is "
                        "configured"},
        validation_case{R"({"channels": {"email": {"smtp_url": "http://mail.example"}}})",
                        "'channels.email.smtp_url' must be smtp://host[:port] (STARTTLS) or "
                        "smtps://host[:port]"},
        validation_case{R"({"channels": {"email": {"from_address": "Front Desk <fd@h.example>"}}})",
                        "'channels.email.from_address' must be an email address (local@domain)"},
        validation_case{R"({"channels": {"email": {"from_address": "no-at-sign"}}})",
                        "'channels.email.from_address' must be an email address (local@domain)"}));

TEST_F(ConfigTest, PublicUrlLosesTrailingSlash) {
  EXPECT_EQ(load_ok(R"({"public_url": "https://gw.example.com/"})").public_url,
            "https://gw.example.com");
}

TEST_F(ConfigTest, EnvironmentSetsEveryKindOfScalar) {
  auto r = load({{"BELLHOP_LISTEN", "[::1]:8443"},
                 {"BELLHOP_DATA_DIR", "/data"},
                 {"BELLHOP_SHUTDOWN_TIMEOUT_MS", "1500"},
                 {"BELLHOP_HTTP_THREADS", "12"},
                 {"BELLHOP_HTTP_MAX_BODY_BYTES", "2048"},
                 {"BELLHOP_HTTP_MAX_CONNECTIONS", "7"},
                 {"BELLHOP_REDIS_URL", "unix:///run/redis.sock"},
                 {"BELLHOP_REDIS_KEY_PREFIX", "bh:"},
                 {"BELLHOP_REDIS_EMBEDDED_PORT", "0"},
                 {"BELLHOP_REDIS_EMBEDDED_DURABILITY", "always"},
                 {"BELLHOP_REDIS_EMBEDDED_MAXMEMORY", "1G"},
                 {"BELLHOP_REDIS_EMBEDDED_REDIS_SERVER", "/opt/redis-server"},
                 {"BELLHOP_LOG_LEVEL", "warn"},
                 {"BELLHOP_LOG_FORMAT", "json"},
                 {"BELLHOP_AUTH_JWT_SECRET", "jwt"},
                 {"BELLHOP_AUTH_ADMIN_TOKEN", "admin"},
                 {"BELLHOP_PUBLIC_URL", ""}});
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->listen, "[::1]:8443");
  EXPECT_EQ(r->data_dir, "/data");
  EXPECT_EQ(r->shutdown_timeout_ms, 1500);
  EXPECT_EQ(r->http.threads, 12);
  EXPECT_EQ(r->http.max_body_bytes, 2048u);
  EXPECT_EQ(r->http.max_connections, 7u);
  EXPECT_EQ(r->redis.url, "unix:///run/redis.sock");
  EXPECT_EQ(r->redis.key_prefix, "bh:");
  EXPECT_EQ(r->redis.embedded.port, 0);
  EXPECT_EQ(r->redis.embedded.durability, "always");
  EXPECT_EQ(r->redis.embedded.maxmemory, "1G");
  EXPECT_EQ(r->redis.embedded.redis_server, "/opt/redis-server");
  EXPECT_EQ(r->log.level, "warn");
  EXPECT_EQ(r->log.format, "json");
  EXPECT_EQ(r->auth.jwt_secret, "jwt");
  EXPECT_EQ(r->auth.admin_token, "admin");
  EXPECT_EQ(r->public_url, "");
  EXPECT_THAT(r->unknown_env, IsEmpty());
}

TEST_F(ConfigTest, EnvironmentIntegersAreParsedStrictly) {
  for (const char* bad : {"12x", " 12", "12 ", "+12", "", "1.0", "0x10", "1e3"}) {
    EXPECT_EQ(env_error({{"BELLHOP_HTTP_THREADS", bad}}),
              "environment BELLHOP_HTTP_THREADS: must be an integer")
        << "value '" << bad << "'";
  }
  EXPECT_EQ(env_error({{"BELLHOP_HTTP_THREADS", "-1"}}),
            "environment BELLHOP_HTTP_THREADS: must be a non-negative integer");
  EXPECT_EQ(env_error({{"BELLHOP_HTTP_MAX_BODY_BYTES", "99999999999999999999"}}),
            "environment BELLHOP_HTTP_MAX_BODY_BYTES: is out of range");
  EXPECT_EQ(env_error({{"BELLHOP_REDIS_EMBEDDED_PORT", "65536"}}),
            "environment BELLHOP_REDIS_EMBEDDED_PORT: must be a port number (0-65535)");
}

TEST_F(ConfigTest, EnvironmentValuesAreValidatedLikeFileValues) {
  EXPECT_EQ(env_error({{"BELLHOP_LOG_LEVEL", "loud"}}),
            "environment BELLHOP_LOG_LEVEL: must be one of trace, debug, info, warn, error");
  EXPECT_EQ(env_error({{"BELLHOP_REDIS_URL", "mysql://db"}}),
            "environment BELLHOP_REDIS_URL: must be \"embedded\", "
            "redis://[user:password@]host:port[/db] or unix:///path");
  EXPECT_EQ(env_error({{"BELLHOP_RATELIMIT_INBOUND_API", "missing"}}),
            "environment BELLHOP_RATELIMIT_INBOUND_API: names policy 'missing', which is not "
            "defined in ratelimit.policies");
}

TEST_F(ConfigTest, EnvironmentCreatesChannelSections) {
  auto r = load({{"BELLHOP_CHANNELS_TWILIO_ACCOUNT_SID", "AC1"},
                 {"BELLHOP_CHANNELS_TWILIO_AUTH_TOKEN", "tok"},
                 {"BELLHOP_CHANNELS_TWILIO_FROM", "+1555"},
                 {"BELLHOP_CHANNELS_TWILIO_PROPERTY_ID", "hotel-berlin"}});
  ASSERT_TRUE(r.has_value()) << r.error();
  ASSERT_TRUE(r->channels.twilio.has_value());
  EXPECT_EQ(r->channels.twilio->account_sid, "AC1");
  EXPECT_EQ(r->channels.twilio->api_base_url, "https://api.twilio.com");
  EXPECT_FALSE(r->channels.whatsapp.has_value());

  auto incomplete = load({{"BELLHOP_CHANNELS_WHATSAPP_APP_SECRET", "s"}});
  ASSERT_FALSE(incomplete.has_value());
  EXPECT_EQ(incomplete.error(),
            "environment BELLHOP_CHANNELS_WHATSAPP_APP_SECRET: 'channels.whatsapp.verify_token' is "
            "required when channels.whatsapp is configured");
}

TEST_F(ConfigTest, EnvironmentCompletesAChannelFromTheFile) {
  config c = load_ok(R"({"channels": {"whatsapp": {"app_secret": "s", "verify_token": "v",
                                                    "phone_number_id": "p",
                                                    "property_id": "hotel-berlin"}}})",
                     {{"BELLHOP_CHANNELS_WHATSAPP_ACCESS_TOKEN", "from-env"}});
  ASSERT_TRUE(c.channels.whatsapp.has_value());
  EXPECT_EQ(c.channels.whatsapp->access_token, "from-env");
  EXPECT_EQ(c.channels.whatsapp->app_secret, "s");
}

TEST_F(ConfigTest, WhatsappServiceWindowDefaultsToADayAndIsConfigurable) {
  const std::string whatsapp = R"("app_secret": "s", "verify_token": "v", "access_token": "t",
                                  "phone_number_id": "p", "property_id": "hotel-berlin")";
  config c = load_ok(R"({"channels": {"whatsapp": {)" + whatsapp + "}}}");
  ASSERT_TRUE(c.channels.whatsapp.has_value());
  EXPECT_EQ(c.channels.whatsapp->service_window_s, 86400);
  c = load_ok(R"({"channels": {"whatsapp": {"service_window_s": 2, )" + whatsapp + "}}}");
  EXPECT_EQ(c.channels.whatsapp->service_window_s, 2);
  c = load_ok(R"({"channels": {"whatsapp": {)" + whatsapp + "}}}",
              {{"BELLHOP_CHANNELS_WHATSAPP_SERVICE_WINDOW_S", "0"}});
  EXPECT_EQ(c.channels.whatsapp->service_window_s, 0);
  EXPECT_EQ(file_error(R"({"channels": {"whatsapp": {"service_window_s": -1, )" + whatsapp + "}}}"),
            "'channels.whatsapp.service_window_s' must be a non-negative integer");
}

TEST_F(ConfigTest, UnknownEnvironmentVariablesAreWarningsNotErrors) {
  auto r = load({{"BELLHOP_HTTP_THREDS", "4"},
                 {"BELLHOP_CONFIG", ""},
                 {"PATH", "/usr/bin"},
                 {"BELLHOPPER", "x"}});
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_THAT(r->unknown_env, ElementsAre("BELLHOP_HTTP_THREDS"));
  EXPECT_THAT(config_warnings(*r),
              Contains("unknown environment variable BELLHOP_HTTP_THREDS is ignored"));
}

TEST_F(ConfigTest, PrecedenceIsFlagsOverEnvironmentOverFileOverDefaults) {
  const std::string file = R"({"listen": "127.0.0.1:1001", "data_dir": "/file",
                               "redis": {"url": "redis://file:6379"}, "http": {"threads": 3}})";
  const env_map env = {{"BELLHOP_LISTEN", "127.0.0.1:2002"},
                       {"BELLHOP_DATA_DIR", "/env"},
                       {"BELLHOP_REDIS_URL", "redis://env:6379"},
                       {"BELLHOP_HTTP_THREADS", "5"}};
  config_overrides flags;
  flags.listen = "127.0.0.1:3003";
  flags.data_dir = "/flag";
  flags.redis_url = "redis://flag:6379";

  config from_file = load_ok(file);
  EXPECT_EQ(from_file.listen, "127.0.0.1:1001");
  EXPECT_EQ(from_file.data_dir, "/file");
  EXPECT_EQ(from_file.redis.url, "redis://file:6379");
  EXPECT_EQ(from_file.http.threads, 3);
  EXPECT_EQ(from_file.http.max_body_bytes, 1048576u);  // default survives

  config from_env = load_ok(file, env);
  EXPECT_EQ(from_env.listen, "127.0.0.1:2002");
  EXPECT_EQ(from_env.data_dir, "/env");
  EXPECT_EQ(from_env.redis.url, "redis://env:6379");
  EXPECT_EQ(from_env.http.threads, 5);

  config from_flags = load_ok(file, env, flags);
  EXPECT_EQ(from_flags.listen, "127.0.0.1:3003");
  EXPECT_EQ(from_flags.data_dir, "/flag");
  EXPECT_EQ(from_flags.redis.url, "redis://flag:6379");
  EXPECT_EQ(from_flags.http.threads, 5);

  // Flags also win over the file alone.
  config flags_over_file = load_ok(file, {}, flags);
  EXPECT_EQ(flags_over_file.listen, "127.0.0.1:3003");
}

TEST_F(ConfigTest, FlagErrorsNameTheFlag) {
  config_overrides flags;
  flags.listen = "localhost";
  auto r = load({}, flags);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(),
            "option --listen: must be host:port, [ipv6]:port or :port (the port is missing)");

  config_overrides redis;
  redis.redis_url = "tcp://x";
  EXPECT_THAT(load({}, redis).error(), HasSubstr("option --redis: must be \"embedded\""));

  config_overrides data_dir;
  data_dir.data_dir = "";
  EXPECT_EQ(load({}, data_dir).error(), "option --data-dir: must not be empty");

  config_overrides config_file;
  config_file.config_file = "";
  EXPECT_EQ(load({}, config_file).error(), "option --config: must not be empty");
}

TEST(ParseListenTest, AcceptsHostPortForms) {
  struct ok_case {
    std::string text, host;
    std::uint16_t port;
  };
  for (const auto& c :
       {ok_case{"0.0.0.0:8080", "0.0.0.0", 8080}, ok_case{"127.0.0.1:1", "127.0.0.1", 1},
        ok_case{"localhost:0", "localhost", 0},
        ok_case{"gw.example.com:65535", "gw.example.com", 65535},
        ok_case{"[::1]:8080", "::1", 8080}, ok_case{"[::]:443", "::", 443},
        ok_case{"[fe80::1%eth0]:80", "fe80::1%eth0", 80}, ok_case{":8080", "0.0.0.0", 8080}}) {
    auto r = parse_listen(c.text);
    ASSERT_TRUE(r.has_value()) << c.text << ": " << r.error();
    EXPECT_EQ(r->host, c.host) << c.text;
    EXPECT_EQ(r->port, c.port) << c.text;
  }
}

TEST(ParseListenTest, RejectsMalformedAddresses) {
  struct bad_case {
    std::string text, error;
  };
  for (const auto& c : {
           bad_case{"", "it is empty"},
           bad_case{"8080", "the port is missing"},
           bad_case{"host:", "the port must be a number"},
           bad_case{"host:80x", "the port must be a number"},
           bad_case{"host:-1", "the port must be a number"},
           bad_case{"host:+1", "the port must be a number"},
           bad_case{"host: 1", "the port must be a number"},
           bad_case{"host:65536", "the port must be between 0 and 65535"},
           bad_case{"host:99999999999999999999", "the port must be between 0 and 65535"},
           bad_case{"::1:8080", "IPv6 addresses must be written in brackets, e.g. [::1]:8080"},
           bad_case{"[::1]8080", "expected ':port' after ']'"},
           bad_case{"[::1:8080", "missing ']' after the IPv6 address"},
           bad_case{"[not-v6]:80", "'not-v6' is not an IPv6 address"},
           bad_case{"bad_host!:80", "'bad_host!' is not a valid host name"},
       }) {
    auto r = parse_listen(c.text);
    ASSERT_FALSE(r.has_value()) << c.text;
    EXPECT_EQ(r.error(), "invalid listen address '" + c.text + "': " + c.error);
  }
}

TEST(EnvironmentMapTest, SplitsAtTheFirstEqualsSign) {
  std::string a1 = "A=1", b = "B=x=y", bare = "NOEQ", a2 = "A=2", empty = "E=";
  char* envp[] = {a1.data(), b.data(), bare.data(), a2.data(), empty.data(), nullptr};
  auto env = environment_map(envp);
  EXPECT_EQ(env, (env_map{{"A", "1"}, {"B", "x=y"}, {"E", ""}}));
  EXPECT_THAT(environment_map(nullptr), IsEmpty());
}

TEST_F(ConfigTest, WarningsForAnUnsafeButValidSetup) {
  auto defaults = load();
  ASSERT_TRUE(defaults.has_value());
  auto warnings = config_warnings(*defaults);
  EXPECT_THAT(warnings, Contains(HasSubstr("auth.adapter_keys is empty")));
  EXPECT_THAT(warnings, Contains(HasSubstr("auth.jwt_secret is empty")));
  EXPECT_THAT(warnings, Contains(HasSubstr("auth.admin_token is empty")));
  EXPECT_THAT(warnings, Not(Contains(HasSubstr("redis.embedded.port"))));
  EXPECT_THAT(warnings, Not(Contains(HasSubstr("public_url"))));

  config c = load_ok(R"({
    "redis": {"embedded": {"port": 0}},
    "auth": {"jwt_secret": "short", "admin_token": "x",
             "adapter_keys": [{"name": "a", "key": "0123456789abcdef", "properties": ["*"]}]},
    "ratelimit": {"policies": {"api": {"algorithm": "fixed_window", "limit": 1, "window_ms": 1,
                                       "burst": 3}}},
    "channels": {"twilio": {"account_sid": "AC", "auth_token": "t", "from": "+1",
                            "property_id": "hotel-berlin"}}
  })");
  warnings = config_warnings(c);
  EXPECT_THAT(warnings, Contains(HasSubstr("redis.embedded.port is 0")));
  EXPECT_THAT(warnings, Contains(HasSubstr("public_url is empty but channels are configured")));
  EXPECT_THAT(warnings, Contains(HasSubstr("auth.jwt_secret is shorter than 32 characters")));
  EXPECT_THAT(warnings, Contains("ratelimit.policies.api.burst is ignored: only gcra uses it"));
  EXPECT_THAT(warnings, Not(Contains(HasSubstr("adapter_keys"))));
  EXPECT_THAT(warnings, Not(Contains(HasSubstr("admin_token"))));
}

TEST_F(ConfigTest, GeneratedConfigLoadsBackWithoutErrorsOrWarnings) {
  const std::string data_dir = "/srv/my \"bellhop\" \\ data";
  std::string text = generate_config_text(data_dir, "127.0.0.1:9090");
  auto r = load_json(text);
  ASSERT_TRUE(r.has_value()) << r.error() << "\n" << text;
  EXPECT_EQ(r->data_dir, data_dir);
  EXPECT_EQ(r->listen, "127.0.0.1:9090");
  EXPECT_EQ(r->redis.url, "embedded");
  ASSERT_EQ(r->auth.adapter_keys.size(), 1u);
  EXPECT_EQ(r->auth.adapter_keys[0].name, "default-adapter");
  EXPECT_THAT(r->auth.adapter_keys[0].properties, ElementsAre("*"));
  EXPECT_EQ(r->auth.adapter_keys[0].key.size(), 43u);  // 32 bytes, base64url
  EXPECT_EQ(r->auth.jwt_secret.size(), 43u);
  EXPECT_EQ(r->auth.admin_token.size(), 43u);
  EXPECT_NE(r->auth.jwt_secret, r->auth.admin_token);
  EXPECT_THAT(config_warnings(*r), IsEmpty());
  EXPECT_THAT(text, HasSubstr("//"));  // commented

  auto again = load_json(generate_config_text(data_dir, "127.0.0.1:9090"));
  ASSERT_TRUE(again.has_value()) << again.error();
  EXPECT_NE(again->auth.jwt_secret, r->auth.jwt_secret);
  EXPECT_NE(again->auth.admin_token, r->auth.admin_token);
  EXPECT_NE(again->auth.adapter_keys[0].key, r->auth.adapter_keys[0].key);
}

mode_t file_mode(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

// Makes the test independent of the runner's umask, and proves the mode does not come from it.
class permissive_umask {
 public:
  permissive_umask() : old_(::umask(0)) {}
  ~permissive_umask() { ::umask(old_); }

 private:
  mode_t old_;
};

TEST_F(ConfigTest, SecretFileIsCreatedWithMode0600) {
  permissive_umask umask;
  fs::path path = dir_ / "config.json";
  auto r = write_secret_file(path, "secret text", false);
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(file_mode(path), 0600u);
  EXPECT_EQ(read(path), "secret text");
}

TEST_F(ConfigTest, SecretFileRefusesToOverwriteWithoutForce) {
  fs::path path = write("config.json", "original");
  auto r = write_secret_file(path, "new", false);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), path.string() + " already exists; refusing to overwrite it");
  EXPECT_EQ(read(path), "original");

  // Nor through a symlink (which could point anywhere).
  fs::path link = dir_ / "link.json";
  fs::create_symlink(dir_ / "elsewhere.json", link);
  EXPECT_FALSE(write_secret_file(link, "new", false).has_value());
  EXPECT_FALSE(fs::exists(dir_ / "elsewhere.json"));
}

TEST_F(ConfigTest, SecretFileForceReplacesAndTightensMode) {
  permissive_umask umask;
  fs::path path = write("config.json", "original");
  fs::permissions(path, fs::perms(0644));
  auto r = write_secret_file(path, "replacement", true);
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(read(path), "replacement");
  EXPECT_EQ(file_mode(path), 0600u);
  // No temporary file left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(ConfigTest, SecretFileErrorsAreOneLine) {
  auto r = write_secret_file(dir_ / "no-such-dir" / "config.json", "x", false);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), "cannot create " + (dir_ / "no-such-dir" / "config.json").string() +
                           ": No such file or directory");
  auto forced = write_secret_file(dir_ / "no-such-dir" / "config.json", "x", true);
  ASSERT_FALSE(forced.has_value());
  EXPECT_THAT(forced.error(), HasSubstr("No such file or directory"));
  EXPECT_EQ(forced.error().find('\n'), std::string::npos);
}

}  // namespace
}  // namespace bellhop::gateway

namespace bellhop::gateway {
namespace {

TEST_F(ConfigTest, ConnectionLimitsAndTrustedProxies) {
  auto defaults = load();
  ASSERT_TRUE(defaults.has_value()) << defaults.error();
  EXPECT_EQ(defaults->http.max_connections_per_ip, 500u);
  EXPECT_TRUE(defaults->http.trusted_proxies.empty()) << "no header is believed by default";
  EXPECT_EQ(defaults->ratelimit.webchat_session, "webchat_session");
  EXPECT_EQ(defaults->ratelimit.webchat_ip, "webchat_ip");
  EXPECT_TRUE(defaults->ratelimit.policies.contains("webchat_session"));
  EXPECT_TRUE(defaults->ratelimit.policies.contains("webchat_ip"));

  auto c = load_ok(R"({"http": {"trusted_proxies": ["10.0.0.0/8", "::1"]},
                       "channels": {"webchat": {"property_id": "p", "max_sockets_per_ip": 7}}})");
  EXPECT_EQ(c.http.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "::1"}));
  EXPECT_EQ(c.channels.webchat->max_sockets_per_ip, 7u);
  EXPECT_EQ(file_error(R"({"http": {"trusted_proxies": ["proxy.example"]}})"),
            "'http.trusted_proxies[0]' must be an IP address or a CIDR network (10.0.0.0/8, "
            "fd00::/8)");

  auto env = load({{"BELLHOP_HTTP_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8"}});
  ASSERT_TRUE(env.has_value()) << env.error();
  EXPECT_EQ(env->http.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "fd00::/8"}));
  EXPECT_EQ(env_error({{"BELLHOP_HTTP_TRUSTED_PROXIES", "10.0.0.0/33"}}),
            "environment BELLHOP_HTTP_TRUSTED_PROXIES: '10.0.0.0/33' has a prefix length that is "
            "not 0-32");
  EXPECT_EQ(env_error({{"BELLHOP_RATELIMIT_WEBCHAT_IP", "nope"}}),
            "environment BELLHOP_RATELIMIT_WEBCHAT_IP: names policy 'nope', which is not defined "
            "in ratelimit.policies");
}

TEST_F(ConfigTest, ConsoleSessionsAndLoginLimits) {
  auto defaults = load();
  ASSERT_TRUE(defaults.has_value()) << defaults.error();
  EXPECT_EQ(defaults->console.session_ttl_s, 43200);
  EXPECT_EQ(defaults->ratelimit.console_login_user, "console_login_user");
  EXPECT_EQ(defaults->ratelimit.console_login_ip, "console_login_ip");
  EXPECT_EQ(defaults->ratelimit.policies.at("console_login_user").limit, 5);
  EXPECT_EQ(defaults->ratelimit.policies.at("console_login_ip").limit, 20);

  EXPECT_EQ(load_ok(R"({"console": {"session_ttl_s": 3600}})").console.session_ttl_s, 3600);
  auto env =
      load({{"BELLHOP_CONSOLE_SESSION_TTL_S", "600"}, {"BELLHOP_RATELIMIT_CONSOLE_LOGIN_IP", ""}});
  ASSERT_TRUE(env.has_value()) << env.error();
  EXPECT_EQ(env->console.session_ttl_s, 600);
  EXPECT_EQ(env->ratelimit.console_login_ip, "");
  EXPECT_NE(file_error(R"({"console": {"session_ttl_s": 0}})").find("'console.session_ttl_s'"),
            std::string::npos);
  EXPECT_EQ(env_error({{"BELLHOP_RATELIMIT_CONSOLE_LOGIN_USER", "nope"}}),
            "environment BELLHOP_RATELIMIT_CONSOLE_LOGIN_USER: names policy 'nope', which is not "
            "defined in ratelimit.policies");
}

// ---- many accounts per channel (docs/properties.md, "Accounts and routing") -----------------

TEST_F(ConfigTest, TheOneAccountFormIsAccountsZero) {
  const config c = load_ok(R"({"channels": {
    "whatsapp": {"app_secret": "s", "verify_token": "v", "access_token": "a",
                 "phone_number_id": "p", "property_id": "hotel-berlin"},
    "twilio": {"account_sid": "AC1", "auth_token": "t", "from": "+15550001",
               "property_id": "hotel-berlin"},
    "email": {"webhook_secret": "w", "from_address": "FrontDesk@Hotel.example",
              "smtp_url": "smtp://mail.example", "property_id": "hotel-berlin"},
    "webchat": {"property_id": "hotel-berlin", "allowed_origin": "https://hotel.example"}}})");
  ASSERT_EQ(c.channels.whatsapp->accounts.size(), 1u);
  const auto& wa = c.channels.whatsapp->accounts[0];
  EXPECT_EQ(wa.phone_number_id, "p");
  EXPECT_EQ(wa.access_token, "a");
  EXPECT_EQ(wa.app_secret, "s");
  EXPECT_EQ(wa.verify_token, "v");
  EXPECT_EQ(wa.property_id, "hotel-berlin");
  ASSERT_EQ(c.channels.twilio->accounts.size(), 1u);
  EXPECT_EQ(c.channels.twilio->accounts[0].from, "+15550001");
  EXPECT_EQ(c.channels.twilio->accounts[0].account_sid, "AC1");
  ASSERT_EQ(c.channels.email->accounts.size(), 1u);
  EXPECT_EQ(c.channels.email->accounts[0].address, "FrontDesk@Hotel.example");  // replies' From
  EXPECT_EQ(c.channels.email->accounts[0].id, "frontdesk@hotel.example");
  EXPECT_EQ(c.channels.email->accounts[0].smtp_url, "smtp://mail.example");
  ASSERT_EQ(c.channels.webchat->sites.size(), 1u);
  EXPECT_EQ(c.channels.webchat->sites[0].id, "default");
  EXPECT_EQ(c.channels.webchat->sites[0].allowed_origin, "https://hotel.example");
  const auto accounts = channel_accounts(c);
  ASSERT_EQ(accounts.at("sms").size(), 1u);
  EXPECT_EQ(accounts.at("sms")[0].id, "+15550001");
  EXPECT_EQ(accounts.at("sms")[0].property_id, "hotel-berlin");
}

TEST_F(ConfigTest, AccountsListsTakeTheSectionsSharedValues) {
  const config c = load_ok(R"({"channels": {
    "whatsapp": {"app_secret": "s", "verify_token": "v", "accounts": [
      {"property_id": "hotel-berlin", "phone_number_id": "1", "access_token": "a1"},
      {"property_id": "hotel-paris", "phone_number_id": "2", "access_token": "a2",
       "app_secret": "s2"}]},
    "twilio": {"api_base_url": "http://localhost:9", "accounts": [
      {"property_id": "hotel-berlin", "account_sid": "AC1", "auth_token": "t1", "from": "+1"},
      {"property_id": "hotel-paris", "account_sid": "AC2", "auth_token": "t2", "from": "+2"}]},
    "email": {"webhook_secret": "w", "smtp_url": "smtp://mail.example", "from_name": "Hotels",
              "accounts": [
      {"property_id": "hotel-berlin", "address": "b@berlin.example"},
      {"property_id": "hotel-paris", "address": "p@paris.example", "from_name": "Paris",
       "smtp_url": "smtps://mail.paris.example", "webhook_secret": "wp"}]},
    "webchat": {"allowed_origin": "https://hotels.example", "sites": [
      {"id": "berlin", "property_id": "hotel-berlin"},
      {"id": "paris", "property_id": "hotel-paris", "allowed_origin": "https://paris.example"}]}
  }})");
  const auto& wa = c.channels.whatsapp->accounts;
  ASSERT_EQ(wa.size(), 2u);
  EXPECT_EQ(wa[0].app_secret, "s");
  EXPECT_EQ(wa[1].app_secret, "s2");
  EXPECT_EQ(wa[1].verify_token, "v");
  EXPECT_EQ(c.channels.twilio->accounts[1].account_sid, "AC2");
  EXPECT_EQ(c.channels.twilio->api_base_url, "http://localhost:9");
  const auto& em = c.channels.email->accounts;
  EXPECT_EQ(em[0].from_name, "Hotels");
  EXPECT_EQ(em[0].smtp_url, "smtp://mail.example");
  EXPECT_EQ(em[0].webhook_secret, "w");
  EXPECT_EQ(em[1].from_name, "Paris");
  EXPECT_EQ(em[1].smtp_url, "smtps://mail.paris.example");
  EXPECT_EQ(em[1].webhook_secret, "wp");
  EXPECT_EQ(c.channels.webchat->sites[0].allowed_origin, "https://hotels.example");
  EXPECT_EQ(c.channels.webchat->sites[1].allowed_origin, "https://paris.example");
  const auto accounts = channel_accounts(c);
  ASSERT_EQ(accounts.at("whatsapp").size(), 2u);
  EXPECT_EQ(accounts.at("whatsapp")[1].id, "2");
  EXPECT_EQ(accounts.at("whatsapp")[1].property_id, "hotel-paris");
  EXPECT_EQ(accounts.at("webchat")[0].id, "berlin");
}

std::string whatsapp_accounts(const std::string& section, const std::string& accounts) {
  return R"({"channels": {"whatsapp": {)" + section + R"("accounts": [)" + accounts + "]}}}";
}

INSTANTIATE_TEST_SUITE_P(
    Accounts, ConfigValidationTest,
    ::testing::Values(
        validation_case{whatsapp_accounts(R"("app_secret": "s", "verify_token": "v", )",
                                          R"({"property_id": "p1", "phone_number_id": "1",
                                              "access_token": "a"},
                                             {"property_id": "p2", "phone_number_id": "1",
                                              "access_token": "b"})"),
                        "'channels.whatsapp.accounts[1].phone_number_id' is already used by "
                        "channels.whatsapp.accounts[0]"},
        validation_case{whatsapp_accounts(R"("verify_token": "v", )",
                                          R"({"property_id": "p1", "phone_number_id": "1",
                                              "access_token": "a"})"),
                        "'channels.whatsapp.accounts[0].app_secret' is required (in the account, "
                        "or as channels.whatsapp.app_secret for all of them)"},
        validation_case{
            whatsapp_accounts(R"("app_secret": "s", "verify_token": "v", "phone_number_id": "9", )",
                              R"({"property_id": "p1", "phone_number_id": "1",
                                "access_token": "a"})"),
            "'channels.whatsapp.phone_number_id' must not be set together with "
            "channels.whatsapp.accounts (set it in each account instead)"},
        validation_case{whatsapp_accounts(R"("app_secret": "s", "verify_token": "v", )",
                                          R"({"phone_number_id": "1", "access_token": "a"})"),
                        "'channels.whatsapp.accounts[0].property_id' is required"},
        validation_case{whatsapp_accounts(R"("app_secret": "s", "verify_token": "v", )",
                                          R"({"property_id": "no spaces", "phone_number_id": "1",
                                              "access_token": "a"})"),
                        "'channels.whatsapp.accounts[0].property_id' must be 1-64 letters, "
                        "digits, '-', '_' or '.'"},
        validation_case{whatsapp_accounts(R"("app_secret": "s", "verify_token": "v", )",
                                          R"({"property_id": "p", "phone_number_id": "1",
                                              "access_token": "a", "token": "x"})"),
                        "unknown key 'channels.whatsapp.accounts[0].token'"},
        validation_case{R"({"channels": {"whatsapp": {"accounts": []}}})",
                        "'channels.whatsapp.accounts' must be a non-empty array of objects"},
        validation_case{R"({"channels": {"twilio": {"accounts": {}}}})",
                        "'channels.twilio.accounts' must be a non-empty array of objects"},
        validation_case{R"({"channels": {"twilio": {"accounts": [
                              {"property_id": "p1", "account_sid": "AC1", "auth_token": "t",
                               "from": "+1"},
                              {"property_id": "p2", "account_sid": "AC2", "auth_token": "t",
                               "from": "+1"}]}}})",
                        "'channels.twilio.accounts[1].from' is already used by "
                        "channels.twilio.accounts[0]"},
        validation_case{R"({"channels": {"twilio": {"accounts": [
                              {"property_id": "p1", "account_sid": "AC1", "from": "+1"}]}}})",
                        "'channels.twilio.accounts[0].auth_token' is required"},
        validation_case{R"({"channels": {"email": {"webhook_secret": "w",
                              "smtp_url": "smtp://m.example", "accounts": [
                              {"property_id": "p1", "address": "A@h.example"},
                              {"property_id": "p2", "address": "a@H.example"}]}}})",
                        "'channels.email.accounts[1].address' is already used by "
                        "channels.email.accounts[0]"},
        validation_case{R"({"channels": {"email": {"webhook_secret": "w", "accounts": [
                              {"property_id": "p1", "address": "a@h.example"}]}}})",
                        "'channels.email.accounts[0].smtp_url' is required (in the account, or "
                        "as channels.email.smtp_url for all of them)"},
        validation_case{R"({"channels": {"email": {"accounts": [
                              {"property_id": "p1", "address": "not an address"}]}}})",
                        "'channels.email.accounts[0].address' must be an email address "
                        "(local@domain)"},
        validation_case{R"({"channels": {"webchat": {"sites": [
                              {"id": "s", "property_id": "p1"},
                              {"id": "s", "property_id": "p2"}]}}})",
                        "'channels.webchat.sites[1].id' is already used by "
                        "channels.webchat.sites[0]"},
        validation_case{R"({"channels": {"webchat": {"property_id": "p", "sites": [
                              {"id": "s", "property_id": "p1"}]}}})",
                        "'channels.webchat.property_id' must not be set together with "
                        "channels.webchat.sites (set it in each account instead)"},
        validation_case{R"({"channels": {"webchat": {"sites": [
                              {"id": "a b", "property_id": "p1"}]}}})",
                        "'channels.webchat.sites[0].id' must contain only letters, digits, '-', "
                        "'_' and '.'"}));

}  // namespace
}  // namespace bellhop::gateway

namespace bellhop::gateway {
namespace {

// --- properties (docs/properties.md) -----------------------------------------------------

const std::string berlin_property =
    R"({"id": "hotel-berlin", "name": "Hotel Berlin", "time_zone": "Europe/Berlin",
        "quiet_hours": {"start": "22:00", "end": "07:30"},
        "escalation": {"after_s": 600, "email": "duty@hotel-berlin.example", "sms": "+4915112345678"}})";

TEST_F(ConfigTest, PropertiesSectionIsParsed) {
  auto cfg = load_ok(R"({"properties": [)" + berlin_property +
                     R"(, {"id": "hotel-lisbon", "time_zone": "Europe/Lisbon"}],
                          "channels": {"webchat": {"property_id": "hotel-lisbon"}},
                          "auth": {"adapter_keys": [{"name": "a", "key": ")" +
                     valid_key + R"(", "properties": ["hotel-berlin", "*"]}]}})");
  EXPECT_TRUE(cfg.properties_declared);
  ASSERT_EQ(cfg.properties.size(), 2u);
  const auto& berlin = cfg.properties[0];
  EXPECT_EQ(berlin.id, "hotel-berlin");
  EXPECT_EQ(berlin.name, "Hotel Berlin");
  EXPECT_EQ(berlin.time_zone, "Europe/Berlin");
  ASSERT_TRUE(berlin.quiet.has_value());
  EXPECT_EQ(berlin.quiet->start_min, 22 * 60);
  EXPECT_EQ(berlin.quiet->end_min, 7 * 60 + 30);
  ASSERT_TRUE(berlin.escalation.has_value());
  EXPECT_EQ(berlin.escalation->after_s, 600);
  EXPECT_EQ(berlin.escalation->email, "duty@hotel-berlin.example");
  EXPECT_EQ(berlin.escalation->sms, "+4915112345678");
  const auto& lisbon = cfg.properties[1];
  EXPECT_EQ(lisbon.name, "");
  EXPECT_FALSE(lisbon.quiet.has_value());
  EXPECT_FALSE(lisbon.escalation.has_value());
  EXPECT_EQ(find_property(cfg, "hotel-lisbon"), &cfg.properties[1]);
  EXPECT_EQ(find_property(cfg, "hotel-paris"), nullptr);
}

TEST_F(ConfigTest, EscalationDefaultsAndOneContactSuffices) {
  auto cfg = load_ok(R"({"properties": [{"id": "h", "time_zone": "UTC",
                                          "escalation": {"sms": "+15551234567"}}]})");
  ASSERT_TRUE(cfg.properties.at(0).escalation.has_value());
  EXPECT_EQ(cfg.properties[0].escalation->after_s, 300);
  EXPECT_EQ(cfg.properties[0].escalation->email, "");
}

TEST_F(ConfigTest, WithoutPropertiesEveryReferencedIdIsAnImplicitProperty) {
  auto cfg = load_ok(R"({"channels": {"webchat": {"property_id": "hotel-berlin"},
                         "twilio": {"account_sid": "AC1", "auth_token": "t", "from": "+15550001111",
                                    "property_id": "hotel-berlin"}},
                         "auth": {"adapter_keys": [{"name": "a", "key": ")" +
                     valid_key + R"(", "properties": ["*", "hotel-lisbon"]}]}})");
  EXPECT_FALSE(cfg.properties_declared);
  ASSERT_EQ(cfg.properties.size(), 2u);
  EXPECT_EQ(cfg.properties[0].id, "hotel-berlin");
  EXPECT_EQ(cfg.properties[1].id, "hotel-lisbon");
  for (const auto& p : cfg.properties) {
    EXPECT_EQ(p.time_zone, "UTC");
    EXPECT_FALSE(p.quiet.has_value());
    EXPECT_FALSE(p.escalation.has_value());
  }
  // A config without any: none.
  EXPECT_THAT(load_ok("{}").properties, IsEmpty());
}

TEST_F(ConfigTest, EnvironmentChannelReferencesAreCheckedToo) {
  auto r = load_json(R"({"properties": [{"id": "hotel-berlin", "time_zone": "Europe/Berlin"}]})",
                     {{"BELLHOP_CHANNELS_WEBCHAT_PROPERTY_ID", "hotel-paris"}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(),
            "environment BELLHOP_CHANNELS_WEBCHAT_PROPERTY_ID: names property 'hotel-paris', which "
            "is not in the properties section");
}

INSTANTIATE_TEST_SUITE_P(
    Properties, ConfigValidationTest,
    ::testing::Values(
        validation_case{R"({"properties": {}})",
                        "'properties' must be a non-empty array of objects"},
        validation_case{R"({"properties": []})",
                        "'properties' must be a non-empty array of objects"},
        validation_case{R"({"properties": ["h"]})", "'properties[0]' must be an object"},
        validation_case{R"({"properties": [{"time_zone": "UTC"}]})",
                        "'properties[0].id' is required"},
        validation_case{R"({"properties": [{"id": "h"}]})",
                        "'properties[0].time_zone' is required"},
        validation_case{R"({"properties": [{"id": "h b", "time_zone": "UTC"}]})",
                        "'properties[0].id' must be 1-64 letters, digits, '-', '_' or '.'"},
        validation_case{R"({"properties": [{"id": "h", "time_zone": "UTC"},
                                           {"id": "h", "time_zone": "UTC"}]})",
                        "'properties[1].id' 'h' is already the id of properties[0]"},
        validation_case{R"({"properties": [{"id": "h", "time_zone": "Europe/Berln"}]})",
                        "'properties[0].time_zone' is not a time zone of the tz database (an "
                        "IANA name such as Europe/Berlin)"},
        validation_case{R"({"properties": [{"id": "h", "time_zone": "UTC", "floor": 3}]})",
                        "unknown key 'properties[0].floor'"},
        validation_case{
            R"({"properties": [{"id": "h", "time_zone": "UTC", "quiet_hours": "22-7"}]})",
            "'properties[0].quiet_hours' must be an object"},
        validation_case{R"({"properties": [{"id": "h", "time_zone": "UTC",
                                            "quiet_hours": {"start": "22:00"}}]})",
                        "'properties[0].quiet_hours.end' is required"},
        validation_case{R"({"properties": [{"id": "h", "time_zone": "UTC",
                                            "quiet_hours": {"start": "24:00", "end": "07:00"}}]})",
                        "'properties[0].quiet_hours.start' must be a local time HH:MM (00:00 to "
                        "23:59)"},
        validation_case{R"({"properties": [{"id": "h", "time_zone": "UTC",
                                            "quiet_hours": {"start": "22:00", "end": "7:00"}}]})",
                        "'properties[0].quiet_hours.end' must be a local time HH:MM (00:00 to "
                        "23:59)"},
        validation_case{R"({"properties": [{"id": "h", "time_zone": "UTC",
                                            "quiet_hours": {"start": "22:00", "end": "22:00"}}]})",
                        "'properties[0].quiet_hours.end' must differ from start (22:00)"},
        validation_case{R"({"properties": [{"id": "h", "time_zone": "UTC",
                                            "escalation": {"after_s": 60}}]})",
                        "'properties[0].escalation' needs an email or an sms contact (or both)"},
        validation_case{R"({"properties": [{"id": "h", "time_zone": "UTC",
                                            "escalation": {"after_s": 0, "email": "a@b.example"}}]})",
                        "'properties[0].escalation.after_s' must be a positive integer"},
        validation_case{R"({"properties": [{"id": "h", "time_zone": "UTC",
                                            "escalation": {"sms": "0151 1234567"}}]})",
                        "'properties[0].escalation.sms' must be a phone number in E.164 form (+ "
                        "and 8 to 15 digits)"},
        validation_case{R"({"properties": [{"id": "h", "time_zone": "UTC",
                                            "escalation": {"email": "duty"}}]})",
                        "'properties[0].escalation.email' must be an email address "
                        "(local@domain)"},
        // References must exist once the section is there.
        validation_case{R"({"properties": [{"id": "hotel-berlin", "time_zone": "UTC"}],
                            "channels": {"webchat": {"property_id": "hotel-paris"}}})",
                        "'channels.webchat.property_id' names property 'hotel-paris', which is "
                        "not in the properties section"},
        validation_case{R"({"properties": [{"id": "hotel-berlin", "time_zone": "UTC"}],
                            "auth": {"adapter_keys": [
                              {"name": "a", "key": "0123456789abcdef0123", "properties": ["*"]},
                              {"name": "b", "key": "fedcba98765432100000",
                               "properties": ["hotel-berlin", "hotel-rome"]}]}})",
                        "'auth.adapter_keys[1].properties[1]' names property 'hotel-rome', which "
                        "is not in the properties section"}));

}  // namespace
}  // namespace bellhop::gateway
