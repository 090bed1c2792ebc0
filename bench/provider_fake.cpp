// A provider API stand-in for the outbound benchmark: answers every request at once with a
// Graph-API-style success (a new message id each time), on 127.0.0.1, and records when each
// request arrived. Stops on SIGTERM/SIGINT and prints
//   provider_fake requests=N first_to_last_s=S max_in_any_1s=M connections=C
// (M: the most requests that arrived within any 1 s: the pacing a rate limit must keep; C: the
// TCP connections they came on, so connection reuse shows).
//   provider_fake --port-file FILE      (writes the port it listens on)
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

std::vector<clock_type::time_point> arrivals;  // one thread: no lock
std::size_t connections = 0;

class session : public std::enable_shared_from_this<session> {
 public:
  explicit session(tcp::socket s) : stream_(std::move(s)) {}
  void read() {
    req_ = {};
    http::async_read(stream_, buffer_, req_, [self = shared_from_this()](beast::error_code ec,
                                                                          std::size_t) {
      if (ec) return;
      arrivals.push_back(clock_type::now());
      self->res_ = {http::status::ok, 11};
      self->res_.set(http::field::content_type, "application/json");
      self->res_.body() = R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.)" +
                          std::to_string(arrivals.size()) + "\"}]}";
      self->res_.keep_alive(self->req_.keep_alive());
      self->res_.prepare_payload();
      http::async_write(self->stream_, self->res_,
                        [self](beast::error_code ec2, std::size_t) {
                          if (!ec2 && self->res_.keep_alive()) self->read();
                        });
    });
  }

 private:
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

void accept(tcp::acceptor& a) {
  a.async_accept([&a](beast::error_code ec, tcp::socket s) {
    if (ec) return;
    ++connections;
    std::make_shared<session>(std::move(s))->read();
    accept(a);
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::string port_file;
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::string(argv[i]) == "--port-file") port_file = argv[i + 1];
  if (port_file.empty()) {
    std::fprintf(stderr, "usage: provider_fake --port-file FILE\n");
    return 2;
  }
  asio::io_context ioc{1};
  tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  std::ofstream(port_file) << acceptor.local_endpoint().port() << "\n";
  accept(acceptor);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
  ioc.run();

  std::size_t max_1s = 0;
  for (std::size_t i = 0, j = 0; j < arrivals.size(); ++j) {
    while (arrivals[j] - arrivals[i] >= std::chrono::seconds(1)) ++i;
    max_1s = std::max(max_1s, j - i + 1);
  }
  const double span = arrivals.size() < 2 ? 0.0
                                          : std::chrono::duration<double>(arrivals.back() -
                                                                          arrivals.front())
                                                .count();
  std::printf("provider_fake requests=%zu first_to_last_s=%.3f max_in_any_1s=%zu connections=%zu\n",
              arrivals.size(), span, max_1s, connections);
  return 0;
}
