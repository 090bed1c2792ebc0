#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "bellhop/broker/broker.hpp"
#include "bellhop/core/inbound_message.hpp"
#include "bellhop/json/write.hpp"

namespace bellhop::gateway {

// The admin API's listings of dead letters (docs/console.md, "Admin API"):
// GET /v1/admin/queues/{channel}/dead and GET /v1/admin/inbound/dead.

inline constexpr std::int64_t dead_letters_default_limit = 50;
inline constexpr std::int64_t dead_letters_max_limit = 200;
// What of an element that is not JSON is shown (cut at a character boundary).
inline constexpr std::size_t dead_letter_raw_bytes = 8192;

// `limit` of the query string (1..200, default 50): 400 `invalid_parameter` when it is not a
// whole number or is given twice, 422 `out_of_range` outside 1..200, 400 `unknown_parameter`
// for any other parameter.
boost::system::result<std::int64_t, validation_error> dead_letters_limit(std::string_view target);

// One element of a dead list as {"id","reason","attempts","failed_at","message"} (each null
// when it has none), read with the bounded parser:
// - an outbound dead letter {"message":…,"reason","error_code","attempts","failed_at"}: its
//   fields, the message as it was (an object), or, when the message was not JSON (the letter
//   quotes it as a string), "message": null and "element": that string;
// - any other object (an inbound dead letter is the message's envelope): it is the message,
//   `id` its id;
// - not JSON at all: "message": null and "element": the raw element.
// An "element" is cut to dead_letter_raw_bytes and made valid UTF-8.
void write_dead_letter(json::writer& w, std::string_view element);

// What one listing reads at most: an element up to dead_letter_whole_bytes is read whole (and
// parsed) while the listing holds less than dead_letters_total_bytes; any other only as its
// first dead_letter_raw_bytes (dead_letters_page.lua), shown as {"id" (when the letter starts
// with one), "reason","attempts","failed_at": null, "message": null, "element": those bytes,
// "truncated": true}.
inline constexpr std::size_t dead_letter_whole_bytes = 256 * 1024;
inline constexpr std::size_t dead_letters_total_bytes = 8 * 1024 * 1024;

// The newest `limit` elements of the dead list `key` as a JSON array of write_dead_letter's
// objects, newest first. `done` runs once, on `ex`: the array's text, or nullopt when Redis did
// not answer.
void read_dead_letters(broker::broker& redis, std::string key, std::int64_t limit,
                       boost::asio::any_io_executor ex,
                       std::function<void(std::optional<std::string>)> done);

}  // namespace bellhop::gateway
