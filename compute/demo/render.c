/*
 * render.c: the compute market's demo job, a small ray tracer that renders ONE tile
 * of an image per run (one work unit).
 *
 * Input (stdin), one line of ASCII:
 *
 *     PMRT1 <width> <height> <x> <y> <tile width> <tile height> <samples>\n
 *
 * Output (stdout): the tile's pixels as raw RGB, 3 bytes a pixel, rows top to bottom.
 * Exit status: 0 when the tile was written, 2 for bad input, 3 when memory runs out.
 *
 * The scene: spheres and a checkered ground plane, lit by a square area light (soft
 * shadows) and a sky; diffuse (Lambert) and specular (Phong) shading and mirror
 * reflections. Every pixel takes <samples> jittered samples.
 *
 * Determinism is the point: the same tile must come out byte for byte the same on
 * every machine, in WebAssembly and natively, so that two devices agree and a
 * customer can check a result.
 *   - The only randomness is a seeded integer generator (splitmix64), seeded per
 *     pixel from its coordinates, so a tile never depends on which other tiles were
 *     rendered, nor in what order.
 *   - Only + - * / and sqrt on doubles, which IEEE 754 rounds exactly: no libm
 *     transcendental functions (pow, sin, exp differ between C libraries). Powers
 *     are integer powers by repeated squaring; the camera's field of view is a
 *     constant tangent.
 *   - The build turns off floating-point contraction (no fused multiply-add) and
 *     fast math, so the compiler keeps every operation as written.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_SIDE 4096
#define MAX_TILE_PIXELS (1024 * 1024)
#define MAX_SAMPLES 1024
#define MAX_DEPTH 4
#define EPSILON 1e-6
#define FAR 1e30

typedef struct {
    double x, y, z;
} vec;

static vec v(double x, double y, double z) {
    vec r = {x, y, z};
    return r;
}
static vec add(vec a, vec b) { return v(a.x + b.x, a.y + b.y, a.z + b.z); }
static vec sub(vec a, vec b) { return v(a.x - b.x, a.y - b.y, a.z - b.z); }
static vec mul(vec a, double s) { return v(a.x * s, a.y * s, a.z * s); }
static vec hadamard(vec a, vec b) { return v(a.x * b.x, a.y * b.y, a.z * b.z); }
static double dot(vec a, vec b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
static vec cross(vec a, vec b) {
    return v(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
static vec normalize(vec a) { return mul(a, 1.0 / __builtin_sqrt(dot(a, a))); }

/* x to the integer power n, by repeated squaring: the same operations everywhere. */
static double power(double x, unsigned n) {
    double result = 1.0;
    while (n) {
        if (n & 1u) result *= x;
        x *= x;
        n >>= 1;
    }
    return result;
}

/* splitmix64 (Steele, Lea, Flood): a tiny, well-mixed, seedable integer generator. */
static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A double in [0, 1) from the top 53 bits: exact, no rounding. */
static double uniform(uint64_t *state) {
    return (double)(next_random(state) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct {
    vec centre;
    double radius;
    vec colour;
    double diffuse, specular, reflect;
    unsigned shininess;
} sphere;

static const sphere SPHERES[] = {
    {{0.0, 1.0, 0.0}, 1.0, {0.90, 0.25, 0.20}, 0.85, 0.60, 0.15, 48},
    {{-2.2, 0.75, 1.1}, 0.75, {0.20, 0.55, 0.95}, 0.80, 0.80, 0.30, 96},
    {{2.1, 0.6, 0.9}, 0.6, {0.95, 0.85, 0.30}, 0.90, 0.30, 0.05, 16},
    {{0.9, 0.35, 2.2}, 0.35, {0.30, 0.85, 0.40}, 0.85, 0.50, 0.10, 32},
    {{-0.6, 2.6, -2.4}, 1.3, {0.92, 0.92, 0.95}, 0.10, 1.00, 0.85, 128},
};
#define SPHERE_COUNT (sizeof SPHERES / sizeof SPHERES[0])

/* The ground: the plane y = 0, a checkerboard. */
static const vec GROUND_A = {0.85, 0.85, 0.82};
static const vec GROUND_B = {0.18, 0.18, 0.22};
#define GROUND_REFLECT 0.12

/* A square area light, parallel to the ground: soft shadows from jittered points. */
static const vec LIGHT_CORNER = {-3.0, 7.0, 1.0};
#define LIGHT_SIDE 2.0
static const vec LIGHT_COLOUR = {1.0, 0.96, 0.90};
static const vec AMBIENT = {0.10, 0.11, 0.13};

/* The camera: position, target, and tan(half the vertical field of view): tan(25°). */
static const vec EYE = {0.0, 2.0, 7.5};
static const vec TARGET = {0.0, 0.9, 0.0};
#define TAN_HALF_FOV 0.46630765815499858

typedef struct {
    double t;
    vec point, normal, colour;
    double diffuse, specular, reflect;
    unsigned shininess;
} hit;

static int64_t floor_to_int(double value) {
    int64_t whole = (int64_t)value; /* truncates toward zero */
    return (value < (double)whole) ? whole - 1 : whole;
}

/* The nearest hit along origin + t * direction with t in (EPSILON, limit). */
static int intersect(vec origin, vec direction, double limit, hit *out) {
    int found = 0;
    double nearest = limit;
    size_t chosen = 0;
    int ground = 0;
    for (size_t i = 0; i < SPHERE_COUNT; i++) {
        vec oc = sub(origin, SPHERES[i].centre);
        double b = dot(oc, direction);
        double c = dot(oc, oc) - SPHERES[i].radius * SPHERES[i].radius;
        double discriminant = b * b - c;
        if (discriminant < 0.0) continue;
        double root = __builtin_sqrt(discriminant);
        double t = -b - root;
        if (t <= EPSILON) t = -b + root;
        if (t > EPSILON && t < nearest) {
            nearest = t;
            chosen = i;
            found = 1;
            ground = 0;
        }
    }
    if (direction.y < -EPSILON) {
        double t = -origin.y / direction.y;
        if (t > EPSILON && t < nearest) {
            nearest = t;
            found = 1;
            ground = 1;
        }
    }
    if (!found || out == NULL) return found;
    out->t = nearest;
    out->point = add(origin, mul(direction, nearest));
    if (ground) {
        out->normal = v(0.0, 1.0, 0.0);
        int64_t cell = floor_to_int(out->point.x) + floor_to_int(out->point.z);
        out->colour = (cell & 1) ? GROUND_B : GROUND_A;
        out->diffuse = 0.9;
        out->specular = 0.15;
        out->reflect = GROUND_REFLECT;
        out->shininess = 8;
    } else {
        const sphere *s = &SPHERES[chosen];
        out->normal = mul(sub(out->point, s->centre), 1.0 / s->radius);
        out->colour = s->colour;
        out->diffuse = s->diffuse;
        out->specular = s->specular;
        out->reflect = s->reflect;
        out->shininess = s->shininess;
    }
    return 1;
}

static vec sky(vec direction) {
    double up = 0.5 * (direction.y + 1.0);
    return add(mul(v(1.0, 1.0, 1.0), 1.0 - up), mul(v(0.45, 0.65, 1.0), up));
}

static vec trace(vec origin, vec direction, int depth, uint64_t *random) {
    hit h;
    if (!intersect(origin, direction, FAR, &h)) return sky(direction);
    vec colour = hadamard(AMBIENT, h.colour);

    /* One jittered point on the area light per sample: soft shadows on average. */
    vec light_point = add(LIGHT_CORNER, v(LIGHT_SIDE * uniform(random), 0.0,
                                          LIGHT_SIDE * uniform(random)));
    vec to_light = sub(light_point, h.point);
    double distance = __builtin_sqrt(dot(to_light, to_light));
    vec l = mul(to_light, 1.0 / distance);
    double lambert = dot(h.normal, l);
    if (lambert > 0.0) {
        vec shadow_origin = add(h.point, mul(h.normal, 1e-4));
        if (!intersect(shadow_origin, l, distance, NULL)) {
            vec diffuse = mul(hadamard(h.colour, LIGHT_COLOUR), h.diffuse * lambert);
            vec reflected_light = sub(mul(h.normal, 2.0 * lambert), l);
            double facing = -dot(reflected_light, direction);
            double highlight = facing > 0.0 ? h.specular * power(facing, h.shininess) : 0.0;
            colour = add(colour, add(diffuse, mul(LIGHT_COLOUR, highlight)));
        }
    }
    if (h.reflect > 0.0 && depth < MAX_DEPTH) {
        vec mirrored = sub(direction, mul(h.normal, 2.0 * dot(direction, h.normal)));
        vec bounce = trace(add(h.point, mul(h.normal, 1e-4)), normalize(mirrored), depth + 1,
                           random);
        colour = add(mul(colour, 1.0 - h.reflect), mul(bounce, h.reflect));
    }
    return colour;
}

static unsigned char to_byte(double linear) {
    if (linear <= 0.0) return 0;
    if (linear >= 1.0) return 255;
    return (unsigned char)(__builtin_sqrt(linear) * 255.0 + 0.5); /* gamma 2 */
}

/* A non-negative decimal integer at *text, then a single space or newline. */
static int read_number(const char **text, long maximum, long *out) {
    const char *p = *text;
    long value = 0;
    if (*p < '0' || *p > '9') return 0;
    if (*p == '0' && p[1] >= '0' && p[1] <= '9') return 0; /* no leading zeros */
    while (*p >= '0' && *p <= '9') {
        value = value * 10 + (*p - '0');
        if (value > maximum) return 0;
        p++;
    }
    if (*p != ' ' && *p != '\n') return 0;
    *text = p + 1;
    *out = value;
    return 1;
}

static int bad_input(const char *why) {
    fprintf(stderr, "render: bad input: %s\n", why);
    fprintf(stderr, "expected: PMRT1 <width> <height> <x> <y> <tile width> <tile height> "
                    "<samples>\\n\n");
    return 2;
}

int main(void) {
    char line[128];
    size_t length = fread(line, 1, sizeof line - 1, stdin);
    line[length] = '\0';
    const char *p = line;
    static const char magic[] = "PMRT1 ";
    for (size_t i = 0; i < sizeof magic - 1; i++) {
        if (p[i] != magic[i]) return bad_input("the line must start with PMRT1");
    }
    p += sizeof magic - 1;
    long width, height, x0, y0, tile_width, tile_height, samples;
    if (!read_number(&p, MAX_SIDE, &width) || !read_number(&p, MAX_SIDE, &height) ||
        !read_number(&p, MAX_SIDE, &x0) || !read_number(&p, MAX_SIDE, &y0) ||
        !read_number(&p, MAX_SIDE, &tile_width) || !read_number(&p, MAX_SIDE, &tile_height) ||
        !read_number(&p, MAX_SAMPLES, &samples))
        return bad_input("seven decimal numbers, each within its limit");
    if (p[-1] != '\n' || (size_t)(p - line) != length)
        return bad_input("one line, ending in a newline, and nothing after it");
    if (width < 1 || height < 1 || tile_width < 1 || tile_height < 1 || samples < 1)
        return bad_input("sizes and samples are at least 1");
    if (x0 + tile_width > width || y0 + tile_height > height)
        return bad_input("the tile must lie inside the image");
    if (tile_width * tile_height > MAX_TILE_PIXELS) return bad_input("the tile is too large");

    size_t size = (size_t)(tile_width * tile_height * 3);
    unsigned char *pixels = malloc(size);
    if (pixels == NULL) {
        fprintf(stderr, "render: out of memory for a %zu-byte tile\n", size);
        return 3;
    }

    vec forward = normalize(sub(TARGET, EYE));
    vec right = normalize(cross(forward, v(0.0, 1.0, 0.0)));
    vec up = cross(right, forward);
    double aspect = (double)width / (double)height;

    unsigned char *out = pixels;
    for (long y = y0; y < y0 + tile_height; y++) {
        for (long x = x0; x < x0 + tile_width; x++) {
            /* The pixel's own seed: the same whichever tile, and in whatever order. */
            uint64_t random = ((uint64_t)y << 32) ^ (uint64_t)x ^ 0x5045455242524B31ull;
            next_random(&random);
            vec sum = v(0.0, 0.0, 0.0);
            for (long s = 0; s < samples; s++) {
                double px = ((double)x + uniform(&random)) / (double)width;
                double py = ((double)y + uniform(&random)) / (double)height;
                double sx = (2.0 * px - 1.0) * TAN_HALF_FOV * aspect;
                double sy = (1.0 - 2.0 * py) * TAN_HALF_FOV;
                vec direction = normalize(add(forward, add(mul(right, sx), mul(up, sy))));
                sum = add(sum, trace(EYE, direction, 0, &random));
            }
            vec colour = mul(sum, 1.0 / (double)samples);
            *out++ = to_byte(colour.x);
            *out++ = to_byte(colour.y);
            *out++ = to_byte(colour.z);
        }
    }
    size_t written = fwrite(pixels, 1, size, stdout);
    free(pixels);
    if (written != size || fflush(stdout) != 0) {
        fprintf(stderr, "render: could not write the tile\n");
        return 4;
    }
    return 0;
}
