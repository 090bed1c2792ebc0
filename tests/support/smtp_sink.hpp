#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace bellhop::test {

// The test mail server (tests/support/smtp_sink.py: aiosmtpd, STARTTLS, AUTH as user/password)
// for one test: a certificate for 127.0.0.1 that Bellhop trusts through smtp_ca_file, and
// every mail it takes written to a file in mail_dir().
class smtp_sink {
 public:
  static constexpr const char* user = "hotel-smtp";
  static constexpr const char* password = "smtp-password-0123";

  // Makes the certificate and the mail folder under `dir`; the server starts with start().
  explicit smtp_sink(const std::filesystem::path& dir);

  // Starts the server (with the script's `extra` options, e.g. {"--reject-rcpt-code", "550"})
  // and returns its port once it listens; 0, and a test failure, if it does not within 20 s.
  std::uint16_t start(const std::vector<std::string>& extra = {});

  const std::filesystem::path& cert() const noexcept { return cert_; }
  std::filesystem::path mail_dir() const { return dir_ / "mail"; }
  std::string output() const { return process_.output(); }

 private:
  std::filesystem::path dir_, cert_, key_;
  child_process process_;
};

}  // namespace bellhop::test
