// The dashboards' WebSocket signed in with the console's session cookie, on a real redis-server:
// the test's session_lookup reads a session hash the test writes (the seam of
// server/staff_auth.hpp: cookie value -> principal, or none, or unavailable), and the console's
// revocation channel is a real PUBLISH. Tokens work as before alongside.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/contract/staff_token.hpp"
#include "bellhop/contract/timestamp.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/realtime/service.hpp"
#include "bellhop/server/http_server.hpp"
#include "support/json.hpp"
#include "support/redis_client.hpp"
#include "support/redis_server.hpp"
#include "support/ws_client.hpp"

namespace bellhop::realtime {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sys_clock = std::chrono::system_clock;
using test::ws_client;

const std::string jwt_secret = "console-session-test-jwt-secret-0123456789";

std::string str(const rapidjson::Value& v, const char* name) {
  return test::string_member(v, name);
}

// A console session as the test keeps it: the cookie the browser holds and the id Redis knows.
struct signed_in {
  std::string cookie;
  std::string session_id;
  sys_clock::time_point expires;
};

class ConsoleSession : public ::testing::Test {
 protected:
  ~ConsoleSession() override {
    if (server_) {
      std::promise<void> done;
      server_->shutdown([&] { done.set_value(); });
      done.get_future().wait_for(5s);
    }
    if (service_) service_->shutdown();
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
    server_.reset();
    service_.reset();
    broker_.stop();
  }

  // `sessions`: whether the service gets the lookup (false: cookies are not accepted).
  void start(service_options o = {}, bool sessions = true) {
    o.jwt_secret = jwt_secret;
    broker_.start();
    service_ = std::make_unique<service>(
        ioc_, broker_, contract::key_space(""), o,
        [](reply_request, reply_callback done) { done({}); }, conversation_changer{},
        sessions ? lookup() : gateway::session_lookup{});
    gateway::http_options ho;
    ho.host = "127.0.0.1";
    ho.port = 0;
    server_ = std::make_unique<gateway::http_server>(ioc_, ho, std::make_shared<gateway::router>(),
                                                     metrics_);
    server_->on_upgrade("/v1/realtime", [this](boost::beast::tcp_stream stream,
                                               gateway::request req, gateway::upgrade_context ctx) {
      service_->accept(std::move(stream), std::move(req), std::move(ctx.slot));
    });
    const auto started = server_->start();
    ASSERT_TRUE(started) << started.error();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
    // A revocation published before the service's SUBSCRIBE reached Redis would be lost.
    if (sessions) {
      const auto deadline = std::chrono::steady_clock::now() + 5s;
      while (client_.run({"PUBSUB", "NUMSUB", "console:revoked"}).elements().at(1).integer() == 0)
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the service never subscribed";
    }
  }

  // The seam's contract on a real Redis hash console:session:<id> (user, properties as a comma
  // list, expires_at in epoch ms): unknown or past -> none, Redis unreachable -> unavailable.
  gateway::session_lookup lookup() {
    return [this](std::string cookie, gateway::session_callback done) {
      const auto id = contract::sha256_hex(cookie, 16);
      broker_.post({"HGETALL", "console:session:" + id}, ioc_.get_executor(),
                   [id, done](boost::system::error_code ec, broker::reply r) {
                     if (ec || !r.is_array())
                       return done(gateway::session_status::unavailable, std::nullopt);
                     gateway::staff_principal p;
                     p.session_id = id;
                     const auto& e = r.elements();
                     for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
                       const auto& field = e[i].str();
                       const auto& value = e[i + 1].str();
                       if (field == "user") p.subject = value;
                       if (field == "expires_at")
                         p.expires =
                             sys_clock::time_point(std::chrono::milliseconds(std::stoll(value)));
                       if (field == "properties") {
                         for (std::size_t from = 0; from <= value.size();) {
                           const auto comma = std::min(value.find(',', from), value.size());
                           p.properties.push_back(value.substr(from, comma - from));
                           from = comma + 1;
                         }
                       }
                     }
                     if (p.subject.empty() || p.expires <= sys_clock::now())
                       return done(gateway::session_status::none, std::nullopt);
                     done(gateway::session_status::ok, std::move(p));
                   });
    };
  }

  signed_in sign_in(const std::string& user, const std::string& properties,
                    std::chrono::milliseconds ttl = 1h) {
    signed_in s;
    s.cookie = contract::make_random_hex(32);
    s.session_id = contract::sha256_hex(s.cookie, 16);
    s.expires = std::chrono::time_point_cast<std::chrono::milliseconds>(sys_clock::now() + ttl);
    client_.run({"HSET", "console:session:" + s.session_id, "user", user, "properties", properties,
                 "expires_at",
                 std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    s.expires.time_since_epoch())
                                    .count())});
    return s;
  }

  std::string origin() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  // Connects with the cookie (and an Origin when given); `status` is what the upgrade answers.
  std::unique_ptr<ws_client> connect(const std::string& cookie, const std::string& origin_header,
                                     int status = 101, const std::string& target = "/v1/realtime") {
    auto c = std::make_unique<ws_client>();
    if (!cookie.empty()) c->add_header("Cookie", "theme=dark; bellhop_session=" + cookie);
    if (!origin_header.empty()) c->add_header("Origin", origin_header);
    EXPECT_EQ(c->connect(server_->port(), target), status) << c->refusal_body();
    return c;
  }

  // The next frame, parsed; a null document when none came within the wait.
  static rapidjson::Document next(ws_client& c, std::chrono::milliseconds wait = 5s) {
    const auto f = c.receive(wait);
    if (!f) return {};
    return test::parse_json(*f);
  }

  // A connection the test expects welcomed as `user`.
  std::unique_ptr<ws_client> welcomed(const signed_in& s, const std::string& user) {
    auto c = connect(s.cookie, origin());
    const auto w = next(*c);
    EXPECT_TRUE(w.IsObject());
    if (w.IsObject()) {
      EXPECT_EQ(str(w, "type"), "welcome");
      EXPECT_EQ(str(w, "sub"), user);
    }
    return c;
  }

  // Whether the connection still answers a ping.
  static bool alive(ws_client& c) {
    if (!c.send(R"({"type":"ping"})")) return false;
    const auto f = next(c);
    return f.IsObject() && str(f, "type") == "pong";
  }

  // The connection was told its session ended, and closed with 4401.
  static void expect_session_ended(ws_client& c, std::chrono::milliseconds wait = 2s) {
    const auto e = next(c, wait);
    ASSERT_TRUE(e.IsObject()) << "no frame within the wait";
    EXPECT_EQ(str(e, "type"), "error");
    EXPECT_EQ(str(e, "code"), "session_ended");
    EXPECT_FALSE(str(e, "message").empty());
    EXPECT_EQ(c.wait_closed(wait), 4401);
  }

  void revoke(const std::string& payload) { client_.run({"PUBLISH", "console:revoked", payload}); }

  test::redis_server redis_;
  test::redis_client client_{redis_.unix_endpoint()};
  broker::broker broker_{test::fast_broker_options(redis_.unix_endpoint())};
  gateway::metrics_registry metrics_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  std::vector<std::thread> threads_;
  std::unique_ptr<service> service_;
  std::unique_ptr<gateway::http_server> server_;
};

TEST_F(ConsoleSession, ACookieUpgradeIsWelcomedAtOnceAndItsPropertiesGovernSubscribe) {
  start();
  const auto alice = sign_in("alice", "hotel-berlin");
  auto c = connect(alice.cookie, origin());
  const auto w = next(*c, 2s);  // no auth frame sent
  ASSERT_TRUE(w.IsObject());
  EXPECT_EQ(str(w, "type"), "welcome");
  EXPECT_EQ(str(w, "sub"), "alice");
  EXPECT_EQ(str(w, "expires_at"), contract::format_rfc3339(alice.expires));
  EXPECT_EQ(str(w, "session_id").substr(0, 2), "s_");

  ASSERT_TRUE(c->send(R"({"type":"subscribe","property_id":"hotel-berlin"})"));
  auto f = next(*c);
  EXPECT_EQ(str(f, "type"), "subscribed");
  EXPECT_EQ(str(f, "property_id"), "hotel-berlin");
  ASSERT_TRUE(c->send(R"({"type":"subscribe","property_id":"hotel-paris"})"));
  f = next(*c);
  EXPECT_EQ(str(f, "type"), "error");
  EXPECT_EQ(str(f, "code"), "forbidden");

  // A client that sends no Origin (not a browser) is accepted too.
  auto no_origin = connect(alice.cookie, "");
  EXPECT_EQ(str(next(*no_origin), "type"), "welcome");
  EXPECT_EQ(service_->stats().console_accepted.load(), 2u);
}

TEST_F(ConsoleSession, AnUnknownOrEndedSessionIs401AndAForeignOriginIs403) {
  start();
  auto unknown = connect(contract::make_random_hex(32), origin(), 401);
  auto body = test::parse_json(unknown->refusal_body());
  EXPECT_EQ(str(body["error"], "code"), "unauthorized") << unknown->refusal_body();
  EXPECT_EQ(str(body["error"], "message"), "the session has ended: sign in again");

  const auto past = sign_in("alice", "*", -1s);
  connect(past.cookie, origin(), 401);

  const auto alice = sign_in("alice", "*");
  for (const std::string& foreign : std::vector<std::string>{
           "https://evil.example", origin() + ".evil.example", "null", "http://127.0.0.1"}) {
    auto c = connect(alice.cookie, foreign, 403);
    body = test::parse_json(c->refusal_body());
    EXPECT_EQ(str(body["error"], "code"), "csrf_failed") << foreign;
  }
  EXPECT_EQ(service_->stats().console_accepted.load(), 0u);
  EXPECT_EQ(service_->stats().refused.load(), 6u);
}

TEST_F(ConsoleSession, ALookupThatCannotReachRedisIs503) {
  start();
  const auto alice = sign_in("alice", "*");
  redis_.stop();
  auto c = connect(alice.cookie, origin(), 503);
  const auto body = test::parse_json(c->refusal_body());
  EXPECT_EQ(str(body["error"], "code"), "unavailable") << c->refusal_body();
}

TEST_F(ConsoleSession, ARevocationOfAUserEndsEveryConnectionOfThatUserAtOnce) {
  start();
  const auto a1 = sign_in("alice", "*");
  const auto a2 = sign_in("alice", "hotel-berlin");
  const auto b = sign_in("bob", "*");
  auto alice1 = welcomed(a1, "alice");
  auto alice2 = welcomed(a2, "alice");
  auto bob = welcomed(b, "bob");
  // A token connection of a staff member called alice is not a console session.
  auto by_token =
      connect("", "", 101,
              "/v1/realtime?token=" +
                  contract::mint_staff_token(jwt_secret, "alice", {"*"}, sys_clock::now(), 1h));
  EXPECT_EQ(str(next(*by_token), "type"), "welcome");

  const auto before = std::chrono::steady_clock::now();
  revoke(R"({"user":"alice"})");
  expect_session_ended(*alice1);
  expect_session_ended(*alice2);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
  EXPECT_TRUE(alive(*bob));
  EXPECT_TRUE(alive(*by_token));
  EXPECT_EQ(service_->stats().console_sessions_ended.load(), 2u);
}

TEST_F(ConsoleSession, ARevocationOfASessionEndsThatSessionOnly) {
  start();
  const auto a1 = sign_in("alice", "*");
  const auto a2 = sign_in("alice", "*");
  auto alice1 = welcomed(a1, "alice");
  auto alice2 = welcomed(a2, "alice");
  auto alice1_again = welcomed(a1, "alice");  // the same session in a second tab
  revoke(R"({"session":")" + a1.session_id + R"("})");
  expect_session_ended(*alice1);
  expect_session_ended(*alice1_again);
  EXPECT_TRUE(alive(*alice2));
}

TEST_F(ConsoleSession, MalformedRevocationsEndNothing) {
  start();
  auto alice = welcomed(sign_in("alice", "*"), "alice");
  auto bob = welcomed(sign_in("bob", "*"), "bob");
  for (const std::string& bad : std::vector<std::string>{
           "alice", "", "[]", R"({"user":""})", R"({"user":123})", R"({"user":["alice"]})",
           R"({"user":"alice","session":"x"})", R"({"who":"alice"})", R"({"user":"alice")",
           R"({"user":")" + std::string(300, 'a') + R"("})",
           R"({"user":"alice","pad":")" + std::string(2000, ' ') + R"("})"})
    revoke(bad);
  // Messages on the channel are handled in order: once bob's has ended him, the ones before it
  // have been read, and alice is still there.
  revoke(R"({"user":"bob"})");
  expect_session_ended(*bob);
  EXPECT_TRUE(alive(*alice));
}

TEST_F(ConsoleSession, ASessionGoneWithoutAMessageEndsAtTheNextHeartbeat) {
  service_options o;
  o.heartbeat = 1s;
  start(o);
  const auto alice = sign_in("alice", "*");
  const auto bob = sign_in("bob", "*");
  auto a = welcomed(alice, "alice");
  auto b = welcomed(bob, "bob");
  client_.run({"DEL", "console:session:" + alice.session_id});  // no PUBLISH: a missed message
  expect_session_ended(*a, 5s);
  EXPECT_TRUE(alive(*b)) << "a session that still exists is kept";
}

TEST_F(ConsoleSession, AfterARedisRestartEveryCookieConnectionIsCheckedAtOnce) {
  start();  // heartbeat 30 s: only the re-subscription can end it within the wait
  const auto alice = sign_in("alice", "*");
  auto a = welcomed(alice, "alice");
  auto by_token =
      connect("", "", 101,
              "/v1/realtime?token=" +
                  contract::mint_staff_token(jwt_secret, "alice", {"*"}, sys_clock::now(), 1h));
  EXPECT_EQ(str(next(*by_token), "type"), "welcome");
  // Killed and started again without persistence: the session is gone, and whatever was
  // published on console:revoked meanwhile reached nobody.
  redis_.restart();
  expect_session_ended(*a, 15s);
  EXPECT_TRUE(alive(*by_token));
}

TEST_F(ConsoleSession, TheSessionsEndClosesTheConnectionLikeATokensExp) {
  start();
  const auto alice = sign_in("alice", "*", 1500ms);
  auto a = welcomed(alice, "alice");
  expect_session_ended(*a, 5s);
}

TEST_F(ConsoleSession, TokensWorkAsBeforeAndACookieConnectionCannotBecomeAnotherUser) {
  start();
  const auto token = [](const std::string& sub) {
    return contract::mint_staff_token(jwt_secret, sub, {"hotel-berlin"}, sys_clock::now(), 1h);
  };
  const auto alice = sign_in("alice", "*");
  // ?token= wins over a cookie.
  auto by_url =
      connect(alice.cookie, "https://evil.example", 101, "/v1/realtime?token=" + token("carol"));
  auto w = next(*by_url);
  EXPECT_EQ(str(w, "type"), "welcome");
  EXPECT_EQ(str(w, "sub"), "carol");
  connect(alice.cookie, origin(), 401, "/v1/realtime?token=not-a-token");
  // No cookie: the auth frame, as before.
  auto by_frame = connect("", "");
  ASSERT_TRUE(by_frame->send(R"({"type":"auth","token":")" + token("dave") + R"("})"));
  w = next(*by_frame);
  EXPECT_EQ(str(w, "type"), "welcome");
  EXPECT_EQ(str(w, "sub"), "dave");

  // An auth frame on a cookie connection is refused; the connection stays alice's.
  auto a = welcomed(alice, "alice");
  for (const auto& sub : {"mallory", "alice"}) {
    ASSERT_TRUE(a->send(R"({"type":"auth","token":")" + token(sub) + R"("})"));
    const auto e = next(*a);
    EXPECT_EQ(str(e, "type"), "error");
    EXPECT_EQ(str(e, "code"), "unauthorized");
    EXPECT_EQ(str(e, "ref"), "auth");
  }
  EXPECT_TRUE(alive(*a));
  revoke(R"({"user":"alice"})");
  expect_session_ended(*a);
}

TEST_F(ConsoleSession, WithoutALookupTheCookieIsIgnoredAndAnAuthFrameIsRequired) {
  service_options o;
  o.auth_timeout = 500ms;
  start(o, /*sessions=*/false);
  const auto alice = sign_in("alice", "*");
  auto c = connect(alice.cookie, origin());
  const auto e = next(*c);
  EXPECT_EQ(str(e, "type"), "error");
  EXPECT_EQ(str(e, "code"), "unauthorized");
  EXPECT_EQ(c->wait_closed(), 4401);
  EXPECT_EQ(service_->stats().console_accepted.load(), 0u);
}

}  // namespace
}  // namespace bellhop::realtime
