/*
 * bench_plot.c - `bitnet-vk bench --plot FILE.svg`: tokens/s per test
 * (groups along x) and device run (one coloured bar each), with the
 * standard deviation as an error bar and, on every tg bar, the roofline:
 * the device's measured bandwidth divided by the bytes read per generated
 * token, the speed decode cannot pass. The y axis is logarithmic because a
 * CPU-based Vulkan driver and a GPU differ by orders of magnitude; every bar
 * stays visible. Plain SVG 1.1 text, no dependency.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "cli_output.h"
#include "tokenizer_utf8.h"

#define W 960.0
#define PLOT_H 300.0 /* height of the bars' area */
#define LEFT 80.0
#define RIGHT 24.0
#define TOP 56.0
#define MAX_SERIES 32
#define MAX_GROUPS 64

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2",
                                      "#edc948", "#9c755f", "#bab0ac", "#e15759", "#ff9da7"};
#define PALETTE_SIZE (int)(sizeof palette / sizeof palette[0])

/* Fill of series s: the palette, then hues a golden angle apart at two
 * lightnesses, so that no two of MAX_SERIES series share a colour and a
 * bar can always be matched to its legend entry. Written as #rrggbb, which
 * every SVG 1.1 renderer reads (hsl() is CSS 3). */
static void series_color(int s, char *buf, size_t len)
{
    if (s < PALETTE_SIZE) {
        snprintf(buf, len, "%s", palette[s]);
        return;
    }
    const int k = s - PALETTE_SIZE;
    const double h = fmod(k * 137.508 + 15.0, 360.0) / 60.0, sat = 0.55, light = k % 2 ? 0.62 : 0.42;
    const double c = (1.0 - fabs(2.0 * light - 1.0)) * sat, x = c * (1.0 - fabs(fmod(h, 2.0) - 1.0));
    const double m = light - c / 2.0;
    double rgb[3];
    switch ((int)h) { /* the sextant of the hue circle */
    case 0: rgb[0] = c, rgb[1] = x, rgb[2] = 0; break;
    case 1: rgb[0] = x, rgb[1] = c, rgb[2] = 0; break;
    case 2: rgb[0] = 0, rgb[1] = c, rgb[2] = x; break;
    case 3: rgb[0] = 0, rgb[1] = x, rgb[2] = c; break;
    case 4: rgb[0] = x, rgb[1] = 0, rgb[2] = c; break;
    default: rgb[0] = c, rgb[1] = 0, rgb[2] = x; break;
    }
    snprintf(buf, len, "#%02x%02x%02x", (unsigned)lround((rgb[0] + m) * 255.0), (unsigned)lround((rgb[1] + m) * 255.0),
             (unsigned)lround((rgb[2] + m) * 255.0));
}

/* Text content or an attribute value. A model's file name goes into the
 * title, and it may hold any bytes: the file says UTF-8 and XML 1.0 allows
 * no control characters but tab and newlines, so anything else becomes '?'
 * rather than a file a browser refuses to draw; so does a byte that does
 * not start a valid UTF-8 character (a stray or overlong byte, a
 * surrogate, a sequence cut short, as a file name truncated into a title
 * may be). */
static void xml_text(FILE *f, const char *text)
{
    const unsigned char *s = (const unsigned char *)text, *end = s + strlen(text);
    while (*s) {
        uint32_t cp;
        const int n = bn_utf8_decode(s, (size_t)(end - s), &cp);
        if (n == 0 || (*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r') || *s == 0x7F) {
            fputc('?', f);
            s++;
            continue;
        }
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fwrite(s, 1, (size_t)n, f);
        }
        s += n;
    }
}

/* The label of a bar's series: device, what it is, threads. */
static void series_label(const struct bench_result *r, char *out, size_t len)
{
    if (strcmp(r->device_kind, "cpu") == 0)
        snprintf(out, len, "%s %s, %d thread%s", r->device, r->kernels, r->threads, r->threads == 1 ? "" : "s");
    else if (strstr(r->device_kind, r->device)) snprintf(out, len, "%s", r->device_kind);
    else snprintf(out, len, "%s: %s", r->device, r->device_kind);
}

/* A bar's value label: whole numbers from 100 up, three digits below. */
static void value_label(double v, char *out, size_t len)
{
    if (v >= 100) snprintf(out, len, "%.0f", v);
    else snprintf(out, len, "%.3g", v);
}

static double roofline_tps(const struct bench_result *r)
{
    return r->decode && r->bandwidth_gbps > 0 && r->bytes_per_token > 0 ? r->bandwidth_gbps * 1e9 / r->bytes_per_token
                                                                         : 0.0;
}

int bench_write_svg(struct cli_output *out, const struct bench_result *r, int n, const char *title)
{
    char series[MAX_SERIES][200], groups[MAX_GROUPS][24];
    int n_series = 0, n_groups = 0;
    int *s_of = malloc((size_t)(n > 0 ? n : 1) * sizeof *s_of), *g_of = malloc((size_t)(n > 0 ? n : 1) * sizeof *g_of);
    if (!s_of || !g_of) {
        free(s_of);
        free(g_of);
        return cli_fail(3, "--plot: out of memory");
    }
    int n_left = 0; /* results past the series or test limits: said, not drawn */
    double lo = INFINITY, hi = 0;
    for (int i = 0; i < n; i++) {
        char label[200];
        series_label(&r[i], label, sizeof label);
        int s = 0;
        while (s < n_series && strcmp(series[s], label) != 0) s++;
        if (s == n_series && n_series < MAX_SERIES) snprintf(series[n_series++], sizeof series[0], "%s", label);
        int g = 0;
        while (g < n_groups && strcmp(groups[g], r[i].test) != 0) g++;
        if (g == n_groups && n_groups < MAX_GROUPS) snprintf(groups[n_groups++], sizeof groups[0], "%s", r[i].test);
        s_of[i] = s < n_series ? s : -1;
        g_of[i] = g < n_groups ? g : -1;
        if (s_of[i] < 0 || g_of[i] < 0) {
            n_left++;
            g_of[i] = -1;
            continue;
        }
        if (r[i].mean > 0 && r[i].mean < lo) lo = r[i].mean;
        const double top = fmax(r[i].mean + r[i].stddev, roofline_tps(&r[i]));
        if (top > hi) hi = top;
    }
    int rc = 0;
    if (!(hi > 0)) {
        rc = cli_fail(3, "--plot: no results to draw");
        goto done;
    }
    const double y0 = pow(10.0, floor(log10(lo * 0.5))), y1 = pow(10.0, ceil(log10(hi * 1.2)));
    /* below the bars: the test names, then one legend line per series and the roofline */
    const double ph = PLOT_H, pw = W - LEFT - RIGHT, H = TOP + ph + 40 + 16.0 * (n_series + 1) + 8;
#define YPOS(v) (TOP + ph * (1.0 - (log10(fmax(v, y0)) - log10(y0)) / (log10(y1) - log10(y0))))

    FILE *f = out->f;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, H);
    fprintf(f, "<text x=\"%.1f\" y=\"24\" font-size=\"15\" font-weight=\"bold\">", LEFT);
    xml_text(f, title);
    fprintf(f, "</text>\n<text x=\"%.1f\" y=\"42\" fill=\"#555555\">tokens/s (log scale), mean and standard "
               "deviation; dashed: roofline = measured bandwidth / bytes per generated token</text>\n", LEFT);
    /* decades of the log axis */
    for (double v = y0; v <= y1 * 1.0001; v *= 10.0) {
        const double y = YPOS(v);
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n", LEFT, y,
                W - RIGHT, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", LEFT - 6, y + 4, v);
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>\n", LEFT, TOP, LEFT, TOP + ph);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>\n", LEFT, TOP + ph,
            W - RIGHT, TOP + ph);

    const double gw = pw / n_groups;
    for (int g = 0; g < n_groups; g++) {
        int in_group = 0;
        for (int i = 0; i < n; i++) in_group += g_of[i] == g;
        const double bw = fmin(60.0, (gw * 0.8) / (in_group ? in_group : 1));
        double x = LEFT + g * gw + (gw - bw * in_group) / 2;
        for (int i = 0; i < n; i++) {
            if (g_of[i] != g) continue;
            const struct bench_result *b = &r[i];
            char color[32];
            series_color(s_of[i], color, sizeof color);
            const double yt = YPOS(b->mean), yb = TOP + ph;
            fprintf(f, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                       "<title>", x + 2, yt, bw - 4, yb - yt, color);
            xml_text(f, series[s_of[i]]);
            fprintf(f, " %s: %.2f ± %.2f t/s</title></rect>\n", b->test, b->mean, b->stddev);
            const double xc = x + bw / 2;
            if (b->stddev > 0)
                fprintf(f, "<line class=\"err\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#222222\"/>\n",
                        xc, YPOS(b->mean - b->stddev), xc, YPOS(b->mean + b->stddev));
            char val[32];
            value_label(b->mean, val, sizeof val);
            const double roof = roofline_tps(b);
            /* A roofline just above the bar would strike through its value:
             * then the value goes above the roofline. */
            double y_val = YPOS(b->mean + b->stddev) - 4;
            if (roof > 0 && YPOS(roof) > y_val - 12 && YPOS(roof) < y_val + 3) y_val = YPOS(roof) - 4;
            /* Narrow bars (many series) get a smaller value, so that
             * neighbours' values do not run into each other: a digit of
             * sans-serif is about 0.6 em wide. */
            const double font = fmax(6.0, fmin(10.0, (bw - 2.0) / (0.6 * (double)strlen(val))));
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%.1f\">%s</text>\n", xc, y_val,
                    font, val);
            if (roof > 0)
                fprintf(f, "<line class=\"roofline\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
                           "stroke-width=\"2\" stroke-dasharray=\"5,3\"><title>roofline %.1f t/s (%.1f GB/s / %.1f MB "
                           "per token)</title></line>\n",
                        x, YPOS(roof), x + bw, YPOS(roof), roof, b->bandwidth_gbps, b->bytes_per_token / 1e6);
            x += bw;
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-weight=\"bold\">%s</text>\n",
                LEFT + g * gw + gw / 2, TOP + ph + 18, groups[g]);
    }
    /* legend: one line per series, then the roofline mark */
    double ly = TOP + ph + 40;
    for (int s = 0; s < n_series; s++, ly += 16) {
        char color[32];
        series_color(s, color, sizeof color);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", LEFT, ly - 10,
                color);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", LEFT + 18, ly);
        xml_text(f, series[s]);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" stroke-width=\"2\" "
               "stroke-dasharray=\"5,3\"/>\n<text x=\"%.1f\" y=\"%.1f\">roofline (tg)</text>\n",
            LEFT, ly - 4, LEFT + 12, ly - 4, LEFT + 18, ly);
    fprintf(f, "</svg>\n");
#undef YPOS
    rc = cli_output_commit(out);
    if (rc == 0 && n_left)
        fprintf(stderr, "bitnet-vk: warning: --plot: %d of %d results not drawn (at most %d device and thread "
                        "series, %d tests)\n", n_left, n, MAX_SERIES, MAX_GROUPS);
done:
    cli_output_abort(out);
    free(s_of);
    free(g_of);
    return rc;
}
