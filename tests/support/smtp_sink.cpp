#include "support/smtp_sink.hpp"

#include <gtest/gtest.h>

#include "support/signatures.hpp"  // shell_quote

namespace bellhop::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

smtp_sink::smtp_sink(const fs::path& dir)
    : dir_(dir), cert_(dir / "smtp-cert.pem"), key_(dir / "smtp-key.pem") {
  run_capture(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
          shell_quote(key_.string()) + " -out " + shell_quote(cert_.string()),
      true);
  EXPECT_TRUE(fs::exists(cert_)) << "openssl could not make the test certificate";
  fs::create_directories(mail_dir());
}

std::uint16_t smtp_sink::start(const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {"/usr/bin/python3",
                                   (fs::path(BELLHOP_TEST_SUPPORT_DIR) / "smtp_sink.py").string(),
                                   cert_.string(),
                                   key_.string(),
                                   user,
                                   password,
                                   mail_dir().string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  process_ = child_process(argv, dir_ / "smtp-sink.log");
  std::uint16_t port = 0;
  EXPECT_TRUE(eventually(
      [&] {
        const auto out = process_.output();
        const auto at = out.find("port ");
        if (at == std::string::npos) return false;
        port = static_cast<std::uint16_t>(std::stoi(out.substr(at + 5)));
        return true;
      },
      20s))
      << process_.output();
  return port;
}

}  // namespace bellhop::test
