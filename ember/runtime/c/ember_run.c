/* ember_run: run a compiled ember artifact from .npy files, with no Python.
 *
 *   cc -O2 -o ember_run ember_run.c -ldl
 *   ./ember_run model.ember out_ input0.npy [input1.npy ...] [--repeat N]
 *
 * Inputs are given in the model's input order (ember_run prints them when the
 * count is wrong). Output i is written to <out_prefix><i>.npy. With --repeat N
 * it also prints the median latency of N runs.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember_runtime.h"

typedef int32_t (*count_fn)(void);
typedef const ember_tensor_info* (*info_fn)(int32_t);
typedef uint64_t (*bytes_fn)(void);
typedef int32_t (*run_fn)(void* const*, void* const*, void* const*, void*);

static const char* kDescr[] = {"<f4", "<f2", "<f8", "|i1", "|u1", "<i2", "<i4", "<i8", "<u4", "|b1",
                               "<u2", "<u8", "<V2"}; /* bfloat16: numpy saves ml_dtypes' as V2 */

static void die(const char* fmt, const char* arg) {
  fprintf(stderr, "ember_run: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  exit(2);
}

static void* aligned(uint64_t nbytes) {
  void* p = NULL;
  if (posix_memalign(&p, 64, nbytes ? nbytes : 64) != 0) die("out of memory%s", "");
  return p;
}

/* Find member `name` in an uncompressed tar held in memory. */
static const unsigned char* tar_member(const unsigned char* tar, size_t size, const char* name,
                                       size_t* out_size) {
  size_t pos = 0;
  while (pos + 512 <= size && tar[pos] != 0) {
    char member[101] = {0};
    char octal[13] = {0};
    memcpy(member, tar + pos, 100);
    memcpy(octal, tar + pos + 124, 12);
    size_t len = strtoull(octal, NULL, 8);
    if (strcmp(member, name) == 0) {
      if (pos + 512 + len > size) die("artifact is truncated (member %s)", name);
      *out_size = len;
      return tar + pos + 512;
    }
    pos += 512 + (len + 511) / 512 * 512;
  }
  die("artifact has no member %s (not an ember artifact?)", name);
  return NULL;
}

static unsigned char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) die("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* buf = malloc(n > 0 ? n : 1);
  if (fread(buf, 1, n, f) != (size_t)n) die("cannot read %s", path);
  fclose(f);
  *size = (size_t)n;
  return buf;
}

/* Read a C-order .npy file into `dst`, checking dtype and element count. */
static void read_npy(const char* path, const ember_tensor_info* info, void* dst) {
  size_t size;
  unsigned char* buf = read_file(path, &size);
  if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) die("%s is not a .npy file", path);
  size_t header_len = buf[6] == 1 ? (size_t)(buf[8] | buf[9] << 8)
                                  : (size_t)(buf[8] | buf[9] << 8 | buf[10] << 16 | buf[11] << 24);
  size_t start = (buf[6] == 1 ? 10 : 12) + header_len;
  char* header = strndup((char*)buf + (buf[6] == 1 ? 10 : 12), header_len);
  if (!strstr(header, kDescr[info->dtype]))
    die("input .npy %s has another dtype than the model expects", path);
  if (strstr(header, "'fortran_order': True")) die("input %s is Fortran-ordered; save it C-ordered", path);
  if (size - start != info->nbytes) {
    fprintf(stderr, "ember_run: input %s holds %zu bytes; input '%s' needs %llu\n", path,
            size - start, info->name, (unsigned long long)info->nbytes);
    exit(2);
  }
  memcpy(dst, buf + start, info->nbytes);
  free(header);
  free(buf);
}

static void write_npy(const char* path, const ember_tensor_info* info, const void* data) {
  char shape[256] = {0};
  size_t off = 0;
  for (int d = 0; d < info->ndim; ++d)
    off += snprintf(shape + off, sizeof(shape) - off, "%lld,%s", (long long)info->shape[d],
                    d + 1 < info->ndim ? " " : "");
  if (info->ndim > 1) shape[off - 1] = 0; /* "(1, 1000)" not "(1, 1000,)" */
  char header[512];
  int n = snprintf(header, sizeof(header), "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                   kDescr[info->dtype], shape);
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  FILE* f = fopen(path, "wb");
  if (!f) die("cannot write %s", path);
  unsigned short hlen = (unsigned short)(n + pad + 1);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fwrite(&hlen, 2, 1, f);
  fwrite(header, 1, n, f);
  for (int i = 0; i < pad; ++i) fputc(' ', f);
  fputc('\n', f);
  fwrite(data, 1, info->nbytes, f);
  fclose(f);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  int repeat = 0;
  if (argc >= 3 && strcmp(argv[argc - 2], "--repeat") == 0) {
    repeat = atoi(argv[argc - 1]);
    argc -= 2;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.ember OUT_PREFIX INPUT.npy... [--repeat N]\n", argv[0]);
    return 2;
  }
  size_t tar_size;
  unsigned char* tar = read_file(argv[1], &tar_size);
  size_t lib_size, params_size;
  const unsigned char* lib = tar_member(tar, tar_size, "model.so", &lib_size);
  const unsigned char* params = tar_member(tar, tar_size, "params.bin", &params_size);

  /* dlopen needs a file: write the library to a private temporary one. */
  char lib_path[] = "/tmp/ember_model_XXXXXX";
  int fd = mkstemp(lib_path);
  if (fd < 0 || write(fd, lib, lib_size) != (ssize_t)lib_size) die("cannot write %s", lib_path);
  close(fd);
  void* handle = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
  unlink(lib_path);
  if (!handle) die("cannot load the model library: %s", dlerror());

  count_fn num_inputs = (count_fn)dlsym(handle, "ember_num_inputs");
  count_fn num_outputs = (count_fn)dlsym(handle, "ember_num_outputs");
  count_fn num_params = (count_fn)dlsym(handle, "ember_num_params");
  info_fn input_info = (info_fn)dlsym(handle, "ember_input_info");
  info_fn output_info = (info_fn)dlsym(handle, "ember_output_info");
  info_fn param_info = (info_fn)dlsym(handle, "ember_param_info");
  bytes_fn workspace_bytes = (bytes_fn)dlsym(handle, "ember_workspace_bytes");
  run_fn run = (run_fn)dlsym(handle, "ember_run");
  if (!num_inputs || !run || !workspace_bytes) die("model library lacks the ember ABI%s", "");

  int n_in = num_inputs(), n_out = num_outputs(), n_par = num_params();
  if (argc - 3 != n_in) {
    fprintf(stderr, "ember_run: the model takes %d input(s), %d given:\n", n_in, argc - 3);
    for (int i = 0; i < n_in; ++i) fprintf(stderr, "  %d: %s\n", i, input_info(i)->name);
    return 2;
  }
  unsigned char* param_block = aligned(params_size);
  memcpy(param_block, params, params_size);
  void** param_ptrs = calloc(n_par + 1, sizeof(void*));
  for (int i = 0; i < n_par; ++i) param_ptrs[i] = param_block + param_info(i)->offset;
  void** in_ptrs = calloc(n_in + 1, sizeof(void*));
  void** out_ptrs = calloc(n_out + 1, sizeof(void*));
  for (int i = 0; i < n_in; ++i) {
    in_ptrs[i] = aligned(input_info(i)->nbytes);
    read_npy(argv[3 + i], input_info(i), in_ptrs[i]);
  }
  for (int i = 0; i < n_out; ++i) out_ptrs[i] = aligned(output_info(i)->nbytes);
  void* workspace = aligned(workspace_bytes());

  int status = run(in_ptrs, out_ptrs, (void* const*)param_ptrs, workspace);
  if (status != 0) {
    fprintf(stderr, "ember_run: kernel %d failed\n", status);
    return 1;
  }
  for (int i = 0; i < n_out; ++i) {
    char path[4096];
    snprintf(path, sizeof(path), "%s%d.npy", argv[2], i);
    write_npy(path, output_info(i), out_ptrs[i]);
    printf("output %d (%s) -> %s\n", i, output_info(i)->name, path);
  }
  if (repeat > 0) {
    double* t = malloc(sizeof(double) * repeat);
    for (int r = 0; r < repeat; ++r) {
      double start = now_ms();
      run(in_ptrs, out_ptrs, (void* const*)param_ptrs, workspace);
      t[r] = now_ms() - start;
    }
    qsort(t, repeat, sizeof(double), cmp_double);
    printf("median %.3f ms over %d runs\n", t[repeat / 2], repeat);
    free(t);
  }
  return 0;
}
