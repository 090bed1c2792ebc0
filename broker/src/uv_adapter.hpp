#pragma once

#include <hiredis/async.h>
#include <uv.h>

namespace bellhop::broker {

// Attaches a hiredis async context to a uv loop. Unlike hiredis 0.14's bundled libuv adapter,
// it restarts the poll handle only when the watched events change: the bundled one calls
// uv_poll_start (two epoll_ctl syscalls) for every command queued, which made a burst of
// 20,000 pipelined commands cost seconds.
// Commands queued on a connected context are not written at once: call this (on the loop's
// thread) after a round of queueing, e.g. from a uv_check handle, to write each context's
// batch with one write() and no poll-handle changes.
int attach_to_uv_loop(redisAsyncContext* ac, uv_loop_t* loop);
void flush_deferred_writes();

}  // namespace bellhop::broker
