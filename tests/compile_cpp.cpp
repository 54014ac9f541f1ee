// compile_cpp.cpp - the whole sdiff implementation (and the CUDA backend) compiled as C++
// (g++ -Wall -Wextra -Werror, from "make test"), so a C++ program can embed
// sdiff.h the same way a C program does. Built with the optional built-in
// vocabulary too, to cover that code path. Compiled, never run.
#include "../sdiff_clip_vocab.h"
#define SDIFF_IMPLEMENTATION
#include "../sdiff.h"
#include "../sdiff_cuda.h"

// Takes the address of every public function, so a declaration and its
// definition that disagree (or lose their extern "C") fail here.
extern "C" {
typedef void (*sdiff_any_fn)(void);
}
static const sdiff_any_fn k_public_api[] = {
    (sdiff_any_fn)&sdiff_status_string,       (sdiff_any_fn)&sdiff_last_error,
    (sdiff_any_fn)&sdiff_ctx_default_params,  (sdiff_any_fn)&sdiff_ctx_create,
    (sdiff_any_fn)&sdiff_ctx_free,            (sdiff_any_fn)&sdiff_ctx_backend_name,
    (sdiff_any_fn)&sdiff_load_default_params, (sdiff_any_fn)&sdiff_model_load,
    (sdiff_any_fn)&sdiff_model_free,          (sdiff_any_fn)&sdiff_model_describe,
    (sdiff_any_fn)&sdiff_sampler_name,        (sdiff_any_fn)&sdiff_sampler_from_name,
    (sdiff_any_fn)&sdiff_gen_default_params,  (sdiff_any_fn)&sdiff_generate,
    (sdiff_any_fn)&sdiff_model_peak_activation_bytes,
    (sdiff_any_fn)&sdiff_image_free,          (sdiff_any_fn)&sdiff_image_load,
    (sdiff_any_fn)&sdiff_image_write_png,     (sdiff_any_fn)&sdiff_gen_params_describe,
};

int main() {
    return k_public_api[0] == nullptr;
}
