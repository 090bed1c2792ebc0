#include "bellhop/core/outbound_lane.hpp"

namespace bellhop::gateway {

const channel_account* pick_account(std::string_view channel,
                                    const std::vector<channel_account>& accounts,
                                    std::string_view property_id, std::string_view named,
                                    std::string_view conversation, std::string& why) {
  auto find = [&](std::string_view id) -> const channel_account* {
    for (const auto& a : accounts)
      if (a.id == id) return &a;
    return nullptr;
  };
  if (!named.empty()) {
    const auto* a = find(named);
    if (a && a->property_id == property_id) return a;
    why = "account " + std::string(named) + " of channel " + std::string(channel) +
          (a ? " belongs to another property than " + std::string(property_id)
             : " is not configured");
    return nullptr;
  }
  // The conversation's account may have moved to another property, or left, since the guest
  // wrote: then the property's first account answers.
  if (const auto* a = conversation.empty() ? nullptr : find(conversation);
      a && a->property_id == property_id)
    return a;
  for (const auto& a : accounts)
    if (a.property_id == property_id) return &a;
  why = "property_id " + std::string(property_id) + " is not the property of channel " +
        std::string(channel);
  return nullptr;
}

}  // namespace bellhop::gateway
