#include "bellhop/channels/types.hpp"

namespace bellhop::channels {

const char* to_string(opt_out_action a) noexcept {
  switch (a) {
    case opt_out_action::stop: return "stop";
    case opt_out_action::start: return "start";
    case opt_out_action::help: return "help";
  }
  return "unknown";
}

bool sends_template(const outbound_message& m) {
  return m.template_msg && m.text.empty() && m.attachments_json == "[]";
}

const char* to_string(send_outcome o) noexcept {
  switch (o) {
    case send_outcome::sent: return "sent";
    case send_outcome::transient: return "transient";
    case send_outcome::rate_limited: return "rate_limited";
    case send_outcome::recipient_limited: return "recipient_limited";
    case send_outcome::permanent: return "permanent";
    case send_outcome::opted_out: return "opted_out";
  }
  return "unknown";
}

}  // namespace bellhop::channels
