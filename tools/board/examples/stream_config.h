/* stream_config.h -- the settings of the streaming example (stream.c), shared with
 * stream_plan.c, which sizes the static arena from them at build time. */
#ifndef STREAM_CONFIG_H
#define STREAM_CONFIG_H
#include "pdmm.h"

#define STREAM_FEATURES 64 /* 8x8 digit images, values 0..16 (Data/digits.csv) */
#define STREAM_CLASSES 10
#define STREAM_BATCH 16
#define STREAM_INPUT_SCALE 4096 /* Q16.16 of value / 16: value * 65536 / 16 */

/* A dense 64-32-10 ReLU network, full backprop, sgd, lr 0.05, seed 1. */
static inline void stream_config(pdmm_config *c) {
    pdmm_config_default(c);
    c->net = "64: dense 32, relu, dense 10";
    c->batch = STREAM_BATCH;
    c->mode = PDMM_MODE_BP;
    c->optimizer = PDMM_OPT_SGD;
    c->learning_rate = 0.05;
    c->seed = 1;
}
#endif
