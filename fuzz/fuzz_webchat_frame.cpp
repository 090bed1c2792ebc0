// parse_webchat_frame: what a guest's browser sends over /v1/webchat (docs/webchat.md), then,
// for a message, the inbound message it becomes. A message frame is answered either with an
// ingested message or with the error validate_inbound_message gives, and the one is given exactly
// when its text is valid UTF-8, has no NUL and is within the text limit.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bellhop/core/inbound_message.hpp"
#include "bellhop/json/parse.hpp"
#include "bellhop/json/utf8.hpp"
#include "fuzz_check.hpp"
#include "json_input.hpp"
#include "webchat_frame.hpp"

namespace gw = bellhop::gateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto frame = gw::parse_webchat_frame(text);
  bellhop::json::limits lim;
  lim.max_bytes = 8 * size + 1024;
  switch (frame.what) {
    case gw::webchat_frame::kind::refused: {
      if (!json_input_valid(text)) return 0;
      rapidjson::Document error;
      FUZZ_CHECK(bellhop::json::parse(frame.error, error, lim));
      FUZZ_CHECK(error.IsObject() && error["type"] == "error");
      return 0;
    }
    case gw::webchat_frame::kind::received:
      FUZZ_CHECK(frame.id.size() <= text.size());
      return 0;
    case gw::webchat_frame::kind::message:
      break;
  }
  FUZZ_CHECK(!frame.client_id.empty() && frame.client_id.size() <= 64);
  FUZZ_CHECK(!frame.text.empty());

  const std::string guest = "wc_0123456789abcdef0123456789abcdef";
  const gw::inbound_limits limits{.max_text_bytes = 1024};
  auto m =
      gw::validate_inbound_message(gw::webchat_guest_message(guest, frame.client_id, frame.text),
                                   "hotel-1", limits, std::chrono::system_clock::now());
  const bool utf8 = bellhop::json::is_valid_utf8(frame.text);
  const bool acceptable = utf8 && frame.text.find('\0') == std::string::npos &&
                          frame.text.size() <= limits.max_text_bytes;
  FUZZ_CHECK(m.has_value() == acceptable);
  if (m) {
    FUZZ_CHECK(m->channel == "webchat" && m->from == guest);
    FUZZ_CHECK(m->external_id == guest + ":" + frame.client_id);
  }
  return 0;
}
