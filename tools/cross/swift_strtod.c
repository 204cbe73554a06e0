/*
 * swift_strtod.c -- the one C function Embedded Swift leaves to its platform that the
 * engine reaches: Swift's Double(String) (the run layer parses --lr and friends) calls
 * _swift_stdlib_strtod_clocale, which the Swift runtime defines on the host and the
 * Embedded stdlib does not. Linked into the board program and archived into libpdmm.a
 * by tools/cross/build.sh (one copy).
 *
 * strtod in the "C" locale (neither program calls setlocale). Swift itself rejects
 * leading whitespace and empty text and succeeds only when the returned end is the
 * text's end. ERANGE is not an error: Double("1e999") is +infinity, Double("1e-999") is 0.
 */
#include <errno.h>
#include <stdlib.h>

const char *_swift_stdlib_strtod_clocale(const char *nptr, double *out);

const char *_swift_stdlib_strtod_clocale(const char *nptr, double *out) {
    char *end = NULL;
    errno = 0;
    *out = strtod(nptr, &end);
    return end;
}
