#include "support/fake_provider.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace bellhop::test {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    default: return "Status";
  }
}

}  // namespace

fake_provider::fake_provider(responder respond) : respond_(std::move(respond)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listen_fd_ < 0) throw std::runtime_error("fake_provider: socket");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 128) != 0)
    throw std::runtime_error("fake_provider: bind/listen");
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

fake_provider::~fake_provider() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  {
    std::lock_guard lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : workers_) t.join();
}

void fake_provider::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    open_fds_.push_back(fd);
    ++accepted_;
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

void fake_provider::serve(int fd) {
  std::string in;
  char buf[16384];
  for (;;) {
    // Headers.
    std::size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) goto done;
      in.append(buf, static_cast<std::size_t>(n));
    }
    {
      fake_request req;
      req.at = std::chrono::steady_clock::now();
      std::string head = in.substr(0, end);
      in.erase(0, end + 4);
      auto line_end = head.find("\r\n");
      std::string first = head.substr(0, line_end);
      auto sp1 = first.find(' '), sp2 = first.rfind(' ');
      req.method = first.substr(0, sp1);
      req.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
      std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
      while (pos < head.size()) {
        auto e = head.find("\r\n", pos);
        if (e == std::string::npos) e = head.size();
        auto line = head.substr(pos, e - pos);
        auto colon = line.find(':');
        if (colon != std::string::npos) {
          auto v = line.substr(colon + 1);
          v.erase(0, v.find_first_not_of(' '));
          req.headers[lower(line.substr(0, colon))] = v;
        }
        pos = e + 2;
      }
      std::size_t length = 0;
      if (auto it = req.headers.find("content-length"); it != req.headers.end())
        length = std::stoul(it->second);
      while (in.size() < length) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) goto done;
        in.append(buf, static_cast<std::size_t>(n));
      }
      req.body = in.substr(0, length);
      in.erase(0, length);

      responder respond;
      std::size_t index;
      {
        std::lock_guard lock(mu_);
        index = requests_.size();
        requests_.push_back(req);
        respond = respond_;
      }
      fake_response res = respond(req, index);
      std::string out = "HTTP/1.1 " + std::to_string(res.status) + " " + reason(res.status) +
                        "\r\nContent-Length: " + std::to_string(res.body.size()) + "\r\n";
      if (!res.headers.count("Content-Type")) out += "Content-Type: application/json\r\n";
      for (const auto& [k, v] : res.headers) out += k + ": " + v + "\r\n";
      out += "\r\n" + res.body;
      std::size_t sent = 0;
      while (sent < out.size()) {
        ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) goto done;
        sent += static_cast<std::size_t>(n);
      }
    }
  }
done:
  std::lock_guard lock(mu_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
  ::close(fd);
}

std::vector<fake_request> fake_provider::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}
std::size_t fake_provider::count() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

std::size_t fake_provider::connections() const {
  std::lock_guard lock(mu_);
  return accepted_;
}
void fake_provider::set_responder(responder r) {
  std::lock_guard lock(mu_);
  respond_ = std::move(r);
}

}  // namespace bellhop::test
