#include "bellhop/core/outbound_lane.hpp"

#include <gtest/gtest.h>

namespace bellhop::gateway {
namespace {

const std::vector<channel_account> accounts = {
    {"1111", "hotel-berlin"}, {"2222", "hotel-paris"}, {"3333", "hotel-berlin"}};

std::string pick(std::string_view property, std::string_view named, std::string_view conversation,
                 std::string* why_out = nullptr) {
  std::string why;
  const auto* a = pick_account("whatsapp", accounts, property, named, conversation, why);
  if (why_out) *why_out = why;
  return a ? a->id : "(none)";
}

TEST(PickAccount, NamedThenTheConversationsThenThePropertysFirst) {
  EXPECT_EQ(pick("hotel-berlin", "3333", "1111"), "3333");
  EXPECT_EQ(pick("hotel-berlin", "", "3333"), "3333");
  EXPECT_EQ(pick("hotel-berlin", "", ""), "1111");
  EXPECT_EQ(pick("hotel-paris", "", ""), "2222");
}

TEST(PickAccount, AConversationsAccountOfAnotherPropertyOrGoneFallsBackToThePropertysFirst) {
  EXPECT_EQ(pick("hotel-berlin", "", "2222"), "1111");
  EXPECT_EQ(pick("hotel-berlin", "", "9999"), "1111");
}

TEST(PickAccount, ANamedAccountOfAnotherPropertyOrNoneIsRefusedWithTheReason) {
  std::string why;
  EXPECT_EQ(pick("hotel-berlin", "2222", "", &why), "(none)");
  EXPECT_EQ(why, "account 2222 of channel whatsapp belongs to another property than hotel-berlin");
  EXPECT_EQ(pick("hotel-berlin", "9999", "1111", &why), "(none)");
  EXPECT_EQ(why, "account 9999 of channel whatsapp is not configured");
  EXPECT_EQ(pick("hotel-rome", "", "1111", &why), "(none)");
  EXPECT_EQ(why, "property_id hotel-rome is not the property of channel whatsapp");
}

}  // namespace
}  // namespace bellhop::gateway
