#include <stddef.h>

/* Kahan summation: a sum of doubles with a running compensation term. */
double fastsum(const double *values, size_t n) {
    double sum = 0.0, compensation = 0.0;
    for (size_t i = 0; i < n; i++) {
        double y = values[i] - compensation;
        double t = sum + y;
        compensation = (t - sum) - y;
        sum = t;
    }
    return sum;
}
