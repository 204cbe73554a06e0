/* pdmm_digits.h -- the built-in data set, compiled in (read-only data: flash on a board).
 * 1797 samples of 8x8 handwritten digits, 64 features with values 0..16, labels 0..9.
 * Source: UCI "Optical Recognition of Handwritten Digits" (test set as shipped by
 * scikit-learn 1.9.1), CC BY 4.0. Regenerate with tools/gen_digits.py. */
#ifndef PDMM_DIGITS_H
#define PDMM_DIGITS_H
#include <stdint.h>

#define PDMM_DIGITS_SAMPLES 1797
#define PDMM_DIGITS_FEATURES 64
#define PDMM_DIGITS_CLASSES 10

extern const uint8_t pdmm_digits_features[PDMM_DIGITS_SAMPLES * PDMM_DIGITS_FEATURES];
extern const uint8_t pdmm_digits_labels[PDMM_DIGITS_SAMPLES];

/* Pointer accessors (Swift imports fixed-size C arrays as tuples). */
static inline const uint8_t *pdmm_digits_features_ptr(void) { return pdmm_digits_features; }
static inline const uint8_t *pdmm_digits_labels_ptr(void) { return pdmm_digits_labels; }

#endif
