#pragma once

// application/x-www-form-urlencoded bodies, read and written. Twilio posts its webhooks in this
// form and takes its API parameters in it; so may other providers.

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bellhop::channels {

// Name/value pairs in the order they came, repeated names included.
using form_fields = std::vector<std::pair<std::string, std::string>>;

struct form_error {
  std::size_t offset = 0;  // of the offending '%' in the body
  std::string message;
};

// Parses a form body: pieces separated by '&' (empty pieces are skipped), each split at its
// first '=' into name and value (a piece without '=' is a name with an empty value); in both,
// '+' stands for a space and %XX (either case of hex) for the byte XX. Names and values are
// bytes, not checked for UTF-8. A '%' not followed by two hex digits is an error: browsers keep
// it as it is, but a provider never sends one, so it means a broken or forged body.
boost::system::result<form_fields, form_error> parse_form(std::string_view body);

// The value of the first field named `name`, nullptr if there is none.
const std::string* form_value(const form_fields& fields, std::string_view name);

// Percent-encodes every byte except the unreserved ALPHA DIGIT - . _ ~ (RFC 3986 2.3): a space
// is "%20" and '+' is "%2B", so no decoder can read it differently.
std::string form_encode(std::string_view text);

// "name=value&…" in the given order, names and values encoded with form_encode.
std::string encode_form(const form_fields& fields);

// Lets result<form_fields, form_error>::value() throw (std::invalid_argument with the message).
[[noreturn]] void throw_exception_from_error(const form_error& e,
                                             const boost::source_location& loc);

}  // namespace bellhop::channels
