// Every id-like value from a client has a maximum (contract/id_limits.hpp, docs/http-api.md "Id
// limits"): one byte over it is refused with the documented status, and the error never echoes
// the value. A real bellhop.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>

#include "bellhop/contract/id_limits.hpp"
#include "bellhop/contract/staff_token.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/ws_client.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
namespace limits = contract::id_limits;

const std::string adapter_key = "ids-test-key-0123456789";
const std::string admin_token = "ids-test-admin-token-0123456789";
const std::string jwt_secret = "ids-test-jwt-secret-0123456789abcdef";

// One byte more than `limit`: a valid id but for its length.
std::string over(std::size_t limit) {
  return std::string(limit + 1, 'a');
}

class IdLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << R"({
      "listen": "127.0.0.1:)"
                          << port_ << R"(",
      "data_dir": ")" << (dir_.path() / "data").string()
                          << R"(",
      "redis": {"url": ")" << redis_.url()
                          << R"("},
      "auth": {"jwt_secret": ")"
                          << jwt_secret << R"(", "admin_token": ")" << admin_token << R"(",
        "adapter_keys": [{"name": "all", "key": ")"
                          << adapter_key << R"(", "properties": ["*"]}]},
      "channels": {"webchat": {"property_id": "hotel-a"}}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
  }

  http_result post(const std::string& path, const std::string& body) {
    return http_request(
        port_, "POST", path, body,
        {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "application/json"}});
  }

  // The error's code and field; the body must not contain `value`.
  static std::pair<std::string, std::string> error_of(const http_result& r,
                                                      const std::string& value) {
    EXPECT_EQ(r.body.find(value), std::string::npos) << "echoed: " << r.body.substr(0, 200);
    auto d = parse_json(r.body);
    if (!d.IsObject() || !d.HasMember("error") || !d["error"].IsObject()) return {};
    return {string_member(d["error"], "code"), string_member(d["error"], "field")};
  }

  std::string token() {
    return contract::mint_staff_token(jwt_secret, "alice", {"*"}, std::chrono::system_clock::now(),
                                      std::chrono::hours(1));
  }

  temp_dir dir_;
  redis_server redis_;
  std::uint16_t port_ = 0;
  child_process bellhop_;
};

TEST_F(IdLimits, InboundFieldsOneByteOverAre422TooLong) {
  struct field_case {
    std::string name;
    std::size_t limit;
  };
  for (const auto& [name, limit] : std::vector<field_case>{{"property_id", limits::property_id},
                                                           {"channel", limits::channel},
                                                           {"external_id", limits::external_id},
                                                           {"from", limits::address},
                                                           {"to", limits::address}}) {
    std::map<std::string, std::string> fields{{"property_id", "hotel-a"},
                                              {"channel", "sms"},
                                              {"external_id", "e1"},
                                              {"from", "+1"},
                                              {"text", "hi"}};
    fields[name] = over(limit);
    std::string body = "{";
    for (const auto& [k, v] : fields) body += "\"" + k + "\":\"" + v + "\",";
    body.back() = '}';
    const auto r = post("/v1/messages/inbound", body);
    EXPECT_EQ(r.status, 422) << name;
    EXPECT_EQ(error_of(r, fields[name]), std::make_pair(std::string("too_long"), name));
  }
  EXPECT_EQ(redis_.cli("LLEN inbound:messages"), "0");
}

TEST_F(IdLimits, AMessageIdOverItsLimitIs404) {
  const auto id = over(limits::message_id);
  const auto r = http_request(port_, "GET", "/v1/messages/" + id, "",
                              {{"Authorization", "Bearer " + adapter_key}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r, id).first, "not_found");
}

TEST_F(IdLimits, OutboundFieldsOneByteOverAre422) {
  struct field_case {
    std::string name;
    std::size_t limit;
  };
  for (const auto& [name, limit] :
       std::vector<field_case>{{"channel", limits::channel},
                               {"to", limits::address},
                               {"conversation_id", limits::outbound_conversation_id},
                               {"reply_to", limits::reply_to},
                               {"idempotency_key", limits::idempotency_key}}) {
    std::map<std::string, std::string> fields{
        {"property_id", "hotel-a"}, {"channel", "webchat"}, {"to", "wc_x"}, {"text", "hi"}};
    fields[name] = over(limit);
    std::string body = "{";
    for (const auto& [k, v] : fields) body += "\"" + k + "\":\"" + v + "\",";
    body.back() = '}';
    const auto r = post("/v1/messages/outbound", body);
    EXPECT_EQ(r.status, 422) << name << ": " << r.body.substr(0, 200);
    EXPECT_EQ(error_of(r, fields[name]).first, "invalid_message") << name;
  }
  EXPECT_EQ(redis_.cli("LLEN outbound:webchat"), "0");
}

TEST_F(IdLimits, AdminPathIdsOverTheirLimitAre404) {
  const std::map<std::string, std::string> admin{{"Authorization", "Bearer " + admin_token}};
  const auto channel = over(limits::channel);
  auto r = http_request(port_, "POST", "/v1/admin/queues/" + channel + "/pause", "", admin);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r, channel).first, "not_found");
  const auto id = over(limits::message_id);
  r = http_request(port_, "POST", "/v1/admin/queues/webchat/dead/" + id + "/retry", "", admin);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r, id).first, "not_found");
}

TEST_F(IdLimits, ConversationApiPathIdsOverTheirLimitAre422) {
  const std::map<std::string, std::string> staff{{"Authorization", "Bearer " + token()}};
  const auto property = over(limits::property_id);
  auto r = http_request(port_, "GET", "/v1/properties/" + property + "/conversations", "", staff);
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(error_of(r, property),
            std::make_pair(std::string("invalid_id"), std::string("property_id")));
  const auto conversation = "c_" + std::string(33, 'a');
  r = http_request(port_, "GET", "/v1/conversations/" + conversation + "/messages", "", staff);
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(error_of(r, conversation).first, "invalid_id");
}

TEST_F(IdLimits, WebSocketIdsOverTheirLimitAreErrorFrames) {
  ws_client dashboard;
  ASSERT_EQ(dashboard.connect(port_, "/v1/realtime?token=" + token()), 101);
  ASSERT_TRUE(dashboard.receive().has_value());  // welcome
  const auto property = over(limits::property_id);
  dashboard.send(R"({"type":"subscribe","property_id":")" + property + "\"}");
  auto f = dashboard.receive().value_or("{}");
  EXPECT_EQ(f.find(property), std::string::npos);
  EXPECT_EQ(string_member(parse_json(f), "code"), "invalid_field") << f;
  const auto client_msg_id = over(limits::client_msg_id);
  dashboard.send(R"({"type":"reply","client_msg_id":")" + client_msg_id +
                 R"(","conversation_id":"c_0123456789abcdef0123456789abcdef","text":"x"})");
  f = dashboard.receive().value_or("{}");
  EXPECT_EQ(f.find(client_msg_id), std::string::npos);
  EXPECT_EQ(string_member(parse_json(f), "code"), "invalid_field") << f;

  ws_client guest;
  ASSERT_EQ(guest.connect(port_, "/v1/webchat"), 101);
  ASSERT_TRUE(guest.receive().has_value());  // welcome
  const auto client_id = over(limits::webchat_client_id);
  guest.send(R"({"type":"message","client_id":")" + client_id + R"(","text":"hi"})");
  f = guest.receive().value_or("{}");
  EXPECT_EQ(f.find(client_id), std::string::npos);
  EXPECT_EQ(string_member(parse_json(f), "code"), "invalid_frame") << f;
  EXPECT_EQ(redis_.cli("LLEN inbound:messages"), "0");
}

}  // namespace
}  // namespace bellhop::test
