// A batch of restored small files written in one call on libuv's thread pool, one after the
// other: each created (never through a symlink, never over an existing entry), written, given its
// owner, mode and times through its descriptor, and closed. A restore of many small files made
// these calls on its own thread for each file, between reading the next blobs and walking the
// next directories; here one thread-pool job does a batch's files while that thread goes on.
// (One job per file, several at once, was slower: files of one directory contend for it, and
// every file cost a thread wake-up.) Built by scripts/build-native.sh; loaded by
// src/operations/file-write.ts.
//
// writeFiles(paths, datas, meta) -> Promise<Array<Error | null>>
//   paths: strings or Buffers without NUL; datas: Uint8Arrays, copied (the caller may reuse
//   them at once); meta: a Float64Array of META numbers per file: mode (chmod's bits), owner (1:
//   chown to uid:gid; a refused owner is left as it is), uid, gid, atime s, atime ns, mtime s,
//   mtime ns. Each file's result: null, or an Error as Node's fs throws it (code, errno, syscall,
//   path): syscall "open" or "write" when its content is not there (a file that was created is
//   removed again), "fchmod" or "futime" when only its metadata is not.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "napi-fs.h"

#define META 8

typedef struct {
  char *path;
  size_t offset; // of its bytes in the job's block
  size_t length;
  double meta[META];
  int error;
  const char *syscall;
} file;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  file *files;
  size_t count;
  uint8_t *block;
} job;

static void free_job(job *j) {
  for (size_t i = 0; i < j->count; i++) free(j->files[i].path);
  free(j->files);
  free(j->block);
  free(j);
}

static void write_one(file *f, const uint8_t *bytes) {
  int fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    f->error = errno;
    f->syscall = "open";
    return;
  }
  for (size_t done = 0; done < f->length;) {
    ssize_t n = write(fd, bytes + done, f->length - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      f->error = n < 0 ? errno : EIO;
      f->syscall = "write";
      close(fd);
      unlink(f->path);
      return;
    }
    done += (size_t)n;
  }
  const double *m = f->meta;
  // Owner first (it clears set-user-ID bits), then the mode, then the times.
  if (m[1] != 0 && fchown(fd, (uid_t)m[2], (gid_t)m[3]) != 0) {
    // an owner the target refuses is left as it is
  }
  struct timespec times[2] = {{(time_t)m[4], (long)m[5]}, {(time_t)m[6], (long)m[7]}};
  if (fchmod(fd, (mode_t)m[0] & 07777) != 0) {
    f->error = errno;
    f->syscall = "fchmod";
  } else if (futimens(fd, times) != 0) {
    f->error = errno;
    f->syscall = "futime";
  }
  close(fd);
}

static void execute(napi_env env, void *data) {
  (void)env;
  job *j = data;
  for (size_t i = 0; i < j->count; i++) write_one(&j->files[i], j->block + j->files[i].offset);
}

static void complete(napi_env env, napi_status status, void *data) {
  job *j = data;
  napi_value results;
  if (status != napi_ok) {
    napi_value message, error;
    napi_create_string_utf8(env, "file writes were cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, j->deferred, error);
  } else if (napi_create_array_with_length(env, j->count, &results) != napi_ok) {
    napi_value error = NULL;
    napi_get_and_clear_last_exception(env, &error);
    napi_reject_deferred(env, j->deferred, error);
  } else {
    for (size_t i = 0; i < j->count; i++) {
      file *f = &j->files[i];
      napi_value result = NULL;
      if (f->error) {
        result = errno_error(env, f->error, f->syscall, f->path);
      } else {
        napi_get_null(env, &result);
      }
      napi_set_element(env, results, (uint32_t)i, result);
    }
    napi_resolve_deferred(env, j->deferred, results);
  }
  napi_delete_async_work(env, j->work);
  free_job(j);
}

static bool bytes_of(napi_env env, napi_value value, void **data, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  napi_is_typedarray(env, value, &is_typed);
  if (is_typed) napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL);
  if (!is_typed || type != napi_uint8_array) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", "data", "must be a Uint8Array");
    return false;
  }
  return true;
}

static napi_value write_files(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!arguments(env, info, "writeFiles", 3, argv)) return NULL;
  uint32_t count = 0, datas = 0;
  if (!array_length(env, argv[0], "paths", &count) || !array_length(env, argv[1], "datas", &datas))
    return NULL;
  bool is_typed = false;
  napi_typedarray_type type;
  size_t meta_length = 0;
  void *meta = NULL;
  napi_is_typedarray(env, argv[2], &is_typed);
  if (is_typed) napi_get_typedarray_info(env, argv[2], &type, &meta_length, &meta, NULL, NULL);
  if (!is_typed || type != napi_float64_array || datas != count || meta_length != (size_t)count * META) {
    throw_type_error(env, "ERR_INVALID_ARG_VALUE", "writeFiles",
                     "takes as many datas as paths and a Float64Array of 8 numbers per path");
    return NULL;
  }
  job *j = calloc(1, sizeof *j);
  if (j) j->files = calloc(count ? count : 1, sizeof *j->files);
  if (!j || !j->files) {
    free(j);
    out_of_memory(env);
    return NULL;
  }
  size_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    void *bytes = NULL;
    size_t length = 0;
    if (napi_get_element(env, argv[1], i, &element) != napi_ok || !bytes_of(env, element, &bytes, &length)) {
      free_job(j);
      return NULL;
    }
    j->files[i].offset = total;
    j->files[i].length = length;
    total += length;
  }
  j->block = malloc(total ? total : 1);
  if (!j->block) {
    free_job(j);
    out_of_memory(env);
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    void *bytes = NULL;
    size_t length = 0;
    napi_get_element(env, argv[1], i, &element);
    bytes_of(env, element, &bytes, &length);
    if (length) memcpy(j->block + j->files[i].offset, bytes, length);
    memcpy(j->files[i].meta, (const double *)meta + (size_t)i * META, sizeof j->files[i].meta);
    const double *m = j->files[i].meta;
    if (!(m[5] >= 0 && m[5] <= 999999999 && m[7] >= 0 && m[7] <= 999999999)) {
      free_job(j);
      throw_type_error(env, "ERR_INVALID_ARG_VALUE", "meta", "nanoseconds must be 0 to 999999999");
      return NULL;
    }
    napi_value path;
    napi_get_element(env, argv[0], i, &path);
    j->files[i].path = c_string(env, path, "path");
    j->count = i + 1;
    if (!j->files[i].path) {
      free_job(j);
      return NULL;
    }
  }
  j->count = count;
  napi_value promise = queue_job(env, "volback.writeFiles", execute, complete, j, &j->work, &j->deferred);
  if (!promise) free_job(j);
  return promise;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "writeFiles", NAPI_AUTO_LENGTH, write_files, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "writeFiles", fn) != napi_ok)
    return NULL;
  return exports;
}
