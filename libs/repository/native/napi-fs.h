// Helpers shared by the native addons: arguments, paths as C strings, and errors thrown as
// Node's fs throws them. Static inline functions in a header: each addon is one translation unit,
// and uses only some of them. Include it after `#define _GNU_SOURCE`.
#ifndef VOLBACK_NAPI_FS_H
#define VOLBACK_NAPI_FS_H
#include <errno.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static inline char *out_of_memory(napi_env env) {
  napi_throw_error(env, "ENOMEM", "out of memory");
  return NULL;
}

static inline void throw_type_error(napi_env env, const char *code, const char *what, const char *problem) {
  char message[160];
  snprintf(message, sizeof message, "%s %s", what, problem);
  napi_throw_type_error(env, code, message);
}

// The Error Node's fs would throw: "ENOENT: no such file or directory, llistxattr '/x'".
static inline void throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  const char *code = uv_err_name(-err); // Node's names: ENOTSUP, not EOPNOTSUPP
  const char *text = uv_strerror(-err);
  size_t length = strlen(code) + strlen(text) + strlen(syscall) + strlen(path) + 16;
  char *message = malloc(length);
  if (!message) {
    out_of_memory(env);
    return;
  }
  snprintf(message, length, "%s: %s, %s '%s'", code, text, syscall, path);
  napi_value code_value, message_value, error, errno_value, syscall_value, path_value;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value);
  free(message);
  napi_create_error(env, code_value, message_value, &error);
  napi_create_int32(env, -err, &errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &path_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_set_named_property(env, error, "path", path_value);
  napi_throw(env, error);
}

// The Error throw_errno throws, as a value (to reject a promise with).
static inline napi_value errno_error(napi_env env, int err, const char *syscall, const char *path) {
  throw_errno(env, err, syscall, path);
  napi_value error = NULL;
  napi_get_and_clear_last_exception(env, &error);
  return error;
}

// Queues work on libuv's thread pool (`work` and `deferred` are the job's own fields) and returns
// its promise; NULL, with an Error thrown, when it cannot start (the caller frees the job).
static inline napi_value queue_job(napi_env env, const char *name, napi_async_execute_callback execute,
                                   napi_async_complete_callback complete, void *job, napi_async_work *work,
                                   napi_deferred *deferred) {
  napi_value promise, resource;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  if (napi_create_promise(env, deferred, &promise) != napi_ok ||
      napi_create_async_work(env, NULL, resource, execute, complete, job, work) != napi_ok ||
      napi_queue_async_work(env, *work) != napi_ok) {
    napi_throw_error(env, NULL, "could not start work on the thread pool");
    return NULL;
  }
  return promise;
}

// A string or Buffer argument as a NUL-terminated copy (free it), or NULL with a TypeError thrown.
static inline char *c_string(napi_env env, napi_value value, const char *what) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return NULL;
  char *copy = NULL;
  size_t length = 0;
  if (type == napi_string) {
    if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return NULL;
    copy = malloc(length + 1);
    if (!copy) return out_of_memory(env);
    napi_get_value_string_utf8(env, value, copy, length + 1, &length);
    if (strlen(copy) != length) {
      free(copy);
      throw_type_error(env, "ERR_INVALID_ARG_VALUE", what, "must not contain null bytes");
      return NULL;
    }
    return copy;
  }
  bool is_typed = false;
  napi_is_typedarray(env, value, &is_typed);
  napi_typedarray_type array_type;
  void *data = NULL;
  if (is_typed) napi_get_typedarray_info(env, value, &array_type, &length, &data, NULL, NULL);
  if (!is_typed || array_type != napi_uint8_array) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", what, "must be a string or a Buffer");
    return NULL;
  }
  if (length > 0 && memchr(data, 0, length)) {
    throw_type_error(env, "ERR_INVALID_ARG_VALUE", what, "must not contain null bytes");
    return NULL;
  }
  copy = malloc(length + 1);
  if (!copy) return out_of_memory(env);
  if (length > 0) memcpy(copy, data, length);
  copy[length] = '\0';
  return copy;
}

static inline int arguments(napi_env env, napi_callback_info info, const char *function, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    char problem[32];
    snprintf(problem, sizeof problem, "takes %zu argument%s", want, want == 1 ? "" : "s");
    throw_type_error(env, "ERR_MISSING_ARGS", function, problem);
    return 0;
  }
  return 1;
}

// An array argument's length; false with a TypeError thrown when it is not an array.
static inline bool array_length(napi_env env, napi_value value, const char *what, uint32_t *length) {
  bool is_array = false;
  napi_is_array(env, value, &is_array);
  if (!is_array || napi_get_array_length(env, value, length) != napi_ok) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", what, "must be an array");
    return false;
  }
  return true;
}

#endif
