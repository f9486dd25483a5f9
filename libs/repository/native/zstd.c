// zstd with contexts kept from call to call. node:zlib's sync calls build a stream object and a
// zstd context for every blob (about 25 µs of a 40 µs compression of a 6 KiB blob here); a backup
// of tens of thousands of small files pays that once per file, in the thread that sets the pace.
// This addon calls the zstd that Node itself is built with (the node binary exports its ZSTD_*
// functions to addons, as it does OpenSSL's and zlib's), so frames are the ones node:zlib makes,
// and no other zstd is built or shipped. Each thread (Node environment) has its own contexts.
// Built by scripts/build-native.sh; loaded by src/format/compression.ts, which falls back to
// node:zlib without it. Only functions of zstd.h's stable API are declared here.
//
// compress(src, level) -> Buffer          one frame with its content size; throws on failure
// compressedSize(src, level) -> number    the length of that frame, without making a Buffer
// decompress(src, length) -> Buffer | undefined
//   exactly `length` bytes from `src`, which must be exactly one frame; undefined when it is not,
//   or when the frame is damaged or of another length (the caller's fallback words the error)
#define _GNU_SOURCE
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "napi-fs.h"

typedef struct ZSTD_CCtx_s ZSTD_CCtx;
typedef struct ZSTD_DCtx_s ZSTD_DCtx;
ZSTD_CCtx *ZSTD_createCCtx(void);
size_t ZSTD_freeCCtx(ZSTD_CCtx *cctx);
size_t ZSTD_CCtx_setParameter(ZSTD_CCtx *cctx, int param, int value);
size_t ZSTD_compress2(ZSTD_CCtx *cctx, void *dst, size_t dstCapacity, const void *src, size_t srcSize);
size_t ZSTD_compressBound(size_t srcSize);
ZSTD_DCtx *ZSTD_createDCtx(void);
size_t ZSTD_freeDCtx(ZSTD_DCtx *dctx);
size_t ZSTD_decompressDCtx(ZSTD_DCtx *dctx, void *dst, size_t dstCapacity, const void *src, size_t srcSize);
size_t ZSTD_findFrameCompressedSize(const void *src, size_t srcSize);
unsigned ZSTD_isError(size_t code);
const char *ZSTD_getErrorName(size_t code);
#define ZSTD_c_compressionLevel 100

// Frames up to this bound are written to a buffer the thread keeps, then copied to one of their
// own size; larger ones to a buffer of their own for the call.
#define SCRATCH (1024 * 1024)

typedef struct {
  ZSTD_CCtx *cctx;
  ZSTD_DCtx *dctx;
  char *scratch;
} contexts;

static void free_contexts(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  contexts *c = data;
  if (c->cctx) ZSTD_freeCCtx(c->cctx);
  if (c->dctx) ZSTD_freeDCtx(c->dctx);
  free(c->scratch);
  free(c);
}

static contexts *contexts_of(napi_env env) {
  contexts *c = NULL;
  if (napi_get_instance_data(env, (void **)&c) == napi_ok && c) return c;
  c = calloc(1, sizeof *c);
  if (!c || napi_set_instance_data(env, c, free_contexts, NULL) != napi_ok) {
    free(c);
    out_of_memory(env);
    return NULL;
  }
  return c;
}

static int bytes_of(napi_env env, napi_value value, const char *what, void **data, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", what, "must be a Uint8Array");
    return 0;
  }
  return 1;
}

static int level_of(napi_env env, napi_value value, int *level) {
  if (napi_get_value_int32(env, value, level) != napi_ok || *level < 1 || *level > 22) {
    throw_type_error(env, "ERR_INVALID_ARG_VALUE", "level", "must be an integer from 1 to 22");
    return 0;
  }
  return 1;
}

static void throw_zstd(napi_env env, size_t code) {
  char message[160];
  snprintf(message, sizeof message, "zstd: %s", ZSTD_getErrorName(code));
  napi_throw_error(env, "VOLBACK_ZSTD", message);
}

// Compresses src into *frame (the thread's scratch, or a buffer to free when *own); 0 with an
// error thrown when it cannot.
static size_t compress_into(napi_env env, napi_callback_info info, const char *function, char **frame, int *own) {
  napi_value argv[2];
  void *src;
  size_t length;
  int level;
  if (!arguments(env, info, function, 2, argv) || !bytes_of(env, argv[0], "src", &src, &length) ||
      !level_of(env, argv[1], &level))
    return 0;
  contexts *c = contexts_of(env);
  if (!c) return 0;
  if (!c->cctx && !(c->cctx = ZSTD_createCCtx())) {
    out_of_memory(env);
    return 0;
  }
  size_t bound = ZSTD_compressBound(length);
  *own = bound > SCRATCH;
  if (*own) {
    *frame = malloc(bound);
  } else {
    if (!c->scratch) c->scratch = malloc(SCRATCH);
    *frame = c->scratch;
  }
  if (!*frame) {
    out_of_memory(env);
    return 0;
  }
  size_t result = ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level);
  if (!ZSTD_isError(result)) result = ZSTD_compress2(c->cctx, *frame, bound, src, length);
  if (ZSTD_isError(result)) {
    if (*own) free(*frame);
    throw_zstd(env, result);
    return 0;
  }
  return result;
}

static napi_value compress(napi_env env, napi_callback_info info) {
  char *frame = NULL;
  int own = 0;
  size_t length = compress_into(env, info, "compress", &frame, &own);
  if (!length) return NULL;
  napi_value out = NULL;
  void *copy;
  napi_create_buffer_copy(env, length, frame, &copy, &out);
  if (own) free(frame);
  return out;
}

static napi_value compressed_size(napi_env env, napi_callback_info info) {
  char *frame = NULL;
  int own = 0;
  size_t length = compress_into(env, info, "compressedSize", &frame, &own);
  if (!length) return NULL;
  if (own) free(frame);
  napi_value out = NULL;
  napi_create_double(env, (double)length, &out);
  return out;
}

static napi_value decompress(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *src;
  size_t length;
  int64_t want = -1;
  if (!arguments(env, info, "decompress", 2, argv) || !bytes_of(env, argv[0], "src", &src, &length)) return NULL;
  if (napi_get_value_int64(env, argv[1], &want) != napi_ok || want < 0 || want > INT32_MAX) {
    throw_type_error(env, "ERR_INVALID_ARG_VALUE", "length", "must be an integer from 0 to 2^31-1");
    return NULL;
  }
  napi_value none = NULL;
  napi_get_undefined(env, &none);
  if (ZSTD_findFrameCompressedSize(src, length) != length) return none;
  contexts *c = contexts_of(env);
  if (!c) return NULL;
  if (!c->dctx && !(c->dctx = ZSTD_createDCtx())) {
    out_of_memory(env);
    return NULL;
  }
  napi_value out = NULL;
  void *plain = NULL;
  if (napi_create_buffer(env, (size_t)want, &plain, &out) != napi_ok) return NULL;
  // A longer frame does not fit (an error), a shorter one returns less.
  size_t result = ZSTD_decompressDCtx(c->dctx, plain, (size_t)want, src, length);
  if (ZSTD_isError(result) || result != (size_t)want) return none;
  return out;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  static const struct {
    const char *name;
    napi_callback function;
  } functions[] = {{"compress", compress}, {"compressedSize", compressed_size}, {"decompress", decompress}};
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].function, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, functions[i].name, fn) != napi_ok)
      return NULL;
  }
  return exports;
}
