// Nanosecond file times, which Node's fs cannot set: its utimes takes seconds as a double, which
// at today's dates keeps only about 240 ns. utimensat(2) gets the exact seconds and nanoseconds
// a snapshot records. Built by scripts/build-native.sh; loaded by src/operations/file-times.ts.
//
// set(path, atimeSeconds, atimeNanos, mtimeSeconds, mtimeNanos, follow) -> undefined
//   path: string or Buffer without NUL; seconds: BigInt; nanos: 0 <= n < 1e9; follow: boolean,
//   false to set a symlink's own times. Failures throw as Node's fs does (code, errno, syscall,
//   path); bad arguments throw a TypeError.
// Synchronous, as one utimensat costs less than a trip through libuv's thread pool.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>
#include "napi-fs.h"

static bool timespec_of(napi_env env, napi_value seconds, napi_value nanos, const char *what,
                        struct timespec *out) {
  int64_t s = 0;
  bool lossless = false;
  int64_t ns = -1;
  if (napi_get_value_bigint_int64(env, seconds, &s, &lossless) != napi_ok || !lossless) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", what, "seconds must be a BigInt in 64 bits");
    return false;
  }
  if (napi_get_value_int64(env, nanos, &ns) != napi_ok || ns < 0 || ns > 999999999) {
    throw_type_error(env, "ERR_INVALID_ARG_VALUE", what, "nanoseconds must be 0 to 999999999");
    return false;
  }
  out->tv_sec = (time_t)s;
  out->tv_nsec = (long)ns;
  return true;
}

static napi_value set(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!arguments(env, info, "set", 6, argv)) return NULL;
  struct timespec times[2];
  if (!timespec_of(env, argv[1], argv[2], "atime", &times[0])) return NULL;
  if (!timespec_of(env, argv[3], argv[4], "mtime", &times[1])) return NULL;
  bool follow = true;
  if (napi_get_value_bool(env, argv[5], &follow) != napi_ok) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", "follow", "must be a boolean");
    return NULL;
  }
  char *path = c_string(env, argv[0], "path");
  if (!path) return NULL;
  if (utimensat(AT_FDCWD, path, times, follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno(env, errno, follow ? "utimes" : "lutimes", path);
  free(path);
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "set", NAPI_AUTO_LENGTH, set, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "set", fn) != napi_ok)
    return NULL;
  return exports;
}
