// The event envelope has one writer per language: contract::stored_event (C++) and
// core/lua/fragments/event.lua (every script that appends an event). Here both write the same
// events, through publish_event.lua on a real redis-server, and the bytes must be equal.
#include <gtest/gtest.h>

#include <string>

#include "bellhop/contract/event.hpp"
#include "bellhop/inbound/lua.hpp"
#include "support/redis_client.hpp"
#include "support/redis_server.hpp"

namespace bellhop::gateway {
namespace {

using broker::reply;

class EventLua : public ::testing::Test {
 protected:
  // What publish_event.lua stored (and published) for this envelope, with its seq.
  std::pair<std::uint64_t, std::string> written_by_lua(const contract::event_envelope& e) {
    const auto seq = client_.run({"EVAL", std::string(lua::publish_event), "2", "property:p:seq",
                                  "property:p:events", "property:p:conversations", "100",
                                  std::string(e.property_id), std::string(e.event),
                                  std::string(e.data), std::string(e.ts)});
    EXPECT_TRUE(seq.is_integer()) << seq.to_string();
    const auto n = std::to_string(seq.integer());
    const auto entries = client_.run({"XRANGE", "property:p:events", n + "-0", n + "-0"});
    EXPECT_EQ(entries.elements().size(), 1u);
    if (entries.elements().size() != 1) return {0, ""};
    const auto& fields = entries.elements()[0].elements()[1].elements();
    EXPECT_EQ(fields.size(), 2u);
    EXPECT_EQ(fields[0].str(), "event");
    return {static_cast<std::uint64_t>(seq.integer()), fields[1].str()};
  }

  test::redis_server redis_;
  test::redis_client client_{redis_.unix_endpoint()};
};

TEST_F(EventLua, FragmentAndBuilderWriteTheSameBytes) {
  const std::string envelope =
      R"({"id":"01JDQ8Y2C5R1T7B3N6M0K4W9XA","property_id":"hotel-berlin","channel":"whatsapp",)"
      R"("text":"Caf\u00e9 \"2\" / ,\"ts\":\"x\"} \u00fcber","direction":"inbound"})";
  std::string every_byte;
  for (int c = 1; c < 256; ++c) every_byte += static_cast<char>(c);
  const std::string nul = std::string(1, '\0') + "nul";
  const contract::event_envelope cases[] = {
      {"hotel-berlin", "message.created", envelope, "2026-11-27T21:00:00.123Z"},
      {"hotel-paris.v2_A", "message.status", R"({"id":"x","status":"sent"})",
       "2026-11-27T21:00:41+02:00"},
      {"p", "e", "{}", ""},
      // cjson would escape '/' (and may escape DEL): the fragment must not.
      {"hotel/a\x7f", "caf\xc3\xa9", "{}", "2026/11/27"},
      // Escaping: what no valid property id, event name or time holds, written alike anyway.
      {"a\"b\\c/d\ne\tf\x01g\x1fh\x7fi\xc3\xa9", "ev\b\f\r", "{}", "t\"s\x02"},
      {every_byte, every_byte, R"({"s":"\u0000"})", every_byte},
      {nul, "e", "{}", "t"},
  };
  std::uint64_t last = 0;
  for (const auto& e : cases) {
    SCOPED_TRACE(std::string(e.property_id));
    const auto [seq, lua_bytes] = written_by_lua(e);
    EXPECT_EQ(seq, last + 1);
    last = seq;
    EXPECT_EQ(lua_bytes, contract::stored_event(seq, e));
  }
}

TEST_F(EventLua, WhatTheFragmentWritesIsReadBackAsData) {
  const contract::event_envelope e{"hotel-berlin", "message.created", R"({"text":"hi"})",
                                   "2026-11-27T21:00:00.123Z"};
  const auto [seq, bytes] = written_by_lua(e);
  const auto v = contract::parse_stored_event(bytes);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->seq, seq);
  EXPECT_EQ(v->envelope.property_id, e.property_id);
  EXPECT_EQ(v->envelope.event, e.event);
  EXPECT_EQ(v->envelope.data, e.data);
  EXPECT_EQ(v->envelope.ts, e.ts);
}

}  // namespace
}  // namespace bellhop::gateway
