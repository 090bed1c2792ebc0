#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <string>
#include <utility>
#include <vector>

namespace bellhop::gateway {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

// Values of the {name} segments of a matched route, percent-decoded, in pattern order.
using path_params = std::vector<std::pair<std::string, std::string>>;

}  // namespace bellhop::gateway
