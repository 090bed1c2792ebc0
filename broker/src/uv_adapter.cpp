#include "uv_adapter.hpp"

#include <algorithm>
#include <new>
#include <vector>

namespace bellhop::broker {
namespace {

struct uv_events {
  uv_poll_t handle;
  redisAsyncContext* context;
  int events;             // what the poll handle watches
  bool deferred = false;  // in `deferred_writes`, waiting for flush_deferred_writes()
  bool flushing = false;  // inside flush_deferred_writes()
};

// Connected contexts with commands queued since the last flush (one loop thread each).
thread_local std::vector<uv_events*> deferred_writes;

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

// hiredis asks for a writable event after every command it queues. Watching for it would cost
// two epoll_ctl calls and one more loop iteration per batch; instead the batch is written once
// by flush_deferred_writes(). Only when that write is partial (socket buffer full), or while
// connecting (hiredis detects the connection by writability), is the poll handle involved.
void add_write(void* privdata) {
  auto* p = static_cast<uv_events*>(privdata);
  const bool connected = p->context && (p->context->c.flags & REDIS_CONNECTED);
  if (p->flushing || !connected) {
    update(p, p->events | UV_WRITABLE);
    return;
  }
  if (!p->deferred) {
    p->deferred = true;
    deferred_writes.push_back(p);
  }
}

void del_write(void* privdata) {
  auto* p = static_cast<uv_events*>(privdata);
  update(p, p->events & ~UV_WRITABLE);
}

void on_close(uv_handle_t* handle) { delete static_cast<uv_events*>(handle->data); }

void cleanup(void* privdata) {
  auto* p = static_cast<uv_events*>(privdata);
  if (p->deferred) std::erase(deferred_writes, p);
  p->context = nullptr;  // the context is being freed; the handle closes asynchronously
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), on_close);
}

}  // namespace

void flush_deferred_writes() {
  if (deferred_writes.empty()) return;
  std::vector<uv_events*> batch;
  batch.swap(deferred_writes);
  for (auto* p : batch) {
    p->deferred = false;
    if (!p->context) continue;
    p->flushing = true;
    redisAsyncHandleWrite(p->context);  // may free the context on a write error: p lives on
    p->flushing = false;                // until its handle's close callback
  }
  if (deferred_writes.empty()) {  // keep the capacity for the next round
    batch.clear();
    deferred_writes.swap(batch);
  }
}

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
