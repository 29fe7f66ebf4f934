// The EMSDP codec in one include: header, IEs, commands, counters, protection, sessions.
#pragma once

#include "emsdp/channel.h"
#include "emsdp/counter.h"
#include "emsdp/header.h"
#include "emsdp/ie.h"
#include "emsdp/message.h"
#include "emsdp/outcome.h"
#include "emsdp/protect.h"
#include "emsdp/receive.h"
