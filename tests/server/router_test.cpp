#include "bellhop/server/router.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <boost/asio/io_context.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

route_handler tagged(std::string tag, std::string* seen) {
  return [tag = std::move(tag), seen](const request&, responder) { *seen = tag; };
}

request make_request(http::verb method, std::string target) {
  request req{method, target, 11};
  req.keep_alive(true);
  return req;
}

// Parses a JSON error body; returns the error object's members as "code|message|field".
std::string error_fields(const response& res) {
  rapidjson::Document doc;
  doc.Parse(res.body().c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("error")) return "<invalid>";
  const auto& err = doc["error"];
  if (!err.IsObject()) return "<invalid>";
  std::string out;
  for (const char* key : {"code", "message", "field"}) {
    if (!out.empty()) out += '|';
    if (err.HasMember(key) && err[key].IsString()) out += err[key].GetString();
  }
  return out;
}

class router_test : public ::testing::Test {
 protected:
  router_test() {
    routes_.add(http::verb::get, "/livez", tagged("livez", &seen_));
    routes_.add(http::verb::post, "/v1/messages/inbound", tagged("inbound", &seen_));
    routes_.add(http::verb::get, "/v1/messages/{id}", tagged("message", &seen_));
    routes_.add(http::verb::get, "/v1/webhooks/whatsapp", tagged("wa-verify", &seen_));
    routes_.add(http::verb::post, "/v1/webhooks/whatsapp", tagged("wa-events", &seen_));
  }

  // Invokes the matched handler, as the server would; returns nullopt when nothing matched.
  std::optional<std::string> dispatch(http::verb method, std::string_view target) {
    seen_.clear();
    const auto m = routes_.match(method, target);
    if (m.handler == nullptr) return std::nullopt;
    boost::asio::io_context ioc;
    (*m.handler)(make_request(method, std::string(target)),
                 responder(ioc.get_executor(), m.params, [](response) {}));
    return seen_;
  }

  router routes_;
  std::string seen_;
};

TEST_F(router_test, exact_path_selects_handler_and_names_route) {
  EXPECT_EQ(dispatch(http::verb::get, "/livez"), "livez");
  const auto m = routes_.match(http::verb::get, "/livez");
  EXPECT_EQ(m.name, "/livez");
  EXPECT_TRUE(m.params.empty());
}

TEST_F(router_test, head_runs_the_get_handler_and_nothing_else) {
  EXPECT_EQ(dispatch(http::verb::head, "/livez"), "livez");
  EXPECT_EQ(dispatch(http::verb::head, "/v1/messages/abc"), "message");
  // Like GET, which also finds /v1/messages/{id} for this path.
  EXPECT_EQ(dispatch(http::verb::head, "/v1/messages/inbound"),
            dispatch(http::verb::get, "/v1/messages/inbound"));
  EXPECT_EQ(dispatch(http::verb::head, "/nowhere"), std::nullopt);
}

TEST_F(router_test, query_string_is_ignored_for_matching) {
  EXPECT_EQ(dispatch(http::verb::get, "/v1/webhooks/whatsapp?hub.mode=subscribe&x=/y"),
            "wa-verify");
}

TEST_F(router_test, same_path_different_methods) {
  EXPECT_EQ(dispatch(http::verb::post, "/v1/webhooks/whatsapp"), "wa-events");
  EXPECT_EQ(dispatch(http::verb::get, "/v1/webhooks/whatsapp"), "wa-verify");
}

TEST_F(router_test, parameter_segment_is_captured_and_decoded) {
  const auto m = routes_.match(http::verb::get, "/v1/messages/01HZX%2Fab?verbose=1");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.name, "/v1/messages/{id}");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].first, "id");
  EXPECT_EQ(m.params[0].second, "01HZX/ab");

  boost::asio::io_context ioc;
  responder r(ioc.get_executor(), m.params, [](response) {});
  EXPECT_EQ(r.param("id"), "01HZX/ab");
  EXPECT_EQ(r.param("other"), "");
}

TEST_F(router_test, parameter_does_not_match_empty_extra_or_badly_encoded_segments) {
  EXPECT_EQ(routes_.match(http::verb::get, "/v1/messages/").handler, nullptr);
  EXPECT_EQ(routes_.match(http::verb::get, "/v1/messages/a/b").handler, nullptr);
  EXPECT_EQ(routes_.match(http::verb::get, "/v1/messages/%zz").handler, nullptr);
  EXPECT_EQ(routes_.match(http::verb::get, "/v1/messages/%4").handler, nullptr);
}

TEST_F(router_test, literal_route_wins_over_parameter_route) {
  EXPECT_EQ(dispatch(http::verb::post, "/v1/messages/inbound"), "inbound");
  // Only the parameter route has GET, so GET /v1/messages/inbound is a lookup of id "inbound".
  const auto m = routes_.match(http::verb::get, "/v1/messages/inbound");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.name, "/v1/messages/{id}");
  EXPECT_EQ(m.params.at(0).second, "inbound");
}

TEST_F(router_test, unknown_path_is_404_json_with_unmatched_label) {
  for (const auto* target : {"/nope", "/livez/", "/LIVEZ", "", "*", "http://x/livez"}) {
    const auto m = routes_.match(http::verb::get, target);
    EXPECT_EQ(m.handler, nullptr) << target;
    EXPECT_EQ(m.name, "unmatched") << target;
    EXPECT_TRUE(m.allow.empty()) << target;
  }
  const auto req = make_request(http::verb::get, "/nope");
  const auto res = router::not_routed(req, routes_.match(http::verb::get, "/nope"));
  EXPECT_EQ(res.result(), http::status::not_found);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(error_fields(res), "not_found|no such resource|");
  EXPECT_TRUE(res.keep_alive());
}

TEST_F(router_test, known_path_wrong_method_is_405_with_allow) {
  const auto m = routes_.match(http::verb::delete_, "/v1/webhooks/whatsapp");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_EQ(m.name, "/v1/webhooks/whatsapp");
  EXPECT_EQ(m.allow, "GET, POST");

  const auto req = make_request(http::verb::delete_, "/v1/webhooks/whatsapp");
  const auto res = router::not_routed(req, m);
  EXPECT_EQ(res.result(), http::status::method_not_allowed);
  EXPECT_EQ(res[http::field::allow], "GET, POST");
  EXPECT_EQ(error_fields(res), "method_not_allowed|method DELETE is not allowed here|");
}

TEST_F(router_test, allow_merges_methods_of_every_matching_pattern) {
  const auto m = routes_.match(http::verb::put, "/v1/messages/inbound");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_EQ(m.name, "/v1/messages/inbound");
  EXPECT_EQ(m.allow, "GET, POST");
}

TEST_F(router_test, rejects_malformed_and_duplicate_patterns) {
  EXPECT_THROW(routes_.add(http::verb::get, "livez", tagged("x", &seen_)), std::invalid_argument);
  EXPECT_THROW(routes_.add(http::verb::get, "/a/{id", tagged("x", &seen_)), std::invalid_argument);
  EXPECT_THROW(routes_.add(http::verb::get, "/a/{}", tagged("x", &seen_)), std::invalid_argument);
  EXPECT_THROW(routes_.add(http::verb::get, "/a?b", tagged("x", &seen_)), std::invalid_argument);
  EXPECT_THROW(routes_.add(http::verb::get, "/livez", tagged("x", &seen_)), std::invalid_argument);
  EXPECT_THROW(routes_.add(http::verb::get, "/b", route_handler{}), std::invalid_argument);
}

TEST(json_response, error_body_escapes_and_omits_empty_field) {
  request req{http::verb::post, "/x", 10};  // HTTP/1.0 without keep-alive
  auto res = json_error(req, http::status::unprocessable_entity, "invalid", "bad \"text\"\n", "to");
  EXPECT_EQ(res.version(), 10u);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_EQ(res.body(), R"({"error":{"code":"invalid","message":"bad \"text\"\n","field":"to"}})");
  EXPECT_EQ(res[http::field::content_length], std::to_string(res.body().size()));

  res = json_error(req, http::status::bad_request, "bad_request", "x");
  EXPECT_EQ(res.body(), R"({"error":{"code":"bad_request","message":"x"}})");
}

TEST(responder, first_send_wins_and_runs_on_the_executor) {
  boost::asio::io_context ioc;
  int calls = 0;
  http::status got{};
  responder r(ioc.get_executor(), {}, [&](response res) {
    ++calls;
    got = res.result();
  });
  request req;
  r.send(json_response(req, http::status::accepted, "{}"));
  r.send(json_response(req, http::status::ok, "{}"));
  EXPECT_EQ(calls, 0);  // posted, not run inline
  ioc.run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, http::status::accepted);
}

TEST(responder, dropped_without_send_answers_500) {
  boost::asio::io_context ioc;
  std::optional<response> got;
  {
    responder r(ioc.get_executor(), {}, [&](response res) { got = std::move(res); });
    responder copy = r;
  }
  ioc.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->result(), http::status::internal_server_error);
  EXPECT_FALSE(got->keep_alive());
  EXPECT_EQ(error_fields(*got), "internal_error|the request handler did not respond|");
}

}  // namespace
}  // namespace bellhop::gateway
