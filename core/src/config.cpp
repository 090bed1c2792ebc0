#include "bellhop/core/config.hpp"

namespace bellhop::gateway {

std::map<std::string, std::string> channel_properties(const config& cfg) {
  std::map<std::string, std::string> out;
  if (cfg.channels.whatsapp) out["whatsapp"] = cfg.channels.whatsapp->property_id;
  if (cfg.channels.twilio) out["sms"] = cfg.channels.twilio->property_id;
  if (cfg.channels.email) out["email"] = cfg.channels.email->property_id;
  if (cfg.channels.webchat) out["webchat"] = cfg.channels.webchat->property_id;
  return out;
}

}  // namespace bellhop::gateway
