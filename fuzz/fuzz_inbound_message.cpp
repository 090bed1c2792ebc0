// parse_inbound_message: the body of POST /v1/messages/inbound (and of every channel's message
// once adapted). An accepted body yields fields within the documented limits and an envelope
// that is one valid JSON object.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bellhop/contract/keys.hpp"
#include "bellhop/core/inbound_message.hpp"
#include "bellhop/json/parse.hpp"
#include "fuzz_check.hpp"
#include "json_input.hpp"

namespace gw = bellhop::gateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const gw::inbound_limits limits{
      .max_text_bytes = 1024, .max_depth = 16, .max_attachments = 10, .max_metadata_bytes = 512};
  const auto now = std::chrono::system_clock::time_point(std::chrono::milliseconds(1795000000123));
  auto m = gw::parse_inbound_message(body, limits, now);
  if (!m) {
    const auto& e = m.error();
    FUZZ_CHECK(e.status == 400 || e.status == 422);
    FUZZ_CHECK(!e.code.empty() && !e.message.empty());
    return 0;
  }
  FUZZ_CHECK(bellhop::contract::is_property_id(m->property_id));
  FUZZ_CHECK(gw::is_known_channel(m->channel));
  FUZZ_CHECK(!m->external_id.empty() && m->external_id.size() <= gw::max_external_id_bytes);
  FUZZ_CHECK(!m->from.empty() && m->from.size() <= 320);
  FUZZ_CHECK(m->guest_name.size() <= gw::max_guest_name_bytes);
  FUZZ_CHECK(m->id.size() == 26);
  FUZZ_CHECK(m->conversation_id.size() == 34 && m->conversation_id.starts_with("c_"));
  FUZZ_CHECK(m->received_ms == 1795000000123);

  if (!json_input_valid(body)) return 0;
  rapidjson::Document envelope;
  bellhop::json::limits lim;
  lim.max_depth = 32;
  const auto r = bellhop::json::parse(m->envelope, envelope, lim);
  FUZZ_CHECK(r);
  FUZZ_CHECK(envelope.IsObject());
  const auto text = envelope.FindMember("text");
  FUZZ_CHECK(text != envelope.MemberEnd() && text->value.IsString());
  FUZZ_CHECK(text->value.GetStringLength() <= limits.max_text_bytes);
  const auto direction = envelope.FindMember("direction");
  FUZZ_CHECK(direction != envelope.MemberEnd() && direction->value == "inbound");
  return 0;
}
