// The hot loop of restic's content-defined chunker, in C: the same arithmetic as
// `Chunker.#roll` in src/chunker/chunker.ts (which stays the reference and the fallback),
// many times faster. Built by scripts/build-native.sh; loaded by src/chunker/native.ts.
//
// One window's fingerprint after another is a chain: each step waits for the last one's table
// lookup, so a core runs it at a handful of cycles a byte however wide it is. But a fingerprint
// depends only on the 64 bytes of its window (restic's chunker slides out every byte it slid in),
// so long stretches are cut into LANES pieces rolled side by side, each started from a fingerprint
// of 0 with the 64 bytes before it (what the chain would hold there): independent chains that
// the core overlaps. The first cut of the first piece that has one is the first cut of all.
//
// roll(src, from, to, firstCutIndex, tables, state, splitMask) -> cutAt
//   src:     Uint8Array; the byte leaving the window is the one 64 bytes back in src
//   tables:  BigUint64Array(512): out[256] then mod[256], restic's two tables
//   state:   Int32Array(2): the fingerprint's bits 32-52 and 0-31, read and written back
//   returns: the index just after the first cut at or after firstCutIndex, or -1
#include <node_api.h>
#include <stdint.h>

#define WINDOW 64
#define POL_SHIFT (53 - 8)

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, "VOLBACK_NATIVE_ARGUMENT", message);
  return NULL;
}

/** One window further: the byte `in` slides in, `out` (64 bytes back) slides out. */
static inline uint64_t step(uint64_t digest, uint8_t in, uint8_t out, const uint64_t *out_table,
                            const uint64_t *mod_table) {
  digest ^= out_table[out];
  return ((digest << 8) | in) ^ mod_table[digest >> POL_SHIFT];
}

#define LANES 4
#define LANE_BYTES 4096
/** Fingerprints between checks of whether the first piece has cut (then the rest is moot). */
#define STRIDE 256

/**
 * Rolls the windows ending at src[at .. at + LANES * LANE_BYTES), every one an allowed cut, in
 * LANES pieces side by side; `digest` holds the fingerprint at `at - 1` and gets the one at the
 * cut, or at the last window when there is none. Returns the index just after the first cut, or -1.
 */
static int64_t roll_lanes(const uint8_t *src, int64_t at, uint64_t *digest, const uint64_t *out_table,
                          const uint64_t *mod_table, uint32_t split_mask) {
  uint64_t d[LANES];
  int64_t cut[LANES];
  uint64_t cut_digest[LANES];
  const uint8_t *lane[LANES];
  d[0] = *digest;
  for (int k = 0; k < LANES; k++) {
    lane[k] = src + at + (int64_t)k * LANE_BYTES;
    cut[k] = -1;
    cut_digest[k] = 0;
    if (k == 0) continue;
    // The fingerprint the chain holds at the window before this piece: its 64 bytes slid into 0.
    uint64_t w = 0;
    for (int j = -WINDOW; j < 0; j++) w = step(w, lane[k][j], 0, out_table, mod_table);
    d[k] = w;
  }
  for (int base = 0; base < LANE_BYTES && cut[0] < 0; base += STRIDE) {
    for (int j = base; j < base + STRIDE; j++) {
      for (int k = 0; k < LANES; k++) {
        d[k] = step(d[k], lane[k][j], lane[k][j - WINDOW], out_table, mod_table);
        if (__builtin_expect(((uint32_t)d[k] & split_mask) == 0, 0) && cut[k] < 0) {
          cut[k] = at + (int64_t)k * LANE_BYTES + j + 1;
          cut_digest[k] = d[k];
        }
      }
    }
  }
  for (int k = 0; k < LANES; k++) {
    if (cut[k] >= 0) {
      *digest = cut_digest[k];
      return cut[k];
    }
  }
  *digest = d[LANES - 1];
  return -1;
}

static int typed(napi_env env, napi_value value, napi_typedarray_type want, void **data, size_t *length) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, data, &buffer, &offset) != napi_ok) return 0;
  return type == want;
}

static napi_value roll(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 7) {
    return fail(env, "roll takes 7 arguments");
  }
  void *src_data, *tables_data, *state_data;
  size_t src_length, tables_length, state_length;
  if (!typed(env, argv[0], napi_uint8_array, &src_data, &src_length)) return fail(env, "src must be a Uint8Array");
  if (!typed(env, argv[4], napi_biguint64_array, &tables_data, &tables_length) || tables_length != 512) {
    return fail(env, "tables must be a BigUint64Array of 512");
  }
  if (!typed(env, argv[5], napi_int32_array, &state_data, &state_length) || state_length != 2) {
    return fail(env, "state must be an Int32Array of 2");
  }
  int64_t from, to, first_cut;
  uint32_t split_mask;
  if (napi_get_value_int64(env, argv[1], &from) != napi_ok || napi_get_value_int64(env, argv[2], &to) != napi_ok ||
      napi_get_value_int64(env, argv[3], &first_cut) != napi_ok ||
      napi_get_value_uint32(env, argv[6], &split_mask) != napi_ok) {
    return fail(env, "from, to, firstCutIndex and splitMask must be numbers");
  }
  if (from < WINDOW || to < from || (uint64_t)to > src_length) return fail(env, "from/to out of range");

  const uint8_t *src = src_data;
  const uint64_t *out_table = tables_data;
  const uint64_t *mod_table = out_table + 256;
  int32_t *state = state_data;
  uint64_t digest = ((uint64_t)(uint32_t)state[0] << 32) | (uint32_t)state[1];
  // What keeps every fingerprint under 2^53, so that digest >> 45 stays an index into mod_table:
  // a fingerprint under 2^53, slid-out terms under 2^53, and mod[b] carrying b in its bits 53-60
  // (the xor with it clears the bits the shift pushed there).
  if (digest >> 53) return fail(env, "state is not a fingerprint");
  for (int b = 0; b < 256; b++) {
    if ((out_table[b] >> 53) || (mod_table[b] >> 53) != (uint64_t)b) return fail(env, "tables are not restic's");
  }
  int64_t cut_at = -1;
  int64_t i = from;
  // Windows before the first allowed cut, one by one.
  for (; i < to && i < first_cut; i++) digest = step(digest, src[i], src[i - WINDOW], out_table, mod_table);
  while (cut_at < 0 && to - i >= LANES * LANE_BYTES) {
    cut_at = roll_lanes(src, i, &digest, out_table, mod_table, split_mask);
    i += LANES * LANE_BYTES;
  }
  for (; cut_at < 0 && i < to; i++) {
    digest = step(digest, src[i], src[i - WINDOW], out_table, mod_table);
    if (((uint32_t)digest & split_mask) == 0 && i >= first_cut) cut_at = i + 1;
  }
  state[0] = (int32_t)(uint32_t)(digest >> 32);
  state[1] = (int32_t)(uint32_t)digest;

  napi_value result;
  napi_create_int64(env, cut_at, &result);
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "roll", NAPI_AUTO_LENGTH, roll, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "roll", fn) != napi_ok) return NULL;
  return exports;
}
