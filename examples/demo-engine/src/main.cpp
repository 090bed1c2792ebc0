// bellhop-demo-engine: a tiny "AI engine" for Bellhop. It takes guest messages from
// inbound:messages, answers the ones an FAQ rule matches on outbound:<channel> and hands the
// rest to staff (an outbound element with a handoff), following the consumer contract of
// docs/ai-engine.md.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>

#include "bellhop/broker/broker.hpp"
#include "bellhop/broker/redis_url.hpp"
#include "default_faq.hpp"
#include "engine.hpp"
#include "faq.hpp"

namespace {

namespace asio = boost::asio;
using namespace bellhop;

int fail(const std::string& line) {
  std::fprintf(stderr, "bellhop-demo-engine: %s\n", line.c_str());
  return 2;
}

std::string default_consumer() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, 5, "host");
  return std::string(host) + "-" + std::to_string(::getpid());
}

// A consumer name becomes part of Redis keys; keep it to something a human can read back.
bool valid_consumer(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (unsigned char c : name) {
    if (c <= ' ' || c == 0x7f || c == '*' || c == '?' || c == '[' || c == ']') return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "bellhop-demo-engine: answers guests' FAQ questions from Bellhop's inbound queue and hands "
      "everything else to staff"};
  std::string redis_url, faq_file;
  demo::engine_options options;
  options.consumer = default_consumer();
  std::int64_t visibility_ms = 30000;
  app.add_option("--redis", redis_url,
                 "redis://[user:password@]host:port[/db] or unix:///path?password=…")
      ->required();
  app.add_option("--consumer", options.consumer, "unique consumer name (default hostname-pid)");
  app.add_option("--faq", faq_file, "FAQ rules, a JSON file (default: the built-in faq.json)");
  app.add_option("--visibility-timeout-ms", visibility_ms,
                 "heartbeat lifetime; Bellhop's inbound.visibility_timeout_ms")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{300}, std::int64_t{24} * 3600 * 1000));
  app.add_option("--key-prefix", options.key_prefix, "Bellhop's redis.key_prefix");
  CLI11_PARSE(app, argc, argv);
  options.visibility_timeout = std::chrono::milliseconds(visibility_ms);

  auto endpoint = broker::parse_redis_url(redis_url);
  if (!endpoint) return fail("--redis: " + endpoint.error().message);
  if (!valid_consumer(options.consumer)) {
    return fail("--consumer: 1 to 128 printable characters without spaces or * ? [ ]");
  }
  auto rules =
      faq_file.empty() ? demo::faq::parse(demo::default_faq_json) : demo::faq::load_file(faq_file);
  if (!rules) return fail("--faq: " + rules.error());

  spdlog::info("bellhop-demo-engine: consumer {}, Redis {}, {} FAQ rules{}", options.consumer,
               endpoint->redacted(), rules->rules().size(),
               options.key_prefix.empty() ? "" : ", key prefix " + options.key_prefix);

  asio::io_context io(1);
  broker::broker_options bo;
  bo.endpoint = *endpoint;
  bo.client_name = "bellhop-demo-engine:" + options.consumer;
  bo.max_blocking_connections = 2;
  broker::broker redis(bo);
  redis.start();

  demo::engine engine(io.get_executor(), redis, std::move(*rules), options);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  int exit_code = 0;
  bool signalled = false;
  // First signal: graceful stop. Second: leave now; the message in hand (if any) stays in the
  // processing list and Bellhop's reaper redelivers it once the heartbeat has expired.
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGINT || sig == SIGTERM) {
          if (std::exchange(signalled, true)) {
            spdlog::warn("second signal: exiting without finishing");
            exit_code = 1;
            io.stop();
            return;
          }
          engine.stop();
          signals.async_wait(on_signal);
        }
      };
  signals.async_wait(on_signal);
  engine.start([&] { signals.cancel(); });
  io.run();
  redis.stop();
  spdlog::info("bellhop-demo-engine: exiting ({})", exit_code == 0 ? "clean" : "forced");
  return exit_code;
}
