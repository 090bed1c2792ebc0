#pragma once

#include "bellhop/broker/key_space.hpp"

namespace bellhop::gateway {

using broker::key_space;

}  // namespace bellhop::gateway
