/* minimal.c - the shortest complete sdiff program: one prompt, one PNG.

     cc -O2 -std=c11 examples/minimal.c -o minimal -lm -lpthread
     ./minimal MODEL "a lighthouse at dusk" out.png                      */
#include "../sdiff_clip_vocab.h"  /* optional: single-file checkpoints need no tokenizer files */
#define SDIFF_IMPLEMENTATION
#include "../sdiff.h"
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL PROMPT OUT.png\n", argv[0]);
        return 2;
    }
    sdiff_ctx *ctx;
    sdiff_ctx_params cp = sdiff_ctx_default_params();
    if (sdiff_ctx_create(&cp, &ctx) != SDIFF_OK) {
        fprintf(stderr, "error: %s\n", sdiff_last_error());
        return 1;
    }
    int rc = 1;
    sdiff_model *model;
    sdiff_load_params lp = sdiff_load_default_params();
    if (sdiff_model_load(ctx, argv[1], &lp, &model) == SDIFF_OK) {
        sdiff_gen_params gp = sdiff_gen_default_params(model);
        gp.prompt = argv[2];
        gp.seed = 42;
        sdiff_image img;
        if (sdiff_generate(model, &gp, &img) == SDIFF_OK) {
            if (sdiff_image_write_png(&img, argv[3], NULL) == SDIFF_OK) rc = 0;
            sdiff_image_free(&img);
        }
        sdiff_model_free(model);
    }
    if (rc) fprintf(stderr, "error: %s\n", sdiff_last_error());
    sdiff_ctx_free(ctx);
    return rc;
}
