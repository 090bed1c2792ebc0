#pragma once

#include <string_view>

#include "bellhop/channels/types.hpp"
#include "bellhop/json/parse.hpp"
#include "fuzz_check.hpp"

// What every parsed provider webhook promises its caller (channels/include/.../types.hpp): an
// HTTP status; refusals carry a code; each message and status update has the fields the
// gateway relies on, and the JSON the adapter built is valid JSON of the right kind (when the
// input was: see json_input.hpp).
inline void check_webhook_result(const bellhop::channels::webhook_result& r,
                                 std::string_view channel, bool input_valid = true) {
  FUZZ_CHECK(r.status >= 200 && r.status <= 599);
  if (!r.accepted()) {
    FUZZ_CHECK(!r.error_code.empty());
    FUZZ_CHECK(r.messages.empty() && r.statuses.empty());
    return;
  }
  bellhop::json::limits lim;
  lim.max_depth = 64;
  for (const auto& m : r.messages) {
    FUZZ_CHECK(m.channel == channel);
    FUZZ_CHECK(!m.external_id.empty());
    FUZZ_CHECK(!m.from.empty());
    FUZZ_CHECK(!m.content_type.empty());
    if (!input_valid) continue;
    rapidjson::Document attachments, metadata;
    FUZZ_CHECK(bellhop::json::parse(m.attachments_json, attachments, lim));
    FUZZ_CHECK(attachments.IsArray());
    FUZZ_CHECK(attachments.Size() == m.attachment_count);
    FUZZ_CHECK(bellhop::json::parse(m.metadata_json, metadata, lim));
    FUZZ_CHECK(metadata.IsObject());
    // The typed opt-out the gateway acts on is the one the engine reads in the metadata.
    if (m.opt_out) {
      const auto said = metadata.FindMember("opt_out");
      FUZZ_CHECK(said != metadata.MemberEnd() && said->value.IsString() &&
                 std::string_view(said->value.GetString()) == to_string(*m.opt_out));
    }
  }
  for (const auto& s : r.statuses) {
    FUZZ_CHECK(!s.provider_message_id.empty());
    FUZZ_CHECK(s.status == "sent" || s.status == "delivered" || s.status == "read" ||
               s.status == "failed");
  }
}
