// Directories' entries with their lstat and whether they have extended attributes, read on
// libuv's thread pool: what a backup's walk asks of every entry (readdir, lstat, llistxattr), in
// one call for several directories instead of three calls per entry on the walk's thread, so that
// the walk can have the next directories read while it compares this one with the parent
// snapshot. Several per call: each call wakes a thread-pool thread and then the walk's thread,
// about 25 µs of the walk's time here, as much as comparing a directory of ten files.
// Built by scripts/build-native.sh; loaded by src/operations/dir-scan.ts.
//
// scan(paths) -> Promise<Array<{ names: Array<string | Buffer>, stats: Float64Array } | Error>>
//   One element per path, in order:
//   names: the entry names (not . and ..), sorted bytewise: a string when the name is UTF-8,
//   else its bytes.
//   stats: FIELDS numbers per entry, in the same order:
//     dev, ino, mode, nlink, uid, gid, rdev, size, atime s, atime ns, mtime s, mtime ns,
//     ctime s, ctime ns, lstat's errno (0: the stat fields hold), attributes: the length of
//     llistxattr's list (0: none, or none supported), or minus its errno.
//   paths: an array of strings or Buffers without NUL. A directory that cannot be opened or read
//   gets an Error as Node's fs throws it (code, errno, syscall "scandir", path) as its element.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <uv.h>
#include "napi-fs.h"

#define FIELDS 16

typedef struct {
  char *name;
  size_t length;
} entry;

// One directory: its path, and what was read, filled on the thread pool.
typedef struct {
  char *path;
  int error;               // errno of opening or reading the directory, 0 when it was read
  const char *syscall;     // the call that failed
  entry *entries;
  size_t count;
  double *stats;
} directory;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  directory *dirs;
  size_t count;
} job;

static int by_name(const void *a, const void *b) {
  const entry *x = a, *y = b;
  size_t n = x->length < y->length ? x->length : y->length;
  int order = memcmp(x->name, y->name, n);
  if (order != 0) return order;
  return x->length < y->length ? -1 : x->length > y->length;
}

// Whether bytes are UTF-8 as Node's buffer.isUtf8 checks it (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
static int is_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t more;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) more = 1;
    else if (c == 0xE0) more = 2, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) more = 2;
    else if (c == 0xED) more = 2, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF) more = 2;
    else if (c == 0xF0) more = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) more = 3;
    else if (c == 0xF4) more = 3, hi = 0x8F;
    else return 0;
    if (more >= n - i) return 0; // cut short
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t k = 2; k <= more; k++)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
    i += more + 1;
  }
  return 1;
}

static void free_job(job *j) {
  for (size_t d = 0; d < j->count; d++) {
    directory *dir = &j->dirs[d];
    for (size_t i = 0; i < dir->count; i++) free(dir->entries[i].name);
    free(dir->entries);
    free(dir->stats);
    free(dir->path);
  }
  free(j->dirs);
  free(j);
}

static void failed(directory *j, int error) {
  j->error = error;
  j->syscall = "scandir";
}

// The directory's names, sorted; false with j->error set when it cannot be read.
static int read_names(directory *j, DIR *dir) {
  size_t capacity = 0;
  for (;;) {
    errno = 0;
    struct dirent *d = readdir(dir);
    if (!d) {
      if (errno) failed(j, errno);
      break;
    }
    const char *n = d->d_name;
    if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
    if (j->count == capacity) {
      capacity = capacity ? capacity * 2 : 64;
      entry *grown = realloc(j->entries, capacity * sizeof *grown);
      if (!grown) {
        failed(j, ENOMEM);
        break;
      }
      j->entries = grown;
    }
    size_t length = strlen(n);
    char *name = malloc(length + 1);
    if (!name) {
      failed(j, ENOMEM);
      break;
    }
    memcpy(name, n, length + 1);
    j->entries[j->count++] = (entry){name, length};
  }
  if (j->error) return 0;
  qsort(j->entries, j->count, sizeof *j->entries, by_name);
  return 1;
}

// One entry's lstat (relative to the open directory) and the length of its attribute list.
static void stat_entry(int dirfd, const char *name, const char *full, double *f) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    f[14] = errno;
    return;
  }
  f[0] = (double)st.st_dev;
  f[1] = (double)st.st_ino;
  f[2] = (double)st.st_mode;
  f[3] = (double)st.st_nlink;
  f[4] = (double)st.st_uid;
  f[5] = (double)st.st_gid;
  f[6] = (double)st.st_rdev;
  f[7] = (double)st.st_size;
  f[8] = (double)st.st_atim.tv_sec;
  f[9] = (double)st.st_atim.tv_nsec;
  f[10] = (double)st.st_mtim.tv_sec;
  f[11] = (double)st.st_mtim.tv_nsec;
  f[12] = (double)st.st_ctim.tv_sec;
  f[13] = (double)st.st_ctim.tv_nsec;
  // By path, as restic and xattr.c list them: llistxattr never follows a symlink.
  ssize_t listed = llistxattr(full, NULL, 0);
  if (listed >= 0) f[15] = (double)listed;
  else f[15] = (errno == ENOTSUP || errno == ENOSYS) ? 0 : -(double)errno;
}

static void scan_one(directory *j) {
  int fd = open(j->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    failed(j, errno);
    return;
  }
  DIR *dir = fdopendir(fd);
  if (!dir) {
    failed(j, errno);
    close(fd);
    return;
  }
  size_t path_length = strlen(j->path);
  char *full = malloc(path_length + 2 + NAME_MAX + 1);
  if (!full) failed(j, ENOMEM);
  if (full && read_names(j, dir)) {
    j->stats = calloc(j->count ? j->count : 1, FIELDS * sizeof(double));
    if (!j->stats) failed(j, ENOMEM);
  }
  if (j->stats) {
    memcpy(full, j->path, path_length);
    size_t base = path_length;
    if (base == 0 || full[base - 1] != '/') full[base++] = '/';
    for (size_t i = 0; i < j->count; i++) {
      size_t length = j->entries[i].length;
      if (length > NAME_MAX) length = NAME_MAX; // never: readdir's names fit
      memcpy(full + base, j->entries[i].name, length);
      full[base + length] = '\0';
      stat_entry(dirfd(dir), j->entries[i].name, full, j->stats + i * FIELDS);
    }
  }
  free(full);
  closedir(dir);
}

static void execute(napi_env env, void *data) {
  (void)env;
  job *j = data;
  for (size_t d = 0; d < j->count; d++) scan_one(&j->dirs[d]);
}

// One directory's result as JavaScript: { names, stats }, or its Error; NULL when out of memory.
static napi_value result_of(napi_env env, directory *j) {
  if (j->error) return errno_error(env, j->error, j->syscall, j->path);
  napi_value result, names, stats_buffer, stats;
  void *stats_data = NULL;
  size_t stats_bytes = j->count * FIELDS * sizeof(double);
  int ok = napi_create_array_with_length(env, j->count, &names) == napi_ok &&
           napi_create_arraybuffer(env, stats_bytes, &stats_data, &stats_buffer) == napi_ok &&
           napi_create_typedarray(env, napi_float64_array, j->count * FIELDS, stats_buffer, 0, &stats) == napi_ok;
  for (size_t i = 0; ok && i < j->count; i++) {
    const entry *e = &j->entries[i];
    napi_value name;
    if (is_utf8((const unsigned char *)e->name, e->length)) {
      ok = napi_create_string_utf8(env, e->name, e->length, &name) == napi_ok;
    } else {
      void *copy = NULL;
      ok = napi_create_buffer_copy(env, e->length, e->name, &copy, &name) == napi_ok;
    }
    ok = ok && napi_set_element(env, names, (uint32_t)i, name) == napi_ok;
  }
  ok = ok && napi_create_object(env, &result) == napi_ok &&
       napi_set_named_property(env, result, "names", names) == napi_ok &&
       napi_set_named_property(env, result, "stats", stats) == napi_ok;
  if (!ok) return NULL;
  if (stats_bytes) memcpy(stats_data, j->stats, stats_bytes);
  return result;
}

static void complete(napi_env env, napi_status status, void *data) {
  job *j = data;
  napi_value results = NULL;
  if (status != napi_ok) {
    napi_value message;
    napi_create_string_utf8(env, "scan was cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &results);
    napi_reject_deferred(env, j->deferred, results);
  } else {
    int ok = napi_create_array_with_length(env, j->count, &results) == napi_ok;
    for (size_t d = 0; ok && d < j->count; d++) {
      napi_value result = result_of(env, &j->dirs[d]);
      ok = result && napi_set_element(env, results, (uint32_t)d, result) == napi_ok;
    }
    if (ok) {
      napi_resolve_deferred(env, j->deferred, results);
    } else {
      napi_value error = NULL;
      napi_get_and_clear_last_exception(env, &error);
      if (!error) error = errno_error(env, ENOMEM, "scandir", j->count ? j->dirs[0].path : "");
      napi_reject_deferred(env, j->deferred, error);
    }
  }
  napi_delete_async_work(env, j->work);
  free_job(j);
}

static napi_value scan(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!arguments(env, info, "scan", 1, argv)) return NULL;
  uint32_t count = 0;
  if (!array_length(env, argv[0], "paths", &count)) return NULL;
  job *j = calloc(1, sizeof *j);
  if (j) j->dirs = calloc(count ? count : 1, sizeof *j->dirs);
  if (!j || !j->dirs) {
    free(j);
    out_of_memory(env);
    return NULL;
  }
  for (uint32_t d = 0; d < count; d++) {
    napi_value path;
    char *copy = napi_get_element(env, argv[0], d, &path) == napi_ok ? c_string(env, path, "path") : NULL;
    if (!copy) {
      free_job(j);
      return NULL;
    }
    j->dirs[j->count++].path = copy;
  }
  napi_value promise = queue_job(env, "volback.scan", execute, complete, j, &j->work, &j->deferred);
  if (!promise) free_job(j);
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "scan", NAPI_AUTO_LENGTH, scan, NULL, &fn);
  napi_set_named_property(env, exports, "scan", fn);
  napi_value fields;
  napi_create_uint32(env, FIELDS, &fields);
  napi_set_named_property(env, exports, "FIELDS", fields);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
