// Opens and seals blobs on libuv's thread pool, for the repository's reads (a run of
// neighbouring blobs of one pack, read at once) and writes (one large blob, or a batch of small
// ones): Poly1305-AES, AES-256-CTR, zstd (sealing: when it pays), and the SHA-256 of each
// plaintext against its id. This was the seal worker threads' work: each one a Node environment
// to start (about 0.1 s of CPU), with JavaScript, messages and a garbage collector between the
// bytes and these same functions. Here the work is calls to the OpenSSL and zstd inside the node
// binary (it exports both to addons, see zstd.c), whose Poly1305 also uses the wider vector units
// that libsodium's does not. Built by scripts/build-native.sh; loaded by src/crypto/native-blobs.ts
// (the worker threads without it).
//
// openRun(sealed, parts, ids, key, out) -> Promise<Array<string | null>>
//   sealed: Uint8Array, the run's stored bytes; decrypted in place (the caller's to discard).
//   parts: Float64Array of 4 numbers per blob: offset in `sealed`, stored length, uncompressed
//     length (-1: not compressed), offset of its plaintext in `out`.
//   ids: Uint8Array of 32 bytes per blob (the SHA-256 each plaintext must have), or null: not checked.
//   key: Uint8Array of 64 bytes: the AES-256 key, then Poly1305-AES's k and r.
//   out: Uint8Array the plaintexts are written to, each at its offset (a stored length less 32
//     bytes, or its uncompressed length, long).
//   Each blob's result: null, or why it cannot be opened (its bytes in `out` are then undefined).
//
// sealRun(plain, lengths, ids, compress, key, out) -> Promise<Float64Array | number>
//   plain: Uint8Array, the plaintexts one after the other, `lengths` (a Float64Array) long each.
//   ids: as for openRun, or null; checked before anything is sealed.
//   compress: zstd (level 3) where four 16 KiB samples of a blob of 64 KiB or more shrink at
//     level 1 by 3% or more (any smaller blob) and the frame is shorter than the blob, as
//     format/compression.ts's compressBlob decides.
//   out: Uint8Array of at least the plaintexts' length plus 32 bytes per blob: the sealed blobs
//     (IV, ciphertext, MAC), one after the other.
//   Resolves with 2 numbers per blob (stored length, 1 when compressed), or with the index of the
//   first plaintext that does not hash to its id (nothing was sealed).
#define _GNU_SOURCE
#include <node_api.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "napi-fs.h"

// zstd.h's stable API, as zstd.c declares it.
typedef struct ZSTD_DCtx_s ZSTD_DCtx;
typedef struct ZSTD_CCtx_s ZSTD_CCtx;
ZSTD_DCtx *ZSTD_createDCtx(void);
ZSTD_CCtx *ZSTD_createCCtx(void);
size_t ZSTD_CCtx_setParameter(ZSTD_CCtx *cctx, int param, int value);
size_t ZSTD_compress2(ZSTD_CCtx *cctx, void *dst, size_t dstCapacity, const void *src, size_t srcSize);
size_t ZSTD_compressBound(size_t srcSize);
#define ZSTD_c_compressionLevel 100
size_t ZSTD_decompressDCtx(ZSTD_DCtx *dctx, void *dst, size_t dstCapacity, const void *src, size_t srcSize);
unsigned ZSTD_isError(size_t code);
const char *ZSTD_getErrorName(size_t code);

#define PART 4
#define IV 16
#define TAG 16
#define OVERHEAD (IV + TAG)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref sealed_ref, out_ref;
  uint8_t *sealed;
  size_t sealed_length;
  uint8_t *out;
  size_t out_length;
  double *parts;
  uint8_t *ids; // copied, or NULL
  size_t count;
  uint8_t key[64];
  char **errors; // per blob: NULL, or a message to free
} job;

// Each thread of the pool keeps its contexts (made on first use, kept for the process).
typedef struct {
  EVP_CIPHER_CTX *ctr, *ecb;
  EVP_MAC_CTX *mac;
  EVP_MD_CTX *md;
  ZSTD_DCtx *zstd;
  ZSTD_CCtx *cctx;
} contexts;

static __thread contexts ctx;
static EVP_MAC *poly1305;
static EVP_CIPHER *aes_ctr, *aes_ecb;
static EVP_MD *sha256;

static bool ready(void) {
  if (!ctx.ctr) ctx.ctr = EVP_CIPHER_CTX_new();
  if (!ctx.ecb) ctx.ecb = EVP_CIPHER_CTX_new();
  if (!ctx.mac) ctx.mac = EVP_MAC_CTX_new(poly1305);
  if (!ctx.md) ctx.md = EVP_MD_CTX_new();
  if (!ctx.zstd) ctx.zstd = ZSTD_createDCtx();
  if (!ctx.cctx) ctx.cctx = ZSTD_createCCtx();
  return ctx.ctr && ctx.ecb && ctx.mac && ctx.md && ctx.zstd && ctx.cctx;
}

static char *message(const char *format, ...) __attribute__((format(printf, 1, 2)));
static char *message(const char *format, ...) {
  va_list args;
  va_start(args, format);
  char *text = NULL;
  if (vasprintf(&text, format, args) < 0) text = NULL;
  va_end(args);
  return text ? text : strdup("out of memory");
}

// Poly1305-AES of a ciphertext: the one-time key is r || AES-128_k(nonce) (design.rst).
static bool mac_of(const uint8_t *key, const uint8_t *iv, const uint8_t *ciphertext, size_t n, uint8_t *mac) {
  uint8_t one_time[32];
  int written = 0;
  size_t mac_length = 0;
  memcpy(one_time, key + 48, 16);
  bool done = EVP_EncryptInit_ex2(ctx.ecb, aes_ecb, key + 32, NULL, NULL) && EVP_CIPHER_CTX_set_padding(ctx.ecb, 0) &&
              EVP_EncryptUpdate(ctx.ecb, one_time + 16, &written, iv, IV) && written == 16 &&
              EVP_MAC_init(ctx.mac, one_time, sizeof one_time, NULL) && EVP_MAC_update(ctx.mac, ciphertext, n) &&
              EVP_MAC_final(ctx.mac, mac, &mac_length, TAG) && mac_length == TAG;
  OPENSSL_cleanse(one_time, sizeof one_time);
  return done;
}

// AES-256-CTR from `in` to `out` (which may be `in`); CTR is its own inverse.
static bool ctr(const uint8_t *key, const uint8_t *iv, const uint8_t *in, uint8_t *out, size_t n) {
  int written = 0;
  if (!EVP_EncryptInit_ex2(ctx.ctr, aes_ctr, key, iv, NULL)) return false;
  for (size_t done = 0; done < n;) {
    int step = n - done > (1 << 30) ? 1 << 30 : (int)(n - done);
    if (!EVP_EncryptUpdate(ctx.ctr, out + done, &written, in + done, step) || written != step) return false;
    done += (size_t)step;
  }
  return true;
}

static bool sha256_of(const uint8_t *data, size_t n, uint8_t *digest) {
  unsigned int length = 0;
  return EVP_DigestInit_ex2(ctx.md, sha256, NULL) && EVP_DigestUpdate(ctx.md, data, n) &&
         EVP_DigestFinal_ex(ctx.md, digest, &length) && length == 32;
}

// The error of one blob, or NULL when it opened to what its id says.
static char *open_one(job *j, size_t i) {
  const double *p = j->parts + i * PART;
  size_t offset = (size_t)p[0], length = (size_t)p[1], at = (size_t)p[3];
  bool compressed = p[2] >= 0;
  if (length < OVERHEAD) return message("ciphertext of %zu bytes is too short", length);
  size_t plain = compressed ? (size_t)p[2] : length - OVERHEAD;
  if (offset > j->sealed_length || length > j->sealed_length - offset) return strdup("is cut short");
  if (at > j->out_length || plain > j->out_length - at) return strdup("has no room in the output");
  if (!ready()) return strdup("out of memory");
  uint8_t *iv = j->sealed + offset, *ciphertext = iv + IV, *tag = j->sealed + offset + length - TAG;
  size_t n = length - OVERHEAD;
  uint8_t mac[TAG];
  if (!mac_of(j->key, iv, ciphertext, n, mac)) return strdup("Poly1305-AES failed");
  if (CRYPTO_memcmp(mac, tag, TAG) != 0) return strdup("MAC does not verify: wrong key or damaged data");
  if (!compressed && n != plain) return message("decrypted to %zu bytes, expected %zu", n, plain);
  // A compressed blob is decrypted where it lies, then decompressed into the output.
  uint8_t *clear = compressed ? ciphertext : j->out + at;
  if (!ctr(j->key, iv, ciphertext, clear, n)) return strdup("AES-256-CTR failed");
  if (compressed) {
    size_t got = ZSTD_decompressDCtx(ctx.zstd, j->out + at, plain, clear, n);
    if (ZSTD_isError(got)) return message("zstd data does not decompress: %s", ZSTD_getErrorName(got));
    if (got != plain) return message("decompressed to %zu bytes, expected %zu", got, plain);
  }
  if (j->ids) {
    uint8_t digest[32];
    if (!sha256_of(j->out + at, plain, digest)) return strdup("SHA-256 failed");
    if (memcmp(digest, j->ids + i * 32, 32) != 0) return strdup("does not match its id");
  }
  return NULL;
}

static void execute(napi_env env, void *data) {
  (void)env;
  job *j = data;
  for (size_t i = 0; i < j->count; i++) j->errors[i] = open_one(j, i);
}

static void free_job(napi_env env, job *j) {
  if (j->sealed_ref) napi_delete_reference(env, j->sealed_ref);
  if (j->out_ref) napi_delete_reference(env, j->out_ref);
  if (j->errors)
    for (size_t i = 0; i < j->count; i++) free(j->errors[i]);
  free(j->errors);
  free(j->parts);
  free(j->ids);
  OPENSSL_cleanse(j->key, sizeof j->key);
  free(j);
}

static void complete(napi_env env, napi_status status, void *data) {
  job *j = data;
  napi_value results, error;
  if (status != napi_ok) {
    napi_value text;
    napi_create_string_utf8(env, "opening blobs was cancelled", NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, NULL, text, &error);
    napi_reject_deferred(env, j->deferred, error);
  } else if (napi_create_array_with_length(env, j->count, &results) != napi_ok) {
    napi_get_and_clear_last_exception(env, &error);
    napi_reject_deferred(env, j->deferred, error);
  } else {
    for (size_t i = 0; i < j->count; i++) {
      napi_value result;
      if (j->errors[i]) napi_create_string_utf8(env, j->errors[i], NAPI_AUTO_LENGTH, &result);
      else napi_get_null(env, &result);
      napi_set_element(env, results, (uint32_t)i, result);
    }
    napi_resolve_deferred(env, j->deferred, results);
  }
  napi_delete_async_work(env, j->work);
  free_job(env, j);
}

// A Uint8Array argument's bytes, or false with a TypeError thrown.
static bool bytes_of(napi_env env, napi_value value, const char *what, uint8_t **data, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  void *bytes = NULL;
  napi_is_typedarray(env, value, &is_typed);
  if (is_typed) napi_get_typedarray_info(env, value, &type, length, &bytes, NULL, NULL);
  if (!is_typed || type != napi_uint8_array) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", what, "must be a Uint8Array");
    return false;
  }
  *data = bytes;
  return true;
}

static napi_value open_run(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!arguments(env, info, "openRun", 5, argv)) return NULL;
  job *j = calloc(1, sizeof *j);
  if (!j) return (napi_value)out_of_memory(env);
  uint8_t *parts = NULL, *key = NULL, *ids = NULL;
  size_t parts_length = 0, key_length = 0, ids_length = 0;
  bool is_typed = false;
  napi_typedarray_type type;
  napi_valuetype ids_type;
  napi_is_typedarray(env, argv[1], &is_typed);
  if (is_typed) napi_get_typedarray_info(env, argv[1], &type, &parts_length, (void **)&parts, NULL, NULL);
  if (!is_typed || type != napi_float64_array || parts_length % PART != 0) {
    free_job(env, j);
    throw_type_error(env, "ERR_INVALID_ARG_VALUE", "parts", "must be a Float64Array of 4 numbers per blob");
    return NULL;
  }
  j->count = parts_length / PART;
  napi_typeof(env, argv[2], &ids_type);
  if (!bytes_of(env, argv[0], "sealed", &j->sealed, &j->sealed_length) ||
      (ids_type != napi_null && !bytes_of(env, argv[2], "ids", &ids, &ids_length)) ||
      !bytes_of(env, argv[3], "key", &key, &key_length) || !bytes_of(env, argv[4], "out", &j->out, &j->out_length)) {
    free_job(env, j);
    return NULL;
  }
  if (key_length != sizeof j->key || (ids_type != napi_null && ids_length != j->count * 32)) {
    free_job(env, j);
    throw_type_error(env, "ERR_INVALID_ARG_VALUE", "openRun", "takes a 64-byte key and 32 bytes of id per blob");
    return NULL;
  }
  for (size_t i = 0; i < parts_length; i++) {
    double v = ((double *)parts)[i];
    if (!(v >= -1 && v <= 9007199254740991.0) || v != (double)(int64_t)v || (v < 0 && i % PART != 2)) {
      free_job(env, j);
      throw_type_error(env, "ERR_INVALID_ARG_VALUE", "parts", "must hold whole numbers");
      return NULL;
    }
  }
  memcpy(j->key, key, sizeof j->key);
  j->parts = malloc(parts_length ? parts_length * sizeof(double) : 1);
  j->errors = calloc(j->count ? j->count : 1, sizeof *j->errors);
  if (ids_type != napi_null) j->ids = malloc(ids_length ? ids_length : 1);
  if (!j->parts || !j->errors || (ids_type != napi_null && !j->ids)) {
    free_job(env, j);
    return (napi_value)out_of_memory(env);
  }
  memcpy(j->parts, parts, parts_length * sizeof(double));
  if (j->ids && ids_length) memcpy(j->ids, ids, ids_length);
  // The buffers stay alive (and are not collected) until the job is done.
  if (napi_create_reference(env, argv[0], 1, &j->sealed_ref) != napi_ok ||
      napi_create_reference(env, argv[4], 1, &j->out_ref) != napi_ok) {
    free_job(env, j);
    napi_throw_error(env, NULL, "could not hold the buffers");
    return NULL;
  }
  napi_value promise = queue_job(env, "volback.openRun", execute, complete, j, &j->work, &j->deferred);
  if (!promise) free_job(env, j);
  return promise;
}

// ---- sealing ----

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref plain_ref, out_ref;
  const uint8_t *plain;
  size_t plain_length;
  uint8_t *out;
  size_t out_length;
  double *lengths;
  size_t count;
  uint8_t *ids; // copied, or NULL
  bool compress;
  uint8_t key[64];
  double *stored;    // 2 per blob: stored length, compressed
  long mismatch;     // the first plaintext that does not hash to its id, or -1
  const char *error; // why the job failed as a whole (a static string), or NULL
} seal_job;

// format/compression.ts's compressBlob: blobs from 64 KiB on are sampled (four 16 KiB pieces at
// zstd level 1), and not compressed when the samples shrink by less than 3%.
#define SAMPLE_FROM (64 * 1024)
#define SAMPLE_BYTES (16 * 1024)
#define INCOMPRESSIBLE 0.97
#define ZSTD_LEVEL 3

static __thread uint8_t *sample_frame;

static bool worth_compressing(const uint8_t *data, size_t n) {
  if (n < SAMPLE_FROM) return true;
  size_t bound = ZSTD_compressBound(SAMPLE_BYTES);
  if (!sample_frame) sample_frame = malloc(bound);
  if (!sample_frame) return true;
  size_t step = (n - SAMPLE_BYTES) / 3, sampled = 0;
  for (size_t i = 0; i < 4; i++) {
    size_t result = ZSTD_CCtx_setParameter(ctx.cctx, ZSTD_c_compressionLevel, 1);
    if (!ZSTD_isError(result)) result = ZSTD_compress2(ctx.cctx, sample_frame, bound, data + i * step, SAMPLE_BYTES);
    if (ZSTD_isError(result)) return true; // the real compression decides
    sampled += result;
  }
  return (double)sampled < INCOMPRESSIBLE * 4 * SAMPLE_BYTES;
}

// Seals blob i (plaintext at `from`) at `*at` in the output: IV, ciphertext, MAC.
static const char *seal_one(seal_job *j, size_t i, size_t from, size_t *at) {
  size_t length = (size_t)j->lengths[i];
  if (*at > j->out_length || length + OVERHEAD > j->out_length - *at) return "the output has no room";
  const uint8_t *plain = j->plain + from;
  uint8_t *iv = j->out + *at, *ciphertext = iv + IV;
  if (RAND_bytes(iv, IV) != 1) return "no random bytes for an IV";
  size_t n = length;
  bool compressed = false;
  if (j->compress && length > 1 && worth_compressing(plain, length)) {
    // Straight into place; a frame no shorter than the blob does not fit, and is not wanted.
    size_t frame = ZSTD_CCtx_setParameter(ctx.cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL);
    if (!ZSTD_isError(frame)) frame = ZSTD_compress2(ctx.cctx, ciphertext, length - 1, plain, length);
    if (!ZSTD_isError(frame)) {
      compressed = true;
      n = frame;
    }
  }
  if (!ctr(j->key, iv, compressed ? ciphertext : plain, ciphertext, n)) return "AES-256-CTR failed";
  if (!mac_of(j->key, iv, ciphertext, n, ciphertext + n)) return "Poly1305-AES failed";
  j->stored[2 * i] = (double)(n + OVERHEAD);
  j->stored[2 * i + 1] = compressed ? 1 : 0;
  *at += n + OVERHEAD;
  return NULL;
}

static void seal_execute(napi_env env, void *data) {
  (void)env;
  seal_job *j = data;
  if (!ready()) {
    j->error = "out of memory";
    return;
  }
  size_t from = 0;
  if (j->ids) {
    for (size_t i = 0; i < j->count; i++) {
      uint8_t digest[32];
      size_t length = (size_t)j->lengths[i];
      if (!sha256_of(j->plain + from, length, digest)) {
        j->error = "SHA-256 failed";
        return;
      }
      if (memcmp(digest, j->ids + i * 32, 32) != 0) {
        j->mismatch = (long)i;
        return;
      }
      from += length;
    }
    from = 0;
  }
  size_t at = 0;
  for (size_t i = 0; i < j->count; i++) {
    if ((j->error = seal_one(j, i, from, &at))) return;
    from += (size_t)j->lengths[i];
  }
}

static void free_seal_job(napi_env env, seal_job *j) {
  if (j->plain_ref) napi_delete_reference(env, j->plain_ref);
  if (j->out_ref) napi_delete_reference(env, j->out_ref);
  free(j->lengths);
  free(j->ids);
  free(j->stored);
  OPENSSL_cleanse(j->key, sizeof j->key);
  free(j);
}

static void seal_complete(napi_env env, napi_status status, void *data) {
  seal_job *j = data;
  napi_value result, error, text;
  void *bytes = NULL;
  if (status != napi_ok || j->error) {
    napi_create_string_utf8(env, status != napi_ok ? "sealing blobs was cancelled" : j->error, NAPI_AUTO_LENGTH,
                            &text);
    napi_create_error(env, NULL, text, &error);
    napi_reject_deferred(env, j->deferred, error);
  } else if (j->mismatch >= 0) {
    napi_create_int64(env, j->mismatch, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    napi_value buffer;
    size_t size = j->count * 2 * sizeof(double);
    if (napi_create_arraybuffer(env, size, &bytes, &buffer) != napi_ok ||
        napi_create_typedarray(env, napi_float64_array, j->count * 2, buffer, 0, &result) != napi_ok) {
      napi_get_and_clear_last_exception(env, &error);
      napi_reject_deferred(env, j->deferred, error);
    } else {
      if (size) memcpy(bytes, j->stored, size);
      napi_resolve_deferred(env, j->deferred, result);
    }
  }
  napi_delete_async_work(env, j->work);
  free_seal_job(env, j);
}

static napi_value seal_run(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!arguments(env, info, "sealRun", 6, argv)) return NULL;
  seal_job *j = calloc(1, sizeof *j);
  if (!j) return (napi_value)out_of_memory(env);
  j->mismatch = -1;
  uint8_t *plain = NULL, *key = NULL, *ids = NULL;
  double *lengths = NULL;
  size_t lengths_count = 0, key_length = 0, ids_length = 0;
  bool is_typed = false, compress = false;
  napi_typedarray_type type;
  napi_valuetype ids_type;
  napi_is_typedarray(env, argv[1], &is_typed);
  if (is_typed) napi_get_typedarray_info(env, argv[1], &type, &lengths_count, (void **)&lengths, NULL, NULL);
  if (!is_typed || type != napi_float64_array) {
    free_seal_job(env, j);
    throw_type_error(env, "ERR_INVALID_ARG_VALUE", "lengths", "must be a Float64Array");
    return NULL;
  }
  j->count = lengths_count;
  napi_typeof(env, argv[2], &ids_type);
  if (!bytes_of(env, argv[0], "plain", &plain, &j->plain_length) ||
      (ids_type != napi_null && !bytes_of(env, argv[2], "ids", &ids, &ids_length)) ||
      napi_get_value_bool(env, argv[3], &compress) != napi_ok || !bytes_of(env, argv[4], "key", &key, &key_length) ||
      !bytes_of(env, argv[5], "out", &j->out, &j->out_length)) {
    free_seal_job(env, j);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) throw_type_error(env, "ERR_INVALID_ARG_TYPE", "compress", "must be a boolean");
    return NULL;
  }
  j->plain = plain;
  j->compress = compress;
  size_t total = 0;
  for (size_t i = 0; i < lengths_count; i++) {
    double v = lengths[i];
    if (!(v >= 0 && v <= 9007199254740991.0) || v != (double)(int64_t)v) {
      free_seal_job(env, j);
      throw_type_error(env, "ERR_INVALID_ARG_VALUE", "lengths", "must hold whole numbers");
      return NULL;
    }
    total += (size_t)v;
  }
  if (key_length != sizeof j->key || (ids_type != napi_null && ids_length != j->count * 32) ||
      total != j->plain_length || j->out_length < total + j->count * OVERHEAD) {
    free_seal_job(env, j);
    throw_type_error(env, "ERR_INVALID_ARG_VALUE", "sealRun",
                     "takes a 64-byte key, 32 bytes of id per blob, lengths that add up to the plaintexts and an "
                     "output 32 bytes per blob longer");
    return NULL;
  }
  memcpy(j->key, key, sizeof j->key);
  j->lengths = malloc(lengths_count ? lengths_count * sizeof(double) : 1);
  j->stored = calloc(lengths_count ? lengths_count * 2 : 1, sizeof(double));
  if (ids_type != napi_null) j->ids = malloc(ids_length ? ids_length : 1);
  if (!j->lengths || !j->stored || (ids_type != napi_null && !j->ids)) {
    free_seal_job(env, j);
    return (napi_value)out_of_memory(env);
  }
  if (lengths_count) memcpy(j->lengths, lengths, lengths_count * sizeof(double));
  if (j->ids && ids_length) memcpy(j->ids, ids, ids_length);
  if (napi_create_reference(env, argv[0], 1, &j->plain_ref) != napi_ok ||
      napi_create_reference(env, argv[5], 1, &j->out_ref) != napi_ok) {
    free_seal_job(env, j);
    napi_throw_error(env, NULL, "could not hold the buffers");
    return NULL;
  }
  napi_value promise = queue_job(env, "volback.sealRun", seal_execute, seal_complete, j, &j->work, &j->deferred);
  if (!promise) free_seal_job(env, j);
  return promise;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  // Fetched once (the fetch is what costs): the default library context Node set up.
  if (!poly1305) poly1305 = EVP_MAC_fetch(NULL, "POLY1305", NULL);
  if (!aes_ctr) aes_ctr = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
  if (!aes_ecb) aes_ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
  if (!sha256) sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  if (!poly1305 || !aes_ctr || !aes_ecb || !sha256) {
    napi_throw_error(env, NULL, "this Node's OpenSSL lacks Poly1305, AES or SHA-256");
    return NULL;
  }
  napi_value open_fn, seal_fn;
  if (napi_create_function(env, "openRun", NAPI_AUTO_LENGTH, open_run, NULL, &open_fn) != napi_ok ||
      napi_set_named_property(env, exports, "openRun", open_fn) != napi_ok ||
      napi_create_function(env, "sealRun", NAPI_AUTO_LENGTH, seal_run, NULL, &seal_fn) != napi_ok ||
      napi_set_named_property(env, exports, "sealRun", seal_fn) != napi_ok)
    return NULL;
  return exports;
}
