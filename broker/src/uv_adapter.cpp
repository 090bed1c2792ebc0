#include "uv_adapter.hpp"

#include <new>

namespace bellhop::broker {
namespace {

struct uv_events {
  uv_poll_t handle;
  redisAsyncContext* context;
  int events;
};

void on_poll(uv_poll_t* handle, int status, int events) {
  auto* p = static_cast<uv_events*>(handle->data);
  // On a poll error let hiredis find the socket error itself through read/write.
  const int ev = status != 0 ? p->events : events;
  if (p->context && (ev & UV_READABLE)) redisAsyncHandleRead(p->context);
  if (p->context && (ev & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

void update(uv_events* p, int events) {
  if (events == p->events) return;
  p->events = events;
  if (events) {
    uv_poll_start(&p->handle, events, on_poll);
  } else {
    uv_poll_stop(&p->handle);
  }
}

void add_read(void* privdata) {
  auto* p = static_cast<uv_events*>(privdata);
  update(p, p->events | UV_READABLE);
}

void del_read(void* privdata) {
  auto* p = static_cast<uv_events*>(privdata);
  update(p, p->events & ~UV_READABLE);
}

void add_write(void* privdata) {
  auto* p = static_cast<uv_events*>(privdata);
  update(p, p->events | UV_WRITABLE);
}

void del_write(void* privdata) {
  auto* p = static_cast<uv_events*>(privdata);
  update(p, p->events & ~UV_WRITABLE);
}

void on_close(uv_handle_t* handle) { delete static_cast<uv_events*>(handle->data); }

void cleanup(void* privdata) {
  auto* p = static_cast<uv_events*>(privdata);
  p->context = nullptr;  // the context is being freed; the handle closes asynchronously
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), on_close);
}

}  // namespace

int attach_to_uv_loop(redisAsyncContext* ac, uv_loop_t* loop) {
  if (ac->ev.data != nullptr) return REDIS_ERR;
  auto* p = new (std::nothrow) uv_events{};
  if (!p) return REDIS_ERR;
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    delete p;
    return REDIS_ERR;
  }
  p->handle.data = p;
  p->context = ac;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  ac->ev.data = p;
  return REDIS_OK;
}

}  // namespace bellhop::broker
