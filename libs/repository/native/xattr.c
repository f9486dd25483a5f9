// Extended attributes, which Node's fs does not offer: llistxattr, lgetxattr and lsetxattr, the
// calls restic makes (a symlink's own attributes, never its target's). Built by
// scripts/build-native.sh; loaded by src/operations/xattr-native.ts.
//
// list(path) -> Buffer[]               the names, in the order the filesystem lists them
// get(path, name) -> Buffer            the value (possibly empty)
// set(path, name, value) -> undefined  creates or replaces
//   path, name: string or Buffer without NUL; value: a Uint8Array (a Buffer)
//   A failed call throws as Node's fs does: an Error with code (ENOENT, ENOTSUP, ENODATA,
//   EACCES, ...), errno, syscall and path. Bad arguments throw a TypeError (ERR_INVALID_ARG_*).
// The calls are synchronous: one llistxattr costs a few microseconds (half an lstat), less than a
// trip through libuv's thread pool.
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <uv.h>
#include "napi-fs.h"

// Most lists and values fit here; larger ones are asked for their size and read again.
#ifndef STACK_BUFFER
#define STACK_BUFFER 4096
#endif

/* llistxattr (name NULL) or lgetxattr into `stack`, or into a heap buffer (`*heap`, the
 * caller frees it) when the result grew past it; `*out` points at the bytes. */
static ssize_t read_xattr(const char *path, const char *name, char *stack, size_t stack_size,
                          char **out, char **heap) {
  *out = stack;
  *heap = NULL;
  ssize_t size = name ? lgetxattr(path, name, stack, stack_size) : llistxattr(path, stack, stack_size);
  while (size < 0 && errno == ERANGE) {
    ssize_t need = name ? lgetxattr(path, name, NULL, 0) : llistxattr(path, NULL, 0);
    if (need <= 0) return need;
    char *grown = realloc(*heap, (size_t)need);
    if (!grown) {
      errno = ENOMEM;
      return -1;
    }
    *out = *heap = grown;
    size = name ? lgetxattr(path, name, grown, (size_t)need) : llistxattr(path, grown, (size_t)need);
  }
  return size;
}

static napi_value list(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!arguments(env, info, "list", 1, argv)) return NULL;
  char *path = c_string(env, argv[0], "path");
  if (!path) return NULL;
  char stack[STACK_BUFFER];
  char *names, *heap;
  ssize_t size = read_xattr(path, NULL, stack, sizeof stack, &names, &heap);
  napi_value result = NULL;
  if (size < 0) {
    throw_errno(env, errno, "llistxattr", path);
  } else {
    napi_create_array(env, &result);
    uint32_t count = 0;
    for (ssize_t at = 0; at < size;) {
      size_t length = strnlen(names + at, (size_t)(size - at));
      napi_value name;
      napi_create_buffer_copy(env, length, names + at, NULL, &name);
      napi_set_element(env, result, count++, name);
      at += (ssize_t)length + 1;
    }
  }
  free(heap);
  free(path);
  return result;
}

static napi_value get(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!arguments(env, info, "get", 2, argv)) return NULL;
  char *path = c_string(env, argv[0], "path");
  if (!path) return NULL;
  char *name = c_string(env, argv[1], "name");
  if (!name) {
    free(path);
    return NULL;
  }
  char stack[STACK_BUFFER];
  char *value, *heap;
  ssize_t size = read_xattr(path, name, stack, sizeof stack, &value, &heap);
  napi_value result = NULL;
  if (size < 0) throw_errno(env, errno, "lgetxattr", path);
  else napi_create_buffer_copy(env, (size_t)size, value, NULL, &result);
  free(heap);
  free(name);
  free(path);
  return result;
}

static napi_value set(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!arguments(env, info, "set", 3, argv)) return NULL;
  bool is_typed = false;
  napi_is_typedarray(env, argv[2], &is_typed);
  napi_typedarray_type array_type;
  void *data = NULL;
  size_t length = 0;
  if (is_typed) napi_get_typedarray_info(env, argv[2], &array_type, &length, &data, NULL, NULL);
  if (!is_typed || array_type != napi_uint8_array) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", "value", "must be a Buffer");
    return NULL;
  }
  char *path = c_string(env, argv[0], "path");
  if (!path) return NULL;
  char *name = c_string(env, argv[1], "name");
  if (!name) {
    free(path);
    return NULL;
  }
  if (lsetxattr(path, name, length > 0 ? data : "", length, 0) != 0) throw_errno(env, errno, "lsetxattr", path);
  free(name);
  free(path);
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "list", NAPI_AUTO_LENGTH, list, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "list", fn) != napi_ok)
    return NULL;
  if (napi_create_function(env, "get", NAPI_AUTO_LENGTH, get, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "get", fn) != napi_ok)
    return NULL;
  if (napi_create_function(env, "set", NAPI_AUTO_LENGTH, set, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "set", fn) != napi_ok)
    return NULL;
  return exports;
}
