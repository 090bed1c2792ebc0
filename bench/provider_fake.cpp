// A provider API stand-in for the outbound benchmark: answers every request at once with a
// Graph-API-style success (a new message id each time), on 127.0.0.1, and records when each
// request arrived. Stops on SIGTERM/SIGINT and prints
//   provider_fake requests=N first_to_last_s=S max_in_any_1s=M connections=C
// (M: the most requests that arrived within any 1 s: the pacing a rate limit must keep; C: the
// TCP connections they came on, so connection reuse shows).
//   provider_fake --port-file FILE      (writes the port it listens on)
//                 [--mark TEXT --mark-count N --mark-file FILE]
// With --mark, the requests whose body holds TEXT are timed on the wall clock (to compare with
// when a script queued them); when the Nth arrives, FILE gets
//   marked=N first_marked_ms=E1 last_marked_ms=E2 others_before_last=K
// (E: milliseconds since the epoch, to the microsecond; K: unmarked requests that arrived
// before the last marked one).
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
#include <cstdlib>
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
struct {
  std::string text, file;
  std::size_t count = 0, seen = 0;
  double first_ms = 0;
} mark;

double epoch_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void on_marked() {  // a request with the mark arrived (the arrivals has it already)
  const double now = epoch_ms();
  if (++mark.seen == 1) mark.first_ms = now;
  if (mark.seen != mark.count) return;
  const std::string tmp = mark.file + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return;
  std::fprintf(f, "marked=%zu first_marked_ms=%.3f last_marked_ms=%.3f others_before_last=%zu\n",
               mark.seen, mark.first_ms, now, arrivals.size() - mark.seen);
  std::fclose(f);
  std::rename(tmp.c_str(), mark.file.c_str());  // whole, or not there
}

class session : public std::enable_shared_from_this<session> {
 public:
  explicit session(tcp::socket s) : stream_(std::move(s)) {}
  void read() {
    req_ = {};
    http::async_read(stream_, buffer_, req_, [self = shared_from_this()](beast::error_code ec,
                                                                          std::size_t) {
      if (ec) return;
      arrivals.push_back(clock_type::now());
      if (!mark.text.empty() && self->req_.body().find(mark.text) != std::string::npos)
        on_marked();
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
  bool bad = argc % 2 == 0;  // options come in pairs
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i], value = argv[i + 1];
    if (name == "--port-file") port_file = value;
    else if (name == "--mark") mark.text = value;
    else if (name == "--mark-count") mark.count = std::strtoul(value.c_str(), nullptr, 10);
    else if (name == "--mark-file") mark.file = value;
    else bad = true;
  }
  if (bad || port_file.empty() ||
      (!mark.text.empty() && (mark.count == 0 || mark.file.empty()))) {
    std::fprintf(stderr,
                 "usage: provider_fake --port-file FILE [--mark TEXT --mark-count N "
                 "--mark-file FILE]\n");
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
