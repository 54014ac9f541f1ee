/* sdiff.h - diffusion models in one C header.                       v0.1.0
   MIT license (see the end of this file).

   Do this:
      #define SDIFF_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the
   implementation. Every other file includes it without the define.

   =========================================================================
   TABLE OF CONTENTS          (grep for the tag, e.g. ">>unet", to jump there)
   =========================================================================
   Public API (declarations)
     1. Quick start ................................................ below
     2. Build options (macros) ..................................... below
     3. Status codes, errors, logging .......................... >>api:status
     4. Context .................................................. >>api:ctx
     5. Models and loading ..................................... >>api:model
     6. Generation ............................................... >>api:gen
     7. Images ................................................. >>api:image
   Implementation (SDIFF_IMPLEMENTATION)
     8.  Base: allocation, errors, logging, UTF-8 ................ >>base
     9.  Half floats and dtypes .................................. >>dtype
     10. Tensors ................................................ >>tensor
     11. Backend interface (the op table) ...................... >>backend
     12. Arena: activation memory ................................ >>arena
     13. CPU backend: thread pool, GEMM, conv, attention ............ >>cpu
     14. JSON parser ............................................. >>json
     15. Files: mmap, safetensors ............................... >>files
     16. Tokenizer: CLIP BPE (+ Unicode tables, gzip) ....... >>tokenizer
     17. Weights: lookup, LDM single-file key map, loading .... >>weights
     18. Layers shared by the models ........................... >>layers
     19. Model: CLIP text encoder ................................ >>clip
     20. Model: UNet2DConditionModel ............................. >>unet
     21. Model: AutoencoderKL (VAE) ............................... >>vae
     22. Random numbers: torch.randn on the CPU generator ......... >>rng
     23. Schedulers ............................................. >>sched
     24. Checkpoints: context, model loading, detection .......... >>load
     25. Pipelines: txt2img, img2img .......................... >>pipeline
     26. Public API implementation ................................ >>api
     27. Images: PNG and image loading (stb) .................... >>image

   =========================================================================
   1. QUICK START
   =========================================================================
      sdiff_ctx *ctx;
      sdiff_ctx_params cp = sdiff_ctx_default_params();
      if (sdiff_ctx_create(&cp, &ctx) != SDIFF_OK) { puts(sdiff_last_error()); return 1; }
      sdiff_model *m;
      sdiff_load_params lp = sdiff_load_default_params();
      if (sdiff_model_load(ctx, "models/sd15", &lp, &m) != SDIFF_OK) { ... }
      sdiff_gen_params gp = sdiff_gen_default_params(m);
      gp.prompt = "a lighthouse at dusk"; gp.seed = 42;
      sdiff_image img;
      if (sdiff_generate(m, &gp, &img) == SDIFF_OK) sdiff_image_write_png(&img, "out.png", NULL);
      sdiff_image_free(&img); sdiff_model_free(m); sdiff_ctx_free(ctx);

   With the CUDA backend: include "sdiff_cuda.h" right after this file in
   the same translation unit (link -ldl); SDIFF_BACKEND_AUTO then uses the
   GPU when there is one and falls back to the CPU with one log line.

   Thread safety: every function is safe to call from several threads as long
   as no two threads use the same context (or a model of it) at once.
   sdiff_last_error() is per thread.

   =========================================================================
   2. BUILD OPTIONS (define before including the implementation)
   =========================================================================
      SDIFF_IMPLEMENTATION     build the implementation in this file
      SDIFF_STATIC             make every public function static
      SDIFF_MALLOC(sz) / SDIFF_REALLOC(p,sz) / SDIFF_FREE(p)
                               replace the allocator (all three or none)
      SDIFF_ASSERT(x)          replace assert()
      SDIFF_NO_STB             leave out PNG writing and image loading (no
                               dependency on stb_image / stb_image_write)
      SDIFF_CLIP_VOCAB         set when sdiff_clip_vocab.h is included before
                               the implementation: single-file checkpoints
                               then need no tokenizer files on disk
*/
#ifndef SDIFF_H
#define SDIFF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifndef SDIFF_API
#  ifdef SDIFF_STATIC
#    define SDIFF_API static
#  elif defined(__cplusplus)
#    define SDIFF_API extern "C"
#  else
#    define SDIFF_API extern
#  endif
#endif

#define SDIFF_VERSION_STRING "0.1.0"

/* >>api:status ----------------------------------------------------------- */
/* Every function that can fail returns one of these; sdiff_last_error() then
   holds a sentence naming the problem (file, tensor, shape, ...). */
typedef enum sdiff_status {
    SDIFF_OK = 0,
    SDIFF_ERR_INVALID_ARG = -1,     /* a parameter is out of range / NULL    */
    SDIFF_ERR_OUT_OF_MEMORY = -2,   /* host or device allocation failed      */
    SDIFF_ERR_IO = -3,              /* a file could not be opened or read    */
    SDIFF_ERR_FORMAT = -4,          /* a file is malformed (safetensors,JSON)*/
    SDIFF_ERR_MODEL = -5,           /* a tensor is missing or has a bad shape*/
    SDIFF_ERR_UNSUPPORTED = -6,     /* valid, but not something sdiff runs   */
    SDIFF_ERR_CANCELLED = -7,       /* the progress callback asked to stop   */
    SDIFF_ERR_BACKEND = -8          /* the compute backend failed            */
} sdiff_status;

SDIFF_API const char *sdiff_status_string(sdiff_status status);
/* The message of the last failure on this thread ("" if none). */
SDIFF_API const char *sdiff_last_error(void);

typedef enum sdiff_log_level {
    SDIFF_LOG_ERROR = 0, SDIFF_LOG_WARN = 1, SDIFF_LOG_INFO = 2, SDIFF_LOG_DEBUG = 3
} sdiff_log_level;

/* tag names the part that speaks ("load", "cpu", "pipeline", ...). */
typedef void (*sdiff_log_fn)(sdiff_log_level level, const char *tag, const char *message, void *user);

/* >>api:ctx -------------------------------------------------------------- */
typedef enum sdiff_backend_kind {
    SDIFF_BACKEND_AUTO = 0,   /* CUDA if compiled in and a GPU is found, else CPU */
    SDIFF_BACKEND_CPU = 1,
    SDIFF_BACKEND_CUDA = 2
} sdiff_backend_kind;

typedef struct sdiff_ctx sdiff_ctx;

/* 0 / NULL in any field means "the default". */
typedef struct sdiff_ctx_params {
    sdiff_backend_kind backend;
    int n_threads;             /* CPU threads; 0 == number of cores          */
    int device;                /* GPU index for the CUDA backend              */
    sdiff_log_level log_level; /* messages above this level are dropped;
                                  default SDIFF_LOG_INFO (set by the
                                  default_params function)                     */
    sdiff_log_fn log_fn;       /* NULL == print to stderr                     */
    void *log_user;
} sdiff_ctx_params;

SDIFF_API sdiff_ctx_params sdiff_ctx_default_params(void);
SDIFF_API sdiff_status sdiff_ctx_create(const sdiff_ctx_params *params, sdiff_ctx **out_ctx);
SDIFF_API void sdiff_ctx_free(sdiff_ctx *ctx);
/* Which backend the context ended up with ("cpu", "cuda"). */
SDIFF_API const char *sdiff_ctx_backend_name(const sdiff_ctx *ctx);

/* >>api:model ------------------------------------------------------------ */
typedef struct sdiff_model sdiff_model;

typedef struct sdiff_load_params {
    /* Single-file checkpoints only (both NULL == the default):
       config_dir: a diffusers folder whose configs (unet/, vae/,
         text_encoder/, scheduler/, tokenizer/) to use instead of the ones
         detected from tensor shapes, like diffusers' from_single_file(config=).
       tokenizer_path: a folder with vocab.json + merges.txt, or OpenAI's
         bpe_simple_vocab_16e6.txt[.gz]. Default: config_dir's tokenizer/,
         else the built-in vocabulary (SDIFF_CLIP_VOCAB), else
         bpe_simple_vocab_16e6.txt.gz next to the checkpoint. */
    const char *config_dir;
    const char *tokenizer_path;
} sdiff_load_params;

SDIFF_API sdiff_load_params sdiff_load_default_params(void);
/* path: a diffusers folder (model_index.json, unet/, vae/, ...) or a single
   .safetensors checkpoint with the original LDM key names. */
SDIFF_API sdiff_status sdiff_model_load(sdiff_ctx *ctx, const char *path, const sdiff_load_params *params,
                                        sdiff_model **out_model);
SDIFF_API void sdiff_model_free(sdiff_model *model);
/* A one-line description: "SD 1.x (UNet 859.5M params, v-prediction: no)". */
SDIFF_API const char *sdiff_model_describe(const sdiff_model *model);

/* >>api:gen -------------------------------------------------------------- */
typedef enum sdiff_sampler {
    SDIFF_SAMPLER_DEFAULT = 0,     /* the scheduler in the model's config    */
    SDIFF_SAMPLER_DDIM,
    SDIFF_SAMPLER_PNDM,
    SDIFF_SAMPLER_EULER,
    SDIFF_SAMPLER_EULER_A,
    SDIFF_SAMPLER_DPMPP_2M,
    SDIFF_SAMPLER_DPMPP_2M_KARRAS,
    SDIFF_SAMPLER_DDPM,
    SDIFF_SAMPLER_COUNT_
} sdiff_sampler;

SDIFF_API const char *sdiff_sampler_name(sdiff_sampler sampler);      /* "euler_a" */
/* Parses a name as sdiff_sampler_name() writes it; returns SDIFF_SAMPLER_COUNT_
   for an unknown name. */
SDIFF_API sdiff_sampler sdiff_sampler_from_name(const char *name);

/* diffusers draws its noise with torch.randn on the CPU generator in the
   pipeline's dtype, and float16 draws differ from float32 ones (another
   ATen kernel). AUTO follows the backend's precision: fp16 noise on the
   CUDA backend (the image of a diffusers pipeline in torch.float16), fp32
   noise on the CPU (a float32 pipeline). */
typedef enum sdiff_noise { SDIFF_NOISE_AUTO = 0, SDIFF_NOISE_FP32, SDIFF_NOISE_FP16 } sdiff_noise;

typedef struct sdiff_image {
    int width, height, channels;   /* channels: 3 (RGB) or 4 (RGBA)           */
    uint8_t *data;                 /* width*height*channels bytes, row-major */
} sdiff_image;

/* Called after each denoising step is done (on a GPU, while the next step
   runs: a callback costs the GPU nothing). Return false to cancel the
   generation (sdiff_generate then returns SDIFF_ERR_CANCELLED). */
typedef bool (*sdiff_progress_fn)(int step, int total_steps, void *user);

typedef struct sdiff_gen_params {
    const char *prompt;            /* UTF-8; invalid UTF-8 is an error        */
    const char *negative_prompt;   /* NULL == ""                              */
    int width, height;             /* multiples of 8; 0 == the model's size   */
    int steps;                     /* denoising steps (>= 1)                  */
    float cfg_scale;               /* classifier-free guidance; <= 1 == off   */
    uint64_t seed;                 /* torch.Generator().manual_seed(seed)     */
    sdiff_sampler sampler;
    int batch;                     /* images per prompt; 0 == 1               */
    int clip_skip;                 /* 0/1 == last layer; 2 == penultimate ... */
    const sdiff_image *init_image; /* img2img when set; resized? no: must be
                                      width x height                          */
    float strength;                /* img2img: 0..1, how much to change        */
    float eta;                     /* DDIM eta (0 == deterministic)           */
    sdiff_noise noise;             /* which torch.randn to reproduce          */
    sdiff_progress_fn progress;
    void *progress_user;
} sdiff_gen_params;

SDIFF_API sdiff_gen_params sdiff_gen_default_params(const sdiff_model *model);
/* Writes params->batch images to out_images (an array the caller provides);
   free each with sdiff_image_free(). */
SDIFF_API sdiff_status sdiff_generate(sdiff_model *model, const sdiff_gen_params *params, sdiff_image *out_images);
/* Peak bytes of activation memory used by the last generation. */
SDIFF_API size_t sdiff_model_peak_activation_bytes(const sdiff_model *model);

/* >>api:image ------------------------------------------------------------ */
SDIFF_API void sdiff_image_free(sdiff_image *image);
/* Loads PNG/JPEG/BMP/... as RGB. */
SDIFF_API sdiff_status sdiff_image_load(const char *path, sdiff_image *out_image);
/* text: stored as a PNG tEXt chunk with the key "parameters" (NULL == none). */
SDIFF_API sdiff_status sdiff_image_write_png(const sdiff_image *image, const char *path, const char *text);
/* The generation parameters as text, as stored in PNGs ("prompt ... Steps: 30, ..."). */
SDIFF_API sdiff_status sdiff_gen_params_describe(const sdiff_gen_params *params, char *buf, size_t buf_size);

#endif /* SDIFF_H */

/* =========================================================================
   IMPLEMENTATION
   ========================================================================= */
#ifdef SDIFF_IMPLEMENTATION
#ifndef SDIFF_IMPLEMENTATION_DONE
#define SDIFF_IMPLEMENTATION_DONE

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <float.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#if defined(SDIFF_MALLOC) && defined(SDIFF_FREE) && defined(SDIFF_REALLOC)
#elif !defined(SDIFF_MALLOC) && !defined(SDIFF_FREE) && !defined(SDIFF_REALLOC)
#  define SDIFF_MALLOC(sz) malloc(sz)
#  define SDIFF_REALLOC(p, sz) realloc(p, sz)
#  define SDIFF_FREE(p) free(p)
#else
#  error "Define all or none of SDIFF_MALLOC, SDIFF_REALLOC and SDIFF_FREE."
#endif
#ifndef SDIFF_ASSERT
#  include <assert.h>
#  define SDIFF_ASSERT(x) assert(x)
#endif

#define SDIFF__PRIVATE static
/* Internal functions that only some builds call (the tools, the tests, the
   CUDA backend): private, and no warning where a build leaves them unused. */
#if defined(__GNUC__)
#  define SDIFF__INTERNAL static __attribute__((unused))
#else
#  define SDIFF__INTERNAL static
#endif
#define SDIFF__UNUSED(x) ((void)(x))
#define SDIFF__MIN(a, b) ((a) < (b) ? (a) : (b))
#define SDIFF__MAX(a, b) ((a) > (b) ? (a) : (b))

/* >>base ===================================================================
   Base: allocation, errors, logging, threads
   ========================================================================= */

/* --- allocation: every allocation goes through these, and counts overflow */
SDIFF__PRIVATE void *sdiff__malloc(size_t n) { return SDIFF_MALLOC(n ? n : 1); }
SDIFF__PRIVATE void sdiff__free(void *p) { if (p) SDIFF_FREE(p); }
SDIFF__PRIVATE void *sdiff__realloc(void *p, size_t n) { return SDIFF_REALLOC(p, n ? n : 1); }
/* n * size, or NULL when the product overflows. Zero-filled. */
SDIFF__PRIVATE void *sdiff__calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = sdiff__malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}
SDIFF__PRIVATE char *sdiff__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = (char *)sdiff__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* --- errors: a per-thread message buffer, set where the failure is found */
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_THREADS__)
#  define SDIFF__THREAD_LOCAL _Thread_local
#else
#  define SDIFF__THREAD_LOCAL __thread
#endif
static SDIFF__THREAD_LOCAL char sdiff__g_error[1024];

#if defined(__GNUC__)
#  define SDIFF__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define SDIFF__PRINTF(a, b)
#endif

/* Records the message and returns the status, so callers write
   `return sdiff__err(SDIFF_ERR_FORMAT, "%s: header too long", path);` */
SDIFF__PRIVATE sdiff_status sdiff__err(sdiff_status status, const char *fmt, ...) SDIFF__PRINTF(2, 3);
SDIFF__PRIVATE sdiff_status sdiff__err(sdiff_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sdiff__g_error, sizeof sdiff__g_error, fmt, ap);
    va_end(ap);
    return status;
}
#define SDIFF__TRY(expr) do { sdiff_status sdiff__st_ = (expr); if (sdiff__st_ != SDIFF_OK) return sdiff__st_; } while (0)

/* --- logging: the context's callback, or stderr */
typedef struct sdiff__logger {
    sdiff_log_level level;
    sdiff_log_fn fn;
    void *user;
} sdiff__logger;

SDIFF__PRIVATE void sdiff__log(const sdiff__logger *lg, sdiff_log_level level, const char *tag, const char *fmt, ...)
    SDIFF__PRINTF(4, 5);
SDIFF__PRIVATE void sdiff__log(const sdiff__logger *lg, sdiff_log_level level, const char *tag, const char *fmt, ...) {
    if (!lg || level > lg->level) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (lg->fn) lg->fn(level, tag, msg, lg->user);
    else fprintf(stderr, "sdiff [%s] %s\n", tag, msg);
}

/* Strict UTF-8 over n bytes: no overlongs, no surrogates, nothing above
   U+10FFFF. On failure *bad (if given) is the offset of the first bad byte. */
SDIFF__PRIVATE bool sdiff__utf8_valid(const char *text, size_t n, size_t *bad) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len, k;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else break;
        if (n - i < len) break;
        for (k = 1; k < len && (s[i + k] & 0xC0) == 0x80; k++) cp = (cp << 6) | (s[i + k] & 0x3Fu);
        if (k < len || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) break;
        i += len;
    }
    if (i < n && bad) *bad = i;
    return i == n;
}

/* --- threads: a tiny fork-join pool, owned by the CPU backend */
typedef struct sdiff__pool sdiff__pool;
/* Runs fn(arg, begin, end, thread_index) over [0, n) split into contiguous
   chunks, one per thread (never chunks smaller than `grain`). Returns when
   every chunk is done. fn must not call sdiff__pool_run itself. */
typedef void (*sdiff__pool_fn)(void *arg, int64_t begin, int64_t end, int thread_index);

/* >>dtype ==================================================================
   Half floats and dtypes
   ========================================================================= */
typedef enum sdiff__dtype { SDIFF__F32 = 0, SDIFF__F16 = 1, SDIFF__BF16 = 2 } sdiff__dtype;

SDIFF__PRIVATE size_t sdiff__dtype_size(sdiff__dtype dt) { return dt == SDIFF__F32 ? 4 : 2; }

SDIFF__PRIVATE float sdiff__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: renormalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
/* Round to nearest even, as PyTorch's .half() does. */
SDIFF__INTERNAL uint16_t sdiff__f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow -> inf */
    if (ax < 0x38800000u) { /* subnormal or zero */
        float a;
        memcpy(&a, &ax, 4);
        return (uint16_t)(sign | (uint32_t)lrintf(a * 16777216.0f)); /* a / 2^-24 */
    }
    uint32_t r = ax + 0xfff + ((ax >> 13) & 1) - (112u << 23);
    return (uint16_t)(sign | (r >> 13));
}
/* x in [0, 255] rounded half to even, as numpy's round and lrintf: adding 1.5 * 2^23 leaves the
   integer in the low mantissa bits, rounded by the addition itself (the default rounding mode is
   round to nearest even). Equal to lrintf on every float in [0, 255] (tests: image_round_u8) at a
   third of a libm call's cost. */
SDIFF__INTERNAL uint8_t sdiff__round_u8(float x) {
    const float r = x + 12582912.0f;
    uint32_t bits;
    memcpy(&bits, &r, sizeof bits);
    return (uint8_t)(bits - 0x4B400000u);
}
/* One value of a decoded image (the VAE's output, about [-1, 1]) as a byte, as diffusers: x/2 + 0.5
   clamped to [0, 1] (NaN to 0), times 255, rounded half to even (numpy's round). The backends'
   download_image; sdiff_cuda.h's image_u8 kernel is the same formula (x/2 is exact, so a fused
   multiply-add of it changes nothing; the product with 255 is rounded on its own there too). */
SDIFF__INTERNAL uint8_t sdiff__image_byte(float x) {
    float v = x / 2.0f + 0.5f;
    v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
    return sdiff__round_u8(v * 255.0f);
}
SDIFF__PRIVATE float sdiff__bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
SDIFF__INTERNAL uint16_t sdiff__f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}
/* n values of dtype `dt` (possibly unaligned, as in a mmapped file) to f32. */
SDIFF__PRIVATE void sdiff__to_f32(float *dst, const void *src, sdiff__dtype dt, size_t n) {
    const unsigned char *s = (const unsigned char *)src;
    if (dt == SDIFF__F32) { memcpy(dst, s, n * 4); return; }
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = dt == SDIFF__F16 ? sdiff__f16_to_f32(h) : sdiff__bf16_to_f32(h);
    }
}

/* >>tensor =================================================================
   Tensors and arenas

   A tensor is a header on the host pointing at backend memory. Shapes are in
   PyTorch order: ne[0] is the outermost dimension, ne[nd-1] the innermost and
   contiguous one. Activations are channels-last: an image batch is
   [B, H, W, C], a token sequence [B, L, C], so a convolution's output feeds
   attention without a transpose. Every tensor is contiguous, except a column
   view (sdiff__view_cols), whose rows are row_stride elements apart: only the
   ops documented to accept views get one (attention's q, k and v).
   ========================================================================= */
#define SDIFF__MAX_DIMS 4

typedef struct sdiff__tensor {
    sdiff__dtype dtype;
    int nd;
    int64_t ne[SDIFF__MAX_DIMS];
    int64_t row_stride;   /* elements from one innermost row to the next       */
    void *data;           /* backend memory (host memory for the CPU backend)  */
} sdiff__tensor;

SDIFF__PRIVATE int64_t sdiff__numel(const sdiff__tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->nd; i++) n *= t->ne[i];
    return n;
}
SDIFF__PRIVATE int64_t sdiff__cols(const sdiff__tensor *t) { return t->ne[t->nd - 1]; }
SDIFF__PRIVATE int64_t sdiff__rows(const sdiff__tensor *t) { return sdiff__numel(t) / sdiff__cols(t); }
SDIFF__PRIVATE bool sdiff__is_contiguous(const sdiff__tensor *t) { return t->row_stride == sdiff__cols(t); }

/* >>backend ================================================================
   Backend interface (the op table)

   Models call these and nothing else, so one model source runs on every
   backend. Errors are sticky, as in CUDA: the first failing op records a
   status in be->status (and the message in sdiff_last_error), every later op
   returns at once, and the model checks be->status once at the end. That
   keeps a forward pass readable top to bottom.

   Shapes, dtypes: y is allocated by the caller with the right shape; every
   activation has dtype be->act_dtype; weights have be->weight_dtype (biases
   and norm parameters too). Optional inputs may be NULL.
   ========================================================================= */
typedef enum sdiff__act {
    SDIFF__ACT_NONE = 0,
    SDIFF__ACT_SILU,        /* x * sigmoid(x)                                 */
    SDIFF__ACT_GELU,        /* exact, erf-based (PyTorch's default)           */
    SDIFF__ACT_QUICK_GELU,  /* x * sigmoid(1.702 x) (CLIP)                    */
    SDIFF__ACT_GEGLU        /* linear only: diffusers' GEGLU, see linear      */
} sdiff__act;

#define SDIFF__LINCOMB_MAX 5   /* terms of a lincomb */
typedef struct sdiff__backend sdiff__backend;
struct sdiff__backend {
    const char *name;
    sdiff_status status;        /* sticky first failure                        */
    sdiff__dtype act_dtype;     /* activations                                 */
    sdiff__dtype weight_dtype;  /* weights, biases, norm parameters            */
    const sdiff__logger *log;
    void (*destroy)(sdiff__backend *be);

    /* --- memory. alloc returns NULL when out of memory (and sets nothing). */
    void *(*alloc)(sdiff__backend *be, size_t bytes);
    void (*free)(sdiff__backend *be, void *ptr);
    /* t (contiguous) <- n = numel(t) host values of dtype src_dt, converted. */
    void (*upload)(sdiff__backend *be, sdiff__tensor *t, const void *src, sdiff__dtype src_dt);
    /* host f32 <- t (contiguous). Waits for the backend to finish. */
    void (*download)(sdiff__backend *be, const sdiff__tensor *t, float *dst);
    /* host bytes <- a decoded image t (contiguous, values about [-1, 1]), each value through
       sdiff__image_byte: the conversion runs where t is, so a GPU sends bytes, not floats. */
    void (*download_image)(sdiff__backend *be, const sdiff__tensor *t, uint8_t *dst);
    /* A convolution weight: src is PyTorch's [Co, Ci, KH, KW] in src_dt, t is
       the [Co, KH, KW, Ci] tensor it becomes; reordered while converted, so
       no host copy of the weight is made (src is the weight file's mmap). */
    void (*upload_conv)(sdiff__backend *be, sdiff__tensor *t, const void *src, sdiff__dtype src_dt);

    /* --- ops */
    /* y[M,N] = act(x[M,K] . w[N,K]^T + bias[N]) + residual[M,N].
       x may be [.., K] of any rank; M = its number of rows. act GEGLU
       (diffusers' GEGLU, SD's feed-forward): w is [2N,K] and bias [2N], the
       layer's outputs h = columns 0..N-1 and g = N..2N-1 of x . w^T + bias
       give y[M,N] = h * gelu(g) (+ residual): one op, so a backend may
       fuse it into the GEMM (the CUDA one does on Hopper). */
    void (*linear)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, const sdiff__tensor *w,
                   const sdiff__tensor *bias, sdiff__act act, const sdiff__tensor *residual);
    /* NHWC convolution: x[B,H,W,Ci], w[Co,KH,KW,Ci], y[B,Ho,Wo,Co].
       y = conv(x) + bias + residual. Input (iy, ix) = (oy*stride - pad + ky,
       ox*stride - pad + kx); reads outside x are zero, so y's own size decides
       the padding at the bottom and right (the VAE encoder pads only there).
       residual: y's shape (contiguous; may be y itself), or [B,1,1,Co] with
       any row stride, one row per image added to all its pixels (a resnet's
       time embedding; sdiff__residual_per_image). */
    void (*conv2d)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, const sdiff__tensor *w,
                   const sdiff__tensor *bias, int stride, int pad, const sdiff__tensor *residual);
    /* x[B, ..., C] with the groups over C and every position between: per
       batch item, groups of C/groups channels; optional SiLU after. gamma and
       beta (optional, [C]; layer_norm's too) are model parameters: no op may
       write them (the CUDA backend reads them before waiting for the work
       queued before). */
    void (*group_norm)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, const sdiff__tensor *gamma,
                       const sdiff__tensor *beta, int groups, float eps, bool silu);
    /* Over the last dimension; gamma and beta as group_norm's (model parameters). */
    void (*layer_norm)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, const sdiff__tensor *gamma,
                       const sdiff__tensor *beta, float eps);
    /* Multi-head attention, softmax(q k^T / sqrt(D)) v per head.
       q[B,Lq,H*D], k and v [B,Lk,H*D] (column views allowed), o[B,Lq,H*D]
       contiguous. causal: query i sees keys 0..i only. */
    void (*attention)(sdiff__backend *be, sdiff__tensor *o, const sdiff__tensor *q, const sdiff__tensor *k,
                      const sdiff__tensor *v, int heads, bool causal);
    /* y = a + b. b has a's shape, or [C] (added to every row), or [B, C] with
       B = a->ne[0] (added to every row of batch item b; any row stride). y may
       alias a. */
    void (*add)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *a, const sdiff__tensor *b);
    /* y = act(x); y may alias x. */
    void (*activate)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, sdiff__act act);
    /* NHWC nearest-neighbour upsampling to y's size, x[B,H,W,C] ->
       y[B,Ho,Wo,C]: source row = min(floor(dst_row * (float)H / Ho), H - 1)
       (PyTorch's "nearest"; exactly 2x when Ho == 2H). */
    void (*upsample)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x);
    /* y[..., Ca+Cb] = concat(a[..., Ca], b[..., Cb]) along the last dim. */
    void (*concat)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *a, const sdiff__tensor *b);
    /* y[n, C] = table[ids[i], :] for n host ids (checked < table rows). */
    void (*embed)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *table, const int32_t *ids, int n);
    /* y[B, dim] = sinusoidal features of the timesteps t[B] (an F32 tensor
       in backend memory, so a captured step can be replayed with new t),
       as sdiff__timestep_features computes them. */
    void (*timestep_embedding)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *t, bool flip_sin_to_cos,
                               float freq_shift);
    /* y = sum_k c[k] * x[k] for k < n (1..SDIFF__LINCOMB_MAX), element by element over numel(y)
       values, then clamped to [-clamp, clamp] when clamp > 0. Every x[k] has numel(y) values, all of
       one dtype (F32 or the activation dtype); y is F32 or the activation dtype; all contiguous; y
       may be any x[k]. The sampling loop's arithmetic (sdiff__sched_plan: the schedulers' steps,
       CFG, scale_model_input), so that it runs where the latents are. */
    void (*lincomb)(sdiff__backend *be, sdiff__tensor *y, int n, const sdiff__tensor *const *x, const float *c,
                    float clamp);

    /* --- optional (NULL on the CPU): one growable range of memory, which
       the arena then uses instead of blocks: nothing is lost to block tails,
       addresses never move, and the memory held is the peak so far.
       range_reserve reserves address space for up to *capacity bytes (the
       backend sets it) and returns the base, or NULL (the arena falls back
       to blocks); range_grow makes the first *size bytes usable, rounding
       *size up (false when out of memory); range_free returns it all. */
    void *(*range_reserve)(sdiff__backend *be, size_t *capacity);
    bool (*range_grow)(sdiff__backend *be, void *base, size_t *size);
    void (*range_free)(sdiff__backend *be, void *base);
    /* --- optional (NULL on the CPU): y = conv2d(nearest 2x upsampling of x, w 3x3, stride 1, pad 1)
       + bias, with y [B, 2H, 2W, Co], without making the upsampled tensor (SD's upsamplers). False,
       with nothing done, where the backend cannot: the caller then upsamples and convolves. */
    bool (*upsample_conv2d)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, const sdiff__tensor *w,
                            const sdiff__tensor *bias);

    /* --- optional (NULL on the CPU): record the ops issued between
       graph_begin and graph_end once, then replay them with graph_launch.
       Replays read and write the same memory, so the caller keeps inputs and
       outputs at fixed addresses and changes only their contents. */
    bool (*graph_begin)(sdiff__backend *be);
    void *(*graph_end)(sdiff__backend *be);
    void (*graph_launch)(sdiff__backend *be, void *graph);
    void (*graph_free)(sdiff__backend *be, void *graph);

    /* --- optional (NULL on the CPU, whose ops are done when they return):
       mark(k) remembers how far the work queued so far reaches (marks 0 and
       1), wait_mark(k) returns when the work before mark k is done. The
       sampling loop keeps one step queued behind the one it waits for, so a
       GPU never waits for the host between steps. */
    void (*mark)(sdiff__backend *be, int k);
    void (*wait_mark)(sdiff__backend *be, int k);
};

/* Backends compiled in beside the CPU one register their constructor here
   (sdiff_cuda.h does, from a constructor function), so sdiff.h needs no
   knowledge of them and works with or without them. */
typedef sdiff__backend *(*sdiff__backend_create_fn)(int device, const sdiff__logger *log);
static sdiff__backend_create_fn sdiff__g_cuda_backend_create;

/* Records the first failure of a backend; later ones are dropped. */
SDIFF__PRIVATE void sdiff__be_fail(sdiff__backend *be, sdiff_status st, const char *fmt, ...) SDIFF__PRINTF(3, 4);
SDIFF__PRIVATE void sdiff__be_fail(sdiff__backend *be, sdiff_status st, const char *fmt, ...) {
    if (be->status != SDIFF_OK) return;
    be->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sdiff__g_error, sizeof sdiff__g_error, fmt, ap);
    va_end(ap);
}

/* Validation every backend's ops share: t present, 1..4 dimensions of at
   least 1, dtype dt, contiguous or a valid column view. Fails the backend
   with a message naming the op and the argument. */
SDIFF__PRIVATE bool sdiff__op_tensor_ok(sdiff__backend *be, const sdiff__tensor *t, const char *op, const char *name,
                                        bool contiguous, sdiff__dtype dt) {
    if (!t || !t->data || t->nd < 1 || t->nd > SDIFF__MAX_DIMS || t->dtype != dt) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: %s is missing, empty or not %s", op, name,
                       dt == SDIFF__F16 ? "F16" : dt == SDIFF__F32 ? "F32" : "BF16");
        return false;
    }
    for (int i = 0; i < t->nd; i++)
        if (t->ne[i] < 1) {
            sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: %s has shape dimension %d = %lld", op, name, i,
                           (long long)t->ne[i]);
            return false;
        }
    if (contiguous ? !sdiff__is_contiguous(t) : t->row_stride < sdiff__cols(t)) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: %s has row_stride %lld for %lld columns", op, name,
                       (long long)t->row_stride, (long long)sdiff__cols(t));
        return false;
    }
    return true;
}
/* An optional [n] parameter vector (bias, gamma, beta) of dtype dt. */
SDIFF__PRIVATE bool sdiff__op_vec_ok(sdiff__backend *be, const sdiff__tensor *t, int64_t n, const char *op,
                                     const char *name, sdiff__dtype dt) {
    if (!t) return true;
    if (!sdiff__op_tensor_ok(be, t, op, name, true, dt)) return false;
    if (sdiff__numel(t) != n) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: %s has %lld elements, want %lld", op, name,
                       (long long)sdiff__numel(t), (long long)n);
        return false;
    }
    return true;
}

/* Shape checks shared by the backends: a and b have the same shape; fail
   the backend with both shapes in the message. */
SDIFF__PRIVATE bool sdiff__same_shape(const sdiff__tensor *a, const sdiff__tensor *b) {
    if (a->nd != b->nd) return false;
    for (int i = 0; i < a->nd; i++) if (a->ne[i] != b->ne[i]) return false;
    return true;
}
/* A conv2d residual of one row per image, [B, 1, 1, Co] (any row stride), added to every pixel of
   that image of y [B, Ho, Wo, Co]: output pixel m reads row m / (Ho * Wo). */
SDIFF__PRIVATE bool sdiff__residual_per_image(const sdiff__tensor *residual, const sdiff__tensor *y) {
    return residual && residual->nd == 4 && y->nd == 4 && residual->ne[0] == y->ne[0] && residual->ne[1] == 1 &&
           residual->ne[2] == 1 && residual->ne[3] == y->ne[3];
}
SDIFF__PRIVATE bool sdiff__shape_fail(sdiff__backend *be, const char *op, const char *what, const sdiff__tensor *a,
                                      const sdiff__tensor *b) {
    char sa[96], sb[96];
    const sdiff__tensor *ts[2] = {a, b};
    char *ss[2] = {sa, sb};
    for (int t = 0; t < 2; t++) {
        int o = snprintf(ss[t], 96, "[");
        for (int i = 0; i < ts[t]->nd && o < 80; i++)
            o += snprintf(ss[t] + o, (size_t)(96 - o), "%s%lld", i ? "," : "", (long long)ts[t]->ne[i]);
        snprintf(ss[t] + o, (size_t)(96 - o), "]");
    }
    sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: %s (shapes %s and %s)", op, what, sa, sb);
    return false;
}

/* Argument validation of each op, one function per op, shared by every
   backend so they accept the same arguments with the same messages. Each
   returns false after failing the backend. act: the backend's activation
   dtype; weight: that of its weights, biases and norm parameters. A
   backend's own extra conditions stay in the backend. */
SDIFF__PRIVATE bool sdiff__check_transfer(sdiff__backend *be, const char *op, const sdiff__tensor *t, const void *host,
                                          const char *host_name, sdiff__dtype dt) {
    if (!sdiff__op_tensor_ok(be, t, op, "t", true, dt)) return false;
    if (!host) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: NULL %s", op, host_name);
        return false;
    }
    return true;
}
SDIFF__PRIVATE bool sdiff__check_upload_conv(sdiff__backend *be, const sdiff__tensor *t, const void *src,
                                             sdiff__dtype dt) {
    if (!sdiff__check_transfer(be, "upload_conv", t, src, "source", dt)) return false;
    if (t->nd != 4) return sdiff__shape_fail(be, "upload_conv", "t is not [Co, KH, KW, Ci]", t, t);
    return true;
}
SDIFF__PRIVATE bool sdiff__check_linear(sdiff__backend *be, const sdiff__tensor *y, const sdiff__tensor *x,
                                        const sdiff__tensor *w, const sdiff__tensor *bias, sdiff__act act_fn,
                                        const sdiff__tensor *residual, sdiff__dtype act, sdiff__dtype weight) {
    const char *op = "linear";
    if (!sdiff__op_tensor_ok(be, y, op, "y", true, act) || !sdiff__op_tensor_ok(be, x, op, "x", false, act) ||
        !sdiff__op_tensor_ok(be, w, op, "w", true, weight))
        return false;
    if (act_fn < SDIFF__ACT_NONE || act_fn > SDIFF__ACT_GEGLU) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "linear: unknown activation %d", (int)act_fn);
        return false;
    }
    int64_t m = sdiff__rows(x), k = sdiff__cols(x);
    if (w->nd != 2 || w->ne[1] != k) return sdiff__shape_fail(be, op, "w is not [N, K]", w, x);
    const bool geglu = act_fn == SDIFF__ACT_GEGLU;
    int64_t n = geglu ? w->ne[0] / 2 : w->ne[0];
    if (geglu && w->ne[0] % 2) return sdiff__shape_fail(be, op, "GEGLU's w must have an even number of rows", w, x);
    if (sdiff__rows(y) != m || sdiff__cols(y) != n)
        return sdiff__shape_fail(be, op, geglu ? "y is not [M, N] for GEGLU's w [2N, K]" : "y is not [M, N]", y, w);
    if (!sdiff__op_vec_ok(be, bias, w->ne[0], op, "bias", weight)) return false;
    if (residual) {
        if (!sdiff__op_tensor_ok(be, residual, op, "residual", true, act)) return false;
        if (sdiff__numel(residual) != m * n) return sdiff__shape_fail(be, op, "residual is not y's size", residual, y);
    }
    return true;
}
SDIFF__PRIVATE bool sdiff__check_conv2d(sdiff__backend *be, const sdiff__tensor *y, const sdiff__tensor *x,
                                        const sdiff__tensor *w, const sdiff__tensor *bias, int stride, int pad,
                                        const sdiff__tensor *residual, sdiff__dtype act, sdiff__dtype weight) {
    const char *op = "conv2d";
    if (!sdiff__op_tensor_ok(be, y, op, "y", true, act) || !sdiff__op_tensor_ok(be, x, op, "x", true, act) ||
        !sdiff__op_tensor_ok(be, w, op, "w", true, weight))
        return false;
    if (x->nd != 4 || w->nd != 4 || y->nd != 4) return sdiff__shape_fail(be, op, "x, w and y must be 4-D", x, w);
    if (stride < 1 || pad < 0) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "conv2d: stride %d / pad %d out of range", stride, pad);
        return false;
    }
    int64_t h = x->ne[1], wd = x->ne[2], co = w->ne[0], ho = y->ne[1], wo = y->ne[2];
    if (w->ne[3] != x->ne[3]) return sdiff__shape_fail(be, op, "w's input channels differ from x's", w, x);
    if (y->ne[0] != x->ne[0] || y->ne[3] != co) return sdiff__shape_fail(be, op, "y's batch or channels are wrong", y, w);
    /* y's size sets the bottom/right padding, but every output must see x
       (or the top/left padding) with its first tap. */
    if ((ho - 1) * stride > h - 1 + 2 * (int64_t)pad || (wo - 1) * stride > wd - 1 + 2 * (int64_t)pad)
        return sdiff__shape_fail(be, op, "y is larger than the padded input allows", y, x);
    if (!sdiff__op_vec_ok(be, bias, co, op, "bias", weight)) return false;
    if (residual) {
        const bool per_image = sdiff__residual_per_image(residual, y);
        if (!sdiff__op_tensor_ok(be, residual, op, "residual", !per_image, act)) return false;
        if (!per_image && !sdiff__same_shape(residual, y))
            return sdiff__shape_fail(be, op, "residual is neither y's shape nor [B, 1, 1, Co]", residual, y);
    }
    return true;
}
SDIFF__PRIVATE bool sdiff__check_group_norm(sdiff__backend *be, const sdiff__tensor *y, const sdiff__tensor *x,
                                            const sdiff__tensor *gamma, const sdiff__tensor *beta, int groups,
                                            sdiff__dtype act, sdiff__dtype weight) {
    const char *op = "group_norm";
    if (!sdiff__op_tensor_ok(be, y, op, "y", true, act) || !sdiff__op_tensor_ok(be, x, op, "x", true, act)) return false;
    if (!sdiff__same_shape(x, y) || x->nd < 2) return sdiff__shape_fail(be, op, "y must be x's shape, [B, ..., C]", y, x);
    int64_t c = sdiff__cols(x);
    if (groups < 1 || c % groups) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "group_norm: %lld channels do not split into %d groups",
                       (long long)c, groups);
        return false;
    }
    return sdiff__op_vec_ok(be, gamma, c, op, "gamma", weight) && sdiff__op_vec_ok(be, beta, c, op, "beta", weight);
}
SDIFF__PRIVATE bool sdiff__check_layer_norm(sdiff__backend *be, const sdiff__tensor *y, const sdiff__tensor *x,
                                            const sdiff__tensor *gamma, const sdiff__tensor *beta, sdiff__dtype act,
                                            sdiff__dtype weight) {
    const char *op = "layer_norm";
    if (!sdiff__op_tensor_ok(be, y, op, "y", true, act) || !sdiff__op_tensor_ok(be, x, op, "x", true, act)) return false;
    if (!sdiff__same_shape(x, y)) return sdiff__shape_fail(be, op, "y must be x's shape", y, x);
    int64_t c = sdiff__cols(x);
    return sdiff__op_vec_ok(be, gamma, c, op, "gamma", weight) && sdiff__op_vec_ok(be, beta, c, op, "beta", weight);
}
SDIFF__PRIVATE bool sdiff__check_attention(sdiff__backend *be, const sdiff__tensor *o, const sdiff__tensor *q,
                                           const sdiff__tensor *k, const sdiff__tensor *v, int heads, sdiff__dtype act) {
    const char *op = "attention";
    if (!sdiff__op_tensor_ok(be, o, op, "o", true, act) || !sdiff__op_tensor_ok(be, q, op, "q", false, act) ||
        !sdiff__op_tensor_ok(be, k, op, "k", false, act) || !sdiff__op_tensor_ok(be, v, op, "v", false, act))
        return false;
    if (q->nd != 3 || k->nd != 3 || v->nd != 3 || !sdiff__same_shape(o, q))
        return sdiff__shape_fail(be, op, "q, k, v must be [B, L, H*D] and o q's shape", q, k);
    if (!sdiff__same_shape(k, v) || k->ne[0] != q->ne[0] || k->ne[2] != q->ne[2])
        return sdiff__shape_fail(be, op, "k and v must be [B, Lk, H*D] like q", q, k);
    if (heads < 1 || q->ne[2] % heads) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "attention: %lld columns do not split into %d heads",
                       (long long)q->ne[2], heads);
        return false;
    }
    return true;
}
/* Also says how b is broadcast: *mode 0 (a's shape), 1 ([C]) or 2 ([B, C],
   *rows_per_b rows of a per row of b). */
SDIFF__PRIVATE bool sdiff__check_add(sdiff__backend *be, const sdiff__tensor *y, const sdiff__tensor *a,
                                     const sdiff__tensor *b, sdiff__dtype act, int *mode, int64_t *rows_per_b) {
    const char *op = "add";
    if (!sdiff__op_tensor_ok(be, y, op, "y", true, act) || !sdiff__op_tensor_ok(be, a, op, "a", true, act) ||
        !sdiff__op_tensor_ok(be, b, op, "b", false, act))
        return false;
    if (!sdiff__same_shape(a, y)) return sdiff__shape_fail(be, op, "y must be a's shape", y, a);
    int64_t c = sdiff__cols(a);
    *rows_per_b = 1;
    if (sdiff__same_shape(a, b) && sdiff__is_contiguous(b)) *mode = 0;
    else if (b->nd == 1 && b->ne[0] == c) *mode = 1;
    else if (b->nd == 2 && b->ne[0] == a->ne[0] && b->ne[1] == c && a->nd >= 2) {
        *mode = 2;
        *rows_per_b = sdiff__rows(a) / a->ne[0];
    } else {
        return sdiff__shape_fail(be, op, "b must be a's shape (contiguous), [C] or [B, C]", a, b);
    }
    return true;
}
SDIFF__PRIVATE bool sdiff__check_activate(sdiff__backend *be, const sdiff__tensor *y, const sdiff__tensor *x,
                                          sdiff__act act_fn, sdiff__dtype act) {
    const char *op = "activate";
    if (!sdiff__op_tensor_ok(be, y, op, "y", true, act) || !sdiff__op_tensor_ok(be, x, op, "x", true, act)) return false;
    if (sdiff__numel(x) != sdiff__numel(y)) return sdiff__shape_fail(be, op, "y must be x's size", y, x);
    if (act_fn < SDIFF__ACT_NONE || act_fn > SDIFF__ACT_QUICK_GELU) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "activate: unknown activation %d", (int)act_fn);
        return false;
    }
    return true;
}
SDIFF__PRIVATE bool sdiff__check_upsample(sdiff__backend *be, const sdiff__tensor *y, const sdiff__tensor *x,
                                          sdiff__dtype act) {
    const char *op = "upsample";
    if (!sdiff__op_tensor_ok(be, y, op, "y", true, act) || !sdiff__op_tensor_ok(be, x, op, "x", true, act)) return false;
    if (x->nd != 4 || y->nd != 4 || y->ne[0] != x->ne[0] || y->ne[3] != x->ne[3])
        return sdiff__shape_fail(be, op, "y must be [B, Ho, Wo, C] for x [B, H, W, C]", y, x);
    return true;
}
SDIFF__PRIVATE bool sdiff__check_concat(sdiff__backend *be, const sdiff__tensor *y, const sdiff__tensor *a,
                                        const sdiff__tensor *b, sdiff__dtype act) {
    const char *op = "concat";
    if (!sdiff__op_tensor_ok(be, y, op, "y", true, act) || !sdiff__op_tensor_ok(be, a, op, "a", true, act) ||
        !sdiff__op_tensor_ok(be, b, op, "b", true, act))
        return false;
    bool ok = a->nd == b->nd && a->nd == y->nd && sdiff__cols(y) == sdiff__cols(a) + sdiff__cols(b);
    for (int i = 0; ok && i < a->nd - 1; i++) ok = a->ne[i] == b->ne[i] && a->ne[i] == y->ne[i];
    if (!ok) return sdiff__shape_fail(be, op, "a and b must agree but in the last dim, y hold both", a, b);
    return true;
}
SDIFF__PRIVATE bool sdiff__check_embed(sdiff__backend *be, const sdiff__tensor *y, const sdiff__tensor *table,
                                       const int32_t *ids, int n, sdiff__dtype act, sdiff__dtype weight) {
    const char *op = "embed";
    if (!sdiff__op_tensor_ok(be, y, op, "y", true, act) || !sdiff__op_tensor_ok(be, table, op, "table", true, weight))
        return false;
    if (!ids || n < 1 || table->nd != 2 || sdiff__rows(y) != n || sdiff__cols(y) != table->ne[1])
        return sdiff__shape_fail(be, op, "y must be [n, C] for a [rows, C] table and n ids", y, table);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= table->ne[0]) {
            sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "embed: id %d at %d is outside the table's %lld rows", (int)ids[i],
                           i, (long long)table->ne[0]);
            return false;
        }
    return true;
}
/* t is F32 on every backend. */
SDIFF__PRIVATE bool sdiff__check_timestep_embedding(sdiff__backend *be, const sdiff__tensor *y, const sdiff__tensor *t,
                                                    sdiff__dtype act) {
    const char *op = "timestep_embedding";
    if (!sdiff__op_tensor_ok(be, y, op, "y", true, act) || !sdiff__op_tensor_ok(be, t, op, "t", true, SDIFF__F32))
        return false;
    if (y->nd != 2 || sdiff__numel(t) != y->ne[0]) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "timestep_embedding: y must be [B, dim] and t [B] f32");
        return false;
    }
    return true;
}

/* x[k] all F32 or all act; y F32 or act. */
SDIFF__PRIVATE bool sdiff__check_lincomb(sdiff__backend *be, const sdiff__tensor *y, int n, const sdiff__tensor *const *x,
                                         const float *c, float clamp, sdiff__dtype act) {
    const char *op = "lincomb";
    if (n < 1 || n > SDIFF__LINCOMB_MAX || !x || !c || !(clamp >= 0 && clamp < INFINITY)) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "lincomb: %d terms (1..%d) or clamp %g", n, SDIFF__LINCOMB_MAX,
                       (double)clamp);
        return false;
    }
    if (!sdiff__op_tensor_ok(be, y, op, "y", true, y && y->dtype == SDIFF__F32 ? SDIFF__F32 : act)) return false;
    for (int k = 0; k < n; k++) {
        if (!sdiff__op_tensor_ok(be, x[k], op, "x[k]", true, x[0] && x[0]->dtype == SDIFF__F32 ? SDIFF__F32 : act))
            return false;
        if (sdiff__numel(x[k]) != sdiff__numel(y)) return sdiff__shape_fail(be, op, "every x[k] must have y's size", y, x[k]);
    }
    return true;
}
/* lincomb's arithmetic on host arrays: y[j] = clamp(c[0] x[0][j] + c[1] x[1][j] + ...), summed in
   that order in float32; y may be any x[k]. */
SDIFF__PRIVATE void sdiff__lincomb_f32(float *y, int n, const float *const *x, const float *c, float clamp,
                                       size_t count) {
    for (size_t j = 0; j < count; j++) {
        float v = 0.0f;
        for (int k = 0; k < n; k++) { float t = c[k] * x[k][j]; v = v + t; }
        if (clamp > 0) v = v < -clamp ? -clamp : v > clamp ? clamp : v;
        y[j] = v;
    }
}

/* Sinusoidal timestep features, float32 in the order diffusers computes them
   (get_timestep_embedding), so the UNet sees the same bits. The reference
   every backend's timestep_embedding op follows. */
SDIFF__PRIVATE void sdiff__timestep_features(float *out, const float *t, int batch, int dim, bool flip, float shift) {
    const int half = dim / 2;
    for (int b = 0; b < batch; b++) {
        float *o = out + (size_t)b * dim;
        for (int i = 0; i < half; i++) {
            float e = -9.21034037197618f * (float)i;  /* -ln(10000) * i */
            e = e / ((float)half - shift);
            float arg = t[b] * expf(e);
            float s = sinf(arg), c = cosf(arg);
            o[flip ? half + i : i] = s;
            o[flip ? i : half + i] = c;
        }
        if (dim % 2) o[dim - 1] = 0;
    }
}
/* >>arena ==================================================================
   Arena: where activations live.

   Stack discipline: sdiff__arena_mark() before a block of work and
   sdiff__arena_release() after it hands back everything allocated since.
   Memory comes from the backend's growable range when it has one (CUDA:
   reserved address space, mapped as the arena grows: the memory held is
   exactly the peak, from the first pass on), else in large blocks that are
   kept on release. Either way, once the first denoising step has run, later
   steps allocate nothing. The peak figure is the most bytes ever in use at
   once (reported to the user).
   Tensor headers live in host blocks beside them, with the same discipline.
   On failure sdiff__new fails the backend (sticky) and returns a dummy tensor
   with data == NULL, which every op ignores because the backend has failed.
   ========================================================================= */
#define SDIFF__ARENA_MAX_BLOCKS 64
#define SDIFF__ARENA_ALIGN 256       /* covers AVX-512 and GPU vector loads */
#define SDIFF__ARENA_HDRS_PER_BLOCK 1024

typedef struct sdiff__arena_block { char *data; size_t size, used; } sdiff__arena_block;
typedef struct sdiff__hdr_block { sdiff__tensor t[SDIFF__ARENA_HDRS_PER_BLOCK]; } sdiff__hdr_block;

typedef struct sdiff__arena {
    sdiff__backend *be;
    size_t min_block;                                 /* block size floor      */
    bool ranged, range_tried;                         /* blocks[0]: the range  */
    size_t range_capacity;
    sdiff__arena_block blocks[SDIFF__ARENA_MAX_BLOCKS];
    int n_blocks, cur;                                /* cur: block in use     */
    sdiff__hdr_block *hdrs[SDIFF__ARENA_MAX_BLOCKS];
    int n_hdr_blocks;
    size_t n_hdrs;                                    /* headers in use        */
    size_t in_use, peak;                              /* bytes                 */
    sdiff__tensor dummy;                              /* handed out on failure */
} sdiff__arena;

typedef struct sdiff__arena_mark { int cur; size_t used, n_hdrs, in_use; } sdiff__arena_mark;

SDIFF__PRIVATE void sdiff__arena_init(sdiff__arena *a, sdiff__backend *be, size_t min_block) {
    memset(a, 0, sizeof *a);
    a->be = be;
    a->min_block = min_block;
}
SDIFF__PRIVATE void sdiff__arena_free(sdiff__arena *a) {
    if (a->ranged) a->be->range_free(a->be, a->blocks[0].data);
    else
        for (int i = 0; i < a->n_blocks; i++) a->be->free(a->be, a->blocks[i].data);
    for (int i = 0; i < a->n_hdr_blocks; i++) sdiff__free(a->hdrs[i]);
    memset(a, 0, sizeof *a);
}
SDIFF__PRIVATE sdiff__arena_mark sdiff__arena_mark_get(const sdiff__arena *a) {
    sdiff__arena_mark m = {a->cur, a->n_blocks ? a->blocks[a->cur].used : 0, a->n_hdrs, a->in_use};
    return m;
}
SDIFF__PRIVATE void sdiff__arena_release(sdiff__arena *a, sdiff__arena_mark m) {
    for (int i = m.cur + 1; i < a->n_blocks; i++) a->blocks[i].used = 0;
    if (a->n_blocks) a->blocks[m.cur].used = m.used;
    a->cur = m.cur;
    a->n_hdrs = m.n_hdrs;
    a->in_use = m.in_use;
    /* Emptied after a pass that needed several blocks: trade them for one
       block of the peak, so the next pass wastes no block tails (and a
       generation's steps, once the first has run, allocate nothing). */
    if (m.cur == 0 && m.used == 0 && a->n_blocks > 1) {
        for (int i = 0; i < a->n_blocks; i++) a->be->free(a->be, a->blocks[i].data);
        a->n_blocks = 0;
        a->cur = 0;
        size_t size = (a->peak + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
        char *data = (char *)a->be->alloc(a->be, size);
        if (data) {
            a->blocks[0].data = data;
            a->blocks[0].size = size;
            a->blocks[0].used = 0;
            a->n_blocks = 1;
        }
    }
}
/* Raw backend memory from the arena (NULL and a failed backend when out). */
SDIFF__PRIVATE void *sdiff__arena_alloc(sdiff__arena *a, size_t bytes) {
    bytes = (bytes + SDIFF__ARENA_ALIGN - 1) & ~(size_t)(SDIFF__ARENA_ALIGN - 1);
    if (!a->n_blocks && !a->range_tried && a->be->range_reserve) {
        a->range_tried = true;
        void *base = a->be->range_reserve(a->be, &a->range_capacity);
        if (base) {
            a->blocks[0].data = (char *)base;
            a->blocks[0].size = a->blocks[0].used = 0;
            a->n_blocks = 1;
            a->ranged = true;
        }
    }
    if (a->ranged) { /* one block that grows in place */
        sdiff__arena_block *b = &a->blocks[0];
        size_t want = b->used + bytes;
        if (b->size < want) {
            if (want > a->range_capacity || !a->be->range_grow(a->be, b->data, &want)) goto out_of_memory;
            b->size = want;
        }
        void *p = b->data + b->used;
        b->used += bytes;
        a->in_use += bytes;
        if (a->in_use > a->peak) a->peak = a->in_use;
        return p;
    }
    for (;;) {
        if (a->n_blocks) {
            sdiff__arena_block *b = &a->blocks[a->cur];
            if (b->size - b->used >= bytes) {
                void *p = b->data + b->used;
                b->used += bytes;
                a->in_use += bytes;
                if (a->in_use > a->peak) a->peak = a->in_use;
                return p;
            }
            /* the rest of this block is skipped (it is not counted: the peak
               is what one contiguous block would need, see release) */
            b->used = b->size;
            if (a->cur + 1 < a->n_blocks) { a->cur++; continue; }
        }
        if (a->n_blocks == SDIFF__ARENA_MAX_BLOCKS) break;
        size_t size = SDIFF__MAX(bytes, a->min_block);
        char *data = (char *)a->be->alloc(a->be, size);
        if (!data) break;
        a->blocks[a->n_blocks].data = data;
        a->blocks[a->n_blocks].size = size;
        a->blocks[a->n_blocks].used = 0;
        a->cur = a->n_blocks++;
    }
out_of_memory:
    sdiff__be_fail(a->be, SDIFF_ERR_OUT_OF_MEMORY, "out of %s memory: could not allocate %zu MiB of activations",
                   a->be->name, bytes >> 20);
    return NULL;
}
/* A new tensor of the given shape (nd <= 4) in dtype dt. */
SDIFF__PRIVATE sdiff__tensor *sdiff__new(sdiff__arena *a, sdiff__dtype dt, int nd, int64_t n0, int64_t n1, int64_t n2,
                                         int64_t n3) {
    size_t hb = a->n_hdrs / SDIFF__ARENA_HDRS_PER_BLOCK, hi = a->n_hdrs % SDIFF__ARENA_HDRS_PER_BLOCK;
    if (hb >= (size_t)a->n_hdr_blocks) {
        sdiff__hdr_block *blk = NULL;
        if (a->n_hdr_blocks < SDIFF__ARENA_MAX_BLOCKS) blk = (sdiff__hdr_block *)sdiff__malloc(sizeof *blk);
        if (!blk) {
            sdiff__be_fail(a->be, SDIFF_ERR_OUT_OF_MEMORY, "out of host memory for tensor headers");
            memset(&a->dummy, 0, sizeof a->dummy);
            a->dummy.nd = 1; a->dummy.ne[0] = 1; a->dummy.row_stride = 1;
            return &a->dummy;
        }
        a->hdrs[a->n_hdr_blocks++] = blk;
    }
    sdiff__tensor *t = &a->hdrs[hb]->t[hi];
    a->n_hdrs++;
    int64_t ne[4] = {n0, n1, n2, n3};
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->nd = nd;
    for (int i = 0; i < nd; i++) t->ne[i] = ne[i];
    t->row_stride = ne[nd - 1];
    t->data = sdiff__arena_alloc(a, (size_t)sdiff__numel(t) * sdiff__dtype_size(dt));
    return t;
}
#define sdiff__new1(a, dt, n0) sdiff__new(a, dt, 1, n0, 1, 1, 1)
#define sdiff__new2(a, dt, n0, n1) sdiff__new(a, dt, 2, n0, n1, 1, 1)
#define sdiff__new3(a, dt, n0, n1, n2) sdiff__new(a, dt, 3, n0, n1, n2, 1)
#define sdiff__new4(a, dt, n0, n1, n2, n3) sdiff__new(a, dt, 4, n0, n1, n2, n3)

/* A view of `ncols` columns starting at column `col` of t (same rows). Lives
   in the arena like any tensor; shares t's memory. */
SDIFF__PRIVATE sdiff__tensor *sdiff__view_cols(sdiff__arena *a, const sdiff__tensor *t, int64_t col, int64_t ncols) {
    sdiff__tensor *v = sdiff__new(a, t->dtype, 1, 0, 1, 1, 1); /* header only: 0 bytes of data */
    *v = *t;
    v->ne[t->nd - 1] = ncols;
    v->data = t->data ? (char *)t->data + (size_t)col * sdiff__dtype_size(t->dtype) : NULL;
    return v;
}
/* Rows [row0, row0 + nrows) of a contiguous tensor seen as [nrows, cols]. */
SDIFF__PRIVATE sdiff__tensor *sdiff__view_rows(sdiff__arena *a, const sdiff__tensor *t, int64_t row0, int64_t nrows) {
    sdiff__tensor *v = sdiff__new(a, t->dtype, 1, 0, 1, 1, 1);
    const int64_t cols = sdiff__cols(t);
    *v = *t;
    v->nd = 2;
    v->ne[0] = nrows;
    v->ne[1] = cols;
    v->ne[2] = v->ne[3] = 1;
    v->row_stride = cols;
    v->data = t->data ? (char *)t->data + (size_t)(row0 * cols) * sdiff__dtype_size(t->dtype) : NULL;
    SDIFF_ASSERT(sdiff__is_contiguous(t) && row0 + nrows <= sdiff__rows(t));
    return v;
}
/* A new tensor of this shape in the memory of t, which the caller no longer needs (t at least as
   large, contiguous). */
SDIFF__PRIVATE sdiff__tensor *sdiff__reuse(sdiff__arena *a, const sdiff__tensor *t, int nd, int64_t n0, int64_t n1,
                                           int64_t n2, int64_t n3) {
    sdiff__tensor *v = sdiff__new(a, t->dtype, 1, 0, 1, 1, 1);
    int64_t ne[4] = {n0, n1, n2, n3};
    *v = *t;
    v->nd = nd;
    for (int i = 0; i < 4; i++) v->ne[i] = i < nd ? ne[i] : 1;
    v->row_stride = ne[nd - 1];
    SDIFF_ASSERT(sdiff__numel(v) <= sdiff__numel(t) && sdiff__is_contiguous(t));
    return v;
}
/* The same memory seen with another shape (numel must match; contiguous). */
SDIFF__PRIVATE sdiff__tensor *sdiff__reshape(sdiff__arena *a, const sdiff__tensor *t, int nd, int64_t n0, int64_t n1,
                                             int64_t n2, int64_t n3) {
    sdiff__tensor *v = sdiff__reuse(a, t, nd, n0, n1, n2, n3);
    SDIFF_ASSERT(sdiff__numel(v) == sdiff__numel(t));
    return v;
}

/* >>cpu ====================================================================
   CPU backend: thread pool, GEMM, ops

   Everything is fp32, activations NHWC / [B, L, C] as everywhere else.
   The heavy ops (linear, conv2d, attention) share one packed, cache-blocked
   SGEMM:  C[M,N] = A[M,K] . B[N,K]^T  with B the weights in their stored
   layout. A micro-kernel keeps an MR x NR tile of C in registers; A is packed
   into MR-row panels ([k][MR]) and B into NR-column panels ([k][NR]), so the
   kernel's inner loop is NR/VL vector loads of B, MR broadcasts of A and
   MR*NR/VL FMAs. The kernel is written once with GCC/Clang vector extensions
   and compiled for AVX-512, AVX2+FMA and a portable target; the best one the
   CPU supports is picked at run time, so no -march flag is needed.
     Blocking: KC = 256 (an A micro-panel, KC*MR floats, stays in L1 while
     the B micro-panels stream from L2), MC = 96 rows by NC = 320 columns per
     task (B block KC*NC*4 = 320 KB lives in L2 next to the packed A block and
     the task's accumulator tile).
     Threads: B is packed once per call by all threads, then (MC x NC) tasks
     are taken from an atomic counter. Small problems shrink NC and MC so
     that even M = 77 (CLIP) gives every thread work; M <= 4 (timestep MLP)
     skips packing and runs as dot products over N.
   conv2d is an implicit GEMM: rows are output pixels, K = KH*KW*Ci in the
   weight's [Co,KH,KW,Ci] order, and the A packer gathers the input patches
   (zeros outside x) straight into the panel layout, so no im2col matrix is
   ever materialised. 1x1 stride-1 convolutions are plain GEMMs.
   attention is flash-style: per (batch, head, 96-query block) the scores of
   one key block go through the same micro-kernel, an online softmax (running
   max and sum) turns them into probabilities, and P.V is accumulated with
   the micro-kernel again. K and V are packed once per call, shared by all
   query blocks. exp() is vectorised (the softmax needs Lq*Lk of them).
   ========================================================================= */

/* --- thread pool -------------------------------------------------------- */
/* Workers spin for a short while after a job (ops come back to back, and a
   futex wake-up costs more than a small op), then sleep on a condition
   variable, so an idle pool uses no CPU. */
#define SDIFF__POOL_SPIN 4096

struct sdiff__pool;
typedef struct sdiff__pool_worker {
    struct sdiff__pool *pool;
    int index;
} sdiff__pool_worker;

struct sdiff__pool {
    int n_threads;                 /* including the calling thread           */
    pthread_t *threads;            /* n_threads - 1 workers                  */
    sdiff__pool_worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    /* the current job; written under mu, read by workers under mu */
    sdiff__pool_fn fn;
    void *arg;
    int64_t n, n_chunks;
    uint64_t gen;                  /* job counter, also read atomically      */
    int pending;                   /* chunks not finished yet (atomic)       */
    int stop;
};

SDIFF__PRIVATE void sdiff__pool_pause(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_ia32_pause();
#endif
}

SDIFF__PRIVATE void sdiff__pool_chunk(int64_t n, int64_t n_chunks, int64_t i, int64_t *begin, int64_t *end) {
    *begin = n * i / n_chunks;
    *end = n * (i + 1) / n_chunks;
}

SDIFF__PRIVATE void *sdiff__pool_main(void *p) {
    sdiff__pool_worker *w = (sdiff__pool_worker *)p;
    sdiff__pool *pool = w->pool;
    uint64_t seen = 0;
    for (;;) {
        for (int i = 0; i < SDIFF__POOL_SPIN && __atomic_load_n(&pool->gen, __ATOMIC_ACQUIRE) == seen; i++)
            sdiff__pool_pause();
        pthread_mutex_lock(&pool->mu);
        while (pool->gen == seen && !pool->stop) pthread_cond_wait(&pool->wake, &pool->mu);
        if (pool->stop) { pthread_mutex_unlock(&pool->mu); break; }
        seen = pool->gen;
        sdiff__pool_fn fn = pool->fn;
        void *arg = pool->arg;
        int64_t n = pool->n, n_chunks = pool->n_chunks;
        pthread_mutex_unlock(&pool->mu);
        if (w->index < n_chunks) {
            int64_t b, e;
            sdiff__pool_chunk(n, n_chunks, w->index, &b, &e);
            fn(arg, b, e, w->index);
            if (__atomic_sub_fetch(&pool->pending, 1, __ATOMIC_ACQ_REL) == 0) {
                pthread_mutex_lock(&pool->mu);
                pthread_cond_signal(&pool->done);
                pthread_mutex_unlock(&pool->mu);
            }
        }
    }
    return NULL;
}

SDIFF__PRIVATE void sdiff__pool_destroy(sdiff__pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->n_threads - 1; i++) pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    pthread_mutex_destroy(&pool->mu);
    sdiff__free(pool->threads);
    sdiff__free(pool->workers);
    sdiff__free(pool);
}

SDIFF__PRIVATE sdiff__pool *sdiff__pool_create(int n_threads) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)SDIFF__MIN(n, 1024) : 1;
    }
    sdiff__pool *pool = (sdiff__pool *)sdiff__calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = (pthread_t *)sdiff__calloc((size_t)n_threads, sizeof(pthread_t));
    pool->workers = (sdiff__pool_worker *)sdiff__calloc((size_t)n_threads, sizeof(sdiff__pool_worker));
    if (!pool->threads || !pool->workers) {
        sdiff__free(pool->threads); sdiff__free(pool->workers); sdiff__free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    pool->n_threads = 1;   /* counts started threads, so destroy joins only those */
    for (int i = 1; i < n_threads; i++) {
        pool->workers[i].pool = pool;
        pool->workers[i].index = i;
        if (pthread_create(&pool->threads[i - 1], NULL, sdiff__pool_main, &pool->workers[i]) != 0) {
            sdiff__pool_destroy(pool);
            return NULL;
        }
        pool->n_threads++;
    }
    return pool;
}

SDIFF__PRIVATE int sdiff__pool_threads(const sdiff__pool *pool) { return pool ? pool->n_threads : 1; }

SDIFF__PRIVATE void sdiff__pool_run(sdiff__pool *pool, int64_t n, int64_t grain, sdiff__pool_fn fn, void *arg) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t n_chunks = SDIFF__MIN((int64_t)sdiff__pool_threads(pool), SDIFF__MAX(n / grain, 1));
    if (n_chunks <= 1) { fn(arg, 0, n, 0); return; }
    pthread_mutex_lock(&pool->mu);
    pool->fn = fn;
    pool->arg = arg;
    pool->n = n;
    pool->n_chunks = n_chunks;
    __atomic_store_n(&pool->pending, (int)n_chunks - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&pool->gen, pool->gen + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    int64_t b, e;
    sdiff__pool_chunk(n, n_chunks, 0, &b, &e);
    fn(arg, b, e, 0);
    for (int i = 0; i < SDIFF__POOL_SPIN && __atomic_load_n(&pool->pending, __ATOMIC_ACQUIRE) != 0; i++)
        sdiff__pool_pause();
    pthread_mutex_lock(&pool->mu);
    while (__atomic_load_n(&pool->pending, __ATOMIC_ACQUIRE) != 0) pthread_cond_wait(&pool->done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}

/* --- vector kernels, one set per instruction set ------------------------ */
typedef float sdiff__v16f __attribute__((vector_size(64)));
typedef int32_t sdiff__v16i __attribute__((vector_size(64)));
typedef float sdiff__v8f __attribute__((vector_size(32)));
typedef int32_t sdiff__v8i __attribute__((vector_size(32)));
typedef float sdiff__v4f __attribute__((vector_size(16)));
typedef int32_t sdiff__v4i __attribute__((vector_size(16)));

/* Unaligned vector load/store (memcpy compiles to one vmovups). */
#define SDIFF__VLD(v, p) memcpy(&(v), (p), sizeof(v))
#define SDIFF__VST(p, v) memcpy((p), &(v), sizeof(v))
/* Lane select: mask lanes are all-ones (take a) or zero (take b). */
#define SDIFF__VSEL(V, VI, m, a, b) ((V)(((VI)(a) & (m)) | ((VI)(b) & ~(m))))

/* out = exp(in), lane-wise: exp(x) = 2^k * e^r with k = round(x / ln2) and
   |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (error < 1e-8, below
   fp32 rounding). Inputs below -87 give 0 (also -inf: masked scores), above
   88 are clamped. Rounding goes through an int conversion, not the
   "add 1.5*2^23" trick, so -ffast-math cannot break it. */
#define SDIFF__VEXP(V, VI, out, in)                                                   \
    do {                                                                              \
        V x_ = (in);                                                                  \
        VI under_ = x_ < -87.0f;                                                      \
        x_ = SDIFF__VSEL(V, VI, under_, (V){0} - 87.0f, x_);                       \
        x_ = SDIFF__VSEL(V, VI, x_ > 88.0f, (V){0} + 88.0f, x_);                   \
        VI k_ = __builtin_convertvector(x_ * 1.44269504088896341f + 126.5f, VI) - 126;\
        V kf_ = __builtin_convertvector(k_, V);                                       \
        V r_ = x_ - kf_ * 0.693359375f + kf_ * 2.12194440e-4f;                        \
        V p_ = r_ * (1.0f / 5040.0f) + (1.0f / 720.0f);                               \
        p_ = p_ * r_ + (1.0f / 120.0f);                                               \
        p_ = p_ * r_ + (1.0f / 24.0f);                                                \
        p_ = p_ * r_ + (1.0f / 6.0f);                                                 \
        p_ = p_ * r_ + 0.5f;                                                          \
        p_ = p_ * r_ + 1.0f;                                                          \
        p_ = p_ * r_ + 1.0f;                                                          \
        V s_ = (V)((k_ + 127) << 23);                                                 \
        (out) = (V)((VI)(p_ * s_) & ~under_);                                         \
    } while (0)

/* out = gelu(in) = 0.5 x (1 + erf(x / sqrt2)), lane-wise, erf by Abramowitz &
   Stegun 7.1.26 (absolute error < 1.5e-7, under fp32's resolution of erf
   near 1). */
#define SDIFF__VGELU(V, VI, out, in)                                                  \
    do {                                                                              \
        V gx_ = (in), gz_ = gx_ * 0.70710678118654752f;                               \
        VI gneg_ = gz_ < 0.0f;                                                        \
        V ga_ = SDIFF__VSEL(V, VI, gneg_, -gz_, gz_);                                 \
        V gt_ = 1.0f / (1.0f + 0.3275911f * ga_);                                     \
        V gp_ = gt_ * 1.061405429f - 1.453152027f;                                    \
        gp_ = gp_ * gt_ + 1.421413741f;                                               \
        gp_ = gp_ * gt_ - 0.284496736f;                                               \
        gp_ = gp_ * gt_ + 0.254829592f;                                               \
        gp_ = gp_ * gt_;                                                              \
        V ge_;                                                                        \
        SDIFF__VEXP(V, VI, ge_, -(ga_ * ga_));                                        \
        V gerf_ = 1.0f - gp_ * ge_;                                                   \
        gerf_ = SDIFF__VSEL(V, VI, gneg_, -gerf_, gerf_);                             \
        (out) = 0.5f * gx_ * (1.0f + gerf_);                                          \
    } while (0)

/* Defines, for one instruction set SFX:
   kernel:  c[MR x NR] (row stride ldc) = (accum ? c : 0) + ap . bp over kc,
            ap as [kc][MR] with rows lda apart, bp as [kc][NR] with rows ldb
            apart (packed panels: lda = MR, ldb = NR; attention passes its
            probability tile in place with a wider stride). The accumulators are an
            array the unroll pragmas flatten into registers: MR*NR/VL of them
            (AVX-512 12x32: 24 of 32 zmm; AVX2 6x16: 12 of 16 ymm), plus
            NR/VL for B and one broadcast.
   dot:     out[i] = a_i . b over k for m <= 4 rows of a (GEMV path).
   softmax: one key block of attention, scores transposed (s[key][query],
            rows keys, cols queries, a multiple of VL): the online-softmax
            update vectorised across queries, no horizontal reductions:
            m' = max(m, scale*s), s = exp(scale*s - m'), alpha = exp(m - m'),
            l = l*alpha + sum(s).
   act:     y = act(x) * mul (mul optional), n of them; y may alias x. The
            tail goes through the same vector code (padded), so a value's
            result does not depend on where a thread's chunk starts. */
#define SDIFF__CPU_ISA_DEFINE(SFX, ATTR, V, VI, VL, MR, NV)                                        \
    ATTR SDIFF__PRIVATE void sdiff__gemm_kernel_##SFX(int64_t kc, const float *ap, int64_t lda,      \
                                                      const float *bp, int64_t ldb, float *c,       \
                                                      int64_t ldc, int accum) {                     \
        V acc[MR][NV];                                                                             \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                      \
            _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] = (V){0};               \
        for (int64_t k = 0; k < kc; k++) {                                                         \
            V b[NV];                                                                               \
            _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) SDIFF__VLD(b[j], bp + j * VL);    \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                \
                float a = ap[i];                                                                   \
                _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] += b[j] * a;        \
            }                                                                                      \
            ap += lda;                                                                             \
            bp += ldb;                                                                             \
        }                                                                                          \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                      \
            _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) {                                 \
                float *cp = c + i * ldc + j * VL;                                                  \
                if (accum) { V t; SDIFF__VLD(t, cp); acc[i][j] += t; }                             \
                SDIFF__VST(cp, acc[i][j]);                                                         \
            }                                                                                      \
    }                                                                                              \
    ATTR SDIFF__PRIVATE void sdiff__gemm_dot_##SFX(int64_t k, const float *a, int64_t lda, int m,    \
                                                   const float *b, float *out) {                    \
        V acc[4] = {{0}, {0}, {0}, {0}};                                                           \
        int64_t kk = 0;                                                                            \
        for (; kk + VL <= k; kk += VL) {                                                           \
            V bv, av;                                                                              \
            SDIFF__VLD(bv, b + kk);                                                                \
            for (int i = 0; i < m; i++) { SDIFF__VLD(av, a + i * lda + kk); acc[i] += av * bv; }   \
        }                                                                                          \
        for (int i = 0; i < m; i++) {                                                              \
            float s = 0;                                                                           \
            for (int l = 0; l < VL; l++) s += acc[i][l];                                           \
            for (int64_t t = kk; t < k; t++) s += a[i * lda + t] * b[t];                           \
            out[i] = s;                                                                            \
        }                                                                                          \
    }                                                                                              \
    ATTR SDIFF__PRIVATE void sdiff__cpu_softmax_##SFX(float *s, int64_t lds, int64_t rows, int64_t cols,      \
                                                      float scale, float *m, float *l, float *alpha) {  \
        for (int64_t c = 0; c < cols; c += VL) {                                                   \
            V mo, mn, v, a, lv, sum = {0};                                                         \
            SDIFF__VLD(mo, m + c);                                                                 \
            mn = mo;                                                                               \
            for (int64_t r = 0; r < rows; r++) {                                                   \
                SDIFF__VLD(v, s + r * lds + c);                                                    \
                v *= scale;                                                                        \
                mn = SDIFF__VSEL(V, VI, v > mn, v, mn);                                            \
            }                                                                                      \
            SDIFF__VEXP(V, VI, a, mo - mn);                                                        \
            for (int64_t r = 0; r < rows; r++) {                                                   \
                SDIFF__VLD(v, s + r * lds + c);                                                    \
                SDIFF__VEXP(V, VI, v, v * scale - mn);                                             \
                SDIFF__VST(s + r * lds + c, v);                                                    \
                sum += v;                                                                          \
            }                                                                                      \
            SDIFF__VLD(lv, l + c);                                                                 \
            lv = lv * a + sum;                                                                     \
            SDIFF__VST(l + c, lv);                                                                 \
            SDIFF__VST(m + c, mn);                                                                 \
            SDIFF__VST(alpha + c, a);                                                              \
        }                                                                                          \
    }                                                                                              \
    ATTR SDIFF__PRIVATE void sdiff__cpu_act_##SFX(float *y, const float *x, int64_t n, sdiff__act act,  \
                                                  const float *mul) {                              \
        for (int64_t i = 0; i < n; i += VL) {                                                      \
            V v, r, mv;                                                                            \
            float tmp[VL];                                                                         \
            int64_t len = n - i < VL ? n - i : VL;                                                 \
            if (len == VL) SDIFF__VLD(v, x + i);                                                   \
            else { memset(tmp, 0, sizeof tmp); memcpy(tmp, x + i, (size_t)len * 4); SDIFF__VLD(v, tmp); } \
            if (act == SDIFF__ACT_GELU) {                                                          \
                SDIFF__VGELU(V, VI, r, v);                                                         \
            } else if (act == SDIFF__ACT_SILU || act == SDIFF__ACT_QUICK_GELU) {                   \
                V e;                                                                               \
                SDIFF__VEXP(V, VI, e, v * (act == SDIFF__ACT_SILU ? -1.0f : -1.702f));             \
                r = v / (1.0f + e);                                                                \
            } else {                                                                               \
                r = v;                                                                             \
            }                                                                                      \
            if (mul) {                                                                             \
                if (len == VL) SDIFF__VLD(mv, mul + i);                                            \
                else { memset(tmp, 0, sizeof tmp); memcpy(tmp, mul + i, (size_t)len * 4); SDIFF__VLD(mv, tmp); } \
                r *= mv;                                                                           \
            }                                                                                      \
            if (len == VL) SDIFF__VST(y + i, r);                                                   \
            else { SDIFF__VST(tmp, r); memcpy(y + i, tmp, (size_t)len * 4); }                      \
        }                                                                                          \
    }

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#  define SDIFF__CPU_X86 1
SDIFF__CPU_ISA_DEFINE(avx512, __attribute__((target("avx512f"))), sdiff__v16f, sdiff__v16i, 16, 12, 2)
SDIFF__CPU_ISA_DEFINE(avx2, __attribute__((target("avx2,fma"))), sdiff__v8f, sdiff__v8i, 8, 6, 2)
#endif
SDIFF__CPU_ISA_DEFINE(generic, , sdiff__v4f, sdiff__v4i, 4, 6, 2)

typedef struct sdiff__gemm_isa {
    const char *name;
    int mr, nr;
    void (*kernel)(int64_t kc, const float *ap, int64_t lda, const float *bp, int64_t ldb, float *c, int64_t ldc,
                   int accum);
    void (*dot)(int64_t k, const float *a, int64_t lda, int m, const float *b, float *out);
    void (*softmax)(float *s, int64_t lds, int64_t rows, int64_t cols, float scale, float *m, float *l, float *alpha);
    void (*act)(float *y, const float *x, int64_t n, sdiff__act act, const float *mul);
} sdiff__gemm_isa;

/* Best first. */
static const sdiff__gemm_isa sdiff__gemm_isas[] = {
#ifdef SDIFF__CPU_X86
    {"avx512", 12, 32, sdiff__gemm_kernel_avx512, sdiff__gemm_dot_avx512, sdiff__cpu_softmax_avx512,
     sdiff__cpu_act_avx512},
    {"avx2", 6, 16, sdiff__gemm_kernel_avx2, sdiff__gemm_dot_avx2, sdiff__cpu_softmax_avx2, sdiff__cpu_act_avx2},
#endif
    {"generic", 6, 8, sdiff__gemm_kernel_generic, sdiff__gemm_dot_generic, sdiff__cpu_softmax_generic,
     sdiff__cpu_act_generic},
};
#define SDIFF__GEMM_N_ISAS ((int)(sizeof sdiff__gemm_isas / sizeof sdiff__gemm_isas[0]))

SDIFF__PRIVATE bool sdiff__gemm_isa_supported(const sdiff__gemm_isa *isa) {
#ifdef SDIFF__CPU_X86
    __builtin_cpu_init();
    if (!strcmp(isa->name, "avx512")) return __builtin_cpu_supports("avx512f");
    if (!strcmp(isa->name, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return !strcmp(isa->name, "generic");
}

/* --- the backend object ------------------------------------------------- */
#define SDIFF__GEMM_KC 256
#define SDIFF__GEMM_MC 96      /* multiple of every MR (12, 6)                */
#define SDIFF__GEMM_NC 320     /* multiple of every NR (32, 16, 8)            */
#define SDIFF__ATTN_QB 96      /* queries per attention task (MR, NR multiple) */

typedef struct sdiff__cpu {
    sdiff__backend be;           /* first, so a backend pointer is a cpu one  */
    sdiff__pool *pool;           /* NULL: run on the calling thread           */
    int n_threads;
    const sdiff__gemm_isa *isa;
    float *ws;                   /* shared workspace: packed B, packed K/V    */
    size_t ws_floats;
    float *scratch;              /* n_threads per-thread slices               */
    size_t scratch_floats;       /* per thread, a multiple of 16 (64 bytes)   */
} sdiff__cpu;

SDIFF__PRIVATE void *sdiff__cpu_alloc_aligned(size_t bytes) {
    if (bytes > SIZE_MAX - 64) return NULL;
    unsigned char *raw = (unsigned char *)sdiff__malloc(bytes + 64);
    if (!raw) return NULL;
    size_t off = 64 - ((uintptr_t)raw & 63);   /* 1..64: room for the offset byte */
    unsigned char *p = raw + off;
    p[-1] = (unsigned char)off;
    return p;
}
SDIFF__PRIVATE void sdiff__cpu_free_aligned(void *ptr) {
    if (!ptr) return;
    unsigned char *p = (unsigned char *)ptr;
    sdiff__free(p - p[-1]);
}

/* Grows the shared workspace to n floats; false (and the backend failed) on OOM. */
SDIFF__PRIVATE bool sdiff__cpu_reserve_ws(sdiff__cpu *cb, size_t n, const char *op) {
    if (n <= cb->ws_floats) return true;
    float *p = n < SIZE_MAX / 4 ? (float *)sdiff__cpu_alloc_aligned(n * 4) : NULL;
    if (!p) {
        sdiff__be_fail(&cb->be, SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory for a %zu-byte workspace", op, n * 4);
        return false;
    }
    sdiff__cpu_free_aligned(cb->ws);
    cb->ws = p;
    cb->ws_floats = n;
    return true;
}
/* Grows every thread's scratch slice to n floats. */
SDIFF__PRIVATE bool sdiff__cpu_reserve_scratch(sdiff__cpu *cb, size_t n, const char *op) {
    n = (n + 15) & ~(size_t)15;
    if (n <= cb->scratch_floats) return true;
    float *p = n < SIZE_MAX / 4 / (size_t)cb->n_threads ? (float *)sdiff__cpu_alloc_aligned(n * 4 * (size_t)cb->n_threads)
                                                        : NULL;
    if (!p) {
        sdiff__be_fail(&cb->be, SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory for %d x %zu bytes of scratch", op,
                       cb->n_threads, n * 4);
        return false;
    }
    sdiff__cpu_free_aligned(cb->scratch);
    cb->scratch = p;
    cb->scratch_floats = n;
    return true;
}
SDIFF__PRIVATE float *sdiff__cpu_thread_scratch(sdiff__cpu *cb, int thread) {
    return cb->scratch + (size_t)thread * cb->scratch_floats;
}

SDIFF__PRIVATE void sdiff__cpu_run(sdiff__cpu *cb, int64_t n, int64_t grain, sdiff__pool_fn fn, void *arg) {
    if (cb->pool) sdiff__pool_run(cb->pool, n, grain, fn, arg);
    else if (n > 0) fn(arg, 0, n, 0);
}

SDIFF__PRIVATE int64_t sdiff__cpu_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* --- packing ------------------------------------------------------------ */
/* B panel from an [N,K] matrix (weights, attention keys): dst[k][NR] =
   b[n0 + j][k0 + k], zero past n_valid. */
SDIFF__PRIVATE void sdiff__gemm_pack_b_nk(float *dst, int nr, const float *b, int64_t ldb, int64_t n_valid,
                                          int64_t k0, int64_t kc) {
    for (int j = 0; j < nr; j++) {
        if (j < n_valid) {
            const float *src = b + j * ldb + k0;
            for (int64_t k = 0; k < kc; k++) dst[k * nr + j] = src[k];
        } else {
            for (int64_t k = 0; k < kc; k++) dst[k * nr + j] = 0.0f;
        }
    }
}
/* B panel from a [K,N] matrix (attention values): dst[k][NR] = b[k][j]. */
SDIFF__PRIVATE void sdiff__gemm_pack_b_kn(float *dst, int nr, const float *b, int64_t ldb, int64_t n_valid,
                                          int64_t kc) {
    for (int64_t k = 0; k < kc; k++) {
        const float *src = b + k * ldb;
        int j = 0;
        for (; j < n_valid; j++) dst[k * nr + j] = src[j];
        for (; j < nr; j++) dst[k * nr + j] = 0.0f;
    }
}
/* A panels from a dense [M,K] matrix: rows [0, m) of a (already offset to
   the block's first row), columns [k0, k0 + kc). dst holds
   ceil(m / MR) panels of [kc][MR], rows past m zero. */
SDIFF__PRIVATE void sdiff__gemm_pack_a(float *dst, int mr, const float *a, int64_t lda, int64_t m, int64_t k0,
                                       int64_t kc) {
    for (int64_t p = 0; p * mr < m; p++, dst += kc * mr) {
        for (int i = 0; i < mr; i++) {
            int64_t row = p * mr + i;
            if (row < m) {
                const float *src = a + row * lda + k0;
                for (int64_t k = 0; k < kc; k++) dst[k * mr + i] = src[k];
            } else {
                for (int64_t k = 0; k < kc; k++) dst[k * mr + i] = 0.0f;
            }
        }
    }
}

/* The input side of a convolution seen as the A matrix of a GEMM. */
typedef struct sdiff__cpu_conv {
    const float *x;
    int64_t h, w, ci, kh, kw, ho, wo;
    int stride, pad;
} sdiff__cpu_conv;

/* Implicit im2col: A row m is output pixel (b, oy, ox), column k = (ky*KW +
   kx)*Ci + ci is x[b, oy*s - pad + ky, ox*s - pad + kx, ci], zero outside. */
SDIFF__PRIVATE void sdiff__gemm_pack_a_conv(float *dst, int mr, const sdiff__cpu_conv *cv, int64_t m0, int64_t m,
                                            int64_t k0, int64_t kc) {
    for (int64_t p = 0; p * mr < m; p++, dst += kc * mr) {
        for (int i = 0; i < mr; i++) {
            int64_t row = p * mr + i;
            if (row >= m) {
                for (int64_t k = 0; k < kc; k++) dst[k * mr + i] = 0.0f;
                continue;
            }
            int64_t pix = m0 + row, ox = pix % cv->wo, t = pix / cv->wo, oy = t % cv->ho, b = t / cv->ho;
            int64_t k = k0, k1 = k0 + kc;
            while (k < k1) {
                int64_t tap = k / cv->ci, c = k % cv->ci, len = SDIFF__MIN(cv->ci - c, k1 - k);
                int64_t iy = oy * cv->stride - cv->pad + tap / cv->kw, ix = ox * cv->stride - cv->pad + tap % cv->kw;
                float *d = dst + (k - k0) * mr + i;
                if (iy >= 0 && iy < cv->h && ix >= 0 && ix < cv->w) {
                    const float *src = cv->x + ((b * cv->h + iy) * cv->w + ix) * cv->ci + c;
                    for (int64_t l = 0; l < len; l++) d[l * mr] = src[l];
                } else {
                    for (int64_t l = 0; l < len; l++) d[l * mr] = 0.0f;
                }
                k += len;
            }
        }
    }
}

/* --- GEMM driver -------------------------------------------------------- */
typedef struct sdiff__gemm_job {
    sdiff__cpu *cb;
    const sdiff__gemm_isa *isa;
    int64_t m, n, k;
    const float *a;               /* dense A [M,K] (row stride lda) ...        */
    int64_t lda;
    const sdiff__cpu_conv *conv;  /* ... or a convolution's implicit A         */
    const float *b;               /* [N,K], row stride ldb                     */
    int64_t ldb;
    float *c;                     /* [M,N] contiguous                          */
    const float *bias;            /* [N] or NULL                               */
    sdiff__act act;
    const float *res;             /* or NULL; may alias c: output row i reads  */
    int64_t res_rows, ldres;      /* res row i / res_rows, ldres apart         */
    /* blocking */
    int64_t npad, mc, nc, m_blocks, n_blocks, k_chunks;
    int64_t next;                 /* atomic task counter                       */
} sdiff__gemm_job;

/* y[0..n) = act(acc + bias) + res. acc is the caller's scratch and is
   overwritten; res may alias y (a residual added in place). */
SDIFF__PRIVATE void sdiff__gemm_epilogue(const sdiff__gemm_isa *isa, float *y, float *acc, int64_t n,
                                         const float *bias, sdiff__act act, const float *res) {
    if (bias) for (int64_t j = 0; j < n; j++) acc[j] += bias[j];
    if (act != SDIFF__ACT_NONE) isa->act(acc, acc, n, act, NULL);
    if (res) for (int64_t j = 0; j < n; j++) y[j] = acc[j] + res[j];
    else memcpy(y, acc, (size_t)n * 4);
}

SDIFF__PRIVATE void sdiff__gemm_pack_b_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__gemm_job *g = (const sdiff__gemm_job *)arg;
    int nr = g->isa->nr;
    int64_t n_panels = g->npad / nr;
    SDIFF__UNUSED(thread);
    for (int64_t u = begin; u < end; u++) {
        int64_t pc = u / n_panels, p = u % n_panels, k0 = pc * SDIFF__GEMM_KC;
        int64_t kc = SDIFF__MIN(SDIFF__GEMM_KC, g->k - k0);
        float *dst = g->cb->ws + k0 * g->npad + p * kc * nr;
        sdiff__gemm_pack_b_nk(dst, nr, g->b + p * nr * g->ldb, g->ldb, SDIFF__MIN(nr, g->n - p * nr), k0, kc);
    }
}

SDIFF__PRIVATE void sdiff__gemm_task(void *arg, int64_t begin, int64_t end, int thread) {
    sdiff__gemm_job *g = (sdiff__gemm_job *)arg;
    const sdiff__gemm_isa *isa = g->isa;
    int mr = isa->mr, nr = isa->nr;
    int64_t ldcb = g->nc;                                     /* a multiple of nr */
    float *apack = sdiff__cpu_thread_scratch(g->cb, thread);
    float *cbuf = apack + SDIFF__GEMM_MC * SDIFF__GEMM_KC;
    int64_t n_tasks = g->m_blocks * g->n_blocks;
    SDIFF__UNUSED(begin); SDIFF__UNUSED(end);
    for (;;) {
        int64_t t = __atomic_fetch_add(&g->next, 1, __ATOMIC_RELAXED);
        if (t >= n_tasks) break;
        int64_t m0 = t / g->n_blocks * g->mc, n0 = t % g->n_blocks * g->nc;
        int64_t ml = SDIFF__MIN(g->mc, g->m - m0), nl = SDIFF__MIN(g->nc, g->n - n0);
        int64_t mp = (ml + mr - 1) / mr, np = (nl + nr - 1) / nr;
        for (int64_t pc = 0; pc < g->k_chunks; pc++) {
            int64_t k0 = pc * SDIFF__GEMM_KC, kc = SDIFF__MIN(SDIFF__GEMM_KC, g->k - k0);
            if (g->conv) sdiff__gemm_pack_a_conv(apack, mr, g->conv, m0, ml, k0, kc);
            else sdiff__gemm_pack_a(apack, mr, g->a + m0 * g->lda, g->lda, ml, k0, kc);
            const float *bpc = g->cb->ws + k0 * g->npad + (n0 / nr) * kc * nr;
            for (int64_t ip = 0; ip < mp; ip++)
                for (int64_t jp = 0; jp < np; jp++)
                    isa->kernel(kc, apack + ip * kc * mr, mr, bpc + jp * kc * nr, nr, cbuf + ip * mr * ldcb + jp * nr,
                                ldcb, pc > 0);
        }
        for (int64_t i = 0; i < ml; i++) {
            int64_t row = (m0 + i) * g->n + n0;
            sdiff__gemm_epilogue(isa, g->c + row, cbuf + i * ldcb, nl, g->bias ? g->bias + n0 : NULL, g->act,
                                 g->res ? g->res + (m0 + i) / g->res_rows * g->ldres + n0 : NULL);
        }
    }
}

SDIFF__PRIVATE void sdiff__gemm_dot_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__gemm_job *g = (const sdiff__gemm_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t j = begin; j < end; j++) {
        float acc[4];
        g->isa->dot(g->k, g->a, g->lda, (int)g->m, g->b + j * g->ldb, acc);
        for (int64_t i = 0; i < g->m; i++) {
            int64_t o = i * g->n + j;
            sdiff__gemm_epilogue(g->isa, g->c + o, &acc[i], 1, g->bias ? g->bias + j : NULL, g->act,
                                 g->res ? g->res + i / g->res_rows * g->ldres + j : NULL);
        }
    }
}

SDIFF__PRIVATE void sdiff__gemm_all(void *arg, int64_t begin, int64_t end, int thread) {
    SDIFF__UNUSED(begin); SDIFF__UNUSED(end);
    sdiff__gemm_task(arg, 0, 0, thread);
}

/* Runs a GEMM described by g (m, n, k, a/conv, b, c, epilogue filled in). */
SDIFF__PRIVATE void sdiff__gemm_run(sdiff__gemm_job *g, const char *op) {
    sdiff__cpu *cb = g->cb;
    const sdiff__gemm_isa *isa = cb->isa;
    g->isa = isa;
    if (!g->conv && g->m <= 4) {
        /* GEMV-like: memory bound on B, so read B once, unpacked. */
        sdiff__cpu_run(cb, g->n, 16, sdiff__gemm_dot_task, g);
        return;
    }
    int mr = isa->mr, nr = isa->nr;
    g->npad = sdiff__cpu_round_up(g->n, nr);
    g->k_chunks = (g->k + SDIFF__GEMM_KC - 1) / SDIFF__GEMM_KC;
    if (!sdiff__cpu_reserve_ws(cb, (size_t)(g->k * g->npad), op)) return;
    if (!sdiff__cpu_reserve_scratch(cb, SDIFF__GEMM_MC * SDIFF__GEMM_KC + SDIFF__GEMM_MC * SDIFF__GEMM_NC, op)) return;
    /* Enough tasks to keep every thread busy: shrink the N block first (B
       panels are shared anyway), then the M block. */
    int64_t want = cb->n_threads > 1 ? 3 * (int64_t)cb->n_threads : 1;
    g->mc = SDIFF__GEMM_MC;
    g->nc = SDIFF__MIN((int64_t)SDIFF__GEMM_NC, g->npad);
    for (;;) {
        g->m_blocks = (g->m + g->mc - 1) / g->mc;
        g->n_blocks = (g->n + g->nc - 1) / g->nc;
        if (g->m_blocks * g->n_blocks >= want) break;
        if (g->nc > 2 * nr) g->nc = sdiff__cpu_round_up(g->nc / 2, nr);
        else if (g->mc > 2 * mr) g->mc = sdiff__cpu_round_up(g->mc / 2, mr);
        else break;
    }
    g->next = 0;
    sdiff__cpu_run(cb, g->k_chunks * (g->npad / nr), 4, sdiff__gemm_pack_b_task, g);
    sdiff__cpu_run(cb, cb->n_threads, 1, sdiff__gemm_all, g);
}

#define SDIFF__CPU(be) ((sdiff__cpu *)(be))

/* --- memory ops --------------------------------------------------------- */
SDIFF__PRIVATE void *sdiff__cpu_alloc(sdiff__backend *be, size_t bytes) {
    SDIFF__UNUSED(be);
    return sdiff__cpu_alloc_aligned(bytes);
}
SDIFF__PRIVATE void sdiff__cpu_free(sdiff__backend *be, void *ptr) {
    SDIFF__UNUSED(be);
    sdiff__cpu_free_aligned(ptr);
}

typedef struct sdiff__cpu_copy_job {
    float *dst;
    const void *src;
    sdiff__dtype dt;
} sdiff__cpu_copy_job;

SDIFF__PRIVATE void sdiff__cpu_upload_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__cpu_copy_job *j = (const sdiff__cpu_copy_job *)arg;
    SDIFF__UNUSED(thread);
    sdiff__to_f32(j->dst + begin, (const unsigned char *)j->src + begin * (int64_t)sdiff__dtype_size(j->dt), j->dt,
                  (size_t)(end - begin));
}
SDIFF__PRIVATE void sdiff__cpu_upload(sdiff__backend *be, sdiff__tensor *t, const void *src, sdiff__dtype src_dt) {
    if (be->status != SDIFF_OK || !sdiff__check_transfer(be, "upload", t, src, "source", SDIFF__F32)) return;
    sdiff__cpu_copy_job j = {(float *)t->data, src, src_dt};
    sdiff__cpu_run(SDIFF__CPU(be), sdiff__numel(t), 1 << 16, sdiff__cpu_upload_task, &j);
}
/* upload_conv: one output channel per step, its [Ci, KH*KW] block converted
   into a per-step buffer, then scattered to [KH*KW, Ci]. */
typedef struct sdiff__cpu_conv_job {
    float *dst;
    const unsigned char *src;
    sdiff__dtype dt;
    int64_t ci, kk;
    bool failed;
} sdiff__cpu_conv_job;
SDIFF__PRIVATE void sdiff__cpu_upload_conv_task(void *arg, int64_t begin, int64_t end, int thread) {
    sdiff__cpu_conv_job *j = (sdiff__cpu_conv_job *)arg;
    SDIFF__UNUSED(thread);
    const int64_t n = j->ci * j->kk;
    float *tmp = (float *)sdiff__malloc((size_t)n * sizeof(float));
    if (!tmp) { j->failed = true; return; }
    for (int64_t o = begin; o < end; o++) {
        sdiff__to_f32(tmp, j->src + (size_t)(o * n) * sdiff__dtype_size(j->dt), j->dt, (size_t)n);
        float *d = j->dst + o * n;
        for (int64_t i = 0; i < j->ci; i++)
            for (int64_t k = 0; k < j->kk; k++) d[k * j->ci + i] = tmp[i * j->kk + k];
    }
    sdiff__free(tmp);
}
SDIFF__PRIVATE void sdiff__cpu_upload_conv(sdiff__backend *be, sdiff__tensor *t, const void *src, sdiff__dtype src_dt) {
    if (be->status != SDIFF_OK || !sdiff__check_upload_conv(be, t, src, SDIFF__F32)) return;
    sdiff__cpu_conv_job j = {(float *)t->data, (const unsigned char *)src, src_dt, t->ne[3], t->ne[1] * t->ne[2], false};
    sdiff__cpu_run(SDIFF__CPU(be), t->ne[0], 1, sdiff__cpu_upload_conv_task, &j);
    if (j.failed) sdiff__be_fail(be, SDIFF_ERR_OUT_OF_MEMORY, "upload_conv: out of host memory");
}
SDIFF__PRIVATE void sdiff__cpu_download(sdiff__backend *be, const sdiff__tensor *t, float *dst) {
    if (be->status != SDIFF_OK || !sdiff__check_transfer(be, "download", t, dst, "destination", SDIFF__F32)) return;
    memcpy(dst, t->data, (size_t)sdiff__numel(t) * 4);
}
SDIFF__PRIVATE void sdiff__cpu_download_image(sdiff__backend *be, const sdiff__tensor *t, uint8_t *dst) {
    if (be->status != SDIFF_OK || !sdiff__check_transfer(be, "download_image", t, dst, "destination", SDIFF__F32))
        return;
    const float *x = (const float *)t->data;
    for (int64_t i = 0, n = sdiff__numel(t); i < n; i++) dst[i] = sdiff__image_byte(x[i]);
}

/* --- conv2d --------------------------------------------------------------- */
SDIFF__PRIVATE void sdiff__cpu_conv2d(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                      const sdiff__tensor *w, const sdiff__tensor *bias, int stride, int pad,
                                      const sdiff__tensor *residual) {
    const char *op = "conv2d";
    if (be->status != SDIFF_OK ||
        !sdiff__check_conv2d(be, y, x, w, bias, stride, pad, residual, SDIFF__F32, SDIFF__F32))
        return;
    int64_t bn = x->ne[0], h = x->ne[1], wd = x->ne[2], ci = x->ne[3];
    int64_t co = w->ne[0], kh = w->ne[1], kw = w->ne[2], ho = y->ne[1], wo = y->ne[2];
    sdiff__cpu_conv cv = {(const float *)x->data, h, wd, ci, kh, kw, ho, wo, stride, pad};
    sdiff__gemm_job g;
    memset(&g, 0, sizeof g);
    g.cb = SDIFF__CPU(be);
    g.m = bn * ho * wo; g.n = co; g.k = kh * kw * ci;
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0 && ho == h && wo == wd) {
        g.a = (const float *)x->data;   /* a 1x1 convolution is a plain GEMM */
        g.lda = ci;
    } else {
        g.conv = &cv;
    }
    g.b = (const float *)w->data; g.ldb = g.k;
    g.c = (float *)y->data;
    g.bias = bias ? (const float *)bias->data : NULL;
    g.act = SDIFF__ACT_NONE;
    g.res = residual ? (const float *)residual->data : NULL;
    const bool per_image = sdiff__residual_per_image(residual, y);
    g.res_rows = per_image ? ho * wo : 1;
    g.ldres = per_image ? residual->row_stride : co;
    sdiff__gemm_run(&g, op);
}

/* --- attention ----------------------------------------------------------
   Scores are computed transposed, S^T[key][query] = K . Q^T, with keys as
   the kernel's M side and queries as its N side. Then the softmax runs
   along S^T's rows with queries in the vector lanes (no horizontal sums),
   and O^T[d][query] += V^T . P^T takes P^T straight from S^T as the
   kernel's B operand (ldb = the tile's row length): nothing is transposed
   or repacked per key block. Head dims pad to MR (12), not NR (32), which
   matters for D = 40. */
typedef struct sdiff__attn_job {
    sdiff__cpu *cb;
    const sdiff__gemm_isa *isa;
    float *o;
    const float *q, *k, *v;
    int64_t ldq, ldk, ldv;
    int64_t b, h, lq, lk, d, qb, kb, n_kb, n_qb;
    size_t kblock_floats, vblock_floats;   /* packed K / V per (b, h, key block) */
    float *kpack, *vpack;
    bool causal;
    int64_t next;
} sdiff__attn_job;

/* Packs (b, h, key block): keys as A panels ([D][MR] per MR keys) and
   values as A panels of V^T ([keys][MR] per MR head dims). */
SDIFF__PRIVATE void sdiff__attn_pack_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__attn_job *j = (const sdiff__attn_job *)arg;
    int mr = j->isa->mr;
    SDIFF__UNUSED(thread);
    for (int64_t u = begin; u < end; u++) {
        int64_t bh = u / j->n_kb, kbi = u % j->n_kb, bi = bh / j->h, hi = bh % j->h;
        int64_t k0 = kbi * j->kb, kl = SDIFF__MIN(j->kb, j->lk - k0);
        const float *ks = j->k + (bi * j->lk + k0) * j->ldk + hi * j->d;
        const float *vs = j->v + (bi * j->lk + k0) * j->ldv + hi * j->d;
        float *kp = j->kpack + (size_t)u * j->kblock_floats, *vp = j->vpack + (size_t)u * j->vblock_floats;
        sdiff__gemm_pack_a(kp, mr, ks, j->ldk, kl, 0, j->d);
        for (int64_t p = 0; p * mr < j->d; p++)
            sdiff__gemm_pack_b_kn(vp + p * mr * kl, mr, vs + p * mr, j->ldv, SDIFF__MIN(mr, j->d - p * mr), kl);
    }
}

SDIFF__PRIVATE void sdiff__attn_task(void *arg, int64_t begin, int64_t end, int thread) {
    sdiff__attn_job *j = (sdiff__attn_job *)arg;
    const sdiff__gemm_isa *isa = j->isa;
    int mr = isa->mr, nr = isa->nr;
    const int64_t qb = j->qb, d = j->d, dm = sdiff__cpu_round_up(d, mr), kbm = sdiff__cpu_round_up(j->kb, mr);
    float *qp = sdiff__cpu_thread_scratch(j->cb, thread);      /* [qb/NR][D][NR]     */
    float *st = qp + qb * d;                                    /* S^T [kbm][qb]      */
    float *ot = st + kbm * qb;                                  /* O^T [dm][qb]       */
    float *mx = ot + dm * qb, *sum = mx + qb, *alpha = sum + qb;
    int64_t n_tasks = j->b * j->h * j->n_qb;
    const float scale = 1.0f / sqrtf((float)d);
    SDIFF__UNUSED(begin); SDIFF__UNUSED(end);
    for (;;) {
        int64_t t = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (t >= n_tasks) break;
        int64_t bh = t / j->n_qb, bi = bh / j->h, hi = bh % j->h;
        int64_t q0 = t % j->n_qb * qb, ql = SDIFF__MIN(qb, j->lq - q0), np = (ql + nr - 1) / nr, cols = np * nr;
        const float *qs = j->q + (bi * j->lq + q0) * j->ldq + hi * d;
        for (int64_t p = 0; p < np; p++)
            sdiff__gemm_pack_b_nk(qp + p * d * nr, nr, qs + p * nr * j->ldq, j->ldq, SDIFF__MIN(nr, ql - p * nr), 0, d);
        memset(ot, 0, (size_t)(dm * qb) * 4);
        for (int64_t c = 0; c < cols; c++) { mx[c] = -INFINITY; sum[c] = 0.0f; }
        int64_t kend = j->causal ? SDIFF__MIN(j->lk, q0 + ql) : j->lk;
        for (int64_t kbi = 0; kbi * j->kb < kend; kbi++) {
            int64_t k0 = kbi * j->kb, kl = SDIFF__MIN(j->kb, kend - k0);
            const float *kp = j->kpack + (size_t)(bh * j->n_kb + kbi) * j->kblock_floats;
            const float *vp = j->vpack + (size_t)(bh * j->n_kb + kbi) * j->vblock_floats;
            int64_t kblen = SDIFF__MIN(j->kb, j->lk - k0);   /* the packed block's length */
            for (int64_t ip = 0; ip * mr < kl; ip++)
                for (int64_t jp = 0; jp < np; jp++)
                    isa->kernel(d, kp + ip * d * mr, mr, qp + jp * d * nr, nr, st + ip * mr * qb + jp * nr, qb, 0);
            if (j->causal && k0 + kl - 1 > q0)   /* key k0+r is hidden from query q0+c when k0+r > q0+c */
                for (int64_t r = 0; r < kl; r++)
                    for (int64_t c = 0; c < SDIFF__MIN(cols, k0 + r - q0); c++) st[r * qb + c] = -INFINITY;
            isa->softmax(st, qb, kl, cols, scale, mx, sum, alpha);
            for (int64_t r = 0; r < d; r++) {
                float *orow = ot + r * qb;
                for (int64_t c = 0; c < cols; c++) orow[c] *= alpha[c];
            }
            for (int64_t ip = 0; ip * mr < d; ip++)
                for (int64_t jp = 0; jp < np; jp++)
                    isa->kernel(kl, vp + ip * mr * kblen, mr, st + jp * nr, qb, ot + ip * mr * qb + jp * nr, qb, 1);
        }
        for (int64_t c = 0; c < ql; c++) {
            float inv = 1.0f / sum[c], *dst = j->o + (bi * j->lq + q0 + c) * j->h * d + hi * d;
            for (int64_t r = 0; r < d; r++) dst[r] = ot[r * qb + c] * inv;
        }
    }
}

SDIFF__PRIVATE void sdiff__attn_all(void *arg, int64_t begin, int64_t end, int thread) {
    SDIFF__UNUSED(begin); SDIFF__UNUSED(end);
    sdiff__attn_task(arg, 0, 0, thread);
}

SDIFF__PRIVATE void sdiff__cpu_attention(sdiff__backend *be, sdiff__tensor *o, const sdiff__tensor *q,
                                         const sdiff__tensor *k, const sdiff__tensor *v, int heads, bool causal) {
    const char *op = "attention";
    if (be->status != SDIFF_OK || !sdiff__check_attention(be, o, q, k, v, heads, SDIFF__F32)) return;
    sdiff__cpu *cb = SDIFF__CPU(be);
    sdiff__attn_job j;
    memset(&j, 0, sizeof j);
    j.cb = cb;
    j.isa = cb->isa;
    int mr = j.isa->mr;
    j.o = (float *)o->data;
    j.q = (const float *)q->data; j.k = (const float *)k->data; j.v = (const float *)v->data;
    j.ldq = q->row_stride; j.ldk = k->row_stride; j.ldv = v->row_stride;
    j.b = q->ne[0]; j.lq = q->ne[1]; j.lk = k->ne[1]; j.h = heads; j.d = q->ne[2] / heads;
    j.causal = causal;
    /* 96 queries per task (a multiple of every MR and NR), fewer when the
       sequence is short. Key block: up to 504 keys (MR multiple), fewer for
       wide heads, so a packed key block (kb x D, <= 256 KB) and the score tile stay in
       L2. */
    j.qb = SDIFF__MIN((int64_t)SDIFF__ATTN_QB, sdiff__cpu_round_up(j.lq, j.isa->nr));
    j.kb = SDIFF__MAX((int64_t)mr, SDIFF__MIN(512, 65536 / j.d) / mr * mr);
    j.kb = SDIFF__MIN(j.kb, sdiff__cpu_round_up(j.lk, mr));
    j.n_kb = (j.lk + j.kb - 1) / j.kb;
    j.n_qb = (j.lq + j.qb - 1) / j.qb;
    int64_t dm = sdiff__cpu_round_up(j.d, mr);
    j.kblock_floats = (size_t)(j.kb * j.d);
    j.vblock_floats = (size_t)(j.kb * dm);
    size_t units = (size_t)(j.b * j.h * j.n_kb);
    if (!sdiff__cpu_reserve_ws(cb, units * (j.kblock_floats + j.vblock_floats), op)) return;
    size_t per_thread = (size_t)(j.qb * (j.d + j.kb + dm + 3));
    if (!sdiff__cpu_reserve_scratch(cb, per_thread, op)) return;
    j.kpack = cb->ws;
    j.vpack = cb->ws + units * j.kblock_floats;
    sdiff__cpu_run(cb, (int64_t)units, 1, sdiff__attn_pack_task, &j);
    sdiff__cpu_run(cb, cb->n_threads, 1, sdiff__attn_all, &j);
}

/* --- normalisation ------------------------------------------------------ */
typedef struct sdiff__norm_job {
    const float *x;
    float *y;
    const float *gamma, *beta;
    int64_t rows, c, p, groups, n_chunks;
    float eps;
    bool silu;
    double *part;        /* group_norm: [B * n_chunks][groups][2] partial sums */
    float *coef;         /* group_norm: [B][C][2] scale, shift                 */
    sdiff__cpu *cb;
} sdiff__norm_job;

/* Partial per-group sums of one (batch item, position chunk) in double. */
SDIFF__PRIVATE void sdiff__gn_stats_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__norm_job *j = (const sdiff__norm_job *)arg;
    double *acc = (double *)(void *)sdiff__cpu_thread_scratch(j->cb, thread);   /* [C][2] */
    int64_t c = j->c, cg = c / j->groups;
    for (int64_t u = begin; u < end; u++) {
        int64_t b = u / j->n_chunks, ch = u % j->n_chunks;
        int64_t p0 = j->p * ch / j->n_chunks, p1 = j->p * (ch + 1) / j->n_chunks;
        double *s = acc, *s2 = acc + c;
        for (int64_t i = 0; i < c; i++) { s[i] = 0; s2[i] = 0; }
        for (int64_t p = p0; p < p1; p++) {
            const float *row = j->x + (b * j->p + p) * c;
            for (int64_t i = 0; i < c; i++) { double v = row[i]; s[i] += v; s2[i] += v * v; }
        }
        double *out = j->part + u * j->groups * 2;
        for (int64_t g = 0; g < j->groups; g++) {
            double a = 0, a2 = 0;
            for (int64_t i = g * cg; i < (g + 1) * cg; i++) { a += s[i]; a2 += s2[i]; }
            out[2 * g] = a; out[2 * g + 1] = a2;
        }
    }
}

/* y = x * scale[c] + shift[c] (+ SiLU), over rows of the [B*P, C] view. */
SDIFF__PRIVATE void sdiff__gn_apply_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__norm_job *j = (const sdiff__norm_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {
        const float *coef = j->coef + r / j->p * j->c * 2, *x = j->x + r * j->c;
        float *y = j->y + r * j->c;
        for (int64_t i = 0; i < j->c; i++) y[i] = x[i] * coef[2 * i] + coef[2 * i + 1];
        if (j->silu) j->cb->isa->act(y, y, j->c, SDIFF__ACT_SILU, NULL);
    }
}

SDIFF__PRIVATE void sdiff__cpu_group_norm(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                          const sdiff__tensor *gamma, const sdiff__tensor *beta, int groups, float eps,
                                          bool silu) {
    const char *op = "group_norm";
    if (be->status != SDIFF_OK || !sdiff__check_group_norm(be, y, x, gamma, beta, groups, SDIFF__F32, SDIFF__F32))
        return;
    int64_t bn = x->ne[0], c = sdiff__cols(x), p = sdiff__numel(x) / (bn * c);
    sdiff__cpu *cb = SDIFF__CPU(be);
    sdiff__norm_job j;
    memset(&j, 0, sizeof j);
    j.cb = cb;
    j.x = (const float *)x->data; j.y = (float *)y->data;
    j.c = c; j.p = p; j.groups = groups; j.eps = eps; j.silu = silu;
    j.n_chunks = SDIFF__MAX(1, SDIFF__MIN(p, 2 * (int64_t)cb->n_threads));
    int64_t units = bn * j.n_chunks;
    if (!sdiff__cpu_reserve_scratch(cb, (size_t)(4 * c), op)) return;   /* [C][2] doubles */
    size_t part_bytes = (size_t)(units * groups * 2) * sizeof(double), coef_bytes = (size_t)(bn * c * 2) * 4;
    void *mem = sdiff__malloc(part_bytes + coef_bytes);
    if (!mem) { sdiff__be_fail(be, SDIFF_ERR_OUT_OF_MEMORY, "group_norm: out of memory"); return; }
    j.part = (double *)mem;
    j.coef = (float *)(void *)((char *)mem + part_bytes);
    sdiff__cpu_run(cb, units, 1, sdiff__gn_stats_task, &j);
    const float *gm = gamma ? (const float *)gamma->data : NULL, *bt = beta ? (const float *)beta->data : NULL;
    int64_t cg = c / groups;
    double n = (double)(p * cg);
    for (int64_t b = 0; b < bn; b++)
        for (int64_t g = 0; g < groups; g++) {
            double s = 0, s2 = 0;
            for (int64_t ch = 0; ch < j.n_chunks; ch++) {
                const double *pt = j.part + ((b * j.n_chunks + ch) * groups + g) * 2;
                s += pt[0]; s2 += pt[1];
            }
            double mean = s / n, var = SDIFF__MAX(s2 / n - mean * mean, 0.0), rstd = 1.0 / sqrt(var + (double)eps);
            for (int64_t i = g * cg; i < (g + 1) * cg; i++) {
                double sc = rstd * (gm ? gm[i] : 1.0f);
                j.coef[(b * c + i) * 2] = (float)sc;
                j.coef[(b * c + i) * 2 + 1] = (float)((bt ? bt[i] : 0.0f) - mean * sc);
            }
        }
    sdiff__cpu_run(cb, bn * p, SDIFF__MAX(1, 16384 / c), sdiff__gn_apply_task, &j);
    sdiff__free(mem);
}

SDIFF__PRIVATE void sdiff__ln_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__norm_job *j = (const sdiff__norm_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->c;
        float *y = j->y + r * j->c;
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < j->c; i++) s += x[i];
        double mean = s / (double)j->c;
        for (int64_t i = 0; i < j->c; i++) { double d = x[i] - mean; s2 += d * d; }
        float rstd = (float)(1.0 / sqrt(s2 / (double)j->c + (double)j->eps)), mf = (float)mean;
        for (int64_t i = 0; i < j->c; i++) {
            float v = (x[i] - mf) * rstd;
            y[i] = v * (j->gamma ? j->gamma[i] : 1.0f) + (j->beta ? j->beta[i] : 0.0f);
        }
    }
}

SDIFF__PRIVATE void sdiff__cpu_layer_norm(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                          const sdiff__tensor *gamma, const sdiff__tensor *beta, float eps) {
    if (be->status != SDIFF_OK || !sdiff__check_layer_norm(be, y, x, gamma, beta, SDIFF__F32, SDIFF__F32)) return;
    int64_t c = sdiff__cols(x);
    sdiff__norm_job j;
    memset(&j, 0, sizeof j);
    j.x = (const float *)x->data; j.y = (float *)y->data;
    j.gamma = gamma ? (const float *)gamma->data : NULL;
    j.beta = beta ? (const float *)beta->data : NULL;
    j.c = c; j.rows = sdiff__rows(x); j.eps = eps;
    sdiff__cpu_run(SDIFF__CPU(be), j.rows, SDIFF__MAX(1, 8192 / c), sdiff__ln_task, &j);
}

/* --- elementwise -------------------------------------------------------- */
typedef struct sdiff__ew_job {
    float *y;
    const float *a, *b;
    int64_t c, cb, rows_per_b;   /* column counts; add: rows per batch item      */
    int64_t ldb;                 /* add: b's row stride (mode 2)                 */
    int mode;                    /* add: 0 full, 1 [C], 2 [B, C]                */
    sdiff__act act;
    const sdiff__gemm_isa *isa;
} sdiff__ew_job;

/* GEGLU's second half, per row r: y[r] = h * gelu(g) (+ res[r]) of t's row r = [h | g] (2c wide;
   h is overwritten with the product first, so res may alias y). a = t, b = res. */
SDIFF__PRIVATE void sdiff__cpu_geglu_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__ew_job *j = (const sdiff__ew_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {
        float *h = (float *)j->a + r * 2 * j->c, *y = j->y + r * j->c;
        const float *res = j->b ? j->b + r * j->c : NULL;
        j->isa->act(h, h + j->c, j->c, SDIFF__ACT_GELU, h);
        for (int64_t i = 0; i < j->c; i++) y[i] = h[i] + (res ? res[i] : 0.0f);
    }
}

/* --- linear --------------------------------------------------------------- */
SDIFF__PRIVATE void sdiff__cpu_linear(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                      const sdiff__tensor *w, const sdiff__tensor *bias, sdiff__act act,
                                      const sdiff__tensor *residual) {
    const char *op = "linear";
    if (be->status != SDIFF_OK || !sdiff__check_linear(be, y, x, w, bias, act, residual, SDIFF__F32, SDIFF__F32)) return;
    const int64_t m = sdiff__rows(x), k = sdiff__cols(x), n = w->ne[0];
    const bool geglu = act == SDIFF__ACT_GEGLU;
    /* GEGLU: the layer's 2N outputs into a scratch of their own, then the rows' products into y */
    float *t = geglu ? (float *)sdiff__malloc((size_t)(m * n) * sizeof(float)) : NULL;
    if (geglu && !t) {
        sdiff__be_fail(be, SDIFF_ERR_OUT_OF_MEMORY, "linear: out of host memory for GEGLU's %lld x %lld outputs",
                       (long long)m, (long long)n);
        return;
    }
    sdiff__gemm_job g;
    memset(&g, 0, sizeof g);
    g.cb = SDIFF__CPU(be);
    g.m = m; g.n = n; g.k = k;
    g.a = (const float *)x->data; g.lda = x->row_stride;
    g.b = (const float *)w->data; g.ldb = k;
    g.c = geglu ? t : (float *)y->data;
    g.bias = bias ? (const float *)bias->data : NULL;
    g.act = geglu ? SDIFF__ACT_NONE : act;
    g.res = residual && !geglu ? (const float *)residual->data : NULL;
    g.res_rows = 1;
    g.ldres = n;
    sdiff__gemm_run(&g, op);
    if (geglu) {
        sdiff__ew_job j = {(float *)y->data, t, residual ? (const float *)residual->data : NULL, n / 2, 0, 0, 0, 0,
                           SDIFF__ACT_NONE, SDIFF__CPU(be)->isa};
        if (be->status == SDIFF_OK) sdiff__cpu_run(SDIFF__CPU(be), m, SDIFF__MAX(1, 4096 / n), sdiff__cpu_geglu_task, &j);
        sdiff__free(t);
    }
}

SDIFF__PRIVATE void sdiff__cpu_add_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__ew_job *j = (const sdiff__ew_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {
        const float *a = j->a + r * j->c;
        const float *b = j->mode == 0 ? j->b + r * j->c : j->mode == 1 ? j->b : j->b + r / j->rows_per_b * j->ldb;
        float *y = j->y + r * j->c;
        for (int64_t i = 0; i < j->c; i++) y[i] = a[i] + b[i];
    }
}
SDIFF__PRIVATE void sdiff__cpu_add(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *a,
                                   const sdiff__tensor *b) {
    sdiff__ew_job j = {NULL, NULL, NULL, 0, 0, 1, 0, 0, SDIFF__ACT_NONE, SDIFF__CPU(be)->isa};
    if (be->status != SDIFF_OK || !sdiff__check_add(be, y, a, b, SDIFF__F32, &j.mode, &j.rows_per_b)) return;
    int64_t c = sdiff__cols(a), rows = sdiff__rows(a);
    j.y = (float *)y->data; j.a = (const float *)a->data; j.b = (const float *)b->data; j.c = c;
    j.ldb = b->row_stride;
    sdiff__cpu_run(SDIFF__CPU(be), rows, SDIFF__MAX(1, 16384 / c), sdiff__cpu_add_task, &j);
}

SDIFF__PRIVATE void sdiff__cpu_act_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__ew_job *j = (const sdiff__ew_job *)arg;
    SDIFF__UNUSED(thread);
    j->isa->act(j->y + begin, j->a + begin, end - begin, j->act, NULL);
}
SDIFF__PRIVATE void sdiff__cpu_activate(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, sdiff__act act) {
    if (be->status != SDIFF_OK || !sdiff__check_activate(be, y, x, act, SDIFF__F32)) return;
    sdiff__ew_job j = {(float *)y->data, (const float *)x->data, NULL, 0, 0, 0, 0, 0, act, SDIFF__CPU(be)->isa};
    sdiff__cpu_run(SDIFF__CPU(be), sdiff__numel(x), 8192, sdiff__cpu_act_task, &j);
}

typedef struct sdiff__lincomb_job {
    float *y;
    const float *x[SDIFF__LINCOMB_MAX];
    float c[SDIFF__LINCOMB_MAX], clamp;
    int n;
} sdiff__lincomb_job;
SDIFF__PRIVATE void sdiff__cpu_lincomb_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__lincomb_job *j = (const sdiff__lincomb_job *)arg;
    const float *x[SDIFF__LINCOMB_MAX];
    SDIFF__UNUSED(thread);
    for (int k = 0; k < j->n; k++) x[k] = j->x[k] + begin;
    sdiff__lincomb_f32(j->y + begin, j->n, x, j->c, j->clamp, (size_t)(end - begin));
}
SDIFF__PRIVATE void sdiff__cpu_lincomb(sdiff__backend *be, sdiff__tensor *y, int n, const sdiff__tensor *const *x,
                                       const float *c, float clamp) {
    if (be->status != SDIFF_OK || !sdiff__check_lincomb(be, y, n, x, c, clamp, SDIFF__F32)) return;
    sdiff__lincomb_job j = {(float *)y->data, {NULL}, {0}, clamp, n};
    for (int k = 0; k < n; k++) { j.x[k] = (const float *)x[k]->data; j.c[k] = c[k]; }
    sdiff__cpu_run(SDIFF__CPU(be), sdiff__numel(y), 8192, sdiff__cpu_lincomb_task, &j);
}

/* PyTorch's "nearest" source index: floor(dst * (in / out)) with the scale
   in float, clamped. */
SDIFF__PRIVATE int64_t sdiff__cpu_nearest(int64_t dst, int64_t in, int64_t out) {
    if (out == 2 * in) return dst >> 1;
    int64_t s = (int64_t)floorf((float)dst * ((float)in / (float)out));
    return SDIFF__MIN(s, in - 1);
}
typedef struct sdiff__upsample_job {
    float *y;
    const float *x;
    int64_t h, w, c, ho, wo;
} sdiff__upsample_job;
SDIFF__PRIVATE void sdiff__cpu_upsample_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__upsample_job *j = (const sdiff__upsample_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {                  /* r = b * Ho + oy */
        int64_t b = r / j->ho, iy = sdiff__cpu_nearest(r % j->ho, j->h, j->ho);
        const float *x = j->x + (b * j->h + iy) * j->w * j->c;
        float *y = j->y + r * j->wo * j->c;
        for (int64_t ox = 0; ox < j->wo; ox++)
            memcpy(y + ox * j->c, x + sdiff__cpu_nearest(ox, j->w, j->wo) * j->c, (size_t)j->c * 4);
    }
}
SDIFF__PRIVATE void sdiff__cpu_upsample(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x) {
    if (be->status != SDIFF_OK || !sdiff__check_upsample(be, y, x, SDIFF__F32)) return;
    sdiff__upsample_job j = {(float *)y->data, (const float *)x->data, x->ne[1], x->ne[2], x->ne[3], y->ne[1], y->ne[2]};
    sdiff__cpu_run(SDIFF__CPU(be), y->ne[0] * y->ne[1], 4, sdiff__cpu_upsample_task, &j);
}

SDIFF__PRIVATE void sdiff__cpu_concat_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__ew_job *j = (const sdiff__ew_job *)arg;   /* c = Ca, cb = Cb */
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {
        float *y = j->y + r * (j->c + j->cb);
        memcpy(y, j->a + r * j->c, (size_t)j->c * 4);
        memcpy(y + j->c, j->b + r * j->cb, (size_t)j->cb * 4);
    }
}
SDIFF__PRIVATE void sdiff__cpu_concat(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *a,
                                      const sdiff__tensor *b) {
    if (be->status != SDIFF_OK || !sdiff__check_concat(be, y, a, b, SDIFF__F32)) return;
    sdiff__ew_job j = {(float *)y->data, (const float *)a->data, (const float *)b->data, sdiff__cols(a), sdiff__cols(b),
                       0, 0, 0, SDIFF__ACT_NONE, SDIFF__CPU(be)->isa};
    sdiff__cpu_run(SDIFF__CPU(be), sdiff__rows(y), SDIFF__MAX(1, 8192 / sdiff__cols(y)), sdiff__cpu_concat_task, &j);
}

typedef struct sdiff__embed_job {
    float *y;
    const float *table;
    const int32_t *ids;
    int64_t c;
} sdiff__embed_job;
SDIFF__PRIVATE void sdiff__cpu_embed_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__embed_job *j = (const sdiff__embed_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t i = begin; i < end; i++) memcpy(j->y + i * j->c, j->table + (int64_t)j->ids[i] * j->c, (size_t)j->c * 4);
}
SDIFF__PRIVATE void sdiff__cpu_embed(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *table,
                                     const int32_t *ids, int n) {
    if (be->status != SDIFF_OK || !sdiff__check_embed(be, y, table, ids, n, SDIFF__F32, SDIFF__F32)) return;
    sdiff__embed_job j = {(float *)y->data, (const float *)table->data, ids, table->ne[1]};
    sdiff__cpu_run(SDIFF__CPU(be), n, 64, sdiff__cpu_embed_task, &j);
}

/* --- creation ----------------------------------------------------------- */
SDIFF__PRIVATE void sdiff__cpu_destroy(sdiff__backend *be) {
    if (!be) return;
    sdiff__cpu *cb = SDIFF__CPU(be);
    sdiff__pool_destroy(cb->pool);
    sdiff__cpu_free_aligned(cb->ws);
    sdiff__cpu_free_aligned(cb->scratch);
    sdiff__free(cb);
}

SDIFF__PRIVATE void sdiff__cpu_timestep_embedding(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *t,
                                                  bool flip_sin_to_cos, float freq_shift) {
    if (be->status != SDIFF_OK || !sdiff__check_timestep_embedding(be, y, t, SDIFF__F32)) return;
    sdiff__timestep_features((float *)y->data, (const float *)t->data, (int)y->ne[0], (int)y->ne[1], flip_sin_to_cos,
                             freq_shift);
}

SDIFF__PRIVATE sdiff__backend *sdiff__cpu_backend_create(int n_threads, const sdiff__logger *log) {
    sdiff__cpu *cb = (sdiff__cpu *)sdiff__calloc(1, sizeof *cb);
    if (!cb) return NULL;
    sdiff__backend *be = &cb->be;
    be->name = "cpu";
    be->status = SDIFF_OK;
    be->act_dtype = SDIFF__F32;
    be->weight_dtype = SDIFF__F32;
    be->log = log;
    be->destroy = sdiff__cpu_destroy;
    be->alloc = sdiff__cpu_alloc;
    be->free = sdiff__cpu_free;
    be->upload = sdiff__cpu_upload;
    be->upload_conv = sdiff__cpu_upload_conv;
    be->download = sdiff__cpu_download;
    be->download_image = sdiff__cpu_download_image;
    be->linear = sdiff__cpu_linear;
    be->conv2d = sdiff__cpu_conv2d;
    be->group_norm = sdiff__cpu_group_norm;
    be->layer_norm = sdiff__cpu_layer_norm;
    be->attention = sdiff__cpu_attention;
    be->add = sdiff__cpu_add;
    be->activate = sdiff__cpu_activate;
    be->lincomb = sdiff__cpu_lincomb;
    be->upsample = sdiff__cpu_upsample;
    be->concat = sdiff__cpu_concat;
    be->embed = sdiff__cpu_embed;
    be->timestep_embedding = sdiff__cpu_timestep_embedding;
    for (int i = 0; i < SDIFF__GEMM_N_ISAS && !cb->isa; i++)
        if (sdiff__gemm_isa_supported(&sdiff__gemm_isas[i])) cb->isa = &sdiff__gemm_isas[i];
    cb->pool = sdiff__pool_create(n_threads);
    if (!cb->pool) sdiff__log(log, SDIFF_LOG_WARN, "cpu", "could not start worker threads; running on one thread");
    cb->n_threads = sdiff__pool_threads(cb->pool);
    sdiff__log(log, SDIFF_LOG_INFO, "cpu", "%d threads, %s kernels (%dx%d tiles)", cb->n_threads, cb->isa->name,
               cb->isa->mr, cb->isa->nr);
    return be;
}

/* >>json -------------------------------------------------------------------
   JSON: a small, strict reader for config.json, model_index.json, vocab.json
   and scheduler_config.json.

   Strict RFC 8259, with three things Python's json module writes and so
   diffusers' configs can contain: NaN, Infinity and -Infinity. A leading
   UTF-8 byte order mark is skipped (editors on Windows add one). Everything
   else that is not JSON is an SDIFF_ERR_FORMAT naming the document, the line
   and column (1-based, in bytes) and the problem: truncated documents,
   trailing commas, leading zeros, bad escapes, lone surrogates, invalid
   UTF-8, raw control characters in strings, NUL bytes, numbers that overflow
   a double, nesting deeper than SDIFF__JSON_MAX_DEPTH, trailing garbage.

   The tree: every node is an sdiff__json; arrays and objects own a packed
   array of children (items) and objects a parallel array of keys. Strings are
   decoded UTF-8, NUL-terminated; string_len counts bytes, so a "\u0000" inside
   survives. Duplicate keys are kept; lookups scan from the end, so the last
   one wins, as in Python. Lookups are linear: configs are small, and the one
   big object (vocab.json) is read by iterating, never by lookup.

   The parser recurses once per nesting level, so the depth limit also bounds
   the C stack it uses.
   ------------------------------------------------------------------------- */
typedef enum sdiff__json_type {
    SDIFF__JSON_NULL, SDIFF__JSON_BOOL, SDIFF__JSON_NUMBER, SDIFF__JSON_STRING, SDIFF__JSON_ARRAY, SDIFF__JSON_OBJECT
} sdiff__json_type;

typedef struct sdiff__json sdiff__json;
struct sdiff__json {
    sdiff__json_type type;
    bool boolean;
    double number;
    char *string;        /* decoded UTF-8, NUL-terminated (NULL unless a string) */
    size_t string_len;   /* bytes, not counting the terminator                   */
    size_t count;        /* array elements / object members                      */
    sdiff__json *items;  /* array elements or object values                      */
    char **keys;         /* object keys (decoded, NUL-terminated)                */
};

#define SDIFF__JSON_MAX_DEPTH 128

typedef struct sdiff__json_parser {
    const unsigned char *s, *end, *begin;
    const char *what;
} sdiff__json_parser;

/* Formats "what:line:col: message" for the byte at p. */
SDIFF__PRIVATE sdiff_status sdiff__json_fail(const sdiff__json_parser *ps, const unsigned char *p, const char *msg) {
    size_t line = 1, col = 1;
    for (const unsigned char *q = ps->begin; q < p && q < ps->end; q++) {
        if (*q == '\n') { line++; col = 1; }
        else col++;
    }
    return sdiff__err(SDIFF_ERR_FORMAT, "%s:%zu:%zu: %s", ps->what ? ps->what : "JSON", line, col, msg);
}

SDIFF__PRIVATE void sdiff__json_free_children(sdiff__json *j) {
    if (j->type == SDIFF__JSON_STRING) sdiff__free(j->string);
    if (j->type == SDIFF__JSON_ARRAY || j->type == SDIFF__JSON_OBJECT) {
        for (size_t i = 0; i < j->count; i++) {
            sdiff__json_free_children(&j->items[i]);
            if (j->keys) sdiff__free(j->keys[i]);
        }
        sdiff__free(j->items);
        sdiff__free(j->keys);
    }
    memset(j, 0, sizeof *j);
}

SDIFF__PRIVATE void sdiff__json_free(sdiff__json *j) {
    if (!j) return;
    sdiff__json_free_children(j);
    sdiff__free(j);
}

SDIFF__PRIVATE void sdiff__json_skip_ws(sdiff__json_parser *ps) {
    while (ps->s < ps->end && (*ps->s == ' ' || *ps->s == '\t' || *ps->s == '\n' || *ps->s == '\r')) ps->s++;
}

/* Length of the well-formed UTF-8 sequence at p (1..4), 0 if invalid:
   overlong forms, surrogates (ED A0..BF) and code points above U+10FFFF are
   invalid, as in Python's strict decoder. */
SDIFF__PRIVATE int sdiff__json_utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    int n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (end - p < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

SDIFF__PRIVATE int sdiff__json_hex4(const unsigned char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Parses the string at ps->s (which is at the opening quote) into a new
   NUL-terminated buffer. The decoded text is never longer than the source
   (escapes shrink or keep size: a \u escape is 6 bytes for <= 3 UTF-8 bytes, a
   surrogate pair 12 for 4), so one allocation of the source span suffices. */
SDIFF__PRIVATE sdiff_status sdiff__json_string_at(sdiff__json_parser *ps, char **out, size_t *out_len) {
    const unsigned char *start = ps->s + 1, *p = start;
    /* Find the closing quote first, to size the buffer. */
    while (p < ps->end && *p != '"') {
        if (*p == '\\') { p++; if (p >= ps->end) break; }
        p++;
    }
    if (p >= ps->end) return sdiff__json_fail(ps, ps->s, "unterminated string");
    char *buf = (char *)sdiff__malloc((size_t)(p - start) + 1);
    if (!buf) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", ps->what);
    size_t n = 0;
    const unsigned char *q = start;
    while (q < p) {
        unsigned c = *q;
        if (c == '\\') {
            unsigned e = q[1];
            const char *simple = strchr("\"\\/bfnrt", (int)e);
            if (e && simple) {
                static const char map[] = "\"\\/\b\f\n\r\t";
                buf[n++] = map[simple - "\"\\/bfnrt"];
                q += 2;
                continue;
            }
            if (e != 'u') { sdiff__free(buf); return sdiff__json_fail(ps, q, "invalid escape"); }
            if (p - q < 6) { sdiff__free(buf); return sdiff__json_fail(ps, q, "truncated \\u escape"); }
            int u = sdiff__json_hex4(q + 2);
            if (u < 0) { sdiff__free(buf); return sdiff__json_fail(ps, q, "invalid \\u escape"); }
            uint32_t cp = (uint32_t)u;
            const unsigned char *esc = q;
            q += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) { sdiff__free(buf); return sdiff__json_fail(ps, esc, "lone low surrogate"); }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = (p - q >= 6 && q[0] == '\\' && q[1] == 'u') ? sdiff__json_hex4(q + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) { sdiff__free(buf); return sdiff__json_fail(ps, esc, "lone high surrogate"); }
                cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                q += 6;
            }
            if (cp < 0x80) buf[n++] = (char)cp;
            else if (cp < 0x800) { buf[n++] = (char)(0xC0 | (cp >> 6)); buf[n++] = (char)(0x80 | (cp & 0x3F)); }
            else if (cp < 0x10000) {
                buf[n++] = (char)(0xE0 | (cp >> 12)); buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[n++] = (char)(0x80 | (cp & 0x3F));
            } else {
                buf[n++] = (char)(0xF0 | (cp >> 18)); buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)); buf[n++] = (char)(0x80 | (cp & 0x3F));
            }
            continue;
        }
        if (c < 0x20) { sdiff__free(buf); return sdiff__json_fail(ps, q, "control character in string"); }
        int len = sdiff__json_utf8_len(q, p);
        if (!len) { sdiff__free(buf); return sdiff__json_fail(ps, q, "invalid UTF-8 in string"); }
        memcpy(buf + n, q, (size_t)len);
        n += (size_t)len;
        q += len;
    }
    buf[n] = 0;
    ps->s = p + 1;
    *out = buf;
    *out_len = n;
    return SDIFF_OK;
}

/* Converts a validated JSON number span to a double without depending on the
   C locale: the digits are rewritten as "[-]DIGITSeEXP" with no decimal
   point, which strtod reads the same way in every locale, correctly rounded. */
SDIFF__PRIVATE bool sdiff__json_number_value(const unsigned char *p, const unsigned char *end, double *out) {
    char small[80], *buf = small;
    size_t cap = (size_t)(end - p) + 32;
    if (cap > sizeof small) {
        buf = (char *)sdiff__malloc(cap);
        if (!buf) return false;
    }
    size_t n = 0;
    long long exp_adj = 0, exp = 0;
    bool in_frac = false;
    if (*p == '-') buf[n++] = *p++;
    for (; p < end && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') { in_frac = true; continue; }
        buf[n++] = (char)*p;
        if (in_frac) exp_adj--;
    }
    if (p < end) { /* exponent; saturate: anything past 1e6 over- or underflows anyway */
        p++;
        bool neg = false;
        if (*p == '+' || *p == '-') neg = *p++ == '-';
        for (; p < end; p++) if (exp < 1000000) exp = exp * 10 + (*p - '0');
        if (neg) exp = -exp;
    }
    snprintf(buf + n, cap - n, "e%lld", exp + exp_adj);
    *out = strtod(buf, NULL);
    if (buf != small) sdiff__free(buf);
    return true;
}

SDIFF__PRIVATE sdiff_status sdiff__json_value(sdiff__json_parser *ps, sdiff__json *v, int depth);

/* Appends a zeroed child to a growing children array (doubling). */
SDIFF__PRIVATE sdiff_status sdiff__json_grow(sdiff__json_parser *ps, sdiff__json *v, size_t *cap, bool with_keys) {
    if (v->count < *cap) return SDIFF_OK;
    size_t nc = *cap ? *cap * 2 : 4;
    sdiff__json *items = (sdiff__json *)sdiff__realloc(v->items, nc * sizeof *items);
    if (!items) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", ps->what);
    v->items = items;
    if (with_keys) {
        char **keys = (char **)sdiff__realloc(v->keys, nc * sizeof *keys);
        if (!keys) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", ps->what);
        v->keys = keys;
    }
    *cap = nc;
    return SDIFF_OK;
}

SDIFF__PRIVATE bool sdiff__json_literal(sdiff__json_parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->s) < n || memcmp(ps->s, word, n) != 0) return false;
    ps->s += n;
    return true;
}

/* On failure v is left holding whatever was parsed so far; the caller frees
   the whole tree, so no partial state leaks. */
SDIFF__PRIVATE sdiff_status sdiff__json_value(sdiff__json_parser *ps, sdiff__json *v, int depth) {
    sdiff__json_skip_ws(ps);
    if (ps->s >= ps->end) return sdiff__json_fail(ps, ps->s, "unexpected end of input, expected a value");
    const unsigned char *at = ps->s;
    unsigned c = *at;
    if (c == '{' || c == '[') {
        bool obj = c == '{';
        if (depth >= SDIFF__JSON_MAX_DEPTH) return sdiff__json_fail(ps, at, "nesting deeper than 128 levels");
        v->type = obj ? SDIFF__JSON_OBJECT : SDIFF__JSON_ARRAY;
        ps->s++;
        size_t cap = 0;
        sdiff__json_skip_ws(ps);
        if (ps->s < ps->end && *ps->s == (obj ? '}' : ']')) { ps->s++; return SDIFF_OK; }
        for (;;) {
            SDIFF__TRY(sdiff__json_grow(ps, v, &cap, obj));
            sdiff__json *child = &v->items[v->count];
            memset(child, 0, sizeof *child);
            if (obj) {
                sdiff__json_skip_ws(ps);
                if (ps->s >= ps->end) return sdiff__json_fail(ps, ps->s, "unexpected end of input, expected a key");
                if (*ps->s != '"') return sdiff__json_fail(ps, ps->s, "expected a string key");
                size_t klen;
                v->keys[v->count] = NULL;
                /* count is bumped only once the key exists, so the free path
                   never sees an unset key */
                char *key;
                SDIFF__TRY(sdiff__json_string_at(ps, &key, &klen));
                v->keys[v->count] = key;
                v->count++;
                sdiff__json_skip_ws(ps);
                if (ps->s >= ps->end || *ps->s != ':') return sdiff__json_fail(ps, ps->s, "expected ':'");
                ps->s++;
            } else {
                v->count++;
            }
            SDIFF__TRY(sdiff__json_value(ps, child, depth + 1));
            sdiff__json_skip_ws(ps);
            if (ps->s >= ps->end)
                return sdiff__json_fail(ps, ps->s, obj ? "unexpected end of input, expected ',' or '}'"
                                                       : "unexpected end of input, expected ',' or ']'");
            if (*ps->s == ',') {
                ps->s++;
                sdiff__json_skip_ws(ps);
                if (ps->s < ps->end && *ps->s == (obj ? '}' : ']')) return sdiff__json_fail(ps, ps->s, "trailing comma");
                continue;
            }
            if (*ps->s == (obj ? '}' : ']')) { ps->s++; break; }
            return sdiff__json_fail(ps, ps->s, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        /* Give back the slack of the doubling. */
        if (v->count < cap) {
            sdiff__json *items = (sdiff__json *)sdiff__realloc(v->items, v->count * sizeof *items);
            if (items) v->items = items;
        }
        return SDIFF_OK;
    }
    if (c == '"') {
        v->type = SDIFF__JSON_STRING;
        return sdiff__json_string_at(ps, &v->string, &v->string_len);
    }
    if (sdiff__json_literal(ps, "true")) { v->type = SDIFF__JSON_BOOL; v->boolean = true; return SDIFF_OK; }
    if (sdiff__json_literal(ps, "false")) { v->type = SDIFF__JSON_BOOL; v->boolean = false; return SDIFF_OK; }
    if (sdiff__json_literal(ps, "null")) { v->type = SDIFF__JSON_NULL; return SDIFF_OK; }
    if (sdiff__json_literal(ps, "NaN")) { v->type = SDIFF__JSON_NUMBER; v->number = NAN; return SDIFF_OK; }
    if (sdiff__json_literal(ps, "Infinity")) { v->type = SDIFF__JSON_NUMBER; v->number = INFINITY; return SDIFF_OK; }
    if (sdiff__json_literal(ps, "-Infinity")) { v->type = SDIFF__JSON_NUMBER; v->number = -INFINITY; return SDIFF_OK; }
    if (c == '-' || (c >= '0' && c <= '9')) {
        /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
        const unsigned char *p = at, *e = ps->end;
        if (*p == '-') p++;
        if (p >= e || *p < '0' || *p > '9') return sdiff__json_fail(ps, p, "expected a digit");
        if (*p == '0') {
            p++;
            if (p < e && *p >= '0' && *p <= '9') return sdiff__json_fail(ps, p, "leading zero in number");
        } else {
            while (p < e && *p >= '0' && *p <= '9') p++;
        }
        if (p < e && *p == '.') {
            p++;
            if (p >= e || *p < '0' || *p > '9') return sdiff__json_fail(ps, p, "expected a digit after '.'");
            while (p < e && *p >= '0' && *p <= '9') p++;
        }
        if (p < e && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < e && (*p == '+' || *p == '-')) p++;
            if (p >= e || *p < '0' || *p > '9') return sdiff__json_fail(ps, p, "expected a digit in the exponent");
            while (p < e && *p >= '0' && *p <= '9') p++;
        }
        v->type = SDIFF__JSON_NUMBER;
        /* Fast path for short plain integers (every value of vocab.json):
           below 2^53 the double is exact. */
        const unsigned char *d = at + (*at == '-');
        if (p - d <= 15 && memchr(d, '.', (size_t)(p - d)) == NULL && memchr(d, 'e', (size_t)(p - d)) == NULL &&
            memchr(d, 'E', (size_t)(p - d)) == NULL) {
            int64_t iv = 0;
            for (const unsigned char *q = d; q < p; q++) iv = iv * 10 + (*q - '0');
            v->number = (double)(*at == '-' ? -iv : iv);
            ps->s = p;
            return SDIFF_OK;
        }
        if (!sdiff__json_number_value(at, p, &v->number))
            return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", ps->what);
        if (isinf(v->number)) return sdiff__json_fail(ps, at, "number out of range of a double");
        ps->s = p;
        return SDIFF_OK;
    }
    if (c == 0) return sdiff__json_fail(ps, at, "NUL byte");
    return sdiff__json_fail(ps, at, "expected a value");
}

SDIFF__PRIVATE sdiff_status sdiff__json_parse(const char *text, size_t len, const char *what, sdiff__json **out) {
    *out = NULL;
    if (!text) return sdiff__err(SDIFF_ERR_INVALID_ARG, "%s: no JSON text", what ? what : "JSON");
    sdiff__json_parser ps;
    ps.begin = ps.s = (const unsigned char *)text;
    ps.end = ps.s + len;
    ps.what = what ? what : "JSON";
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ps.s += 3;
    sdiff__json *root = (sdiff__json *)sdiff__calloc(1, sizeof *root);
    if (!root) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", ps.what);
    sdiff_status st = sdiff__json_value(&ps, root, 0);
    if (st == SDIFF_OK) {
        sdiff__json_skip_ws(&ps);
        if (ps.s < ps.end) st = sdiff__json_fail(&ps, ps.s, "unexpected data after the document");
    }
    if (st != SDIFF_OK) { sdiff__json_free(root); return st; }
    *out = root;
    return SDIFF_OK;
}

SDIFF__PRIVATE const sdiff__json *sdiff__json_get(const sdiff__json *obj, const char *key) {
    if (!obj || obj->type != SDIFF__JSON_OBJECT || !key) return NULL;
    for (size_t i = obj->count; i-- > 0;)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

SDIFF__PRIVATE double sdiff__json_number(const sdiff__json *obj, const char *key, double fallback) {
    const sdiff__json *v = sdiff__json_get(obj, key);
    return v && v->type == SDIFF__JSON_NUMBER ? v->number : fallback;
}

SDIFF__PRIVATE bool sdiff__json_bool(const sdiff__json *obj, const char *key, bool fallback) {
    const sdiff__json *v = sdiff__json_get(obj, key);
    return v && v->type == SDIFF__JSON_BOOL ? v->boolean : fallback;
}

SDIFF__PRIVATE const char *sdiff__json_string(const sdiff__json *obj, const char *key, const char *fallback) {
    const sdiff__json *v = sdiff__json_get(obj, key);
    return v && v->type == SDIFF__JSON_STRING ? v->string : fallback;
}

/* >>files ==================================================================
   Files: mmap, small text files, safetensors

   A checkpoint is mapped read-only and never copied whole: tensors are read
   straight out of the mapping when they are uploaded to the backend. Every
   offset, size and shape in a safetensors header is checked against the file
   before anything is read, so a truncated or hostile file is an error, not a
   crash (tests/test_files.c fuzzes this).
   ========================================================================= */
typedef struct sdiff__mapped_file {
    const unsigned char *data;
    size_t size;
} sdiff__mapped_file;

SDIFF__PRIVATE sdiff_status sdiff__file_map(const char *path, sdiff__mapped_file *f) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sdiff__err(SDIFF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sdiff__err(SDIFF_ERR_IO, "%s: not a regular file", path);
    }
    f->size = (size_t)st.st_size;
    if (f->size == 0) { close(fd); return SDIFF_OK; } /* mmap refuses 0 bytes; callers see size 0 */
    void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return sdiff__err(SDIFF_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    f->data = (const unsigned char *)p;
    return SDIFF_OK;
}
SDIFF__PRIVATE void sdiff__file_unmap(sdiff__mapped_file *f) {
    if (f->data) munmap((void *)f->data, f->size);
    memset(f, 0, sizeof *f);
}
SDIFF__PRIVATE bool sdiff__path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}
SDIFF__PRIVATE bool sdiff__is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
/* "a" + "/" + "b" into buf; false if it does not fit. */
SDIFF__PRIVATE bool sdiff__path_join(char *buf, size_t size, const char *a, const char *b) {
    int n = snprintf(buf, size, "%s/%s", a, b);
    return n > 0 && (size_t)n < size;
}
/* Reads a whole (small) text file, NUL-terminated, refusing files larger than
   max_bytes so a wrong path cannot make us read gigabytes. */
SDIFF__PRIVATE sdiff_status sdiff__read_text(const char *path, size_t max_bytes, char **out, size_t *out_len) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sdiff__err(SDIFF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= max_bytes) {
                sdiff__free(buf);
                fclose(fp);
                return sdiff__err(SDIFF_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
            }
            cap = cap ? SDIFF__MIN(cap * 2, max_bytes) : 4096;
            char *nb = (char *)sdiff__realloc(buf, cap + 1);
            if (!nb) { sdiff__free(buf); fclose(fp); return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", path); }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    bool failed = ferror(fp) != 0;
    fclose(fp);
    if (failed) { sdiff__free(buf); return sdiff__err(SDIFF_ERR_IO, "%s: read error", path); }
    buf[len] = 0;
    *out = buf;
    if (out_len) *out_len = len;
    return SDIFF_OK;
}
/* Parses a JSON file (configs are small: 16 MiB is far above any real one). */
SDIFF__PRIVATE sdiff_status sdiff__json_load(const char *path, sdiff__json **out) {
    char *text;
    size_t len = 0;
    *out = NULL;
    SDIFF__TRY(sdiff__read_text(path, (size_t)16 << 20, &text, &len));
    sdiff_status st = sdiff__json_parse(text, len, path, out);
    sdiff__free(text);
    return st;
}

/* --- safetensors: 8-byte little-endian header length N, N bytes of JSON
   {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ...
   "__metadata__": {...}}, then the data; offsets are relative to its start. */
#define SDIFF__ST_MAX_DIMS 8
#define SDIFF__ST_MAX_HEADER ((uint64_t)100 << 20)

typedef struct sdiff__st_tensor {
    char *name;
    char dtype_name[12];        /* as written: "F16", "I64", ...                */
    int dtype;                  /* an sdiff__dtype, or -1 for other known dtypes */
    int nd;
    int64_t shape[SDIFF__ST_MAX_DIMS];
    const unsigned char *data;  /* inside the mapping                          */
    size_t nbytes;
} sdiff__st_tensor;

typedef struct sdiff__safetensors {
    char path[512];
    sdiff__mapped_file file;
    sdiff__st_tensor *tensors;  /* sorted by name                              */
    size_t n;
} sdiff__safetensors;

SDIFF__PRIVATE int sdiff__st_cmp_name(const void *a, const void *b) {
    return strcmp(((const sdiff__st_tensor *)a)->name, ((const sdiff__st_tensor *)b)->name);
}
SDIFF__PRIVATE int sdiff__st_cmp_offset(const void *a, const void *b) {
    const sdiff__st_tensor *x = *(const sdiff__st_tensor *const *)a, *y = *(const sdiff__st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data ? 1 : 0;
}
SDIFF__PRIVATE void sdiff__st_free_tensors(sdiff__safetensors *st) {
    for (size_t i = 0; i < st->n; i++) sdiff__free(st->tensors[i].name);
    sdiff__free(st->tensors);
    st->tensors = NULL;
    st->n = 0;
}
/* Element size of a safetensors dtype name, 0 if unknown. */
SDIFF__PRIVATE size_t sdiff__st_dtype_size(const char *name, int *dtype) {
    static const struct { const char *name; size_t size; int dtype; } k[] = {
        {"F32", 4, SDIFF__F32}, {"F16", 2, SDIFF__F16}, {"BF16", 2, SDIFF__BF16}, {"F64", 8, -1},
        {"I64", 8, -1}, {"I32", 4, -1}, {"I16", 2, -1}, {"I8", 1, -1}, {"U64", 8, -1}, {"U32", 4, -1},
        {"U16", 2, -1}, {"U8", 1, -1}, {"BOOL", 1, -1}, {"F8_E4M3", 1, -1}, {"F8_E5M2", 1, -1}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(name, k[i].name) == 0) { *dtype = k[i].dtype; return k[i].size; }
    return 0;
}
/* Parses a safetensors image already in memory (the mapping). `what` names it
   in messages. On success st->tensors points into `data`. */
SDIFF__PRIVATE sdiff_status sdiff__st_parse(const unsigned char *data, size_t size, const char *what,
                                           sdiff__safetensors *st) {
    st->tensors = NULL;
    st->n = 0;
    if (size < 8)
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: truncated (%zu bytes): a safetensors file starts with an 8-byte header length",
                          what, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | data[i];
    if (hlen > size - 8)
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes): truncated or not safetensors",
                          what, (unsigned long long)hlen, size);
    if (hlen > SDIFF__ST_MAX_HEADER)
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: header of %llu bytes is larger than any real checkpoint's", what,
                          (unsigned long long)hlen);
    sdiff__json *root;
    SDIFF__TRY(sdiff__json_parse((const char *)data + 8, (size_t)hlen, what, &root));
    sdiff_status status = SDIFF_OK;
    const unsigned char *base = data + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    if (root->type != SDIFF__JSON_OBJECT) {
        status = sdiff__err(SDIFF_ERR_FORMAT, "%s: header is not a JSON object", what);
        goto done;
    }
    st->tensors = (sdiff__st_tensor *)sdiff__calloc(root->count ? root->count : 1, sizeof *st->tensors);
    if (!st->tensors) { status = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", what); goto done; }
    for (size_t i = 0; i < root->count; i++) {
        const char *key = root->keys[i];
        const sdiff__json *v = &root->items[i];
        if (strcmp(key, "__metadata__") == 0) continue;
        sdiff__st_tensor *t = &st->tensors[st->n];
        const sdiff__json *dt = sdiff__json_get(v, "dtype"), *shape = sdiff__json_get(v, "shape"),
                          *offs = sdiff__json_get(v, "data_offsets");
        if (!dt || dt->type != SDIFF__JSON_STRING || !shape || shape->type != SDIFF__JSON_ARRAY || !offs ||
            offs->type != SDIFF__JSON_ARRAY || offs->count != 2) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' lacks a valid dtype, shape or data_offsets", what, key);
            goto done;
        }
        size_t esize = sdiff__st_dtype_size(dt->string, &t->dtype);
        if (!esize) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%.16s'", what, key, dt->string);
            goto done;
        }
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->string);
        if (shape->count > SDIFF__ST_MAX_DIMS) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' has %zu dimensions (at most %d)", what, key,
                                shape->count, SDIFF__ST_MAX_DIMS);
            goto done;
        }
        /* numel * esize with overflow checks: every dim is an exact integer */
        uint64_t bytes = esize;
        t->nd = (int)shape->count;
        for (size_t d = 0; d < shape->count; d++) {
            double x = shape->items[d].number;
            if (shape->items[d].type != SDIFF__JSON_NUMBER || x < 0 || x > 9.0e15 || x != floor(x)) {
                status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' has an invalid dimension", what, key);
                goto done;
            }
            t->shape[d] = (int64_t)x;
            if (t->shape[d] && bytes > UINT64_MAX / (uint64_t)t->shape[d]) {
                status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' has an absurd shape (size overflows)", what, key);
                goto done;
            }
            bytes *= (uint64_t)t->shape[d];
        }
        double b0 = offs->items[0].number, b1 = offs->items[1].number;
        if (offs->items[0].type != SDIFF__JSON_NUMBER || offs->items[1].type != SDIFF__JSON_NUMBER || b0 < 0 ||
            b1 < b0 || b0 != floor(b0) || b1 != floor(b1) || b1 > (double)data_size) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' data_offsets [%.0f, %.0f] lie outside the %zu data bytes",
                                what, key, b0, b1, data_size);
            goto done;
        }
        if ((uint64_t)(b1 - b0) != bytes) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' has %.0f data bytes but its shape and dtype need %llu",
                                what, key, b1 - b0, (unsigned long long)bytes);
            goto done;
        }
        t->data = base + (size_t)b0;
        t->nbytes = (size_t)bytes;
        t->name = sdiff__strdup(key);
        if (!t->name) { status = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", what); goto done; }
        st->n++;
    }
    {   /* no two tensors may share bytes: sort by offset and compare neighbours */
        sdiff__st_tensor **byoff = (sdiff__st_tensor **)sdiff__calloc(st->n ? st->n : 1, sizeof *byoff);
        if (!byoff) { status = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", what); goto done; }
        for (size_t i = 0; i < st->n; i++) byoff[i] = &st->tensors[i];
        qsort(byoff, st->n, sizeof *byoff, sdiff__st_cmp_offset);
        for (size_t i = 1; i < st->n && status == SDIFF_OK; i++)
            if (byoff[i - 1]->data + byoff[i - 1]->nbytes > byoff[i]->data && byoff[i]->nbytes)
                status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", what, byoff[i - 1]->name,
                                    byoff[i]->name);
        sdiff__free(byoff);
        if (status != SDIFF_OK) goto done;
    }
    qsort(st->tensors, st->n, sizeof *st->tensors, sdiff__st_cmp_name);
    for (size_t i = 1; i < st->n; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' appears twice", what, st->tensors[i].name);
            goto done;
        }
done:
    sdiff__json_free(root);
    if (status != SDIFF_OK) sdiff__st_free_tensors(st);
    return status;
}
SDIFF__PRIVATE void sdiff__st_close(sdiff__safetensors *st) {
    sdiff__st_free_tensors(st);
    sdiff__file_unmap(&st->file);
}
SDIFF__PRIVATE sdiff_status sdiff__st_open(const char *path, sdiff__safetensors *st) {
    memset(st, 0, sizeof *st);
    snprintf(st->path, sizeof st->path, "%s", path);
    SDIFF__TRY(sdiff__file_map(path, &st->file));
    sdiff_status s = sdiff__st_parse(st->file.data, st->file.size, path, st);
    if (s != SDIFF_OK) sdiff__file_unmap(&st->file);
    return s;
}
SDIFF__PRIVATE const sdiff__st_tensor *sdiff__st_find(const sdiff__safetensors *st, const char *name) {
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

/* >>tokenizer ==============================================================
   Tokenizer: CLIP BPE

   WHICH TOKENIZER THIS MATCHES. diffusers builds `transformers.CLIPTokenizer`.
   Since transformers v5 that class is the one backed by the Rust `tokenizers`
   library (the old pure-Python CLIPTokenizer, with its ftfy / BasicTokenizer
   cleanup, is gone; v5's models/clip/tokenization_clip.py builds a
   tokenizers.Tokenizer in __init__ even when only vocab.json + merges.txt
   exist). Its pipeline, reproduced here step by step:
     1. Added (special) tokens: bos, eos, unk and pad are cut out first and
        map straight to their ids. Each has a "normalized" flag: false ones
        are matched in the raw text, true ones in the normalized text (step
        2), so "<|STARTOFTEXT|>" is bos only when bos is normalized. The flags
        come from tokenizer_config.json / special_tokens_map.json: an
        AddedToken object carries its own, a plain string means false, and
        when two entries name the same text the later of bos, eos, unk, pad
        wins. Measured with transformers 5.17 / tokenizers 0.23: SD 1.x's
        configs give bos true, eos false (pad "<|endoftext|>" is a plain
        string); SD 2.x's give bos and eos true and make pad "!" a raw-matched
        special token, so every "!" in an SD 2.x prompt becomes id 0; a folder
        without configs gives all false. The bpe-file and built-in sources use
        SD 1.x's settings; sdiff__tokenizer_set_pad("!") gives SD 2.x's.
     2. Normalizer: NFC, then \s+ -> " ", then per-character lowercase (Rust's
        char::to_lowercase: full mappings, U+0130 -> "i" U+0307, and no
        final-sigma rule: every capital sigma becomes U+03C3).
     3. Pre-tokenizer: the regex
          <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
        keeps its matches and drops what lies between (whitespace), then
        ByteLevel maps each UTF-8 byte to GPT-2's printable stand-in character.
        ByteLevel's own GPT-2 regex then splits only the two literals, into
        "<|", the letters and "|>"; every other piece is already a letter run,
        one digit, a contraction or a punctuation run, which it keeps whole.
        (The literals reach this step only when they were not cut out as
        added tokens: "<|EndOfText|>" in SD 1.x, where eos is raw-matched.)
        \s is Unicode White_Space (Oniguruma's Unicode \s), so NBSP, U+3000
        etc. separate words; other controls (\x07, U+200B) are "punctuation".
     4. BPE with end-of-word suffix "</w>" on the last character, merging the
        lowest-ranked adjacent pair, leftmost first, until none is left; a
        symbol missing from the vocabulary becomes <|endoftext|> (unk).
     5. Post-processor: <|startoftext|> ... <|endoftext|>; diffusers asks for
        truncation and padding to max_length (77): at most 75 tokens between,
        then pad_token ("<|endoftext|>" for SD 1.x, "!" (id 0) for SD 2.x).
   Evidence: tools/gen_tokenizer_fixture.py run with transformers 5.17.0 /
   tokenizers 0.23.2 (CLIPTokenizer's MRO: CLIPTokenizer, TokenizersBackend,
   ...; is_fast True; normalizer NFC + Replace(\s+) + Lowercase) gives 58
   prompts (accents, decomposed marks, ß, İ, Greek, Cyrillic, CJK, ZWJ emoji,
   controls, NBSP, specials in all cases, SD 2.x's "!" pad, > 77 tokens) whose
   ids this code and the tool's pure-Python reference both reproduce.
   Step 2's whitespace collapse changes no token (step 3 drops whitespace
   anyway), so it is folded into step 3.

   How the old slow tokenizer (transformers < 5, or openai/CLIP's
   SimpleTokenizer) differs, so nobody "fixes" this back: it removed control
   characters and U+FFFD, put spaces around every CJK ideograph (so "猫猫" was
   two words, here it is one letter run), used Python's str.lower (final sigma
   "ς"), ran ftfy.fix_text + html.unescape when ftfy was installed ("&amp;" ->
   "&", mojibake repaired) and had no per-token "normalized" flags.

   Unicode data: the generated tables below are Unicode 14.0 (Python 3.11).
   tokenizers uses its bundled Oniguruma for \p{L}/\p{N}/\s, the
   unicode-normalization-alignments crate for NFC (NFC is stable for
   characters that already existed) and Rust's to_lowercase, each at its own
   Unicode version: only prompts with characters assigned after Unicode 14.0
   can differ.

   Vocabulary sources: a diffusers tokenizer/ folder (vocab.json, merges.txt,
   pad token from tokenizer_config.json / special_tokens_map.json), OpenAI's
   bpe_simple_vocab_16e6.txt(.gz) (CLIP's vocabulary is derived from its first
   48894 merges), or the built-in copy in sdiff_clip_vocab.h (SDIFF_CLIP_VOCAB).
   The .gz needs inflate, so a small bounds-checked one (RFC 1951/1952) lives
   here too.
   ========================================================================= */

typedef struct sdiff__tokenizer sdiff__tokenizer;

/* --- Unicode tables ------------------------------------------------------ */
/* BEGIN GENERATED UNICODE TABLES (tools/gen_unicode_tables.py) */
/* Unicode 14.0.0 (Python 3.11.7 unicodedata). 648 letter ranges, 134 number ranges, 181 lowercase runs,
   382 combining-class runs, 2061 canonical decompositions (941 recompose). */
/* \p{L}: inclusive [lo, hi] pairs, sorted. */
static const uint32_t sdiff__tok_letter_ranges[] = {
    0x41,0x5A, 0x61,0x7A, 0xAA,0xAA, 0xB5,0xB5, 0xBA,0xBA, 0xC0,0xD6,
    0xD8,0xF6, 0xF8,0x2C1, 0x2C6,0x2D1, 0x2E0,0x2E4, 0x2EC,0x2EC, 0x2EE,0x2EE,
    0x370,0x374, 0x376,0x377, 0x37A,0x37D, 0x37F,0x37F, 0x386,0x386, 0x388,0x38A,
    0x38C,0x38C, 0x38E,0x3A1, 0x3A3,0x3F5, 0x3F7,0x481, 0x48A,0x52F, 0x531,0x556,
    0x559,0x559, 0x560,0x588, 0x5D0,0x5EA, 0x5EF,0x5F2, 0x620,0x64A, 0x66E,0x66F,
    0x671,0x6D3, 0x6D5,0x6D5, 0x6E5,0x6E6, 0x6EE,0x6EF, 0x6FA,0x6FC, 0x6FF,0x6FF,
    0x710,0x710, 0x712,0x72F, 0x74D,0x7A5, 0x7B1,0x7B1, 0x7CA,0x7EA, 0x7F4,0x7F5,
    0x7FA,0x7FA, 0x800,0x815, 0x81A,0x81A, 0x824,0x824, 0x828,0x828, 0x840,0x858,
    0x860,0x86A, 0x870,0x887, 0x889,0x88E, 0x8A0,0x8C9, 0x904,0x939, 0x93D,0x93D,
    0x950,0x950, 0x958,0x961, 0x971,0x980, 0x985,0x98C, 0x98F,0x990, 0x993,0x9A8,
    0x9AA,0x9B0, 0x9B2,0x9B2, 0x9B6,0x9B9, 0x9BD,0x9BD, 0x9CE,0x9CE, 0x9DC,0x9DD,
    0x9DF,0x9E1, 0x9F0,0x9F1, 0x9FC,0x9FC, 0xA05,0xA0A, 0xA0F,0xA10, 0xA13,0xA28,
    0xA2A,0xA30, 0xA32,0xA33, 0xA35,0xA36, 0xA38,0xA39, 0xA59,0xA5C, 0xA5E,0xA5E,
    0xA72,0xA74, 0xA85,0xA8D, 0xA8F,0xA91, 0xA93,0xAA8, 0xAAA,0xAB0, 0xAB2,0xAB3,
    0xAB5,0xAB9, 0xABD,0xABD, 0xAD0,0xAD0, 0xAE0,0xAE1, 0xAF9,0xAF9, 0xB05,0xB0C,
    0xB0F,0xB10, 0xB13,0xB28, 0xB2A,0xB30, 0xB32,0xB33, 0xB35,0xB39, 0xB3D,0xB3D,
    0xB5C,0xB5D, 0xB5F,0xB61, 0xB71,0xB71, 0xB83,0xB83, 0xB85,0xB8A, 0xB8E,0xB90,
    0xB92,0xB95, 0xB99,0xB9A, 0xB9C,0xB9C, 0xB9E,0xB9F, 0xBA3,0xBA4, 0xBA8,0xBAA,
    0xBAE,0xBB9, 0xBD0,0xBD0, 0xC05,0xC0C, 0xC0E,0xC10, 0xC12,0xC28, 0xC2A,0xC39,
    0xC3D,0xC3D, 0xC58,0xC5A, 0xC5D,0xC5D, 0xC60,0xC61, 0xC80,0xC80, 0xC85,0xC8C,
    0xC8E,0xC90, 0xC92,0xCA8, 0xCAA,0xCB3, 0xCB5,0xCB9, 0xCBD,0xCBD, 0xCDD,0xCDE,
    0xCE0,0xCE1, 0xCF1,0xCF2, 0xD04,0xD0C, 0xD0E,0xD10, 0xD12,0xD3A, 0xD3D,0xD3D,
    0xD4E,0xD4E, 0xD54,0xD56, 0xD5F,0xD61, 0xD7A,0xD7F, 0xD85,0xD96, 0xD9A,0xDB1,
    0xDB3,0xDBB, 0xDBD,0xDBD, 0xDC0,0xDC6, 0xE01,0xE30, 0xE32,0xE33, 0xE40,0xE46,
    0xE81,0xE82, 0xE84,0xE84, 0xE86,0xE8A, 0xE8C,0xEA3, 0xEA5,0xEA5, 0xEA7,0xEB0,
    0xEB2,0xEB3, 0xEBD,0xEBD, 0xEC0,0xEC4, 0xEC6,0xEC6, 0xEDC,0xEDF, 0xF00,0xF00,
    0xF40,0xF47, 0xF49,0xF6C, 0xF88,0xF8C, 0x1000,0x102A, 0x103F,0x103F, 0x1050,0x1055,
    0x105A,0x105D, 0x1061,0x1061, 0x1065,0x1066, 0x106E,0x1070, 0x1075,0x1081, 0x108E,0x108E,
    0x10A0,0x10C5, 0x10C7,0x10C7, 0x10CD,0x10CD, 0x10D0,0x10FA, 0x10FC,0x1248, 0x124A,0x124D,
    0x1250,0x1256, 0x1258,0x1258, 0x125A,0x125D, 0x1260,0x1288, 0x128A,0x128D, 0x1290,0x12B0,
    0x12B2,0x12B5, 0x12B8,0x12BE, 0x12C0,0x12C0, 0x12C2,0x12C5, 0x12C8,0x12D6, 0x12D8,0x1310,
    0x1312,0x1315, 0x1318,0x135A, 0x1380,0x138F, 0x13A0,0x13F5, 0x13F8,0x13FD, 0x1401,0x166C,
    0x166F,0x167F, 0x1681,0x169A, 0x16A0,0x16EA, 0x16F1,0x16F8, 0x1700,0x1711, 0x171F,0x1731,
    0x1740,0x1751, 0x1760,0x176C, 0x176E,0x1770, 0x1780,0x17B3, 0x17D7,0x17D7, 0x17DC,0x17DC,
    0x1820,0x1878, 0x1880,0x1884, 0x1887,0x18A8, 0x18AA,0x18AA, 0x18B0,0x18F5, 0x1900,0x191E,
    0x1950,0x196D, 0x1970,0x1974, 0x1980,0x19AB, 0x19B0,0x19C9, 0x1A00,0x1A16, 0x1A20,0x1A54,
    0x1AA7,0x1AA7, 0x1B05,0x1B33, 0x1B45,0x1B4C, 0x1B83,0x1BA0, 0x1BAE,0x1BAF, 0x1BBA,0x1BE5,
    0x1C00,0x1C23, 0x1C4D,0x1C4F, 0x1C5A,0x1C7D, 0x1C80,0x1C88, 0x1C90,0x1CBA, 0x1CBD,0x1CBF,
    0x1CE9,0x1CEC, 0x1CEE,0x1CF3, 0x1CF5,0x1CF6, 0x1CFA,0x1CFA, 0x1D00,0x1DBF, 0x1E00,0x1F15,
    0x1F18,0x1F1D, 0x1F20,0x1F45, 0x1F48,0x1F4D, 0x1F50,0x1F57, 0x1F59,0x1F59, 0x1F5B,0x1F5B,
    0x1F5D,0x1F5D, 0x1F5F,0x1F7D, 0x1F80,0x1FB4, 0x1FB6,0x1FBC, 0x1FBE,0x1FBE, 0x1FC2,0x1FC4,
    0x1FC6,0x1FCC, 0x1FD0,0x1FD3, 0x1FD6,0x1FDB, 0x1FE0,0x1FEC, 0x1FF2,0x1FF4, 0x1FF6,0x1FFC,
    0x2071,0x2071, 0x207F,0x207F, 0x2090,0x209C, 0x2102,0x2102, 0x2107,0x2107, 0x210A,0x2113,
    0x2115,0x2115, 0x2119,0x211D, 0x2124,0x2124, 0x2126,0x2126, 0x2128,0x2128, 0x212A,0x212D,
    0x212F,0x2139, 0x213C,0x213F, 0x2145,0x2149, 0x214E,0x214E, 0x2183,0x2184, 0x2C00,0x2CE4,
    0x2CEB,0x2CEE, 0x2CF2,0x2CF3, 0x2D00,0x2D25, 0x2D27,0x2D27, 0x2D2D,0x2D2D, 0x2D30,0x2D67,
    0x2D6F,0x2D6F, 0x2D80,0x2D96, 0x2DA0,0x2DA6, 0x2DA8,0x2DAE, 0x2DB0,0x2DB6, 0x2DB8,0x2DBE,
    0x2DC0,0x2DC6, 0x2DC8,0x2DCE, 0x2DD0,0x2DD6, 0x2DD8,0x2DDE, 0x2E2F,0x2E2F, 0x3005,0x3006,
    0x3031,0x3035, 0x303B,0x303C, 0x3041,0x3096, 0x309D,0x309F, 0x30A1,0x30FA, 0x30FC,0x30FF,
    0x3105,0x312F, 0x3131,0x318E, 0x31A0,0x31BF, 0x31F0,0x31FF, 0x3400,0x4DBF, 0x4E00,0xA48C,
    0xA4D0,0xA4FD, 0xA500,0xA60C, 0xA610,0xA61F, 0xA62A,0xA62B, 0xA640,0xA66E, 0xA67F,0xA69D,
    0xA6A0,0xA6E5, 0xA717,0xA71F, 0xA722,0xA788, 0xA78B,0xA7CA, 0xA7D0,0xA7D1, 0xA7D3,0xA7D3,
    0xA7D5,0xA7D9, 0xA7F2,0xA801, 0xA803,0xA805, 0xA807,0xA80A, 0xA80C,0xA822, 0xA840,0xA873,
    0xA882,0xA8B3, 0xA8F2,0xA8F7, 0xA8FB,0xA8FB, 0xA8FD,0xA8FE, 0xA90A,0xA925, 0xA930,0xA946,
    0xA960,0xA97C, 0xA984,0xA9B2, 0xA9CF,0xA9CF, 0xA9E0,0xA9E4, 0xA9E6,0xA9EF, 0xA9FA,0xA9FE,
    0xAA00,0xAA28, 0xAA40,0xAA42, 0xAA44,0xAA4B, 0xAA60,0xAA76, 0xAA7A,0xAA7A, 0xAA7E,0xAAAF,
    0xAAB1,0xAAB1, 0xAAB5,0xAAB6, 0xAAB9,0xAABD, 0xAAC0,0xAAC0, 0xAAC2,0xAAC2, 0xAADB,0xAADD,
    0xAAE0,0xAAEA, 0xAAF2,0xAAF4, 0xAB01,0xAB06, 0xAB09,0xAB0E, 0xAB11,0xAB16, 0xAB20,0xAB26,
    0xAB28,0xAB2E, 0xAB30,0xAB5A, 0xAB5C,0xAB69, 0xAB70,0xABE2, 0xAC00,0xD7A3, 0xD7B0,0xD7C6,
    0xD7CB,0xD7FB, 0xF900,0xFA6D, 0xFA70,0xFAD9, 0xFB00,0xFB06, 0xFB13,0xFB17, 0xFB1D,0xFB1D,
    0xFB1F,0xFB28, 0xFB2A,0xFB36, 0xFB38,0xFB3C, 0xFB3E,0xFB3E, 0xFB40,0xFB41, 0xFB43,0xFB44,
    0xFB46,0xFBB1, 0xFBD3,0xFD3D, 0xFD50,0xFD8F, 0xFD92,0xFDC7, 0xFDF0,0xFDFB, 0xFE70,0xFE74,
    0xFE76,0xFEFC, 0xFF21,0xFF3A, 0xFF41,0xFF5A, 0xFF66,0xFFBE, 0xFFC2,0xFFC7, 0xFFCA,0xFFCF,
    0xFFD2,0xFFD7, 0xFFDA,0xFFDC, 0x10000,0x1000B, 0x1000D,0x10026, 0x10028,0x1003A, 0x1003C,0x1003D,
    0x1003F,0x1004D, 0x10050,0x1005D, 0x10080,0x100FA, 0x10280,0x1029C, 0x102A0,0x102D0, 0x10300,0x1031F,
    0x1032D,0x10340, 0x10342,0x10349, 0x10350,0x10375, 0x10380,0x1039D, 0x103A0,0x103C3, 0x103C8,0x103CF,
    0x10400,0x1049D, 0x104B0,0x104D3, 0x104D8,0x104FB, 0x10500,0x10527, 0x10530,0x10563, 0x10570,0x1057A,
    0x1057C,0x1058A, 0x1058C,0x10592, 0x10594,0x10595, 0x10597,0x105A1, 0x105A3,0x105B1, 0x105B3,0x105B9,
    0x105BB,0x105BC, 0x10600,0x10736, 0x10740,0x10755, 0x10760,0x10767, 0x10780,0x10785, 0x10787,0x107B0,
    0x107B2,0x107BA, 0x10800,0x10805, 0x10808,0x10808, 0x1080A,0x10835, 0x10837,0x10838, 0x1083C,0x1083C,
    0x1083F,0x10855, 0x10860,0x10876, 0x10880,0x1089E, 0x108E0,0x108F2, 0x108F4,0x108F5, 0x10900,0x10915,
    0x10920,0x10939, 0x10980,0x109B7, 0x109BE,0x109BF, 0x10A00,0x10A00, 0x10A10,0x10A13, 0x10A15,0x10A17,
    0x10A19,0x10A35, 0x10A60,0x10A7C, 0x10A80,0x10A9C, 0x10AC0,0x10AC7, 0x10AC9,0x10AE4, 0x10B00,0x10B35,
    0x10B40,0x10B55, 0x10B60,0x10B72, 0x10B80,0x10B91, 0x10C00,0x10C48, 0x10C80,0x10CB2, 0x10CC0,0x10CF2,
    0x10D00,0x10D23, 0x10E80,0x10EA9, 0x10EB0,0x10EB1, 0x10F00,0x10F1C, 0x10F27,0x10F27, 0x10F30,0x10F45,
    0x10F70,0x10F81, 0x10FB0,0x10FC4, 0x10FE0,0x10FF6, 0x11003,0x11037, 0x11071,0x11072, 0x11075,0x11075,
    0x11083,0x110AF, 0x110D0,0x110E8, 0x11103,0x11126, 0x11144,0x11144, 0x11147,0x11147, 0x11150,0x11172,
    0x11176,0x11176, 0x11183,0x111B2, 0x111C1,0x111C4, 0x111DA,0x111DA, 0x111DC,0x111DC, 0x11200,0x11211,
    0x11213,0x1122B, 0x11280,0x11286, 0x11288,0x11288, 0x1128A,0x1128D, 0x1128F,0x1129D, 0x1129F,0x112A8,
    0x112B0,0x112DE, 0x11305,0x1130C, 0x1130F,0x11310, 0x11313,0x11328, 0x1132A,0x11330, 0x11332,0x11333,
    0x11335,0x11339, 0x1133D,0x1133D, 0x11350,0x11350, 0x1135D,0x11361, 0x11400,0x11434, 0x11447,0x1144A,
    0x1145F,0x11461, 0x11480,0x114AF, 0x114C4,0x114C5, 0x114C7,0x114C7, 0x11580,0x115AE, 0x115D8,0x115DB,
    0x11600,0x1162F, 0x11644,0x11644, 0x11680,0x116AA, 0x116B8,0x116B8, 0x11700,0x1171A, 0x11740,0x11746,
    0x11800,0x1182B, 0x118A0,0x118DF, 0x118FF,0x11906, 0x11909,0x11909, 0x1190C,0x11913, 0x11915,0x11916,
    0x11918,0x1192F, 0x1193F,0x1193F, 0x11941,0x11941, 0x119A0,0x119A7, 0x119AA,0x119D0, 0x119E1,0x119E1,
    0x119E3,0x119E3, 0x11A00,0x11A00, 0x11A0B,0x11A32, 0x11A3A,0x11A3A, 0x11A50,0x11A50, 0x11A5C,0x11A89,
    0x11A9D,0x11A9D, 0x11AB0,0x11AF8, 0x11C00,0x11C08, 0x11C0A,0x11C2E, 0x11C40,0x11C40, 0x11C72,0x11C8F,
    0x11D00,0x11D06, 0x11D08,0x11D09, 0x11D0B,0x11D30, 0x11D46,0x11D46, 0x11D60,0x11D65, 0x11D67,0x11D68,
    0x11D6A,0x11D89, 0x11D98,0x11D98, 0x11EE0,0x11EF2, 0x11FB0,0x11FB0, 0x12000,0x12399, 0x12480,0x12543,
    0x12F90,0x12FF0, 0x13000,0x1342E, 0x14400,0x14646, 0x16800,0x16A38, 0x16A40,0x16A5E, 0x16A70,0x16ABE,
    0x16AD0,0x16AED, 0x16B00,0x16B2F, 0x16B40,0x16B43, 0x16B63,0x16B77, 0x16B7D,0x16B8F, 0x16E40,0x16E7F,
    0x16F00,0x16F4A, 0x16F50,0x16F50, 0x16F93,0x16F9F, 0x16FE0,0x16FE1, 0x16FE3,0x16FE3, 0x17000,0x187F7,
    0x18800,0x18CD5, 0x18D00,0x18D08, 0x1AFF0,0x1AFF3, 0x1AFF5,0x1AFFB, 0x1AFFD,0x1AFFE, 0x1B000,0x1B122,
    0x1B150,0x1B152, 0x1B164,0x1B167, 0x1B170,0x1B2FB, 0x1BC00,0x1BC6A, 0x1BC70,0x1BC7C, 0x1BC80,0x1BC88,
    0x1BC90,0x1BC99, 0x1D400,0x1D454, 0x1D456,0x1D49C, 0x1D49E,0x1D49F, 0x1D4A2,0x1D4A2, 0x1D4A5,0x1D4A6,
    0x1D4A9,0x1D4AC, 0x1D4AE,0x1D4B9, 0x1D4BB,0x1D4BB, 0x1D4BD,0x1D4C3, 0x1D4C5,0x1D505, 0x1D507,0x1D50A,
    0x1D50D,0x1D514, 0x1D516,0x1D51C, 0x1D51E,0x1D539, 0x1D53B,0x1D53E, 0x1D540,0x1D544, 0x1D546,0x1D546,
    0x1D54A,0x1D550, 0x1D552,0x1D6A5, 0x1D6A8,0x1D6C0, 0x1D6C2,0x1D6DA, 0x1D6DC,0x1D6FA, 0x1D6FC,0x1D714,
    0x1D716,0x1D734, 0x1D736,0x1D74E, 0x1D750,0x1D76E, 0x1D770,0x1D788, 0x1D78A,0x1D7A8, 0x1D7AA,0x1D7C2,
    0x1D7C4,0x1D7CB, 0x1DF00,0x1DF1E, 0x1E100,0x1E12C, 0x1E137,0x1E13D, 0x1E14E,0x1E14E, 0x1E290,0x1E2AD,
    0x1E2C0,0x1E2EB, 0x1E7E0,0x1E7E6, 0x1E7E8,0x1E7EB, 0x1E7ED,0x1E7EE, 0x1E7F0,0x1E7FE, 0x1E800,0x1E8C4,
    0x1E900,0x1E943, 0x1E94B,0x1E94B, 0x1EE00,0x1EE03, 0x1EE05,0x1EE1F, 0x1EE21,0x1EE22, 0x1EE24,0x1EE24,
    0x1EE27,0x1EE27, 0x1EE29,0x1EE32, 0x1EE34,0x1EE37, 0x1EE39,0x1EE39, 0x1EE3B,0x1EE3B, 0x1EE42,0x1EE42,
    0x1EE47,0x1EE47, 0x1EE49,0x1EE49, 0x1EE4B,0x1EE4B, 0x1EE4D,0x1EE4F, 0x1EE51,0x1EE52, 0x1EE54,0x1EE54,
    0x1EE57,0x1EE57, 0x1EE59,0x1EE59, 0x1EE5B,0x1EE5B, 0x1EE5D,0x1EE5D, 0x1EE5F,0x1EE5F, 0x1EE61,0x1EE62,
    0x1EE64,0x1EE64, 0x1EE67,0x1EE6A, 0x1EE6C,0x1EE72, 0x1EE74,0x1EE77, 0x1EE79,0x1EE7C, 0x1EE7E,0x1EE7E,
    0x1EE80,0x1EE89, 0x1EE8B,0x1EE9B, 0x1EEA1,0x1EEA3, 0x1EEA5,0x1EEA9, 0x1EEAB,0x1EEBB, 0x20000,0x2A6DF,
    0x2A700,0x2B738, 0x2B740,0x2B81D, 0x2B820,0x2CEA1, 0x2CEB0,0x2EBE0, 0x2F800,0x2FA1D, 0x30000,0x3134A,
};
/* \p{N}: inclusive [lo, hi] pairs, sorted. */
static const uint32_t sdiff__tok_number_ranges[] = {
    0x30,0x39, 0xB2,0xB3, 0xB9,0xB9, 0xBC,0xBE, 0x660,0x669, 0x6F0,0x6F9,
    0x7C0,0x7C9, 0x966,0x96F, 0x9E6,0x9EF, 0x9F4,0x9F9, 0xA66,0xA6F, 0xAE6,0xAEF,
    0xB66,0xB6F, 0xB72,0xB77, 0xBE6,0xBF2, 0xC66,0xC6F, 0xC78,0xC7E, 0xCE6,0xCEF,
    0xD58,0xD5E, 0xD66,0xD78, 0xDE6,0xDEF, 0xE50,0xE59, 0xED0,0xED9, 0xF20,0xF33,
    0x1040,0x1049, 0x1090,0x1099, 0x1369,0x137C, 0x16EE,0x16F0, 0x17E0,0x17E9, 0x17F0,0x17F9,
    0x1810,0x1819, 0x1946,0x194F, 0x19D0,0x19DA, 0x1A80,0x1A89, 0x1A90,0x1A99, 0x1B50,0x1B59,
    0x1BB0,0x1BB9, 0x1C40,0x1C49, 0x1C50,0x1C59, 0x2070,0x2070, 0x2074,0x2079, 0x2080,0x2089,
    0x2150,0x2182, 0x2185,0x2189, 0x2460,0x249B, 0x24EA,0x24FF, 0x2776,0x2793, 0x2CFD,0x2CFD,
    0x3007,0x3007, 0x3021,0x3029, 0x3038,0x303A, 0x3192,0x3195, 0x3220,0x3229, 0x3248,0x324F,
    0x3251,0x325F, 0x3280,0x3289, 0x32B1,0x32BF, 0xA620,0xA629, 0xA6E6,0xA6EF, 0xA830,0xA835,
    0xA8D0,0xA8D9, 0xA900,0xA909, 0xA9D0,0xA9D9, 0xA9F0,0xA9F9, 0xAA50,0xAA59, 0xABF0,0xABF9,
    0xFF10,0xFF19, 0x10107,0x10133, 0x10140,0x10178, 0x1018A,0x1018B, 0x102E1,0x102FB, 0x10320,0x10323,
    0x10341,0x10341, 0x1034A,0x1034A, 0x103D1,0x103D5, 0x104A0,0x104A9, 0x10858,0x1085F, 0x10879,0x1087F,
    0x108A7,0x108AF, 0x108FB,0x108FF, 0x10916,0x1091B, 0x109BC,0x109BD, 0x109C0,0x109CF, 0x109D2,0x109FF,
    0x10A40,0x10A48, 0x10A7D,0x10A7E, 0x10A9D,0x10A9F, 0x10AEB,0x10AEF, 0x10B58,0x10B5F, 0x10B78,0x10B7F,
    0x10BA9,0x10BAF, 0x10CFA,0x10CFF, 0x10D30,0x10D39, 0x10E60,0x10E7E, 0x10F1D,0x10F26, 0x10F51,0x10F54,
    0x10FC5,0x10FCB, 0x11052,0x1106F, 0x110F0,0x110F9, 0x11136,0x1113F, 0x111D0,0x111D9, 0x111E1,0x111F4,
    0x112F0,0x112F9, 0x11450,0x11459, 0x114D0,0x114D9, 0x11650,0x11659, 0x116C0,0x116C9, 0x11730,0x1173B,
    0x118E0,0x118F2, 0x11950,0x11959, 0x11C50,0x11C6C, 0x11D50,0x11D59, 0x11DA0,0x11DA9, 0x11FC0,0x11FD4,
    0x12400,0x1246E, 0x16A60,0x16A69, 0x16AC0,0x16AC9, 0x16B50,0x16B59, 0x16B5B,0x16B61, 0x16E80,0x16E96,
    0x1D2E0,0x1D2F3, 0x1D360,0x1D378, 0x1D7CE,0x1D7FF, 0x1E140,0x1E149, 0x1E2F0,0x1E2F9, 0x1E8C7,0x1E8CF,
    0x1E950,0x1E959, 0x1EC71,0x1ECAB, 0x1ECAD,0x1ECAF, 0x1ECB1,0x1ECB4, 0x1ED01,0x1ED2D, 0x1ED2F,0x1ED3D,
    0x1F100,0x1F10C, 0x1FBF0,0x1FBF9,
};
/* Lowercase: {lo, hi, stride, delta}: lo, lo+stride, ... <= hi map to cp + delta. */
static const int32_t sdiff__tok_lower_runs[] = {
    0x41,0x5A,1,32, 0xC0,0xD6,1,32, 0xD8,0xDE,1,32, 0x100,0x12E,2,1,
    0x132,0x136,2,1, 0x139,0x147,2,1, 0x14A,0x176,2,1, 0x178,0x178,1,-121,
    0x179,0x17D,2,1, 0x181,0x181,1,210, 0x182,0x184,2,1, 0x186,0x186,1,206,
    0x187,0x187,1,1, 0x189,0x18A,1,205, 0x18B,0x18B,1,1, 0x18E,0x18E,1,79,
    0x18F,0x18F,1,202, 0x190,0x190,1,203, 0x191,0x191,1,1, 0x193,0x193,1,205,
    0x194,0x194,1,207, 0x196,0x196,1,211, 0x197,0x197,1,209, 0x198,0x198,1,1,
    0x19C,0x19C,1,211, 0x19D,0x19D,1,213, 0x19F,0x19F,1,214, 0x1A0,0x1A4,2,1,
    0x1A6,0x1A6,1,218, 0x1A7,0x1A7,1,1, 0x1A9,0x1A9,1,218, 0x1AC,0x1AC,1,1,
    0x1AE,0x1AE,1,218, 0x1AF,0x1AF,1,1, 0x1B1,0x1B2,1,217, 0x1B3,0x1B5,2,1,
    0x1B7,0x1B7,1,219, 0x1B8,0x1B8,1,1, 0x1BC,0x1BC,1,1, 0x1C4,0x1C4,1,2,
    0x1C5,0x1C5,1,1, 0x1C7,0x1C7,1,2, 0x1C8,0x1C8,1,1, 0x1CA,0x1CA,1,2,
    0x1CB,0x1DB,2,1, 0x1DE,0x1EE,2,1, 0x1F1,0x1F1,1,2, 0x1F2,0x1F4,2,1,
    0x1F6,0x1F6,1,-97, 0x1F7,0x1F7,1,-56, 0x1F8,0x21E,2,1, 0x220,0x220,1,-130,
    0x222,0x232,2,1, 0x23A,0x23A,1,10795, 0x23B,0x23B,1,1, 0x23D,0x23D,1,-163,
    0x23E,0x23E,1,10792, 0x241,0x241,1,1, 0x243,0x243,1,-195, 0x244,0x244,1,69,
    0x245,0x245,1,71, 0x246,0x24E,2,1, 0x370,0x372,2,1, 0x376,0x376,1,1,
    0x37F,0x37F,1,116, 0x386,0x386,1,38, 0x388,0x38A,1,37, 0x38C,0x38C,1,64,
    0x38E,0x38F,1,63, 0x391,0x3A1,1,32, 0x3A3,0x3AB,1,32, 0x3CF,0x3CF,1,8,
    0x3D8,0x3EE,2,1, 0x3F4,0x3F4,1,-60, 0x3F7,0x3F7,1,1, 0x3F9,0x3F9,1,-7,
    0x3FA,0x3FA,1,1, 0x3FD,0x3FF,1,-130, 0x400,0x40F,1,80, 0x410,0x42F,1,32,
    0x460,0x480,2,1, 0x48A,0x4BE,2,1, 0x4C0,0x4C0,1,15, 0x4C1,0x4CD,2,1,
    0x4D0,0x52E,2,1, 0x531,0x556,1,48, 0x10A0,0x10C5,1,7264, 0x10C7,0x10C7,1,7264,
    0x10CD,0x10CD,1,7264, 0x13A0,0x13EF,1,38864, 0x13F0,0x13F5,1,8, 0x1C90,0x1CBA,1,-3008,
    0x1CBD,0x1CBF,1,-3008, 0x1E00,0x1E94,2,1, 0x1E9E,0x1E9E,1,-7615, 0x1EA0,0x1EFE,2,1,
    0x1F08,0x1F0F,1,-8, 0x1F18,0x1F1D,1,-8, 0x1F28,0x1F2F,1,-8, 0x1F38,0x1F3F,1,-8,
    0x1F48,0x1F4D,1,-8, 0x1F59,0x1F5F,2,-8, 0x1F68,0x1F6F,1,-8, 0x1F88,0x1F8F,1,-8,
    0x1F98,0x1F9F,1,-8, 0x1FA8,0x1FAF,1,-8, 0x1FB8,0x1FB9,1,-8, 0x1FBA,0x1FBB,1,-74,
    0x1FBC,0x1FBC,1,-9, 0x1FC8,0x1FCB,1,-86, 0x1FCC,0x1FCC,1,-9, 0x1FD8,0x1FD9,1,-8,
    0x1FDA,0x1FDB,1,-100, 0x1FE8,0x1FE9,1,-8, 0x1FEA,0x1FEB,1,-112, 0x1FEC,0x1FEC,1,-7,
    0x1FF8,0x1FF9,1,-128, 0x1FFA,0x1FFB,1,-126, 0x1FFC,0x1FFC,1,-9, 0x2126,0x2126,1,-7517,
    0x212A,0x212A,1,-8383, 0x212B,0x212B,1,-8262, 0x2132,0x2132,1,28, 0x2160,0x216F,1,16,
    0x2183,0x2183,1,1, 0x24B6,0x24CF,1,26, 0x2C00,0x2C2F,1,48, 0x2C60,0x2C60,1,1,
    0x2C62,0x2C62,1,-10743, 0x2C63,0x2C63,1,-3814, 0x2C64,0x2C64,1,-10727, 0x2C67,0x2C6B,2,1,
    0x2C6D,0x2C6D,1,-10780, 0x2C6E,0x2C6E,1,-10749, 0x2C6F,0x2C6F,1,-10783, 0x2C70,0x2C70,1,-10782,
    0x2C72,0x2C72,1,1, 0x2C75,0x2C75,1,1, 0x2C7E,0x2C7F,1,-10815, 0x2C80,0x2CE2,2,1,
    0x2CEB,0x2CED,2,1, 0x2CF2,0x2CF2,1,1, 0xA640,0xA66C,2,1, 0xA680,0xA69A,2,1,
    0xA722,0xA72E,2,1, 0xA732,0xA76E,2,1, 0xA779,0xA77B,2,1, 0xA77D,0xA77D,1,-35332,
    0xA77E,0xA786,2,1, 0xA78B,0xA78B,1,1, 0xA78D,0xA78D,1,-42280, 0xA790,0xA792,2,1,
    0xA796,0xA7A8,2,1, 0xA7AA,0xA7AA,1,-42308, 0xA7AB,0xA7AB,1,-42319, 0xA7AC,0xA7AC,1,-42315,
    0xA7AD,0xA7AD,1,-42305, 0xA7AE,0xA7AE,1,-42308, 0xA7B0,0xA7B0,1,-42258, 0xA7B1,0xA7B1,1,-42282,
    0xA7B2,0xA7B2,1,-42261, 0xA7B3,0xA7B3,1,928, 0xA7B4,0xA7C2,2,1, 0xA7C4,0xA7C4,1,-48,
    0xA7C5,0xA7C5,1,-42307, 0xA7C6,0xA7C6,1,-35384, 0xA7C7,0xA7C9,2,1, 0xA7D0,0xA7D0,1,1,
    0xA7D6,0xA7D8,2,1, 0xA7F5,0xA7F5,1,1, 0xFF21,0xFF3A,1,32, 0x10400,0x10427,1,40,
    0x104B0,0x104D3,1,40, 0x10570,0x1057A,1,39, 0x1057C,0x1058A,1,39, 0x1058C,0x10592,1,39,
    0x10594,0x10595,1,39, 0x10C80,0x10CB2,1,64, 0x118A0,0x118BF,1,32, 0x16E40,0x16E5F,1,32,
    0x1E900,0x1E921,1,34,
};
/* Canonical combining class: {lo, hi, ccc}, non-zero only (decimal). */
static const uint32_t sdiff__tok_ccc_runs[] = {
    768,788,230, 789,789,232, 790,793,220, 794,794,232, 795,795,216, 796,800,220, 801,802,202, 803,806,220,
    807,808,202, 809,819,220, 820,824,1, 825,828,220, 829,836,230, 837,837,240, 838,838,230, 839,841,220,
    842,844,230, 845,846,220, 848,850,230, 851,854,220, 855,855,230, 856,856,232, 857,858,220, 859,859,230,
    860,860,233, 861,862,234, 863,863,233, 864,865,234, 866,866,233, 867,879,230, 1155,1159,230, 1425,1425,220,
    1426,1429,230, 1430,1430,220, 1431,1433,230, 1434,1434,222, 1435,1435,220, 1436,1441,230, 1442,1447,220, 1448,1449,230,
    1450,1450,220, 1451,1452,230, 1453,1453,222, 1454,1454,228, 1455,1455,230, 1456,1456,10, 1457,1457,11, 1458,1458,12,
    1459,1459,13, 1460,1460,14, 1461,1461,15, 1462,1462,16, 1463,1463,17, 1464,1464,18, 1465,1466,19, 1467,1467,20,
    1468,1468,21, 1469,1469,22, 1471,1471,23, 1473,1473,24, 1474,1474,25, 1476,1476,230, 1477,1477,220, 1479,1479,18,
    1552,1559,230, 1560,1560,30, 1561,1561,31, 1562,1562,32, 1611,1611,27, 1612,1612,28, 1613,1613,29, 1614,1614,30,
    1615,1615,31, 1616,1616,32, 1617,1617,33, 1618,1618,34, 1619,1620,230, 1621,1622,220, 1623,1627,230, 1628,1628,220,
    1629,1630,230, 1631,1631,220, 1648,1648,35, 1750,1756,230, 1759,1762,230, 1763,1763,220, 1764,1764,230, 1767,1768,230,
    1770,1770,220, 1771,1772,230, 1773,1773,220, 1809,1809,36, 1840,1840,230, 1841,1841,220, 1842,1843,230, 1844,1844,220,
    1845,1846,230, 1847,1849,220, 1850,1850,230, 1851,1852,220, 1853,1853,230, 1854,1854,220, 1855,1857,230, 1858,1858,220,
    1859,1859,230, 1860,1860,220, 1861,1861,230, 1862,1862,220, 1863,1863,230, 1864,1864,220, 1865,1866,230, 2027,2033,230,
    2034,2034,220, 2035,2035,230, 2045,2045,220, 2070,2073,230, 2075,2083,230, 2085,2087,230, 2089,2093,230, 2137,2139,220,
    2200,2200,230, 2201,2203,220, 2204,2207,230, 2250,2254,230, 2255,2259,220, 2260,2273,230, 2275,2275,220, 2276,2277,230,
    2278,2278,220, 2279,2280,230, 2281,2281,220, 2282,2284,230, 2285,2287,220, 2288,2288,27, 2289,2289,28, 2290,2290,29,
    2291,2293,230, 2294,2294,220, 2295,2296,230, 2297,2298,220, 2299,2303,230, 2364,2364,7, 2381,2381,9, 2385,2385,230,
    2386,2386,220, 2387,2388,230, 2492,2492,7, 2509,2509,9, 2558,2558,230, 2620,2620,7, 2637,2637,9, 2748,2748,7,
    2765,2765,9, 2876,2876,7, 2893,2893,9, 3021,3021,9, 3132,3132,7, 3149,3149,9, 3157,3157,84, 3158,3158,91,
    3260,3260,7, 3277,3277,9, 3387,3388,9, 3405,3405,9, 3530,3530,9, 3640,3641,103, 3642,3642,9, 3656,3659,107,
    3768,3769,118, 3770,3770,9, 3784,3787,122, 3864,3865,220, 3893,3893,220, 3895,3895,220, 3897,3897,216, 3953,3953,129,
    3954,3954,130, 3956,3956,132, 3962,3965,130, 3968,3968,130, 3970,3971,230, 3972,3972,9, 3974,3975,230, 4038,4038,220,
    4151,4151,7, 4153,4154,9, 4237,4237,220, 4957,4959,230, 5908,5909,9, 5940,5940,9, 6098,6098,9, 6109,6109,230,
    6313,6313,228, 6457,6457,222, 6458,6458,230, 6459,6459,220, 6679,6679,230, 6680,6680,220, 6752,6752,9, 6773,6780,230,
    6783,6783,220, 6832,6836,230, 6837,6842,220, 6843,6844,230, 6845,6845,220, 6847,6848,220, 6849,6850,230, 6851,6852,220,
    6853,6857,230, 6858,6858,220, 6859,6862,230, 6964,6964,7, 6980,6980,9, 7019,7019,230, 7020,7020,220, 7021,7027,230,
    7082,7083,9, 7142,7142,7, 7154,7155,9, 7223,7223,7, 7376,7378,230, 7380,7380,1, 7381,7385,220, 7386,7387,230,
    7388,7391,220, 7392,7392,230, 7394,7400,1, 7405,7405,220, 7412,7412,230, 7416,7417,230, 7616,7617,230, 7618,7618,220,
    7619,7625,230, 7626,7626,220, 7627,7628,230, 7629,7629,234, 7630,7630,214, 7631,7631,220, 7632,7632,202, 7633,7669,230,
    7670,7670,232, 7671,7672,228, 7673,7673,220, 7674,7674,218, 7675,7675,230, 7676,7676,233, 7677,7677,220, 7678,7678,230,
    7679,7679,220, 8400,8401,230, 8402,8403,1, 8404,8407,230, 8408,8410,1, 8411,8412,230, 8417,8417,230, 8421,8422,1,
    8423,8423,230, 8424,8424,220, 8425,8425,230, 8426,8427,1, 8428,8431,220, 8432,8432,230, 11503,11505,230, 11647,11647,9,
    11744,11775,230, 12330,12330,218, 12331,12331,228, 12332,12332,232, 12333,12333,222, 12334,12335,224, 12441,12442,8, 42607,42607,230,
    42612,42621,230, 42654,42655,230, 42736,42737,230, 43014,43014,9, 43052,43052,9, 43204,43204,9, 43232,43249,230, 43307,43309,220,
    43347,43347,9, 43443,43443,7, 43456,43456,9, 43696,43696,230, 43698,43699,230, 43700,43700,220, 43703,43704,230, 43710,43711,230,
    43713,43713,230, 43766,43766,9, 44013,44013,9, 64286,64286,26, 65056,65062,230, 65063,65069,220, 65070,65071,230, 66045,66045,220,
    66272,66272,220, 66422,66426,230, 68109,68109,220, 68111,68111,230, 68152,68152,230, 68153,68153,1, 68154,68154,220, 68159,68159,9,
    68325,68325,230, 68326,68326,220, 68900,68903,230, 69291,69292,230, 69446,69447,220, 69448,69450,230, 69451,69451,220, 69452,69452,230,
    69453,69456,220, 69506,69506,230, 69507,69507,220, 69508,69508,230, 69509,69509,220, 69702,69702,9, 69744,69744,9, 69759,69759,9,
    69817,69817,9, 69818,69818,7, 69888,69890,230, 69939,69940,9, 70003,70003,7, 70080,70080,9, 70090,70090,7, 70197,70197,9,
    70198,70198,7, 70377,70377,7, 70378,70378,9, 70459,70460,7, 70477,70477,9, 70502,70508,230, 70512,70516,230, 70722,70722,9,
    70726,70726,7, 70750,70750,230, 70850,70850,9, 70851,70851,7, 71103,71103,9, 71104,71104,7, 71231,71231,9, 71350,71350,9,
    71351,71351,7, 71467,71467,9, 71737,71737,9, 71738,71738,7, 71997,71998,9, 72003,72003,7, 72160,72160,9, 72244,72244,9,
    72263,72263,9, 72345,72345,9, 72767,72767,9, 73026,73026,7, 73028,73029,9, 73111,73111,9, 92912,92916,1, 92976,92982,230,
    94192,94193,6, 113822,113822,1, 119141,119142,216, 119143,119145,1, 119149,119149,226, 119150,119154,216, 119163,119170,220, 119173,119177,230,
    119178,119179,220, 119210,119213,230, 119362,119364,230, 122880,122886,230, 122888,122904,230, 122907,122913,230, 122915,122916,230, 122918,122922,230,
    123184,123190,230, 123566,123566,230, 123628,123631,230, 125136,125142,220, 125252,125257,230, 125258,125258,7,
};
/* Canonical decompositions, one level: {cp, first, second (0: singleton)}, sorted by cp (decimal). */
static const uint32_t sdiff__tok_decomp[] = {
    192,65,768, 193,65,769, 194,65,770, 195,65,771, 196,65,776, 197,65,778,
    199,67,807, 200,69,768, 201,69,769, 202,69,770, 203,69,776, 204,73,768,
    205,73,769, 206,73,770, 207,73,776, 209,78,771, 210,79,768, 211,79,769,
    212,79,770, 213,79,771, 214,79,776, 217,85,768, 218,85,769, 219,85,770,
    220,85,776, 221,89,769, 224,97,768, 225,97,769, 226,97,770, 227,97,771,
    228,97,776, 229,97,778, 231,99,807, 232,101,768, 233,101,769, 234,101,770,
    235,101,776, 236,105,768, 237,105,769, 238,105,770, 239,105,776, 241,110,771,
    242,111,768, 243,111,769, 244,111,770, 245,111,771, 246,111,776, 249,117,768,
    250,117,769, 251,117,770, 252,117,776, 253,121,769, 255,121,776, 256,65,772,
    257,97,772, 258,65,774, 259,97,774, 260,65,808, 261,97,808, 262,67,769,
    263,99,769, 264,67,770, 265,99,770, 266,67,775, 267,99,775, 268,67,780,
    269,99,780, 270,68,780, 271,100,780, 274,69,772, 275,101,772, 276,69,774,
    277,101,774, 278,69,775, 279,101,775, 280,69,808, 281,101,808, 282,69,780,
    283,101,780, 284,71,770, 285,103,770, 286,71,774, 287,103,774, 288,71,775,
    289,103,775, 290,71,807, 291,103,807, 292,72,770, 293,104,770, 296,73,771,
    297,105,771, 298,73,772, 299,105,772, 300,73,774, 301,105,774, 302,73,808,
    303,105,808, 304,73,775, 308,74,770, 309,106,770, 310,75,807, 311,107,807,
    313,76,769, 314,108,769, 315,76,807, 316,108,807, 317,76,780, 318,108,780,
    323,78,769, 324,110,769, 325,78,807, 326,110,807, 327,78,780, 328,110,780,
    332,79,772, 333,111,772, 334,79,774, 335,111,774, 336,79,779, 337,111,779,
    340,82,769, 341,114,769, 342,82,807, 343,114,807, 344,82,780, 345,114,780,
    346,83,769, 347,115,769, 348,83,770, 349,115,770, 350,83,807, 351,115,807,
    352,83,780, 353,115,780, 354,84,807, 355,116,807, 356,84,780, 357,116,780,
    360,85,771, 361,117,771, 362,85,772, 363,117,772, 364,85,774, 365,117,774,
    366,85,778, 367,117,778, 368,85,779, 369,117,779, 370,85,808, 371,117,808,
    372,87,770, 373,119,770, 374,89,770, 375,121,770, 376,89,776, 377,90,769,
    378,122,769, 379,90,775, 380,122,775, 381,90,780, 382,122,780, 416,79,795,
    417,111,795, 431,85,795, 432,117,795, 461,65,780, 462,97,780, 463,73,780,
    464,105,780, 465,79,780, 466,111,780, 467,85,780, 468,117,780, 469,220,772,
    470,252,772, 471,220,769, 472,252,769, 473,220,780, 474,252,780, 475,220,768,
    476,252,768, 478,196,772, 479,228,772, 480,550,772, 481,551,772, 482,198,772,
    483,230,772, 486,71,780, 487,103,780, 488,75,780, 489,107,780, 490,79,808,
    491,111,808, 492,490,772, 493,491,772, 494,439,780, 495,658,780, 496,106,780,
    500,71,769, 501,103,769, 504,78,768, 505,110,768, 506,197,769, 507,229,769,
    508,198,769, 509,230,769, 510,216,769, 511,248,769, 512,65,783, 513,97,783,
    514,65,785, 515,97,785, 516,69,783, 517,101,783, 518,69,785, 519,101,785,
    520,73,783, 521,105,783, 522,73,785, 523,105,785, 524,79,783, 525,111,783,
    526,79,785, 527,111,785, 528,82,783, 529,114,783, 530,82,785, 531,114,785,
    532,85,783, 533,117,783, 534,85,785, 535,117,785, 536,83,806, 537,115,806,
    538,84,806, 539,116,806, 542,72,780, 543,104,780, 550,65,775, 551,97,775,
    552,69,807, 553,101,807, 554,214,772, 555,246,772, 556,213,772, 557,245,772,
    558,79,775, 559,111,775, 560,558,772, 561,559,772, 562,89,772, 563,121,772,
    832,768,0, 833,769,0, 835,787,0, 836,776,769, 884,697,0, 894,59,0,
    901,168,769, 902,913,769, 903,183,0, 904,917,769, 905,919,769, 906,921,769,
    908,927,769, 910,933,769, 911,937,769, 912,970,769, 938,921,776, 939,933,776,
    940,945,769, 941,949,769, 942,951,769, 943,953,769, 944,971,769, 970,953,776,
    971,965,776, 972,959,769, 973,965,769, 974,969,769, 979,978,769, 980,978,776,
    1024,1045,768, 1025,1045,776, 1027,1043,769, 1031,1030,776, 1036,1050,769, 1037,1048,768,
    1038,1059,774, 1049,1048,774, 1081,1080,774, 1104,1077,768, 1105,1077,776, 1107,1075,769,
    1111,1110,776, 1116,1082,769, 1117,1080,768, 1118,1091,774, 1142,1140,783, 1143,1141,783,
    1217,1046,774, 1218,1078,774, 1232,1040,774, 1233,1072,774, 1234,1040,776, 1235,1072,776,
    1238,1045,774, 1239,1077,774, 1242,1240,776, 1243,1241,776, 1244,1046,776, 1245,1078,776,
    1246,1047,776, 1247,1079,776, 1250,1048,772, 1251,1080,772, 1252,1048,776, 1253,1080,776,
    1254,1054,776, 1255,1086,776, 1258,1256,776, 1259,1257,776, 1260,1069,776, 1261,1101,776,
    1262,1059,772, 1263,1091,772, 1264,1059,776, 1265,1091,776, 1266,1059,779, 1267,1091,779,
    1268,1063,776, 1269,1095,776, 1272,1067,776, 1273,1099,776, 1570,1575,1619, 1571,1575,1620,
    1572,1608,1620, 1573,1575,1621, 1574,1610,1620, 1728,1749,1620, 1730,1729,1620, 1747,1746,1620,
    2345,2344,2364, 2353,2352,2364, 2356,2355,2364, 2392,2325,2364, 2393,2326,2364, 2394,2327,2364,
    2395,2332,2364, 2396,2337,2364, 2397,2338,2364, 2398,2347,2364, 2399,2351,2364, 2507,2503,2494,
    2508,2503,2519, 2524,2465,2492, 2525,2466,2492, 2527,2479,2492, 2611,2610,2620, 2614,2616,2620,
    2649,2582,2620, 2650,2583,2620, 2651,2588,2620, 2654,2603,2620, 2888,2887,2902, 2891,2887,2878,
    2892,2887,2903, 2908,2849,2876, 2909,2850,2876, 2964,2962,3031, 3018,3014,3006, 3019,3015,3006,
    3020,3014,3031, 3144,3142,3158, 3264,3263,3285, 3271,3270,3285, 3272,3270,3286, 3274,3270,3266,
    3275,3274,3285, 3402,3398,3390, 3403,3399,3390, 3404,3398,3415, 3546,3545,3530, 3548,3545,3535,
    3549,3548,3530, 3550,3545,3551, 3907,3906,4023, 3917,3916,4023, 3922,3921,4023, 3927,3926,4023,
    3932,3931,4023, 3945,3904,4021, 3955,3953,3954, 3957,3953,3956, 3958,4018,3968, 3960,4019,3968,
    3969,3953,3968, 3987,3986,4023, 3997,3996,4023, 4002,4001,4023, 4007,4006,4023, 4012,4011,4023,
    4025,3984,4021, 4134,4133,4142, 6918,6917,6965, 6920,6919,6965, 6922,6921,6965, 6924,6923,6965,
    6926,6925,6965, 6930,6929,6965, 6971,6970,6965, 6973,6972,6965, 6976,6974,6965, 6977,6975,6965,
    6979,6978,6965, 7680,65,805, 7681,97,805, 7682,66,775, 7683,98,775, 7684,66,803,
    7685,98,803, 7686,66,817, 7687,98,817, 7688,199,769, 7689,231,769, 7690,68,775,
    7691,100,775, 7692,68,803, 7693,100,803, 7694,68,817, 7695,100,817, 7696,68,807,
    7697,100,807, 7698,68,813, 7699,100,813, 7700,274,768, 7701,275,768, 7702,274,769,
    7703,275,769, 7704,69,813, 7705,101,813, 7706,69,816, 7707,101,816, 7708,552,774,
    7709,553,774, 7710,70,775, 7711,102,775, 7712,71,772, 7713,103,772, 7714,72,775,
    7715,104,775, 7716,72,803, 7717,104,803, 7718,72,776, 7719,104,776, 7720,72,807,
    7721,104,807, 7722,72,814, 7723,104,814, 7724,73,816, 7725,105,816, 7726,207,769,
    7727,239,769, 7728,75,769, 7729,107,769, 7730,75,803, 7731,107,803, 7732,75,817,
    7733,107,817, 7734,76,803, 7735,108,803, 7736,7734,772, 7737,7735,772, 7738,76,817,
    7739,108,817, 7740,76,813, 7741,108,813, 7742,77,769, 7743,109,769, 7744,77,775,
    7745,109,775, 7746,77,803, 7747,109,803, 7748,78,775, 7749,110,775, 7750,78,803,
    7751,110,803, 7752,78,817, 7753,110,817, 7754,78,813, 7755,110,813, 7756,213,769,
    7757,245,769, 7758,213,776, 7759,245,776, 7760,332,768, 7761,333,768, 7762,332,769,
    7763,333,769, 7764,80,769, 7765,112,769, 7766,80,775, 7767,112,775, 7768,82,775,
    7769,114,775, 7770,82,803, 7771,114,803, 7772,7770,772, 7773,7771,772, 7774,82,817,
    7775,114,817, 7776,83,775, 7777,115,775, 7778,83,803, 7779,115,803, 7780,346,775,
    7781,347,775, 7782,352,775, 7783,353,775, 7784,7778,775, 7785,7779,775, 7786,84,775,
    7787,116,775, 7788,84,803, 7789,116,803, 7790,84,817, 7791,116,817, 7792,84,813,
    7793,116,813, 7794,85,804, 7795,117,804, 7796,85,816, 7797,117,816, 7798,85,813,
    7799,117,813, 7800,360,769, 7801,361,769, 7802,362,776, 7803,363,776, 7804,86,771,
    7805,118,771, 7806,86,803, 7807,118,803, 7808,87,768, 7809,119,768, 7810,87,769,
    7811,119,769, 7812,87,776, 7813,119,776, 7814,87,775, 7815,119,775, 7816,87,803,
    7817,119,803, 7818,88,775, 7819,120,775, 7820,88,776, 7821,120,776, 7822,89,775,
    7823,121,775, 7824,90,770, 7825,122,770, 7826,90,803, 7827,122,803, 7828,90,817,
    7829,122,817, 7830,104,817, 7831,116,776, 7832,119,778, 7833,121,778, 7835,383,775,
    7840,65,803, 7841,97,803, 7842,65,777, 7843,97,777, 7844,194,769, 7845,226,769,
    7846,194,768, 7847,226,768, 7848,194,777, 7849,226,777, 7850,194,771, 7851,226,771,
    7852,7840,770, 7853,7841,770, 7854,258,769, 7855,259,769, 7856,258,768, 7857,259,768,
    7858,258,777, 7859,259,777, 7860,258,771, 7861,259,771, 7862,7840,774, 7863,7841,774,
    7864,69,803, 7865,101,803, 7866,69,777, 7867,101,777, 7868,69,771, 7869,101,771,
    7870,202,769, 7871,234,769, 7872,202,768, 7873,234,768, 7874,202,777, 7875,234,777,
    7876,202,771, 7877,234,771, 7878,7864,770, 7879,7865,770, 7880,73,777, 7881,105,777,
    7882,73,803, 7883,105,803, 7884,79,803, 7885,111,803, 7886,79,777, 7887,111,777,
    7888,212,769, 7889,244,769, 7890,212,768, 7891,244,768, 7892,212,777, 7893,244,777,
    7894,212,771, 7895,244,771, 7896,7884,770, 7897,7885,770, 7898,416,769, 7899,417,769,
    7900,416,768, 7901,417,768, 7902,416,777, 7903,417,777, 7904,416,771, 7905,417,771,
    7906,416,803, 7907,417,803, 7908,85,803, 7909,117,803, 7910,85,777, 7911,117,777,
    7912,431,769, 7913,432,769, 7914,431,768, 7915,432,768, 7916,431,777, 7917,432,777,
    7918,431,771, 7919,432,771, 7920,431,803, 7921,432,803, 7922,89,768, 7923,121,768,
    7924,89,803, 7925,121,803, 7926,89,777, 7927,121,777, 7928,89,771, 7929,121,771,
    7936,945,787, 7937,945,788, 7938,7936,768, 7939,7937,768, 7940,7936,769, 7941,7937,769,
    7942,7936,834, 7943,7937,834, 7944,913,787, 7945,913,788, 7946,7944,768, 7947,7945,768,
    7948,7944,769, 7949,7945,769, 7950,7944,834, 7951,7945,834, 7952,949,787, 7953,949,788,
    7954,7952,768, 7955,7953,768, 7956,7952,769, 7957,7953,769, 7960,917,787, 7961,917,788,
    7962,7960,768, 7963,7961,768, 7964,7960,769, 7965,7961,769, 7968,951,787, 7969,951,788,
    7970,7968,768, 7971,7969,768, 7972,7968,769, 7973,7969,769, 7974,7968,834, 7975,7969,834,
    7976,919,787, 7977,919,788, 7978,7976,768, 7979,7977,768, 7980,7976,769, 7981,7977,769,
    7982,7976,834, 7983,7977,834, 7984,953,787, 7985,953,788, 7986,7984,768, 7987,7985,768,
    7988,7984,769, 7989,7985,769, 7990,7984,834, 7991,7985,834, 7992,921,787, 7993,921,788,
    7994,7992,768, 7995,7993,768, 7996,7992,769, 7997,7993,769, 7998,7992,834, 7999,7993,834,
    8000,959,787, 8001,959,788, 8002,8000,768, 8003,8001,768, 8004,8000,769, 8005,8001,769,
    8008,927,787, 8009,927,788, 8010,8008,768, 8011,8009,768, 8012,8008,769, 8013,8009,769,
    8016,965,787, 8017,965,788, 8018,8016,768, 8019,8017,768, 8020,8016,769, 8021,8017,769,
    8022,8016,834, 8023,8017,834, 8025,933,788, 8027,8025,768, 8029,8025,769, 8031,8025,834,
    8032,969,787, 8033,969,788, 8034,8032,768, 8035,8033,768, 8036,8032,769, 8037,8033,769,
    8038,8032,834, 8039,8033,834, 8040,937,787, 8041,937,788, 8042,8040,768, 8043,8041,768,
    8044,8040,769, 8045,8041,769, 8046,8040,834, 8047,8041,834, 8048,945,768, 8049,940,0,
    8050,949,768, 8051,941,0, 8052,951,768, 8053,942,0, 8054,953,768, 8055,943,0,
    8056,959,768, 8057,972,0, 8058,965,768, 8059,973,0, 8060,969,768, 8061,974,0,
    8064,7936,837, 8065,7937,837, 8066,7938,837, 8067,7939,837, 8068,7940,837, 8069,7941,837,
    8070,7942,837, 8071,7943,837, 8072,7944,837, 8073,7945,837, 8074,7946,837, 8075,7947,837,
    8076,7948,837, 8077,7949,837, 8078,7950,837, 8079,7951,837, 8080,7968,837, 8081,7969,837,
    8082,7970,837, 8083,7971,837, 8084,7972,837, 8085,7973,837, 8086,7974,837, 8087,7975,837,
    8088,7976,837, 8089,7977,837, 8090,7978,837, 8091,7979,837, 8092,7980,837, 8093,7981,837,
    8094,7982,837, 8095,7983,837, 8096,8032,837, 8097,8033,837, 8098,8034,837, 8099,8035,837,
    8100,8036,837, 8101,8037,837, 8102,8038,837, 8103,8039,837, 8104,8040,837, 8105,8041,837,
    8106,8042,837, 8107,8043,837, 8108,8044,837, 8109,8045,837, 8110,8046,837, 8111,8047,837,
    8112,945,774, 8113,945,772, 8114,8048,837, 8115,945,837, 8116,940,837, 8118,945,834,
    8119,8118,837, 8120,913,774, 8121,913,772, 8122,913,768, 8123,902,0, 8124,913,837,
    8126,953,0, 8129,168,834, 8130,8052,837, 8131,951,837, 8132,942,837, 8134,951,834,
    8135,8134,837, 8136,917,768, 8137,904,0, 8138,919,768, 8139,905,0, 8140,919,837,
    8141,8127,768, 8142,8127,769, 8143,8127,834, 8144,953,774, 8145,953,772, 8146,970,768,
    8147,912,0, 8150,953,834, 8151,970,834, 8152,921,774, 8153,921,772, 8154,921,768,
    8155,906,0, 8157,8190,768, 8158,8190,769, 8159,8190,834, 8160,965,774, 8161,965,772,
    8162,971,768, 8163,944,0, 8164,961,787, 8165,961,788, 8166,965,834, 8167,971,834,
    8168,933,774, 8169,933,772, 8170,933,768, 8171,910,0, 8172,929,788, 8173,168,768,
    8174,901,0, 8175,96,0, 8178,8060,837, 8179,969,837, 8180,974,837, 8182,969,834,
    8183,8182,837, 8184,927,768, 8185,908,0, 8186,937,768, 8187,911,0, 8188,937,837,
    8189,180,0, 8192,8194,0, 8193,8195,0, 8486,937,0, 8490,75,0, 8491,197,0,
    8602,8592,824, 8603,8594,824, 8622,8596,824, 8653,8656,824, 8654,8660,824, 8655,8658,824,
    8708,8707,824, 8713,8712,824, 8716,8715,824, 8740,8739,824, 8742,8741,824, 8769,8764,824,
    8772,8771,824, 8775,8773,824, 8777,8776,824, 8800,61,824, 8802,8801,824, 8813,8781,824,
    8814,60,824, 8815,62,824, 8816,8804,824, 8817,8805,824, 8820,8818,824, 8821,8819,824,
    8824,8822,824, 8825,8823,824, 8832,8826,824, 8833,8827,824, 8836,8834,824, 8837,8835,824,
    8840,8838,824, 8841,8839,824, 8876,8866,824, 8877,8872,824, 8878,8873,824, 8879,8875,824,
    8928,8828,824, 8929,8829,824, 8930,8849,824, 8931,8850,824, 8938,8882,824, 8939,8883,824,
    8940,8884,824, 8941,8885,824, 9001,12296,0, 9002,12297,0, 10972,10973,824, 12364,12363,12441,
    12366,12365,12441, 12368,12367,12441, 12370,12369,12441, 12372,12371,12441, 12374,12373,12441, 12376,12375,12441,
    12378,12377,12441, 12380,12379,12441, 12382,12381,12441, 12384,12383,12441, 12386,12385,12441, 12389,12388,12441,
    12391,12390,12441, 12393,12392,12441, 12400,12399,12441, 12401,12399,12442, 12403,12402,12441, 12404,12402,12442,
    12406,12405,12441, 12407,12405,12442, 12409,12408,12441, 12410,12408,12442, 12412,12411,12441, 12413,12411,12442,
    12436,12358,12441, 12446,12445,12441, 12460,12459,12441, 12462,12461,12441, 12464,12463,12441, 12466,12465,12441,
    12468,12467,12441, 12470,12469,12441, 12472,12471,12441, 12474,12473,12441, 12476,12475,12441, 12478,12477,12441,
    12480,12479,12441, 12482,12481,12441, 12485,12484,12441, 12487,12486,12441, 12489,12488,12441, 12496,12495,12441,
    12497,12495,12442, 12499,12498,12441, 12500,12498,12442, 12502,12501,12441, 12503,12501,12442, 12505,12504,12441,
    12506,12504,12442, 12508,12507,12441, 12509,12507,12442, 12532,12454,12441, 12535,12527,12441, 12536,12528,12441,
    12537,12529,12441, 12538,12530,12441, 12542,12541,12441, 63744,35912,0, 63745,26356,0, 63746,36554,0,
    63747,36040,0, 63748,28369,0, 63749,20018,0, 63750,21477,0, 63751,40860,0, 63752,40860,0,
    63753,22865,0, 63754,37329,0, 63755,21895,0, 63756,22856,0, 63757,25078,0, 63758,30313,0,
    63759,32645,0, 63760,34367,0, 63761,34746,0, 63762,35064,0, 63763,37007,0, 63764,27138,0,
    63765,27931,0, 63766,28889,0, 63767,29662,0, 63768,33853,0, 63769,37226,0, 63770,39409,0,
    63771,20098,0, 63772,21365,0, 63773,27396,0, 63774,29211,0, 63775,34349,0, 63776,40478,0,
    63777,23888,0, 63778,28651,0, 63779,34253,0, 63780,35172,0, 63781,25289,0, 63782,33240,0,
    63783,34847,0, 63784,24266,0, 63785,26391,0, 63786,28010,0, 63787,29436,0, 63788,37070,0,
    63789,20358,0, 63790,20919,0, 63791,21214,0, 63792,25796,0, 63793,27347,0, 63794,29200,0,
    63795,30439,0, 63796,32769,0, 63797,34310,0, 63798,34396,0, 63799,36335,0, 63800,38706,0,
    63801,39791,0, 63802,40442,0, 63803,30860,0, 63804,31103,0, 63805,32160,0, 63806,33737,0,
    63807,37636,0, 63808,40575,0, 63809,35542,0, 63810,22751,0, 63811,24324,0, 63812,31840,0,
    63813,32894,0, 63814,29282,0, 63815,30922,0, 63816,36034,0, 63817,38647,0, 63818,22744,0,
    63819,23650,0, 63820,27155,0, 63821,28122,0, 63822,28431,0, 63823,32047,0, 63824,32311,0,
    63825,38475,0, 63826,21202,0, 63827,32907,0, 63828,20956,0, 63829,20940,0, 63830,31260,0,
    63831,32190,0, 63832,33777,0, 63833,38517,0, 63834,35712,0, 63835,25295,0, 63836,27138,0,
    63837,35582,0, 63838,20025,0, 63839,23527,0, 63840,24594,0, 63841,29575,0, 63842,30064,0,
    63843,21271,0, 63844,30971,0, 63845,20415,0, 63846,24489,0, 63847,19981,0, 63848,27852,0,
    63849,25976,0, 63850,32034,0, 63851,21443,0, 63852,22622,0, 63853,30465,0, 63854,33865,0,
    63855,35498,0, 63856,27578,0, 63857,36784,0, 63858,27784,0, 63859,25342,0, 63860,33509,0,
    63861,25504,0, 63862,30053,0, 63863,20142,0, 63864,20841,0, 63865,20937,0, 63866,26753,0,
    63867,31975,0, 63868,33391,0, 63869,35538,0, 63870,37327,0, 63871,21237,0, 63872,21570,0,
    63873,22899,0, 63874,24300,0, 63875,26053,0, 63876,28670,0, 63877,31018,0, 63878,38317,0,
    63879,39530,0, 63880,40599,0, 63881,40654,0, 63882,21147,0, 63883,26310,0, 63884,27511,0,
    63885,36706,0, 63886,24180,0, 63887,24976,0, 63888,25088,0, 63889,25754,0, 63890,28451,0,
    63891,29001,0, 63892,29833,0, 63893,31178,0, 63894,32244,0, 63895,32879,0, 63896,36646,0,
    63897,34030,0, 63898,36899,0, 63899,37706,0, 63900,21015,0, 63901,21155,0, 63902,21693,0,
    63903,28872,0, 63904,35010,0, 63905,35498,0, 63906,24265,0, 63907,24565,0, 63908,25467,0,
    63909,27566,0, 63910,31806,0, 63911,29557,0, 63912,20196,0, 63913,22265,0, 63914,23527,0,
    63915,23994,0, 63916,24604,0, 63917,29618,0, 63918,29801,0, 63919,32666,0, 63920,32838,0,
    63921,37428,0, 63922,38646,0, 63923,38728,0, 63924,38936,0, 63925,20363,0, 63926,31150,0,
    63927,37300,0, 63928,38584,0, 63929,24801,0, 63930,20102,0, 63931,20698,0, 63932,23534,0,
    63933,23615,0, 63934,26009,0, 63935,27138,0, 63936,29134,0, 63937,30274,0, 63938,34044,0,
    63939,36988,0, 63940,40845,0, 63941,26248,0, 63942,38446,0, 63943,21129,0, 63944,26491,0,
    63945,26611,0, 63946,27969,0, 63947,28316,0, 63948,29705,0, 63949,30041,0, 63950,30827,0,
    63951,32016,0, 63952,39006,0, 63953,20845,0, 63954,25134,0, 63955,38520,0, 63956,20523,0,
    63957,23833,0, 63958,28138,0, 63959,36650,0, 63960,24459,0, 63961,24900,0, 63962,26647,0,
    63963,29575,0, 63964,38534,0, 63965,21033,0, 63966,21519,0, 63967,23653,0, 63968,26131,0,
    63969,26446,0, 63970,26792,0, 63971,27877,0, 63972,29702,0, 63973,30178,0, 63974,32633,0,
    63975,35023,0, 63976,35041,0, 63977,37324,0, 63978,38626,0, 63979,21311,0, 63980,28346,0,
    63981,21533,0, 63982,29136,0, 63983,29848,0, 63984,34298,0, 63985,38563,0, 63986,40023,0,
    63987,40607,0, 63988,26519,0, 63989,28107,0, 63990,33256,0, 63991,31435,0, 63992,31520,0,
    63993,31890,0, 63994,29376,0, 63995,28825,0, 63996,35672,0, 63997,20160,0, 63998,33590,0,
    63999,21050,0, 64000,20999,0, 64001,24230,0, 64002,25299,0, 64003,31958,0, 64004,23429,0,
    64005,27934,0, 64006,26292,0, 64007,36667,0, 64008,34892,0, 64009,38477,0, 64010,35211,0,
    64011,24275,0, 64012,20800,0, 64013,21952,0, 64016,22618,0, 64018,26228,0, 64021,20958,0,
    64022,29482,0, 64023,30410,0, 64024,31036,0, 64025,31070,0, 64026,31077,0, 64027,31119,0,
    64028,38742,0, 64029,31934,0, 64030,32701,0, 64032,34322,0, 64034,35576,0, 64037,36920,0,
    64038,37117,0, 64042,39151,0, 64043,39164,0, 64044,39208,0, 64045,40372,0, 64046,37086,0,
    64047,38583,0, 64048,20398,0, 64049,20711,0, 64050,20813,0, 64051,21193,0, 64052,21220,0,
    64053,21329,0, 64054,21917,0, 64055,22022,0, 64056,22120,0, 64057,22592,0, 64058,22696,0,
    64059,23652,0, 64060,23662,0, 64061,24724,0, 64062,24936,0, 64063,24974,0, 64064,25074,0,
    64065,25935,0, 64066,26082,0, 64067,26257,0, 64068,26757,0, 64069,28023,0, 64070,28186,0,
    64071,28450,0, 64072,29038,0, 64073,29227,0, 64074,29730,0, 64075,30865,0, 64076,31038,0,
    64077,31049,0, 64078,31048,0, 64079,31056,0, 64080,31062,0, 64081,31069,0, 64082,31117,0,
    64083,31118,0, 64084,31296,0, 64085,31361,0, 64086,31680,0, 64087,32244,0, 64088,32265,0,
    64089,32321,0, 64090,32626,0, 64091,32773,0, 64092,33261,0, 64093,33401,0, 64094,33401,0,
    64095,33879,0, 64096,35088,0, 64097,35222,0, 64098,35585,0, 64099,35641,0, 64100,36051,0,
    64101,36104,0, 64102,36790,0, 64103,36920,0, 64104,38627,0, 64105,38911,0, 64106,38971,0,
    64107,24693,0, 64108,148206,0, 64109,33304,0, 64112,20006,0, 64113,20917,0, 64114,20840,0,
    64115,20352,0, 64116,20805,0, 64117,20864,0, 64118,21191,0, 64119,21242,0, 64120,21917,0,
    64121,21845,0, 64122,21913,0, 64123,21986,0, 64124,22618,0, 64125,22707,0, 64126,22852,0,
    64127,22868,0, 64128,23138,0, 64129,23336,0, 64130,24274,0, 64131,24281,0, 64132,24425,0,
    64133,24493,0, 64134,24792,0, 64135,24910,0, 64136,24840,0, 64137,24974,0, 64138,24928,0,
    64139,25074,0, 64140,25140,0, 64141,25540,0, 64142,25628,0, 64143,25682,0, 64144,25942,0,
    64145,26228,0, 64146,26391,0, 64147,26395,0, 64148,26454,0, 64149,27513,0, 64150,27578,0,
    64151,27969,0, 64152,28379,0, 64153,28363,0, 64154,28450,0, 64155,28702,0, 64156,29038,0,
    64157,30631,0, 64158,29237,0, 64159,29359,0, 64160,29482,0, 64161,29809,0, 64162,29958,0,
    64163,30011,0, 64164,30237,0, 64165,30239,0, 64166,30410,0, 64167,30427,0, 64168,30452,0,
    64169,30538,0, 64170,30528,0, 64171,30924,0, 64172,31409,0, 64173,31680,0, 64174,31867,0,
    64175,32091,0, 64176,32244,0, 64177,32574,0, 64178,32773,0, 64179,33618,0, 64180,33775,0,
    64181,34681,0, 64182,35137,0, 64183,35206,0, 64184,35222,0, 64185,35519,0, 64186,35576,0,
    64187,35531,0, 64188,35585,0, 64189,35582,0, 64190,35565,0, 64191,35641,0, 64192,35722,0,
    64193,36104,0, 64194,36664,0, 64195,36978,0, 64196,37273,0, 64197,37494,0, 64198,38524,0,
    64199,38627,0, 64200,38742,0, 64201,38875,0, 64202,38911,0, 64203,38923,0, 64204,38971,0,
    64205,39698,0, 64206,40860,0, 64207,141386,0, 64208,141380,0, 64209,144341,0, 64210,15261,0,
    64211,16408,0, 64212,16441,0, 64213,152137,0, 64214,154832,0, 64215,163539,0, 64216,40771,0,
    64217,40846,0, 64285,1497,1460, 64287,1522,1463, 64298,1513,1473, 64299,1513,1474, 64300,64329,1473,
    64301,64329,1474, 64302,1488,1463, 64303,1488,1464, 64304,1488,1468, 64305,1489,1468, 64306,1490,1468,
    64307,1491,1468, 64308,1492,1468, 64309,1493,1468, 64310,1494,1468, 64312,1496,1468, 64313,1497,1468,
    64314,1498,1468, 64315,1499,1468, 64316,1500,1468, 64318,1502,1468, 64320,1504,1468, 64321,1505,1468,
    64323,1507,1468, 64324,1508,1468, 64326,1510,1468, 64327,1511,1468, 64328,1512,1468, 64329,1513,1468,
    64330,1514,1468, 64331,1493,1465, 64332,1489,1471, 64333,1499,1471, 64334,1508,1471, 69786,69785,69818,
    69788,69787,69818, 69803,69797,69818, 69934,69937,69927, 69935,69938,69927, 70475,70471,70462, 70476,70471,70487,
    70843,70841,70842, 70844,70841,70832, 70846,70841,70845, 71098,71096,71087, 71099,71097,71087, 71992,71989,71984,
    119134,119127,119141, 119135,119128,119141, 119136,119135,119150, 119137,119135,119151, 119138,119135,119152, 119139,119135,119153,
    119140,119135,119154, 119227,119225,119141, 119228,119226,119141, 119229,119227,119150, 119230,119228,119150, 119231,119227,119151,
    119232,119228,119151, 194560,20029,0, 194561,20024,0, 194562,20033,0, 194563,131362,0, 194564,20320,0,
    194565,20398,0, 194566,20411,0, 194567,20482,0, 194568,20602,0, 194569,20633,0, 194570,20711,0,
    194571,20687,0, 194572,13470,0, 194573,132666,0, 194574,20813,0, 194575,20820,0, 194576,20836,0,
    194577,20855,0, 194578,132380,0, 194579,13497,0, 194580,20839,0, 194581,20877,0, 194582,132427,0,
    194583,20887,0, 194584,20900,0, 194585,20172,0, 194586,20908,0, 194587,20917,0, 194588,168415,0,
    194589,20981,0, 194590,20995,0, 194591,13535,0, 194592,21051,0, 194593,21062,0, 194594,21106,0,
    194595,21111,0, 194596,13589,0, 194597,21191,0, 194598,21193,0, 194599,21220,0, 194600,21242,0,
    194601,21253,0, 194602,21254,0, 194603,21271,0, 194604,21321,0, 194605,21329,0, 194606,21338,0,
    194607,21363,0, 194608,21373,0, 194609,21375,0, 194610,21375,0, 194611,21375,0, 194612,133676,0,
    194613,28784,0, 194614,21450,0, 194615,21471,0, 194616,133987,0, 194617,21483,0, 194618,21489,0,
    194619,21510,0, 194620,21662,0, 194621,21560,0, 194622,21576,0, 194623,21608,0, 194624,21666,0,
    194625,21750,0, 194626,21776,0, 194627,21843,0, 194628,21859,0, 194629,21892,0, 194630,21892,0,
    194631,21913,0, 194632,21931,0, 194633,21939,0, 194634,21954,0, 194635,22294,0, 194636,22022,0,
    194637,22295,0, 194638,22097,0, 194639,22132,0, 194640,20999,0, 194641,22766,0, 194642,22478,0,
    194643,22516,0, 194644,22541,0, 194645,22411,0, 194646,22578,0, 194647,22577,0, 194648,22700,0,
    194649,136420,0, 194650,22770,0, 194651,22775,0, 194652,22790,0, 194653,22810,0, 194654,22818,0,
    194655,22882,0, 194656,136872,0, 194657,136938,0, 194658,23020,0, 194659,23067,0, 194660,23079,0,
    194661,23000,0, 194662,23142,0, 194663,14062,0, 194664,14076,0, 194665,23304,0, 194666,23358,0,
    194667,23358,0, 194668,137672,0, 194669,23491,0, 194670,23512,0, 194671,23527,0, 194672,23539,0,
    194673,138008,0, 194674,23551,0, 194675,23558,0, 194676,24403,0, 194677,23586,0, 194678,14209,0,
    194679,23648,0, 194680,23662,0, 194681,23744,0, 194682,23693,0, 194683,138724,0, 194684,23875,0,
    194685,138726,0, 194686,23918,0, 194687,23915,0, 194688,23932,0, 194689,24033,0, 194690,24034,0,
    194691,14383,0, 194692,24061,0, 194693,24104,0, 194694,24125,0, 194695,24169,0, 194696,14434,0,
    194697,139651,0, 194698,14460,0, 194699,24240,0, 194700,24243,0, 194701,24246,0, 194702,24266,0,
    194703,172946,0, 194704,24318,0, 194705,140081,0, 194706,140081,0, 194707,33281,0, 194708,24354,0,
    194709,24354,0, 194710,14535,0, 194711,144056,0, 194712,156122,0, 194713,24418,0, 194714,24427,0,
    194715,14563,0, 194716,24474,0, 194717,24525,0, 194718,24535,0, 194719,24569,0, 194720,24705,0,
    194721,14650,0, 194722,14620,0, 194723,24724,0, 194724,141012,0, 194725,24775,0, 194726,24904,0,
    194727,24908,0, 194728,24910,0, 194729,24908,0, 194730,24954,0, 194731,24974,0, 194732,25010,0,
    194733,24996,0, 194734,25007,0, 194735,25054,0, 194736,25074,0, 194737,25078,0, 194738,25104,0,
    194739,25115,0, 194740,25181,0, 194741,25265,0, 194742,25300,0, 194743,25424,0, 194744,142092,0,
    194745,25405,0, 194746,25340,0, 194747,25448,0, 194748,25475,0, 194749,25572,0, 194750,142321,0,
    194751,25634,0, 194752,25541,0, 194753,25513,0, 194754,14894,0, 194755,25705,0, 194756,25726,0,
    194757,25757,0, 194758,25719,0, 194759,14956,0, 194760,25935,0, 194761,25964,0, 194762,143370,0,
    194763,26083,0, 194764,26360,0, 194765,26185,0, 194766,15129,0, 194767,26257,0, 194768,15112,0,
    194769,15076,0, 194770,20882,0, 194771,20885,0, 194772,26368,0, 194773,26268,0, 194774,32941,0,
    194775,17369,0, 194776,26391,0, 194777,26395,0, 194778,26401,0, 194779,26462,0, 194780,26451,0,
    194781,144323,0, 194782,15177,0, 194783,26618,0, 194784,26501,0, 194785,26706,0, 194786,26757,0,
    194787,144493,0, 194788,26766,0, 194789,26655,0, 194790,26900,0, 194791,15261,0, 194792,26946,0,
    194793,27043,0, 194794,27114,0, 194795,27304,0, 194796,145059,0, 194797,27355,0, 194798,15384,0,
    194799,27425,0, 194800,145575,0, 194801,27476,0, 194802,15438,0, 194803,27506,0, 194804,27551,0,
    194805,27578,0, 194806,27579,0, 194807,146061,0, 194808,138507,0, 194809,146170,0, 194810,27726,0,
    194811,146620,0, 194812,27839,0, 194813,27853,0, 194814,27751,0, 194815,27926,0, 194816,27966,0,
    194817,28023,0, 194818,27969,0, 194819,28009,0, 194820,28024,0, 194821,28037,0, 194822,146718,0,
    194823,27956,0, 194824,28207,0, 194825,28270,0, 194826,15667,0, 194827,28363,0, 194828,28359,0,
    194829,147153,0, 194830,28153,0, 194831,28526,0, 194832,147294,0, 194833,147342,0, 194834,28614,0,
    194835,28729,0, 194836,28702,0, 194837,28699,0, 194838,15766,0, 194839,28746,0, 194840,28797,0,
    194841,28791,0, 194842,28845,0, 194843,132389,0, 194844,28997,0, 194845,148067,0, 194846,29084,0,
    194847,148395,0, 194848,29224,0, 194849,29237,0, 194850,29264,0, 194851,149000,0, 194852,29312,0,
    194853,29333,0, 194854,149301,0, 194855,149524,0, 194856,29562,0, 194857,29579,0, 194858,16044,0,
    194859,29605,0, 194860,16056,0, 194861,16056,0, 194862,29767,0, 194863,29788,0, 194864,29809,0,
    194865,29829,0, 194866,29898,0, 194867,16155,0, 194868,29988,0, 194869,150582,0, 194870,30014,0,
    194871,150674,0, 194872,30064,0, 194873,139679,0, 194874,30224,0, 194875,151457,0, 194876,151480,0,
    194877,151620,0, 194878,16380,0, 194879,16392,0, 194880,30452,0, 194881,151795,0, 194882,151794,0,
    194883,151833,0, 194884,151859,0, 194885,30494,0, 194886,30495,0, 194887,30495,0, 194888,30538,0,
    194889,16441,0, 194890,30603,0, 194891,16454,0, 194892,16534,0, 194893,152605,0, 194894,30798,0,
    194895,30860,0, 194896,30924,0, 194897,16611,0, 194898,153126,0, 194899,31062,0, 194900,153242,0,
    194901,153285,0, 194902,31119,0, 194903,31211,0, 194904,16687,0, 194905,31296,0, 194906,31306,0,
    194907,31311,0, 194908,153980,0, 194909,154279,0, 194910,154279,0, 194911,31470,0, 194912,16898,0,
    194913,154539,0, 194914,31686,0, 194915,31689,0, 194916,16935,0, 194917,154752,0, 194918,31954,0,
    194919,17056,0, 194920,31976,0, 194921,31971,0, 194922,32000,0, 194923,155526,0, 194924,32099,0,
    194925,17153,0, 194926,32199,0, 194927,32258,0, 194928,32325,0, 194929,17204,0, 194930,156200,0,
    194931,156231,0, 194932,17241,0, 194933,156377,0, 194934,32634,0, 194935,156478,0, 194936,32661,0,
    194937,32762,0, 194938,32773,0, 194939,156890,0, 194940,156963,0, 194941,32864,0, 194942,157096,0,
    194943,32880,0, 194944,144223,0, 194945,17365,0, 194946,32946,0, 194947,33027,0, 194948,17419,0,
    194949,33086,0, 194950,23221,0, 194951,157607,0, 194952,157621,0, 194953,144275,0, 194954,144284,0,
    194955,33281,0, 194956,33284,0, 194957,36766,0, 194958,17515,0, 194959,33425,0, 194960,33419,0,
    194961,33437,0, 194962,21171,0, 194963,33457,0, 194964,33459,0, 194965,33469,0, 194966,33510,0,
    194967,158524,0, 194968,33509,0, 194969,33565,0, 194970,33635,0, 194971,33709,0, 194972,33571,0,
    194973,33725,0, 194974,33767,0, 194975,33879,0, 194976,33619,0, 194977,33738,0, 194978,33740,0,
    194979,33756,0, 194980,158774,0, 194981,159083,0, 194982,158933,0, 194983,17707,0, 194984,34033,0,
    194985,34035,0, 194986,34070,0, 194987,160714,0, 194988,34148,0, 194989,159532,0, 194990,17757,0,
    194991,17761,0, 194992,159665,0, 194993,159954,0, 194994,17771,0, 194995,34384,0, 194996,34396,0,
    194997,34407,0, 194998,34409,0, 194999,34473,0, 195000,34440,0, 195001,34574,0, 195002,34530,0,
    195003,34681,0, 195004,34600,0, 195005,34667,0, 195006,34694,0, 195007,17879,0, 195008,34785,0,
    195009,34817,0, 195010,17913,0, 195011,34912,0, 195012,34915,0, 195013,161383,0, 195014,35031,0,
    195015,35038,0, 195016,17973,0, 195017,35066,0, 195018,13499,0, 195019,161966,0, 195020,162150,0,
    195021,18110,0, 195022,18119,0, 195023,35488,0, 195024,35565,0, 195025,35722,0, 195026,35925,0,
    195027,162984,0, 195028,36011,0, 195029,36033,0, 195030,36123,0, 195031,36215,0, 195032,163631,0,
    195033,133124,0, 195034,36299,0, 195035,36284,0, 195036,36336,0, 195037,133342,0, 195038,36564,0,
    195039,36664,0, 195040,165330,0, 195041,165357,0, 195042,37012,0, 195043,37105,0, 195044,37137,0,
    195045,165678,0, 195046,37147,0, 195047,37432,0, 195048,37591,0, 195049,37592,0, 195050,37500,0,
    195051,37881,0, 195052,37909,0, 195053,166906,0, 195054,38283,0, 195055,18837,0, 195056,38327,0,
    195057,167287,0, 195058,18918,0, 195059,38595,0, 195060,23986,0, 195061,38691,0, 195062,168261,0,
    195063,168474,0, 195064,19054,0, 195065,19062,0, 195066,38880,0, 195067,168970,0, 195068,19122,0,
    195069,169110,0, 195070,38923,0, 195071,38923,0, 195072,38953,0, 195073,169398,0, 195074,39138,0,
    195075,19251,0, 195076,39209,0, 195077,39335,0, 195078,39362,0, 195079,39422,0, 195080,19406,0,
    195081,170800,0, 195082,39698,0, 195083,40000,0, 195084,40189,0, 195085,19662,0, 195086,19693,0,
    195087,40295,0, 195088,172238,0, 195089,19704,0, 195090,172293,0, 195091,172558,0, 195092,172689,0,
    195093,40635,0, 195094,19798,0, 195095,40697,0, 195096,40702,0, 195097,40709,0, 195098,40719,0,
    195099,40726,0, 195100,40763,0, 195101,173568,0,
};
/* Indices into sdiff__tok_decomp of the primary composites, sorted by (first, second). */
static const uint16_t sdiff__tok_comp_index[] = {
    912, 909, 913, 0, 1, 2, 3, 53, 55, 238, 4, 572, 5, 165, 208, 210, 570, 415,
    57, 417, 419, 421, 59, 61, 63, 65, 6, 425, 67, 427, 431, 433, 429, 7, 8, 9,
    598, 69, 71, 73, 10, 596, 77, 212, 214, 594, 240, 75, 439, 441, 445, 198, 79, 447,
    81, 83, 187, 85, 87, 449, 453, 236, 451, 455, 457, 11, 12, 13, 89, 91, 93, 97,
    14, 610, 167, 216, 218, 612, 95, 459, 98, 463, 189, 465, 100, 467, 102, 106, 469, 104,
    475, 473, 477, 479, 481, 200, 108, 15, 483, 112, 485, 110, 489, 487, 16, 17, 18, 19,
    114, 116, 246, 20, 616, 118, 169, 220, 222, 161, 614, 191, 499, 501, 120, 503, 124, 224,
    226, 505, 122, 509, 126, 128, 511, 132, 513, 232, 130, 521, 136, 523, 234, 134, 527, 525,
    21, 22, 23, 138, 140, 142, 24, 640, 144, 146, 171, 228, 230, 163, 638, 529, 148, 533,
    531, 539, 541, 543, 545, 150, 549, 547, 551, 553, 555, 652, 25, 152, 658, 250, 557, 154,
    656, 654, 155, 559, 157, 159, 561, 563, 26, 27, 28, 29, 54, 56, 239, 30, 573, 31,
    166, 209, 211, 571, 416, 58, 418, 420, 422, 60, 62, 64, 66, 32, 426, 68, 428, 432,
    434, 430, 33, 34, 35, 599, 70, 72, 74, 36, 597, 78, 213, 215, 595, 241, 76, 440,
    442, 446, 199, 80, 448, 82, 84, 188, 86, 88, 450, 454, 237, 452, 456, 458, 565, 37,
    38, 39, 90, 92, 94, 40, 611, 168, 217, 219, 613, 96, 460, 99, 197, 464, 190, 466,
    101, 468, 103, 107, 470, 105, 476, 474, 478, 480, 482, 201, 109, 41, 484, 113, 486, 111,
    490, 488, 42, 43, 44, 45, 115, 117, 247, 46, 617, 119, 170, 221, 223, 162, 615, 192,
    500, 502, 121, 504, 125, 225, 227, 506, 123, 510, 127, 129, 512, 133, 514, 233, 131, 522,
    566, 137, 524, 235, 135, 528, 526, 47, 48, 49, 139, 141, 143, 50, 641, 145, 147, 172,
    229, 231, 164, 639, 530, 149, 534, 532, 540, 542, 544, 546, 151, 550, 548, 567, 552, 554,
    556, 653, 51, 153, 659, 251, 558, 52, 657, 568, 655, 156, 560, 158, 160, 562, 564, 875,
    258, 835, 576, 574, 580, 578, 181, 202, 204, 185, 423, 602, 600, 606, 604, 461, 620, 618,
    624, 622, 491, 244, 493, 242, 206, 179, 175, 173, 177, 577, 575, 581, 579, 182, 203, 205,
    186, 424, 603, 601, 607, 605, 462, 621, 619, 625, 623, 492, 245, 494, 243, 207, 180, 176,
    174, 178, 586, 584, 590, 588, 587, 585, 591, 589, 435, 437, 436, 438, 495, 497, 496, 498,
    515, 516, 517, 518, 535, 536, 537, 538, 569, 630, 628, 634, 632, 636, 631, 629, 635, 633,
    637, 644, 642, 648, 646, 650, 645, 643, 649, 647, 651, 195, 193, 194, 183, 184, 443, 444,
    248, 249, 196, 831, 259, 830, 829, 668, 669, 833, 841, 261, 682, 683, 843, 262, 696, 697,
    845, 857, 263, 856, 855, 268, 712, 713, 883, 264, 726, 727, 874, 872, 265, 871, 870, 269,
    740, 885, 266, 752, 753, 887, 826, 838, 760, 270, 823, 822, 660, 661, 827, 825, 762, 271,
    676, 677, 764, 272, 688, 689, 839, 837, 766, 273, 850, 849, 275, 704, 705, 853, 768, 277,
    720, 721, 866, 867, 770, 278, 863, 862, 276, 732, 733, 868, 772, 279, 744, 745, 881, 879,
    851, 267, 854, 864, 274, 869, 880, 280, 281, 285, 302, 304, 284, 282, 306, 283, 300, 310,
    312, 287, 314, 289, 316, 286, 318, 324, 288, 326, 328, 330, 332, 322, 303, 305, 293, 291,
    307, 292, 301, 311, 313, 296, 315, 290, 317, 295, 319, 325, 297, 327, 329, 331, 333, 323,
    294, 298, 299, 308, 309, 320, 321, 334, 335, 337, 336, 338, 340, 341, 339, 342, 343, 344,
    353, 354, 365, 364, 366, 369, 370, 372, 371, 373, 374, 377, 375, 376, 378, 379, 381, 380,
    382, 383, 385, 384, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 471, 472,
    507, 508, 519, 520, 582, 592, 583, 593, 608, 609, 626, 627, 662, 664, 666, 774, 663, 665,
    667, 775, 776, 777, 778, 779, 780, 781, 670, 672, 674, 782, 671, 673, 675, 783, 784, 785,
    786, 787, 788, 789, 678, 680, 679, 681, 684, 686, 685, 687, 690, 692, 694, 790, 691, 693,
    695, 791, 792, 793, 794, 795, 796, 797, 698, 700, 702, 798, 699, 701, 703, 799, 800, 801,
    802, 803, 804, 805, 706, 708, 710, 707, 709, 711, 714, 716, 718, 715, 717, 719, 722, 724,
    723, 725, 728, 730, 729, 731, 734, 736, 738, 735, 737, 739, 741, 742, 743, 746, 748, 750,
    806, 747, 749, 751, 807, 808, 809, 810, 811, 812, 813, 754, 756, 758, 814, 755, 757, 759,
    815, 816, 817, 818, 819, 820, 821, 824, 836, 878, 828, 846, 847, 848, 840, 882, 859, 860,
    861, 894, 895, 896, 897, 899, 898, 900, 901, 902, 903, 904, 905, 906, 907, 908, 911, 910,
    914, 915, 916, 917, 918, 919, 920, 921, 930, 931, 922, 923, 924, 925, 932, 933, 926, 927,
    928, 929, 934, 935, 936, 937, 966, 941, 942, 943, 944, 945, 946, 947, 948, 949, 950, 951,
    952, 953, 954, 955, 956, 957, 958, 959, 960, 961, 962, 963, 964, 965, 967, 993, 968, 969,
    970, 971, 972, 973, 974, 975, 976, 977, 978, 979, 980, 981, 982, 983, 984, 985, 986, 987,
    988, 989, 990, 991, 992, 994, 995, 996, 997, 998, 1493, 1494, 1495, 1496, 1497, 1498, 1499, 1501,
    1500, 1502, 1503, 1504, 1505,
};
/* END GENERATED UNICODE TABLES */

/* Binary search of sorted inclusive [lo, hi] pairs. */
SDIFF__PRIVATE bool sdiff__tok_in_ranges(const uint32_t *r, size_t n_pairs, uint32_t cp) {
    size_t lo = 0, hi = n_pairs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[2 * mid]) hi = mid;
        else if (cp > r[2 * mid + 1]) lo = mid + 1;
        else return true;
    }
    return false;
}
#define SDIFF__TOK_NPAIRS(a) (sizeof(a) / sizeof((a)[0]) / 2)

SDIFF__PRIVATE bool sdiff__tok_is_letter(uint32_t cp) {
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return sdiff__tok_in_ranges(sdiff__tok_letter_ranges, SDIFF__TOK_NPAIRS(sdiff__tok_letter_ranges), cp);
}
SDIFF__PRIVATE bool sdiff__tok_is_number(uint32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return sdiff__tok_in_ranges(sdiff__tok_number_ranges, SDIFF__TOK_NPAIRS(sdiff__tok_number_ranges), cp);
}
/* Unicode White_Space (PropList.txt; unchanged since Unicode 6.3). */
SDIFF__PRIVATE bool sdiff__tok_is_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

/* Single-character lowercase (U+0130 is handled by the caller). */
SDIFF__PRIVATE uint32_t sdiff__tok_lower(uint32_t cp) {
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    const size_t n = sizeof sdiff__tok_lower_runs / sizeof sdiff__tok_lower_runs[0] / 4;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const int32_t *r = &sdiff__tok_lower_runs[4 * mid];
        if (cp < (uint32_t)r[0]) hi = mid;
        else if (cp > (uint32_t)r[1]) lo = mid + 1;
        else return (cp - (uint32_t)r[0]) % (uint32_t)r[2] == 0 ? (uint32_t)((int32_t)cp + r[3]) : cp;
    }
    return cp;
}

SDIFF__PRIVATE int sdiff__tok_ccc(uint32_t cp) {
    if (cp < 0x300) return 0;
    const size_t n = sizeof sdiff__tok_ccc_runs / sizeof sdiff__tok_ccc_runs[0] / 3;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *r = &sdiff__tok_ccc_runs[3 * mid];
        if (cp < r[0]) hi = mid;
        else if (cp > r[1]) lo = mid + 1;
        else return (int)r[2];
    }
    return 0;
}

/* Row of sdiff__tok_decomp for cp, or NULL. */
SDIFF__PRIVATE const uint32_t *sdiff__tok_decomp_row(uint32_t cp) {
    if (cp < 0xC0) return NULL;
    size_t lo = 0, hi = sizeof sdiff__tok_decomp / sizeof sdiff__tok_decomp[0] / 3;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *r = &sdiff__tok_decomp[3 * mid];
        if (cp < r[0]) hi = mid;
        else if (cp > r[0]) lo = mid + 1;
        else return r;
    }
    return NULL;
}

/* Hangul syllables decompose and compose algorithmically (Unicode 3.12). */
#define SDIFF__TOK_SBASE 0xAC00u
#define SDIFF__TOK_LBASE 0x1100u
#define SDIFF__TOK_VBASE 0x1161u
#define SDIFF__TOK_TBASE 0x11A7u
#define SDIFF__TOK_LCOUNT 19u
#define SDIFF__TOK_VCOUNT 21u
#define SDIFF__TOK_TCOUNT 28u
#define SDIFF__TOK_NCOUNT (SDIFF__TOK_VCOUNT * SDIFF__TOK_TCOUNT)
#define SDIFF__TOK_SCOUNT (SDIFF__TOK_LCOUNT * SDIFF__TOK_NCOUNT)

/* Full canonical decomposition of cp appended to out (room for 4: the
   longest canonical decomposition in Unicode is 4 code points). */
SDIFF__PRIVATE int sdiff__tok_decompose(uint32_t cp, uint32_t *out) {
    if (cp - SDIFF__TOK_SBASE < SDIFF__TOK_SCOUNT) {
        uint32_t s = cp - SDIFF__TOK_SBASE, t = s % SDIFF__TOK_TCOUNT;
        out[0] = SDIFF__TOK_LBASE + s / SDIFF__TOK_NCOUNT;
        out[1] = SDIFF__TOK_VBASE + (s % SDIFF__TOK_NCOUNT) / SDIFF__TOK_TCOUNT;
        if (!t) return 2;
        out[2] = SDIFF__TOK_TBASE + t;
        return 3;
    }
    const uint32_t *r = sdiff__tok_decomp_row(cp);
    if (!r) { out[0] = cp; return 1; }
    /* Only the first code point of a canonical mapping decomposes further. */
    int n = sdiff__tok_decompose(r[1], out);
    if (r[2] && n < 4) out[n++] = r[2];
    return n;
}

/* The primary composite of (a, b), or 0. */
SDIFF__PRIVATE uint32_t sdiff__tok_compose(uint32_t a, uint32_t b) {
    if (a - SDIFF__TOK_LBASE < SDIFF__TOK_LCOUNT && b - SDIFF__TOK_VBASE < SDIFF__TOK_VCOUNT)
        return SDIFF__TOK_SBASE + ((a - SDIFF__TOK_LBASE) * SDIFF__TOK_VCOUNT + (b - SDIFF__TOK_VBASE)) * SDIFF__TOK_TCOUNT;
    if (a - SDIFF__TOK_SBASE < SDIFF__TOK_SCOUNT && (a - SDIFF__TOK_SBASE) % SDIFF__TOK_TCOUNT == 0 &&
        b - SDIFF__TOK_TBASE - 1 < SDIFF__TOK_TCOUNT - 1)
        return a + (b - SDIFF__TOK_TBASE);
    size_t lo = 0, hi = sizeof sdiff__tok_comp_index / sizeof sdiff__tok_comp_index[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *r = &sdiff__tok_decomp[3 * sdiff__tok_comp_index[mid]];
        if (a < r[1] || (a == r[1] && b < r[2])) hi = mid;
        else if (a > r[1] || b > r[2]) lo = mid + 1;
        else return r[0];
    }
    return 0;
}

/* NFC of cps[0..n) into out (room for 4*n: the fully decomposed form is
   built there first and recomposed in place); returns the length. NFC can be
   longer than its input (U+0344 -> U+0308 U+0301), never longer than the
   decomposition. */
SDIFF__PRIVATE size_t sdiff__tok_nfc(const uint32_t *cps, size_t n, uint32_t *out) {
    /* Fast path: below U+0300 every character is already NFC and nothing
       composes onto it (combining marks start at U+0300). */
    bool simple = true;
    for (size_t i = 0; i < n && simple; i++) simple = cps[i] < 0x300;
    if (simple) { if (n) memcpy(out, cps, n * sizeof *out); return n; }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += (size_t)sdiff__tok_decompose(cps[i], out + m);
    /* Canonical ordering: stable insertion sort of each run of non-starters. */
    for (size_t i = 1; i < m; i++) {
        int c = sdiff__tok_ccc(out[i]);
        if (!c) continue;
        size_t j = i;
        uint32_t x = out[i];
        while (j > 0) {
            int cj = sdiff__tok_ccc(out[j - 1]);
            if (cj <= c) break; /* a starter (0) also stops the run */
            out[j] = out[j - 1];
            j--;
        }
        out[j] = x;
    }
    /* Canonical composition, in place (the write cursor k never passes the
       read cursor i). A character composes with the last starter unless one
       between them has a combining class of 0 or >= its own; after the
       canonical ordering the last one between has the largest class. */
    size_t k = 0;
    ptrdiff_t starter = -1;
    int last_cc = 0;
    for (size_t i = 0; i < m; i++) {
        uint32_t c = out[i];
        int cc = sdiff__tok_ccc(c);
        if (starter >= 0) {
            bool adjacent = (size_t)starter == k - 1;
            if (adjacent || (last_cc != 0 && last_cc < cc)) {
                uint32_t comp = sdiff__tok_compose(out[starter], c);
                if (comp) { out[starter] = comp; continue; }
            }
        }
        out[k++] = c;
        last_cc = cc;
        if (cc == 0) starter = (ptrdiff_t)k - 1;
    }
    return k;
}

/* --- inflate (RFC 1951) and gzip (RFC 1952) ---------------------------- */
/* Canonical Huffman codes decoded bit by bit from per-length counts: slow-ish
   (~20 ms for the 1.3 MB CLIP vocabulary) but small and easy to check. Every
   read is bounds-checked; malformed input gives SDIFF_ERR_FORMAT. */
typedef struct sdiff__inflate_huff {
    int16_t count[16];    /* codes of each length                       */
    int16_t symbol[320];  /* symbols ordered by code                    */
} sdiff__inflate_huff;

typedef struct sdiff__inflate_state {
    const unsigned char *in;
    size_t in_len, in_pos;
    uint64_t bitbuf;
    int bitcnt;
    unsigned char *out;
    size_t out_len, out_cap, out_max;
} sdiff__inflate_state;

/* Reads n (<= 32) bits LSB first; false at the end of the input. */
SDIFF__PRIVATE bool sdiff__inflate_bits(sdiff__inflate_state *s, int n, uint32_t *v) {
    while (s->bitcnt < n) {
        if (s->in_pos >= s->in_len) return false;
        s->bitbuf |= (uint64_t)s->in[s->in_pos++] << s->bitcnt;
        s->bitcnt += 8;
    }
    *v = (uint32_t)(s->bitbuf & ((1ull << n) - 1));
    s->bitbuf >>= n;
    s->bitcnt -= n;
    return true;
}

/* Builds the code from lengths; false if over-subscribed. Incomplete codes
   are allowed (a lone distance code is legal); decoding an unused code then
   fails in sdiff__inflate_decode. */
SDIFF__PRIVATE bool sdiff__inflate_build(sdiff__inflate_huff *h, const uint8_t *lengths, int n) {
    int16_t offs[16];
    memset(h->count, 0, sizeof h->count);
    for (int i = 0; i < n; i++) h->count[lengths[i]]++;
    h->count[0] = 0;
    int left = 1;
    for (int len = 1; len < 16; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0) return false;
    }
    offs[1] = 0;
    for (int len = 1; len < 15; len++) offs[len + 1] = (int16_t)(offs[len] + h->count[len]);
    for (int i = 0; i < n; i++)
        if (lengths[i]) h->symbol[offs[lengths[i]]++] = (int16_t)i;
    return true;
}

SDIFF__PRIVATE int sdiff__inflate_decode(sdiff__inflate_state *s, const sdiff__inflate_huff *h) {
    int code = 0, first = 0, index = 0;
    for (int len = 1; len < 16; len++) {
        uint32_t bit;
        if (!sdiff__inflate_bits(s, 1, &bit)) return -1;
        code |= (int)bit;
        int count = h->count[len];
        if (code - first < count) return h->symbol[index + code - first];
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return -1;
}

SDIFF__PRIVATE bool sdiff__inflate_put(sdiff__inflate_state *s, unsigned char c) {
    if (s->out_len == s->out_cap) {
        if (s->out_cap >= s->out_max) return false;
        size_t nc = s->out_cap ? s->out_cap * 2 : 65536;
        if (nc > s->out_max) nc = s->out_max;
        unsigned char *o = (unsigned char *)sdiff__realloc(s->out, nc);
        if (!o) return false;
        s->out = o;
        s->out_cap = nc;
    }
    s->out[s->out_len++] = c;
    return true;
}

/* Decodes one Huffman-coded block. */
SDIFF__PRIVATE const char *sdiff__inflate_codes(sdiff__inflate_state *s, const sdiff__inflate_huff *lit,
                                                const sdiff__inflate_huff *dist) {
    static const uint16_t len_base[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                          35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    static const uint16_t dist_base[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
                                           257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
    static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
    for (;;) {
        int sym = sdiff__inflate_decode(s, lit);
        if (sym < 0) return "bad literal/length code or truncated data";
        if (sym < 256) {
            if (!sdiff__inflate_put(s, (unsigned char)sym)) return "output too large or out of memory";
            continue;
        }
        if (sym == 256) return NULL;
        sym -= 257;
        if (sym >= 29) return "invalid length code";
        uint32_t extra;
        if (!sdiff__inflate_bits(s, len_extra[sym], &extra)) return "truncated data";
        size_t len = len_base[sym] + extra;
        int dsym = sdiff__inflate_decode(s, dist);
        if (dsym < 0) return "bad distance code or truncated data";
        if (dsym >= 30) return "invalid distance code";
        if (!sdiff__inflate_bits(s, dist_extra[dsym], &extra)) return "truncated data";
        size_t d = dist_base[dsym] + extra;
        if (d > s->out_len) return "distance before the start of the output";
        for (size_t i = 0; i < len; i++)
            if (!sdiff__inflate_put(s, s->out[s->out_len - d])) return "output too large or out of memory";
    }
}

/* Inflates a raw deflate stream; *consumed = input bytes used (whole bytes). */
SDIFF__PRIVATE const char *sdiff__inflate_stream(sdiff__inflate_state *s) {
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    sdiff__inflate_huff lit, dist;
    uint8_t lengths[320];
    uint32_t last, type, v;
    do {
        if (!sdiff__inflate_bits(s, 1, &last) || !sdiff__inflate_bits(s, 2, &type)) return "truncated data";
        if (type == 0) { /* stored: byte-align, LEN, NLEN, raw bytes */
            s->bitbuf >>= s->bitcnt & 7;
            s->bitcnt -= s->bitcnt & 7;
            uint32_t len, nlen;
            if (!sdiff__inflate_bits(s, 16, &len) || !sdiff__inflate_bits(s, 16, &nlen)) return "truncated data";
            if (len != (~nlen & 0xFFFF)) return "stored block length check failed";
            for (uint32_t i = 0; i < len; i++) {
                if (!sdiff__inflate_bits(s, 8, &v)) return "truncated data";
                if (!sdiff__inflate_put(s, (unsigned char)v)) return "output too large or out of memory";
            }
        } else if (type == 1) { /* fixed codes */
            int i = 0;
            for (; i < 144; i++) lengths[i] = 8;
            for (; i < 256; i++) lengths[i] = 9;
            for (; i < 280; i++) lengths[i] = 7;
            for (; i < 288; i++) lengths[i] = 8;
            sdiff__inflate_build(&lit, lengths, 288);
            for (i = 0; i < 30; i++) lengths[i] = 5;
            sdiff__inflate_build(&dist, lengths, 30);
            const char *e = sdiff__inflate_codes(s, &lit, &dist);
            if (e) return e;
        } else if (type == 2) { /* dynamic codes */
            uint32_t nlen, ndist, ncode;
            if (!sdiff__inflate_bits(s, 5, &nlen) || !sdiff__inflate_bits(s, 5, &ndist) ||
                !sdiff__inflate_bits(s, 4, &ncode))
                return "truncated data";
            nlen += 257; ndist += 1; ncode += 4;
            if (nlen > 286 || ndist > 30) return "too many length or distance codes";
            memset(lengths, 0, sizeof lengths);
            for (uint32_t i = 0; i < ncode; i++) {
                if (!sdiff__inflate_bits(s, 3, &v)) return "truncated data";
                lengths[order[i]] = (uint8_t)v;
            }
            sdiff__inflate_huff lencode;
            if (!sdiff__inflate_build(&lencode, lengths, 19)) return "bad code-length code";
            uint32_t idx = 0;
            while (idx < nlen + ndist) {
                int sym = sdiff__inflate_decode(s, &lencode);
                if (sym < 0) return "bad code-length symbol or truncated data";
                if (sym < 16) { lengths[idx++] = (uint8_t)sym; continue; }
                uint8_t val = 0;
                uint32_t rep;
                if (sym == 16) {
                    if (idx == 0) return "repeat with no previous length";
                    val = lengths[idx - 1];
                    if (!sdiff__inflate_bits(s, 2, &rep)) return "truncated data";
                    rep += 3;
                } else if (sym == 17) {
                    if (!sdiff__inflate_bits(s, 3, &rep)) return "truncated data";
                    rep += 3;
                } else {
                    if (!sdiff__inflate_bits(s, 7, &rep)) return "truncated data";
                    rep += 11;
                }
                if (idx + rep > nlen + ndist) return "code lengths overflow";
                while (rep--) lengths[idx++] = val;
            }
            if (lengths[256] == 0) return "no end-of-block code";
            if (!sdiff__inflate_build(&lit, lengths, (int)nlen)) return "bad literal/length code";
            if (!sdiff__inflate_build(&dist, lengths + nlen, (int)ndist)) return "bad distance code";
            const char *e = sdiff__inflate_codes(s, &lit, &dist);
            if (e) return e;
        } else {
            return "invalid block type";
        }
    } while (!last);
    return NULL;
}

/* CRC-32 as gzip and PNG define it (ISO 3309: reflected 0xEDB88320, init
   and final xor 0xFFFFFFFF). crc is the value so far (0 to start), so data
   can be fed in pieces. The table is built per call (2 K steps, nothing
   shared between threads); it keeps a gzip'd vocabulary's check fast. */
SDIFF__PRIVATE uint32_t sdiff__crc32(uint32_t crc, const unsigned char *p, size_t n) {
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* Decompresses a gzip file (one or more members) into a new buffer with a
   NUL after the data. max_out bounds the output (a defence against gzip
   bombs). what names the file in messages. */
SDIFF__PRIVATE sdiff_status sdiff__inflate_gzip(const unsigned char *in, size_t in_len, size_t max_out,
                                                const char *what, unsigned char **out, size_t *out_len) {
    sdiff__inflate_state s;
    memset(&s, 0, sizeof s);
    s.in = in;
    s.in_len = in_len;
    s.out_max = max_out;
    size_t pos = 0;
    *out = NULL;
    *out_len = 0;
    const char *e = NULL;
    do {
        size_t member_start = s.out_len;
        if (in_len - pos < 18) { e = "truncated gzip header"; break; }
        const unsigned char *h = in + pos;
        if (h[0] != 0x1F || h[1] != 0x8B) { e = "not a gzip file"; break; }
        if (h[2] != 8) { e = "unknown compression method"; break; }
        unsigned flg = h[3];
        if (flg & 0xE0) { e = "reserved gzip flags set"; break; }
        pos += 10;
        if (flg & 4) { /* FEXTRA */
            if (in_len - pos < 2) { e = "truncated gzip header"; break; }
            size_t xlen = in[pos] | (size_t)in[pos + 1] << 8;
            pos += 2;
            if (in_len - pos < xlen) { e = "truncated gzip header"; break; }
            pos += xlen;
        }
        for (unsigned bit = 8; bit <= 16 && !e; bit <<= 1) { /* FNAME, FCOMMENT: NUL-terminated */
            if (!(flg & bit)) continue;
            const void *z = memchr(in + pos, 0, in_len - pos);
            if (!z) e = "truncated gzip header";
            else pos = (size_t)((const unsigned char *)z - in) + 1;
        }
        if (e) break;
        if (flg & 2) { /* FHCRC */
            if (in_len - pos < 2) { e = "truncated gzip header"; break; }
            pos += 2;
        }
        s.in_pos = pos;
        s.bitbuf = 0;
        s.bitcnt = 0;
        e = sdiff__inflate_stream(&s);
        if (e) break;
        /* Unused bits of the last byte are dropped; whole bytes pulled into
           the bit buffer go back. */
        pos = s.in_pos - (size_t)(s.bitcnt / 8);
        if (in_len - pos < 8) { e = "truncated gzip trailer"; break; }
        const unsigned char *t = in + pos;
        uint32_t crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
        uint32_t isize = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
        pos += 8;
        size_t n = s.out_len - member_start;
        if (crc != sdiff__crc32(0, n ? s.out + member_start : in, n)) { e = "CRC mismatch"; break; }
        if (isize != (uint32_t)n) { e = "length mismatch"; break; }
    } while (pos < in_len);
    if (!e && !sdiff__inflate_put(&s, 0)) e = "output too large or out of memory";
    if (e) {
        sdiff__free(s.out);
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: gzip: %s", what ? what : "gzip data", e);
    }
    *out = s.out;
    *out_len = s.out_len - 1;
    return SDIFF_OK;
}

/* --- the tokenizer -------------------------------------------------------- */
/* An added (special) token, matched before pre-tokenization. At file scope
   so that C and C++ name it the same way. */
struct sdiff__tok_special {
    uint32_t *cps;           /* text as code points                        */
    size_t len;
    int32_t id;
    bool normalized;
};

struct sdiff__tokenizer {
    int32_t n_vocab;
    char *text;                  /* all token texts, NUL-separated             */
    uint32_t *text_off;          /* id -> offset into text (UINT32_MAX: none)  */
    size_t text_len, text_cap;
    int32_t *vocab_slots;        /* open addressing: id + 1, 0 = empty         */
    uint32_t vocab_mask;
    uint64_t *merge_keys;        /* (a << 32 | b) + 1, 0 = empty               */
    int32_t *merge_rank, *merge_result;
    uint32_t merge_mask;
    int32_t n_merges;
    int32_t byte_id[256];        /* byte -> id of its ByteLevel character      */
    int32_t byte_eow_id[256];    /* the same + "</w>"                          */
    int32_t bos, eos, pad, unk;
    bool norm_bos, norm_eos, norm_unk, norm_pad; /* "normalized" flags, step 1 */
    int n_specials;              /* the added tokens, distinct ids             */
    struct sdiff__tok_special specials[4];
};

SDIFF__PRIVATE uint32_t sdiff__tok_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

SDIFF__PRIVATE void sdiff__tokenizer_free(sdiff__tokenizer *t) {
    if (!t) return;
    sdiff__free(t->text);
    sdiff__free(t->text_off);
    sdiff__free(t->vocab_slots);
    sdiff__free(t->merge_keys);
    sdiff__free(t->merge_rank);
    sdiff__free(t->merge_result);
    for (int i = 0; i < t->n_specials; i++) sdiff__free(t->specials[i].cps);
    sdiff__free(t);
}

/* Creates an empty tokenizer with room for n_vocab ids. */
SDIFF__PRIVATE sdiff_status sdiff__tok_create(int32_t n_vocab, sdiff__tokenizer **out) {
    sdiff__tokenizer *t = (sdiff__tokenizer *)sdiff__calloc(1, sizeof *t);
    if (!t) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    t->n_vocab = n_vocab;
    uint32_t slots = 1024;
    while (slots < (uint32_t)n_vocab * 2u) slots <<= 1;
    t->vocab_mask = slots - 1;
    t->vocab_slots = (int32_t *)sdiff__calloc(slots, sizeof *t->vocab_slots);
    t->text_off = (uint32_t *)sdiff__malloc((size_t)n_vocab * sizeof *t->text_off);
    if (!t->vocab_slots || !t->text_off) { sdiff__tokenizer_free(t); return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory"); }
    for (int32_t i = 0; i < n_vocab; i++) t->text_off[i] = UINT32_MAX;
    t->bos = t->eos = t->pad = t->unk = -1;
    t->norm_bos = t->norm_eos = t->norm_unk = true; /* SD's configs */
    *out = t;
    return SDIFF_OK;
}

/* Id of a token text, or -1. */
SDIFF__PRIVATE int32_t sdiff__tok_lookup(const sdiff__tokenizer *t, const char *s, size_t n) {
    for (uint32_t i = sdiff__tok_hash(s, n) & t->vocab_mask;; i = (i + 1) & t->vocab_mask) {
        int32_t id = t->vocab_slots[i] - 1;
        if (id < 0) return -1;
        const char *tx = t->text + t->text_off[id];
        if (strncmp(tx, s, n) == 0 && tx[n] == 0) return id;
    }
}

/* Sets the text of id (which must be < n_vocab). A text given twice keeps
   the later id, as a Python dict built from (text, id) pairs does. */
SDIFF__PRIVATE sdiff_status sdiff__tok_set(sdiff__tokenizer *t, int32_t id, const char *s, size_t n) {
    if (id < 0 || id >= t->n_vocab) return sdiff__err(SDIFF_ERR_FORMAT, "tokenizer: token id %d out of range", (int)id);
    if (t->text_off[id] != UINT32_MAX) return sdiff__err(SDIFF_ERR_FORMAT, "tokenizer: two tokens have id %d", (int)id);
    if (memchr(s, 0, n)) return sdiff__err(SDIFF_ERR_FORMAT, "tokenizer: token %d contains a NUL", (int)id);
    if (t->text_len + n + 1 > t->text_cap) {
        size_t nc = t->text_cap ? t->text_cap : 1 << 16;
        while (nc < t->text_len + n + 1) nc *= 2;
        if (nc >= UINT32_MAX) return sdiff__err(SDIFF_ERR_FORMAT, "tokenizer: vocabulary too large");
        char *tx = (char *)sdiff__realloc(t->text, nc);
        if (!tx) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        t->text = tx;
        t->text_cap = nc;
    }
    uint32_t i = sdiff__tok_hash(s, n) & t->vocab_mask;
    for (;; i = (i + 1) & t->vocab_mask) {
        int32_t other = t->vocab_slots[i] - 1;
        if (other < 0) break;
        const char *tx = t->text + t->text_off[other];
        if (strncmp(tx, s, n) == 0 && tx[n] == 0) break;
    }
    memcpy(t->text + t->text_len, s, n);
    t->text[t->text_len + n] = 0;
    t->text_off[id] = (uint32_t)t->text_len;
    t->text_len += n + 1;
    t->vocab_slots[i] = id + 1;
    return SDIFF_OK;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
   other 68 map to U+0100.. in byte order. Writes the UTF-8 (1 or 2 bytes). */
SDIFF__PRIVATE int sdiff__tok_byte_char(int b, char *out) {
    uint32_t cp;
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
        cp = (uint32_t)b;
    } else {
        int k = 0; /* rank of b among the non-printable bytes */
        for (int x = 0; x < b; x++)
            if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) k++;
        cp = 256u + (uint32_t)k;
    }
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* Order of the first 256 CLIP ids: bytes_to_unicode's dict order, i.e. the
   printable bytes ascending, then the rest ascending. */
SDIFF__PRIVATE int sdiff__tok_byte_at_rank(int r) {
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            if (printable == (pass == 0) && k++ == r) return b;
        }
    return -1;
}

SDIFF__PRIVATE sdiff_status sdiff__tok_init_merges(sdiff__tokenizer *t, int32_t n_merges) {
    uint32_t slots = 1024;
    while (slots < (uint32_t)n_merges * 2u) slots <<= 1;
    t->merge_mask = slots - 1;
    t->merge_keys = (uint64_t *)sdiff__calloc(slots, sizeof *t->merge_keys);
    t->merge_rank = (int32_t *)sdiff__malloc(slots * sizeof *t->merge_rank);
    t->merge_result = (int32_t *)sdiff__malloc(slots * sizeof *t->merge_result);
    if (!t->merge_keys || !t->merge_rank || !t->merge_result) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    return SDIFF_OK;
}

SDIFF__PRIVATE uint32_t sdiff__tok_pair_hash(uint64_t key) {
    key ^= key >> 29;
    key *= 0xBF58476D1CE4E5B9ull;
    key ^= key >> 32;
    return (uint32_t)key;
}

/* Merge rank of the adjacent pair (a, b) (and its result id), or -1. */
SDIFF__PRIVATE int32_t sdiff__tok_merge_rank(const sdiff__tokenizer *t, int32_t a, int32_t b, int32_t *result) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    for (uint32_t i = sdiff__tok_pair_hash(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merge_keys[i] == 0) return -1;
        if (t->merge_keys[i] == key) { *result = t->merge_result[i]; return t->merge_rank[i]; }
    }
}

/* Adds merge number `rank` of the ids a and b; the merged text must be in
   the vocabulary (tokenizers refuses such a file too). A repeated pair keeps
   the later rank, as tokenizers' HashMap does. */
SDIFF__PRIVATE sdiff_status sdiff__tok_add_merge(sdiff__tokenizer *t, int32_t a, int32_t b, int32_t rank, char **scratch,
                                                 size_t *scratch_cap, const char *what) {
    const char *ta = t->text + t->text_off[a], *tb = t->text + t->text_off[b];
    size_t na = strlen(ta), nb = strlen(tb);
    /* Symbols carry the id their text finally has (a text listed twice keeps
       the later id), so the pair is keyed by those. */
    a = sdiff__tok_lookup(t, ta, na);
    b = sdiff__tok_lookup(t, tb, nb);
    if (na + nb + 1 > *scratch_cap) {
        size_t nc = (na + nb + 1) * 2;
        char *s = (char *)sdiff__realloc(*scratch, nc);
        if (!s) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        *scratch = s;
        *scratch_cap = nc;
    }
    memcpy(*scratch, ta, na);
    memcpy(*scratch + na, tb, nb);
    int32_t r = sdiff__tok_lookup(t, *scratch, na + nb);
    if (r < 0) return sdiff__err(SDIFF_ERR_FORMAT, "%s: merge %d (\"%s %s\") makes a token missing from the vocabulary",
                                 what, (int)rank + 1, ta, tb);
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    uint32_t i = sdiff__tok_pair_hash(key) & t->merge_mask;
    while (t->merge_keys[i] != 0 && t->merge_keys[i] != key) i = (i + 1) & t->merge_mask;
    t->merge_keys[i] = key;
    t->merge_rank[i] = rank;
    t->merge_result[i] = r;
    t->n_merges++;
    return SDIFF_OK;
}

/* The added-token table of step 1 from bos/eos/unk/pad and their flags. */
SDIFF__PRIVATE sdiff_status sdiff__tok_build_specials(sdiff__tokenizer *t) {
    const int32_t ids[4] = {t->bos, t->eos, t->unk, t->pad};
    const bool norm[4] = {t->norm_bos, t->norm_eos, t->norm_unk, t->norm_pad};
    for (int i = 0; i < t->n_specials; i++) sdiff__free(t->specials[i].cps);
    t->n_specials = 0;
    for (int k = 0; k < 4; k++) {
        int slot = 0;
        while (slot < t->n_specials && t->specials[slot].id != ids[k]) slot++;
        if (slot < t->n_specials) { t->specials[slot].normalized = norm[k]; continue; } /* the later entry wins */
        const unsigned char *s = (const unsigned char *)t->text + t->text_off[ids[k]];
        size_t n = strlen((const char *)s), len = 0;
        uint32_t *cps = (uint32_t *)sdiff__malloc((n + 1) * sizeof *cps);
        if (!cps) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        for (size_t i = 0; i < n;) {
            int l = sdiff__json_utf8_len(s + i, s + n);
            if (!l) { sdiff__free(cps); return sdiff__err(SDIFF_ERR_FORMAT, "tokenizer: special token %d is not UTF-8", (int)ids[k]); }
            uint32_t c = s[i] & (l == 1 ? 0x7F : l == 2 ? 0x1F : l == 3 ? 0x0F : 0x07);
            for (int j = 1; j < l; j++) c = (c << 6) | (s[i + (size_t)j] & 0x3F);
            cps[len++] = c;
            i += (size_t)l;
        }
        t->specials[t->n_specials].cps = cps;
        t->specials[t->n_specials].len = len;
        t->specials[t->n_specials].id = ids[k];
        t->specials[t->n_specials].normalized = norm[k];
        t->n_specials++;
    }
    return SDIFF_OK;
}

/* Resolves the byte and special ids once the vocabulary is complete.
   pad_token: NULL == "<|endoftext|>". */
SDIFF__PRIVATE sdiff_status sdiff__tok_finish(sdiff__tokenizer *t, const char *pad_token, const char *what) {
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int n = sdiff__tok_byte_char(b, buf);
        memcpy(buf + n, "</w>", 4);
        t->byte_id[b] = sdiff__tok_lookup(t, buf, (size_t)n);
        t->byte_eow_id[b] = sdiff__tok_lookup(t, buf, (size_t)n + 4);
    }
    t->bos = sdiff__tok_lookup(t, "<|startoftext|>", 15);
    t->eos = sdiff__tok_lookup(t, "<|endoftext|>", 13);
    t->unk = t->eos;
    if (t->bos < 0 || t->eos < 0)
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: the vocabulary lacks <|startoftext|> or <|endoftext|>", what);
    if (!pad_token) pad_token = "<|endoftext|>";
    t->pad = sdiff__tok_lookup(t, pad_token, strlen(pad_token));
    if (t->pad < 0) return sdiff__err(SDIFF_ERR_FORMAT, "%s: pad token \"%s\" is not in the vocabulary", what, pad_token);
    /* A byte missing from the vocabulary becomes unk, as in tokenizers. */
    for (int b = 0; b < 256; b++) {
        if (t->byte_id[b] < 0) t->byte_id[b] = t->unk;
        if (t->byte_eow_id[b] < 0) t->byte_eow_id[b] = t->unk;
    }
    return sdiff__tok_build_specials(t);
}

/* Token text of a special-token entry of a tokenizer config: a string, or
   an AddedToken object {"content": ...}. normalized gets its flag if set. */
SDIFF__PRIVATE const char *sdiff__tok_config_token(const sdiff__json *cfg, const char *key, bool *normalized) {
    const sdiff__json *v = sdiff__json_get(cfg, key);
    if (!v) return NULL;
    if (v->type == SDIFF__JSON_STRING) return v->string;
    if (v->type == SDIFF__JSON_OBJECT) {
        const sdiff__json *nz = sdiff__json_get(v, "normalized");
        if (normalized && nz && nz->type == SDIFF__JSON_BOOL) *normalized = nz->boolean;
        return sdiff__json_string(v, "content", NULL);
    }
    return NULL;
}

#define SDIFF__TOK_MAX_FILE ((size_t)64 << 20)

/* Reads the pad token and the special tokens' "normalized" flags (step 1)
   from the optional tokenizer_config.json and special_tokens_map.json of
   dir; the latter wins, as in transformers. *pad is a new string or NULL. */
SDIFF__PRIVATE sdiff_status sdiff__tok_read_configs(const char *dir, char **pad, bool norm[4]) {
    static const char *const names[2] = {"tokenizer_config.json", "special_tokens_map.json"};
    static const char *const keys[4] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    *pad = NULL;
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(dir) + strlen(names[k]) + 2;
        char *path = (char *)sdiff__malloc(n);
        if (!path) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        snprintf(path, n, "%s/%s", dir, names[k]);
        char *text;
        size_t len;
        FILE *probe = fopen(path, "rb");
        if (!probe) { sdiff__free(path); continue; } /* optional file */
        fclose(probe);
        sdiff_status st = sdiff__read_text(path, SDIFF__TOK_MAX_FILE, &text, &len);
        sdiff__json *cfg = NULL;
        if (st == SDIFF_OK) st = sdiff__json_parse(text, len, path, &cfg);
        sdiff__free(text);
        if (st == SDIFF_OK) {
            for (int i = 0; i < 4; i++) {
                const sdiff__json *v = sdiff__json_get(cfg, keys[i]);
                if (!v) continue;
                /* a plain string, or an AddedToken object with its flag */
                norm[i] = v->type == SDIFF__JSON_OBJECT && sdiff__json_bool(v, "normalized", false);
            }
            const char *p = sdiff__tok_config_token(cfg, "pad_token", NULL);
            if (p) {
                char *dup = sdiff__strdup(p);
                if (!dup) st = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
                else { sdiff__free(*pad); *pad = dup; }
            }
        }
        sdiff__json_free(cfg);
        sdiff__free(path);
        if (st != SDIFF_OK) { sdiff__free(*pad); *pad = NULL; return st; }
    }
    return SDIFF_OK;
}

/* Loads a diffusers/transformers tokenizer folder: vocab.json + merges.txt,
   and the pad token from tokenizer_config.json / special_tokens_map.json
   (default <|endoftext|>). */
SDIFF__PRIVATE sdiff_status sdiff__tokenizer_load_dir(const char *dir, sdiff__tokenizer **out) {
    *out = NULL;
    size_t dn = strlen(dir) + 32;
    char *vpath = (char *)sdiff__malloc(dn), *mpath = (char *)sdiff__malloc(dn);
    char *vtext = NULL, *mtext = NULL, *pad = NULL, *scratch = NULL;
    size_t vlen = 0, mlen = 0, scratch_cap = 0;
    sdiff__json *vocab = NULL;
    sdiff__tokenizer *t = NULL;
    bool norm[4] = {false, false, false, false}; /* tokenizers' default for special tokens */
    int32_t max_id = -1, n_lines = 1;
    sdiff_status st = SDIFF_OK;
    if (!vpath || !mpath) { st = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory"); goto done; }
    snprintf(vpath, dn, "%s/vocab.json", dir);
    snprintf(mpath, dn, "%s/merges.txt", dir);
    if ((st = sdiff__read_text(vpath, SDIFF__TOK_MAX_FILE, &vtext, &vlen)) != SDIFF_OK) goto done;
    if ((st = sdiff__json_parse(vtext, vlen, vpath, &vocab)) != SDIFF_OK) goto done;
    if (vocab->type != SDIFF__JSON_OBJECT || vocab->count == 0) {
        st = sdiff__err(SDIFF_ERR_FORMAT, "%s: expected a non-empty object of token -> id", vpath);
        goto done;
    }
    for (size_t i = 0; i < vocab->count; i++) {
        double d = vocab->items[i].number;
        if (vocab->items[i].type != SDIFF__JSON_NUMBER || !(d >= 0 && d < (1 << 24)) || d != (double)(int32_t)d) {
            st = sdiff__err(SDIFF_ERR_FORMAT, "%s: the id of \"%s\" is not an integer in [0, 2^24)", vpath, vocab->keys[i]);
            goto done;
        }
        if ((int32_t)d > max_id) max_id = (int32_t)d;
    }
    if ((st = sdiff__tok_create(max_id + 1, &t)) != SDIFF_OK) goto done;
    for (size_t i = 0; i < vocab->count; i++)
        if ((st = sdiff__tok_set(t, (int32_t)vocab->items[i].number, vocab->keys[i], strlen(vocab->keys[i]))) != SDIFF_OK) {
            sdiff__err(st, "%s: %s", vpath, sdiff_last_error());
            goto done;
        }
    sdiff__json_free(vocab);
    vocab = NULL;
    sdiff__free(vtext);
    vtext = NULL;

    /* merges.txt: an optional "#version" line, then "a b" per line. */
    if ((st = sdiff__read_text(mpath, SDIFF__TOK_MAX_FILE, &mtext, &mlen)) != SDIFF_OK) goto done;
    for (size_t i = 0; i < mlen; i++) n_lines += mtext[i] == '\n';
    if ((st = sdiff__tok_init_merges(t, n_lines)) != SDIFF_OK) goto done;
    {
        char *p = mtext, *end = mtext + mlen;
        int32_t rank = 0, line_no = 0;
        while (p < end) {
            char *nl = (char *)memchr(p, '\n', (size_t)(end - p));
            char *le = nl ? nl : end;
            line_no++;
            if (le > p && le[-1] == '\r') le[-1] = 0, le--;
            *le = 0;
            char *line = p;
            p = nl ? nl + 1 : end;
            if (line == le || (line_no == 1 && strncmp(line, "#version", 8) == 0)) continue;
            char *sp = strchr(line, ' ');
            if (!sp || sp == line || sp[1] == 0 || strchr(sp + 1, ' ')) {
                st = sdiff__err(SDIFF_ERR_FORMAT, "%s:%d: expected two tokens separated by one space", mpath, (int)line_no);
                goto done;
            }
            int32_t a = sdiff__tok_lookup(t, line, (size_t)(sp - line));
            int32_t b = sdiff__tok_lookup(t, sp + 1, strlen(sp + 1));
            if (a < 0 || b < 0) {
                st = sdiff__err(SDIFF_ERR_FORMAT, "%s:%d: a token of this merge is not in vocab.json", mpath, (int)line_no);
                goto done;
            }
            if ((st = sdiff__tok_add_merge(t, a, b, rank++, &scratch, &scratch_cap, mpath)) != SDIFF_OK) goto done;
        }
    }
    if ((st = sdiff__tok_read_configs(dir, &pad, norm)) != SDIFF_OK) goto done;
    t->norm_bos = norm[0];
    t->norm_eos = norm[1];
    t->norm_unk = norm[2];
    t->norm_pad = norm[3];
    st = sdiff__tok_finish(t, pad, vpath);
done:
    sdiff__json_free(vocab);
    sdiff__free(vtext);
    sdiff__free(mtext);
    sdiff__free(vpath);
    sdiff__free(mpath);
    sdiff__free(pad);
    sdiff__free(scratch);
    if (st != SDIFF_OK) { sdiff__tokenizer_free(t); return st; }
    *out = t;
    return SDIFF_OK;
}

/* CLIP's vocabulary has 49408 entries: 256 byte characters, the same with
   "</w>", 48894 merges, <|startoftext|>, <|endoftext|>. */
#define SDIFF__TOK_CLIP_MERGES (49152 - 256 - 2)

/* Shared by the bpe-file and built-in loaders: ids 0..511 are the byte
   characters, then merge k (ids a[k], b[k]) adds id 512 + k. */
SDIFF__PRIVATE sdiff_status sdiff__tok_build_clip(const int32_t *ma, const int32_t *mb, int32_t n_merges, const char *what,
                                                  sdiff__tokenizer **out) {
    sdiff__tokenizer *t = NULL;
    char *scratch = NULL;
    size_t scratch_cap = 0;
    sdiff_status st = sdiff__tok_create(512 + n_merges + 2, &t);
    if (st != SDIFF_OK) return st;
    for (int r = 0; r < 256 && st == SDIFF_OK; r++) {
        char buf[8];
        int n = sdiff__tok_byte_char(sdiff__tok_byte_at_rank(r), buf);
        st = sdiff__tok_set(t, r, buf, (size_t)n);
        memcpy(buf + n, "</w>", 4);
        if (st == SDIFF_OK) st = sdiff__tok_set(t, 256 + r, buf, (size_t)n + 4);
    }
    if (st == SDIFF_OK) st = sdiff__tok_init_merges(t, n_merges);
    for (int32_t k = 0; k < n_merges && st == SDIFF_OK; k++) {
        int32_t id = 512 + k;
        if (ma[k] < 0 || ma[k] >= id || mb[k] < 0 || mb[k] >= id) {
            st = sdiff__err(SDIFF_ERR_FORMAT, "%s: merge %d uses an unknown token", what, (int)k + 1);
            break;
        }
        const char *ta = t->text + t->text_off[ma[k]], *tb = t->text + t->text_off[mb[k]];
        size_t na = strlen(ta), nb = strlen(tb);
        if (na + nb + 1 > scratch_cap) {
            scratch_cap = (na + nb + 1) * 2;
            char *s = (char *)sdiff__realloc(scratch, scratch_cap);
            if (!s) { st = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory"); break; }
            scratch = s;
        }
        memcpy(scratch, ta, na);
        memcpy(scratch + na, tb, nb);
        st = sdiff__tok_set(t, id, scratch, na + nb);
    }
    if (st == SDIFF_OK) st = sdiff__tok_set(t, 512 + n_merges, "<|startoftext|>", 15);
    if (st == SDIFF_OK) st = sdiff__tok_set(t, 513 + n_merges, "<|endoftext|>", 13);
    for (int32_t k = 0; k < n_merges && st == SDIFF_OK; k++)
        st = sdiff__tok_add_merge(t, ma[k], mb[k], k, &scratch, &scratch_cap, what);
    if (st == SDIFF_OK) st = sdiff__tok_finish(t, NULL, what);
    sdiff__free(scratch);
    if (st != SDIFF_OK) { sdiff__tokenizer_free(t); return st; }
    *out = t;
    return SDIFF_OK;
}

/* Loads OpenAI's bpe_simple_vocab_16e6.txt, gzipped or not: a version line,
   then one merge per line; CLIP uses the first 48894. */
SDIFF__PRIVATE sdiff_status sdiff__tokenizer_load_bpe_file(const char *path, sdiff__tokenizer **out) {
    *out = NULL;
    char *raw = NULL, *text = NULL;
    size_t raw_len = 0, len = 0;
    SDIFF__TRY(sdiff__read_text(path, SDIFF__TOK_MAX_FILE, &raw, &raw_len));
    sdiff_status st = SDIFF_OK;
    if (raw_len >= 2 && (unsigned char)raw[0] == 0x1F && (unsigned char)raw[1] == 0x8B) {
        unsigned char *u;
        st = sdiff__inflate_gzip((const unsigned char *)raw, raw_len, (size_t)256 << 20, path, &u, &len);
        sdiff__free(raw);
        if (st != SDIFF_OK) return st;
        text = (char *)u;
    } else {
        text = raw;
        len = raw_len;
    }
    int32_t *ma = (int32_t *)sdiff__malloc(SDIFF__TOK_CLIP_MERGES * sizeof *ma);
    int32_t *mb = (int32_t *)sdiff__malloc(SDIFF__TOK_CLIP_MERGES * sizeof *mb);
    sdiff__tokenizer *tmp = NULL;
    if (!ma || !mb) { st = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory"); goto done; }
    /* A provisional vocabulary of the byte characters plus each merge as it
       is read resolves merge parts to ids in one pass. */
    if ((st = sdiff__tok_create(512 + SDIFF__TOK_CLIP_MERGES, &tmp)) != SDIFF_OK) goto done;
    for (int r = 0; r < 256 && st == SDIFF_OK; r++) {
        char buf[8];
        int n = sdiff__tok_byte_char(sdiff__tok_byte_at_rank(r), buf);
        st = sdiff__tok_set(tmp, r, buf, (size_t)n);
        memcpy(buf + n, "</w>", 4);
        if (st == SDIFF_OK) st = sdiff__tok_set(tmp, 256 + r, buf, (size_t)n + 4);
    }
    if (st != SDIFF_OK) goto done;
    {
        char *p = text, *end = text + len;
        int32_t k = 0, line_no = 0;
        while (k < SDIFF__TOK_CLIP_MERGES) {
            if (p >= end) {
                st = sdiff__err(SDIFF_ERR_FORMAT, "%s: only %d merges, CLIP needs %d", path, (int)k, SDIFF__TOK_CLIP_MERGES);
                goto done;
            }
            char *nl = (char *)memchr(p, '\n', (size_t)(end - p));
            char *le = nl ? nl : end;
            char *line = p;
            p = nl ? nl + 1 : end;
            if (line_no++ == 0) continue; /* the version header */
            /* Python's str.split(): runs of ASCII whitespace separate parts */
            char *a0 = line;
            while (a0 < le && (*a0 == ' ' || *a0 == '\t' || *a0 == '\r')) a0++;
            char *a1 = a0;
            while (a1 < le && *a1 != ' ' && *a1 != '\t' && *a1 != '\r') a1++;
            char *b0 = a1;
            while (b0 < le && (*b0 == ' ' || *b0 == '\t' || *b0 == '\r')) b0++;
            char *b1 = b0;
            while (b1 < le && *b1 != ' ' && *b1 != '\t' && *b1 != '\r') b1++;
            char *rest = b1;
            while (rest < le && (*rest == ' ' || *rest == '\t' || *rest == '\r')) rest++;
            if (a1 == a0 || b1 == b0 || rest != le) {
                st = sdiff__err(SDIFF_ERR_FORMAT, "%s:%d: expected two tokens", path, (int)line_no);
                goto done;
            }
            ma[k] = sdiff__tok_lookup(tmp, a0, (size_t)(a1 - a0));
            mb[k] = sdiff__tok_lookup(tmp, b0, (size_t)(b1 - b0));
            if (ma[k] < 0 || mb[k] < 0) {
                st = sdiff__err(SDIFF_ERR_FORMAT, "%s:%d: a part of this merge is not an earlier token", path, (int)line_no);
                goto done;
            }
            /* The merged text becomes id 512 + k. A text seen before keeps
               its first id here; the final vocabulary resolves duplicates. */
            size_t na = (size_t)(a1 - a0), nb = (size_t)(b1 - b0);
            memmove(a0 + na, b0, nb); /* the line is not needed after this */
            if (sdiff__tok_lookup(tmp, a0, na + nb) < 0) st = sdiff__tok_set(tmp, 512 + k, a0, na + nb);
            if (st != SDIFF_OK) goto done;
            k++;
        }
    }
    st = sdiff__tok_build_clip(ma, mb, SDIFF__TOK_CLIP_MERGES, path, out);
done:
    sdiff__tokenizer_free(tmp);
    sdiff__free(ma);
    sdiff__free(mb);
    sdiff__free(text);
    return st;
}

#ifdef SDIFF_CLIP_VOCAB
/* sdiff_clip_vocab.h: each merge is 6 characters, the ids of its two parts
   as 3 base-64 digits each (most significant first), alphabet below. */
SDIFF__PRIVATE int sdiff__tok_b64(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    if (c >= 'a' && c <= 'z') return c - 'a' + 36;
    if (c == '+') return 62;
    if (c == '-') return 63;
    return -1;
}
#endif

/* The vocabulary compiled in from sdiff_clip_vocab.h. */
SDIFF__PRIVATE sdiff_status sdiff__tokenizer_load_builtin(sdiff__tokenizer **out) {
    *out = NULL;
#ifdef SDIFF_CLIP_VOCAB
    int32_t *ma = (int32_t *)sdiff__malloc(SDIFF__TOK_CLIP_MERGES * sizeof *ma);
    int32_t *mb = (int32_t *)sdiff__malloc(SDIFF__TOK_CLIP_MERGES * sizeof *mb);
    sdiff_status st = SDIFF_OK;
    if (!ma || !mb) st = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    int32_t k = 0;
    for (int c = 0; st == SDIFF_OK && c < sdiff__clip_merges_chunk_count; c++) {
        const char *s = sdiff__clip_merges_chunks[c];
        for (; *s && k < SDIFF__TOK_CLIP_MERGES; s += 6, k++) {
            int32_t v[2] = {0, 0};
            int d = 0;
            for (int q = 0; q < 6 && d >= 0; q++) { /* stops at the first bad digit (or the NUL) */
                d = sdiff__tok_b64(s[q]);
                v[q / 3] = v[q / 3] << 6 | d;
            }
            if (d < 0) { st = sdiff__err(SDIFF_ERR_FORMAT, "built-in vocabulary: corrupt"); break; }
            ma[k] = v[0];
            mb[k] = v[1];
        }
    }
    if (st == SDIFF_OK && (k != SDIFF__TOK_CLIP_MERGES || k != sdiff__clip_merges_count))
        st = sdiff__err(SDIFF_ERR_FORMAT, "built-in vocabulary: %d merges, expected %d", (int)k, SDIFF__TOK_CLIP_MERGES);
    if (st == SDIFF_OK) st = sdiff__tok_build_clip(ma, mb, k, "built-in vocabulary", out);
    sdiff__free(ma);
    sdiff__free(mb);
    return st;
#else
    return sdiff__err(SDIFF_ERR_UNSUPPORTED, "no built-in CLIP vocabulary: include sdiff_clip_vocab.h before the "
                                             "implementation, or give a tokenizer folder or bpe_simple_vocab_16e6.txt.gz");
#endif
}

/* --- encoding --------------------------------------------------------------- */
/* Chooses the pad token by its text, as a config's plain-string pad_token
   does: "!" for SD 2.x (which also makes "!" a raw-matched special token,
   and leaves eos normalized: step 1). */
SDIFF__INTERNAL sdiff_status sdiff__tokenizer_set_pad(sdiff__tokenizer *t, const char *pad_token) {
    int32_t id = sdiff__tok_lookup(t, pad_token, strlen(pad_token));
    if (id < 0) return sdiff__err(SDIFF_ERR_INVALID_ARG, "tokenizer: pad token \"%s\" is not in the vocabulary", pad_token);
    t->pad = id;
    t->norm_pad = false;
    return sdiff__tok_build_specials(t);
}

typedef struct sdiff__tok_out {
    int32_t *ids;
    int n, cap;          /* tokens between bos and eos; later ones are dropped */
    int32_t *sym;        /* BPE scratch: symbols of the current word           */
    int32_t *rank;       /* rank of pair (sym[i], sym[i+1]), -1 if none        */
    int32_t *res;        /* its merge result                                   */
    size_t scratch_cap;  /* entries in each of sym, rank, res                  */
    sdiff_status status; /* out of memory while growing the scratch            */
} sdiff__tok_out;

SDIFF__PRIVATE void sdiff__tok_emit(sdiff__tok_out *o, int32_t id) {
    if (o->n < o->cap) o->ids[o->n++] = id;
}

/* BPE of one pre-token (code points w[0..n)). */
SDIFF__PRIVATE void sdiff__tok_bpe(const sdiff__tokenizer *t, const uint32_t *w, size_t n, sdiff__tok_out *o) {
    if (4 * n > o->scratch_cap) { /* a code point is at most 4 UTF-8 bytes */
        size_t cap = 4 * n < 256 ? 256 : 4 * n;
        int32_t *p = (int32_t *)sdiff__realloc(o->sym, 3 * cap * sizeof *p);
        if (!p) { o->status = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenize: out of memory"); return; }
        o->sym = p;
        o->rank = p + cap;
        o->res = p + 2 * cap;
        o->scratch_cap = cap;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b[4];
        int nb;
        uint32_t cp = w[i];
        if (cp < 0x80) { b[0] = (unsigned char)cp; nb = 1; }
        else if (cp < 0x800) { b[0] = (unsigned char)(0xC0 | (cp >> 6)); b[1] = (unsigned char)(0x80 | (cp & 0x3F)); nb = 2; }
        else if (cp < 0x10000) {
            b[0] = (unsigned char)(0xE0 | (cp >> 12)); b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            b[2] = (unsigned char)(0x80 | (cp & 0x3F)); nb = 3;
        } else {
            b[0] = (unsigned char)(0xF0 | (cp >> 18)); b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (unsigned char)(0x80 | (cp & 0x3F)); nb = 4;
        }
        for (int k = 0; k < nb; k++) {
            bool last = i + 1 == n && k + 1 == nb;
            o->sym[m++] = last ? t->byte_eow_id[b[k]] : t->byte_id[b[k]];
        }
    }
    for (size_t i = 0; i + 1 < m; i++) o->rank[i] = sdiff__tok_merge_rank(t, o->sym[i], o->sym[i + 1], &o->res[i]);
    /* Merge the lowest-ranked pair, leftmost first (tokenizers' order), until
       none is left; a merge only changes the ranks of the pairs next to it. */
    while (m > 1) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i + 1 < m; i++)
            if (o->rank[i] >= 0 && (best == SIZE_MAX || o->rank[i] < o->rank[best])) best = i;
        if (best == SIZE_MAX) break;
        o->sym[best] = o->res[best];
        memmove(o->sym + best + 1, o->sym + best + 2, (m - best - 2) * sizeof *o->sym);
        if (m > best + 3) { /* pairs after the merged one shift down by one */
            memmove(o->rank + best + 1, o->rank + best + 2, (m - best - 3) * sizeof *o->rank);
            memmove(o->res + best + 1, o->res + best + 2, (m - best - 3) * sizeof *o->res);
        }
        m--;
        if (best > 0) o->rank[best - 1] = sdiff__tok_merge_rank(t, o->sym[best - 1], o->sym[best], &o->res[best - 1]);
        if (best + 1 < m) o->rank[best] = sdiff__tok_merge_rank(t, o->sym[best], o->sym[best + 1], &o->res[best]);
        else o->rank[best] = -1;
    }
    for (size_t i = 0; i < m; i++) sdiff__tok_emit(o, o->sym[i]);
}

SDIFF__PRIVATE bool sdiff__tok_match_ascii(const uint32_t *c, size_t n, const char *lit) {
    for (size_t k = 0; lit[k]; k++)
        if (k >= n || c[k] != (unsigned char)lit[k]) return false;
    return true;
}

/* The pre-tokenizer regex over normalized code points c[0..n), leftmost-first
   alternation as Oniguruma runs it, then BPE of each match. */
SDIFF__PRIVATE void sdiff__tok_pretokenize(const sdiff__tokenizer *t, const uint32_t *c, size_t n, sdiff__tok_out *o) {
    static const char *const contractions[7] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    size_t i = 0;
    while (i < n && o->n < o->cap && o->status == SDIFF_OK) {
        uint32_t x = c[i];
        size_t j = i + 1;
        if (sdiff__tok_is_space(x)) { i++; continue; }
        size_t lit = x != '<' ? 0 : sdiff__tok_match_ascii(c + i, n - i, "<|startoftext|>") ? 15
                                  : sdiff__tok_match_ascii(c + i, n - i, "<|endoftext|>")   ? 13 : 0;
        if (lit) {
            /* The regex keeps the literal whole, then ByteLevel's GPT-2 regex
               splits it into "<|", the letters, "|>" (measured). */
            sdiff__tok_bpe(t, c + i, 2, o);
            sdiff__tok_bpe(t, c + i + 2, lit - 4, o);
            sdiff__tok_bpe(t, c + i + lit - 2, 2, o);
            i += lit;
            continue;
        } else {
            bool done = false;
            if (x == '\'')
                for (int k = 0; k < 7 && !done; k++)
                    if (sdiff__tok_match_ascii(c + i, n - i, contractions[k])) { j = i + strlen(contractions[k]); done = true; }
            if (!done) {
                if (sdiff__tok_is_letter(x)) { /* [\p{L}]+ */
                    while (j < n && sdiff__tok_is_letter(c[j])) j++;
                } else if (!sdiff__tok_is_number(x)) { /* [^\s\p{L}\p{N}]+ ([\p{N}] is one) */
                    while (j < n && !sdiff__tok_is_space(c[j]) && !sdiff__tok_is_letter(c[j]) && !sdiff__tok_is_number(c[j])) j++;
                }
            }
        }
        sdiff__tok_bpe(t, c + i, j - i, o);
        i = j;
    }
}

/* NFC then lowercase of cps[0..n) into norm (room for 8*n); tmp has 4*n. */
SDIFF__PRIVATE size_t sdiff__tok_normalize(const uint32_t *cps, size_t n, uint32_t *norm, uint32_t *tmp) {
    n = sdiff__tok_nfc(cps, n, tmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (tmp[i] == 0x130) { norm[m++] = 'i'; norm[m++] = 0x307; } /* the one 2-char lowercase */
        else norm[m++] = sdiff__tok_lower(tmp[i]);
    }
    return m;
}

/* The longest added token with this normalized flag at c[0..n), or NULL. */
SDIFF__PRIVATE const struct sdiff__tok_special *sdiff__tok_special_at(const sdiff__tokenizer *t, const uint32_t *c, size_t n,
                                                                     bool normalized) {
    const struct sdiff__tok_special *best = NULL;
    for (int k = 0; k < t->n_specials; k++) {
        const struct sdiff__tok_special *sp = &t->specials[k];
        if (sp->normalized != normalized || !sp->len || sp->len > n || (best && sp->len <= best->len)) continue;
        if (memcmp(c, sp->cps, sp->len * sizeof *c) == 0) best = sp;
    }
    return best;
}

/* Step 1 and on for raw code points c[0..n): cut out the raw-matched added
   tokens (leftmost, longest), normalize each stretch between, cut out the
   normalized ones, pre-tokenize the rest. norm has 8n, tmp 4n entries. */
SDIFF__PRIVATE void sdiff__tok_encode(const sdiff__tokenizer *t, const uint32_t *c, size_t n, uint32_t *norm, uint32_t *tmp,
                                      sdiff__tok_out *o) {
    size_t start = 0;
    for (size_t i = 0; i <= n && o->n < o->cap; i++) {
        const struct sdiff__tok_special *sp = i < n ? sdiff__tok_special_at(t, c + i, n - i, false) : NULL;
        if (!sp && i < n) continue;
        size_t m = sdiff__tok_normalize(c + start, i - start, norm, tmp), s2 = 0;
        for (size_t j = 0; j <= m; j++) {
            const struct sdiff__tok_special *sq = j < m ? sdiff__tok_special_at(t, norm + j, m - j, true) : NULL;
            if (!sq && j < m) continue;
            sdiff__tok_pretokenize(t, norm + s2, j - s2, o);
            if (sq) {
                sdiff__tok_emit(o, sq->id);
                j += sq->len - 1;
            }
            s2 = j + 1;
        }
        if (sp) {
            sdiff__tok_emit(o, sp->id);
            i += sp->len - 1;
        }
        start = i + 1;
    }
}

/* ids[0..max_len): <|startoftext|>, at most max_len - 2 tokens, <|endoftext|>,
   then the pad token up to max_len: what diffusers gets from
   tokenizer(prompt, padding="max_length", max_length=77, truncation=True).
   text is NUL-terminated UTF-8 (NULL == ""); invalid UTF-8 is
   SDIFF_ERR_INVALID_ARG naming the byte offset. */
SDIFF__PRIVATE sdiff_status sdiff__tokenize(const sdiff__tokenizer *t, const char *text, int32_t *ids, int max_len) {
    if (!t || !ids || max_len < 2) return sdiff__err(SDIFF_ERR_INVALID_ARG, "tokenize: need a tokenizer and max_len >= 2");
    if (!text) text = "";
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text);
    for (size_t i = 0; i < len;) {
        int k = sdiff__json_utf8_len(s + i, s + len);
        if (!k) return sdiff__err(SDIFF_ERR_INVALID_ARG, "prompt: invalid UTF-8 at byte %zu", i);
        i += (size_t)k;
    }
    /* Code points (n), the decomposed / NFC form (4n), normalized (8n). */
    size_t n = len + 1;
    if (n > SIZE_MAX / (13 * sizeof(uint32_t))) return sdiff__err(SDIFF_ERR_INVALID_ARG, "prompt: too long");
    uint32_t *buf = (uint32_t *)sdiff__malloc(13 * n * sizeof(uint32_t));
    if (!buf) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "tokenize: out of memory");
    uint32_t *cps = buf, *tmp = buf + n, *norm = buf + 5 * n;
    sdiff__tok_out o;
    memset(&o, 0, sizeof o);
    o.ids = ids + 1;
    o.cap = max_len - 2;
    o.status = SDIFF_OK;
    size_t nc = 0;
    for (size_t i = 0; i < len;) { /* decode (validated above) */
        int k = sdiff__json_utf8_len(s + i, s + len);
        uint32_t c = s[i] & (k == 1 ? 0x7F : k == 2 ? 0x1F : k == 3 ? 0x0F : 0x07);
        for (int j = 1; j < k; j++) c = (c << 6) | (s[i + (size_t)j] & 0x3F);
        cps[nc++] = c;
        i += (size_t)k;
    }
    sdiff__tok_encode(t, cps, nc, norm, tmp, &o);
    sdiff__free(o.sym);
    sdiff__free(buf);
    if (o.status != SDIFF_OK) return o.status;
    ids[0] = t->bos;
    ids[1 + o.n] = t->eos;
    for (int i = 2 + o.n; i < max_len; i++) ids[i] = t->pad;
    return SDIFF_OK;
}

/* >>weights ================================================================
   Weights: finding a tensor by its diffusers name, checking its shape, and
   uploading it into the model's single weight allocation

   Models ask for tensors by their diffusers names ("down_blocks.0.resnets.1.
   conv1.weight"). A diffusers folder stores exactly those names; a
   single-file checkpoint stores the original LDM names, so a key map
   translates (sdiff__ldm_name). Loading runs the model's weight-listing
   function twice: the first pass only adds up bytes, then one backend
   allocation is made, and the second pass fills it. Convolution weights are
   reordered to [Co, KH, KW, Ci] for channels-last convolution on the way.
   ========================================================================= */
typedef enum sdiff__keymap {
    SDIFF__KEYS_DIFFUSERS = 0,  /* names as diffusers writes them             */
    SDIFF__KEYS_LDM_UNET,       /* model.diffusion_model.input_blocks...      */
    SDIFF__KEYS_LDM_VAE,        /* first_stage_model.encoder.down...          */
    SDIFF__KEYS_LDM_CLIP        /* cond_stage_model.transformer.text_model... */
} sdiff__keymap;

/* Where a component's tensors come from: one or more safetensors files. */
typedef struct sdiff__wsource {
    const char *component;          /* "unet", "vae", "text_encoder" (messages) */
    sdiff__safetensors *files;
    int n_files;
    sdiff__keymap keymap;
    int ldm_layers_per_block;       /* UNet: resnets per down block            */
    int ldm_n_blocks;               /* UNet/VAE: number of resolution levels   */
} sdiff__wsource;

/* --- the LDM key map (diffusers' loaders/single_file_utils.py, inverted) */
SDIFF__PRIVATE bool sdiff__starts(const char *s, const char *prefix, const char **rest) {
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0) return false;
    if (rest) *rest = s + n;
    return true;
}
/* ResNet sub-names: diffusers -> LDM UNet ("norm1" -> "in_layers.0", ...). */
SDIFF__PRIVATE const char *sdiff__ldm_unet_resnet_part(const char *p, const char **rest) {
    static const char *const map[][2] = {{"norm1.", "in_layers.0."}, {"conv1.", "in_layers.2."},
                                          {"norm2.", "out_layers.0."}, {"conv2.", "out_layers.3."},
                                          {"time_emb_proj.", "emb_layers.1."}, {"conv_shortcut.", "skip_connection."}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (sdiff__starts(p, map[i][0], rest)) return map[i][1];
    return NULL;
}
/* VAE attention sub-names: diffusers -> LDM. */
SDIFF__PRIVATE const char *sdiff__ldm_vae_attn_part(const char *p, const char **rest) {
    static const char *const map[][2] = {{"group_norm.", "norm."}, {"to_q.", "q."}, {"to_k.", "k."},
                                          {"to_v.", "v."}, {"to_out.0.", "proj_out."}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (sdiff__starts(p, map[i][0], rest)) return map[i][1];
    return NULL;
}
/* Writes up to two candidate LDM names for a diffusers name (the UNet's
   upsampler sits at index 1 or 2 of its output block, depending on whether
   the block has attention). Returns how many were written (0: no mapping). */
SDIFF__PRIVATE int sdiff__ldm_name(const sdiff__wsource *src, const char *name, char out[2][256]) {
    const char *r, *part;
    int b, l, n = 0;
    char tail[200];
#define SDIFF__LDM_OUT(...) (snprintf(out[n], 256, __VA_ARGS__) < 256 ? ++n : n)
    if (src->keymap == SDIFF__KEYS_LDM_CLIP) {
        /* the text model keeps its transformers names under a prefix */
        SDIFF__LDM_OUT("cond_stage_model.transformer.%s", name);
        if (sdiff__starts(name, "text_model.", &r)) SDIFF__LDM_OUT("cond_stage_model.transformer.%s", r);
        return n;
    }
    if (src->keymap == SDIFF__KEYS_LDM_UNET) {
        const int L = src->ldm_layers_per_block;
        static const char *const direct[][2] = {
            {"time_embedding.linear_1.", "time_embed.0."}, {"time_embedding.linear_2.", "time_embed.2."},
            {"conv_in.", "input_blocks.0.0."}, {"conv_norm_out.", "out.0."}, {"conv_out.", "out.2."}};
        for (size_t i = 0; i < sizeof direct / sizeof direct[0]; i++)
            if (sdiff__starts(name, direct[i][0], &r)) { SDIFF__LDM_OUT("model.diffusion_model.%s%s", direct[i][1], r); return n; }
        if (sscanf(name, "down_blocks.%d.resnets.%d.%199s", &b, &l, tail) == 3 &&
            (part = sdiff__ldm_unet_resnet_part(tail, &r)) != NULL)
            SDIFF__LDM_OUT("model.diffusion_model.input_blocks.%d.0.%s%s", 1 + b * (L + 1) + l, part, r);
        else if (sscanf(name, "down_blocks.%d.attentions.%d.%199s", &b, &l, tail) == 3)
            SDIFF__LDM_OUT("model.diffusion_model.input_blocks.%d.1.%s", 1 + b * (L + 1) + l, tail);
        else if (sscanf(name, "down_blocks.%d.downsamplers.0.conv.%199s", &b, tail) == 2)
            SDIFF__LDM_OUT("model.diffusion_model.input_blocks.%d.0.op.%s", 1 + b * (L + 1) + L, tail);
        else if (sscanf(name, "mid_block.resnets.%d.%199s", &l, tail) == 2 &&
                 (part = sdiff__ldm_unet_resnet_part(tail, &r)) != NULL)
            SDIFF__LDM_OUT("model.diffusion_model.middle_block.%d.%s%s", 2 * l, part, r);
        else if (sscanf(name, "mid_block.attentions.%d.%199s", &l, tail) == 2)
            SDIFF__LDM_OUT("model.diffusion_model.middle_block.%d.%s", 1 + 2 * l, tail);
        else if (sscanf(name, "up_blocks.%d.resnets.%d.%199s", &b, &l, tail) == 3 &&
                 (part = sdiff__ldm_unet_resnet_part(tail, &r)) != NULL)
            SDIFF__LDM_OUT("model.diffusion_model.output_blocks.%d.0.%s%s", b * (L + 1) + l, part, r);
        else if (sscanf(name, "up_blocks.%d.attentions.%d.%199s", &b, &l, tail) == 3)
            SDIFF__LDM_OUT("model.diffusion_model.output_blocks.%d.1.%s", b * (L + 1) + l, tail);
        else if (sscanf(name, "up_blocks.%d.upsamplers.0.conv.%199s", &b, tail) == 2) {
            SDIFF__LDM_OUT("model.diffusion_model.output_blocks.%d.1.conv.%s", b * (L + 1) + L, tail);
            SDIFF__LDM_OUT("model.diffusion_model.output_blocks.%d.2.conv.%s", b * (L + 1) + L, tail);
        }
        return n;
    }
    if (src->keymap == SDIFF__KEYS_LDM_VAE) {
        const char *coder = sdiff__starts(name, "encoder.", &r) ? "encoder" : sdiff__starts(name, "decoder.", &r) ? "decoder" : NULL;
        if (!coder) { SDIFF__LDM_OUT("first_stage_model.%s", name); return n; } /* quant_conv, post_quant_conv */
        const char *rest = r;
        if (sdiff__starts(rest, "conv_norm_out.", &r)) SDIFF__LDM_OUT("first_stage_model.%s.norm_out.%s", coder, r);
        else if (sscanf(rest, "down_blocks.%d.resnets.%d.%199s", &b, &l, tail) == 3) {
            if (sdiff__starts(tail, "conv_shortcut.", &r))
                SDIFF__LDM_OUT("first_stage_model.%s.down.%d.block.%d.nin_shortcut.%s", coder, b, l, r);
            else SDIFF__LDM_OUT("first_stage_model.%s.down.%d.block.%d.%s", coder, b, l, tail);
        }
        else if (sscanf(rest, "down_blocks.%d.downsamplers.0.conv.%199s", &b, tail) == 2)
            SDIFF__LDM_OUT("first_stage_model.%s.down.%d.downsample.conv.%s", coder, b, tail);
        else if (sscanf(rest, "up_blocks.%d.resnets.%d.%199s", &b, &l, tail) == 3) {
            int lvl = src->ldm_n_blocks - 1 - b;
            if (sdiff__starts(tail, "conv_shortcut.", &r))
                SDIFF__LDM_OUT("first_stage_model.%s.up.%d.block.%d.nin_shortcut.%s", coder, lvl, l, r);
            else SDIFF__LDM_OUT("first_stage_model.%s.up.%d.block.%d.%s", coder, lvl, l, tail);
        } else if (sscanf(rest, "up_blocks.%d.upsamplers.0.conv.%199s", &b, tail) == 2)
            SDIFF__LDM_OUT("first_stage_model.%s.up.%d.upsample.conv.%s", coder, src->ldm_n_blocks - 1 - b, tail);
        else if (sscanf(rest, "mid_block.resnets.%d.%199s", &l, tail) == 2) {
            if (sdiff__starts(tail, "conv_shortcut.", &r))
                SDIFF__LDM_OUT("first_stage_model.%s.mid.block_%d.nin_shortcut.%s", coder, l + 1, r);
            else SDIFF__LDM_OUT("first_stage_model.%s.mid.block_%d.%s", coder, l + 1, tail);
        } else if (sscanf(rest, "mid_block.attentions.0.%199s", tail) == 1 && (part = sdiff__ldm_vae_attn_part(tail, &r)))
            SDIFF__LDM_OUT("first_stage_model.%s.mid.attn_1.%s%s", coder, part, r);
        else SDIFF__LDM_OUT("first_stage_model.%s.%s", coder, rest); /* conv_in, conv_out */
        return n;
    }
#undef SDIFF__LDM_OUT
    return 0;
}

/* The tensor stored under a diffusers name, wherever it lives. */
SDIFF__PRIVATE const sdiff__st_tensor *sdiff__wsource_find(const sdiff__wsource *src, const char *name,
                                                          char *stored_name, size_t stored_size) {
    char cand[2][256];
    int nc;
    const char *rest;
    if (src->keymap == SDIFF__KEYS_DIFFUSERS) {
        /* transformers 5 saves CLIPTextModel without its "text_model." prefix */
        snprintf(cand[0], sizeof cand[0], "%s", name);
        nc = 1;
        if (sdiff__starts(name, "text_model.", &rest)) snprintf(cand[nc++], sizeof cand[1], "%s", rest);
    } else nc = sdiff__ldm_name(src, name, cand);
    for (int c = 0; c < nc; c++)
        for (int f = 0; f < src->n_files; f++) {
            const sdiff__st_tensor *t = sdiff__st_find(&src->files[f], cand[c]);
            if (t) { memcpy(stored_name, cand[c], SDIFF__MIN(stored_size, sizeof cand[c])); stored_name[stored_size - 1] = 0; return t; }
        }
    if (nc) memcpy(stored_name, cand[0], SDIFF__MIN(stored_size, sizeof cand[0]));
    else snprintf(stored_name, stored_size, "%s", name);
    stored_name[stored_size - 1] = 0;
    return NULL;
}

/* --- the two-pass loader */
typedef struct sdiff__weights {       /* what a model component owns         */
    sdiff__backend *be;
    void *block;                        /* one backend allocation             */
    sdiff__tensor *tensors;             /* headers, one per weight            */
    size_t n_tensors;
    int64_t n_params;
} sdiff__weights;

typedef struct sdiff__wloader {
    const sdiff__wsource *src;
    sdiff__weights *w;
    bool planning;                      /* pass 1: count only                 */
    size_t bytes, n;                    /* pass 1 totals / pass 2 cursors     */
    sdiff_status status;                /* first failure (sticky)             */
    sdiff__tensor dummy;                /* what pass 1 and failures return    */
} sdiff__wloader;

SDIFF__PRIVATE void sdiff__weights_free(sdiff__weights *w) {
    if (w->block) w->be->free(w->be, w->block);
    sdiff__free(w->tensors);
    memset(w, 0, sizeof *w);
}
SDIFF__PRIVATE void sdiff__wl_fail(sdiff__wloader *wl, sdiff_status st, const char *fmt, ...) SDIFF__PRINTF(3, 4);
SDIFF__PRIVATE void sdiff__wl_fail(sdiff__wloader *wl, sdiff_status st, const char *fmt, ...) {
    if (wl->status != SDIFF_OK) return;
    wl->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sdiff__g_error, sizeof sdiff__g_error, fmt, ap);
    va_end(ap);
}
SDIFF__PRIVATE void sdiff__shape_str(char *buf, size_t size, int nd, const int64_t *ne) {
    size_t o = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < nd && o < size; i++) o += (size_t)snprintf(buf + o, size - o, i ? ", %lld" : "%lld", (long long)ne[i]);
    if (o < size) snprintf(buf + o, size - o, "]");
}
/* Fills rows [row0, row0 + ne[0]) of t (pass 2) from the stored tensor `name`,
   whose expected shape in PyTorch's layout is nd/ne. Layout rules:
   - nd == 4 (a convolution [Co, Ci, KH, KW]) is stored as [Co, KH, KW, Ci];
   - nd == 2 also accepts a stored [N, K, 1, 1] (1x1 convolutions and the
     LDM VAE's conv-shaped attention projections are linear layers in NHWC). */
SDIFF__PRIVATE void sdiff__wl_fill(sdiff__wloader *wl, sdiff__tensor *t, int64_t row0, const char *name, int nd,
                                   const int64_t *ne) {
    char stored[256], want[96], got[96];
    const sdiff__st_tensor *st = sdiff__wsource_find(wl->src, name, stored, sizeof stored);
    if (!st) {
        sdiff__wl_fail(wl, SDIFF_ERR_MODEL, "%s: missing tensor '%s'%s%s", wl->src->component, name,
                       strcmp(stored, name) ? ", stored as " : "", strcmp(stored, name) ? stored : "");
        return;
    }
    bool ok = st->nd == nd || (nd == 2 && st->nd == 4 && st->shape[2] == 1 && st->shape[3] == 1);
    for (int i = 0; ok && i < nd; i++) ok = st->shape[i] == ne[i];
    if (!ok) {
        sdiff__shape_str(want, sizeof want, nd, ne);
        sdiff__shape_str(got, sizeof got, st->nd, st->shape);
        sdiff__wl_fail(wl, SDIFF_ERR_MODEL, "%s: tensor '%s' has shape %s, expected %s", wl->src->component, stored, got, want);
        return;
    }
    if (st->dtype < 0) {
        sdiff__wl_fail(wl, SDIFF_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16",
                       wl->src->component, stored, st->dtype_name);
        return;
    }
    if (wl->planning) return;
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= ne[i];
    sdiff__backend *be = wl->w->be;
    sdiff__tensor part = *t;                                    /* rows [row0, row0+ne[0]) */
    part.nd = nd == 4 ? 4 : nd;
    for (int i = 0; i < nd; i++) part.ne[i] = ne[i];
    if (nd == 4) { part.ne[1] = ne[2]; part.ne[2] = ne[3]; part.ne[3] = ne[1]; }
    part.row_stride = part.ne[part.nd - 1];
    part.data = (char *)t->data + (size_t)(row0 * (numel / ne[0])) * sdiff__dtype_size(t->dtype);
    if (nd == 4) be->upload_conv(be, &part, st->data, (sdiff__dtype)st->dtype); /* [Co,Ci,KH,KW] -> [Co,KH,KW,Ci] */
    else be->upload(be, &part, st->data, (sdiff__dtype)st->dtype);
}
/* A new weight tensor of shape ne (pass 2: in the weight block). */
SDIFF__PRIVATE sdiff__tensor *sdiff__wl_alloc(sdiff__wloader *wl, int nd, const int64_t *ne) {
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= ne[i];
    size_t bytes = ((size_t)numel * sdiff__dtype_size(wl->w->be->weight_dtype) + 255) & ~(size_t)255;
    if (wl->planning || wl->status != SDIFF_OK) {
        wl->bytes += bytes;
        wl->n++;
        wl->w->n_params += numel;
        return &wl->dummy;
    }
    sdiff__tensor *t = &wl->w->tensors[wl->n++];
    t->dtype = wl->w->be->weight_dtype;
    t->nd = nd;
    for (int i = 0; i < 4; i++) t->ne[i] = i < nd ? ne[i] : 1;
    if (nd == 4) { t->ne[1] = ne[2]; t->ne[2] = ne[3]; t->ne[3] = ne[1]; }
    t->row_stride = t->ne[nd - 1];
    t->data = (char *)wl->w->block + wl->bytes;
    wl->bytes += bytes;
    return t;
}
/* The weight `name` (printf-style), of the given PyTorch shape. */
SDIFF__PRIVATE sdiff__tensor *sdiff__wl_get(sdiff__wloader *wl, int nd, int64_t n0, int64_t n1, int64_t n2, int64_t n3,
                                            const char *fmt, ...) SDIFF__PRINTF(7, 8);
SDIFF__PRIVATE sdiff__tensor *sdiff__wl_get(sdiff__wloader *wl, int nd, int64_t n0, int64_t n1, int64_t n2, int64_t n3,
                                            const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t ne[4] = {n0, n1, n2, n3};
    sdiff__tensor *t = sdiff__wl_alloc(wl, nd, ne);
    sdiff__wl_fill(wl, t, 0, name, nd, ne);
    return t;
}
/* Several [n_i, K] weights stacked into one [sum n_i, K] tensor, so that e.g.
   q, k and v run as one matrix product. prefix + parts[i] + suffix name them. */
SDIFF__PRIVATE sdiff__tensor *sdiff__wl_stack(sdiff__wloader *wl, int n_parts, const int64_t *rows, int64_t k,
                                              const char *prefix, const char *const *parts, const char *suffix) {
    int64_t total = 0;
    for (int i = 0; i < n_parts; i++) total += rows[i];
    int64_t ne[2] = {total, k};
    sdiff__tensor *t = sdiff__wl_alloc(wl, k ? 2 : 1, ne);
    if (!k) ne[0] = total;
    int64_t row0 = 0;
    for (int i = 0; i < n_parts; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", prefix, parts[i], suffix);
        int64_t pne[2] = {rows[i], k};
        sdiff__wl_fill(wl, t, row0, name, k ? 2 : 1, pne);
        row0 += rows[i];
    }
    return t;
}
/* One weight matrix (and bias) whose rows several layers share, filled in listing order, so that
   their products with the same input run as one GEMM: a UNet's resnets' time-embedding
   projections, its transformers' cross-attention keys and values. sdiff__wl_shared_take hands
   a layer the next rows and returns where they start (the layer's columns in the product). */
typedef struct sdiff__wl_shared { sdiff__tensor *w, *b; int64_t rows, k, next; } sdiff__wl_shared;
SDIFF__PRIVATE void sdiff__wl_shared_init(sdiff__wloader *wl, sdiff__wl_shared *sh, int64_t rows, int64_t k, bool bias) {
    const int64_t ne[2] = {rows, k};
    sh->w = sdiff__wl_alloc(wl, 2, ne);
    sh->b = bias ? sdiff__wl_alloc(wl, 1, ne) : NULL;
    sh->rows = rows;
    sh->k = k;
    sh->next = 0;
}
/* n_parts weights prefix + parts[i] + ".weight" ([rows, k] each; their ".bias" too when the
   matrix has one) as the next rows. */
SDIFF__PRIVATE int64_t sdiff__wl_shared_take(sdiff__wloader *wl, sdiff__wl_shared *sh, int64_t rows, const char *prefix,
                                             int n_parts, const char *const *parts) {
    const int64_t row0 = sh->next;
    if (row0 + n_parts * rows > sh->rows) {
        sdiff__wl_fail(wl, SDIFF_ERR_MODEL, "%s: %s: more shared weight rows than the config gives", wl->src->component,
                       prefix);
        return 0;
    }
    for (int i = 0; i < n_parts; i++, sh->next += rows) {
        char name[256];
        const int64_t ne[2] = {rows, sh->k};
        snprintf(name, sizeof name, "%s%s.weight", prefix, parts[i]);
        sdiff__wl_fill(wl, sh->w, sh->next, name, 2, ne);
        if (!sh->b) continue;
        snprintf(name, sizeof name, "%s%s.bias", prefix, parts[i]);
        sdiff__wl_fill(wl, sh->b, sh->next, name, 1, ne);
    }
    return row0;
}
/* Runs a model's weight-listing function `list(wl, model)` twice (plan, then
   load) and leaves the weights in w. */
typedef void (*sdiff__wlist_fn)(sdiff__wloader *wl, void *model);
SDIFF__PRIVATE sdiff_status sdiff__weights_load(sdiff__backend *be, const sdiff__wsource *src, sdiff__wlist_fn list,
                                               void *model, sdiff__weights *w) {
    memset(w, 0, sizeof *w);
    w->be = be;
    sdiff__wloader wl;
    memset(&wl, 0, sizeof wl);
    wl.src = src;
    wl.w = w;
    wl.planning = true;
    wl.dummy.nd = 1;
    wl.dummy.ne[0] = 1;
    wl.dummy.row_stride = 1;
    list(&wl, model);
    if (wl.status != SDIFF_OK) return wl.status;
    w->block = be->alloc(be, wl.bytes);
    w->tensors = (sdiff__tensor *)sdiff__calloc(wl.n ? wl.n : 1, sizeof *w->tensors);
    if (!w->block || !w->tensors) {
        sdiff__weights_free(w);
        return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of %s memory for %zu MiB of weights", src->component,
                          be->name, wl.bytes >> 20);
    }
    w->n_tensors = wl.n;
    int64_t params = w->n_params;
    wl.planning = false;
    wl.bytes = wl.n = 0;
    list(&wl, model);
    w->n_params = params;
    if (wl.status == SDIFF_OK && be->status != SDIFF_OK) wl.status = be->status;
    if (wl.status != SDIFF_OK) sdiff__weights_free(w);
    return wl.status;
}

/* >>layers =================================================================
   Layers shared by the models: small helpers that allocate an output in the
   arena and call one op, so a forward pass reads like the PyTorch module.
   ========================================================================= */
typedef struct sdiff__run {
    sdiff__backend *be;
    sdiff__arena *ar;
} sdiff__run;

/* The same leading shape as x, with the last dimension set to c. */
SDIFF__PRIVATE sdiff__tensor *sdiff__like(sdiff__run *r, const sdiff__tensor *x, int64_t c) {
    int64_t ne[4] = {x->ne[0], x->ne[1], x->ne[2], x->ne[3]};
    ne[x->nd - 1] = c;
    return sdiff__new(r->ar, r->be->act_dtype, x->nd, ne[0], ne[1], ne[2], ne[3]);
}
/* x @ w^T + b (w: [N, K]); act and residual optional. */
SDIFF__PRIVATE sdiff__tensor *sdiff__linear(sdiff__run *r, const sdiff__tensor *x, const sdiff__tensor *w,
                                            const sdiff__tensor *b, sdiff__act act, const sdiff__tensor *res) {
    sdiff__tensor *y = sdiff__like(r, x, w->ne[0]);
    r->be->linear(r->be, y, x, w, b, act, res);
    return y;
}
/* NHWC convolution with "same"-style padding k/2 unless told otherwise. */
SDIFF__PRIVATE sdiff__tensor *sdiff__conv(sdiff__run *r, const sdiff__tensor *x, const sdiff__tensor *w,
                                          const sdiff__tensor *b, int stride, int pad, const sdiff__tensor *res) {
    int64_t kh = w->ne[1], kw = w->ne[2];
    int64_t ho = (x->ne[1] + 2 * pad - kh) / stride + 1, wo = (x->ne[2] + 2 * pad - kw) / stride + 1;
    sdiff__tensor *y = sdiff__new4(r->ar, r->be->act_dtype, x->ne[0], ho, wo, w->ne[0]);
    r->be->conv2d(r->be, y, x, w, b, stride, pad, res);
    return y;
}
SDIFF__PRIVATE sdiff__tensor *sdiff__group_norm(sdiff__run *r, const sdiff__tensor *x, const sdiff__tensor *g,
                                                const sdiff__tensor *b, int groups, float eps, bool silu) {
    sdiff__tensor *y = sdiff__like(r, x, sdiff__cols(x));
    r->be->group_norm(r->be, y, x, g, b, groups, eps, silu);
    return y;
}
SDIFF__PRIVATE sdiff__tensor *sdiff__layer_norm(sdiff__run *r, const sdiff__tensor *x, const sdiff__tensor *g,
                                                const sdiff__tensor *b, float eps) {
    sdiff__tensor *y = sdiff__like(r, x, sdiff__cols(x));
    r->be->layer_norm(r->be, y, x, g, b, eps);
    return y;
}
/* Attention over column views of packed projections: q from `qsrc` columns
   [0, C), k and v from `kvsrc` columns [koff, koff+C) and [voff, voff+C). */
SDIFF__PRIVATE sdiff__tensor *sdiff__attention(sdiff__run *r, const sdiff__tensor *qsrc, const sdiff__tensor *kvsrc,
                                               int64_t c, int64_t koff, int64_t voff, int heads, bool causal) {
    sdiff__tensor *q = sdiff__view_cols(r->ar, qsrc, 0, c);
    sdiff__tensor *k = sdiff__view_cols(r->ar, kvsrc, koff, c);
    sdiff__tensor *v = sdiff__view_cols(r->ar, kvsrc, voff, c);
    sdiff__tensor *o = sdiff__like(r, qsrc, c);
    r->be->attention(r->be, o, q, k, v, heads, causal);
    return o;
}
/* Reads an int or a list of ints from a config (diffusers writes either). */
SDIFF__PRIVATE int sdiff__cfg_ints(const sdiff__json *cfg, const char *key, int *out, int max, int fallback) {
    const sdiff__json *v = sdiff__json_get(cfg, key);
    if (v && v->type == SDIFF__JSON_ARRAY) {
        int n = (int)SDIFF__MIN(v->count, (size_t)max);
        for (int i = 0; i < n; i++) out[i] = v->items[i].type == SDIFF__JSON_NUMBER ? (int)v->items[i].number : fallback;
        return n;
    }
    int x = v && v->type == SDIFF__JSON_NUMBER ? (int)v->number : fallback;
    for (int i = 0; i < max; i++) out[i] = x;
    return 0;
}
/* Config integers must be sane before they size anything. */
SDIFF__PRIVATE bool sdiff__in_range(double x, double lo, double hi) { return x >= lo && x <= hi; }

/* >>clip ===================================================================
   Model: CLIP text encoder (transformers' CLIPTextModel)
     x = token_embedding[ids] + position_embedding[0..L)
     for each layer:  x += out_proj(attn(ln1(x), causal))
                      x += fc2(act(fc1(ln2(x))))      act: quick_gelu or gelu
     final_layer_norm(x)
   ========================================================================= */
#define SDIFF__MAX_LAYERS 64

typedef struct sdiff__clip_config {
    int vocab, hidden, intermediate, heads, layers, max_positions;
    float eps;
    sdiff__act act;
} sdiff__clip_config;

typedef struct sdiff__clip_layer {
    sdiff__tensor *ln1_g, *ln1_b, *qkv_w, *qkv_b, *out_w, *out_b, *ln2_g, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} sdiff__clip_layer;

typedef struct sdiff__clip {
    sdiff__clip_config cfg;
    sdiff__weights weights;
    sdiff__tensor *tok_emb, *pos_emb, *final_g, *final_b;
    sdiff__clip_layer layer[SDIFF__MAX_LAYERS];
} sdiff__clip;

SDIFF__PRIVATE sdiff_status sdiff__clip_config_parse(const sdiff__json *j, const char *what, sdiff__clip_config *c) {
    c->vocab = (int)sdiff__json_number(j, "vocab_size", 49408);
    c->hidden = (int)sdiff__json_number(j, "hidden_size", 768);
    c->intermediate = (int)sdiff__json_number(j, "intermediate_size", 3072);
    c->heads = (int)sdiff__json_number(j, "num_attention_heads", 12);
    c->layers = (int)sdiff__json_number(j, "num_hidden_layers", 12);
    c->max_positions = (int)sdiff__json_number(j, "max_position_embeddings", 77);
    c->eps = (float)sdiff__json_number(j, "layer_norm_eps", 1e-5);
    const char *act = sdiff__json_string(j, "hidden_act", "quick_gelu");
    if (strcmp(act, "quick_gelu") == 0) c->act = SDIFF__ACT_QUICK_GELU;
    else if (strcmp(act, "gelu") == 0) c->act = SDIFF__ACT_GELU;
    else return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported", what, act);
    if (!sdiff__in_range(c->vocab, 1, 1 << 20) || !sdiff__in_range(c->hidden, 1, 1 << 14) ||
        !sdiff__in_range(c->intermediate, 1, 1 << 16) || !sdiff__in_range(c->heads, 1, 256) ||
        c->hidden % c->heads != 0 || !sdiff__in_range(c->layers, 1, SDIFF__MAX_LAYERS) ||
        !sdiff__in_range(c->max_positions, 1, 4096))
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: text encoder sizes are out of range", what);
    return SDIFF_OK;
}
SDIFF__PRIVATE void sdiff__clip_weights(sdiff__wloader *wl, void *model) {
    sdiff__clip *m = (sdiff__clip *)model;
    const int64_t H = m->cfg.hidden, I = m->cfg.intermediate;
    static const char *const qkv[] = {"q_proj", "k_proj", "v_proj"};
    const int64_t rows[3] = {H, H, H};
    m->tok_emb = sdiff__wl_get(wl, 2, m->cfg.vocab, H, 0, 0, "text_model.embeddings.token_embedding.weight");
    m->pos_emb = sdiff__wl_get(wl, 2, m->cfg.max_positions, H, 0, 0, "text_model.embeddings.position_embedding.weight");
    for (int i = 0; i < m->cfg.layers; i++) {
        sdiff__clip_layer *l = &m->layer[i];
        char p[96];
        snprintf(p, sizeof p, "text_model.encoder.layers.%d.", i);
        l->ln1_g = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%slayer_norm1.weight", p);
        l->ln1_b = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%slayer_norm1.bias", p);
        char sp[128];
        snprintf(sp, sizeof sp, "%sself_attn.", p);
        l->qkv_w = sdiff__wl_stack(wl, 3, rows, H, sp, qkv, ".weight");
        l->qkv_b = sdiff__wl_stack(wl, 3, rows, 0, sp, qkv, ".bias");
        l->out_w = sdiff__wl_get(wl, 2, H, H, 0, 0, "%sself_attn.out_proj.weight", p);
        l->out_b = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%sself_attn.out_proj.bias", p);
        l->ln2_g = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%slayer_norm2.weight", p);
        l->ln2_b = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%slayer_norm2.bias", p);
        l->fc1_w = sdiff__wl_get(wl, 2, I, H, 0, 0, "%smlp.fc1.weight", p);
        l->fc1_b = sdiff__wl_get(wl, 1, I, 0, 0, 0, "%smlp.fc1.bias", p);
        l->fc2_w = sdiff__wl_get(wl, 2, H, I, 0, 0, "%smlp.fc2.weight", p);
        l->fc2_b = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%smlp.fc2.bias", p);
    }
    m->final_g = sdiff__wl_get(wl, 1, H, 0, 0, 0, "text_model.final_layer_norm.weight");
    m->final_b = sdiff__wl_get(wl, 1, H, 0, 0, 0, "text_model.final_layer_norm.bias");
}
/* ids: [batch, seq] token ids. clip_skip: 0/1 = last layer, 2 = penultimate,
   ... (A1111's numbering; diffusers' clip_skip is one less). Returns the
   hidden states [batch, seq, hidden] after the final layer norm. */
SDIFF__PRIVATE sdiff__tensor *sdiff__clip_forward(sdiff__run *r, const sdiff__clip *m, const int32_t *ids, int batch,
                                                  int seq, int clip_skip) {
    const int64_t H = m->cfg.hidden, rows = (int64_t)batch * seq;
    int n_layers = m->cfg.layers - (clip_skip > 1 ? clip_skip - 1 : 0);
    if (n_layers < 1) n_layers = 1;
    sdiff__tensor *out = sdiff__new3(r->ar, r->be->act_dtype, batch, seq, H);
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    int32_t *pos = (int32_t *)sdiff__calloc((size_t)rows, sizeof *pos);
    if (!pos) {
        sdiff__be_fail(r->be, SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
        return out;
    }
    for (int64_t i = 0; i < rows; i++) pos[i] = (int32_t)(i % seq);
    sdiff__tensor *x = sdiff__new3(r->ar, r->be->act_dtype, batch, seq, H);
    sdiff__tensor *p = sdiff__new3(r->ar, r->be->act_dtype, batch, seq, H);
    r->be->embed(r->be, x, m->tok_emb, ids, (int)rows);
    r->be->embed(r->be, p, m->pos_emb, pos, (int)rows);
    r->be->add(r->be, x, x, p);
    sdiff__free(pos);
    for (int i = 0; i < n_layers; i++) {
        const sdiff__clip_layer *l = &m->layer[i];
        sdiff__arena_mark lm = sdiff__arena_mark_get(r->ar);
        sdiff__tensor *h = sdiff__layer_norm(r, x, l->ln1_g, l->ln1_b, m->cfg.eps);
        sdiff__tensor *qkv = sdiff__linear(r, h, l->qkv_w, l->qkv_b, SDIFF__ACT_NONE, NULL);
        sdiff__tensor *a = sdiff__attention(r, qkv, qkv, H, H, 2 * H, m->cfg.heads, true);
        sdiff__tensor *x1 = sdiff__linear(r, a, l->out_w, l->out_b, SDIFF__ACT_NONE, x);
        h = sdiff__layer_norm(r, x1, l->ln2_g, l->ln2_b, m->cfg.eps);
        sdiff__tensor *f = sdiff__linear(r, h, l->fc1_w, l->fc1_b, m->cfg.act, NULL);
        /* the layer's result goes straight back into x (x itself is not an input here) */
        r->be->linear(r->be, x, f, l->fc2_w, l->fc2_b, SDIFF__ACT_NONE, x1);
        sdiff__arena_release(r->ar, lm);
    }
    r->be->layer_norm(r->be, out, x, m->final_g, m->final_b, m->cfg.eps);
    sdiff__arena_release(r->ar, mark);
    return out;
}

/* >>unet ===================================================================
   Model: UNet2DConditionModel (SD 1.x / 2.x)
     temb = linear_2(silu(linear_1(sinusoid(t))))
     h = conv_in(x);                          skips = [h]
     down blocks: (resnet -> transformer?) x L, each pushed to skips; then a
                  stride-2 conv (not on the last level), pushed too
     mid block:   resnet, transformer, resnet
     up blocks:   (concat(h, skips.pop()) -> resnet -> transformer?) x (L+1),
                  then nearest upsample to the next skip's size + conv
     out = conv_out(silu(group_norm(h)))
   A resnet:      h = conv1(silu(gn1(x))) + time_emb_proj(silu(temb))
                  y = conv2(silu(gn2(h))) + shortcut(x)
   A transformer: h = proj_in(gn(x)); per block: h += attn1(ln1(h));
                  h += attn2(ln2(h), context); h += ff(ln3(h)) (GEGLU);
                  y = proj_out(h) + x
   "attention_head_dim" in SD configs is really the number of heads (a
   diffusers naming quirk kept for compatibility): heads = that value,
   head size = channels / heads.
   ========================================================================= */
#define SDIFF__MAX_LEVELS 6
/* Values of a transformer's feed-forward hidden layer (rows x 8 channels) computed at once: its
   largest tensor, so large batches run it over chunks of rows. SD 1.x's 64x64 level at CFG batch 2
   is one chunk (8192 rows x 2560): fewer, larger GEMMs and GEGLUs than the 2048-row chunks before
   (H100: UNet step 5.85, 5.87 -> 5.81, 5.81 ms, same peak memory; tools/PERF.md, S10). */
#ifndef SDIFF__FF_CHUNK_ELEMS
#define SDIFF__FF_CHUNK_ELEMS (8192 * 2560)
#endif
#define SDIFF__MAX_RESNETS 4
#define SDIFF__MAX_DEPTH 10

typedef struct sdiff__resnet {
    int64_t in, out;
    int64_t temb_col;   /* its time_emb_proj's columns in the UNet's shared product (sdiff__unet.temb_proj) */
    sdiff__tensor *norm1_g, *norm1_b, *conv1_w, *conv1_b, *norm2_g, *norm2_b, *conv2_w, *conv2_b, *short_w, *short_b;
} sdiff__resnet;

typedef struct sdiff__tblock {
    sdiff__tensor *ln1_g, *ln1_b, *qkv_w, *out1_w, *out1_b;           /* self-attention  */
    sdiff__tensor *ln2_g, *ln2_b, *q2_w, *out2_w, *out2_b;            /* cross-attention */
    int64_t kv2_col;    /* its keys' columns in the UNet's shared K, V product, then the values' */
    sdiff__tensor *ln3_g, *ln3_b, *ff1_w, *ff1_b, *ff2_w, *ff2_b;     /* GEGLU FFN       */
} sdiff__tblock;

typedef struct sdiff__transformer {
    int64_t ch;
    int heads, depth;
    sdiff__tensor *norm_g, *norm_b, *proj_in_w, *proj_in_b, *proj_out_w, *proj_out_b;
    sdiff__tblock block[SDIFF__MAX_DEPTH];
} sdiff__transformer;

typedef struct sdiff__unet_config {
    int in_channels, out_channels, levels, layers_per_block, cross_dim, groups, sample_size;
    int ch[SDIFF__MAX_LEVELS], heads[SDIFF__MAX_LEVELS], depth[SDIFF__MAX_LEVELS];
    bool down_attn[SDIFF__MAX_LEVELS], up_attn[SDIFF__MAX_LEVELS], linear_proj, flip_sin_to_cos;
    float eps, freq_shift;
} sdiff__unet_config;

typedef struct sdiff__unet {
    sdiff__unet_config cfg;
    sdiff__weights weights;
    sdiff__tensor *time1_w, *time1_b, *time2_w, *time2_b, *conv_in_w, *conv_in_b, *norm_out_g, *norm_out_b, *conv_out_w,
        *conv_out_b;
    sdiff__resnet down_res[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS], up_res[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS + 1];
    sdiff__transformer down_tf[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS], up_tf[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS + 1];
    sdiff__tensor *down_w[SDIFF__MAX_LEVELS], *down_b[SDIFF__MAX_LEVELS], *up_w[SDIFF__MAX_LEVELS], *up_b[SDIFF__MAX_LEVELS];
    sdiff__resnet mid_res[2];
    sdiff__transformer mid_tf;
    /* The inputs every resnet (the time embedding) or every transformer (the text) shares go
       through one GEMM per step, not one per layer (sdiff__wl_shared): every resnet's
       time_emb_proj stacked, and every cross-attention's to_k, to_v. */
    sdiff__wl_shared temb_proj, cross_kv;
} sdiff__unet;

SDIFF__PRIVATE sdiff_status sdiff__unet_config_parse(const sdiff__json *j, const char *what, sdiff__unet_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = (int)sdiff__json_number(j, "in_channels", 4);
    c->out_channels = (int)sdiff__json_number(j, "out_channels", 4);
    c->layers_per_block = (int)sdiff__json_number(j, "layers_per_block", 2);
    c->cross_dim = (int)sdiff__json_number(j, "cross_attention_dim", 768);
    c->groups = (int)sdiff__json_number(j, "norm_num_groups", 32);
    c->eps = (float)sdiff__json_number(j, "norm_eps", 1e-5);
    c->sample_size = (int)sdiff__json_number(j, "sample_size", 64);
    c->linear_proj = sdiff__json_bool(j, "use_linear_projection", false);
    c->flip_sin_to_cos = sdiff__json_bool(j, "flip_sin_to_cos", true);
    c->freq_shift = (float)sdiff__json_number(j, "freq_shift", 0);
    c->levels = sdiff__cfg_ints(j, "block_out_channels", c->ch, SDIFF__MAX_LEVELS, 0);
    const sdiff__json *down = sdiff__json_get(j, "down_block_types"), *up = sdiff__json_get(j, "up_block_types");
    if (c->levels < 1 || !down || down->type != SDIFF__JSON_ARRAY || !up || up->type != SDIFF__JSON_ARRAY ||
        down->count != (size_t)c->levels || up->count != (size_t)c->levels)
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: block_out_channels, down_block_types and up_block_types must be lists "
                          "of the same length (1..%d)", what, SDIFF__MAX_LEVELS);
    for (int i = 0; i < c->levels; i++) {
        const char *d = down->items[i].type == SDIFF__JSON_STRING ? down->items[i].string : "";
        const char *u = up->items[i].type == SDIFF__JSON_STRING ? up->items[i].string : "";
        if (strcmp(d, "CrossAttnDownBlock2D") == 0) c->down_attn[i] = true;
        else if (strcmp(d, "DownBlock2D") != 0)
            return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: down block type '%s' is not supported", what, d);
        if (strcmp(u, "CrossAttnUpBlock2D") == 0) c->up_attn[i] = true;
        else if (strcmp(u, "UpBlock2D") != 0)
            return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: up block type '%s' is not supported", what, u);
        if (!sdiff__in_range(c->ch[i], 1, 1 << 14) || c->ch[i] % c->groups != 0)
            return sdiff__err(SDIFF_ERR_FORMAT, "%s: block_out_channels[%d] = %d is invalid for %d groups", what, i, c->ch[i], c->groups);
    }
    const char *mid = sdiff__json_string(j, "mid_block_type", "UNetMidBlock2DCrossAttn");
    if (strcmp(mid, "UNetMidBlock2DCrossAttn") != 0)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: mid block type '%s' is not supported", what, mid);
    const sdiff__json *nah = sdiff__json_get(j, "num_attention_heads");
    if (nah && nah->type != SDIFF__JSON_NULL)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: num_attention_heads is set; diffusers rejects that for this UNet", what);
    sdiff__cfg_ints(j, "attention_head_dim", c->heads, SDIFF__MAX_LEVELS, 8);
    sdiff__cfg_ints(j, "transformer_layers_per_block", c->depth, SDIFF__MAX_LEVELS, 1);
    static const char *const unsupported[] = {"class_embed_type", "addition_embed_type", "encoder_hid_dim",
                                              "time_cond_proj_dim"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        const sdiff__json *v = sdiff__json_get(j, unsupported[i]);
        if (v && v->type != SDIFF__JSON_NULL)
            return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: '%s' (SDXL-style conditioning) is not supported yet", what, unsupported[i]);
    }
    if (!sdiff__in_range(c->in_channels, 1, 64) || !sdiff__in_range(c->out_channels, 1, 64) ||
        !sdiff__in_range(c->layers_per_block, 1, SDIFF__MAX_RESNETS) || !sdiff__in_range(c->cross_dim, 1, 1 << 14) ||
        !sdiff__in_range(c->groups, 1, 1024))
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: UNet sizes are out of range", what);
    for (int i = 0; i < c->levels; i++)
        if (!sdiff__in_range(c->heads[i], 1, 256) || c->ch[i] % c->heads[i] != 0 ||
            !sdiff__in_range(c->depth[i], 1, SDIFF__MAX_DEPTH))
            return sdiff__err(SDIFF_ERR_FORMAT, "%s: level %d: %d channels cannot be split into %d heads (or bad depth)",
                              what, i, c->ch[i], c->heads[i]);
    return SDIFF_OK;
}

/* temb: the shared time-embedding projection this resnet's rows go into (NULL: none, the VAE's). */
SDIFF__PRIVATE void sdiff__resnet_weights(sdiff__wloader *wl, sdiff__resnet *r, const char *p, int64_t in, int64_t out,
                                          sdiff__wl_shared *temb) {
    static const char *const proj[] = {"time_emb_proj"};
    r->in = in;
    r->out = out;
    r->norm1_g = sdiff__wl_get(wl, 1, in, 0, 0, 0, "%snorm1.weight", p);
    r->norm1_b = sdiff__wl_get(wl, 1, in, 0, 0, 0, "%snorm1.bias", p);
    r->conv1_w = sdiff__wl_get(wl, 4, out, in, 3, 3, "%sconv1.weight", p);
    r->conv1_b = sdiff__wl_get(wl, 1, out, 0, 0, 0, "%sconv1.bias", p);
    r->temb_col = temb ? sdiff__wl_shared_take(wl, temb, out, p, 1, proj) : -1;
    r->norm2_g = sdiff__wl_get(wl, 1, out, 0, 0, 0, "%snorm2.weight", p);
    r->norm2_b = sdiff__wl_get(wl, 1, out, 0, 0, 0, "%snorm2.bias", p);
    r->conv2_w = sdiff__wl_get(wl, 4, out, out, 3, 3, "%sconv2.weight", p);
    r->conv2_b = sdiff__wl_get(wl, 1, out, 0, 0, 0, "%sconv2.bias", p);
    r->short_w = in != out ? sdiff__wl_get(wl, 2, out, in, 0, 0, "%sconv_shortcut.weight", p) : NULL;
    r->short_b = in != out ? sdiff__wl_get(wl, 1, out, 0, 0, 0, "%sconv_shortcut.bias", p) : NULL;
}
/* cross_kv: the shared cross-attention K, V projection its blocks' rows go into. */
SDIFF__PRIVATE void sdiff__transformer_weights(sdiff__wloader *wl, sdiff__transformer *t, const char *p, int64_t ch,
                                               int heads, int depth, sdiff__wl_shared *cross_kv) {
    static const char *const qkv[] = {"to_q", "to_k", "to_v"}, *const kv[] = {"to_k", "to_v"};
    const int64_t rows[3] = {ch, ch, ch};
    t->ch = ch;
    t->heads = heads;
    t->depth = depth;
    t->norm_g = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm.weight", p);
    t->norm_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm.bias", p);
    t->proj_in_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sproj_in.weight", p);
    t->proj_in_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sproj_in.bias", p);
    for (int d = 0; d < depth; d++) {
        sdiff__tblock *b = &t->block[d];
        char bp[192], ap[200];
        snprintf(bp, sizeof bp, "%stransformer_blocks.%d.", p, d);
        b->ln1_g = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm1.weight", bp);
        b->ln1_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm1.bias", bp);
        snprintf(ap, sizeof ap, "%sattn1.", bp);
        b->qkv_w = sdiff__wl_stack(wl, 3, rows, ch, ap, qkv, ".weight");
        b->out1_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sattn1.to_out.0.weight", bp);
        b->out1_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sattn1.to_out.0.bias", bp);
        b->ln2_g = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm2.weight", bp);
        b->ln2_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm2.bias", bp);
        snprintf(ap, sizeof ap, "%sattn2.", bp);
        b->q2_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sattn2.to_q.weight", bp);
        b->kv2_col = sdiff__wl_shared_take(wl, cross_kv, ch, ap, 2, kv);
        b->out2_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sattn2.to_out.0.weight", bp);
        b->out2_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sattn2.to_out.0.bias", bp);
        b->ln3_g = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm3.weight", bp);
        b->ln3_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm3.bias", bp);
        b->ff1_w = sdiff__wl_get(wl, 2, 8 * ch, ch, 0, 0, "%sff.net.0.proj.weight", bp);
        b->ff1_b = sdiff__wl_get(wl, 1, 8 * ch, 0, 0, 0, "%sff.net.0.proj.bias", bp);
        b->ff2_w = sdiff__wl_get(wl, 2, ch, 4 * ch, 0, 0, "%sff.net.2.weight", bp);
        b->ff2_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sff.net.2.bias", bp);
    }
    t->proj_out_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sproj_out.weight", p);
    t->proj_out_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sproj_out.bias", p);
}
/* Channels at each point, exactly as diffusers' constructor derives them. */
SDIFF__PRIVATE void sdiff__unet_weights(sdiff__wloader *wl, void *model) {
    sdiff__unet *m = (sdiff__unet *)model;
    const sdiff__unet_config *c = &m->cfg;
    const int n = c->levels, L = c->layers_per_block;
    const int64_t ch0 = c->ch[0], temb = 4 * ch0;
    char p[128];
    m->time1_w = sdiff__wl_get(wl, 2, temb, ch0, 0, 0, "time_embedding.linear_1.weight");
    m->time1_b = sdiff__wl_get(wl, 1, temb, 0, 0, 0, "time_embedding.linear_1.bias");
    m->time2_w = sdiff__wl_get(wl, 2, temb, temb, 0, 0, "time_embedding.linear_2.weight");
    m->time2_b = sdiff__wl_get(wl, 1, temb, 0, 0, 0, "time_embedding.linear_2.bias");
    m->conv_in_w = sdiff__wl_get(wl, 4, ch0, c->in_channels, 3, 3, "conv_in.weight");
    m->conv_in_b = sdiff__wl_get(wl, 1, ch0, 0, 0, 0, "conv_in.bias");
    /* the shared rows: each level's resnets (L down, L + 1 up, 2 in the middle) and transformer
       blocks, in the order listed below */
    int64_t temb_rows = 2 * (int64_t)c->ch[n - 1], kv_rows = 2 * (int64_t)c->depth[n - 1] * c->ch[n - 1];
    for (int i = 0; i < n; i++) {
        temb_rows += (2 * L + 1) * (int64_t)c->ch[i];
        kv_rows += 2 * (int64_t)c->ch[i] * c->depth[i] * ((c->down_attn[i] ? L : 0) + (c->up_attn[n - 1 - i] ? L + 1 : 0));
    }
    sdiff__wl_shared_init(wl, &m->temb_proj, temb_rows, temb, true);
    sdiff__wl_shared_init(wl, &m->cross_kv, kv_rows, c->cross_dim, false);
    for (int i = 0; i < n; i++) {
        int64_t in = i ? c->ch[i - 1] : ch0, out = c->ch[i];
        for (int l = 0; l < L; l++) {
            snprintf(p, sizeof p, "down_blocks.%d.resnets.%d.", i, l);
            sdiff__resnet_weights(wl, &m->down_res[i][l], p, l ? out : in, out, &m->temb_proj);
            if (c->down_attn[i]) {
                snprintf(p, sizeof p, "down_blocks.%d.attentions.%d.", i, l);
                sdiff__transformer_weights(wl, &m->down_tf[i][l], p, out, c->heads[i], c->depth[i], &m->cross_kv);
            }
        }
        if (i < n - 1) {
            m->down_w[i] = sdiff__wl_get(wl, 4, out, out, 3, 3, "down_blocks.%d.downsamplers.0.conv.weight", i);
            m->down_b[i] = sdiff__wl_get(wl, 1, out, 0, 0, 0, "down_blocks.%d.downsamplers.0.conv.bias", i);
        }
    }
    const int64_t top = c->ch[n - 1];
    sdiff__resnet_weights(wl, &m->mid_res[0], "mid_block.resnets.0.", top, top, &m->temb_proj);
    sdiff__transformer_weights(wl, &m->mid_tf, "mid_block.attentions.0.", top, c->heads[n - 1], c->depth[n - 1],
                               &m->cross_kv);
    sdiff__resnet_weights(wl, &m->mid_res[1], "mid_block.resnets.1.", top, top, &m->temb_proj);
    for (int i = 0; i < n; i++) {
        const int lvl = n - 1 - i; /* the down level this up block mirrors */
        int64_t out = c->ch[lvl], prev = c->ch[i ? lvl + 1 : lvl], in = c->ch[lvl > 0 ? lvl - 1 : 0];
        for (int l = 0; l <= L; l++) {
            int64_t skip = l == L ? in : out;
            snprintf(p, sizeof p, "up_blocks.%d.resnets.%d.", i, l);
            sdiff__resnet_weights(wl, &m->up_res[i][l], p, (l ? out : prev) + skip, out, &m->temb_proj);
            if (c->up_attn[i]) {
                snprintf(p, sizeof p, "up_blocks.%d.attentions.%d.", i, l);
                sdiff__transformer_weights(wl, &m->up_tf[i][l], p, out, c->heads[lvl], c->depth[lvl], &m->cross_kv);
            }
        }
        if (i < n - 1) {
            m->up_w[i] = sdiff__wl_get(wl, 4, out, out, 3, 3, "up_blocks.%d.upsamplers.0.conv.weight", i);
            m->up_b[i] = sdiff__wl_get(wl, 1, out, 0, 0, 0, "up_blocks.%d.upsamplers.0.conv.bias", i);
        }
    }
    m->norm_out_g = sdiff__wl_get(wl, 1, ch0, 0, 0, 0, "conv_norm_out.weight");
    m->norm_out_b = sdiff__wl_get(wl, 1, ch0, 0, 0, 0, "conv_norm_out.bias");
    m->conv_out_w = sdiff__wl_get(wl, 4, c->out_channels, ch0, 3, 3, "conv_out.weight");
    m->conv_out_b = sdiff__wl_get(wl, 1, c->out_channels, 0, 0, 0, "conv_out.bias");
    if (m->temb_proj.next != m->temb_proj.rows || m->cross_kv.next != m->cross_kv.rows)
        sdiff__wl_fail(wl, SDIFF_ERR_MODEL, "unet: the shared weight rows do not add up (internal)");
}

/* y = conv3x3(nearest upsampling of x to y's size, pad 1) + b: SD's upsamplers. In one op where the
   backend has it (exactly 2x), else through the upsampled tensor. */
SDIFF__PRIVATE void sdiff__upsample_conv(sdiff__run *r, sdiff__tensor *y, const sdiff__tensor *x, const sdiff__tensor *w,
                                         const sdiff__tensor *b) {
    if (r->be->upsample_conv2d && r->be->upsample_conv2d(r->be, y, x, w, b)) return;
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    sdiff__tensor *u = sdiff__new4(r->ar, r->be->act_dtype, y->ne[0], y->ne[1], y->ne[2], x->ne[3]);
    r->be->upsample(r->be, u, x);
    r->be->conv2d(r->be, y, u, w, b, 1, 1, NULL);
    sdiff__arena_release(r->ar, mark);
}
/* y = resnet(x, temb); temb_proj: every resnet's time_emb_proj(silu(temb)), [B, the UNet's
   temb_proj rows], or NULL (the VAE's). conv1 adds this resnet's columns to each image's pixels as
   its residual (diffusers: h = conv1(h) + temb[:, :, None, None]). */
SDIFF__PRIVATE void sdiff__resnet_forward(sdiff__run *r, const sdiff__resnet *w, sdiff__tensor *y, const sdiff__tensor *x,
                                          const sdiff__tensor *temb_proj, int groups, float eps) {
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    sdiff__tensor *per_image = NULL;
    if (temb_proj) {
        per_image = sdiff__view_cols(r->ar, temb_proj, w->temb_col, w->out);
        per_image->nd = 4;
        per_image->ne[0] = x->ne[0];
        per_image->ne[1] = per_image->ne[2] = 1;
        per_image->ne[3] = w->out;
    }
    /* conv1's output first, so the normalised input (as large as x) can be
       released as soon as conv1 has read it */
    sdiff__tensor *h = sdiff__like(r, x, w->out);
    sdiff__arena_mark m1 = sdiff__arena_mark_get(r->ar);
    r->be->conv2d(r->be, h, sdiff__group_norm(r, x, w->norm1_g, w->norm1_b, groups, eps, true), w->conv1_w, w->conv1_b, 1,
                  1, per_image);
    sdiff__arena_release(r->ar, m1);
    h = sdiff__group_norm(r, h, w->norm2_g, w->norm2_b, groups, eps, true);
    const sdiff__tensor *shortcut = w->short_w ? sdiff__linear(r, x, w->short_w, w->short_b, SDIFF__ACT_NONE, NULL) : x;
    r->be->conv2d(r->be, y, h, w->conv2_w, w->conv2_b, 1, 1, shortcut);
    sdiff__arena_release(r->ar, mark);
}
/* y = transformer(x [B,H,W,C], context); cross_kv: every cross-attention's keys and values of the
   context, [B, Lc, the UNet's cross_kv rows]. */
SDIFF__PRIVATE void sdiff__transformer_forward(sdiff__run *r, const sdiff__transformer *t, sdiff__tensor *y,
                                               const sdiff__tensor *x, const sdiff__tensor *cross_kv, int groups) {
    const int64_t C = t->ch, B = x->ne[0], N = x->ne[1] * x->ne[2];
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    sdiff__tensor *h = sdiff__group_norm(r, x, t->norm_g, t->norm_b, groups, 1e-6f, false);
    h = sdiff__linear(r, sdiff__reshape(r->ar, h, 3, B, N, C, 1), t->proj_in_w, t->proj_in_b, SDIFF__ACT_NONE, NULL);
    sdiff__tensor *h2 = sdiff__like(r, h, C); /* ping-pong partner of h */
    for (int d = 0; d < t->depth; d++) {
        const sdiff__tblock *b = &t->block[d];
        sdiff__arena_mark bm = sdiff__arena_mark_get(r->ar);
        sdiff__tensor *n = sdiff__layer_norm(r, h, b->ln1_g, b->ln1_b, 1e-5f);
        sdiff__tensor *qkv = sdiff__linear(r, n, b->qkv_w, NULL, SDIFF__ACT_NONE, NULL);
        sdiff__tensor *a = sdiff__attention(r, qkv, qkv, C, C, 2 * C, t->heads, false);
        r->be->linear(r->be, h2, a, b->out1_w, b->out1_b, SDIFF__ACT_NONE, h);
        sdiff__arena_release(r->ar, bm);
        n = sdiff__layer_norm(r, h2, b->ln2_g, b->ln2_b, 1e-5f);
        sdiff__tensor *q = sdiff__linear(r, n, b->q2_w, NULL, SDIFF__ACT_NONE, NULL);
        a = sdiff__attention(r, q, cross_kv, C, b->kv2_col, b->kv2_col + C, t->heads, false);
        r->be->linear(r->be, h, a, b->out2_w, b->out2_b, SDIFF__ACT_NONE, h2);
        sdiff__arena_release(r->ar, bm);
        /* the feed-forward (GEGLU: a linear layer of 8C outputs, then 4C of
           h * gelu(g)) makes the block's widest tensors: run it over chunks
           of rows (rows are independent) */
        n = sdiff__layer_norm(r, h, b->ln3_g, b->ln3_b, 1e-5f);
        const int64_t rows = B * N, chunk = SDIFF__MIN(rows, SDIFF__MAX((int64_t)1, (int64_t)SDIFF__FF_CHUNK_ELEMS / (8 * C)));
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
            const int64_t nr = SDIFF__MIN(chunk, rows - r0);
            sdiff__arena_mark fm = sdiff__arena_mark_get(r->ar);
            sdiff__tensor *g = sdiff__new2(r->ar, r->be->act_dtype, nr, 4 * C);
            r->be->linear(r->be, g, sdiff__view_rows(r->ar, n, r0, nr), b->ff1_w, b->ff1_b, SDIFF__ACT_GEGLU, NULL);
            r->be->linear(r->be, sdiff__view_rows(r->ar, h2, r0, nr), g, b->ff2_w, b->ff2_b, SDIFF__ACT_NONE,
                          sdiff__view_rows(r->ar, h, r0, nr));
            sdiff__arena_release(r->ar, fm);
        }
        sdiff__arena_release(r->ar, bm);
        sdiff__tensor *tmp = h; h = h2; h2 = tmp;
    }
    r->be->linear(r->be, sdiff__reshape(r->ar, y, 3, B, N, C, 1), h, t->proj_out_w, t->proj_out_b, SDIFF__ACT_NONE,
                  sdiff__reshape(r->ar, x, 3, B, N, C, 1));
    sdiff__arena_release(r->ar, mark);
}
/* What a UNet step takes from its conditioning, computed apart from the step because it depends
   on the timestep or the text only: a generation makes the text's part once and every timestep's
   once (sdiff__generate), not once per step. */
/* Every resnet's time_emb_proj(silu(time embedding of t)), [N, the UNet's temb_proj rows], for N
   F32 timesteps t [N]. */
SDIFF__PRIVATE sdiff__tensor *sdiff__unet_time_proj(sdiff__run *r, const sdiff__unet *m, const sdiff__tensor *t) {
    const sdiff__unet_config *c = &m->cfg;
    sdiff__tensor *out = sdiff__new2(r->ar, r->be->act_dtype, t->ne[0], m->temb_proj.rows);
    sdiff__arena_mark scratch = sdiff__arena_mark_get(r->ar);
    sdiff__tensor *tf = sdiff__new2(r->ar, r->be->act_dtype, t->ne[0], c->ch[0]);
    r->be->timestep_embedding(r->be, tf, t, c->flip_sin_to_cos, c->freq_shift);
    sdiff__tensor *temb = sdiff__linear(r, tf, m->time1_w, m->time1_b, SDIFF__ACT_SILU, NULL);
    /* every resnet applies silu to temb first: do it once (diffusers' linear_2
       output is never used without it here) */
    temb = sdiff__linear(r, temb, m->time2_w, m->time2_b, SDIFF__ACT_SILU, NULL);
    r->be->linear(r->be, out, temb, m->temb_proj.w, m->temb_proj.b, SDIFF__ACT_NONE, NULL);
    sdiff__arena_release(r->ar, scratch);
    return out;
}
/* Every cross-attention's keys and values of the text context [B, L, cross_dim]: [B, L, the UNet's
   cross_kv rows]. */
SDIFF__PRIVATE sdiff__tensor *sdiff__unet_cross_kv(sdiff__run *r, const sdiff__unet *m, const sdiff__tensor *context) {
    return sdiff__linear(r, context, m->cross_kv.w, NULL, SDIFF__ACT_NONE, NULL);
}
/* One UNet evaluation. x: [B, h, w, in_channels] (channels-last latents); temb_proj [B, ..] and
   cross_kv [B, L, ..] from the two functions above. Returns [B, h, w, out_channels]. */
SDIFF__PRIVATE sdiff__tensor *sdiff__unet_step(sdiff__run *r, const sdiff__unet *m, const sdiff__tensor *x,
                                               const sdiff__tensor *temb_proj, const sdiff__tensor *cross_kv) {
    const sdiff__unet_config *c = &m->cfg;
    const int n = c->levels, L = c->layers_per_block, G = c->groups;
    const int64_t B = x->ne[0];
    sdiff__tensor *out = sdiff__new4(r->ar, r->be->act_dtype, B, x->ne[1], x->ne[2], c->out_channels);
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    const sdiff__tensor *temb = temb_proj;

    /* down */
    sdiff__tensor *skips[1 + SDIFF__MAX_LEVELS * (SDIFF__MAX_RESNETS + 1)];
    int n_skips = 0;
    sdiff__tensor *h = sdiff__conv(r, x, m->conv_in_w, m->conv_in_b, 1, 1, NULL);
    skips[n_skips++] = h;
    for (int i = 0; i < n; i++) {
        for (int l = 0; l < L; l++) {
            sdiff__tensor *y = sdiff__like(r, h, c->ch[i]);
            sdiff__resnet_forward(r, &m->down_res[i][l], y, h, temb, G, c->eps);
            h = y;
            if (c->down_attn[i]) {
                y = sdiff__like(r, h, c->ch[i]);
                sdiff__transformer_forward(r, &m->down_tf[i][l], y, h, cross_kv, G);
                h = y;
            }
            skips[n_skips++] = h;
        }
        if (i < n - 1) {
            h = sdiff__conv(r, h, m->down_w[i], m->down_b[i], 2, 1, NULL);
            skips[n_skips++] = h;
        }
    }
    /* mid */
    sdiff__tensor *y = sdiff__like(r, h, c->ch[n - 1]);
    sdiff__resnet_forward(r, &m->mid_res[0], y, h, temb, G, c->eps);
    h = sdiff__like(r, y, c->ch[n - 1]);
    sdiff__transformer_forward(r, &m->mid_tf, h, y, cross_kv, G);
    y = sdiff__like(r, h, c->ch[n - 1]);
    sdiff__resnet_forward(r, &m->mid_res[1], y, h, temb, G, c->eps);
    h = y;
    /* up. Memory: a level's resnets and transformers alternate between two
       buffers of its size, each concatenation is released as soon as its
       resnet has read it, and a level that ends in an upsampler writes the
       result into `next`, allocated before the level's scratch, so that the
       scratch goes when the level ends. */
    for (int i = 0; i < n; i++) {
        const int64_t ch = c->ch[n - 1 - i], H = h->ne[1], W = h->ne[2];
        const bool up = i < n - 1;
        /* the upsampler goes to the size of the skip the next level
           concatenates first (2x, except for odd sizes, where diffusers
           passes upsample_size too) */
        const sdiff__tensor *after = up ? skips[n_skips - (L + 1) - 1] : NULL;
        sdiff__tensor *next = up ? sdiff__new4(r->ar, r->be->act_dtype, B, after->ne[1], after->ne[2], ch) : NULL;
        sdiff__arena_mark lm = sdiff__arena_mark_get(r->ar);
        sdiff__tensor *pp[2] = {sdiff__new4(r->ar, r->be->act_dtype, B, H, W, ch),
                                sdiff__new4(r->ar, r->be->act_dtype, B, H, W, ch)};
        for (int l = 0; l <= L; l++) {
            sdiff__tensor *skip = skips[--n_skips];
            y = h == pp[0] ? pp[1] : pp[0];
            sdiff__arena_mark cm = sdiff__arena_mark_get(r->ar);
            sdiff__tensor *cat = sdiff__like(r, h, sdiff__cols(h) + sdiff__cols(skip));
            r->be->concat(r->be, cat, h, skip);
            sdiff__resnet_forward(r, &m->up_res[i][l], y, cat, temb, G, c->eps);
            sdiff__arena_release(r->ar, cm);
            h = y;
            if (c->up_attn[i]) {
                y = h == pp[0] ? pp[1] : pp[0];
                sdiff__transformer_forward(r, &m->up_tf[i][l], y, h, cross_kv, G);
                h = y;
            }
        }
        if (up) {
            sdiff__upsample_conv(r, next, h, m->up_w[i], m->up_b[i]);
            sdiff__arena_release(r->ar, lm);
            h = next;
        }
    }
    h = sdiff__group_norm(r, h, m->norm_out_g, m->norm_out_b, G, c->eps, true);
    r->be->conv2d(r->be, out, h, m->conv_out_w, m->conv_out_b, 1, 1, NULL);
    sdiff__arena_release(r->ar, mark);
    return out;
}
/* The whole UNet (for the tests and tools; a generation runs the parts): x [B, h, w, in_channels],
   t [B] F32 timesteps, context [B, L, cross_dim]. Returns [B, h, w, out_channels], after its
   conditioning in the arena (the caller's release frees both). */
SDIFF__INTERNAL sdiff__tensor *sdiff__unet_forward(sdiff__run *r, const sdiff__unet *m, const sdiff__tensor *x,
                                                  const sdiff__tensor *t, const sdiff__tensor *context) {
    const sdiff__tensor *temb_proj = sdiff__unet_time_proj(r, m, t), *cross_kv = sdiff__unet_cross_kv(r, m, context);
    return sdiff__unet_step(r, m, x, temb_proj, cross_kv);
}

/* >>vae ====================================================================
   Model: AutoencoderKL (the SD VAE)
     encode: conv_in -> down levels (resnets, then a stride-2 conv padded
             only at the bottom/right, except the last) -> mid (resnet,
             attention, resnet) -> silu(gn) -> conv_out -> quant_conv
             = [mean, logvar]
     decode: post_quant_conv -> conv_in -> mid -> up levels (resnets, then
             nearest 2x + conv, except the last) -> silu(gn) -> conv_out
   The mid-block attention is single-head self-attention over all pixels
   with a residual. Resnets here have no time embedding and eps 1e-6.
   ========================================================================= */
typedef struct sdiff__vae_config {
    int in_channels, out_channels, latent, levels, layers_per_block, groups, sample_size;
    int ch[SDIFF__MAX_LEVELS];
    float scaling_factor, shift_factor;
    bool quant_conv, post_quant_conv, mid_attention;
} sdiff__vae_config;

typedef struct sdiff__vae_attn {
    sdiff__tensor *norm_g, *norm_b, *qkv_w, *qkv_b, *out_w, *out_b;
} sdiff__vae_attn;

typedef struct sdiff__vae_mid {
    sdiff__resnet res[2];
    sdiff__vae_attn attn;
} sdiff__vae_mid;

typedef struct sdiff__vae {
    sdiff__vae_config cfg;
    sdiff__weights weights;
    /* encoder */
    sdiff__tensor *enc_in_w, *enc_in_b, *enc_norm_g, *enc_norm_b, *enc_out_w, *enc_out_b, *quant_w, *quant_b;
    sdiff__resnet enc_res[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS];
    sdiff__tensor *enc_down_w[SDIFF__MAX_LEVELS], *enc_down_b[SDIFF__MAX_LEVELS];
    sdiff__vae_mid enc_mid;
    /* decoder */
    sdiff__tensor *post_quant_w, *post_quant_b, *dec_in_w, *dec_in_b, *dec_norm_g, *dec_norm_b, *dec_out_w, *dec_out_b;
    sdiff__resnet dec_res[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS + 1];
    sdiff__tensor *dec_up_w[SDIFF__MAX_LEVELS], *dec_up_b[SDIFF__MAX_LEVELS];
    sdiff__vae_mid dec_mid;
} sdiff__vae;

SDIFF__PRIVATE sdiff_status sdiff__vae_config_parse(const sdiff__json *j, const char *what, sdiff__vae_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = (int)sdiff__json_number(j, "in_channels", 3);
    c->out_channels = (int)sdiff__json_number(j, "out_channels", 3);
    c->latent = (int)sdiff__json_number(j, "latent_channels", 4);
    c->layers_per_block = (int)sdiff__json_number(j, "layers_per_block", 2);
    c->groups = (int)sdiff__json_number(j, "norm_num_groups", 32);
    c->sample_size = (int)sdiff__json_number(j, "sample_size", 512);
    c->scaling_factor = (float)sdiff__json_number(j, "scaling_factor", 0.18215);
    c->shift_factor = (float)sdiff__json_number(j, "shift_factor", 0);
    c->quant_conv = sdiff__json_bool(j, "use_quant_conv", true);
    c->post_quant_conv = sdiff__json_bool(j, "use_post_quant_conv", true);
    c->mid_attention = sdiff__json_bool(j, "mid_block_add_attention", true);
    c->levels = sdiff__cfg_ints(j, "block_out_channels", c->ch, SDIFF__MAX_LEVELS, 0);
    if (c->levels < 1) return sdiff__err(SDIFF_ERR_FORMAT, "%s: block_out_channels must be a list", what);
    if (!sdiff__in_range(c->in_channels, 1, 16) || !sdiff__in_range(c->out_channels, 1, 16) ||
        !sdiff__in_range(c->latent, 1, 64) || !sdiff__in_range(c->layers_per_block, 1, SDIFF__MAX_RESNETS) ||
        !sdiff__in_range(c->groups, 1, 1024) || !(c->scaling_factor > 0))
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: VAE sizes are out of range", what);
    for (int i = 0; i < c->levels; i++)
        if (!sdiff__in_range(c->ch[i], 1, 1 << 14) || c->ch[i] % c->groups != 0)
            return sdiff__err(SDIFF_ERR_FORMAT, "%s: block_out_channels[%d] = %d is invalid for %d groups", what, i, c->ch[i], c->groups);
    return SDIFF_OK;
}
SDIFF__PRIVATE void sdiff__vae_mid_weights(sdiff__wloader *wl, sdiff__vae_mid *mid, const char *p, int64_t ch, bool attn) {
    static const char *const qkv[] = {"to_q", "to_k", "to_v"};
    const int64_t rows[3] = {ch, ch, ch};
    char q[128];
    snprintf(q, sizeof q, "%smid_block.resnets.0.", p);
    sdiff__resnet_weights(wl, &mid->res[0], q, ch, ch, NULL);
    snprintf(q, sizeof q, "%smid_block.resnets.1.", p);
    sdiff__resnet_weights(wl, &mid->res[1], q, ch, ch, NULL);
    if (!attn) return;
    snprintf(q, sizeof q, "%smid_block.attentions.0.", p);
    mid->attn.norm_g = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sgroup_norm.weight", q);
    mid->attn.norm_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sgroup_norm.bias", q);
    mid->attn.qkv_w = sdiff__wl_stack(wl, 3, rows, ch, q, qkv, ".weight");
    mid->attn.qkv_b = sdiff__wl_stack(wl, 3, rows, 0, q, qkv, ".bias");
    mid->attn.out_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sto_out.0.weight", q);
    mid->attn.out_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sto_out.0.bias", q);
}
SDIFF__PRIVATE void sdiff__vae_weights(sdiff__wloader *wl, void *model) {
    sdiff__vae *m = (sdiff__vae *)model;
    const sdiff__vae_config *c = &m->cfg;
    const int n = c->levels, L = c->layers_per_block;
    const int64_t top = c->ch[n - 1], lat = c->latent;
    char p[128];
    /* encoder */
    m->enc_in_w = sdiff__wl_get(wl, 4, c->ch[0], c->in_channels, 3, 3, "encoder.conv_in.weight");
    m->enc_in_b = sdiff__wl_get(wl, 1, c->ch[0], 0, 0, 0, "encoder.conv_in.bias");
    for (int i = 0; i < n; i++) {
        int64_t in = i ? c->ch[i - 1] : c->ch[0], out = c->ch[i];
        for (int l = 0; l < L; l++) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d.", i, l);
            sdiff__resnet_weights(wl, &m->enc_res[i][l], p, l ? out : in, out, NULL);
        }
        if (i < n - 1) {
            m->enc_down_w[i] = sdiff__wl_get(wl, 4, out, out, 3, 3, "encoder.down_blocks.%d.downsamplers.0.conv.weight", i);
            m->enc_down_b[i] = sdiff__wl_get(wl, 1, out, 0, 0, 0, "encoder.down_blocks.%d.downsamplers.0.conv.bias", i);
        }
    }
    sdiff__vae_mid_weights(wl, &m->enc_mid, "encoder.", top, c->mid_attention);
    m->enc_norm_g = sdiff__wl_get(wl, 1, top, 0, 0, 0, "encoder.conv_norm_out.weight");
    m->enc_norm_b = sdiff__wl_get(wl, 1, top, 0, 0, 0, "encoder.conv_norm_out.bias");
    m->enc_out_w = sdiff__wl_get(wl, 4, 2 * lat, top, 3, 3, "encoder.conv_out.weight");
    m->enc_out_b = sdiff__wl_get(wl, 1, 2 * lat, 0, 0, 0, "encoder.conv_out.bias");
    if (c->quant_conv) {
        m->quant_w = sdiff__wl_get(wl, 2, 2 * lat, 2 * lat, 0, 0, "quant_conv.weight");
        m->quant_b = sdiff__wl_get(wl, 1, 2 * lat, 0, 0, 0, "quant_conv.bias");
    }
    /* decoder */
    if (c->post_quant_conv) {
        m->post_quant_w = sdiff__wl_get(wl, 2, lat, lat, 0, 0, "post_quant_conv.weight");
        m->post_quant_b = sdiff__wl_get(wl, 1, lat, 0, 0, 0, "post_quant_conv.bias");
    }
    m->dec_in_w = sdiff__wl_get(wl, 4, top, lat, 3, 3, "decoder.conv_in.weight");
    m->dec_in_b = sdiff__wl_get(wl, 1, top, 0, 0, 0, "decoder.conv_in.bias");
    sdiff__vae_mid_weights(wl, &m->dec_mid, "decoder.", top, c->mid_attention);
    for (int i = 0; i < n; i++) {
        int64_t out = c->ch[n - 1 - i], prev = c->ch[i ? n - i : n - 1];
        for (int l = 0; l <= L; l++) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d.", i, l);
            sdiff__resnet_weights(wl, &m->dec_res[i][l], p, l ? out : prev, out, NULL);
        }
        if (i < n - 1) {
            m->dec_up_w[i] = sdiff__wl_get(wl, 4, out, out, 3, 3, "decoder.up_blocks.%d.upsamplers.0.conv.weight", i);
            m->dec_up_b[i] = sdiff__wl_get(wl, 1, out, 0, 0, 0, "decoder.up_blocks.%d.upsamplers.0.conv.bias", i);
        }
    }
    m->dec_norm_g = sdiff__wl_get(wl, 1, c->ch[0], 0, 0, 0, "decoder.conv_norm_out.weight");
    m->dec_norm_b = sdiff__wl_get(wl, 1, c->ch[0], 0, 0, 0, "decoder.conv_norm_out.bias");
    m->dec_out_w = sdiff__wl_get(wl, 4, c->out_channels, c->ch[0], 3, 3, "decoder.conv_out.weight");
    m->dec_out_b = sdiff__wl_get(wl, 1, c->out_channels, 0, 0, 0, "decoder.conv_out.bias");
}
/* y = resnet -> attention -> resnet on x [B,H,W,C]. */
SDIFF__PRIVATE void sdiff__vae_mid_forward(sdiff__run *r, const sdiff__vae_mid *mid, sdiff__tensor *y,
                                           const sdiff__tensor *x, int groups, bool attn) {
    const int64_t B = x->ne[0], N = x->ne[1] * x->ne[2], C = sdiff__cols(x);
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    sdiff__tensor *h = sdiff__like(r, x, C);
    sdiff__resnet_forward(r, &mid->res[0], h, x, NULL, groups, 1e-6f);
    if (attn) {
        sdiff__tensor *h2 = sdiff__like(r, x, C);
        sdiff__arena_mark am = sdiff__arena_mark_get(r->ar);
        sdiff__tensor *n = sdiff__group_norm(r, h, mid->attn.norm_g, mid->attn.norm_b, groups, 1e-6f, false);
        sdiff__tensor *qkv = sdiff__linear(r, sdiff__reshape(r->ar, n, 3, B, N, C, 1), mid->attn.qkv_w, mid->attn.qkv_b,
                                           SDIFF__ACT_NONE, NULL);
        sdiff__tensor *a = sdiff__attention(r, qkv, qkv, C, C, 2 * C, 1, false);
        r->be->linear(r->be, sdiff__reshape(r->ar, h2, 3, B, N, C, 1), a, mid->attn.out_w, mid->attn.out_b,
                      SDIFF__ACT_NONE, sdiff__reshape(r->ar, h, 3, B, N, C, 1));
        sdiff__arena_release(r->ar, am);
        h = h2;
    }
    sdiff__resnet_forward(r, &mid->res[1], y, h, NULL, groups, 1e-6f);
    sdiff__arena_release(r->ar, mark);
}
/* image [B, H, W, 3] in [-1, 1] -> moments [B, H/f, W/f, 2*latent] (mean, logvar). */
SDIFF__PRIVATE sdiff__tensor *sdiff__vae_encode(sdiff__run *r, const sdiff__vae *m, const sdiff__tensor *image) {
    const sdiff__vae_config *c = &m->cfg;
    const int n = c->levels, G = c->groups;
    const int64_t f = (int64_t)1 << (n - 1);
    sdiff__tensor *out = sdiff__new4(r->ar, r->be->act_dtype, image->ne[0], image->ne[1] / f, image->ne[2] / f, 2 * c->latent);
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    sdiff__tensor *h = sdiff__conv(r, image, m->enc_in_w, m->enc_in_b, 1, 1, NULL);
    for (int i = 0; i < n; i++) {
        for (int l = 0; l < c->layers_per_block; l++) {
            sdiff__tensor *y = sdiff__like(r, h, c->ch[i]);
            sdiff__resnet_forward(r, &m->enc_res[i][l], y, h, NULL, G, 1e-6f);
            h = y;
        }
        if (i < n - 1) { /* F.pad(0, 1, 0, 1) then a 3x3 stride-2 conv: pad 0, and y one pixel short */
            sdiff__tensor *y = sdiff__new4(r->ar, r->be->act_dtype, h->ne[0], h->ne[1] / 2, h->ne[2] / 2, c->ch[i]);
            r->be->conv2d(r->be, y, h, m->enc_down_w[i], m->enc_down_b[i], 2, 0, NULL);
            h = y;
        }
    }
    sdiff__tensor *y = sdiff__like(r, h, c->ch[n - 1]);
    sdiff__vae_mid_forward(r, &m->enc_mid, y, h, G, c->mid_attention);
    h = sdiff__group_norm(r, y, m->enc_norm_g, m->enc_norm_b, G, 1e-6f, true);
    if (c->quant_conv) {
        h = sdiff__conv(r, h, m->enc_out_w, m->enc_out_b, 1, 1, NULL);
        r->be->linear(r->be, out, h, m->quant_w, m->quant_b, SDIFF__ACT_NONE, NULL);
    } else r->be->conv2d(r->be, out, h, m->enc_out_w, m->enc_out_b, 1, 1, NULL);
    sdiff__arena_release(r->ar, mark);
    return out;
}
/* latents [B, h, w, latent] (already divided by the scaling factor) ->
   image [B, h*f, w*f, 3] in about [-1, 1]. */
SDIFF__PRIVATE sdiff__tensor *sdiff__vae_decode(sdiff__run *r, const sdiff__vae *m, const sdiff__tensor *z) {
    const sdiff__vae_config *c = &m->cfg;
    const int n = c->levels, G = c->groups;
    const int64_t f = (int64_t)1 << (n - 1);
    sdiff__tensor *out = sdiff__new4(r->ar, r->be->act_dtype, z->ne[0], z->ne[1] * f, z->ne[2] * f, c->out_channels);
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    const sdiff__tensor *zz = c->post_quant_conv ? sdiff__linear(r, z, m->post_quant_w, m->post_quant_b, SDIFF__ACT_NONE, NULL) : z;
    sdiff__tensor *h = sdiff__conv(r, zz, m->dec_in_w, m->dec_in_b, 1, 1, NULL);
    sdiff__tensor *y = sdiff__like(r, h, c->ch[n - 1]);
    sdiff__vae_mid_forward(r, &m->dec_mid, y, h, G, c->mid_attention);
    h = y;
    /* Memory: the full-resolution levels dominate, so each level writes its
       result into `next`, allocated before the level's own scratch (two
       ping-pong buffers for its resnets, the upsampled image), and the
       scratch is released when the level ends. */
    for (int i = 0; i < n; i++) {
        const int64_t ch = c->ch[n - 1 - i], B = h->ne[0], H = h->ne[1], W = h->ne[2];
        const bool up = i < n - 1;
        sdiff__tensor *next = sdiff__new4(r->ar, r->be->act_dtype, B, up ? 2 * H : H, up ? 2 * W : W, ch);
        sdiff__arena_mark lm = sdiff__arena_mark_get(r->ar);
        /* the level's input h is dead once the first resnet has read it: the second ping-pong
           buffer lives in its memory (at 512x512 the full-resolution level's input is twice that
           buffer's size, and this is the decoder's peak: 64 MiB less) */
        sdiff__tensor *pp[2] = {sdiff__new4(r->ar, r->be->act_dtype, B, H, W, ch),
                                sdiff__numel(h) >= B * H * W * ch ? sdiff__reuse(r->ar, h, 4, B, H, W, ch)
                                                                  : sdiff__new4(r->ar, r->be->act_dtype, B, H, W, ch)};
        const sdiff__tensor *x = h;
        for (int l = 0; l <= c->layers_per_block; l++) {
            y = !up && l == c->layers_per_block ? next : pp[l & 1];
            sdiff__resnet_forward(r, &m->dec_res[i][l], y, x, NULL, G, 1e-6f);
            x = y;
        }
        if (up) sdiff__upsample_conv(r, next, x, m->dec_up_w[i], m->dec_up_b[i]);
        sdiff__arena_release(r->ar, lm);
        h = next;
    }
    h = sdiff__group_norm(r, h, m->dec_norm_g, m->dec_norm_b, G, 1e-6f, true);
    r->be->conv2d(r->be, out, h, m->dec_out_w, m->dec_out_b, 1, 1, NULL);
    sdiff__arena_release(r->ar, mark);
    return out;
}

/* >>rng ====================================================================
   Random numbers: torch.randn on the CPU generator

   torch.randn(shape, generator=torch.Generator().manual_seed(seed)) with
   dtype float32 on the CPU, reproduced bit for bit, so a seed gives the
   image diffusers gives. The pieces, as PyTorch has them:

   - The engine is mt19937 (ATen's at::mt19937, CPUGeneratorImpl), seeded
     with the low 32 bits of the seed by the standard initialisation.
     random() is one 32-bit output; random64() is two, the first one in the
     high half.
   - A float uniform is (random() & 0xFFFFFF) * 2^-24; a double uniform is
     (random64() & (2^53 - 1)) * 2^-53 (TransformationHelper uniform_real).
   - randn of a contiguous float tensor with numel >= 16 (ATen normal_kernel):
     first ALL numel uniforms are drawn into the output, then every full block
     of 16 is turned into normals by Box-Muller: for j < 8,
     u1 = 1 - d[j], u2 = d[j+8], r = sqrt(-2 ln u1), theta = 2 pi u2,
     d[j] = r cos theta, d[j+8] = r sin theta. When numel % 16 != 0, 16 NEW
     uniforms are drawn into the last 16 slots (overwriting part of the last
     full block) and those 16 are transformed again.
   - numel < 16: element by element, at::normal_distribution<double>: two
     double uniforms u1, u2 (random64 each), r = sqrt(-2 log1p(-u2)),
     theta = 2 pi u1, return r cos theta and keep r sin theta in the
     generator; the next scalar draw returns the kept value first. The kept
     value survives across calls (and across >= 16 draws, which never touch
     it) until manual_seed; we keep it in the struct the same way.

   Which Box-Muller kernel: ATen compiles normal_kernel per CPU capability
   and registers NO AVX512 version (DistributionKernels.cpp,
   REGISTER_NO_AVX512_DISPATCH(normal_stub)), so on every x86-64 CPU with
   AVX2 -- AVX512 machines included -- torch runs normal_fill_AVX2, which
   computes in float32 with avx_mathfun's Cephes polynomials (log256_ps,
   sincos256_ps); the portable kernel (normal_fill_16: float log and sqrt,
   then theta, cos and sin in double, the product rounded to float) runs only
   on CPUs without AVX2 (ARM: Apple silicon, Graviton, Grace) or with
   ATEN_CPU_CAPABILITY=default. The two differ in the last bit or two of
   about 63% of the values (largest absolute difference 1.3e-6, relative
   norm 1.4e-7 over 65536 values: tests/test_sched.c's rng_paths_agree); the
   AVX2 one is the default here (SDIFF__RNG_X86), SDIFF__RNG_PORTABLE selects
   the other (for images made with PyTorch on ARM). We evaluate the
   same Cephes polynomials with scalar float operations in the same order,
   so the result does not depend on the CPU sdiff runs on.
   PyTorch's x86 wheels are built by GCC, which contracts the intrinsics'
   multiply-then-add pairs into FMAs (its default -ffp-contract=fast with
   -mfma); SDIFF__RNG_X86 does the same with explicit fmaf() at exactly the
   places GCC fuses. Checked against torch 2.11.0+cu130 on an AVX512 Xeon
   (torch's CPU capability AVX512, normal_stub running the AVX2 kernel):
   SDIFF__RNG_X86 matched every one of 19,600 values bit for bit (sizes 1 to
   16384, seeds up to 2^32 + 5, five calls in a row on one generator; the
   fixture tools/fixtures_sched.py writes keeps the same cases with 2048 for
   16384); SDIFF__RNG_X86_NOFMA differed in
   the last bit of about 1% of them, SDIFF__RNG_PORTABLE in about 60%.

   The CUDA generator (Philox) is a different stream; it is not provided.
   ========================================================================= */
#define SDIFF__MT_N 624

typedef enum sdiff__rng_path {
    SDIFF__RNG_X86 = 0,      /* x86-64 PyTorch (normal_fill_AVX2), default  */
    SDIFF__RNG_X86_NOFMA,    /* the same kernel built without FMA fusion     */
    SDIFF__RNG_PORTABLE      /* non-AVX2 PyTorch (normal_fill_16)            */
} sdiff__rng_path;

typedef struct sdiff__rng {
    uint32_t mt[SDIFF__MT_N];
    int next;                /* index of the next word; SDIFF__MT_N = regenerate */
    bool has_cached_normal;  /* at::normal_distribution<double>'s kept value   */
    double cached_normal;
    sdiff__rng_path path;
    bool half;               /* draws as torch.randn(dtype=float16) does      */
} sdiff__rng;

/* torch.Generator().manual_seed(seed): mt19937 seeded with (uint32)seed, the
   kept normal dropped, float32 draws. Keeps the chosen path. */
SDIFF__PRIVATE void sdiff__rng_seed(sdiff__rng *r, uint64_t seed) {
    r->mt[0] = (uint32_t)seed;
    for (int i = 1; i < SDIFF__MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->next = SDIFF__MT_N;
    r->has_cached_normal = false;
    r->cached_normal = 0.0;
    r->half = false;
}

/* One tempered 32-bit output (generator->random()). */
SDIFF__PRIVATE uint32_t sdiff__rng_u32(sdiff__rng *r) {
    if (r->next >= SDIFF__MT_N) {
        for (int i = 0; i < SDIFF__MT_N; i++) {
            uint32_t y = (r->mt[i] & 0x80000000u) | (r->mt[(i + 1) % SDIFF__MT_N] & 0x7fffffffu);
            r->mt[i] = r->mt[(i + 397) % SDIFF__MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        r->next = 0;
    }
    uint32_t y = r->mt[r->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* generator->random64(): the first draw is the high half. */
SDIFF__PRIVATE uint64_t sdiff__rng_u64(sdiff__rng *r) {
    uint64_t hi = sdiff__rng_u32(r);
    uint64_t lo = sdiff__rng_u32(r);
    return (hi << 32) | lo;
}

/* uniform_real_distribution<float>(0, 1): 24 random bits times 2^-24. */
SDIFF__PRIVATE float sdiff__rng_uniform_f32(sdiff__rng *r) {
    return (float)(sdiff__rng_u32(r) & 0xFFFFFFu) * (1.0f / 16777216.0f);
}
/* uniform_real_distribution<double>(0, 1): 53 random bits times 2^-53. */
SDIFF__PRIVATE double sdiff__rng_uniform_f64(sdiff__rng *r) {
    return (double)(sdiff__rng_u64(r) & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

SDIFF__PRIVATE float sdiff__rng_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
SDIFF__PRIVATE uint32_t sdiff__rng_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* a*b + c, rounded once (fused) or twice, as the compiled kernel does it. */
SDIFF__PRIVATE float sdiff__rng_madd(float a, float b, float c, bool fused) {
    if (fused) return fmaf(a, b, c);
    float p = a * b;
    return p + c;
}

/* avx_mathfun's log256_ps for one lane (x > 0): Cephes logf, float ops in
   the kernel's order. */
SDIFF__PRIVATE float sdiff__rng_cephes_log(float x, bool fused) {
    const float p[9] = {7.0376836292E-2f, -1.1514610310E-1f, 1.1676998740E-1f, -1.2420140846E-1f,
                        1.4249322787E-1f, -1.6668057665E-1f, 2.0000714765E-1f, -2.4999993993E-1f,
                        3.3333331174E-1f};
    const float q1 = -2.12194440e-4f, q2 = 0.693359375f, sqrthf = 0.707106781186547524f;
    if (x < sdiff__rng_bits_f32(0x00800000u)) x = sdiff__rng_bits_f32(0x00800000u); /* cut denormals */
    uint32_t bits = sdiff__rng_f32_bits(x);
    int32_t e_int = (int32_t)(bits >> 23) - 0x7f;
    x = sdiff__rng_bits_f32((bits & ~0x7f800000u) | sdiff__rng_f32_bits(0.5f)); /* mantissa in [0.5, 1) */
    float e = (float)e_int + 1.0f;
    bool below = x < sqrthf;
    float tmp = below ? x : 0.0f;
    x = x - 1.0f;
    e = e - (below ? 1.0f : 0.0f);
    x = x + tmp;
    float z = x * x;
    float y = p[0];
    for (int i = 1; i < 9; i++) y = sdiff__rng_madd(y, x, p[i], fused);
    y = y * x;
    /* y = y*z + e*q1: GCC fuses the first product into the add */
    if (fused) y = fmaf(y, z, e * q1);
    else { y = y * z; float t = e * q1; y = y + t; }
    /* y = y - z*0.5 */
    if (fused) y = fmaf(-z, 0.5f, y);
    else { float t = z * 0.5f; y = y - t; }
    x = x + y;
    x = sdiff__rng_madd(e, q2, x, fused);
    return x;
}

/* avx_mathfun's sincos256_ps for one lane: Cephes sinf/cosf with the
   three-part pi/4 reduction, float ops in the kernel's order. */
SDIFF__PRIVATE void sdiff__rng_cephes_sincos(float x, float *s, float *c, bool fused) {
    const float dp1 = -0.78515625f, dp2 = -2.4187564849853515625e-4f, dp3 = -3.77489497744594108e-8f;
    const float sp0 = -1.9515295891E-4f, sp1 = 8.3321608736E-3f, sp2 = -1.6666654611E-1f;
    const float cp0 = 2.443315711809948E-005f, cp1 = -1.388731625493765E-003f, cp2 = 4.166664568298827E-002f;
    const float fopi = 1.27323954473516f;
    uint32_t sign_sin = sdiff__rng_f32_bits(x) & 0x80000000u;
    x = fabsf(x);
    float y = x * fopi;
    int32_t j = (int32_t)y;           /* cvttps: truncation */
    j = (j + 1) & ~1;
    y = (float)j;
    uint32_t swap_sin = ((uint32_t)j & 4u) << 29;
    bool poly_sin = (j & 2) == 0;      /* the mask: 1st polynomial is the cosine one */
    x = sdiff__rng_madd(y, dp1, x, fused);
    x = sdiff__rng_madd(y, dp2, x, fused);
    x = sdiff__rng_madd(y, dp3, x, fused);
    uint32_t sign_cos = (~(uint32_t)(j - 2) & 4u) << 29;
    sign_sin ^= swap_sin;
    float z = x * x;
    float yc = cp0;
    yc = sdiff__rng_madd(yc, z, cp1, fused);
    yc = sdiff__rng_madd(yc, z, cp2, fused);
    yc = yc * z;
    /* yc = yc*z - z*0.5: GCC fuses the first product */
    if (fused) yc = fmaf(yc, z, -(z * 0.5f));
    else { yc = yc * z; float t = z * 0.5f; yc = yc - t; }
    yc = yc + 1.0f;
    float ys = sp0;
    ys = sdiff__rng_madd(ys, z, sp1, fused);
    ys = sdiff__rng_madd(ys, z, sp2, fused);
    ys = ys * z;
    ys = sdiff__rng_madd(ys, x, x, fused);
    /* select through the same adds and subtractions as the kernel */
    float ysin2 = poly_sin ? ys : 0.0f, ysin1 = poly_sin ? 0.0f : yc;
    ys = ys - ysin2;
    yc = yc - ysin1;
    float sv = ysin1 + ysin2, cv = yc + ys;
    *s = sdiff__rng_bits_f32(sdiff__rng_f32_bits(sv) ^ sign_sin);
    *c = sdiff__rng_bits_f32(sdiff__rng_f32_bits(cv) ^ sign_cos);
}

/* Box-Muller over 16 uniforms in place (normal_fill_16 / normal_fill_16_AVX2). */
SDIFF__PRIVATE void sdiff__rng_fill16(float *d, sdiff__rng_path path) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j]; /* [0, 1) -> (0, 1] for the log */
        float u2 = d[j + 8];
        if (path == SDIFF__RNG_PORTABLE) {
            float radius = sqrtf(-2.0f * logf(u1));
            double theta = 2.0 * 3.14159265358979323846 * (double)u2;
            d[j] = (float)((double)radius * cos(theta));
            d[j + 8] = (float)((double)radius * sin(theta));
        } else {
            bool fused = path == SDIFF__RNG_X86;
            float radius = sqrtf(-2.0f * sdiff__rng_cephes_log(u1, fused));
            float theta = 6.28318530717958647692f * u2; /* (float)(2 pi) */
            float s, c;
            sdiff__rng_cephes_sincos(theta, &s, &c, fused);
            d[j] = radius * c;      /* fmadd(n, std = 1, mean = 0) == n */
            d[j + 8] = radius * s;
        }
    }
}

/* at::normal_distribution<double>(0, 1) for one element (numel < 16). */
SDIFF__PRIVATE double sdiff__rng_normal_f64(sdiff__rng *r) {
    if (r->has_cached_normal) {
        r->has_cached_normal = false;
        return r->cached_normal;
    }
    double u1 = sdiff__rng_uniform_f64(r);
    double u2 = sdiff__rng_uniform_f64(r);
    double radius = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * 3.14159265358979323846 * u1;
    r->cached_normal = radius * sin(theta);
    r->has_cached_normal = true;
    return radius * cos(theta);
}

/* normal_fill_16<c10::Half>: the generic kernel, which ATen runs for half
   tensors (its AVX2 kernel is float-only). Every named intermediate is a
   Half, so each is rounded to fp16 where the C++ stores it; the arithmetic
   in between is float (theta's in double), as c10::Half's operators do. */
SDIFF__PRIVATE void sdiff__rng_fill16_half(float *d) {
#define SDIFF__H(x) sdiff__f16_to_f32(sdiff__f32_to_f16((float)(x)))
    for (int j = 0; j < 8; j++) {
        float u1 = SDIFF__H(1.0f - d[j]), u2 = d[j + 8];
        float radius = SDIFF__H(sqrtf(-2.0f * logf(u1)));
        float theta = SDIFF__H(2.0f * 3.14159265358979323846 * (double)u2);
        d[j] = SDIFF__H(radius * cosf(theta));
        d[j + 8] = SDIFF__H(radius * sinf(theta));
    }
#undef SDIFF__H
}

/* torch.randn(n elements, generator=r, dtype=float32 -- or float16 when
   r->half, the values returned as floats) on the CPU, continuing
   the generator's stream. A tensor of any shape is one call with n = numel
   (diffusers' randn_tensor draws the whole batch in one call). */
SDIFF__PRIVATE void sdiff__rng_randn(sdiff__rng *r, float *out, size_t n) {
    if (n < 16) {
        for (size_t i = 0; i < n; i++) {
            out[i] = (float)sdiff__rng_normal_f64(r);
            if (r->half) out[i] = sdiff__f16_to_f32(sdiff__f32_to_f16(out[i]));
        }
        return;
    }
    if (r->half) { /* uniform_real_distribution<Half>: 11 random bits times 2^-11 */
        for (size_t i = 0; i < n; i++) out[i] = (float)(sdiff__rng_u32(r) & 0x7FFu) * (1.0f / 2048.0f);
        for (size_t i = 0; i + 16 <= n; i += 16) sdiff__rng_fill16_half(out + i);
        if (n % 16 != 0) {
            float *tail = out + n - 16;
            for (int i = 0; i < 16; i++) tail[i] = (float)(sdiff__rng_u32(r) & 0x7FFu) * (1.0f / 2048.0f);
            sdiff__rng_fill16_half(tail);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = sdiff__rng_uniform_f32(r);
    for (size_t i = 0; i + 16 <= n; i += 16) sdiff__rng_fill16(out + i, r->path);
    if (n % 16 != 0) { /* recompute the last 16 from fresh uniforms */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = sdiff__rng_uniform_f32(r);
        sdiff__rng_fill16(tail, r->path);
    }
}

/* >>sched ==================================================================
   Schedulers: DDIM, PNDM, Euler, Euler ancestral, DPM-Solver++ 2M, DDPM

   Each one follows the diffusers class of the same name (scheduling_*.py)
   given the same scheduler_config.json, so a seed gives diffusers' image:
   timesteps and sigmas are computed in double where diffusers uses float64
   numpy and rounded to float where it casts to float32 torch; the per-step
   scalars are float32, one rounding per torch operation, in torch's order
   (so the implementation must be compiled without FP contraction, which is
   what -std=c11 gives with GCC; Clang only contracts within one expression;
   the pragmas below also switch contraction off for this section under GCC
   and Clang, whatever the user's flags, e.g. -march=native in GNU C mode).
   A step's vector arithmetic is a few lincomb instructions with those
   scalars folded into their coefficients (sdiff__sched_plan_step, below),
   so it runs on the backend, next to the latents.

   How the pipeline drives it (diffusers' StableDiffusion[Img2Img]Pipeline):
     sdiff__sched_config cfg; sdiff__sched_config_default(&cfg) or
         sdiff__sched_config_set_*() for each key of scheduler_config.json
     sdiff__sched_create(sampler, &cfg, steps, eta, &s)
         sampler DEFAULT = the config's _class_name; any other sampler =
         diffusers' Other.from_config(config): the keys the JSON set carry
         over, the others take the new class's defaults. eta: DDIM only.
     first = 0
     txt2img: x = randn(B*4*h*w) * init_noise_sigma      (one randn call)
     img2img: first = sdiff__sched_img2img_begin(s, strength) (get_timesteps
         + set_begin_index; == sdiff__sched_len(s) when no step is left), then
         the VAE encoder's latent_dist.sample draws randn first, then
         noise = randn(B*4*h*w), then sdiff__sched_add_noise(s, first, x,
         noise, n) turns the encoded latents x into the starting latents.
     for i in first .. sdiff__sched_len(s)-1, in order (i indexes
     scheduler.timesteps):
         t = sdiff__sched_timestep(s, i)          (fed to the UNet)
         x_in = x * sdiff__sched_input_scale(s, i) (scale_model_input)
         mo = unet(x_in, t) (with CFG combined)
         noise = randn(n) if sdiff__sched_step_noise(s, i) (Euler a, DDPM
             with t > 0, DDIM with eta > 0: drawn after the model call)
         sdiff__sched_plan_step(s, i, &plan), then each instruction of plan
             on x, mo, noise and the sdiff__sched_state_count(s) kept vectors
   n is the whole latent batch (B*4*h*w): diffusers draws per-step noise for
   the batch in one randn call, and so do we.
   ========================================================================= */

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

typedef enum sdiff__beta_schedule {
    SDIFF__BETA_LINEAR = 0, SDIFF__BETA_SCALED_LINEAR, SDIFF__BETA_SQUAREDCOS_CAP_V2
} sdiff__beta_schedule;
typedef enum sdiff__pred_type { SDIFF__PRED_EPSILON = 0, SDIFF__PRED_V, SDIFF__PRED_SAMPLE } sdiff__pred_type;
typedef enum sdiff__spacing { SDIFF__SPACING_LEADING = 0, SDIFF__SPACING_LINSPACE, SDIFF__SPACING_TRAILING } sdiff__spacing;
typedef enum sdiff__ddpm_variance {
    SDIFF__VAR_FIXED_SMALL = 0, SDIFF__VAR_FIXED_SMALL_LOG, SDIFF__VAR_FIXED_LARGE, SDIFF__VAR_OTHER
} sdiff__ddpm_variance;

/* Which keys scheduler_config.json set (diffusers' from_config carries only
   those; the rest take the target class's __init__ defaults). */
enum {
    SDIFF__SK_NUM_TRAIN = 1u << 0, SDIFF__SK_BETA_START = 1u << 1, SDIFF__SK_BETA_END = 1u << 2,
    SDIFF__SK_BETA_SCHEDULE = 1u << 3, SDIFF__SK_PREDICTION = 1u << 4, SDIFF__SK_SPACING = 1u << 5,
    SDIFF__SK_STEPS_OFFSET = 1u << 6, SDIFF__SK_ALPHA_TO_ONE = 1u << 7, SDIFF__SK_CLIP = 1u << 8,
    SDIFF__SK_CLIP_RANGE = 1u << 9, SDIFF__SK_SKIP_PRK = 1u << 10, SDIFF__SK_ZERO_SNR = 1u << 11,
    SDIFF__SK_KARRAS = 1u << 12, SDIFF__SK_FINAL_SIGMA_MIN = 1u << 13, SDIFF__SK_LOWER_FINAL = 1u << 14,
    SDIFF__SK_EULER_FINAL = 1u << 15, SDIFF__SK_ORDER = 1u << 16, SDIFF__SK_VARIANCE = 1u << 17,
    SDIFF__SK_SIGMA_MIN = 1u << 18, SDIFF__SK_SIGMA_MAX = 1u << 19
};

typedef struct sdiff__sched_config {
    sdiff_sampler class_sampler;   /* _class_name (DDIM if absent)              */
    uint32_t present;              /* SDIFF__SK_* bits of the keys that are set */
    int num_train_timesteps;
    double beta_start, beta_end;
    sdiff__beta_schedule beta_schedule;
    sdiff__pred_type prediction_type;
    sdiff__spacing timestep_spacing;
    int steps_offset;
    bool set_alpha_to_one, clip_sample;
    double clip_sample_range;
    bool skip_prk_steps;           /* PNDM                                      */
    bool rescale_betas_zero_snr;
    bool use_karras_sigmas;        /* Euler, DPM-Solver                         */
    bool final_sigmas_sigma_min;   /* final_sigmas_type "sigma_min" (else zero) */
    bool lower_order_final, euler_at_final;
    int solver_order;              /* DPM-Solver: 1 or 2                        */
    sdiff__ddpm_variance variance_type;
    double sigma_min, sigma_max;   /* Euler's Karras range (if present)         */
    /* values set to something we do not run; checked when a class uses them */
    bool bad_thresholding, bad_interpolation, bad_timestep_type, bad_other_sigmas;
    bool bad_algorithm, bad_solver_type, bad_lambda_clip;
} sdiff__sched_config;

/* The values of Stable Diffusion 1.5's scheduler/scheduler_config.json
   (PNDMScheduler, scaled_linear 0.00085..0.012, steps_offset 1,
   skip_prk_steps, set_alpha_to_one false, clip_sample false), with exactly
   those keys marked present. */
SDIFF__PRIVATE void sdiff__sched_config_default(sdiff__sched_config *c) {
    memset(c, 0, sizeof *c);
    c->class_sampler = SDIFF_SAMPLER_PNDM;
    c->num_train_timesteps = 1000;
    c->beta_start = 0.00085;
    c->beta_end = 0.012;
    c->beta_schedule = SDIFF__BETA_SCALED_LINEAR;
    c->steps_offset = 1;
    c->set_alpha_to_one = false;
    c->clip_sample = false;
    c->skip_prk_steps = true;
    c->present = SDIFF__SK_NUM_TRAIN | SDIFF__SK_BETA_START | SDIFF__SK_BETA_END | SDIFF__SK_BETA_SCHEDULE |
                 SDIFF__SK_STEPS_OFFSET | SDIFF__SK_ALPHA_TO_ONE | SDIFF__SK_CLIP | SDIFF__SK_SKIP_PRK;
}

/* An empty config: nothing present, every class uses its own defaults. */
SDIFF__PRIVATE void sdiff__sched_config_empty(sdiff__sched_config *c, sdiff_sampler class_sampler) {
    memset(c, 0, sizeof *c);
    c->class_sampler = class_sampler;
}

/* diffusers' _class_name -> our sampler; karras picks the Karras variant of
   DPM-Solver (use_karras_sigmas). SDIFF_SAMPLER_COUNT_ for a class we lack. */
SDIFF__PRIVATE sdiff_sampler sdiff__sampler_from_class_name(const char *class_name, bool karras) {
    if (!class_name) return SDIFF_SAMPLER_COUNT_;
    if (!strcmp(class_name, "DDIMScheduler")) return SDIFF_SAMPLER_DDIM;
    if (!strcmp(class_name, "PNDMScheduler")) return SDIFF_SAMPLER_PNDM;
    if (!strcmp(class_name, "EulerDiscreteScheduler")) return SDIFF_SAMPLER_EULER;
    if (!strcmp(class_name, "EulerAncestralDiscreteScheduler")) return SDIFF_SAMPLER_EULER_A;
    if (!strcmp(class_name, "DPMSolverMultistepScheduler"))
        return karras ? SDIFF_SAMPLER_DPMPP_2M_KARRAS : SDIFF_SAMPLER_DPMPP_2M;
    if (!strcmp(class_name, "DDPMScheduler")) return SDIFF_SAMPLER_DDPM;
    return SDIFF_SAMPLER_COUNT_;
}

/* --- setters for the keys of scheduler_config.json. Unknown keys are
   ignored (diffusers ignores keys a class does not take); a value we cannot
   run in a key every class uses is an error at once, one only some classes
   use is an error when such a class is created. */
SDIFF__PRIVATE sdiff_status sdiff__sched_config_set_string(sdiff__sched_config *c, const char *key, const char *v) {
    if (!strcmp(key, "_class_name")) {
        sdiff_sampler s = sdiff__sampler_from_class_name(v, false);
        if (s == SDIFF_SAMPLER_COUNT_)
            return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler: class %s is not supported (DDIM, PNDM, "
                              "EulerDiscrete, EulerAncestralDiscrete, DPMSolverMultistep, DDPM are)", v);
        c->class_sampler = s;
    } else if (!strcmp(key, "beta_schedule")) {
        if (!strcmp(v, "linear")) c->beta_schedule = SDIFF__BETA_LINEAR;
        else if (!strcmp(v, "scaled_linear")) c->beta_schedule = SDIFF__BETA_SCALED_LINEAR;
        else if (!strcmp(v, "squaredcos_cap_v2")) c->beta_schedule = SDIFF__BETA_SQUAREDCOS_CAP_V2;
        else return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler: beta_schedule \"%s\" is not supported", v);
        c->present |= SDIFF__SK_BETA_SCHEDULE;
    } else if (!strcmp(key, "prediction_type")) {
        if (!strcmp(v, "epsilon")) c->prediction_type = SDIFF__PRED_EPSILON;
        else if (!strcmp(v, "v_prediction")) c->prediction_type = SDIFF__PRED_V;
        else if (!strcmp(v, "sample")) c->prediction_type = SDIFF__PRED_SAMPLE;
        else return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler: prediction_type \"%s\" is not supported", v);
        c->present |= SDIFF__SK_PREDICTION;
    } else if (!strcmp(key, "timestep_spacing")) {
        if (!strcmp(v, "leading")) c->timestep_spacing = SDIFF__SPACING_LEADING;
        else if (!strcmp(v, "linspace")) c->timestep_spacing = SDIFF__SPACING_LINSPACE;
        else if (!strcmp(v, "trailing")) c->timestep_spacing = SDIFF__SPACING_TRAILING;
        else return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler: timestep_spacing \"%s\" is not supported", v);
        c->present |= SDIFF__SK_SPACING;
    } else if (!strcmp(key, "final_sigmas_type")) {
        if (!strcmp(v, "zero")) c->final_sigmas_sigma_min = false;
        else if (!strcmp(v, "sigma_min")) c->final_sigmas_sigma_min = true;
        else return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: final_sigmas_type \"%s\" is not zero or sigma_min", v);
        c->present |= SDIFF__SK_FINAL_SIGMA_MIN;
    } else if (!strcmp(key, "variance_type")) {
        c->variance_type = !strcmp(v, "fixed_small") ? SDIFF__VAR_FIXED_SMALL
                         : !strcmp(v, "fixed_small_log") ? SDIFF__VAR_FIXED_SMALL_LOG
                         : !strcmp(v, "fixed_large") ? SDIFF__VAR_FIXED_LARGE : SDIFF__VAR_OTHER;
        c->present |= SDIFF__SK_VARIANCE;
    } else if (!strcmp(key, "interpolation_type")) {
        c->bad_interpolation = strcmp(v, "linear") != 0;
    } else if (!strcmp(key, "timestep_type")) {
        c->bad_timestep_type = strcmp(v, "discrete") != 0;
    } else if (!strcmp(key, "algorithm_type")) {
        c->bad_algorithm = strcmp(v, "dpmsolver++") != 0 && strcmp(v, "deis") != 0; /* deis -> dpmsolver++ */
    } else if (!strcmp(key, "solver_type")) {
        c->bad_solver_type = strcmp(v, "midpoint") && strcmp(v, "logrho") && strcmp(v, "bh1") && strcmp(v, "bh2");
    }
    return SDIFF_OK;
}

SDIFF__PRIVATE sdiff_status sdiff__sched_config_set_bool(sdiff__sched_config *c, const char *key, bool v) {
    if (!strcmp(key, "set_alpha_to_one")) { c->set_alpha_to_one = v; c->present |= SDIFF__SK_ALPHA_TO_ONE; }
    else if (!strcmp(key, "clip_sample")) { c->clip_sample = v; c->present |= SDIFF__SK_CLIP; }
    else if (!strcmp(key, "skip_prk_steps")) { c->skip_prk_steps = v; c->present |= SDIFF__SK_SKIP_PRK; }
    else if (!strcmp(key, "rescale_betas_zero_snr")) { c->rescale_betas_zero_snr = v; c->present |= SDIFF__SK_ZERO_SNR; }
    else if (!strcmp(key, "use_karras_sigmas")) { c->use_karras_sigmas = v; c->present |= SDIFF__SK_KARRAS; }
    else if (!strcmp(key, "lower_order_final")) { c->lower_order_final = v; c->present |= SDIFF__SK_LOWER_FINAL; }
    else if (!strcmp(key, "euler_at_final")) { c->euler_at_final = v; c->present |= SDIFF__SK_EULER_FINAL; }
    else if (!strcmp(key, "thresholding")) c->bad_thresholding = v;
    else if (!strcmp(key, "use_exponential_sigmas") || !strcmp(key, "use_beta_sigmas") ||
             !strcmp(key, "use_lu_lambdas") || !strcmp(key, "use_flow_sigmas") ||
             !strcmp(key, "use_dynamic_shifting")) c->bad_other_sigmas |= v;
    return SDIFF_OK;
}

SDIFF__PRIVATE sdiff_status sdiff__sched_config_set_number(sdiff__sched_config *c, const char *key, double v) {
    if (!strcmp(key, "num_train_timesteps")) {
        if (!(v >= 1 && v <= 100000) || v != floor(v))
            return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: num_train_timesteps %g is not an integer in 1..100000", v);
        c->num_train_timesteps = (int)v; c->present |= SDIFF__SK_NUM_TRAIN;
    } else if (!strcmp(key, "beta_start")) { c->beta_start = v; c->present |= SDIFF__SK_BETA_START; }
    else if (!strcmp(key, "beta_end")) { c->beta_end = v; c->present |= SDIFF__SK_BETA_END; }
    else if (!strcmp(key, "steps_offset")) {
        if (!(fabs(v) <= 100000) || v != floor(v))
            return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: steps_offset %g is not an integer", v);
        c->steps_offset = (int)v; c->present |= SDIFF__SK_STEPS_OFFSET;
    } else if (!strcmp(key, "clip_sample_range")) { c->clip_sample_range = v; c->present |= SDIFF__SK_CLIP_RANGE; }
    else if (!strcmp(key, "solver_order")) {
        if (v != 1 && v != 2 && v != 3)
            return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: solver_order %g is not 1, 2 or 3", v);
        c->solver_order = (int)v; c->present |= SDIFF__SK_ORDER;
    } else if (!strcmp(key, "sigma_min")) { c->sigma_min = v; c->present |= SDIFF__SK_SIGMA_MIN; }
    else if (!strcmp(key, "sigma_max")) { c->sigma_max = v; c->present |= SDIFF__SK_SIGMA_MAX; }
    else if (!strcmp(key, "lambda_min_clipped")) c->bad_lambda_clip = isfinite(v);
    else if (!strcmp(key, "set_alpha_to_one") || !strcmp(key, "clip_sample") || !strcmp(key, "skip_prk_steps") ||
             !strcmp(key, "use_karras_sigmas") || !strcmp(key, "lower_order_final"))
        return sdiff__sched_config_set_bool(c, key, v != 0);
    return SDIFF_OK;
}

/* A JSON null: "trained_betas": null and "sigma_min": null mean "absent". */
SDIFF__PRIVATE sdiff_status sdiff__sched_config_set_null(sdiff__sched_config *c, const char *key) {
    if (!strcmp(key, "sigma_min")) c->present &= ~(uint32_t)SDIFF__SK_SIGMA_MIN;
    else if (!strcmp(key, "sigma_max")) c->present &= ~(uint32_t)SDIFF__SK_SIGMA_MAX;
    return SDIFF_OK;
}
/* "trained_betas" with values: not supported (no released SD config uses it). */
SDIFF__PRIVATE sdiff_status sdiff__sched_config_set_array(sdiff__sched_config *c, const char *key) {
    SDIFF__UNUSED(c);
    if (!strcmp(key, "trained_betas"))
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler: trained_betas is not supported");
    return SDIFF_OK;
}

/* StableDiffusionPipeline.__init__'s fix-ups of outdated configs: it sets
   steps_offset to 1 and clip_sample to false in the loaded scheduler's
   config (the values then also carry over to from_config). Call after
   reading scheduler_config.json, before sdiff__sched_create. */
SDIFF__PRIVATE void sdiff__sched_config_pipeline_fixups(sdiff__sched_config *c) {
    /* present keys are overwritten; absent ones were class defaults that the
       pipeline overwrote in the config dict, still listed in
       _use_default_values, so only the default class sees them: we mark them
       present, which is exact for the default class and for any class whose
       default equals the fixed value. */
    bool offset_now = (c->present & SDIFF__SK_STEPS_OFFSET) ? c->steps_offset : 0;
    if (offset_now != 1) { c->steps_offset = 1; c->present |= SDIFF__SK_STEPS_OFFSET; }
    bool clip_now = (c->present & SDIFF__SK_CLIP) ? c->clip_sample
                  : (c->class_sampler == SDIFF_SAMPLER_DDIM || c->class_sampler == SDIFF_SAMPLER_DDPM);
    if (clip_now) { c->clip_sample = false; c->present |= SDIFF__SK_CLIP; }
}

/* --- the scheduler object */
typedef enum sdiff__sched_kind {
    SDIFF__K_DDIM, SDIFF__K_PNDM, SDIFF__K_EULER, SDIFF__K_EULER_A, SDIFF__K_DPM, SDIFF__K_DDPM
} sdiff__sched_kind;

typedef struct sdiff__sched {
    sdiff__sched_kind kind;
    sdiff_sampler sampler;        /* resolved, never DEFAULT                   */
    sdiff__sched_config cfg;      /* resolved: every value the class uses      */
    int steps;                    /* num_inference_steps                       */
    int n_ts;                     /* len(scheduler.timesteps)                  */
    int t_start;                  /* first timestep evaluated (img2img)        */
    int64_t *its;                 /* integer timesteps (DDIM, PNDM, DDPM, DPM) */
    float *ts;                    /* timesteps as fed to the UNet              */
    float *sigmas;                /* n_ts + 1 (Euler, Euler a, DPM)            */
    int n_prk;                    /* PNDM: number of Runge-Kutta timesteps     */
    float *alphas_cumprod;        /* num_train_timesteps                       */
    float final_alpha_cumprod;
    float init_noise_sigma;
    float eta;                    /* DDIM                                      */
    /* state across steps */
    int n_ets, counter;           /* PNDM                                      */
    int ets_slot[4];              /* PNDM: the kept vector of ets[0..3]        */
    int dpm_prev;                 /* DPM: the kept vector (0/1) of previous x0 */
    int lower_order_nums;
} sdiff__sched;

SDIFF__PRIVATE void sdiff__dpm_alpha_sigma(float sigma, float *alpha, float *sig);

SDIFF__PRIVATE void sdiff__sched_free(sdiff__sched *s) {
    if (!s) return;
    sdiff__free(s->its);
    sdiff__free(s->ts);
    sdiff__free(s->sigmas);
    sdiff__free(s->alphas_cumprod);
    sdiff__free(s);
}

/* diffusers' __init__ defaults of each class, then the present keys. */
SDIFF__PRIVATE void sdiff__sched_resolve(sdiff__sched_kind k, const sdiff__sched_config *in, sdiff__sched_config *c) {
    sdiff__sched_config d;
    memset(&d, 0, sizeof d);
    d.class_sampler = in->class_sampler;
    d.num_train_timesteps = 1000;
    d.beta_start = 0.0001;
    d.beta_end = 0.02;
    d.beta_schedule = SDIFF__BETA_LINEAR;
    d.prediction_type = SDIFF__PRED_EPSILON;
    d.timestep_spacing = (k == SDIFF__K_DDIM || k == SDIFF__K_PNDM || k == SDIFF__K_DDPM)
                       ? SDIFF__SPACING_LEADING : SDIFF__SPACING_LINSPACE;
    d.set_alpha_to_one = k == SDIFF__K_DDIM;     /* DDIM True, PNDM False     */
    d.clip_sample = k == SDIFF__K_DDIM || k == SDIFF__K_DDPM;
    d.clip_sample_range = 1.0;
    d.lower_order_final = true;
    d.solver_order = 2;
    d.variance_type = SDIFF__VAR_FIXED_SMALL;
    uint32_t p = in->present;
#define SDIFF__TAKE(bit, field) if (p & (bit)) d.field = in->field
    SDIFF__TAKE(SDIFF__SK_NUM_TRAIN, num_train_timesteps);
    SDIFF__TAKE(SDIFF__SK_BETA_START, beta_start);
    SDIFF__TAKE(SDIFF__SK_BETA_END, beta_end);
    SDIFF__TAKE(SDIFF__SK_BETA_SCHEDULE, beta_schedule);
    SDIFF__TAKE(SDIFF__SK_PREDICTION, prediction_type);
    SDIFF__TAKE(SDIFF__SK_SPACING, timestep_spacing);
    SDIFF__TAKE(SDIFF__SK_STEPS_OFFSET, steps_offset);
    SDIFF__TAKE(SDIFF__SK_ALPHA_TO_ONE, set_alpha_to_one);
    SDIFF__TAKE(SDIFF__SK_CLIP, clip_sample);
    SDIFF__TAKE(SDIFF__SK_CLIP_RANGE, clip_sample_range);
    SDIFF__TAKE(SDIFF__SK_SKIP_PRK, skip_prk_steps);
    SDIFF__TAKE(SDIFF__SK_ZERO_SNR, rescale_betas_zero_snr);
    SDIFF__TAKE(SDIFF__SK_KARRAS, use_karras_sigmas);
    SDIFF__TAKE(SDIFF__SK_FINAL_SIGMA_MIN, final_sigmas_sigma_min);
    SDIFF__TAKE(SDIFF__SK_LOWER_FINAL, lower_order_final);
    SDIFF__TAKE(SDIFF__SK_EULER_FINAL, euler_at_final);
    SDIFF__TAKE(SDIFF__SK_ORDER, solver_order);
    SDIFF__TAKE(SDIFF__SK_VARIANCE, variance_type);
    SDIFF__TAKE(SDIFF__SK_SIGMA_MIN, sigma_min);
    SDIFF__TAKE(SDIFF__SK_SIGMA_MAX, sigma_max);
#undef SDIFF__TAKE
    d.present = p;
    d.bad_thresholding = in->bad_thresholding;
    d.bad_interpolation = in->bad_interpolation;
    d.bad_timestep_type = in->bad_timestep_type;
    d.bad_other_sigmas = in->bad_other_sigmas;
    d.bad_algorithm = in->bad_algorithm;
    d.bad_solver_type = in->bad_solver_type;
    d.bad_lambda_clip = in->bad_lambda_clip;
    if (k == SDIFF__K_PNDM) d.rescale_betas_zero_snr = false;   /* not a PNDM option */
    if (k != SDIFF__K_EULER && k != SDIFF__K_DPM) d.use_karras_sigmas = false;
    *c = d;
}

/* --- numpy helpers, in float64 as numpy computes them */

/* np.round: half to even (the default rounding mode). */
SDIFF__PRIVATE double sdiff__np_round(double x) { return nearbyint(x); }

/* np.linspace(start, stop, num)[i]: i * ((stop - start) / (num - 1)) + start,
   the last value exactly stop. */
SDIFF__PRIVATE double sdiff__np_linspace(double start, double stop, int num, int i) {
    if (num == 1) return start;
    if (i == num - 1) return stop;
    double step = (stop - start) / (double)(num - 1);
    double y = (double)i * step;
    return y + start;
}

/* np.arange(start, stop, step) for a float step: the length is
   ceil((stop - start) / step); value i is start + i * delta, with delta =
   (start + step) - start (numpy fills from its first two values). */
SDIFF__PRIVATE int sdiff__np_arange_len(double start, double stop, double step) {
    double n = ceil((stop - start) / step);
    return n > 0 ? (int)n : 0;
}
SDIFF__PRIVATE double sdiff__np_arange(double start, double step, int i) {
    if (i == 0) return start;
    double second = start + step;
    if (i == 1) return second;
    double delta = second - start;
    double y = (double)i * delta;
    return start + y;
}

/* np.interp(x, arange(len), fp) with fp float32 promoted to double. */
SDIFF__PRIVATE double sdiff__np_interp_idx(double x, const float *fp, int len) {
    if (x <= 0) return fp[0];
    if (x >= (double)(len - 1)) return fp[len - 1];
    int j = (int)floor(x);
    if ((double)j == x) return fp[j];
    double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
    double y = slope * (x - (double)j);
    return y + (double)fp[j];
}

/* diffusers' _sigma_to_t: the fractional training index of sigma, from
   log_sigmas (float32, ascending). */
SDIFF__PRIVATE double sdiff__sigma_to_t(double sigma, const float *log_sigmas, int len) {
    double log_sigma = log(sigma > 1e-10 ? sigma : 1e-10);
    int low = 0;
    for (int i = 0; i < len; i++) if (log_sigma - (double)log_sigmas[i] >= 0) low = i; /* cumsum().argmax() */
    if (low > len - 2) low = len - 2;
    int high = low + 1;
    float lo = log_sigmas[low], hi = log_sigmas[high];
    float den = lo - hi;                                  /* float32 - float32 */
    double w = ((double)lo - log_sigma) / (double)den;
    if (w < 0) w = 0;
    if (w > 1) w = 1;
    double a = (1.0 - w) * (double)low;
    double b = w * (double)high;
    return a + b;
}

/* --- betas and alphas_cumprod (float32 torch) */
SDIFF__PRIVATE double sdiff__alpha_bar_cosine(double t) {
    double c = cos((t + 0.008) / 1.008 * 3.14159265358979323846 / 2);
    return c * c;
}

/* torch.linspace(start, end, steps, dtype=float32)[i] (ATen's scalar formula:
   from the start below halfway, from the end above). */
SDIFF__PRIVATE float sdiff__torch_linspace_f32(float start, float end, int steps, int i) {
    if (steps == 1) return start;
    float step = (end - start) / (float)(steps - 1);
    if (i < steps / 2) { float d = step * (float)i; return start + d; }
    float d = step * (float)(steps - i - 1);
    return end - d;
}

SDIFF__PRIVATE void sdiff__sched_alphas(sdiff__sched *s) {
    const sdiff__sched_config *c = &s->cfg;
    int N = c->num_train_timesteps;
    float *betas = s->alphas_cumprod; /* computed in place */
    for (int i = 0; i < N; i++) {
        if (c->beta_schedule == SDIFF__BETA_LINEAR) {
            betas[i] = sdiff__torch_linspace_f32((float)c->beta_start, (float)c->beta_end, N, i);
        } else if (c->beta_schedule == SDIFF__BETA_SCALED_LINEAR) {
            /* torch.linspace(beta_start**0.5, beta_end**0.5, N) ** 2 */
            float b = sdiff__torch_linspace_f32((float)sqrt(c->beta_start), (float)sqrt(c->beta_end), N, i);
            betas[i] = b * b;
        } else { /* squaredcos_cap_v2: betas_for_alpha_bar in python floats */
            double t1 = (double)i / N, t2 = (double)(i + 1) / N;
            double b = 1 - sdiff__alpha_bar_cosine(t2) / sdiff__alpha_bar_cosine(t1);
            betas[i] = (float)(b < 0.999 ? b : 0.999);
        }
    }
    if (c->rescale_betas_zero_snr) {
        /* rescale_zero_terminal_snr, float32 torch ops */
        double acc = 1.0;
        for (int i = 0; i < N; i++) {
            acc *= (double)(1.0f - betas[i]);
            betas[i] = sqrtf((float)acc); /* alphas_bar_sqrt */
        }
        float s0 = betas[0], sT = betas[N - 1];
        float scale = s0 / (s0 - sT);
        float prev_bar = 0;
        for (int i = 0; i < N; i++) {
            float v = (betas[i] - sT) * scale;
            float bar = v * v;
            float alpha = i == 0 ? bar : bar / prev_bar;
            prev_bar = bar;
            betas[i] = 1.0f - alpha;
        }
    }
    /* alphas = 1 - betas; torch.cumprod accumulates in double on the CPU */
    double acc = 1.0;
    for (int i = 0; i < N; i++) {
        acc *= (double)(1.0f - betas[i]);
        s->alphas_cumprod[i] = (float)acc;
    }
    if (c->rescale_betas_zero_snr && (s->kind == SDIFF__K_EULER || s->kind == SDIFF__K_EULER_A || s->kind == SDIFF__K_DPM))
        s->alphas_cumprod[N - 1] = 1.0f / 16777216.0f; /* alphas_cumprod[-1] = 2**-24 */
    s->final_alpha_cumprod = c->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
}

/* ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5 in float32. */
SDIFF__PRIVATE float sdiff__train_sigma(const sdiff__sched *s, int t) {
    float a = s->alphas_cumprod[t];
    return sqrtf((1.0f - a) / a);
}

/* set_timesteps' integer schedules (DDIM / DDPM / PNDM base, ascending=false):
   writes n values, descending. */
SDIFF__PRIVATE void sdiff__int_timesteps(const sdiff__sched_config *c, int n, int64_t *out) {
    int N = c->num_train_timesteps;
    if (c->timestep_spacing == SDIFF__SPACING_LINSPACE) {
        /* linspace: np.linspace(0, N - 1, n).round()[::-1] */
        for (int i = 0; i < n; i++) out[n - 1 - i] = (int64_t)sdiff__np_round(sdiff__np_linspace(0, N - 1, n, i));
    } else if (c->timestep_spacing == SDIFF__SPACING_LEADING) {
        /* leading: (arange(n) * (N // n)).round()[::-1] + steps_offset */
        int ratio = N / n;
        for (int i = 0; i < n; i++) out[n - 1 - i] = (int64_t)i * ratio + c->steps_offset;
    } else {
        /* trailing: round(arange(N, 0, -N / n)) - 1 */
        double ratio = (double)N / n;
        int len = sdiff__np_arange_len(N, 0, -ratio);
        for (int i = 0; i < n; i++)
            out[i] = i < len ? (int64_t)sdiff__np_round(sdiff__np_arange(N, -ratio, i)) - 1 : 0;
    }
}

SDIFF__PRIVATE sdiff_status sdiff__sched_timesteps(sdiff__sched *s) {
    const sdiff__sched_config *c = &s->cfg;
    int n = s->steps, N = c->num_train_timesteps;
    if (s->kind == SDIFF__K_DDIM || s->kind == SDIFF__K_DDPM) {
        s->n_ts = n;
        s->its = (int64_t *)sdiff__calloc((size_t)n, sizeof(int64_t));
        if (!s->its) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
        sdiff__int_timesteps(c, n, s->its);
    } else if (s->kind == SDIFF__K_PNDM) {
        int64_t *base = (int64_t *)sdiff__calloc((size_t)n, sizeof(int64_t)); /* ascending _timesteps */
        if (!base) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
        if (c->timestep_spacing == SDIFF__SPACING_LINSPACE) {
            for (int i = 0; i < n; i++) base[i] = (int64_t)sdiff__np_round(sdiff__np_linspace(0, N - 1, n, i));
        } else if (c->timestep_spacing == SDIFF__SPACING_LEADING) {
            for (int i = 0; i < n; i++) base[i] = (int64_t)i * (N / n) + c->steps_offset;
        } else { /* trailing: round(arange(N, 0, -N/n))[::-1] - 1 */
            double ratio = (double)N / n;
            for (int i = 0; i < n; i++) base[n - 1 - i] = (int64_t)sdiff__np_round(sdiff__np_arange(N, -ratio, i)) - 1;
        }
        if (c->skip_prk_steps) {
            /* plms: concat(ts[:-1], ts[-2:-1], ts[-1:])[::-1] */
            s->n_prk = 0;
            s->n_ts = n + 1;
            s->its = (int64_t *)sdiff__calloc((size_t)s->n_ts, sizeof(int64_t));
            if (!s->its) { sdiff__free(base); return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory"); }
            /* ts[-2:-1] is empty when n == 1: then the schedule is just [t0] */
            int k = 0;
            for (int i = 0; i < n - 1; i++) s->its[k++] = base[i];
            if (n >= 2) s->its[k++] = base[n - 2];
            s->its[k++] = base[n - 1];
            for (int i = 0; i < k / 2; i++) { int64_t t = s->its[i]; s->its[i] = s->its[k - 1 - i]; s->its[k - 1 - i] = t; }
            s->n_ts = k;
        } else {
            /* prk: (ts[-4:].repeat(2) + tile([0, N//n//2], 4))[:-1].repeat(2)[1:-1][::-1];
               plms: ts[:-3][::-1] */
            int half = N / n / 2;
            int64_t a[8], r[14];
            for (int i = 0; i < 8; i++) a[i] = base[n - 4 + i / 2] + ((i & 1) ? half : 0);
            for (int i = 0; i < 14; i++) r[i] = a[i / 2];
            s->n_prk = 12;
            s->n_ts = 12 + (n - 3);
            s->its = (int64_t *)sdiff__calloc((size_t)s->n_ts, sizeof(int64_t));
            if (!s->its) { sdiff__free(base); return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory"); }
            for (int i = 0; i < 12; i++) s->its[i] = r[12 - i];
            for (int i = 0; i < n - 3; i++) s->its[12 + i] = base[n - 4 - i];
        }
        sdiff__free(base);
    } else if (s->kind == SDIFF__K_DPM) {
        /* last_timestep = N - searchsorted(flip(lambda_t), lambda_min_clipped = -inf) = N */
        s->n_ts = n;
        s->its = (int64_t *)sdiff__calloc((size_t)n, sizeof(int64_t));
        s->sigmas = (float *)sdiff__calloc((size_t)n + 1, sizeof(float));
        float *train = (float *)sdiff__calloc((size_t)N, sizeof(float)), *logs = (float *)sdiff__calloc((size_t)N, sizeof(float));
        if (!s->its || !s->sigmas || !train || !logs) {
            sdiff__free(train); sdiff__free(logs);
            return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
        }
        for (int t = 0; t < N; t++) { train[t] = sdiff__train_sigma(s, t); logs[t] = logf(train[t]); }
        if (c->timestep_spacing == SDIFF__SPACING_LINSPACE) {
            /* linspace(0, last - 1, n + 1).round()[::-1][:-1] */
            for (int i = 0; i < n; i++) s->its[i] = (int64_t)sdiff__np_round(sdiff__np_linspace(0, N - 1, n + 1, n - i));
        } else if (c->timestep_spacing == SDIFF__SPACING_LEADING) {
            /* (arange(n + 1) * (last // (n + 1))).round()[::-1][:-1] + steps_offset */
            int ratio = N / (n + 1);
            for (int i = 0; i < n; i++) s->its[i] = (int64_t)(n - i) * ratio + c->steps_offset;
        } else { /* arange(last, 0, -N / n).round() - 1 */
            double ratio = (double)N / n;
            for (int i = 0; i < n; i++) s->its[i] = (int64_t)sdiff__np_round(sdiff__np_arange(N, -ratio, i)) - 1;
        }
        if (c->use_karras_sigmas) {
            /* in_sigmas = flip(train sigmas): sigma_min = train[0], sigma_max = train[N-1] */
            double smin = train[0], smax = train[N - 1];
            double min_inv = pow(smin, 1.0 / 7.0), max_inv = pow(smax, 1.0 / 7.0);
            for (int i = 0; i < n; i++) {
                double ramp = sdiff__np_linspace(0, 1, n, i);
                double d = min_inv - max_inv;
                double r = ramp * d;
                double sg = pow(max_inv + r, 7.0);
                s->sigmas[i] = (float)sg;
                double t = sdiff__sigma_to_t(sg, logs, N);
                if (c->beta_schedule != SDIFF__BETA_SQUAREDCOS_CAP_V2) t = sdiff__np_round(t);
                s->its[i] = (int64_t)t;
            }
        } else {
            for (int i = 0; i < n; i++) s->sigmas[i] = (float)sdiff__np_interp_idx((double)s->its[i], train, N);
        }
        s->sigmas[n] = c->final_sigmas_sigma_min ? train[0] : 0.0f;
        sdiff__free(train);
        sdiff__free(logs);
    } else { /* Euler, Euler ancestral: float timesteps, interpolated sigmas */
        s->n_ts = n;
        s->ts = (float *)sdiff__calloc((size_t)n, sizeof(float));
        s->sigmas = (float *)sdiff__calloc((size_t)n + 1, sizeof(float));
        double *sd = (double *)sdiff__calloc((size_t)n, sizeof(double));
        float *train = (float *)sdiff__calloc((size_t)N, sizeof(float)), *logs = (float *)sdiff__calloc((size_t)N, sizeof(float));
        if (!s->ts || !s->sigmas || !sd || !train || !logs) {
            sdiff__free(sd); sdiff__free(train); sdiff__free(logs);
            return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
        }
        for (int t = 0; t < N; t++) { train[t] = sdiff__train_sigma(s, t); logs[t] = logf(train[t]); }
        for (int i = 0; i < n; i++) {
            float t;
            if (c->timestep_spacing == SDIFF__SPACING_LINSPACE) /* linspace(0, N-1, n, dtype=float32)[::-1] */
                t = (float)sdiff__np_linspace(0, N - 1, n, n - 1 - i);
            else if (c->timestep_spacing == SDIFF__SPACING_LEADING) /* (arange(n)*(N//n)).round()[::-1] + offset */
                t = (float)((int64_t)(n - 1 - i) * (N / n)) + (float)c->steps_offset;
            else /* arange(N, 0, -N/n).round() - 1, in float32 */
                t = (float)sdiff__np_round(sdiff__np_arange(N, -(double)N / n, i)) - 1.0f;
            s->ts[i] = t;
            sd[i] = sdiff__np_interp_idx((double)t, train, N); /* interpolation_type linear */
        }
        if (s->kind == SDIFF__K_EULER && c->use_karras_sigmas) {
            double smin = (c->present & SDIFF__SK_SIGMA_MIN) ? c->sigma_min : sd[n - 1];
            double smax = (c->present & SDIFF__SK_SIGMA_MAX) ? c->sigma_max : sd[0];
            double min_inv = pow(smin, 1.0 / 7.0), max_inv = pow(smax, 1.0 / 7.0);
            for (int i = 0; i < n; i++) {
                double ramp = sdiff__np_linspace(0, 1, n, i);
                double d = min_inv - max_inv;
                double r = ramp * d;
                sd[i] = pow(max_inv + r, 7.0);
                s->ts[i] = (float)sdiff__sigma_to_t(sd[i], logs, N);
            }
        }
        for (int i = 0; i < n; i++) s->sigmas[i] = (float)sd[i];
        s->sigmas[n] = (s->kind == SDIFF__K_EULER && c->final_sigmas_sigma_min) ? train[0] : 0.0f;
        float mx = 0;
        for (int i = 0; i <= n; i++) if (s->sigmas[i] > mx) mx = s->sigmas[i];
        /* init_noise_sigma: max sigma for linspace/trailing, else sqrt(max^2 + 1) */
        float mx2 = mx * mx;
        s->init_noise_sigma = c->timestep_spacing == SDIFF__SPACING_LEADING ? sqrtf(mx2 + 1.0f) : mx;
        sdiff__free(sd);
        sdiff__free(train);
        sdiff__free(logs);
    }
    if (!s->ts) {
        s->ts = (float *)sdiff__calloc((size_t)s->n_ts, sizeof(float));
        if (!s->ts) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
        for (int i = 0; i < s->n_ts; i++) s->ts[i] = (float)s->its[i];
    }
    return SDIFF_OK;
}

/* Creates the scheduler for `steps` denoising steps (set_timesteps). */
SDIFF__PRIVATE sdiff_status sdiff__sched_create(sdiff_sampler sampler, const sdiff__sched_config *cfg, int steps,
                                                double eta, sdiff__sched **out) {
    *out = NULL;
    if (!cfg) return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: no config");
    if ((int)sampler < 0 || sampler >= SDIFF_SAMPLER_COUNT_)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: unknown sampler %d", (int)sampler);
    sdiff_sampler sm = sampler;
    if (sm == SDIFF_SAMPLER_DEFAULT) {
        sm = cfg->class_sampler == SDIFF_SAMPLER_DEFAULT ? SDIFF_SAMPLER_DDIM : cfg->class_sampler;
        if (sm == SDIFF_SAMPLER_DPMPP_2M || sm == SDIFF_SAMPLER_DPMPP_2M_KARRAS)
            sm = (cfg->present & SDIFF__SK_KARRAS) && cfg->use_karras_sigmas ? SDIFF_SAMPLER_DPMPP_2M_KARRAS
                                                                            : SDIFF_SAMPLER_DPMPP_2M;
    }
    sdiff__sched_kind k = sm == SDIFF_SAMPLER_DDIM ? SDIFF__K_DDIM : sm == SDIFF_SAMPLER_PNDM ? SDIFF__K_PNDM
                        : sm == SDIFF_SAMPLER_EULER ? SDIFF__K_EULER : sm == SDIFF_SAMPLER_EULER_A ? SDIFF__K_EULER_A
                        : sm == SDIFF_SAMPLER_DDPM ? SDIFF__K_DDPM : SDIFF__K_DPM;
    sdiff__sched_config c;
    sdiff__sched_resolve(k, cfg, &c);
    if (sampler == SDIFF_SAMPLER_DPMPP_2M || sampler == SDIFF_SAMPLER_DPMPP_2M_KARRAS) {
        /* an explicit "DPM++ 2M (Karras)": from_config(config, algorithm_type="dpmsolver++",
           solver_order=2, use_karras_sigmas=<the name>) */
        c.use_karras_sigmas = sampler == SDIFF_SAMPLER_DPMPP_2M_KARRAS;
        c.solver_order = 2;
        c.bad_algorithm = c.bad_solver_type = false;
    }
    const char *name = sdiff_sampler_name(sm);
    int N = c.num_train_timesteps;
    if (steps < 1 || steps > N)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler %s: steps %d out of range 1..%d (num_train_timesteps)",
                          name, steps, N);
    if (!(c.beta_start > 0 && c.beta_end > 0 && c.beta_start < 1 && c.beta_end < 1))
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: beta_start %g / beta_end %g not in (0, 1)", c.beta_start, c.beta_end);
    if (c.bad_thresholding && k != SDIFF__K_PNDM && k != SDIFF__K_EULER && k != SDIFF__K_EULER_A)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: thresholding is not supported", name);
    if (k == SDIFF__K_EULER && (c.bad_interpolation || c.bad_timestep_type))
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: only interpolation_type linear, timestep_type discrete", name);
    if ((k == SDIFF__K_EULER || k == SDIFF__K_DPM) && c.bad_other_sigmas)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: exponential/beta/lu/flow sigmas are not supported", name);
    if (k == SDIFF__K_DPM && (c.bad_algorithm || c.bad_solver_type || c.bad_lambda_clip || c.solver_order > 2))
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: only algorithm_type dpmsolver++, solver_type midpoint, "
                          "solver_order 1 or 2", name);
    if (k == SDIFF__K_DDPM && c.variance_type == SDIFF__VAR_OTHER)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: variance_type must be fixed_small(_log) or fixed_large", name);
    if (k == SDIFF__K_PNDM && c.prediction_type == SDIFF__PRED_SAMPLE)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler %s: prediction_type sample is not epsilon or v_prediction", name);
    if (k == SDIFF__K_EULER_A && c.prediction_type == SDIFF__PRED_SAMPLE)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: prediction_type sample is unsupported (diffusers has no such path either)", name);
    if (k == SDIFF__K_PNDM && !c.skip_prk_steps && steps < 4)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler %s: the Runge-Kutta warm-up (skip_prk_steps false) needs "
                          "at least 4 steps, got %d", name, steps);
    sdiff__sched *s = (sdiff__sched *)sdiff__calloc(1, sizeof *s);
    if (!s) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
    s->kind = k;
    s->sampler = sm;
    s->cfg = c;
    s->steps = steps;
    s->init_noise_sigma = 1.0f;
    s->eta = (float)eta;
    for (int i = 0; i < 4; i++) s->ets_slot[i] = i;
    s->alphas_cumprod = (float *)sdiff__calloc((size_t)N, sizeof(float));
    if (!s->alphas_cumprod) { sdiff__sched_free(s); return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory"); }
    sdiff__sched_alphas(s);
    sdiff_status st = sdiff__sched_timesteps(s);
    if (st != SDIFF_OK) { sdiff__sched_free(s); return st; }
    *out = s;
    return SDIFF_OK;
}

/* The double Python would hold for a number the user typed and we got as a
   float (0.7f -> 0.7): the shortest decimal that rounds back to f. */
SDIFF__PRIVATE double sdiff__sched_decimal(float f) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

/* img2img: diffusers' get_timesteps(steps, strength) + set_begin_index:
   init_timestep = min(int(steps * strength), steps), t_start = steps -
   init_timestep; the evaluations start at timesteps[t_start] (scheduler
   order is 1 for every class here), the Euler/DPM step index at t_start.
   strength is the double diffusers sees (see sdiff__sched_decimal). */
SDIFF__PRIVATE sdiff_status sdiff__sched_set_strength(sdiff__sched *s, double strength) {
    if (!(strength >= 0.0 && strength <= 1.0))
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "img2img: strength %g is not in [0, 1]", strength);
    double prod = (double)s->steps * strength;
    int init = (int)prod;
    if (init > s->steps) init = s->steps;
    int t_start = s->steps - init;
    if (t_start < 0) t_start = 0;
    if (t_start >= s->n_ts)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "img2img: strength %g with %d steps leaves no denoising step "
                          "(int(steps * strength) = 0)", strength, s->steps);
    s->t_start = t_start;
    return SDIFF_OK;
}

/* img2img with the user's float strength (converted as Python would have
   read it): the first timestep index, or sdiff__sched_len(s) when no step is
   left or strength is out of range (sdiff_last_error says which). */
SDIFF__PRIVATE int sdiff__sched_img2img_begin(sdiff__sched *s, float strength) {
    if (sdiff__sched_set_strength(s, sdiff__sched_decimal(strength)) != SDIFF_OK) return s->n_ts;
    return s->t_start;
}

/* len(scheduler.timesteps): the evaluations of a txt2img run (PNDM makes
   steps + 1, or steps + 9 with the Runge-Kutta warm-up). */
SDIFF__PRIVATE int sdiff__sched_len(const sdiff__sched *s) { return s->n_ts; }
/* Model evaluations (UNet calls) the pipeline makes: len(timesteps[t_start:]). */
SDIFF__INTERNAL int sdiff__sched_num_evals(const sdiff__sched *s) { return s->n_ts - s->t_start; }
/* The timestep the UNet gets at index i (float: Euler's are fractional
   with Karras sigmas or linspace spacing; the others are integers). */
SDIFF__PRIVATE float sdiff__sched_timestep(const sdiff__sched *s, int i) { return s->ts[i]; }
/* txt2img: the initial latents are randn * init_noise_sigma. */
SDIFF__PRIVATE float sdiff__sched_init_noise_sigma(const sdiff__sched *s) { return s->init_noise_sigma; }

/* scale_model_input's factor at index i: 1 / (sigma**2 + 1) ** 0.5 for
   Euler and Euler a, 1 for the others. */
SDIFF__PRIVATE float sdiff__sched_input_scale(const sdiff__sched *s, int i) {
    if (s->kind != SDIFF__K_EULER && s->kind != SDIFF__K_EULER_A) return 1.0f;
    float sigma = s->sigmas[i];
    float s2 = sigma * sigma;
    return 1.0f / sqrtf(s2 + 1.0f);
}

/* img2img: x <- add_noise(x, noise, timesteps[first]) (the begin index for
   Euler and DPM-Solver, the timestep value for the others). */
SDIFF__PRIVATE void sdiff__sched_add_noise(const sdiff__sched *s, int first, float *x, const float *noise, size_t n) {
    const float *orig = x;
    float *out = x;
    if (s->kind == SDIFF__K_EULER || s->kind == SDIFF__K_EULER_A) {
        /* original + noise * sigmas[begin_index] */
        float sigma = s->sigmas[first];
        for (size_t j = 0; j < n; j++) { float v = noise[j] * sigma; out[j] = orig[j] + v; }
    } else if (s->kind == SDIFF__K_DPM) {
        /* alpha_t * original + sigma_t * noise, alpha_t = 1 / sqrt(sigma^2 + 1) */
        float a, st;
        sdiff__dpm_alpha_sigma(s->sigmas[first], &a, &st);
        for (size_t j = 0; j < n; j++) { float u = a * orig[j], v = st * noise[j]; out[j] = u + v; }
    } else {
        /* sqrt(alphas_cumprod[t]) * original + sqrt(1 - alphas_cumprod[t]) * noise */
        float ac = s->alphas_cumprod[s->its[first]];
        float sa = sqrtf(ac), sb = sqrtf(1.0f - ac);
        for (size_t j = 0; j < n; j++) { float u = sa * orig[j], v = sb * noise[j]; out[j] = u + v; }
    }
}

/* --- a step as element-wise instructions
   Every step here is linear in its vectors (the sample x, the model output,
   the step's noise and the vectors the scheduler keeps between steps), but
   for DDIM's and DDPM's clip_sample, a clamp. So sdiff__sched_plan_step turns
   step i into at most SDIFF__SCHED_MAX_INSNS instructions
       dst = clamp(sum_k c[k] * src[k])
   with the coefficients worked out on the host (in double, from diffusers'
   float32 scalars), and they run wherever the vectors are: on host arrays
   (sdiff__sched_step, and the tests against diffusers) or as the backend's
   lincomb op (the generation loop: a GPU runs the steps back to back, with
   no round trip to the host). Folding a step into one sum changes float32
   rounding against diffusers' op order by a few ulp a step (the fixtures'
   trajectories stay within ~1e-7). */
enum { SDIFF__SV_X, SDIFF__SV_MO, SDIFF__SV_NOISE, SDIFF__SV_STATE /* + k: kept vector k */ };
#define SDIFF__SCHED_MAX_TERMS SDIFF__LINCOMB_MAX
#define SDIFF__SCHED_MAX_INSNS 4
#define SDIFF__SCHED_MAX_STATE 6   /* vectors kept between steps (PNDM's six) */
typedef struct sdiff__sched_insn {
    int dst, n;                              /* n terms                          */
    int src[SDIFF__SCHED_MAX_TERMS];
    float c[SDIFF__SCHED_MAX_TERMS];
    float clamp;                             /* > 0: clamp to [-clamp, clamp]    */
} sdiff__sched_insn;
typedef struct sdiff__sched_plan {
    int n;
    sdiff__sched_insn insn[SDIFF__SCHED_MAX_INSNS];
} sdiff__sched_plan;

/* The vectors kept between steps: PNDM's four ets, cur_sample and
   cur_model_output; DPM-Solver's previous and current x0; DDIM's and DDPM's
   clipped x0. */
SDIFF__PRIVATE int sdiff__sched_state_count(const sdiff__sched *s) {
    switch (s->kind) {
    case SDIFF__K_PNDM: return 6;
    case SDIFF__K_DPM: return 2;
    case SDIFF__K_DDIM:
    case SDIFF__K_DDPM: return s->cfg.clip_sample ? 1 : 0;
    default: return 0;
    }
}

/* Whether step i draws randn(n) (after the model call, as diffusers' step
   does): Euler a always, DDPM when t > 0, DDIM when eta > 0. */
SDIFF__PRIVATE bool sdiff__sched_step_noise(const sdiff__sched *s, int i) {
    return s->kind == SDIFF__K_EULER_A || (s->kind == SDIFF__K_DDPM && s->its[i] > 0) ||
           (s->kind == SDIFF__K_DDIM && s->eta > 0);
}

/* A new instruction writing dst; terms are added with sdiff__sched_term. */
SDIFF__PRIVATE sdiff__sched_insn *sdiff__sched_insn_new(sdiff__sched_plan *p, int dst, float clamp) {
    sdiff__sched_insn *in = &p->insn[p->n++];
    memset(in, 0, sizeof *in);
    in->dst = dst;
    in->clamp = clamp;
    return in;
}
/* += c * src (a source already there gets its coefficient summed). */
SDIFF__PRIVATE void sdiff__sched_term(sdiff__sched_insn *in, int src, double c) {
    for (int k = 0; k < in->n; k++)
        if (in->src[k] == src) { in->c[k] = (float)((double)in->c[k] + c); return; }
    in->src[in->n] = src;
    in->c[in->n++] = (float)c;
}
/* A vector as a linear form of the sample and the model output. */
typedef struct sdiff__lin2 { double x, mo; } sdiff__lin2;
SDIFF__PRIVATE void sdiff__sched_terms(sdiff__sched_insn *in, sdiff__lin2 f, double c) {
    if (c == 0) return;
    if (f.x != 0) sdiff__sched_term(in, SDIFF__SV_X, c * f.x);
    if (f.mo != 0) sdiff__sched_term(in, SDIFF__SV_MO, c * f.mo);
}

/* x0 and epsilon of the alphas_cumprod schedulers (sa = sqrt(alpha_t), sb =
   sqrt(1 - alpha_t)): epsilon: x0 = (x - sb mo) / sa; sample: x0 = mo, eps =
   (x - sa mo) / sb; v: x0 = sa x - sb mo, eps = sa mo + sb x. */
SDIFF__PRIVATE void sdiff__pred_x0(sdiff__pred_type pt, double sa, double sb, sdiff__lin2 *x0, sdiff__lin2 *eps) {
    if (pt == SDIFF__PRED_EPSILON) { *x0 = (sdiff__lin2){1 / sa, -sb / sa}; *eps = (sdiff__lin2){0, 1}; }
    else if (pt == SDIFF__PRED_SAMPLE) { *x0 = (sdiff__lin2){0, 1}; *eps = (sdiff__lin2){1 / sb, -sa / sb}; }
    else { *x0 = (sdiff__lin2){sa, -sb}; *eps = (sdiff__lin2){sb, sa}; }
}

/* DDIM and DDPM: x <- cx0 * x0 + (dir * eps) + cx * x + sd * noise, x0 clipped
   to [-clip_sample_range, clip_sample_range] with clip_sample (through kept
   vector 0; epsilon comes from the unclipped x0, as in diffusers). */
SDIFF__PRIVATE void sdiff__sched_plan_x0_step(const sdiff__sched *s, sdiff__sched_plan *p, double sa, double sb,
                                              double cx0, double dir, double cx, double sd) {
    const sdiff__sched_config *c = &s->cfg;
    sdiff__lin2 x0, eps;
    sdiff__pred_x0(c->prediction_type, sa, sb, &x0, &eps);
    if (c->clip_sample) {
        sdiff__sched_terms(sdiff__sched_insn_new(p, SDIFF__SV_STATE, (float)c->clip_sample_range), x0, 1);
        x0 = (sdiff__lin2){0, 0};
    }
    sdiff__sched_insn *in = sdiff__sched_insn_new(p, SDIFF__SV_X, 0);
    if (c->clip_sample) sdiff__sched_term(in, SDIFF__SV_STATE, cx0);
    sdiff__sched_terms(in, x0, cx0);
    sdiff__sched_terms(in, eps, dir);
    if (cx != 0) sdiff__sched_term(in, SDIFF__SV_X, cx);
    if (sd != 0) sdiff__sched_term(in, SDIFF__SV_NOISE, sd);
}

SDIFF__PRIVATE void sdiff__ddim_plan(const sdiff__sched *s, int idx, sdiff__sched_plan *p) {
    int64_t t = s->its[idx];
    int64_t prev_t = t - s->cfg.num_train_timesteps / s->steps; /* always N // steps, whatever the spacing */
    float at = s->alphas_cumprod[t];
    float ap = prev_t >= 0 ? s->alphas_cumprod[prev_t] : s->final_alpha_cumprod;
    float bt = 1.0f - at, bp = 1.0f - ap;
    float variance = (bp / bt) * (1.0f - at / ap);
    float std = s->eta * sqrtf(variance);
    float dir = sqrtf(1.0f - ap - std * std);
    sdiff__sched_plan_x0_step(s, p, sqrtf(at), sqrtf(bt), sqrtf(ap), dir, 0, s->eta > 0 ? std : 0);
}

SDIFF__PRIVATE void sdiff__ddpm_plan(const sdiff__sched *s, int idx, sdiff__sched_plan *p) {
    const sdiff__sched_config *c = &s->cfg;
    int64_t t = s->its[idx];
    int64_t prev_t = idx == s->n_ts - 1 ? -1 : s->its[idx + 1]; /* previous_timestep */
    float at = s->alphas_cumprod[t];
    float ap = prev_t >= 0 ? s->alphas_cumprod[prev_t] : 1.0f;
    float bt = 1.0f - at;
    float cur_a = at / ap, cur_b = 1.0f - cur_a;
    float c0 = sqrtf(ap) * cur_b / bt;
    float c1 = sqrtf(cur_a) * (1.0f - ap) / bt;
    float var = (1.0f - ap) / (1.0f - at) * cur_b;
    if (var < 1e-20f) var = 1e-20f;
    float sd = c->variance_type == SDIFF__VAR_FIXED_SMALL ? sqrtf(var)
             : c->variance_type == SDIFF__VAR_FIXED_SMALL_LOG ? expf(0.5f * logf(var)) : sqrtf(cur_b);
    sdiff__sched_plan_x0_step(s, p, sqrtf(at), sqrtf(bt), c0, 0, c1, sdiff__sched_step_noise(s, idx) ? sd : 0);
}

/* Euler (gamma = 0: s_churn is 0 in the pipeline) and Euler ancestral:
   x <- x + (x - x0) / sigma * dt + sigma_up * noise. */
SDIFF__PRIVATE void sdiff__euler_plan(const sdiff__sched *s, int idx, sdiff__sched_plan *p) {
    float sigma = s->sigmas[idx], sigma_next = s->sigmas[idx + 1];
    float dt, sigma_up = 0;
    if (s->kind == SDIFF__K_EULER) {
        dt = sigma_next - sigma;                     /* sigma_hat = sigma * (0 + 1) */
    } else {
        /* sigma_up = (to^2 (from^2 - to^2) / from^2) ** 0.5, sigma_down = (to^2 - up^2) ** 0.5 */
        float t2 = sigma_next * sigma_next, f2 = sigma * sigma;
        sigma_up = sqrtf(t2 * (f2 - t2) / f2);
        float sigma_down = sqrtf(t2 - sigma_up * sigma_up);
        dt = sigma_down - sigma;
    }
    /* x0: epsilon x - sigma mo; sample mo; v mo * -sigma / (sigma**2 + 1) ** 0.5 + x / (sigma**2 + 1) */
    double sg = sigma, s2 = sg * sg + 1;
    sdiff__pred_type pt = s->cfg.prediction_type;
    sdiff__lin2 x0 = pt == SDIFF__PRED_EPSILON ? (sdiff__lin2){1, -sg}
                   : pt == SDIFF__PRED_SAMPLE ? (sdiff__lin2){0, 1} : (sdiff__lin2){1 / s2, -sg / sqrt(s2)};
    double k = (double)dt / sg;
    sdiff__sched_insn *in = sdiff__sched_insn_new(p, SDIFF__SV_X, 0);
    sdiff__sched_term(in, SDIFF__SV_X, 1 + k);
    sdiff__sched_terms(in, x0, -k);
    if (s->kind == SDIFF__K_EULER_A) sdiff__sched_term(in, SDIFF__SV_NOISE, sigma_up);
}

/* DPM-Solver++ (dpmsolver++, midpoint), orders 1 and 2. Kept vectors 0 and
   1 take turns as the previous and the current x0. */
SDIFF__PRIVATE void sdiff__dpm_alpha_sigma(float sigma, float *alpha, float *sig) {
    float s2 = sigma * sigma;
    *alpha = 1.0f / sqrtf(s2 + 1.0f);
    *sig = sigma * *alpha;
}

SDIFF__PRIVATE void sdiff__dpm_plan(sdiff__sched *s, int idx, sdiff__sched_plan *p) {
    const sdiff__sched_config *c = &s->cfg;
    int len = s->n_ts;
    bool lower_final = idx == len - 1 && (c->euler_at_final || (c->lower_order_final && len < 15) ||
                                          !c->final_sigmas_sigma_min);
    float a_t, sg_t, a_s0, sg_s0;
    sdiff__dpm_alpha_sigma(s->sigmas[idx + 1], &a_t, &sg_t);
    sdiff__dpm_alpha_sigma(s->sigmas[idx], &a_s0, &sg_s0);
    float lam_t = logf(a_t) - logf(sg_t), lam_s0 = logf(a_s0) - logf(sg_s0);
    float h = lam_t - lam_s0;
    double c_d0 = (double)a_t * (double)(expf(-h) - 1.0f), c_d1 = 0;
    bool first = c->solver_order == 1 || s->lower_order_nums < 1 || lower_final;
    if (!first) {
        /* D1 = (x0 - x0_prev) / r0, r0 = h0 / h; x -= 0.5 * c_d0 * D1 */
        float a_s1, sg_s1;
        sdiff__dpm_alpha_sigma(s->sigmas[idx - 1], &a_s1, &sg_s1);
        float lam_s1 = logf(a_s1) - logf(sg_s1);
        c_d1 = 0.5 * c_d0 / (double)((lam_s0 - lam_s1) / h);
    }
    /* convert_model_output: epsilon (x - sigma mo) / alpha; sample mo; v alpha x - sigma mo */
    sdiff__pred_type pt = c->prediction_type;
    sdiff__lin2 x0 = pt == SDIFF__PRED_EPSILON ? (sdiff__lin2){1.0 / a_s0, -(double)sg_s0 / a_s0}
                   : pt == SDIFF__PRED_SAMPLE ? (sdiff__lin2){0, 1} : (sdiff__lin2){a_s0, -(double)sg_s0};
    const int cur = SDIFF__SV_STATE + 1 - s->dpm_prev, prev = SDIFF__SV_STATE + s->dpm_prev;
    sdiff__sched_terms(sdiff__sched_insn_new(p, cur, 0), x0, 1);
    sdiff__sched_insn *in = sdiff__sched_insn_new(p, SDIFF__SV_X, 0);
    sdiff__sched_term(in, SDIFF__SV_X, (double)sg_t / sg_s0);
    sdiff__sched_term(in, cur, -(c_d0 + c_d1));
    if (!first) sdiff__sched_term(in, prev, c_d1);
    s->dpm_prev = 1 - s->dpm_prev;
    if (s->lower_order_nums < c->solver_order) s->lower_order_nums++;
}

/* PNDM's _get_prev_sample (formula (9) of the PNDM paper) as the
   coefficients of x <- cs * sample + cm * model_output. */
SDIFF__PRIVATE void sdiff__pndm_prev(const sdiff__sched *s, int64_t t, int64_t prev_t, double *cs, double *cm) {
    float at = s->alphas_cumprod[t];
    float ap = prev_t >= 0 ? s->alphas_cumprod[prev_t] : s->final_alpha_cumprod;
    float bt = 1.0f - at, bp = 1.0f - ap;
    double sample_coeff = sqrtf(ap / at);
    double denom = (double)(at * sqrtf(bp)) + (double)sqrtf(at * bt * ap);
    double k = (double)(ap - at) / denom;     /* prev = sample_coeff * sample - k * mo */
    if (s->cfg.prediction_type == SDIFF__PRED_V) { /* mo <- sa * mo + sb * sample */
        *cs = sample_coeff - k * sqrtf(bt);
        *cm = -k * sqrtf(at);
    } else {
        *cs = sample_coeff;
        *cm = -k;
    }
}

/* PNDM's kept vectors: ets[0..3] (ets_slot maps them, oldest first),
   cur_sample (4), cur_model_output (5). */
#define SDIFF__PNDM_CUR_SAMPLE (SDIFF__SV_STATE + 4)
#define SDIFF__PNDM_CUR_MO (SDIFF__SV_STATE + 5)
/* ets.append(model_output), keeping the last four: the slot to copy it to. */
SDIFF__PRIVATE int sdiff__pndm_push_ets(sdiff__sched *s) {
    if (s->n_ets == 4) {
        int old = s->ets_slot[0];
        s->ets_slot[0] = s->ets_slot[1]; s->ets_slot[1] = s->ets_slot[2]; s->ets_slot[2] = s->ets_slot[3];
        s->ets_slot[3] = old;
        s->n_ets = 3;
    }
    return SDIFF__SV_STATE + s->ets_slot[s->n_ets++];
}

SDIFF__PRIVATE void sdiff__pndm_plan(sdiff__sched *s, int idx, sdiff__sched_plan *p) {
    int N = s->cfg.num_train_timesteps, steps = s->steps;
    int64_t t = s->its[idx];
    double cs, cm;
    if (s->counter < s->n_prk && !s->cfg.skip_prk_steps) {
        /* step_prk: Runge-Kutta warm-up, four evaluations per step; cur_model_output sums
           mo/6 + mo/3 + mo/3 + mo/6, and the fourth step uses the sum */
        int64_t diff = s->counter % 2 ? 0 : N / steps / 2;
        int phase = s->counter % 4;
        sdiff__pndm_prev(s, s->its[s->counter / 4 * 4], t - diff, &cs, &cm);
        const double w = phase == 0 || phase == 3 ? 1.0 / 6.0 : 1.0 / 3.0;
        if (phase == 0) {
            sdiff__sched_term(sdiff__sched_insn_new(p, SDIFF__PNDM_CUR_MO, 0), SDIFF__SV_MO, w);
            sdiff__sched_term(sdiff__sched_insn_new(p, sdiff__pndm_push_ets(s), 0), SDIFF__SV_MO, 1);
            sdiff__sched_term(sdiff__sched_insn_new(p, SDIFF__PNDM_CUR_SAMPLE, 0), SDIFF__SV_X, 1);
        } else if (phase < 3) {
            sdiff__sched_insn *in = sdiff__sched_insn_new(p, SDIFF__PNDM_CUR_MO, 0);
            sdiff__sched_term(in, SDIFF__PNDM_CUR_MO, 1);
            sdiff__sched_term(in, SDIFF__SV_MO, w);
        }
        sdiff__sched_insn *in = sdiff__sched_insn_new(p, SDIFF__SV_X, 0);
        sdiff__sched_term(in, SDIFF__PNDM_CUR_SAMPLE, cs);
        if (phase == 3) sdiff__sched_term(in, SDIFF__PNDM_CUR_MO, cm);
        sdiff__sched_term(in, SDIFF__SV_MO, phase == 3 ? cm * w : cm);
        s->counter++;
        return;
    }
    /* step_plms: linear multistep over the last four model outputs */
    int64_t prev_t = t - N / steps;
    if (s->counter != 1) {
        sdiff__sched_term(sdiff__sched_insn_new(p, sdiff__pndm_push_ets(s), 0), SDIFF__SV_MO, 1);
    } else {
        prev_t = t;
        t = t + N / steps;
    }
    sdiff__pndm_prev(s, t, prev_t, &cs, &cm);
    const int ne = s->n_ets;
    int sample = SDIFF__SV_X;
    static const double w[4][4] = {{1, 0, 0, 0}, {1.5, -0.5, 0, 0}, {23 / 12.0, -16 / 12.0, 5 / 12.0, 0},
                                   {55 / 24.0, -59 / 24.0, 37 / 24.0, -9 / 24.0}};
    sdiff__sched_insn *in;
    if (ne == 1 && s->counter == 0) {           /* m = mo; cur_sample = x */
        sdiff__sched_term(sdiff__sched_insn_new(p, SDIFF__PNDM_CUR_SAMPLE, 0), SDIFF__SV_X, 1);
        in = sdiff__sched_insn_new(p, SDIFF__SV_X, 0);
        sdiff__sched_term(in, SDIFF__SV_MO, cm);
    } else if (ne == 1 && s->counter == 1) {    /* m = (mo + ets[-1]) / 2, from cur_sample */
        sample = SDIFF__PNDM_CUR_SAMPLE;
        in = sdiff__sched_insn_new(p, SDIFF__SV_X, 0);
        sdiff__sched_term(in, SDIFF__SV_MO, cm * 0.5);
        sdiff__sched_term(in, SDIFF__SV_STATE + s->ets_slot[0], cm * 0.5);
    } else {                                    /* the Adams-Bashforth weights of ets[-1], ets[-2], ... */
        in = sdiff__sched_insn_new(p, SDIFF__SV_X, 0);
        for (int k = 0; k < ne; k++) sdiff__sched_term(in, SDIFF__SV_STATE + s->ets_slot[ne - 1 - k], cm * w[ne - 1][k]);
    }
    sdiff__sched_term(in, sample, cs);
    s->counter++;
}

/* Step i (first .. len-1, in order) as instructions; advances the
   scheduler's state (its counters, which kept vector is which). */
SDIFF__PRIVATE sdiff_status sdiff__sched_plan_step(sdiff__sched *s, int i, sdiff__sched_plan *p) {
    p->n = 0;
    if (i < s->t_start || i >= s->n_ts)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: step %d out of range %d..%d", i, s->t_start, s->n_ts - 1);
    switch (s->kind) {
    case SDIFF__K_DDIM: sdiff__ddim_plan(s, i, p); break;
    case SDIFF__K_PNDM: sdiff__pndm_plan(s, i, p); break;
    case SDIFF__K_EULER:
    case SDIFF__K_EULER_A: sdiff__euler_plan(s, i, p); break;
    case SDIFF__K_DPM: sdiff__dpm_plan(s, i, p); break;
    case SDIFF__K_DDPM: sdiff__ddpm_plan(s, i, p); break;
    }
    return SDIFF_OK;
}

/* "epsilon", "v_prediction" or "sample", as the config (or the classes'
   default, epsilon) has it. */
SDIFF__PRIVATE const char *sdiff__sched_prediction_name(const sdiff__sched_config *c) {
    sdiff__pred_type p = (c->present & SDIFF__SK_PREDICTION) ? c->prediction_type : SDIFF__PRED_EPSILON;
    return p == SDIFF__PRED_V ? "v_prediction" : p == SDIFF__PRED_SAMPLE ? "sample" : "epsilon";
}

#ifdef SDIFF__JSON_MAX_DEPTH /* with >>files' JSON reader */
/* scheduler_config.json -> config, with StableDiffusionPipeline's fix-ups. */
SDIFF__PRIVATE sdiff_status sdiff__sched_config_from_json(const sdiff__json *j, const char *what, sdiff__sched_config *c) {
    sdiff__sched_config_empty(c, SDIFF_SAMPLER_DDIM);
    if (!j || j->type != SDIFF__JSON_OBJECT) return sdiff__err(SDIFF_ERR_FORMAT, "%s: not a JSON object", what);
    for (size_t i = 0; i < j->count; i++) {
        const sdiff__json *v = &j->items[i];
        const char *key = j->keys[i];
        sdiff_status st = SDIFF_OK;
        if (v->type == SDIFF__JSON_STRING) st = sdiff__sched_config_set_string(c, key, v->string);
        else if (v->type == SDIFF__JSON_BOOL) st = sdiff__sched_config_set_bool(c, key, v->boolean);
        else if (v->type == SDIFF__JSON_NUMBER) st = sdiff__sched_config_set_number(c, key, v->number);
        else if (v->type == SDIFF__JSON_NULL) st = sdiff__sched_config_set_null(c, key);
        else if (v->type == SDIFF__JSON_ARRAY) st = sdiff__sched_config_set_array(c, key);
        if (st != SDIFF_OK) {
            char msg[sizeof sdiff__g_error];
            snprintf(msg, sizeof msg, "%s", sdiff__g_error);
            return sdiff__err(st, "%s: %s", what, msg);
        }
    }
    if (!sdiff__json_get(j, "_class_name"))
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: no _class_name", what);
    sdiff__sched_config_pipeline_fixups(c);
    return SDIFF_OK;
}
#endif

/* --- public: sampler names */
static const char *const sdiff__sampler_names[SDIFF_SAMPLER_COUNT_] = {
    "default", "ddim", "pndm", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddpm"
};

SDIFF_API const char *sdiff_sampler_name(sdiff_sampler sampler) {
    if ((int)sampler < 0 || sampler >= SDIFF_SAMPLER_COUNT_) return "unknown";
    return sdiff__sampler_names[sampler];
}

SDIFF_API sdiff_sampler sdiff_sampler_from_name(const char *name) {
    if (!name) return SDIFF_SAMPLER_COUNT_;
    for (int i = 0; i < SDIFF_SAMPLER_COUNT_; i++)
        if (!strcmp(name, sdiff__sampler_names[i])) return (sdiff_sampler)i;
    return SDIFF_SAMPLER_COUNT_;
}

#if defined(__clang__)
#pragma STDC FP_CONTRACT ON
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

/* >>load ===================================================================
   Checkpoints: the context, and loading a model from a diffusers folder or a
   single-file LDM checkpoint (architecture from config.json, or detected from
   tensor names and shapes)
   ========================================================================= */
struct sdiff_ctx {
    sdiff__logger log;
    sdiff__backend *be;
};

#define SDIFF__MAX_FILES 16

struct sdiff_model {
    sdiff_ctx *ctx;
    sdiff__safetensors files[SDIFF__MAX_FILES]; /* every mapped weight file   */
    int n_files;
    sdiff__tokenizer *tokenizer;
    sdiff__clip clip;
    sdiff__unet unet;
    sdiff__vae vae;
    sdiff__sched_config sched;                  /* scheduler_config.json      */
    sdiff__arena arena;                         /* activations                */
    int max_tokens;                             /* 77                         */
    char description[256];
};

/* Maps `path` into the model's file list; returns its index or -1. */
SDIFF__PRIVATE int sdiff__model_open_file(sdiff_model *m, const char *path) {
    if (m->n_files == SDIFF__MAX_FILES) {
        sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: too many weight files (at most %d)", path, SDIFF__MAX_FILES);
        return -1;
    }
    if (sdiff__st_open(path, &m->files[m->n_files]) != SDIFF_OK) return -1;
    return m->n_files++;
}
/* A diffusers component folder's weights: `stem`.safetensors, its .fp16
   variant, or a sharded `stem`.safetensors.index.json. Fills src. */
SDIFF__PRIVATE sdiff_status sdiff__open_component(sdiff_model *m, const char *dir, const char *stem,
                                                 const char *component, sdiff__wsource *src) {
    char path[1024], name[128];
    memset(src, 0, sizeof *src);
    src->component = component;
    src->keymap = SDIFF__KEYS_DIFFUSERS;
    static const char *const variants[] = {"%s.safetensors", "%s.fp16.safetensors"};
    for (int v = 0; v < 2; v++) {
        snprintf(name, sizeof name, variants[v], stem);
        if (!sdiff__path_join(path, sizeof path, dir, name)) return sdiff__err(SDIFF_ERR_INVALID_ARG, "%s: path too long", dir);
        if (!sdiff__path_exists(path)) continue;
        int f = sdiff__model_open_file(m, path);
        if (f < 0) return sdiff_last_error()[0] ? SDIFF_ERR_FORMAT : SDIFF_ERR_IO;
        src->files = &m->files[f];
        src->n_files = 1;
        return SDIFF_OK;
    }
    /* sharded: the index's weight_map names the files */
    snprintf(name, sizeof name, "%s.safetensors.index.json", stem);
    if (!sdiff__path_join(path, sizeof path, dir, name) || !sdiff__path_exists(path))
        return sdiff__err(SDIFF_ERR_IO, "%s: no %s.safetensors (pickled .bin weights are not read: they can run code)", dir, stem);
    sdiff__json *index;
    SDIFF__TRY(sdiff__json_load(path, &index));
    const sdiff__json *map = sdiff__json_get(index, "weight_map");
    sdiff_status st = SDIFF_OK;
    int first = m->n_files;
    if (!map || map->type != SDIFF__JSON_OBJECT) st = sdiff__err(SDIFF_ERR_FORMAT, "%s: no weight_map", path);
    for (size_t i = 0; st == SDIFF_OK && map && i < map->count; i++) {
        const sdiff__json *file = &map->items[i];
        if (file->type != SDIFF__JSON_STRING || strchr(file->string, '/') || strstr(file->string, "..")) {
            st = sdiff__err(SDIFF_ERR_FORMAT, "%s: invalid shard name", path);
            break;
        }
        bool seen = false;
        for (int f = first; f < m->n_files; f++) seen |= strcmp(strrchr(m->files[f].path, '/') + 1, file->string) == 0;
        if (seen) continue;
        char shard[1024];
        if (!sdiff__path_join(shard, sizeof shard, dir, file->string)) st = sdiff__err(SDIFF_ERR_INVALID_ARG, "path too long");
        else if (sdiff__model_open_file(m, shard) < 0) st = SDIFF_ERR_FORMAT;
    }
    sdiff__json_free(index);
    src->files = &m->files[first];
    src->n_files = m->n_files - first;
    return st;
}
/* --- architecture from tensor names and shapes (single-file checkpoints) */
SDIFF__PRIVATE const sdiff__st_tensor *sdiff__st_findf(const sdiff__safetensors *st, const char *fmt, ...) SDIFF__PRINTF(2, 3);
SDIFF__PRIVATE const sdiff__st_tensor *sdiff__st_findf(const sdiff__safetensors *st, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return sdiff__st_find(st, name);
}
/* SD 1.x/2.x UNet config from LDM names, the way diffusers'
   create_unet_diffusers_config_from_ldm reads the original yaml. */
SDIFF__PRIVATE sdiff_status sdiff__detect_unet(const sdiff__safetensors *st, sdiff__unet_config *c) {
    const char *P = "model.diffusion_model.";
    memset(c, 0, sizeof *c);
    const sdiff__st_tensor *t = sdiff__st_findf(st, "%sinput_blocks.0.0.weight", P), *o = sdiff__st_findf(st, "%sout.2.weight", P);
    if (!t || t->nd != 4 || !o || o->nd != 4)
        return sdiff__err(SDIFF_ERR_MODEL, "%s: not a Stable Diffusion checkpoint (no %sinput_blocks.0.0.weight)", st->path, P);
    c->in_channels = (int)t->shape[1];
    c->out_channels = (int)o->shape[0];
    /* layers per block: input blocks before the first downsampler */
    int first_op = 0;
    for (int i = 1; i < 64 && !first_op; i++)
        if (sdiff__st_findf(st, "%sinput_blocks.%d.0.op.weight", P, i)) first_op = i;
    if (!first_op) return sdiff__err(SDIFF_ERR_MODEL, "%s: no downsampler found in the UNet", st->path);
    c->layers_per_block = first_op - 1;
    int n_in = 1; /* block 0 is conv_in; then resnets and downsamplers */
    while (n_in < 64 && (sdiff__st_findf(st, "%sinput_blocks.%d.0.op.weight", P, n_in) ||
                         sdiff__st_findf(st, "%sinput_blocks.%d.0.out_layers.3.weight", P, n_in)))
        n_in++;
    const int L = c->layers_per_block;
    if (L < 1 || L > SDIFF__MAX_RESNETS || n_in % (L + 1) != 0 || (n_in / (L + 1)) > SDIFF__MAX_LEVELS)
        return sdiff__err(SDIFF_ERR_MODEL, "%s: unrecognised UNet layout (%d input blocks)", st->path, n_in);
    c->levels = n_in / (L + 1);
    c->cross_dim = 0;
    for (int i = 0; i < c->levels; i++) {
        int blk = 1 + i * (L + 1);
        const sdiff__st_tensor *r = sdiff__st_findf(st, "%sinput_blocks.%d.0.out_layers.3.weight", P, blk);
        if (!r) return sdiff__err(SDIFF_ERR_MODEL, "%s: missing resnet weights in input block %d", st->path, blk);
        c->ch[i] = (int)r->shape[0];
        const sdiff__st_tensor *pin = sdiff__st_findf(st, "%sinput_blocks.%d.1.proj_in.weight", P, blk);
        c->down_attn[i] = c->up_attn[c->levels - 1 - i] = pin != NULL;
        if (pin) {
            c->linear_proj = pin->nd == 2;
            const sdiff__st_tensor *k = sdiff__st_findf(st, "%sinput_blocks.%d.1.transformer_blocks.0.attn2.to_k.weight", P, blk);
            if (k) c->cross_dim = (int)k->shape[1];
            int d = 0;
            while (d < SDIFF__MAX_DEPTH && sdiff__st_findf(st, "%sinput_blocks.%d.1.transformer_blocks.%d.norm1.weight", P, blk, d)) d++;
            c->depth[i] = d;
        }
    }
    if (!c->cross_dim) return sdiff__err(SDIFF_ERR_MODEL, "%s: UNet has no cross-attention", st->path);
    int top = c->levels - 1, d = 0;
    while (d < SDIFF__MAX_DEPTH && sdiff__st_findf(st, "%smiddle_block.1.transformer_blocks.%d.norm1.weight", P, d)) d++;
    for (int i = 0; i < c->levels; i++) {
        if (!c->depth[i]) c->depth[i] = d ? d : 1;
        /* SD 1.x: 8 heads everywhere; SD 2.x (1024-wide context): 64-wide heads */
        c->heads[i] = c->cross_dim == 768 ? 8 : c->ch[i] / 64;
    }
    c->depth[top] = d ? d : c->depth[top];
    c->groups = 32;
    c->eps = 1e-5f;
    c->flip_sin_to_cos = true;
    c->freq_shift = 0;
    c->sample_size = 64;
    return SDIFF_OK;
}
SDIFF__PRIVATE sdiff_status sdiff__detect_vae(const sdiff__safetensors *st, sdiff__vae_config *c) {
    const char *P = "first_stage_model.";
    memset(c, 0, sizeof *c);
    const sdiff__st_tensor *in = sdiff__st_findf(st, "%sencoder.conv_in.weight", P),
                           *dz = sdiff__st_findf(st, "%sdecoder.conv_in.weight", P),
                           *out = sdiff__st_findf(st, "%sdecoder.conv_out.weight", P);
    if (!in || !dz || !out || in->nd != 4 || dz->nd != 4 || out->nd != 4)
        return sdiff__err(SDIFF_ERR_MODEL, "%s: no VAE (%sencoder/decoder) in the checkpoint", st->path, P);
    c->in_channels = (int)in->shape[1];
    c->out_channels = (int)out->shape[0];
    c->latent = (int)dz->shape[1];
    while (c->levels < SDIFF__MAX_LEVELS) {
        const sdiff__st_tensor *r = sdiff__st_findf(st, "%sencoder.down.%d.block.0.conv1.weight", P, c->levels);
        if (!r) break;
        c->ch[c->levels++] = (int)r->shape[0];
    }
    while (c->layers_per_block < SDIFF__MAX_RESNETS && sdiff__st_findf(st, "%sencoder.down.0.block.%d.conv1.weight", P, c->layers_per_block))
        c->layers_per_block++;
    if (!c->levels || !c->layers_per_block) return sdiff__err(SDIFF_ERR_MODEL, "%s: unrecognised VAE layout", st->path);
    c->groups = 32;
    c->sample_size = 512;
    c->scaling_factor = 0.18215f;
    c->quant_conv = sdiff__st_findf(st, "%squant_conv.weight", P) != NULL;
    c->post_quant_conv = sdiff__st_findf(st, "%spost_quant_conv.weight", P) != NULL;
    c->mid_attention = sdiff__st_findf(st, "%sencoder.mid.attn_1.q.weight", P) != NULL;
    return SDIFF_OK;
}
SDIFF__PRIVATE sdiff_status sdiff__detect_clip(const sdiff__safetensors *st, sdiff__clip_config *c) {
    char pre[96] = "cond_stage_model.transformer.text_model.";
    const sdiff__st_tensor *tok = sdiff__st_findf(st, "%sembeddings.token_embedding.weight", pre);
    if (!tok) {
        snprintf(pre, sizeof pre, "cond_stage_model.transformer.");
        tok = sdiff__st_findf(st, "%sembeddings.token_embedding.weight", pre);
    }
    if (!tok) {
        if (sdiff__st_find(st, "cond_stage_model.model.token_embedding.weight"))
            return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: an SD 2.x single-file checkpoint (OpenCLIP text encoder): load its "
                              "diffusers folder instead", st->path);
        return sdiff__err(SDIFF_ERR_MODEL, "%s: no CLIP text encoder (cond_stage_model.transformer.*)", st->path);
    }
    const sdiff__st_tensor *pos = sdiff__st_findf(st, "%sembeddings.position_embedding.weight", pre),
                           *fc1 = sdiff__st_findf(st, "%sencoder.layers.0.mlp.fc1.weight", pre);
    if (tok->nd != 2 || !pos || pos->nd != 2 || !fc1 || fc1->nd != 2)
        return sdiff__err(SDIFF_ERR_MODEL, "%s: unrecognised text encoder layout", st->path);
    c->vocab = (int)tok->shape[0];
    c->hidden = (int)tok->shape[1];
    c->max_positions = (int)pos->shape[0];
    c->intermediate = (int)fc1->shape[0];
    c->heads = c->hidden >= 64 ? c->hidden / 64 : 1; /* CLIP-L: 12 heads of 64 */
    c->layers = 0;
    while (c->layers < SDIFF__MAX_LAYERS && sdiff__st_findf(st, "%sencoder.layers.%d.mlp.fc1.weight", pre, c->layers)) c->layers++;
    c->eps = 1e-5f;
    c->act = SDIFF__ACT_QUICK_GELU;
    if (c->heads < 1) return sdiff__err(SDIFF_ERR_MODEL, "%s: text encoder too narrow", st->path);
    return SDIFF_OK;
}

SDIFF__PRIVATE void sdiff__model_release(sdiff_model *m) {
    if (!m) return;
    sdiff__weights_free(&m->clip.weights);
    sdiff__weights_free(&m->unet.weights);
    sdiff__weights_free(&m->vae.weights);
    sdiff__arena_free(&m->arena);
    for (int i = 0; i < m->n_files; i++) sdiff__st_close(&m->files[i]);
    if (m->tokenizer) sdiff__tokenizer_free(m->tokenizer);
    sdiff__free(m);
}
/* Configs of a diffusers folder: model_index.json must name an SD pipeline. */
SDIFF__PRIVATE sdiff_status sdiff__read_configs(sdiff_model *m, const char *dir) {
    sdiff__json *j = NULL;
    sdiff_status st;
    char what[1024];
#define SDIFF__CFG(sub, parse, dst)                                                   \
    do {                                                                             \
        snprintf(what, sizeof what, "%s/%s", dir, sub);                              \
        SDIFF__TRY(sdiff__json_load(what, &j));                                      \
        st = parse(j, what, dst);                                                    \
        sdiff__json_free(j);                                                         \
        if (st != SDIFF_OK) return st;                                               \
    } while (0)
    SDIFF__CFG("text_encoder/config.json", sdiff__clip_config_parse, &m->clip.cfg);
    SDIFF__CFG("unet/config.json", sdiff__unet_config_parse, &m->unet.cfg);
    SDIFF__CFG("vae/config.json", sdiff__vae_config_parse, &m->vae.cfg);
    SDIFF__CFG("scheduler/scheduler_config.json", sdiff__sched_config_from_json, &m->sched);
#undef SDIFF__CFG
    return SDIFF_OK;
}
/* Checks the parts fit together: the UNet's context width is the text
   encoder's, its in/out channels are the VAE's latents. */
SDIFF__PRIVATE sdiff_status sdiff__check_parts(const sdiff_model *m, const char *path) {
    if (m->unet.cfg.cross_dim != m->clip.cfg.hidden)
        return sdiff__err(SDIFF_ERR_MODEL, "%s: the UNet expects %d-wide text embeddings but the text encoder gives %d",
                          path, m->unet.cfg.cross_dim, m->clip.cfg.hidden);
    if (m->unet.cfg.in_channels != m->vae.cfg.latent || m->unet.cfg.out_channels != m->vae.cfg.latent)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: UNet with %d input channels over %d latent channels "
                          "(inpainting UNets are not supported yet)", path, m->unet.cfg.in_channels, m->vae.cfg.latent);
    if (m->tokenizer->n_vocab > m->clip.cfg.vocab)
        return sdiff__err(SDIFF_ERR_MODEL, "%s: the tokenizer has %d tokens but the text encoder only %d: a tokenizer of "
                          "another model (set sdiff_load_params.config_dir or tokenizer_path)",
                          path, (int)m->tokenizer->n_vocab, m->clip.cfg.vocab);
    if (m->vae.cfg.in_channels != 3 || m->vae.cfg.out_channels != 3)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: the VAE must map RGB images", path);
    return SDIFF_OK;
}
SDIFF__PRIVATE sdiff_status sdiff__model_load(sdiff_ctx *ctx, const char *path, const sdiff_load_params *lp, sdiff_model *m) {
    sdiff__wsource clip_src, unet_src, vae_src;
    char buf[1024];
    const bool folder = sdiff__is_dir(path);
    if (folder) {
        sdiff__json *index;
        if (!sdiff__path_join(buf, sizeof buf, path, "model_index.json")) return sdiff__err(SDIFF_ERR_INVALID_ARG, "path too long");
        SDIFF__TRY(sdiff__json_load(buf, &index));
        const char *cls = sdiff__json_string(index, "_class_name", "");
        bool ok = strcmp(cls, "StableDiffusionPipeline") == 0 || strcmp(cls, "StableDiffusionImg2ImgPipeline") == 0;
        sdiff_status st = ok ? SDIFF_OK : sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: pipeline '%s' is not supported (SD 1.x/2.x: StableDiffusionPipeline)", buf, cls);
        sdiff__json_free(index);
        SDIFF__TRY(st);
        SDIFF__TRY(sdiff__read_configs(m, path));
        if (!sdiff__path_join(buf, sizeof buf, path, "tokenizer")) return sdiff__err(SDIFF_ERR_INVALID_ARG, "path too long");
        SDIFF__TRY(sdiff__tokenizer_load_dir(buf, &m->tokenizer));
        snprintf(buf, sizeof buf, "%s/text_encoder", path);
        SDIFF__TRY(sdiff__open_component(m, buf, "model", "text_encoder", &clip_src));
        snprintf(buf, sizeof buf, "%s/unet", path);
        SDIFF__TRY(sdiff__open_component(m, buf, "diffusion_pytorch_model", "unet", &unet_src));
        snprintf(buf, sizeof buf, "%s/vae", path);
        SDIFF__TRY(sdiff__open_component(m, buf, "diffusion_pytorch_model", "vae", &vae_src));
    } else {
        int f = sdiff__model_open_file(m, path);
        if (f < 0) return sdiff__path_exists(path) ? SDIFF_ERR_FORMAT : SDIFF_ERR_IO;
        const sdiff__safetensors *st = &m->files[f];
        if (lp->config_dir) SDIFF__TRY(sdiff__read_configs(m, lp->config_dir));
        else {
            SDIFF__TRY(sdiff__detect_unet(st, &m->unet.cfg));
            SDIFF__TRY(sdiff__detect_vae(st, &m->vae.cfg));
            SDIFF__TRY(sdiff__detect_clip(st, &m->clip.cfg));
            sdiff__sched_config_default(&m->sched);
        }
        /* the tokenizer: explicit path, the config folder's, built in, or beside the file */
        const char *tp = lp->tokenizer_path;
        if (!tp && lp->config_dir && sdiff__path_join(buf, sizeof buf, lp->config_dir, "tokenizer")) tp = buf;
        if (tp && sdiff__is_dir(tp)) SDIFF__TRY(sdiff__tokenizer_load_dir(tp, &m->tokenizer));
        else if (tp) SDIFF__TRY(sdiff__tokenizer_load_bpe_file(tp, &m->tokenizer));
        else if (sdiff__tokenizer_load_builtin(&m->tokenizer) != SDIFF_OK) {
            const char *slash = strrchr(path, '/');
            snprintf(buf, sizeof buf, "%.*sbpe_simple_vocab_16e6.txt.gz", slash ? (int)(slash - path + 1) : 0, path);
            if (!sdiff__path_exists(buf))
                return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: a single-file checkpoint needs the CLIP vocabulary: include "
                                  "sdiff_clip_vocab.h, or set sdiff_load_params.tokenizer_path or config_dir", path);
            SDIFF__TRY(sdiff__tokenizer_load_bpe_file(buf, &m->tokenizer));
        }
        memset(&clip_src, 0, sizeof clip_src);
        clip_src.component = "text_encoder";
        clip_src.files = &m->files[f];
        clip_src.n_files = 1;
        clip_src.keymap = SDIFF__KEYS_LDM_CLIP;
        unet_src = vae_src = clip_src;
        unet_src.component = "unet";
        unet_src.keymap = SDIFF__KEYS_LDM_UNET;
        unet_src.ldm_layers_per_block = m->unet.cfg.layers_per_block;
        unet_src.ldm_n_blocks = m->unet.cfg.levels;
        vae_src.component = "vae";
        vae_src.keymap = SDIFF__KEYS_LDM_VAE;
        vae_src.ldm_n_blocks = m->vae.cfg.levels;
    }
    SDIFF__TRY(sdiff__check_parts(m, path));
    m->max_tokens = m->clip.cfg.max_positions < 77 ? m->clip.cfg.max_positions : 77;
    SDIFF__TRY(sdiff__weights_load(ctx->be, &clip_src, sdiff__clip_weights, &m->clip, &m->clip.weights));
    SDIFF__TRY(sdiff__weights_load(ctx->be, &unet_src, sdiff__unet_weights, &m->unet, &m->unet.weights));
    SDIFF__TRY(sdiff__weights_load(ctx->be, &vae_src, sdiff__vae_weights, &m->vae, &m->vae.weights));
    /* every weight now lives in backend memory: drop the mappings, so the
       file's pages do not count against the process a second time */
    for (int i = 0; i < m->n_files; i++) sdiff__st_close(&m->files[i]);
    m->n_files = 0;
    snprintf(m->description, sizeof m->description,
             "SD %s (%s; UNet %.1fM, text encoder %.1fM, VAE %.1fM params; %s; %s backend)",
             m->clip.cfg.hidden == 1024 ? "2.x" : "1.x", folder ? "diffusers folder" : "single file",
             (double)m->unet.weights.n_params / 1e6, (double)m->clip.weights.n_params / 1e6,
             (double)m->vae.weights.n_params / 1e6, sdiff__sched_prediction_name(&m->sched), ctx->be->name);
    sdiff__arena_init(&m->arena, ctx->be, (size_t)64 << 20);
    return SDIFF_OK;
}

/* Loads one diffusers component folder (config.json + weights) into m, for
   the tools and tests that run a UNet or VAE alone. which: "unet" or "vae". */
SDIFF__INTERNAL sdiff_status sdiff__load_component(sdiff_model *m, const char *dir, const char *which) {
    sdiff__json *j;
    char what[1024];
    sdiff__wsource src;
    snprintf(what, sizeof what, "%s/config.json", dir);
    SDIFF__TRY(sdiff__json_load(what, &j));
    bool unet = strcmp(which, "unet") == 0;
    sdiff_status st = unet ? sdiff__unet_config_parse(j, what, &m->unet.cfg) : sdiff__vae_config_parse(j, what, &m->vae.cfg);
    sdiff__json_free(j);
    SDIFF__TRY(st);
    SDIFF__TRY(sdiff__open_component(m, dir, "diffusion_pytorch_model", which, &src));
    if (unet) return sdiff__weights_load(m->ctx->be, &src, sdiff__unet_weights, &m->unet, &m->unet.weights);
    return sdiff__weights_load(m->ctx->be, &src, sdiff__vae_weights, &m->vae, &m->vae.weights);
}

/* >>pipeline ===============================================================
   Pipelines: txt2img and img2img with classifier-free guidance

   Follows diffusers' StableDiffusionPipeline / Img2ImgPipeline step by step,
   so the same seed gives the same image:
     1. tokenize and encode the prompt and the negative prompt (CFG batch is
        [negative x batch, prompt x batch], as diffusers concatenates it);
     2. latents = randn([batch, C, h, w]) * init_noise_sigma   (txt2img), or
        latents = add_noise(vae_sample(image) * scaling, randn, t_start)
                                                             (img2img);
     3. per step: eps = unet(scale_input([latents, latents]), t, context);
        eps = eps_uncond + cfg * (eps_text - eps_uncond); latents = step(...)
     4. image = vae_decode(latents / scaling); pixels = round(255 *
        clamp(image / 2 + 0.5, 0, 1)).
   Latents stay on the host in PyTorch's NCHW order, because random draws and
   scheduler arithmetic then happen in exactly diffusers' element order; they
   are transposed to channels-last only at the UNet's and VAE's edges.
   ========================================================================= */

/* NCHW host floats <-> NHWC (channels-last) host floats. */
SDIFF__PRIVATE void sdiff__nchw_to_nhwc(float *dst, const float *src, int64_t b, int64_t c, int64_t hw) {
    for (int64_t n = 0; n < b; n++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < hw; i++) dst[(n * hw + i) * c + ch] = src[(n * c + ch) * hw + i];
}
SDIFF__PRIVATE void sdiff__nhwc_to_nchw(float *dst, const float *src, int64_t b, int64_t c, int64_t hw) {
    for (int64_t n = 0; n < b; n++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < hw; i++) dst[(n * c + ch) * hw + i] = src[(n * hw + i) * c + ch];
}
SDIFF__PRIVATE sdiff_status sdiff__check_gen_params(const sdiff_model *m, const sdiff_gen_params *p) {
    const int f = 1 << (m->vae.cfg.levels - 1);
    size_t bad;
    if (!p->prompt) return sdiff__err(SDIFF_ERR_INVALID_ARG, "prompt is NULL");
    if (!sdiff__utf8_valid(p->prompt, strlen(p->prompt), &bad))
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "prompt is not valid UTF-8 (byte %zu)", bad);
    if (p->negative_prompt && !sdiff__utf8_valid(p->negative_prompt, strlen(p->negative_prompt), &bad))
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "negative prompt is not valid UTF-8 (byte %zu)", bad);
    if (p->width <= 0 || p->height <= 0 || p->width % f || p->height % f)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "size %dx%d: width and height must be positive multiples of %d",
                          p->width, p->height, f);
    if (p->width > 8192 || p->height > 8192)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "size %dx%d is larger than 8192 on a side", p->width, p->height);
    if (p->steps < 1 || p->steps > 1000) return sdiff__err(SDIFF_ERR_INVALID_ARG, "steps = %d: must be 1..1000", p->steps);
    if (p->batch < 1 || p->batch > 64) return sdiff__err(SDIFF_ERR_INVALID_ARG, "batch = %d: must be 1..64", p->batch);
    if (!isfinite(p->cfg_scale) || fabsf(p->cfg_scale) > 1000)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "cfg scale %g is not a sane number", (double)p->cfg_scale);
    if ((unsigned)p->sampler >= SDIFF_SAMPLER_COUNT_) return sdiff__err(SDIFF_ERR_INVALID_ARG, "unknown sampler %d", (int)p->sampler);
    if (p->clip_skip < 0 || p->clip_skip > m->clip.cfg.layers)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "clip skip %d: the text encoder has %d layers", p->clip_skip, m->clip.cfg.layers);
    if (!(p->eta >= 0 && p->eta <= 1)) return sdiff__err(SDIFF_ERR_INVALID_ARG, "eta %g: must be 0..1", (double)p->eta);
    if ((unsigned)p->noise > SDIFF_NOISE_FP16) return sdiff__err(SDIFF_ERR_INVALID_ARG, "unknown noise kind %d", (int)p->noise);
    if (p->init_image) {
        const sdiff_image *im = p->init_image;
        if (!im->data || im->width != p->width || im->height != p->height || (im->channels != 3 && im->channels != 4))
            return sdiff__err(SDIFF_ERR_INVALID_ARG, "init image is %dx%dx%d; it must be RGB or RGBA of the output size %dx%d",
                              im->width, im->height, im->channels, p->width, p->height);
        if (!(p->strength > 0 && p->strength <= 1))
            return sdiff__err(SDIFF_ERR_INVALID_ARG, "strength %g: must be in (0, 1]", (double)p->strength);
    }
    return SDIFF_OK;
}

/* The CFG context [2*batch or batch, tokens, hidden] on the backend. */
SDIFF__PRIVATE sdiff_status sdiff__encode_prompts(sdiff_model *m, const sdiff_gen_params *p, bool cfg, sdiff__tensor **out) {
    sdiff__run r = {m->ctx->be, &m->arena};
    const int T = m->max_tokens, B = p->batch, H = m->clip.cfg.hidden, n_prompts = cfg ? 2 : 1;
    int32_t ids[2 * 77];
    SDIFF__TRY(sdiff__tokenize(m->tokenizer, p->prompt, ids + (cfg ? T : 0), T));
    if (cfg) SDIFF__TRY(sdiff__tokenize(m->tokenizer, p->negative_prompt ? p->negative_prompt : "", ids, T));
    for (int i = 0; i < n_prompts * T; i++)
        if (ids[i] < 0 || ids[i] >= m->clip.cfg.vocab)
            return sdiff__err(SDIFF_ERR_MODEL, "token id %d is outside the text encoder's %d-entry vocabulary", ids[i], m->clip.cfg.vocab);
    sdiff__tensor *ctx = sdiff__new3(&m->arena, r.be->act_dtype, (int64_t)n_prompts * B, T, H);
    float *host = (float *)sdiff__calloc((size_t)n_prompts * T * H, sizeof(float));
    if (!host) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
    sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
    sdiff__tensor *emb = sdiff__clip_forward(&r, &m->clip, ids, n_prompts, T, p->clip_skip);
    if (r.be->status == SDIFF_OK) r.be->download(r.be, emb, host);
    sdiff__arena_release(&m->arena, mark);
    /* repeat each prompt `batch` times: [neg x B, pos x B] */
    float *rep = (float *)sdiff__calloc((size_t)n_prompts * B * T * H, sizeof(float));
    if (rep) {
        for (int pi = 0; pi < n_prompts; pi++)
            for (int b = 0; b < B; b++) memcpy(rep + ((size_t)pi * B + b) * T * H, host + (size_t)pi * T * H, sizeof(float) * T * H);
        if (r.be->status == SDIFF_OK) r.be->upload(r.be, ctx, rep, SDIFF__F32);
    }
    sdiff__free(host);
    sdiff__free(rep);
    if (!rep) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
    *out = ctx;
    return r.be->status;
}

/* img2img: diffusers' prepare_latents. image -> [-1, 1] -> VAE encoder ->
   sample (draws randn from the generator) -> * scaling factor, repeated for
   the batch. Writes batch*C*h*w NCHW floats. */
SDIFF__PRIVATE sdiff_status sdiff__encode_image(sdiff_model *m, const sdiff_image *im, int batch, sdiff__rng *rng, float *latents) {
    sdiff__run r = {m->ctx->be, &m->arena};
    const int64_t W = im->width, H = im->height, f = (int64_t)1 << (m->vae.cfg.levels - 1), C = m->vae.cfg.latent;
    const int64_t h = H / f, w = W / f, n = C * h * w;
    float *px = (float *)sdiff__calloc((size_t)(W * H * 3 > 2 * n ? W * H * 3 : 2 * n) + 2 * (size_t)n, sizeof(float));
    if (!px) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int64_t i = 0; i < W * H; i++)
        for (int c = 0; c < 3; c++) px[i * 3 + c] = (float)im->data[i * im->channels + c] / 255.0f * 2.0f - 1.0f;
    sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
    sdiff__tensor *x = sdiff__new4(&m->arena, r.be->act_dtype, 1, H, W, 3);
    r.be->upload(r.be, x, px, SDIFF__F32);
    sdiff__tensor *moments = sdiff__vae_encode(&r, &m->vae, x);
    float *mom = px, *mom_nchw = px + 2 * n;
    if (r.be->status == SDIFF_OK) r.be->download(r.be, moments, mom);
    sdiff__arena_release(&m->arena, mark);
    if (r.be->status != SDIFF_OK) { sdiff__free(px); return r.be->status; }
    sdiff__nhwc_to_nchw(mom_nchw, mom, 1, 2 * C, h * w);          /* [mean | logvar] on dim 1 */
    float *noise = latents;                                      /* reuse: overwritten below */
    sdiff__rng_randn(rng, noise, (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        float logvar = mom_nchw[n + i];
        logvar = logvar < -30.0f ? -30.0f : logvar > 20.0f ? 20.0f : logvar;
        float sample = mom_nchw[i] + expf(0.5f * logvar) * noise[i];
        mom[i] = m->vae.cfg.scaling_factor * sample;
    }
    for (int b = 0; b < batch; b++) memcpy(latents + (size_t)b * n, mom, sizeof(float) * (size_t)n);
    sdiff__free(px);
    return SDIFF_OK;
}

/* latents (NCHW host) -> batch RGB images. */
SDIFF__PRIVATE sdiff_status sdiff__decode_images(sdiff_model *m, const float *latents, int batch, int64_t h, int64_t w,
                                                sdiff_image *out) {
    sdiff__run r = {m->ctx->be, &m->arena};
    const int64_t C = m->vae.cfg.latent, f = (int64_t)1 << (m->vae.cfg.levels - 1), H = h * f, W = w * f;
    float *z = (float *)sdiff__calloc((size_t)(2 * C * h * w), sizeof(float)), *scaled = z + C * h * w;
    sdiff_status st = z ? SDIFF_OK : sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int b = 0; b < batch && st == SDIFF_OK; b++) {   /* one at a time: the VAE's activations are large */
        const float *lb = latents + (size_t)b * C * h * w;
        for (int64_t i = 0; i < C * h * w; i++) scaled[i] = lb[i] / m->vae.cfg.scaling_factor;
        sdiff__nchw_to_nhwc(z, scaled, 1, C, h * w);
        uint8_t *data = (uint8_t *)sdiff__malloc((size_t)(H * W * 3));
        if (!data) { st = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory"); break; }
        sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
        sdiff__tensor *zt = sdiff__new4(&m->arena, r.be->act_dtype, 1, h, w, C);
        r.be->upload(r.be, zt, z, SDIFF__F32);
        sdiff__tensor *img = sdiff__vae_decode(&r, &m->vae, zt);
        if (r.be->status == SDIFF_OK) r.be->download_image(r.be, img, data); /* NHWC [-1, 1] -> bytes */
        sdiff__arena_release(&m->arena, mark);
        if ((st = r.be->status) != SDIFF_OK) { sdiff__free(data); break; }
        out[b].width = (int)W;
        out[b].height = (int)H;
        out[b].channels = 3;
        out[b].data = data;
    }
    sdiff__free(z);
    return st;
}

/* Images [b0, b0 + n) of a contiguous [B, ...] tensor: a header on the stack. */
SDIFF__PRIVATE sdiff__tensor sdiff__batch_slice(const sdiff__tensor *t, int64_t b0, int64_t n) {
    sdiff__tensor v = *t;
    v.ne[0] = n;
    v.data = (char *)t->data + (size_t)(b0 * (sdiff__numel(t) / t->ne[0])) * sdiff__dtype_size(t->dtype);
    return v;
}

/* The progress callback after `done` of `total` steps: SDIFF_ERR_CANCELLED when it asks to stop. */
SDIFF__PRIVATE sdiff_status sdiff__progress(const sdiff_gen_params *p, int done, int total) {
    if (!p->progress || p->progress(done, total, p->progress_user)) return SDIFF_OK;
    return sdiff__err(SDIFF_ERR_CANCELLED, "cancelled at step %d of %d", done, total);
}

/* The steps' noise (sdiff__sched_step_noise) is drawn on the host, in diffusers' order, and
   uploaded up to this many bytes (at least one step) at a time. */
#ifndef SDIFF__NOISE_CHUNK_BYTES
#define SDIFF__NOISE_CHUNK_BYTES ((size_t)32 << 20)
#endif

/* The sampling loop. The latents stay on the backend (F32, NHWC) from the first step to the
   last: scale_model_input, CFG and the scheduler's step are lincomb ops (sdiff__sched_plan), so
   a GPU runs the steps back to back while the host only queues them; the host sees the latents
   again only to decode them. */
SDIFF__PRIVATE sdiff_status sdiff__generate(sdiff_model *m, const sdiff_gen_params *p, sdiff_image *out) {
    sdiff__backend *be = m->ctx->be;
    sdiff__run r = {be, &m->arena};
    const int B = p->batch, f = 1 << (m->vae.cfg.levels - 1);
    const int64_t C = m->vae.cfg.latent, h = p->height / f, w = p->width / f, n = (int64_t)B * C * h * w;
    const bool cfg = p->cfg_scale > 1.0f;                    /* diffusers: guidance_scale > 1 */
    const int nb = cfg ? 2 * B : B;
    sdiff__sched *sched = NULL;
    sdiff__tensor *context = NULL, *xt = NULL, *cross_kv = NULL, *temb_steps = NULL, *temb = NULL, *lat_t = NULL;
    sdiff__tensor *mo_t = NULL, *noise_t = NULL, *kept[SDIFF__SCHED_MAX_STATE] = {NULL}, y;
    float *lat = NULL, *tmp = NULL, *noise = NULL, *tbuf = NULL;
    void *graph = NULL;
    sdiff_status st;
    sdiff__rng rng;
    int first = 0, total = 0, n_noise = 0, chunk = 0, z = 0, z_end = 0;
    be->status = SDIFF_OK;
    sdiff__arena_release(&m->arena, (sdiff__arena_mark){0, 0, 0, 0});
    m->arena.peak = 0;

    if ((st = sdiff__sched_create(p->sampler, &m->sched, p->steps, p->eta, &sched)) != SDIFF_OK) goto done;
    if ((st = sdiff__encode_prompts(m, p, cfg, &context)) != SDIFF_OK) goto done;
    total = sdiff__sched_len(sched);
    lat = (float *)sdiff__calloc((size_t)n, sizeof(float));
    tmp = (float *)sdiff__calloc((size_t)n, sizeof(float));
    tbuf = (float *)sdiff__calloc((size_t)total + 1, sizeof(float)); /* the timesteps */
    if (!lat || !tmp || !tbuf) { st = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory"); goto done; }

    sdiff__rng_seed(&rng, p->seed);
    rng.path = SDIFF__RNG_X86;
    rng.half = p->noise == SDIFF_NOISE_FP16 || (p->noise == SDIFF_NOISE_AUTO && be->act_dtype == SDIFF__F16);
    if (p->init_image) {
        first = sdiff__sched_img2img_begin(sched, p->strength);
        if (first >= total) {
            st = sdiff__err(SDIFF_ERR_INVALID_ARG, "strength %g with %d steps leaves no step to run", (double)p->strength, p->steps);
            goto done;
        }
        if ((st = sdiff__encode_image(m, p->init_image, B, &rng, lat)) != SDIFF_OK) goto done;
        sdiff__rng_randn(&rng, tmp, (size_t)n);
        sdiff__sched_add_noise(sched, first, lat, tmp, (size_t)n);
    } else {
        sdiff__rng_randn(&rng, lat, (size_t)n);
        const float sigma = sdiff__sched_init_noise_sigma(sched);
        for (int64_t i = 0; i < n; i++) lat[i] *= sigma;
    }
    for (int i = first; i < total; i++) n_noise += sdiff__sched_step_noise(sched, i);
    if (n_noise) {
        chunk = (int)SDIFF__MIN((size_t)n_noise, SDIFF__MAX(SDIFF__NOISE_CHUNK_BYTES / ((size_t)n * 4), 1));
        if (!(noise = (float *)sdiff__calloc((size_t)chunk * (size_t)n, sizeof(float)))) {
            st = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
            goto done;
        }
    }

    /* The loop's tensors live at fixed addresses, so that a backend with graphs records the UNet
       once (on the second step, after the first has sized the arena) and replays it for the rest. */
    xt = sdiff__new4(&m->arena, be->act_dtype, nb, h, w, C);
    lat_t = sdiff__new4(&m->arena, SDIFF__F32, B, h, w, C);
    mo_t = sdiff__new4(&m->arena, SDIFF__F32, B, h, w, C);
    for (int k = 0; k < sdiff__sched_state_count(sched); k++) kept[k] = sdiff__new4(&m->arena, SDIFF__F32, B, h, w, C);
    if (chunk) noise_t = sdiff__new2(&m->arena, SDIFF__F32, chunk, n);
    sdiff__nchw_to_nhwc(tmp, lat, B, C, h * w);
    be->upload(be, lat_t, tmp, SDIFF__F32);
    /* The conditioning, made once (sdiff__unet_time_proj, _cross_kv): the text's keys and values
       for every cross-attention, and every step's time-embedding projections, a row per step
       (every image of a step has its timestep); a step copies its row to each image's row of temb. */
    cross_kv = sdiff__unet_cross_kv(&r, &m->unet, context);
    {
        sdiff__tensor *ts = sdiff__new1(&m->arena, SDIFF__F32, total - first);
        for (int i = first; i < total; i++) tbuf[i - first] = sdiff__sched_timestep(sched, i);
        be->upload(be, ts, tbuf, SDIFF__F32);
        temb_steps = sdiff__unet_time_proj(&r, &m->unet, ts);
        temb = sdiff__new2(&m->arena, be->act_dtype, nb, m->unet.temb_proj.rows);
    }
    if ((st = be->status) != SDIFF_OK) goto done;
    for (int i = first; i < total; i++) {
        /* the UNet input: scale_model_input(latents) in the activation dtype, once per CFG half */
        const float k_in = sdiff__sched_input_scale(sched, i);
        const sdiff__tensor *lat_in = lat_t;
        for (int c = 0; c < nb / B; c++) {
            sdiff__tensor half = sdiff__batch_slice(xt, (int64_t)c * B, B);
            be->lincomb(be, &half, 1, &lat_in, &k_in, 0);
        }
        const sdiff__tensor row = sdiff__batch_slice(temb_steps, i - first, 1);
        for (int b = 0; b < nb; b++) {
            sdiff__tensor dst = sdiff__batch_slice(temb, b, 1);
            be->activate(be, &dst, &row, SDIFF__ACT_NONE); /* a copy */
        }
        if (!graph && i > first && be->graph_begin && be->graph_begin(be)) {
            sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
            y = *sdiff__unet_step(&r, &m->unet, xt, temb, cross_kv);
            graph = be->graph_end(be);
            sdiff__arena_release(&m->arena, mark); /* the blocks stay: replays reuse them */
        }
        if (graph) be->graph_launch(be, graph);
        else {
            sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
            y = *sdiff__unet_step(&r, &m->unet, xt, temb, cross_kv);
            sdiff__arena_release(&m->arena, mark); /* y is read next, before anything reuses it */
        }
        /* the model output in F32; with CFG uncond + scale * (text - uncond) */
        const sdiff__tensor y_u = sdiff__batch_slice(&y, 0, B), y_t = sdiff__batch_slice(&y, cfg ? B : 0, B);
        const sdiff__tensor *ys[2] = {&y_u, &y_t};
        const float yc[2] = {1.0f - p->cfg_scale, p->cfg_scale}, one = 1.0f;
        if (cfg) be->lincomb(be, mo_t, 2, ys, yc, 0);
        else be->lincomb(be, mo_t, 1, ys, &one, 0);
        /* the scheduler's step, with the next chunk of noise uploaded when this step needs it */
        sdiff__tensor noise_row;
        memset(&noise_row, 0, sizeof noise_row);
        if (sdiff__sched_step_noise(sched, i)) {
            if (z == z_end) {
                for (int k = 0; k < SDIFF__MIN(chunk, n_noise - z); k++) {
                    sdiff__rng_randn(&rng, tmp, (size_t)n);
                    sdiff__nchw_to_nhwc(noise + (size_t)k * (size_t)n, tmp, B, C, h * w);
                }
                be->upload(be, noise_t, noise, SDIFF__F32);
                z_end = z + chunk;
            }
            noise_row = sdiff__batch_slice(noise_t, z++ % chunk, 1);
        }
        sdiff__sched_plan plan;
        if ((st = sdiff__sched_plan_step(sched, i, &plan)) != SDIFF_OK) goto done;
        sdiff__tensor *vec[SDIFF__SV_STATE + SDIFF__SCHED_MAX_STATE] = {lat_t, mo_t, &noise_row};
        for (int k = 0; k < SDIFF__SCHED_MAX_STATE; k++) vec[SDIFF__SV_STATE + k] = kept[k];
        for (int k = 0; k < plan.n; k++) {
            const sdiff__sched_insn *in = &plan.insn[k];
            const sdiff__tensor *src[SDIFF__SCHED_MAX_TERMS];
            for (int j = 0; j < in->n; j++) src[j] = vec[in->src[j]];
            be->lincomb(be, vec[in->dst], in->n, src, in->c, in->clamp);
        }
        /* progress: a backend with marks keeps this step queued while the host waits for the one
           before (the GPU never waits for the host); on the CPU this step is done */
        if (be->mark) {
            be->mark(be, i & 1);
            if (i > first) be->wait_mark(be, (i - 1) & 1);
        }
        if ((st = be->status) != SDIFF_OK) goto done;
        const int done_steps = i - first + (be->mark ? 0 : 1);
        if (done_steps > 0 && (st = sdiff__progress(p, done_steps, total - first)) != SDIFF_OK) goto done;
    }
    be->download(be, lat_t, tmp);
    if ((st = be->status) != SDIFF_OK) goto done;
    if (be->mark && (st = sdiff__progress(p, total - first, total - first)) != SDIFF_OK) goto done;
    sdiff__nhwc_to_nchw(lat, tmp, B, C, h * w);
    /* the conditioning and the steps' tensors are dead: the VAE gets the whole arena (its peak is
       the generation's) */
    sdiff__arena_release(&m->arena, (sdiff__arena_mark){0, 0, 0, 0});
    st = sdiff__decode_images(m, lat, B, h, w, out);
done:
    if (graph && be->mark) { /* cancelled: a queued step may still replay the graph */
        be->mark(be, 0);
        be->wait_mark(be, 0);
    }
    if (graph) be->graph_free(be, graph);
    sdiff__sched_free(sched);
    sdiff__free(lat);
    sdiff__free(tmp);
    sdiff__free(noise);
    sdiff__free(tbuf);
    sdiff__arena_release(&m->arena, (sdiff__arena_mark){0, 0, 0, 0});
    if (st != SDIFF_OK)
        for (int b = 0; b < B; b++) sdiff_image_free(&out[b]);
    return st;
}

/* >>api ====================================================================
   Public API implementation
   ========================================================================= */
SDIFF_API const char *sdiff_status_string(sdiff_status status) {
    switch (status) {
    case SDIFF_OK: return "ok";
    case SDIFF_ERR_INVALID_ARG: return "invalid argument";
    case SDIFF_ERR_OUT_OF_MEMORY: return "out of memory";
    case SDIFF_ERR_IO: return "I/O error";
    case SDIFF_ERR_FORMAT: return "malformed file";
    case SDIFF_ERR_MODEL: return "missing or mis-shaped tensor";
    case SDIFF_ERR_UNSUPPORTED: return "unsupported";
    case SDIFF_ERR_CANCELLED: return "cancelled";
    case SDIFF_ERR_BACKEND: return "backend failure";
    }
    return "unknown status";
}
SDIFF_API const char *sdiff_last_error(void) { return sdiff__g_error; }

SDIFF_API sdiff_ctx_params sdiff_ctx_default_params(void) {
    sdiff_ctx_params p;
    memset(&p, 0, sizeof p);
    p.backend = SDIFF_BACKEND_AUTO;
    p.log_level = SDIFF_LOG_INFO;
    return p;
}
SDIFF_API sdiff_status sdiff_ctx_create(const sdiff_ctx_params *params, sdiff_ctx **out_ctx) {
    sdiff__g_error[0] = 0;
    if (!out_ctx) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_ctx_create: out_ctx is NULL");
    *out_ctx = NULL;
    sdiff_ctx_params p = params ? *params : sdiff_ctx_default_params();
    if ((unsigned)p.backend > SDIFF_BACKEND_CUDA) return sdiff__err(SDIFF_ERR_INVALID_ARG, "unknown backend %d", (int)p.backend);
    if (p.n_threads < 0 || p.n_threads > 1024) return sdiff__err(SDIFF_ERR_INVALID_ARG, "n_threads = %d", p.n_threads);
    if (p.device < 0) return sdiff__err(SDIFF_ERR_INVALID_ARG, "device = %d", p.device);
    sdiff_ctx *ctx = (sdiff_ctx *)sdiff__calloc(1, sizeof *ctx);
    if (!ctx) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of memory");
    ctx->log.level = p.log_level;
    ctx->log.fn = p.log_fn;
    ctx->log.user = p.log_user;
    if (p.backend != SDIFF_BACKEND_CPU && sdiff__g_cuda_backend_create) {
        ctx->be = sdiff__g_cuda_backend_create(p.device, &ctx->log);
        if (!ctx->be && p.backend == SDIFF_BACKEND_CUDA) {
            sdiff__free(ctx);
            return SDIFF_ERR_BACKEND; /* the CUDA backend said why */
        }
        if (!ctx->be)
            sdiff__log(&ctx->log, SDIFF_LOG_WARN, "cuda", "no usable GPU (%s); running on the CPU", sdiff__g_error);
    } else if (p.backend == SDIFF_BACKEND_CUDA) {
        sdiff__free(ctx);
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "the CUDA backend is not compiled in (include sdiff_cuda.h)");
    }
    if (!ctx->be) ctx->be = sdiff__cpu_backend_create(p.n_threads, &ctx->log);
    if (!ctx->be) {
        sdiff__free(ctx);
        return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "could not start the CPU backend");
    }
    *out_ctx = ctx;
    return SDIFF_OK;
}
SDIFF_API void sdiff_ctx_free(sdiff_ctx *ctx) {
    if (!ctx) return;
    if (ctx->be) ctx->be->destroy(ctx->be);
    sdiff__free(ctx);
}
SDIFF_API const char *sdiff_ctx_backend_name(const sdiff_ctx *ctx) { return ctx && ctx->be ? ctx->be->name : ""; }

SDIFF_API sdiff_load_params sdiff_load_default_params(void) {
    sdiff_load_params p;
    memset(&p, 0, sizeof p);
    return p;
}
SDIFF_API sdiff_status sdiff_model_load(sdiff_ctx *ctx, const char *path, const sdiff_load_params *params,
                                        sdiff_model **out_model) {
    sdiff__g_error[0] = 0;
    if (!out_model) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_model_load: out_model is NULL");
    *out_model = NULL;
    if (!ctx || !path) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_model_load: ctx and path are required");
    sdiff_load_params lp = params ? *params : sdiff_load_default_params();
    sdiff_model *m = (sdiff_model *)sdiff__calloc(1, sizeof *m);
    if (!m) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of memory");
    m->ctx = ctx;
    sdiff_status st = sdiff__model_load(ctx, path, &lp, m);
    if (st != SDIFF_OK) {
        sdiff__log(&ctx->log, SDIFF_LOG_ERROR, "load", "%s", sdiff__g_error);
        sdiff__model_release(m);
        return st;
    }
    sdiff__log(&ctx->log, SDIFF_LOG_INFO, "load", "%s: %s", path, m->description);
    *out_model = m;
    return SDIFF_OK;
}
SDIFF_API void sdiff_model_free(sdiff_model *model) { sdiff__model_release(model); }
SDIFF_API const char *sdiff_model_describe(const sdiff_model *model) { return model ? model->description : ""; }

SDIFF_API sdiff_gen_params sdiff_gen_default_params(const sdiff_model *model) {
    sdiff_gen_params p;
    memset(&p, 0, sizeof p);
    p.prompt = "";
    p.steps = 50;                   /* diffusers' defaults */
    p.cfg_scale = 7.5f;
    p.batch = 1;
    p.strength = 0.8f;
    int size = 512;
    if (model) size = model->unet.cfg.sample_size * (1 << (model->vae.cfg.levels - 1));
    p.width = p.height = size;
    return p;
}
SDIFF_API sdiff_status sdiff_generate(sdiff_model *model, const sdiff_gen_params *params, sdiff_image *out_images) {
    sdiff__g_error[0] = 0;
    if (!model || !params || !out_images) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_generate: NULL argument");
    sdiff_gen_params p = *params;  /* 0 == default for batch and size */
    sdiff_gen_params def = sdiff_gen_default_params(model);
    if (p.batch == 0) p.batch = 1;
    if (p.width == 0) p.width = def.width;
    if (p.height == 0) p.height = def.height;
    for (int b = 0; b < (p.batch > 0 && p.batch <= 64 ? p.batch : 1); b++) memset(&out_images[b], 0, sizeof out_images[b]);
    SDIFF__TRY(sdiff__check_gen_params(model, &p));
    sdiff_status st = sdiff__generate(model, &p, out_images);
    if (st != SDIFF_OK && st != SDIFF_ERR_CANCELLED)
        sdiff__log(&model->ctx->log, SDIFF_LOG_ERROR, "generate", "%s", sdiff__g_error);
    return st;
}
SDIFF_API size_t sdiff_model_peak_activation_bytes(const sdiff_model *model) { return model ? model->arena.peak : 0; }

/* >>image ==================================================================
   Images: PNG writing and image loading (stb), generation parameters as text

   stb, and how it gets linked. sdiff uses stb_image (loading) and
   stb_image_write (PNG encoding) from the system's stb headers: Debian and
   Ubuntu's libstb-dev put them in /usr/include/stb/, so the default is
   <stb/stb_image.h>; define SDIFF_STB_IMAGE_H / SDIFF_STB_IMAGE_WRITE_H to
   another header name (e.g. -DSDIFF_STB_IMAGE_H='"third_party/stb_image.h"')
   where they live elsewhere.

   By default this file compiles a private copy of both into the
   implementation, with every stb function `static` (STB_IMAGE_STATIC,
   STB_IMAGE_WRITE_STATIC). That keeps embedding to one #include with no
   extra library on the link line, and a program that also uses stb itself
   (its own copy, or Debian's -lstb) still links: static functions cannot
   collide with anyone's symbols. The cost is one more copy of the decoder
   in the binary.
   To share one stb instead, include stb_image.h and stb_image_write.h
   before the sdiff implementation in the same file; sdiff then uses those
   declarations and builds no copy, and the program supplies the
   implementation once (STB_IMAGE_IMPLEMENTATION in one file, or link
   Debian's packaged -lstb).

   The private copy allocates through SDIFF_MALLOC/SDIFF_REALLOC/SDIFF_FREE,
   so a replaced allocator covers image decoding too.
   ========================================================================= */

/* The largest width or height sdiff reads or writes. A Stable Diffusion
   image is far smaller; the limit keeps a hostile header (a PNG claiming
   100000 x 100000) from asking for gigabytes, and keeps stb_image_write's
   int-sized row arithmetic ((w*4+1)*h) well inside INT_MAX. */
#define SDIFF__IMAGE_MAX_SIDE 16384

SDIFF_API void sdiff_image_free(sdiff_image *image) {
    if (!image) return;
    sdiff__free(image->data);
    image->data = NULL;
    image->width = image->height = image->channels = 0;
}

#ifndef SDIFF_NO_STB

#if !defined(STBI_INCLUDE_STB_IMAGE_H)
#  define STB_IMAGE_STATIC
#  define STB_IMAGE_IMPLEMENTATION
#  define STBI_FAILURE_USERMSG      /* "Corrupt PNG" rather than "bad zlib" */
#  ifndef STBI_MALLOC
#    define STBI_MALLOC(sz) SDIFF_MALLOC(sz)
#    define STBI_REALLOC(p, sz) SDIFF_REALLOC(p, sz)
#    define STBI_FREE(p) SDIFF_FREE(p)
#  endif
#  ifndef STBI_ASSERT
#    define STBI_ASSERT(x) SDIFF_ASSERT(x)
#  endif
#  define SDIFF__STB_IMAGE_PRIVATE 1
/* stb_image 2.27 (the one Debian 12 ships) declares
   stbi_set_unpremultiply_on_load_thread but defines it as
   stbi__unpremultiply_on_load_thread. Made static, that is a function
   declared and never defined, which GCC reports at the end of the file,
   past any diagnostic pragma. Giving both spellings one private name makes
   2.27 define what it declares; later versions (fixed) never use the
   misspelt one. */
#  define stbi_set_unpremultiply_on_load_thread sdiff__stbi_unpremultiply_on_load_thread
#  define stbi__unpremultiply_on_load_thread sdiff__stbi_unpremultiply_on_load_thread
#endif
#if !defined(INCLUDE_STB_IMAGE_WRITE_H)
#  define STB_IMAGE_WRITE_STATIC
#  define STB_IMAGE_WRITE_IMPLEMENTATION
#  ifndef STBIW_MALLOC
#    define STBIW_MALLOC(sz) SDIFF_MALLOC(sz)
#    define STBIW_REALLOC(p, sz) SDIFF_REALLOC(p, sz)
#    define STBIW_FREE(p) SDIFF_FREE(p)
#  endif
#  ifndef STBIW_ASSERT
#    define STBIW_ASSERT(x) SDIFF_ASSERT(x)
#  endif
#  define SDIFF__STB_WRITE_PRIVATE 1
#endif

/* A static copy of stb has many functions sdiff never calls (HDR loading,
   BMP writing, ...), and some stb versions warn under -Wall -Wextra of
   their own; those are not warnings of the program that includes sdiff. */
#if defined(__clang__)
#  pragma clang diagnostic push
#  pragma clang diagnostic ignored "-Wunused-function"
#  pragma clang diagnostic ignored "-Wmissing-field-initializers"
#  if __has_warning("-Wunused-but-set-variable")
#    pragma clang diagnostic ignored "-Wunused-but-set-variable"
#  endif
#elif defined(__GNUC__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wunused-function"
#  pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#  pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#ifdef SDIFF_STB_IMAGE_H
#  include SDIFF_STB_IMAGE_H
#else
#  include <stb/stb_image.h>
#endif
#ifdef SDIFF_STB_IMAGE_WRITE_H
#  include SDIFF_STB_IMAGE_WRITE_H
#else
#  include <stb/stb_image_write.h>
#endif
#if defined(__clang__)
#  pragma clang diagnostic pop
#elif defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif
#ifdef SDIFF__STB_IMAGE_PRIVATE
#  undef stbi_set_unpremultiply_on_load_thread
#  undef stbi__unpremultiply_on_load_thread
#endif

#ifndef SDIFF__STB_WRITE_PRIVATE
/* stb_image_write.h declares stbi_write_png_to_mem only in its
   implementation part; with a shared stb it has to be declared here. */
STBIWDEF unsigned char *stbi_write_png_to_mem(const unsigned char *pixels, int stride_bytes, int x, int y, int n,
                                              int *out_len);
#endif
/* stbi_write_png_to_mem's buffer comes from STBIW_MALLOC: the private copy's
   is SDIFF_MALLOC; a shared stb built with its defaults uses malloc. */
#ifdef SDIFF__STB_WRITE_PRIVATE
#  define SDIFF__STBIW_FREE(p) SDIFF_FREE(p)
#else
#  define SDIFF__STBIW_FREE(p) free(p)
#endif

SDIFF_API sdiff_status sdiff_image_load(const char *path, sdiff_image *out_image) {
    if (out_image) memset(out_image, 0, sizeof *out_image);
    if (!path || !out_image) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_load: path and out_image must not be NULL");
    /* Opening the file here, not in stbi_load, tells "cannot read" (errno)
       apart from "not an image" (stbi_failure_reason). */
    FILE *f = fopen(path, "rb");
    if (!f) return sdiff__err(SDIFF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_file(f, &w, &h, &comp)) {
        int io_error = ferror(f);
        int saved_errno = errno;
        fclose(f);
        if (io_error) return sdiff__err(SDIFF_ERR_IO, "%s: read error: %s", path, strerror(saved_errno));
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: not a readable image (%s)", path, stbi_failure_reason());
    }
    /* Checked before decoding, so a huge header costs nothing. */
    if (w < 1 || h < 1 || w > SDIFF__IMAGE_MAX_SIDE || h > SDIFF__IMAGE_MAX_SIDE) {
        fclose(f);
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: image is %dx%d; sdiff reads images up to %dx%d", path, w, h,
                          SDIFF__IMAGE_MAX_SIDE, SDIFF__IMAGE_MAX_SIDE);
    }
    unsigned char *pixels = stbi_load_from_file(f, &w, &h, &comp, 3);
    int io_error = ferror(f);
    int saved_errno = errno;
    fclose(f);
    if (!pixels) {
        if (io_error) return sdiff__err(SDIFF_ERR_IO, "%s: read error: %s", path, strerror(saved_errno));
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: cannot decode image (%s)", path, stbi_failure_reason());
    }
    /* Copied so that sdiff_image_free (SDIFF_FREE) can free it whichever stb
       (private or shared, with its own allocator) decoded it. */
    size_t bytes = (size_t)w * (size_t)h * 3;
    uint8_t *data = (uint8_t *)sdiff__malloc(bytes);
    if (!data) {
        stbi_image_free(pixels);
        return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory for a %dx%d image", path, w, h);
    }
    memcpy(data, pixels, bytes);
    stbi_image_free(pixels);
    out_image->width = w;
    out_image->height = h;
    out_image->channels = 3;
    out_image->data = data;
    return SDIFF_OK;
}

/* sdiff__crc32 (PNG's CRC-32) is defined in tokenizer.h, which comes first. */

SDIFF__PRIVATE void sdiff__put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* The "parameters" text chunk, complete (length, type, data, CRC), the way
   A1111 and PIL write it: tEXt when the text is plain ASCII (tEXt means
   Latin-1, so UTF-8 bytes in it would be read back as mojibake), iTXt
   (uncompressed, no language tag) otherwise. */
SDIFF__PRIVATE sdiff_status sdiff__png_text_chunk(const char *text, unsigned char **out, size_t *out_len) {
    static const char key[] = "parameters";
    size_t key_len = sizeof key - 1, text_len = strlen(text);
    bool ascii = true;
    for (size_t i = 0; i < text_len; i++)
        if ((unsigned char)text[i] >= 0x80) { ascii = false; break; }
    if (!ascii && !sdiff__utf8_valid(text, text_len, NULL))
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_write_png: text is not valid UTF-8");
    /* tEXt: key NUL text.  iTXt: key NUL flag(0) method(0) lang NUL
       translated-key NUL text. */
    size_t head = ascii ? key_len + 1 : key_len + 5;
    if (text_len > 0x7FFFFFFFu - head)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_write_png: text of %zu bytes is too long for PNG",
                          text_len);
    size_t data_len = head + text_len;
    unsigned char *c = (unsigned char *)sdiff__malloc(12 + data_len);
    if (!c) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "sdiff_image_write_png: out of memory");
    sdiff__put_be32(c, (uint32_t)data_len);
    memcpy(c + 4, ascii ? "tEXt" : "iTXt", 4);
    unsigned char *d = c + 8;
    memcpy(d, key, key_len + 1);
    if (!ascii) memset(d + key_len + 1, 0, 4);
    memcpy(d + head, text, text_len);
    sdiff__put_be32(c + 8 + data_len, sdiff__crc32(0, c + 4, 4 + data_len));
    *out = c;
    *out_len = 12 + data_len;
    return SDIFF_OK;
}

SDIFF_API sdiff_status sdiff_image_write_png(const sdiff_image *image, const char *path, const char *text) {
    if (!image || !path || !image->data)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_write_png: image, its data and path must not be NULL");
    if (image->channels < 1 || image->channels > 4)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_write_png: %d channels (1 to 4 are supported)",
                          image->channels);
    if (image->width < 1 || image->height < 1 || image->width > SDIFF__IMAGE_MAX_SIDE ||
        image->height > SDIFF__IMAGE_MAX_SIDE)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_write_png: size %dx%d (1 to %d per side)", image->width,
                          image->height, SDIFF__IMAGE_MAX_SIDE);

    unsigned char *chunk = NULL;
    size_t chunk_len = 0;
    if (text) SDIFF__TRY(sdiff__png_text_chunk(text, &chunk, &chunk_len));

    int png_len = 0;
    unsigned char *png = stbi_write_png_to_mem(image->data, image->width * image->channels, image->width,
                                               image->height, image->channels, &png_len);
    if (!png) {
        sdiff__free(chunk);
        return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory encoding a %dx%d PNG", path, image->width,
                          image->height);
    }
    /* The chunk goes right after IHDR, where readers that stop early (and
       A1111's "PNG info" tab) look: signature (8) + IHDR (4+4+13+4) = 33. */
    const size_t ihdr_end = 33;
    if (png_len < (int)ihdr_end || memcmp(png + 12, "IHDR", 4) != 0) {
        SDIFF__STBIW_FREE(png);
        sdiff__free(chunk);
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: stb_image_write produced no IHDR chunk", path);
    }

    FILE *f = fopen(path, "wb");
    if (!f) {
        int e = errno;
        SDIFF__STBIW_FREE(png);
        sdiff__free(chunk);
        return sdiff__err(SDIFF_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    size_t n = (size_t)png_len;
    bool ok = fwrite(png, 1, ihdr_end, f) == ihdr_end;
    if (ok && chunk) ok = fwrite(chunk, 1, chunk_len, f) == chunk_len;
    if (ok) ok = fwrite(png + ihdr_end, 1, n - ihdr_end, f) == n - ihdr_end;
    int e = errno;
    /* fclose flushes: a full disk often shows only here. */
    if (fclose(f) != 0 && ok) { ok = false; e = errno; }
    SDIFF__STBIW_FREE(png);
    sdiff__free(chunk);
    if (!ok) {
        remove(path); /* a half-written PNG is worse than none */
        return sdiff__err(SDIFF_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return SDIFF_OK;
}

#else /* SDIFF_NO_STB */

SDIFF_API sdiff_status sdiff_image_load(const char *path, sdiff_image *out_image) {
    if (out_image) memset(out_image, 0, sizeof *out_image);
    return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: image loading was compiled out (SDIFF_NO_STB)", path ? path : "(null)");
}
SDIFF_API sdiff_status sdiff_image_write_png(const sdiff_image *image, const char *path, const char *text) {
    SDIFF__UNUSED(image);
    SDIFF__UNUSED(text);
    return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: PNG writing was compiled out (SDIFF_NO_STB)", path ? path : "(null)");
}

#endif /* SDIFF_NO_STB */

/* --- generation parameters as text, in the layout A1111 writes into PNGs
   (and that its "PNG info" tab, ComfyUI and civitai parse back):
       <prompt>
       Negative prompt: <negative>
       Steps: 30, Sampler: euler_a, CFG scale: 7.5, Seed: 42, Size: 512x512, ...
   Lines and fields that would only state a default are left out, as A1111
   does (no negative prompt, clip skip <= 1, eta 0, no init image). */
typedef struct sdiff__textbuf {
    char *buf;
    size_t size, len;   /* len: what was asked for, may exceed size-1 */
} sdiff__textbuf;

SDIFF__PRIVATE void sdiff__textbuf_printf(sdiff__textbuf *t, const char *fmt, ...) SDIFF__PRINTF(2, 3);
SDIFF__PRIVATE void sdiff__textbuf_printf(sdiff__textbuf *t, const char *fmt, ...) {
    size_t room = t->len < t->size ? t->size - t->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) t->len += (size_t)n;
}
SDIFF__PRIVATE void sdiff__textbuf_puts(sdiff__textbuf *t, const char *s) {
    size_t n = strlen(s);
    if (t->len < t->size) {
        size_t room = t->size - t->len - 1, k = n < room ? n : room;
        memcpy(t->buf + t->len, s, k);
        t->buf[t->len + k] = 0;
    }
    t->len += n;
}
/* "%g", but always with '.' as the decimal point: the text is parsed by
   other programs, whatever LC_NUMERIC the host program set. */
SDIFF__PRIVATE void sdiff__textbuf_float(sdiff__textbuf *t, double v) {
    char num[64];
    snprintf(num, sizeof num, "%g", v);
    for (char *p = num; *p; p++)
        if (*p == ',') *p = '.';
    sdiff__textbuf_puts(t, num);
}

SDIFF_API sdiff_status sdiff_gen_params_describe(const sdiff_gen_params *params, char *buf, size_t buf_size) {
    if (!buf || buf_size == 0)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_gen_params_describe: buf must hold at least 1 byte");
    buf[0] = 0;
    if (!params) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_gen_params_describe: params is NULL");
    sdiff__textbuf t = {buf, buf_size, 0};
    sdiff__textbuf_puts(&t, params->prompt ? params->prompt : "");
    if (params->negative_prompt && params->negative_prompt[0]) {
        sdiff__textbuf_puts(&t, "\nNegative prompt: ");
        sdiff__textbuf_puts(&t, params->negative_prompt);
    }
    const char *sampler = sdiff_sampler_name(params->sampler);
    sdiff__textbuf_printf(&t, "\nSteps: %d, Sampler: %s, CFG scale: ", params->steps, sampler ? sampler : "unknown");
    sdiff__textbuf_float(&t, params->cfg_scale);
    sdiff__textbuf_printf(&t, ", Seed: %llu", (unsigned long long)params->seed);
    if (params->width > 0 && params->height > 0)
        sdiff__textbuf_printf(&t, ", Size: %dx%d", params->width, params->height);
    if (params->clip_skip > 1) sdiff__textbuf_printf(&t, ", Clip skip: %d", params->clip_skip);
    if (params->eta != 0) {
        sdiff__textbuf_puts(&t, ", Eta: ");
        sdiff__textbuf_float(&t, params->eta);
    }
    if (params->init_image) {
        sdiff__textbuf_puts(&t, ", Denoising strength: ");
        sdiff__textbuf_float(&t, params->strength);
    }
    sdiff__textbuf_printf(&t, ", Batch: %d, Generator: sdiff " SDIFF_VERSION_STRING,
                          params->batch > 0 ? params->batch : 1);
    if (t.len >= buf_size) {
        /* Half a prompt stored as if it were the whole one would mislead
           whoever reads the PNG back, so a short buffer gets nothing. */
        buf[0] = 0;
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_gen_params_describe: buffer of %zu bytes is too small (%zu needed)",
                          buf_size, t.len + 1);
    }
    return SDIFF_OK;
}


#endif /* SDIFF_IMPLEMENTATION_DONE */
#endif /* SDIFF_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 the sdiff authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
