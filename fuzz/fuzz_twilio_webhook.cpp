// Twilio's SMS and status webhooks: the fuzzer's bytes are the form body, signed here the way
// Twilio signs (URL + sorted parameters), so the parser behind the signature check is what gets
// fuzzed. The first byte picks the webhook.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bellhop/channels/form.hpp"
#include "bellhop/channels/twilio.hpp"
#include "webhook_checks.hpp"

namespace ch = bellhop::channels;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  ch::twilio::settings s;
  s.account_sid = "AC00000000000000000000000000000001";
  s.auth_token = "fuzz-auth-token";
  s.from = "+15550000000";
  s.api_base_url = "https://api.twilio.example";
  s.public_url = "https://gateway.hotel.example";
  const bool status = (data[0] & 1) != 0;

  ch::webhook w;
  w.method = "POST";
  w.target = status ? "/v1/webhooks/twilio/status" : "/v1/webhooks/twilio/sms";
  w.headers["content-type"] = "application/x-www-form-urlencoded";
  w.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  if (auto fields = ch::parse_form(w.body)) {
    w.headers["x-twilio-signature"] =
        ch::twilio::signature(s.auth_token, s.public_url + w.target, *fields);
  }
  const auto r =
      status ? ch::twilio::parse_status_webhook(s, w) : ch::twilio::parse_sms_webhook(s, w);
  check_webhook_result(r, "sms");
  return 0;
}
