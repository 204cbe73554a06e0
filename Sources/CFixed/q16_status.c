/* q16_status.c -- human-readable status strings. */
#include "q16.h"

const char *q16_status_string(q16_status s) {
    switch (s) {
    case Q16_OK: return "ok";
    case Q16_ERR_NULL: return "null pointer";
    case Q16_ERR_SIZE: return "invalid size";
    case Q16_ERR_OVERLAP: return "output overlaps input";
    case Q16_ERR_NAN: return "not a number";
    case Q16_ERR_DOMAIN: return "argument outside domain";
    case Q16_ERR_DIV_ZERO: return "division by zero";
    case Q16_ERR_LABEL: return "label out of range";
    }
    return "unknown status";
}
