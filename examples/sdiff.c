/* sdiff - the command-line generator.

     sdiff -m MODEL -p PROMPT [options]          (sdiff --help lists them)

   Build: make  (or: cc -O2 -std=c11 examples/sdiff.c -o sdiff -lm -lpthread)

   Every default comes from sdiff_gen_default_params(model); a flag overrides
   a field only when it is given. Exit status: 0 success, 1 failure (including
   Ctrl-C), 2 bad command line. */

/* isatty/fileno are POSIX, not C11: ask for them before any header. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

/* The built-in CLIP vocabulary, so single-file checkpoints need no tokenizer
   files next to them; it has to come before the implementation. */
#include "../sdiff_clip_vocab.h"
#define SDIFF_IMPLEMENTATION
#include "../sdiff.h"
#include "../sdiff_cuda.h" /* --backend cuda; without a GPU it falls back to the CPU */

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2

/* ---------------------------------------------------------------- options */
typedef struct options {
    const char *model, *prompt, *negative, *init_img, *output, *tokenizer, *config_dir;
    int width, height, steps, batch, clip_skip, threads;
    float cfg_scale, strength;
    unsigned long long seed;
    sdiff_sampler sampler;
    sdiff_backend_kind backend;
    bool random_seed, verbose;
    /* which fields the user gave: only those override the model's defaults */
    bool has_negative, has_width, has_height, has_steps, has_batch, has_clip_skip, has_cfg, has_strength, has_seed,
        has_sampler;
} options;

static void print_usage(FILE *out) {
    fprintf(out,
            "usage: sdiff -m MODEL -p PROMPT [options]\n"
            "\n"
            "Generates images with a Stable Diffusion 1.x/2.x model on the CPU.\n"
            "\n"
            "  -m, --model PATH         diffusers folder or single-file .safetensors checkpoint\n"
            "  -p, --prompt TEXT        what to draw\n"
            "  -n, --negative-prompt TEXT\n"
            "                           what to steer away from\n"
            "  -W, --width N            image width  (multiple of 8; default: the model's size)\n"
            "  -H, --height N           image height (multiple of 8; default: the model's size)\n"
            "      --steps N            denoising steps (default 50)\n"
            "      --cfg-scale F        classifier-free guidance scale (default 7.5)\n"
            "      --seed N             random seed; -1 picks one and prints it (default 0)\n"
            "      --sampler NAME       one of:");
    for (int s = 0; s < SDIFF_SAMPLER_COUNT_; s++) fprintf(out, " %s", sdiff_sampler_name((sdiff_sampler)s));
    fprintf(out,
            "\n"
            "                           (default: the scheduler in the model's config)\n"
            "      --init-img PATH      img2img: start from this image (its size is the output size)\n"
            "      --strength F         img2img: how much to change it, 0..1 (default 0.8)\n"
            "  -b, --batch N            images per prompt (default 1)\n"
            "  -o, --output PATH        output PNG (default output.png); a batch writes\n"
            "                           PATH, PATH-1, PATH-2, ... (before the extension)\n"
            "      --backend NAME       cpu, cuda or auto (default auto)\n"
            "      --clip-skip N        use the text encoder's Nth layer from the end (default 1)\n"
            "      --tokenizer PATH     single-file checkpoints: vocab.json+merges.txt folder or\n"
            "                           bpe_simple_vocab_16e6.txt[.gz] (default: built in)\n"
            "      --config DIR         single-file checkpoints: a diffusers folder to take the\n"
            "                           configs from (default: detected from the weights)\n"
            "  -t, --threads N          CPU threads (default: all cores)\n"
            "  -v, --verbose            log what the library does\n"
            "  -h, --help               show this help\n"
            "      --version            show the version\n"
            "\n"
            "The PNG stores the settings as A1111-style \"parameters\" text.\n");
}

static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("sdiff: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'sdiff --help' for more information.\n", stderr);
    return EXIT_USAGE;
}

static bool parse_int(const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}
static bool parse_float(const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi) return false;
    *out = (float)v;
    return true;
}

enum {
    OPT_HELP, OPT_VERSION, OPT_VERBOSE, OPT_MODEL, OPT_PROMPT, OPT_NEGATIVE, OPT_WIDTH, OPT_HEIGHT, OPT_STEPS,
    OPT_CFG, OPT_SEED, OPT_SAMPLER, OPT_INIT_IMG, OPT_STRENGTH, OPT_BATCH, OPT_OUTPUT, OPT_BACKEND, OPT_CLIP_SKIP,
    OPT_TOKENIZER, OPT_CONFIG, OPT_THREADS
};
static const struct { const char *short_name, *long_name; int id; bool takes_value; } k_options[] = {
    {"-h", "--help", OPT_HELP, false},          {NULL, "--version", OPT_VERSION, false},
    {"-v", "--verbose", OPT_VERBOSE, false},    {"-m", "--model", OPT_MODEL, true},
    {"-p", "--prompt", OPT_PROMPT, true},       {"-n", "--negative-prompt", OPT_NEGATIVE, true},
    {"-W", "--width", OPT_WIDTH, true},         {"-H", "--height", OPT_HEIGHT, true},
    {NULL, "--steps", OPT_STEPS, true},         {NULL, "--cfg-scale", OPT_CFG, true},
    {NULL, "--seed", OPT_SEED, true},           {NULL, "--sampler", OPT_SAMPLER, true},
    {NULL, "--init-img", OPT_INIT_IMG, true},   {NULL, "--strength", OPT_STRENGTH, true},
    {"-b", "--batch", OPT_BATCH, true},         {"-o", "--output", OPT_OUTPUT, true},
    {NULL, "--backend", OPT_BACKEND, true},     {NULL, "--clip-skip", OPT_CLIP_SKIP, true},
    {NULL, "--tokenizer", OPT_TOKENIZER, true}, {NULL, "--config", OPT_CONFIG, true},
    {"-t", "--threads", OPT_THREADS, true},
};

/* Returns -1 when parsing succeeded and the program should go on, else the
   exit status (0 after --help/--version, 2 after a usage error). Options are
   "-x VALUE", "--long VALUE" or "--long=VALUE"; a value may start with '-'
   (--seed -1, a prompt such as "-1 cat"). */
static int parse_args(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->output = "output.png";
    o->backend = SDIFF_BACKEND_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int id = -1;
        size_t n_opts = sizeof k_options / sizeof k_options[0];
        for (size_t k = 0; k < n_opts && id < 0; k++) {
            const char *s = k_options[k].short_name, *l = k_options[k].long_name;
            size_t ll = strlen(l);
            if ((s && !strcmp(a, s)) || !strcmp(a, l)) id = (int)k;
            else if (k_options[k].takes_value && !strncmp(a, l, ll) && a[ll] == '=') { id = (int)k; v = a + ll + 1; }
        }
        if (id < 0) {
            if (a[0] == '-' && a[1]) return usage_error("unknown option '%s'", a);
            return usage_error("unexpected argument '%s' (quote a prompt that has spaces)", a);
        }
        if (k_options[id].takes_value && !v) {
            if (i + 1 >= argc) return usage_error("option '%s' needs a value", a);
            v = argv[++i];
        }
        switch (k_options[id].id) {
        case OPT_HELP: print_usage(stdout); return 0;
        case OPT_VERSION: printf("sdiff %s\n", SDIFF_VERSION_STRING); return 0;
        case OPT_VERBOSE: o->verbose = true; break;
        case OPT_MODEL: o->model = v; break;
        case OPT_PROMPT: o->prompt = v; break;
        case OPT_NEGATIVE: o->negative = v; o->has_negative = true; break;
        case OPT_WIDTH:
            if (!parse_int(v, 8, 16384, &o->width)) return usage_error("--width: '%s' is not a size in 8..16384", v);
            o->has_width = true;
            break;
        case OPT_HEIGHT:
            if (!parse_int(v, 8, 16384, &o->height)) return usage_error("--height: '%s' is not a size in 8..16384", v);
            o->has_height = true;
            break;
        case OPT_STEPS:
            if (!parse_int(v, 1, 10000, &o->steps)) return usage_error("--steps: '%s' is not a number in 1..10000", v);
            o->has_steps = true;
            break;
        case OPT_CFG:
            if (!parse_float(v, 0.0f, 100.0f, &o->cfg_scale))
                return usage_error("--cfg-scale: '%s' is not a number in 0..100", v);
            o->has_cfg = true;
            break;
        case OPT_SEED:
            o->random_seed = !strcmp(v, "-1");
            if (!o->random_seed) {
                char *end;
                errno = 0;
                o->seed = strtoull(v, &end, 10);
                /* strtoull takes "-5" and wraps it: -1 is the only negative seed */
                if (v[0] == '-' || v[0] == '+' || end == v || *end || errno)
                    return usage_error("--seed: '%s' is not a seed (0..2^64-1, or -1 for a random one)", v);
            }
            o->has_seed = true;
            break;
        case OPT_SAMPLER:
            o->sampler = sdiff_sampler_from_name(v);
            if (o->sampler == SDIFF_SAMPLER_COUNT_)
                return usage_error("--sampler: unknown sampler '%s' (see sdiff --help)", v);
            o->has_sampler = true;
            break;
        case OPT_INIT_IMG: o->init_img = v; break;
        case OPT_STRENGTH:
            if (!parse_float(v, 0.0f, 1.0f, &o->strength))
                return usage_error("--strength: '%s' is not a number in 0..1", v);
            o->has_strength = true;
            break;
        case OPT_BATCH:
            if (!parse_int(v, 1, 1024, &o->batch)) return usage_error("--batch: '%s' is not a number in 1..1024", v);
            o->has_batch = true;
            break;
        case OPT_OUTPUT:
            if (!*v) return usage_error("--output: empty path");
            o->output = v;
            break;
        case OPT_BACKEND:
            if (!strcmp(v, "cpu")) o->backend = SDIFF_BACKEND_CPU;
            else if (!strcmp(v, "cuda")) o->backend = SDIFF_BACKEND_CUDA;
            else if (!strcmp(v, "auto")) o->backend = SDIFF_BACKEND_AUTO;
            else return usage_error("--backend: '%s' is not cpu, cuda or auto", v);
            break;
        case OPT_CLIP_SKIP:
            if (!parse_int(v, 0, 64, &o->clip_skip)) return usage_error("--clip-skip: '%s' is not a number in 0..64", v);
            o->has_clip_skip = true;
            break;
        case OPT_TOKENIZER: o->tokenizer = v; break;
        case OPT_CONFIG: o->config_dir = v; break;
        case OPT_THREADS:
            if (!parse_int(v, 0, 4096, &o->threads)) return usage_error("--threads: '%s' is not a number in 0..4096", v);
            break;
        }
    }
    if (!o->model) return usage_error("no model: pass -m PATH");
    if (!o->prompt) return usage_error("no prompt: pass -p TEXT");
    if (o->has_strength && !o->init_img) return usage_error("--strength needs --init-img");
    return -1;
}

/* ------------------------------------------------- progress and Ctrl-C */
static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    g_interrupted = 1;
    /* A second Ctrl-C kills at once, in case a step takes very long. */
    signal(sig, SIG_DFL);
}

static double now_seconds(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct progress_state {
    bool tty;            /* redraw one line; otherwise print a line now and then */
    bool line_open;      /* a bar is on screen without its newline            */
    int last_step;
    double t_start;      /* when the first step finished (steps are timed from it) */
} progress_state;

static progress_state g_progress;

static bool on_progress(int step, int total, void *user) {
    progress_state *p = (progress_state *)user;
    double t = now_seconds();
    if (step <= 1 || step <= p->last_step) p->t_start = t; /* first step, or a new image */
    p->last_step = step;
    if (total < 1) total = 1;
    if (step > total) step = total;
    /* seconds per step, measured between steps so the prompt encoding before
       step 1 does not count; step 1 alone has no interval yet */
    double rate = step > 1 ? (t - p->t_start) / (step - 1) : 0;
    char speed[32] = "";
    if (rate > 0) {
        if (rate >= 1) snprintf(speed, sizeof speed, "%.1f s/it", rate);
        else snprintf(speed, sizeof speed, "%.2f it/s", 1 / rate);
    }
    if (p->tty) {
        enum { W = 30 };
        char bar[W + 1];
        int fill = (int)((long long)step * W / total);
        for (int k = 0; k < W; k++) bar[k] = k < fill - 1 || fill == W ? '=' : (k == fill - 1 ? '>' : ' ');
        bar[W] = 0;
        fprintf(stderr, "\r[%s] %d/%d  %s\033[K", bar, step, total, speed);
        p->line_open = step < total;
        if (step == total) fputc('\n', stderr);
    } else {
        int every = total > 10 ? (total + 9) / 10 : 1;
        if (step == total || step % every == 0) fprintf(stderr, "step %d/%d  %s\n", step, total, speed);
    }
    fflush(stderr);
    return !g_interrupted;
}

/* Library log lines, kept off the progress bar's line. Errors are not
   printed here unless -v: main reports them once, from sdiff_last_error(). */
static void on_log(sdiff_log_level level, const char *tag, const char *message, void *user) {
    bool verbose = *(const bool *)user;
    if (level == SDIFF_LOG_ERROR && !verbose) return;
    if (g_progress.line_open) { fputc('\n', stderr); g_progress.line_open = false; }
    static const char *names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "sdiff: %s: [%s] %s\n", names[level <= SDIFF_LOG_DEBUG ? level : SDIFF_LOG_DEBUG], tag, message);
}

/* ------------------------------------------------------------- helpers */
static int fail(sdiff_status st) {
    if (g_progress.line_open) { fputc('\n', stderr); g_progress.line_open = false; }
    const char *msg = sdiff_last_error();
    fprintf(stderr, "sdiff: error: %s\n", msg && msg[0] ? msg : sdiff_status_string(st));
    return 1;
}

/* OUT.png, OUT-1.png, OUT-2.png, ...: the index goes before the extension
   of the file name (not of a directory: "a.d/out" -> "a.d/out-1"). */
static char *output_name(const char *out, int index) {
    size_t n = strlen(out) + 16;
    char *s = (char *)malloc(n);
    if (!s) return NULL;
    if (index == 0) { snprintf(s, n, "%s", out); return s; }
    const char *slash = strrchr(out, '/');
    const char *dot = strrchr(out, '.');
    if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : out)) dot = out + strlen(out);
    snprintf(s, n, "%.*s-%d%s", (int)(dot - out), out, index, dot);
    return s;
}

/* A seed like A1111's random ones (0..2^32-2), from the OS where it has a
   source, else from the clock; only needs to differ from run to run. */
static unsigned long long random_seed(void) {
    unsigned long long x = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&x, sizeof x, 1, f) != 1) {
        struct timespec ts;
        timespec_get(&ts, TIME_UTC);
        x = (unsigned long long)ts.tv_sec * 1000000007ull ^ (unsigned long long)ts.tv_nsec ^ (uintptr_t)&x;
        x ^= x >> 31; x *= 0xBF58476D1CE4E5B9ull; x ^= x >> 27; x *= 0x94D049BB133111EBull; x ^= x >> 31;
    }
    if (f) fclose(f);
    return x % 4294967295ull;
}

/* Fails before a long generation, not after it, when the output cannot be
   created (missing folder, no permission). Leaves no file behind. */
static bool check_writable(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        f = fopen(path, "ab"); /* exists: append mode opens without truncating */
        if (!f) return false;
        fclose(f);
        return true;
    }
    f = fopen(path, "wb");
    if (!f) return false;
    fclose(f);
    remove(path);
    return true;
}

/* ----------------------------------------------------------------- main */
int main(int argc, char **argv) {
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;

    char *first_out = output_name(o.output, 0);
    if (!first_out) { fputs("sdiff: error: out of memory\n", stderr); return 1; }
    bool writable = check_writable(first_out);
    int werr = errno;
    free(first_out);
    if (!writable) {
        fprintf(stderr, "sdiff: error: %s: cannot create: %s\n", o.output, strerror(werr));
        return 1;
    }

    sdiff_ctx *ctx = NULL;
    sdiff_model *model = NULL;
    sdiff_image init = {0, 0, 0, NULL};
    sdiff_image *images = NULL;
    int batch = 0;
    sdiff_status st;
    rc = 1;

    if (o.init_img && (st = sdiff_image_load(o.init_img, &init)) != SDIFF_OK) { rc = fail(st); goto done; }

    sdiff_ctx_params cp = sdiff_ctx_default_params();
    cp.backend = o.backend;
    cp.n_threads = o.threads;
    cp.log_level = o.verbose ? SDIFF_LOG_DEBUG : SDIFF_LOG_WARN;
    cp.log_fn = on_log;
    cp.log_user = &o.verbose;
    if ((st = sdiff_ctx_create(&cp, &ctx)) != SDIFF_OK) { rc = fail(st); goto done; }

    sdiff_load_params lp = sdiff_load_default_params();
    if (o.tokenizer) lp.tokenizer_path = o.tokenizer;
    if (o.config_dir) lp.config_dir = o.config_dir;
    double t0 = now_seconds();
    if ((st = sdiff_model_load(ctx, o.model, &lp, &model)) != SDIFF_OK) { rc = fail(st); goto done; }
    fprintf(stderr, "sdiff: %s on %s, loaded in %.1f s\n", sdiff_model_describe(model), sdiff_ctx_backend_name(ctx),
            now_seconds() - t0);

    sdiff_gen_params gp = sdiff_gen_default_params(model);
    gp.prompt = o.prompt;
    if (o.has_negative) gp.negative_prompt = o.negative;
    if (o.has_width) gp.width = o.width;
    if (o.has_height) gp.height = o.height;
    if (o.has_steps) gp.steps = o.steps;
    if (o.has_cfg) gp.cfg_scale = o.cfg_scale;
    if (o.has_sampler) gp.sampler = o.sampler;
    if (o.has_batch) gp.batch = o.batch;
    if (o.has_clip_skip) gp.clip_skip = o.clip_skip;
    if (o.has_strength) gp.strength = o.strength;
    if (o.has_seed) gp.seed = o.seed;
    if (o.random_seed) {
        gp.seed = random_seed();
        fprintf(stderr, "sdiff: seed %llu\n", (unsigned long long)gp.seed);
    }
    if (o.init_img) {
        /* img2img keeps the init image's size unless told otherwise; the
           library refuses a mismatch rather than resizing silently */
        if (!o.has_width) gp.width = init.width;
        if (!o.has_height) gp.height = init.height;
        gp.init_image = &init;
    }
    batch = gp.batch > 0 ? gp.batch : 1;
    images = (sdiff_image *)calloc((size_t)batch, sizeof *images);
    if (!images) { fputs("sdiff: error: out of memory\n", stderr); goto done; }

    g_progress.tty = isatty(fileno(stderr)) != 0;
    gp.progress = on_progress;
    gp.progress_user = &g_progress;
    /* Ctrl-C is caught only while generating: the callback then stops the
       run between steps and everything is freed. Elsewhere it just ends the
       program, which has nothing to clean up. */
    signal(SIGINT, on_sigint);
    t0 = now_seconds();
    st = sdiff_generate(model, &gp, images);
    signal(SIGINT, SIG_DFL);
    if (st == SDIFF_ERR_CANCELLED) {
        if (g_progress.line_open) fputc('\n', stderr);
        fputs("sdiff: cancelled\n", stderr);
        goto done;
    }
    if (st != SDIFF_OK) { rc = fail(st); goto done; }
    fprintf(stderr, "sdiff: %d image%s of %dx%d in %.1f s\n", batch, batch > 1 ? "s" : "", gp.width, gp.height,
            now_seconds() - t0);

    /* The describe buffer only has to hold the prompts and ~200 bytes of
       settings; sized from them, it cannot come up short. */
    size_t cap = strlen(gp.prompt) + (gp.negative_prompt ? strlen(gp.negative_prompt) : 0) + 1024;
    char *text = (char *)malloc(cap);
    if (!text) { fputs("sdiff: error: out of memory\n", stderr); goto done; }
    if ((st = sdiff_gen_params_describe(&gp, text, cap)) != SDIFF_OK) { free(text); rc = fail(st); goto done; }
    rc = 0;
    for (int b = 0; b < batch && rc == 0; b++) {
        char *path = output_name(o.output, b);
        if (!path) { fputs("sdiff: error: out of memory\n", stderr); rc = 1; break; }
        if ((st = sdiff_image_write_png(&images[b], path, text)) != SDIFF_OK) rc = fail(st);
        else printf("%s\n", path);
        free(path);
    }
    free(text);

done:
    if (images)
        for (int b = 0; b < batch; b++) sdiff_image_free(&images[b]);
    free(images);
    sdiff_image_free(&init);
    if (model) sdiff_model_free(model);
    if (ctx) sdiff_ctx_free(ctx);
    return rc;
}
