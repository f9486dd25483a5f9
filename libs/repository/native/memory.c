// The C allocator's threshold for blocks it maps on their own (glibc's mallopt(M_MMAP_THRESHOLD)),
// which Node cannot set: such a block goes back to the kernel when it is freed. Below the
// threshold, a freed block stays in the allocator's heap, resident, until blocks above it are
// freed too; glibc raises its threshold (up to 32 MiB) each time a mapped block is freed, so the
// buffers a service passes through (NATS reads, blobs, packs) end up in that heap. Built by
// scripts/build-native.sh; loaded by src/memory.ts.
//
// mmapThreshold(bytes) -> boolean: true when the allocator took it (glibc only); bad arguments
//   throw a TypeError.
#define _GNU_SOURCE
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include "napi-fs.h"

static napi_value mmap_threshold(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!arguments(env, info, "mmapThreshold", 1, argv)) return NULL;
  int64_t bytes = -1;
  if (napi_get_value_int64(env, argv[0], &bytes) != napi_ok || bytes < 0 || bytes > 32 * 1024 * 1024) {
    throw_type_error(env, "ERR_INVALID_ARG_VALUE", "bytes", "must be 0 to 33554432");
    return NULL;
  }
  bool taken = false;
#ifdef __GLIBC__
  taken = mallopt(M_MMAP_THRESHOLD, (int)bytes) == 1;
#endif
  napi_value result;
  napi_get_boolean(env, taken, &result);
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "mmapThreshold", NAPI_AUTO_LENGTH, mmap_threshold, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "mmapThreshold", fn) != napi_ok)
    return NULL;
  return exports;
}
