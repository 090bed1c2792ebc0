#include "bellhop/broker/reply.hpp"

#include <hiredis/hiredis.h>

namespace bellhop::broker {

reply reply::from_hiredis(const redisReply& r) {
  switch (r.type) {
    case REDIS_REPLY_STRING: return make_string(std::string(r.str, r.len));
    case REDIS_REPLY_STATUS: return make_status(std::string(r.str, r.len));
    case REDIS_REPLY_ERROR: return make_error(std::string(r.str, r.len));
    case REDIS_REPLY_INTEGER: return make_integer(r.integer);
    case REDIS_REPLY_ARRAY: {
      std::vector<reply> elements;
      elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) {
        elements.push_back(r.element[i] ? from_hiredis(*r.element[i]) : reply{});
      }
      return make_array(std::move(elements));
    }
    case REDIS_REPLY_NIL:
    default: return reply{};
  }
}

reply reply::make_integer(std::int64_t v) {
  reply r;
  r.kind_ = kind::integer;
  r.integer_ = v;
  return r;
}

reply reply::make_array(std::vector<reply> elements) {
  reply r;
  r.kind_ = kind::array;
  r.elements_ = std::move(elements);
  return r;
}

std::string reply::to_string() const {
  switch (kind_) {
    case kind::nil: return "(nil)";
    case kind::string: return "\"" + str_ + "\"";
    case kind::status: return str_;
    case kind::error: return "(error) " + str_;
    case kind::integer: return "(integer) " + std::to_string(integer_);
    case kind::array: {
      std::string out = "[";
      for (std::size_t i = 0; i < elements_.size(); ++i) {
        if (i) out += ", ";
        out += elements_[i].to_string();
      }
      return out + "]";
    }
  }
  return {};
}

}  // namespace bellhop::broker
