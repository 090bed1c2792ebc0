// normalize_outbound: a POST /v1/messages/outbound body, and every element read back from
// outbound:<channel>. The first byte picks the queue; an accepted message is filed as JSON that
// normalizes again to the same message.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bellhop/contract/keys.hpp"
#include "fuzz_check.hpp"
#include "json_input.hpp"
#include "bellhop/core/outbound_message.hpp"

namespace gw = bellhop::gateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static constexpr std::array<std::string_view, 5> queues = {"", "whatsapp", "sms", "email",
                                                             "webchat"};
  const std::string_view channel = queues[data[0] % queues.size()];
  const std::string_view raw(reinterpret_cast<const char*>(data + 1), size - 1);

  gw::normalized_outbound first;
  const auto error = gw::normalize_outbound(raw, channel, first);
  if (!error.empty()) return 0;
  const auto& m = first.msg;
  FUZZ_CHECK(bellhop::contract::is_property_id(m.property_id));
  FUZZ_CHECK(channel.empty() || m.channel == channel);
  FUZZ_CHECK(!m.to.empty() && m.to.size() <= 320);
  FUZZ_CHECK(m.text.size() <= 65536);
  FUZZ_CHECK(m.priority >= 1 && m.priority <= 10);
  FUZZ_CHECK(m.id.size() == 26);
  FUZZ_CHECK(first.idempotency_key.size() <= 256);
  FUZZ_CHECK(first.delay_ms >= 0);
  FUZZ_CHECK(!first.created_at.empty());

  // Input the one JSON parser refuses (see json_input.hpp) never gets this far after it.
  if (!json_input_valid(raw)) return 0;
  FUZZ_CHECK(json_input_valid(first.json));

  // The filed JSON is what the dispatcher reads back (read_filed): the same message.
  gw::normalized_outbound second;
  FUZZ_CHECK(gw::normalize_outbound(first.json, channel, second).empty());
  const auto& n = second.msg;
  FUZZ_CHECK(n.id == m.id && n.priority == m.priority && n.property_id == m.property_id);
  FUZZ_CHECK(n.channel == m.channel && n.to == m.to && n.text == m.text);
  FUZZ_CHECK(n.conversation_id == m.conversation_id && n.reply_to == m.reply_to);
  FUZZ_CHECK(n.extras == m.extras);
  // A template (WhatsApp only) comes back whole: filed JSON and Graph API body share its writer.
  FUZZ_CHECK(n.template_msg.has_value() == m.template_msg.has_value());
  FUZZ_CHECK(!m.template_msg || m.channel == "whatsapp");
  if (m.template_msg) {
    FUZZ_CHECK(n.template_msg->name == m.template_msg->name);
    FUZZ_CHECK(n.template_msg->language == m.template_msg->language);
    FUZZ_CHECK(n.template_msg->components.size() == m.template_msg->components.size());
    FUZZ_CHECK(m.template_msg->components.size() <= bellhop::channels::max_template_components);
  }
  FUZZ_CHECK(!m.text.empty() || m.attachments_json != "[]" || m.template_msg);
  FUZZ_CHECK(second.idempotency_key == first.idempotency_key);
  FUZZ_CHECK(second.created_at == first.created_at);
  return 0;
}
