// parse_form: application/x-www-form-urlencoded bodies (Twilio's webhooks). What parses
// encodes back to a body that parses to the same fields.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bellhop/channels/form.hpp"
#include "fuzz_check.hpp"

namespace ch = bellhop::channels;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto fields = ch::parse_form(body);
  if (!fields) {
    FUZZ_CHECK(fields.error().offset < body.size());
    FUZZ_CHECK(!fields.error().message.empty());
    return 0;
  }
  const auto encoded = ch::encode_form(*fields);
  auto again = ch::parse_form(encoded);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *fields);
  for (const auto& [name, value] : *fields) {
    const auto* found = ch::form_value(*fields, name);
    FUZZ_CHECK(found != nullptr);
  }
  return 0;
}
