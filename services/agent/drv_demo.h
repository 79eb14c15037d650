/*
 * drv_demo: the driver of kind "demo", the built-in synthetic component
 * (demo.h). Settings: "bytes" (decimal, the buffer length, at most
 * DEMO_BYTES_MAX; absent: DEMO_BYTES_DEFAULT). A restore takes the bytes
 * over (the state is in memory once) and refuses a state that names another
 * component. It ticks, digests its state without copying it, and gives no
 * change hints.
 */
#ifndef CKPT_AGENT_DRV_DEMO_H
#define CKPT_AGENT_DRV_DEMO_H

#include "drv.h"

#define DRV_DEMO_KIND "demo"

extern const struct drv_ops drv_demo_ops;

#endif
