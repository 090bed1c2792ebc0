// The example AI engines of examples/ as real processes against a real Redis: the C++ demo
// engine (FAQ answers, staff hand-off, invalid elements, graceful stop), the Python and the Node
// consumers, and the whole path from POST /v1/messages/inbound to a reply on outbound:<channel>.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path examples_dir = BELLHOP_EXAMPLES_DIR;
const std::string demo_engine = BELLHOP_DEMO_ENGINE_BINARY;
const std::string breakfast_question = "What time is breakfast?";
const std::string dog_question = "Can I bring my dog?";

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  return d;
}

std::string member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject() || !v.HasMember(name) || !v[name].IsString())
    return "<missing " + std::string(name) + ">";
  return v[name].GetString();
}

// An inbound envelope as Bellhop LPUSHes it.
std::string envelope(const std::string& id, const std::string& text,
                     const std::string& channel = "whatsapp", const std::string& mode = "ai") {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto put = [&](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v.c_str());
  };
  w.StartObject();
  put("id", id);
  put("property_id", "hotel-berlin");
  put("channel", channel);
  put("external_id", "wamid." + id);
  put("from", "+4915112345678");
  put("to", "+4930123456");
  put("guest_name", "Ana");
  put("text", text);
  put("content_type", "text");
  w.Key("attachments");
  w.StartArray();
  w.EndArray();
  put("sent_at", "2026-11-27T21:00:00Z");
  w.Key("metadata");
  w.StartObject();
  w.EndObject();
  put("conversation_id", "c_" + id);
  put("received_at", "2026-11-27T21:00:00.123Z");
  put("direction", "inbound");
  put("conversation_mode", mode);
  w.EndObject();
  return buf.GetString();
}

// The FAQ answer that examples/demo-engine/faq.json gives for one rule.
std::string faq_answer(const std::string& rule) {
  std::ifstream in(examples_dir / "demo-engine" / "faq.json");
  std::stringstream content;
  content << in.rdbuf();
  auto doc = parse(content.str());
  if (!doc.IsArray()) return "<faq.json unreadable>";
  for (const auto& r : doc.GetArray()) {
    if (member(r, "name") == rule) return member(r, "answer");
  }
  return "<no rule " + rule + ">";
}

class ExamplesProcess : public ::testing::Test {
 protected:
  // LPUSHes one raw element (binary-safe: through a file and redis-cli -x).
  void push(const std::string& element, const std::string& key = "inbound:messages") {
    const auto file = dir_.path() / ("element-" + std::to_string(++files_));
    std::ofstream(file, std::ios::binary) << element;
    ASSERT_NE(redis_.cli("-x LPUSH " + key + " < '" + file.string() + "'"), "");
  }

  std::vector<std::string> list(const std::string& key) {
    return split_lines(redis_.cli("LRANGE " + key + " 0 -1"));
  }
  long long length(const std::string& key) { return std::stoll("0" + redis_.cli("LLEN " + key)); }
  bool exists(const std::string& key) { return redis_.cli("EXISTS " + key) == "1"; }
  bool is_registered(const std::string& consumer) {
    return redis_.cli("SISMEMBER inbound:messages:consumers " + consumer) == "1";
  }

  child_process start_engine(const std::string& consumer, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {demo_engine,
                                     "--redis",
                                     redis_.url(),
                                     "--consumer",
                                     consumer,
                                     "--faq",
                                     (examples_dir / "demo-engine" / "faq.json").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return child_process(argv, dir_.path() / (consumer + ".log"));
  }

  // The JSON lines a consumer printed (its log also holds stderr).
  static std::vector<std::string> printed(const child_process& p) {
    std::vector<std::string> out;
    for (auto& line : split_lines(p.output())) {
      if (line.rfind("{", 0) == 0) out.push_back(line);
    }
    return out;
  }

  // Runs a Python or Node consumer for `count` messages and checks what it printed, replied and
  // acked: three envelopes in, in FIFO order.
  void check_consumer(std::vector<std::string> argv, const std::string& consumer) {
    const std::vector<std::pair<std::string, std::string>> messages = {
        {"01JDQ0000000000000000000A1", breakfast_question},
        {"01JDQ0000000000000000000A2", "Frühstück für zwei, bitte \"jetzt\""},
        {"01JDQ0000000000000000000A3", dog_question}};
    for (auto& [id, text] : messages)
      push(envelope(id, text, id.back() == '2' ? "sms" : "whatsapp"));

    argv.insert(argv.end(), {"--redis", redis_.url(), "--consumer", consumer, "--count", "3",
                             "--reply", "--visibility-timeout-ms", "3000"});
    child_process p(argv, dir_.path() / (consumer + ".log"));
    ASSERT_EQ(p.wait(30s), 0) << p.output();

    auto lines = printed(p);
    ASSERT_EQ(lines.size(), messages.size()) << p.output();
    for (std::size_t i = 0; i < messages.size(); ++i) {
      auto d = parse(lines[i]);
      EXPECT_EQ(member(d, "id"), messages[i].first) << lines[i];
      EXPECT_EQ(member(d, "text"), messages[i].second) << lines[i];
    }
    // Replies went to each message's channel.
    auto whatsapp = list("outbound:whatsapp");
    auto sms = list("outbound:sms");
    ASSERT_EQ(whatsapp.size(), 2u);
    ASSERT_EQ(sms.size(), 1u);
    auto reply = parse(sms[0]);
    EXPECT_EQ(member(reply, "reply_to"), messages[1].first);
    EXPECT_EQ(member(reply, "to"), "+4915112345678");
    EXPECT_EQ(member(reply, "conversation_id"), "c_" + messages[1].first);
    EXPECT_EQ(member(reply, "idempotency_key"), "reply:" + messages[1].first);
    EXPECT_NE(member(reply, "text").find(messages[1].second), std::string::npos) << sms[0];
    ASSERT_TRUE(reply.HasMember("priority") && reply["priority"].IsInt()) << sms[0];
    EXPECT_EQ(reply["priority"].GetInt(), 3) << "a reply, never held for quiet hours";
    // Everything acked, nothing left, heartbeat gone; it registered for the reaper.
    EXPECT_TRUE(is_registered(consumer));
    EXPECT_EQ(length("inbound:messages"), 0);
    EXPECT_EQ(length("inbound:messages:processing:" + consumer), 0);
    EXPECT_FALSE(exists("inbound:messages:heartbeat:" + consumer));
  }

  temp_dir dir_;
  redis_server redis_{"examples-test-password"};
  int files_ = 0;
};

TEST_F(ExamplesProcess, DemoEngineAnswersFaqHandsOffTheRestAcksAndStopsCleanly) {
  push(envelope("01JDQ0000000000000000000B1", breakfast_question));
  push(envelope("01JDQ0000000000000000000B2", dog_question));
  // A short visibility timeout: the heartbeat must be refreshed to outlive it.
  auto engine = start_engine("demo-1", {"--visibility-timeout-ms", "1200"});

  // Newest first: the hand-off of the dog question, then the breakfast answer.
  ASSERT_TRUE(eventually([&] { return length("outbound:whatsapp") == 2; })) << engine.output();
  auto reply = parse(list("outbound:whatsapp")[1]);
  EXPECT_EQ(member(reply, "property_id"), "hotel-berlin");
  EXPECT_EQ(member(reply, "channel"), "whatsapp");
  EXPECT_EQ(member(reply, "to"), "+4915112345678");
  EXPECT_EQ(member(reply, "text"), faq_answer("breakfast"));
  EXPECT_EQ(member(reply, "reply_to"), "01JDQ0000000000000000000B1");
  EXPECT_EQ(member(reply, "conversation_id"), "c_01JDQ0000000000000000000B1");
  EXPECT_EQ(member(reply, "idempotency_key"), "reply:01JDQ0000000000000000000B1");
  ASSERT_TRUE(reply.HasMember("priority") && reply["priority"].IsInt());
  EXPECT_EQ(reply["priority"].GetInt(), 3) << "a reply, never held for quiet hours";

  // The hand-off through Redis (docs/ai-engine.md): no text, nothing is sent to the guest.
  auto handoff = parse(list("outbound:whatsapp")[0]);
  ASSERT_TRUE(handoff.HasMember("handoff") && handoff["handoff"].IsObject())
      << list("outbound:whatsapp")[0];
  EXPECT_EQ(member(handoff["handoff"], "reason"), "no canned answer for this question");
  ASSERT_TRUE(handoff["handoff"].HasMember("confidence") &&
              handoff["handoff"]["confidence"].IsNumber());
  EXPECT_FALSE(handoff.HasMember("text")) << "the dog question must not be answered";
  EXPECT_EQ(member(handoff, "to"), "+4915112345678");
  EXPECT_EQ(member(handoff, "reply_to"), "01JDQ0000000000000000000B2");
  EXPECT_EQ(member(handoff, "conversation_id"), "c_01JDQ0000000000000000000B2");
  EXPECT_EQ(member(handoff, "property_id"), "hotel-berlin");

  EXPECT_TRUE(eventually([&] { return length("inbound:messages:processing:demo-1") == 0; }));
  EXPECT_EQ(length("inbound:messages"), 0);

  // Alive past two visibility timeouts: the heartbeat is being refreshed.
  std::this_thread::sleep_for(2500ms);
  ASSERT_TRUE(engine.running()) << engine.output();
  EXPECT_TRUE(exists("inbound:messages:heartbeat:demo-1"));
  EXPECT_TRUE(is_registered("demo-1")) << "heartbeats SADD the name to the reaper's registry";

  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait(15s), 0) << engine.output();
  EXPECT_FALSE(exists("inbound:messages:heartbeat:demo-1"));
}

// While the envelope says the conversation is with staff, the demo hands nothing off again
// and only suggests its FAQ answers (Bellhop holds them for staff: docs/ai-engine.md).
TEST_F(ExamplesProcess, DemoEngineStaysSilentWhileAConversationIsWithStaff) {
  push(envelope("01JDQ0000000000000000000D1", dog_question, "whatsapp", "human"));
  push(envelope("01JDQ0000000000000000000D2", breakfast_question, "whatsapp", "human"));
  auto engine = start_engine("demo-3");
  ASSERT_TRUE(eventually([&] { return length("outbound:whatsapp") == 1; })) << engine.output();
  EXPECT_TRUE(eventually([&] { return length("inbound:messages:processing:demo-3") == 0; }));
  EXPECT_EQ(length("inbound:messages"), 0);
  auto only = parse(list("outbound:whatsapp")[0]);
  EXPECT_EQ(member(only, "text"), faq_answer("breakfast"));
  EXPECT_FALSE(only.HasMember("handoff"));
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait(15s), 0) << engine.output();
}

TEST_F(ExamplesProcess, DemoEngineAcksInvalidElementsAndKeepsRunning) {
  auto engine = start_engine("demo-2");
  ASSERT_TRUE(eventually([&] { return exists("inbound:messages:heartbeat:demo-2"); }))
      << engine.output();
  const std::vector<std::string> invalid = {
      "not json at all", "[1,2,3]", R"({"id":42})",
      R"({"id":"x","property_id":"p","channel":"bad channel!","from":"+1",)"
      R"("conversation_id":"c","text":"breakfast?"})",
      R"({"id":"y","property_id":"p","channel":"whatsapp","from":"+1",)"
      "\"conversation_id\":\"c\",\"text\":\"\xff\xfe breakfast?\"}"};  // not UTF-8
  for (const auto& element : invalid) push(element);
  push(envelope("01JDQ0000000000000000000C1", "When is checkout?"));

  ASSERT_TRUE(eventually([&] { return length("outbound:whatsapp") == 1; })) << engine.output();
  EXPECT_EQ(member(parse(list("outbound:whatsapp")[0]), "text"), faq_answer("checkout"));
  EXPECT_TRUE(eventually([&] { return length("inbound:messages:processing:demo-2") == 0; }));
  EXPECT_EQ(length("inbound:messages"), 0);
  ASSERT_TRUE(engine.running()) << engine.output();

  // Still taking messages after all that.
  push(envelope("01JDQ0000000000000000000C2", "wifi password please"));
  ASSERT_TRUE(eventually([&] { return length("outbound:whatsapp") == 2; })) << engine.output();
  EXPECT_EQ(member(parse(list("outbound:whatsapp")[0]), "text"), faq_answer("wifi"));

  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait(15s), 0) << engine.output();
}

TEST_F(ExamplesProcess, DemoEngineUsesKeyPrefixOverUnixSocket) {
  push(envelope("01JDQ0000000000000000000D1", breakfast_question), "bh:inbound:messages");
  push(envelope("01JDQ0000000000000000000D2", "Is there breakfast?"));  // not under the prefix
  child_process engine({demo_engine, "--redis",
                        "unix://" + redis_.socket_path() + "?password=examples-test-password",
                        "--consumer", "demo-3", "--key-prefix", "bh:"},  // and the built-in FAQ
                       dir_.path() / "demo-3.log");
  ASSERT_TRUE(eventually([&] { return length("bh:outbound:whatsapp") == 1; })) << engine.output();
  EXPECT_EQ(member(parse(list("bh:outbound:whatsapp")[0]), "text"), faq_answer("breakfast"));
  EXPECT_TRUE(exists("bh:inbound:messages:heartbeat:demo-3"));
  EXPECT_EQ(length("inbound:messages"), 1) << "the unprefixed queue is not ours";
  EXPECT_EQ(length("outbound:whatsapp"), 0);
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait(15s), 0) << engine.output();
  EXPECT_FALSE(exists("bh:inbound:messages:heartbeat:demo-3"));
}

TEST_F(ExamplesProcess, DemoEngineRejectsBadArgumentsWithOneLine) {
  const auto bad_faq = dir_.path() / "bad-faq.json";
  std::ofstream(bad_faq) << R"([{"name":"x","keywords":[],"answer":"y"}])";
  for (std::vector<std::string> args :
       {std::vector<std::string>{"--redis", "http://localhost"},
        std::vector<std::string>{"--redis", redis_.url(), "--faq", bad_faq.string()},
        std::vector<std::string>{"--redis", redis_.url(), "--consumer", "two words"},
        std::vector<std::string>{"--consumer", "x"}}) {
    args.insert(args.begin(), demo_engine);
    child_process p(args, dir_.path() / ("bad-" + std::to_string(++files_) + ".log"));
    auto status = p.wait(10s);
    EXPECT_TRUE(status.has_value() && *status != 0) << p.output();
  }
}

TEST_F(ExamplesProcess, PythonConsumerTakesPrintsRepliesAndAcks) {
  check_consumer({"/usr/bin/python3", (examples_dir / "python" / "consumer.py").string()}, "py-1");
}

TEST_F(ExamplesProcess, NodeConsumerTakesPrintsRepliesAndAcks) {
  ASSERT_TRUE(fs::exists(examples_dir / "node" / "node_modules" / "ioredis"))
      << "ioredis is not installed: run `npm ci --no-audit --no-fund` in examples/node";
  check_consumer({"node", (examples_dir / "node" / "consumer.js").string()}, "node-1");
}

// The whole path as examples/README.md describes it: bellhop with its embedded Redis, a guest
// message through POST /v1/messages/inbound, the demo engine connected as the `engine` user with
// the password from the data dir, the answer on outbound:whatsapp.
TEST_F(ExamplesProcess, DemoEngineAnswersMessagesPostedToBellhop) {
  const auto port = free_port();
  const auto redis_port = free_port();
  const auto data = dir_.path() / "data";
  const auto config = dir_.path() / "config.json";
  const std::string key = "examples-adapter-key-0123456789";
  std::ofstream(config) << R"({"listen": "127.0.0.1:)" << port << R"(", "data_dir": ")"
                        << data.string() << R"(", "redis": {"url": "embedded", "embedded": )"
                        << R"({"port": )" << redis_port << R"(}}, "auth": {"adapter_keys": [)"
                        << R"({"name": "a", "key": ")" << key << R"(", "properties": ["*"]}]}})";
  child_process bellhop({BELLHOP_BINARY, "serve", "--config", config.string()},
                        dir_.path() / "bellhop.log");
  ASSERT_TRUE(eventually([&] { return http_get(port, "/readyz").status == 200; }, 20s))
      << bellhop.output();

  std::string password;
  std::ifstream(data / "redis.password") >> password;
  ASSERT_FALSE(password.empty());
  // The engine logs in as the `engine` ACL user, as examples/README.md says.
  std::string engine_password;
  std::ifstream(data / "engine.password") >> engine_password;
  ASSERT_FALSE(engine_password.empty());
  const std::string url =
      "redis://engine:" + engine_password + "@127.0.0.1:" + std::to_string(redis_port);
  auto cli = [&](const std::string& args) {
    return run_capture("redis-cli --no-auth-warning -h 127.0.0.1 -p " + std::to_string(redis_port) +
                       " -a '" + password + "' " + args);
  };
  child_process engine({demo_engine, "--redis", url, "--consumer", "demo-4"},
                       dir_.path() / "demo-4.log");

  auto posted =
      http_request(port, "POST", "/v1/messages/inbound",
                   R"({"property_id":"hotel-berlin","channel":"whatsapp",)"
                   R"("external_id":"wamid.e2e","from":"+4915112345678",)"
                   R"("text":"What time is breakfast?"})",
                   {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}});
  ASSERT_EQ(posted.status, 202) << posted.body;
  auto accepted = parse(posted.body);
  const std::string id = member(accepted, "id");

  std::string raw;
  ASSERT_TRUE(eventually([&] {
    raw = cli("LRANGE outbound:whatsapp 0 -1");
    return !raw.empty();
  })) << engine.output();
  auto reply = parse(split_lines(raw).at(0));
  EXPECT_EQ(member(reply, "reply_to"), id);
  EXPECT_EQ(member(reply, "to"), "+4915112345678");
  EXPECT_EQ(member(reply, "text"), faq_answer("breakfast"));
  if (accepted.HasMember("conversation_id")) {
    EXPECT_EQ(member(reply, "conversation_id"), member(accepted, "conversation_id"));
  }
  EXPECT_TRUE(eventually([&] { return cli("LLEN inbound:messages:processing:demo-4") == "0"; }));

  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait(15s), 0) << engine.output();
  EXPECT_EQ(cli("EXISTS inbound:messages:heartbeat:demo-4"), "0");
  bellhop.signal(SIGTERM);
  EXPECT_EQ(bellhop.wait(20s), 0) << bellhop.output();
}

}  // namespace
}  // namespace bellhop::test
