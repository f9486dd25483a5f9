// The hot loop of restic's content-defined chunker, in C: the same arithmetic as
// `Chunker.#roll` in src/chunker/chunker.ts (which stays the reference and the fallback),
// about six times faster. Built by scripts/build-native.sh; loaded by src/chunker/native.ts.
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
  int64_t cut_at = -1;
  for (int64_t i = from; i < to; i++) {
    digest ^= out_table[src[i - WINDOW]];
    uint64_t top = digest >> POL_SHIFT;
    digest = ((digest << 8) | src[i]) ^ mod_table[top];
    if (((uint32_t)digest & split_mask) == 0 && i >= first_cut) {
      cut_at = i + 1;
      break;
    }
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
