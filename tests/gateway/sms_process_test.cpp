// Twilio SMS end to end: real bellhop and redis-server, Twilio's Messages API played by a local
// fake provider, webhooks signed by Python's hmac (not Bellhop's code).
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <fstream>

#include "support/fake_provider.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string auth_token = "twilio-auth-token-0123";

// X-Twilio-Signature by Python: base64(HMAC-SHA1(token, url + sorted name+value)).
std::string python_twilio_signature(const std::string& url, const std::string& form,
                                    const std::filesystem::path& dir) {
  const auto file = dir / "form.txt";
  std::ofstream(file, std::ios::binary) << form;
  const std::string cmd =
      "/usr/bin/python3 -c 'import hmac, hashlib, base64, sys, urllib.parse; "
      "p = urllib.parse.parse_qsl(open(sys.argv[3]).read(), keep_blank_values=True); "
      "d = sys.argv[2] + \"\".join(k + v for k, v in sorted(p)); "
      "print(base64.b64encode(hmac.new(sys.argv[1].encode(), d.encode(), hashlib.sha1).digest()).decode())' '" +
      auth_token + "' '" + url + "' '" + file.string() + "'";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

class SmsProcess : public ::testing::Test {
 protected:
  child_process start_bellhop(const redis_server& redis, const fake_provider& twilio) {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << R"({
      "listen": "127.0.0.1:)" << port_ << R"(",
      "data_dir": ")" << (dir_.path() / "data").string() << R"(",
      "public_url": "https://gw.example-hotel.com",
      "redis": {"url": ")" << redis.url() << R"(", "command_timeout_ms": 1000},
      "outbound": {"backoff_initial_ms": 100},
      "auth": {"adapter_keys": [{"name": "all", "key": "sms-test-key-0123456789",
                                  "properties": ["*"]}]},
      "channels": {"twilio": {"account_sid": "AC0123", "auth_token": ")" << auth_token << R"(",
        "from": "+15550001111", "property_id": "hotel-berlin",
        "api_base_url": ")" << twilio.url() << R"("}}
    })";
    child_process p({BELLHOP_BINARY, "serve", "--config", config.string()},
                    dir_.path() / ("bellhop-" + std::to_string(++runs_) + ".log"));
    EXPECT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << p.output();
    return p;
  }

  http_result post_form(const std::string& path, const std::string& form, bool tamper = false) {
    auto sig = python_twilio_signature("https://gw.example-hotel.com" + path, form, dir_.path());
    return http_request(port_, "POST", path, tamper ? form + "x" : form,
                        {{"Content-Type", "application/x-www-form-urlencoded"},
                         {"X-Twilio-Signature", sig}});
  }

  static void push(const redis_server& redis, const std::string& to, const std::string& text) {
    redis.cli(R"(LPUSH outbound:sms '{"property_id":"hotel-berlin","channel":"sms","to":")" + to +
              R"(","text":")" + text + R"("}')");
  }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  int runs_ = 0;
};

TEST_F(SmsProcess, InboundSmsStopAndStatusCallbacksAndSendsThroughTheMessagesApi) {
  redis_server redis;
  fake_provider twilio([](const fake_request& r, std::size_t i) {
    if (r.body.find("To=%2B4915199999999") != std::string::npos)
      return fake_response{400, R"({"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400})"};
    return fake_response{201, R"({"sid":"SM)" + std::to_string(i) + R"(","status":"queued"})"};
  });
  auto bellhop = start_bellhop(redis, twilio);

  // A guest's SMS, signed by Twilio: queued. Tampered: 401, nothing queued.
  const std::string sms =
      "AccountSid=AC0123&Body=Is+the+spa+open%3F&From=%2B4915112345678&MessageSid=SM9001&"
      "NumMedia=0&To=%2B15550001111";
  EXPECT_EQ(post_form("/v1/webhooks/twilio/sms", sms, true).status, 401);
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "0");
  auto ok = post_form("/v1/webhooks/twilio/sms", sms);
  ASSERT_EQ(ok.status, 200) << ok.body << bellhop.output();
  EXPECT_NE(ok.body.find("<Response>"), std::string::npos) << "empty TwiML";
  rapidjson::Document q;
  q.Parse(redis.cli("LINDEX inbound:messages 0").c_str());
  ASSERT_TRUE(q.IsObject());
  EXPECT_STREQ(q["text"].GetString(), "Is the spa open?");
  EXPECT_STREQ(q["channel"].GetString(), "sms");
  EXPECT_STREQ(q["property_id"].GetString(), "hotel-berlin");

  // A reply goes out through the Messages API with Basic auth and a status callback.
  push(redis, "+4915112345678", "Until 9 pm.");
  ASSERT_TRUE(eventually([&] { return twilio.count() == 1; }, 10s)) << bellhop.output();
  const auto sent = twilio.requests()[0];
  EXPECT_EQ(sent.target, "/2010-04-01/Accounts/AC0123/Messages.json");
  EXPECT_EQ(sent.headers.at("authorization").rfind("Basic ", 0), 0u);
  EXPECT_NE(sent.body.find("Body=Until%209%20pm."), std::string::npos) << sent.body;
  ASSERT_TRUE(eventually([&] { return redis.cli("GET outbound:sms:provider:SM0") != ""; }, 5s));
  const auto id = redis.cli("GET outbound:sms:provider:SM0");
  auto st = post_form("/v1/webhooks/twilio/status",
                      "AccountSid=AC0123&MessageSid=SM0&MessageStatus=delivered&To=%2B4915112345678");
  ASSERT_EQ(st.status, 200) << st.body;
  EXPECT_EQ(redis.cli("HGET message:" + id + " status"), "delivered");

  // STOP: the guest is opted out; the next reply to them fails at once, without a send.
  auto stop = post_form("/v1/webhooks/twilio/sms",
                        "AccountSid=AC0123&Body=STOP&From=%2B4915112345678&MessageSid=SM9002&"
                        "NumMedia=0&To=%2B15550001111");
  ASSERT_EQ(stop.status, 200) << stop.body;
  push(redis, "+4915112345678", "Anything else?");
  ASSERT_TRUE(eventually([&] { return redis.cli("LLEN outbound:sms:dead") == "1"; }, 5s))
      << bellhop.output();
  EXPECT_EQ(twilio.count(), 1u) << "no send to an opted-out guest";
  EXPECT_NE(redis.cli("LINDEX outbound:sms:dead 0").find("opted out"), std::string::npos);

  // Twilio says 21610 for a guest who opted out elsewhere: dead, and marked for next time.
  push(redis, "+4915199999999", "Hello?");
  ASSERT_TRUE(eventually([&] { return redis.cli("LLEN outbound:sms:dead") == "2"; }, 5s));
  push(redis, "+4915199999999", "Hello again?");
  ASSERT_TRUE(eventually([&] { return redis.cli("LLEN outbound:sms:dead") == "3"; }, 5s));
  EXPECT_EQ(twilio.count(), 2u) << "the second send to them fails fast";
}

}  // namespace
}  // namespace bellhop::test
