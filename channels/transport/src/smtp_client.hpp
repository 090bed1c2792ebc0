#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace bellhop::gateway {

struct smtp_settings {
  std::string url;  // smtp://host[:port] (STARTTLS is required) or smtps://host[:port]
  std::string username, password;  // AUTH; both empty = none
  std::string ca_file;             // PEM bundle to verify the server with ("" = the system's)
  std::chrono::milliseconds timeout{10000};  // the whole transfer
};

// What a transfer ended with: libcurl's code (0 = accepted), the server's last reply code
// (0 if it never answered) and libcurl's words for a failure.
struct smtp_result {
  int curl_code = 0;
  long smtp_code = 0;
  std::string error;
};

// Mail submission by SMTP through libcurl: TLS always (STARTTLS required on smtp://, the
// certificate verified), AUTH when a username is set. libcurl's easy interface blocks, so
// transfers run on this client's own threads, never on an Asio thread; `done` is posted to
// the caller's executor. Email is a low-rate channel: a few threads are plenty.
class smtp_client {
 public:
  smtp_client(smtp_settings settings, std::size_t threads);
  ~smtp_client();  // finishes the transfers already started, drops the queued ones
  smtp_client(const smtp_client&) = delete;
  smtp_client& operator=(const smtp_client&) = delete;

  // `data` is the whole RFC 5322 message with CRLF line ends.
  void send(std::string envelope_from, std::string envelope_to, std::string data,
            boost::asio::any_io_executor ex, std::function<void(smtp_result)> done);

 private:
  class impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace bellhop::gateway
