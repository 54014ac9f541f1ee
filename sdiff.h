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
     8.  Base: allocation, errors, logging, threads ................ >>base
     9.  Half floats and dtypes .................................. >>dtype
     10. Tensors and arenas ..................................... >>tensor
     11. Backend interface (the op table) ...................... >>backend
     12. CPU backend: thread pool, GEMM, ops ....................... >>cpu
     13. Files: mmap, safetensors, JSON ........................... >>files
     14. Tokenizer: CLIP BPE ................................. >>tokenizer
     15. Weights: name lookup, LDM single-file key map .......... >>weights
     16. Model: CLIP text encoder ................................ >>clip
     17. Model: UNet2DConditionModel ............................. >>unet
     18. Model: AutoencoderKL (VAE) ............................... >>vae
     19. Random numbers: torch.randn on the CPU generator ......... >>rng
     20. Schedulers ............................................. >>sched
     21. Pipelines: txt2img, img2img .......................... >>pipeline
     22. Images: PNG and image loading (stb) .................... >>image
     23. Public API implementation ................................ >>api

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

typedef struct sdiff_image {
    int width, height, channels;   /* channels: 3 (RGB) or 4 (RGBA)           */
    uint8_t *data;                 /* width*height*channels bytes, row-major */
} sdiff_image;

/* Called after each denoising step. Return false to cancel the generation
   (sdiff_generate then returns SDIFF_ERR_CANCELLED). */
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
SDIFF__PRIVATE uint16_t sdiff__f32_to_f16(float f) {
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
SDIFF__PRIVATE float sdiff__bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
SDIFF__PRIVATE uint16_t sdiff__f32_to_bf16(float f) {
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
    SDIFF__ACT_QUICK_GELU   /* x * sigmoid(1.702 x) (CLIP)                    */
} sdiff__act;

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

    /* --- ops */
    /* y[M,N] = act(x[M,K] . w[N,K]^T + bias[N]) + residual[M,N].
       x may be [.., K] of any rank; M = its number of rows. */
    void (*linear)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, const sdiff__tensor *w,
                   const sdiff__tensor *bias, sdiff__act act, const sdiff__tensor *residual);
    /* NHWC convolution: x[B,H,W,Ci], w[Co,KH,KW,Ci], y[B,Ho,Wo,Co].
       y = conv(x) + bias + residual. Input (iy, ix) = (oy*stride - pad + ky,
       ox*stride - pad + kx); reads outside x are zero, so y's own size decides
       the padding at the bottom and right (the VAE encoder pads only there). */
    void (*conv2d)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, const sdiff__tensor *w,
                   const sdiff__tensor *bias, int stride, int pad, const sdiff__tensor *residual);
    /* x[B, ..., C] with the groups over C and every position between: per
       batch item, groups of C/groups channels; optional SiLU after. */
    void (*group_norm)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, const sdiff__tensor *gamma,
                       const sdiff__tensor *beta, int groups, float eps, bool silu);
    /* Over the last dimension. */
    void (*layer_norm)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, const sdiff__tensor *gamma,
                       const sdiff__tensor *beta, float eps);
    /* Multi-head attention, softmax(q k^T / sqrt(D)) v per head.
       q[B,Lq,H*D], k and v [B,Lk,H*D] (column views allowed), o[B,Lq,H*D]
       contiguous. causal: query i sees keys 0..i only. */
    void (*attention)(sdiff__backend *be, sdiff__tensor *o, const sdiff__tensor *q, const sdiff__tensor *k,
                      const sdiff__tensor *v, int heads, bool causal);
    /* x[M, 2N] -> y[M, N] = x[:, :N] * gelu(x[:, N:]) (diffusers' GEGLU). */
    void (*geglu)(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x);
    /* y = a + b. b has a's shape, or [C] (added to every row), or [B, C] with
       B = a->ne[0] (added to every row of batch item b). y may alias a. */
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
};

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

/* --- the arena: where activations live.
   Stack discipline: sdiff__arena_mark() before a block of work and
   sdiff__arena_release() after it hands back everything allocated since.
   Memory comes from the backend in large blocks that are kept on release, so
   once the first denoising step has run, later steps allocate nothing. The
   peak figure is the most bytes ever in use at once (reported to the user).
   Tensor headers live in host blocks beside them, with the same discipline.
   On failure sdiff__new fails the backend (sticky) and returns a dummy tensor
   with data == NULL, which every op ignores because the backend has failed. */
#define SDIFF__ARENA_MAX_BLOCKS 64
#define SDIFF__ARENA_ALIGN 256       /* covers AVX-512 and GPU vector loads */
#define SDIFF__ARENA_HDRS_PER_BLOCK 1024

typedef struct sdiff__arena_block { char *data; size_t size, used; } sdiff__arena_block;
typedef struct sdiff__hdr_block { sdiff__tensor t[SDIFF__ARENA_HDRS_PER_BLOCK]; } sdiff__hdr_block;

typedef struct sdiff__arena {
    sdiff__backend *be;
    size_t min_block;                                 /* block size floor      */
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
}
/* Raw backend memory from the arena (NULL and a failed backend when out). */
SDIFF__PRIVATE void *sdiff__arena_alloc(sdiff__arena *a, size_t bytes) {
    bytes = (bytes + SDIFF__ARENA_ALIGN - 1) & ~(size_t)(SDIFF__ARENA_ALIGN - 1);
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
            /* the rest of this block is skipped: count it as used so the
               peak stays an upper bound of what a single block would need */
            a->in_use += b->size - b->used;
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
/* The same memory seen with another shape (numel must match; contiguous). */
SDIFF__PRIVATE sdiff__tensor *sdiff__reshape(sdiff__arena *a, const sdiff__tensor *t, int nd, int64_t n0, int64_t n1,
                                             int64_t n2, int64_t n3) {
    sdiff__tensor *v = sdiff__new(a, t->dtype, 1, 0, 1, 1, 1);
    int64_t ne[4] = {n0, n1, n2, n3};
    *v = *t;
    v->nd = nd;
    for (int i = 0; i < 4; i++) v->ne[i] = i < nd ? ne[i] : 1;
    v->row_stride = ne[nd - 1];
    SDIFF_ASSERT(sdiff__numel(v) == sdiff__numel(t) && sdiff__is_contiguous(t));
    return v;
}

/* ==== SECTION FRAGMENTS BELOW ARE FILLED IN ==== */
#include "wip/cpu.h"
#include "wip/json.h"
#include "wip/lead_files.h"
#include "wip/tokenizer.h"
#include "wip/lead_weights.h"
#include "wip/lead_models.h"
#include "wip/rng.h"
#include "wip/sched.h"
#include "wip/lead_load.h"
#include "wip/lead_pipeline.h"
#include "wip/lead_api.h"
#include "wip/image.h"

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
