// The WhatsApp Cloud API webhook: a signed POST (the fuzzer's bytes are the body, signed with
// the configured app secret, so the parser behind the signature check is what gets fuzzed), or
// the GET subscription challenge (the bytes are the query). The first byte picks which.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bellhop/channels/email.hpp"
#include "bellhop/channels/whatsapp.hpp"
#include "json_input.hpp"
#include "webhook_checks.hpp"

namespace ch = bellhop::channels;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  ch::whatsapp::settings s;
  s.app_secret = "fuzz-app-secret";
  s.verify_token = "fuzz-verify-token";
  s.access_token = "fuzz-access-token";
  s.phone_number_id = "106540352242922";
  s.api_base_url = "https://graph.example/v21.0";
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);

  ch::webhook w;
  if (data[0] % 4 == 0) {
    w.method = "GET";
    w.target = "/v1/webhooks/whatsapp?" + input;
    const auto r = ch::whatsapp::verify_subscription(s, w);
    FUZZ_CHECK(r.status >= 200 && r.status <= 599);
    if (r.accepted()) FUZZ_CHECK(!r.reply_body.empty() && r.reply_body.size() <= 1024);
    return 0;
  }
  w.method = "POST";
  w.target = "/v1/webhooks/whatsapp";
  w.headers["content-type"] = "application/json";
  w.body = input;
  // The same header shape as Meta's: "sha256=" + hex HMAC-SHA256 of the body.
  w.headers["x-hub-signature-256"] = ch::email::signature(s.app_secret, w.body);
  check_webhook_result(ch::whatsapp::parse_webhook(s, w), "whatsapp", json_input_valid(w.body));
  return 0;
}
