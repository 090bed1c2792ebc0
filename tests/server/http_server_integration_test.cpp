#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bellhop/server/http_server.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr auto client_timeout = 5s;  // only bounds a failing test; never reached when passing

// A blocking HTTP client on real sockets. It uses Beast's async operations on a private
// io_context so that every call has a deadline and a broken server fails the test, not hangs it.
class client {
 public:
  boost::system::error_code connect(std::uint16_t port) {
    boost::system::error_code result;
    stream_.expires_after(client_timeout);
    stream_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [&](boost::system::error_code ec) { result = ec; });
    run();
    return result;
  }

  boost::system::error_code write(const request& req) {
    boost::system::error_code result;
    stream_.expires_after(client_timeout);
    http::async_write(stream_, req,
                      [&](boost::system::error_code ec, std::size_t) { result = ec; });
    run();
    return result;
  }

  boost::system::error_code write_raw(std::string_view bytes) {
    boost::system::error_code result;
    stream_.expires_after(client_timeout);
    asio::async_write(stream_, asio::buffer(bytes),
                      [&](boost::system::error_code ec, std::size_t) { result = ec; });
    run();
    return result;
  }

  template <class Message>
  boost::system::error_code read(Message& msg) {
    boost::system::error_code result;
    stream_.expires_after(client_timeout);
    http::async_read(stream_, buffer_, msg,
                     [&](boost::system::error_code ec, std::size_t) { result = ec; });
    run();
    return result;
  }

  // Writes `req` and reads the response; fails the test on I/O errors.
  response roundtrip(const request& req) {
    response res;
    const auto wec = write(req);
    EXPECT_FALSE(wec) << wec.message();
    const auto rec = read(res);
    EXPECT_FALSE(rec) << rec.message();
    return res;
  }

  // Waits for the server to close the connection: eof (or reset) before any further byte.
  boost::system::error_code wait_closed() {
    boost::system::error_code result;
    if (buffer_.size() > 0) return asio::error::message_size;  // unexpected data
    char byte;
    stream_.expires_after(client_timeout);
    stream_.async_read_some(asio::buffer(&byte, 1),
                            [&](boost::system::error_code ec, std::size_t n) {
                              result = n > 0 ? asio::error::message_size : ec;
                            });
    run();
    return result;
  }

  void close() { stream_.close(); }

 private:
  void run() {
    ioc_.restart();
    ioc_.run();
  }

  asio::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
};

bool closed_by_peer(boost::system::error_code ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

request make_request(http::verb method, std::string target, std::string body = {}) {
  request req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.keep_alive(true);
  if (!body.empty() || method == http::verb::post) {
    req.body() = std::move(body);
    req.prepare_payload();
  }
  return req;
}

// "code" of a JSON error body, or a description of what was wrong with it.
std::string error_code_of(const response& res) {
  if (res[http::field::content_type] != "application/json") return "<not json>";
  rapidjson::Document doc;
  doc.Parse(res.body().c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("error") ||
      !doc["error"].IsObject() || !doc["error"].HasMember("code") ||
      !doc["error"]["code"].IsString() || !doc["error"].HasMember("message")) {
    return "<bad error body: " + res.body() + ">";
  }
  return doc["error"]["code"].GetString();
}

template <class Predicate>
bool eventually(Predicate pred) {
  const auto deadline = std::chrono::steady_clock::now() + client_timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);  // polling an observable condition, not a timing guess
  }
  return true;
}

class http_server_test : public ::testing::Test {
 protected:
  http_server_test() : routes_(std::make_shared<router>()) {
    routes_->add(http::verb::get, "/echo", [](const request& req, responder res) {
      res.send(json_response(req, http::status::ok, R"({"echo":"get"})"));
    });
    routes_->add(http::verb::post, "/echo", [](const request& req, responder res) {
      res.send(json_response(req, http::status::ok, req.body()));
    });
    routes_->add(http::verb::get, "/items/{id}", [](const request& req, responder res) {
      res.send(json_response(req, http::status::ok, std::string(res.param("id"))));
    });
    // Completes from a thread that is not an io_context thread, like a broker reply would.
    routes_->add(http::verb::get, "/async", [this](const request& req, responder res) {
      asio::post(worker_, [res, version = req.version(), keep = req.keep_alive()] {
        response r{http::status::ok, version};
        r.keep_alive(keep);
        r.body() = "from worker";
        res.send(std::move(r));
      });
    });
    routes_->add(http::verb::get, "/slow", [this](const request& req, responder res) {
      slow_started_.set_value();
      asio::post(worker_, [this, res, req] {
        slow_release_.get_future().wait();
        res.send(json_response(req, http::status::ok, R"({"slow":true})"));
      });
    });
    routes_->add(http::verb::get, "/throw", [](const request&, responder) -> void {
      throw std::runtime_error("handler bug");
    });
    routes_->add(http::verb::get, "/drop", [](const request&, responder) {});
  }

  ~http_server_test() override {
    slow_release_.set_value();  // never leave the worker blocked
    worker_.join();
    if (server_) {
      std::promise<void> done;
      server_->shutdown([&] { done.set_value(); });
      done.get_future().wait_for(client_timeout);
      server_.reset();
    }
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }

  void start(http_options opts = {}) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    server_ = std::make_unique<http_server>(ioc_, opts, routes_, metrics_);
    const auto started = server_->start();
    ASSERT_TRUE(started) << started.error();
    ASSERT_NE(server_->port(), 0);
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }

  std::uint16_t port() const { return server_->port(); }

  // Connected client; fails the test if the server does not accept.
  std::unique_ptr<client> connect() {
    auto c = std::make_unique<client>();
    const auto ec = c->connect(port());
    EXPECT_FALSE(ec) << ec.message();
    return c;
  }

  // Declared before the io_context: connections destroyed with it still update the metrics.
  metrics_registry metrics_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  std::vector<std::thread> threads_;
  asio::thread_pool worker_{1};
  std::promise<void> slow_started_;
  std::promise<void> slow_release_;
  std::shared_ptr<router> routes_;
  std::unique_ptr<http_server> server_;
};

TEST_F(http_server_test, keep_alive_serves_two_requests_on_one_connection) {
  start();
  auto c = connect();
  auto res = c->roundtrip(make_request(http::verb::get, "/echo"));
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ(res.body(), R"({"echo":"get"})");

  res = c->roundtrip(make_request(http::verb::post, "/echo", R"({"n":2})"));
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), R"({"n":2})");
  EXPECT_EQ(server_->active_connections(), 1u);
}

TEST_F(http_server_test, path_parameters_reach_the_handler) {
  start();
  auto c = connect();
  const auto res = c->roundtrip(make_request(http::verb::get, "/items/abc%20d?x=1"));
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), "abc d");
}

TEST_F(http_server_test, unknown_path_is_404_and_wrong_method_405_both_json) {
  start();
  auto c = connect();
  auto res = c->roundtrip(make_request(http::verb::get, "/nope"));
  EXPECT_EQ(res.result(), http::status::not_found);
  EXPECT_EQ(error_code_of(res), "not_found");

  res = c->roundtrip(make_request(http::verb::delete_, "/echo"));
  EXPECT_EQ(res.result(), http::status::method_not_allowed);
  EXPECT_EQ(error_code_of(res), "method_not_allowed");
  EXPECT_EQ(res[http::field::allow], "GET, POST");

  // Both are ordinary answers: the connection stays usable.
  res = c->roundtrip(make_request(http::verb::get, "/echo"));
  EXPECT_EQ(res.result(), http::status::ok);
}

TEST_F(http_server_test, oversized_body_is_413_json_and_connection_closes) {
  http_options opts;
  opts.max_body_bytes = 1024;
  start(opts);

  auto ok = connect();
  auto res = ok->roundtrip(make_request(http::verb::post, "/echo", std::string(1024, 'a')));
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body().size(), 1024u);

  auto c = connect();
  res = c->roundtrip(make_request(http::verb::post, "/echo", std::string(4096, 'a')));
  EXPECT_EQ(res.result(), http::status::payload_too_large);
  EXPECT_EQ(error_code_of(res), "payload_too_large");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(closed_by_peer(c->wait_closed()));
  EXPECT_THAT(metrics_.render(),
              HasSubstr("bellhop_http_requests_total{route=\"/echo\",method=\"POST\","
                        "status=\"413\"} 1\n"));
}

TEST_F(http_server_test, expect_100_continue_gets_interim_response) {
  start();
  auto c = connect();
  ASSERT_FALSE(
      c->write_raw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   "Expect: 100-continue\r\n\r\n"));
  http::response<http::empty_body> interim;
  ASSERT_FALSE(c->read(interim));
  EXPECT_EQ(interim.result(), http::status::continue_);
  ASSERT_FALSE(c->write_raw("hello"));
  response res;
  ASSERT_FALSE(c->read(res));
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), "hello");
}

TEST_F(http_server_test, pipelined_requests_in_one_write_are_answered_in_order) {
  start();
  auto c = connect();
  ASSERT_FALSE(c->write_raw(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
      "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nthree"));
  for (const char* expected : {"one", R"({"echo":"get"})", "three"}) {
    response res;
    ASSERT_FALSE(c->read(res));
    EXPECT_EQ(res.result(), http::status::ok);
    EXPECT_EQ(res.body(), expected);
    EXPECT_TRUE(res.keep_alive());
  }
}

TEST_F(http_server_test, request_arriving_in_fragments_is_read_whole) {
  start();
  auto c = connect();
  const std::string body(3000, 'b');
  const std::string raw =
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + body;
  // Split inside the request line, inside the header, at the blank line and inside the body.
  std::size_t at = 0;
  for (std::size_t cut : {std::size_t{5}, std::size_t{30}, std::size_t{52}, std::size_t{800}, raw.size()}) {
    ASSERT_FALSE(c->write_raw(std::string_view(raw).substr(at, cut - at)));
    at = cut;
    std::this_thread::sleep_for(20ms);
  }
  response res;
  ASSERT_FALSE(c->read(res));
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), body);
}

TEST_F(http_server_test, head_has_the_headers_of_get_and_no_body_and_http10_closes) {
  start();
  auto c = connect();
  ASSERT_FALSE(c->write_raw("HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  http::response_parser<http::empty_body> head;
  head.skip(true);  // a HEAD answer: Content-Length describes the GET body
  ASSERT_FALSE(c->read(head));
  EXPECT_EQ(head.get().result(), http::status::ok);
  EXPECT_EQ(head.get()[http::field::content_length], "14");
  EXPECT_EQ(head.get()[http::field::server], "bellhop");
  // The connection is still in step: the next answer is the next request's.
  auto res = c->roundtrip(make_request(http::verb::get, "/echo"));
  EXPECT_EQ(res.body(), R"({"echo":"get"})");

  auto old = connect();
  ASSERT_FALSE(old->write_raw("GET /echo HTTP/1.0\r\nHost: x\r\n\r\n"));
  response res10;
  ASSERT_FALSE(old->read(res10));
  EXPECT_EQ(res10.version(), 10);
  EXPECT_EQ(res10.body(), R"({"echo":"get"})");
  EXPECT_TRUE(closed_by_peer(old->wait_closed()));
}

TEST_F(http_server_test, malformed_request_line_is_400_json_then_close) {
  start();
  auto c = connect();
  ASSERT_FALSE(c->write_raw("this is not http\r\n\r\n"));
  response res;
  ASSERT_FALSE(c->read(res));
  EXPECT_EQ(res.result(), http::status::bad_request);
  EXPECT_EQ(error_code_of(res), "bad_request");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(closed_by_peer(c->wait_closed()));
}

TEST_F(http_server_test, oversized_headers_are_431_json) {
  http_options opts;
  opts.max_header_bytes = 1024;
  start(opts);
  auto c = connect();
  auto req = make_request(http::verb::get, "/echo");
  req.set("X-Filler", std::string(2048, 'x'));
  const auto res = c->roundtrip(req);
  EXPECT_EQ(res.result(), http::status::request_header_fields_too_large);
  EXPECT_EQ(error_code_of(res), "headers_too_large");
}

TEST_F(http_server_test, idle_keep_alive_connection_is_closed_after_idle_timeout) {
  http_options opts;
  opts.idle_timeout = 200ms;
  start(opts);
  auto c = connect();
  EXPECT_EQ(c->roundtrip(make_request(http::verb::get, "/echo")).result(), http::status::ok);
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(closed_by_peer(c->wait_closed()));
  EXPECT_GE(std::chrono::steady_clock::now() - before, 150ms);  // closed by the timer, not at once
  EXPECT_TRUE(eventually([&] { return server_->active_connections() == 0; }));
}

TEST_F(http_server_test, slow_request_is_cut_off_after_read_timeout) {
  http_options opts;
  opts.read_timeout = 200ms;
  start(opts);
  auto c = connect();
  // Half a header, then silence (slowloris).
  ASSERT_FALSE(c->write_raw("GET /echo HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_TRUE(closed_by_peer(c->wait_closed()));
  // The socket closes as the timer fires, just before the session counts the timeout.
  EXPECT_TRUE(eventually([&] {
    return metrics_.render().find("\nbellhop_http_read_timeouts_total 1\n") != std::string::npos;
  }));
}

TEST_F(http_server_test, read_timeout_does_not_run_while_handler_is_pending) {
  http_options opts;
  opts.read_timeout = 100ms;
  opts.idle_timeout = 100ms;
  start(opts);
  auto c = connect();
  ASSERT_FALSE(c->write(make_request(http::verb::get, "/slow")));
  slow_started_.get_future().wait();
  // Wait well past both timeouts, observing that the server still holds the connection.
  const auto until = std::chrono::steady_clock::now() + 400ms;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(server_->active_connections(), 1u);
    std::this_thread::sleep_for(10ms);
  }
  slow_release_.set_value();
  response res;
  ASSERT_FALSE(c->read(res));
  EXPECT_EQ(res.result(), http::status::ok);
  slow_release_ = {};  // the fixture releases again on teardown
}

TEST_F(http_server_test, connections_over_the_limit_get_503_json) {
  http_options opts;
  opts.max_connections = 2;
  start(opts);
  auto c1 = connect();
  auto c2 = connect();
  // A completed request proves each connection was accepted and counted.
  EXPECT_EQ(c1->roundtrip(make_request(http::verb::get, "/echo")).result(), http::status::ok);
  EXPECT_EQ(c2->roundtrip(make_request(http::verb::get, "/echo")).result(), http::status::ok);

  auto c3 = connect();
  const auto res = c3->roundtrip(make_request(http::verb::get, "/echo"));
  EXPECT_EQ(res.result(), http::status::service_unavailable);
  EXPECT_EQ(error_code_of(res), "too_many_connections");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(closed_by_peer(c3->wait_closed()));
  EXPECT_THAT(metrics_.render(), HasSubstr("\nbellhop_http_connections_rejected_total 1\n"));

  // A slot that frees up is usable again.
  c1->close();
  ASSERT_TRUE(eventually([&] { return server_->active_connections() == 1; }));
  auto c4 = connect();
  EXPECT_EQ(c4->roundtrip(make_request(http::verb::get, "/echo")).result(), http::status::ok);
}

TEST_F(http_server_test, handler_may_respond_from_another_thread) {
  start();
  auto c = connect();
  for (int i = 0; i < 3; ++i) {
    const auto res = c->roundtrip(make_request(http::verb::get, "/async"));
    EXPECT_EQ(res.result(), http::status::ok);
    EXPECT_EQ(res.body(), "from worker");
  }
}

TEST_F(http_server_test, throwing_handler_is_500_and_server_keeps_serving) {
  start();
  auto c = connect();
  auto res = c->roundtrip(make_request(http::verb::get, "/throw"));
  EXPECT_EQ(res.result(), http::status::internal_server_error);
  EXPECT_EQ(error_code_of(res), "internal_error");
  res = c->roundtrip(make_request(http::verb::get, "/echo"));
  EXPECT_EQ(res.result(), http::status::ok);
}

TEST_F(http_server_test, handler_dropping_its_responder_is_500) {
  start();
  auto c = connect();
  const auto res = c->roundtrip(make_request(http::verb::get, "/drop"));
  EXPECT_EQ(res.result(), http::status::internal_server_error);
  EXPECT_EQ(error_code_of(res), "internal_error");
}

TEST_F(http_server_test, graceful_shutdown_finishes_request_in_flight) {
  start();
  auto idle = connect();
  EXPECT_EQ(idle->roundtrip(make_request(http::verb::get, "/echo")).result(), http::status::ok);
  auto busy = connect();
  ASSERT_FALSE(busy->write(make_request(http::verb::get, "/slow")));
  slow_started_.get_future().wait();

  std::promise<void> done;
  auto done_future = done.get_future();
  server_->shutdown([&] { done.set_value(); });

  // The idle keep-alive connection is closed at once; the server no longer accepts.
  EXPECT_TRUE(closed_by_peer(idle->wait_closed()));
  EXPECT_TRUE(eventually([&] { return static_cast<bool>(client().connect(port())); }));
  EXPECT_EQ(done_future.wait_for(0s), std::future_status::timeout);  // busy is still open

  slow_release_.set_value();
  response res;
  ASSERT_FALSE(busy->read(res));
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), R"({"slow":true})");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(closed_by_peer(busy->wait_closed()));

  ASSERT_EQ(done_future.wait_for(client_timeout), std::future_status::ready);
  // The last session's connection slot is released as the session object goes, which may be
  // a moment after it reported itself closed (another thread): wait for it.
  EXPECT_TRUE(eventually([&] { return server_->active_connections() == 0u; }));
  EXPECT_EQ(client().connect(port()), asio::error::connection_refused);
  slow_release_ = {};
}

TEST_F(http_server_test, shutdown_without_connections_calls_done) {
  start();
  std::promise<void> done;
  server_->shutdown([&] { done.set_value(); });
  EXPECT_EQ(done.get_future().wait_for(client_timeout), std::future_status::ready);
  EXPECT_EQ(client().connect(port()), asio::error::connection_refused);
}

TEST_F(http_server_test, metrics_count_requests_by_route_method_and_status) {
  start();
  auto c = connect();
  c->roundtrip(make_request(http::verb::get, "/echo"));
  c->roundtrip(make_request(http::verb::get, "/echo"));
  c->roundtrip(make_request(http::verb::get, "/items/1"));
  c->roundtrip(make_request(http::verb::get, "/items/2"));
  c->roundtrip(make_request(http::verb::get, "/no/such/path"));

  const auto text = metrics_.render();
  EXPECT_THAT(text, HasSubstr("bellhop_http_requests_total{route=\"/echo\",method=\"GET\","
                              "status=\"200\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("bellhop_http_requests_total{route=\"/items/{id}\",method=\"GET\","
                              "status=\"200\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("bellhop_http_requests_total{route=\"unmatched\",method=\"GET\","
                              "status=\"404\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("bellhop_http_request_duration_seconds_count{route=\"/echo\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("bellhop_http_request_duration_seconds_bucket{route=\"/echo\","
                              "le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nbellhop_http_connections_active 1\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("no/such/path")));
}

TEST_F(http_server_test, port_in_use_is_a_one_line_error) {
  start();
  http_options opts;
  opts.host = "127.0.0.1";
  opts.port = port();
  http_server second(ioc_, opts, routes_, metrics_);
  const auto started = second.start();
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error(),
              StartsWith("cannot listen on 127.0.0.1:" + std::to_string(port()) + ": "));
  EXPECT_THAT(started.error(), HasSubstr("in use"));
  EXPECT_EQ(started.error().find('\n'), std::string::npos);
}

}  // namespace
}  // namespace bellhop::gateway
