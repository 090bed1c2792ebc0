// parse_client_frame: what a staff dashboard sends over /v1/realtime (docs/realtime.md).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "client_frame.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto frame = bellhop::realtime::parse_client_frame(text);
  if (!frame) {
    // The bad_request message names the problem, never the frame.
    FUZZ_CHECK(!frame.error().empty() && frame.error().size() < 200);
    return 0;
  }
  // Every field is a string of the frame: none can be longer than the frame itself.
  for (const auto* field : {&frame->type, &frame->token, &frame->property_id,
                            &frame->conversation_id, &frame->client_msg_id, &frame->text}) {
    FUZZ_CHECK(field->size() <= text.size());
  }
  FUZZ_CHECK(!(frame->since_invalid && frame->since.has_value()));
  return 0;
}
