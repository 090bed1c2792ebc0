// POST /v1/webhooks/email: the relay's JSON, signed with the webhook secret (the fuzzer's bytes
// are the body, signed here, so the parser behind the signature check is what gets fuzzed).
#include <cstddef>
#include <cstdint>
#include <string>

#include "bellhop/channels/email.hpp"
#include "json_input.hpp"
#include "webhook_checks.hpp"

namespace ch = bellhop::channels;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ch::email::settings s;
  s.webhook_secret = "fuzz-webhook-secret";
  s.from_address = "frontdesk@hotel.example";
  s.from_name = "Front Desk";
  ch::webhook w;
  w.method = "POST";
  w.target = "/v1/webhooks/email";
  w.headers["content-type"] = "application/json";
  w.body.assign(reinterpret_cast<const char*>(data), size);
  w.headers["x-bellhop-signature"] = ch::email::signature(s.webhook_secret, w.body);
  check_webhook_result(ch::email::parse_webhook(s, w), "email", json_input_valid(w.body));
  return 0;
}
