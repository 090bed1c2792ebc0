#pragma once

#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace bellhop::server {

// The layer under a dashboard's websocket::stream that coalesces writes: every frame Beast
// writes (events, pongs, the close frame) is appended to a buffer and its write completes at
// once; the buffer goes to the socket in one write whenever the previous one has finished. A
// dashboard that has fallen behind gets its backlog in a few large writes instead of one
// syscall per event. Beyond `high_water` unsent bytes, writes complete only as the socket
// drains, so the session's own queue (and its send_queue_bytes limit) sees the backpressure.
//
// Beast serializes its own writes, so frames are never interleaved here. All calls happen on
// the stream's strand. The socket and the buffers live in a shared state that an in-flight
// socket write keeps alive: destroying the stream closes the socket, and the aborted write
// then releases the state.
class coalescing_stream {
 public:
  using next_layer_type = boost::beast::tcp_stream;
  using executor_type = next_layer_type::executor_type;

  explicit coalescing_stream(next_layer_type&& next, std::size_t high_water = 64 * 1024)
      : state_(std::make_shared<state>(std::move(next), high_water)) {}
  ~coalescing_stream() {
    boost::system::error_code ignored;
    state_->next.socket().close(ignored);
  }
  coalescing_stream(const coalescing_stream&) = delete;
  coalescing_stream& operator=(const coalescing_stream&) = delete;

  executor_type get_executor() noexcept { return state_->next.get_executor(); }
  next_layer_type& next_layer() noexcept { return state_->next; }
  const next_layer_type& next_layer() const noexcept { return state_->next; }

  template <class MutableBufferSequence, class ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    return state_->next.async_read_some(buffers, std::forward<ReadToken>(token));
  }

  template <class ConstBufferSequence, class WriteToken>
  auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    return boost::asio::async_initiate<WriteToken, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& b) { start_write(std::move(handler), b); },
        token, buffers);
  }

  // Appends one unmasked text frame (the server side of RFC 6455 5.2) carrying `payload`.
  void write_text(std::string_view payload) {
    auto& s = *state_;
    if (s.error) return;
    unsigned char header[10];
    std::size_t n = 2;
    const auto size = payload.size();
    header[0] = 0x81;  // FIN, text
    if (size < 126) {
      header[1] = static_cast<unsigned char>(size);
    } else if (size <= 0xffff) {
      header[1] = 126;
      header[2] = static_cast<unsigned char>(size >> 8);
      header[3] = static_cast<unsigned char>(size);
      n = 4;
    } else {
      header[1] = 127;
      for (int i = 0; i < 8; ++i) header[2 + i] = static_cast<unsigned char>(size >> (56 - 8 * i));
      n = 10;
    }
    s.pending.append(reinterpret_cast<const char*>(header), n);
    s.pending.append(payload);
    s.unsent.fetch_add(n + size, std::memory_order_relaxed);
    if (!s.flushing) flush(state_);
  }

  // Bytes appended and not yet written to the socket. Thread-safe.
  std::size_t unsent() const noexcept { return state_->unsent.load(std::memory_order_relaxed); }

  // Drops what has not started on its way to the socket (a dashboard being closed as slow).
  void discard_pending() {
    state_->unsent.fetch_sub(state_->pending.size(), std::memory_order_relaxed);
    state_->pending.clear();
  }

  // Runs `then` once everything written so far has reached the socket (or failed).
  template <class Handler>
  void after_flush(Handler&& then) {
    if (!state_->flushing && state_->pending.empty()) {
      boost::asio::post(get_executor(), std::forward<Handler>(then));
      return;
    }
    state_->drained.emplace_back(std::forward<Handler>(then));
  }

 private:
  using write_handler =
      boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;
  struct waiting_write {
    write_handler handler;
    std::size_t bytes;
  };
  struct state {
    state(next_layer_type&& n, std::size_t hw) : next(std::move(n)), high_water(hw) {}
    next_layer_type next;
    std::size_t high_water;
    std::string pending;    // appended since the socket write in flight started
    std::string in_flight;  // being written
    bool flushing = false;
    std::atomic<std::size_t> unsent{0};  // pending + in_flight, readable from other threads
    boost::system::error_code error;     // the socket failed: every later write fails with it
    std::deque<waiting_write> waiting;   // completions held back above high_water
    std::deque<boost::asio::any_completion_handler<void()>> drained;
  };

  template <class Handler, class ConstBufferSequence>
  void start_write(Handler handler, const ConstBufferSequence& buffers) {
    auto& s = *state_;
    const auto bytes = boost::asio::buffer_size(buffers);
    if (s.error) return complete(std::move(handler), s.error, 0);
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      const boost::asio::const_buffer b(*it);
      s.pending.append(static_cast<const char*>(b.data()), b.size());
    }
    s.unsent.fetch_add(bytes, std::memory_order_relaxed);
    if (!s.flushing) flush(state_);
    if (s.pending.size() + s.in_flight.size() <= s.high_water)
      return complete(std::move(handler), {}, bytes);
    s.waiting.push_back({write_handler(std::move(handler)), bytes});
  }

  template <class Handler>
  void complete(Handler handler, boost::system::error_code ec, std::size_t bytes) {
    auto ex = boost::asio::get_associated_executor(handler, get_executor());
    boost::asio::post(ex, boost::beast::bind_front_handler(std::move(handler), ec, bytes));
  }

  static void flush(const std::shared_ptr<state>& s) {
    s->flushing = true;
    s->in_flight.clear();
    s->in_flight.swap(s->pending);
    boost::asio::async_write(s->next, boost::asio::buffer(s->in_flight),
                             [s](boost::system::error_code ec, std::size_t) { on_flushed(s, ec); });
  }

  // Touches only the shared state: the stream object may be gone.
  static void on_flushed(const std::shared_ptr<state>& s, boost::system::error_code ec) {
    s->flushing = false;
    s->unsent.fetch_sub(s->in_flight.size(), std::memory_order_relaxed);
    s->in_flight.clear();
    if (ec) {
      s->error = ec;
      s->unsent.fetch_sub(s->pending.size(), std::memory_order_relaxed);
      s->pending.clear();
    }
    if (!s->error && !s->pending.empty()) flush(s);
    // Release held completions while the backlog is under the mark (all of them on error).
    while (!s->waiting.empty() &&
           (s->error || s->pending.size() + s->in_flight.size() <= s->high_water)) {
      auto w = std::move(s->waiting.front());
      s->waiting.pop_front();
      // The stream's executor is the session's strand, the one Beast's handlers are bound to.
      boost::asio::post(s->next.get_executor(),
                        [h = std::move(w.handler), ec = s->error,
                         n = s->error ? 0 : w.bytes]() mutable { std::move(h)(ec, n); });
    }
    // An idle dashboard should not keep the capacity of its largest burst.
    if (!s->flushing && s->in_flight.capacity() > 16 * 1024) std::string().swap(s->in_flight);
    if (s->error || (!s->flushing && s->pending.empty())) {
      auto drained = std::move(s->drained);
      s->drained.clear();
      for (auto& d : drained) std::move(d)();
    }
  }

  std::shared_ptr<state> state_;
};

// Beast's websocket close: flush what is buffered (the close frame is in there), then the TCP
// teardown of the layer below.
template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, coalescing_stream& stream,
                    TeardownHandler&& handler) {
  stream.after_flush([&stream, role, h = std::forward<TeardownHandler>(handler)]() mutable {
    boost::beast::websocket::async_teardown(role, stream.next_layer().socket(), std::move(h));
  });
}

inline void teardown(boost::beast::role_type role, coalescing_stream& stream,
                     boost::system::error_code& ec) {
  boost::beast::websocket::teardown(role, stream.next_layer().socket(), ec);
}

}  // namespace bellhop::server
