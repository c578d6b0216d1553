/*
 * bench_output.c - the results of `bitnet-vk bench` as a markdown table
 * (a device's rows printed once its tests are done, with its peak memory),
 * JSON (one array of flat
 * objects, for scripts and tests) or CSV (a header line, then one line per
 * result), and the per-op profile table.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* "48.0" or "" when the value is not known. */
static const char *fmt_or_blank(char *buf, size_t len, const char *fmt, double v)
{
    if (v > 0) snprintf(buf, len, fmt, v);
    else buf[0] = '\0';
    return buf;
}

void bench_print_table_header(FILE *f)
{
    fprintf(f, "| %-10s | %-24s | %-15s | %7s | %-6s | %21s | %7s | %7s | %7s | %8s | %6s | %8s | %8s | %-9s |\n",
            "device", "backend", "kernels", "threads", "test", "t/s", "MB/tok", "GB/s", "bw GB/s", "% of bw",
            "load s", "RSS MiB", "dev MiB", "check");
    fprintf(f, "| %-10s | %-24s | %-15s | %7s | %-6s | %21s | %7s | %7s | %7s | %8s | %6s | %8s | %8s | %-9s |\n",
            "---", "---", "---", "---:", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---");
}

void bench_print_table_row(FILE *f, const struct bench_result *r)
{
    char mb[16], gb[16], bw[16], pct[16], dev[16];
    fprintf(f, "| %-10s | %-24s | %-15s | %7d | %-6s | %10.2f ± %8.2f | %7s | %7s | %7s | %8s | %6.2f | %8.0f | %8s | %-9s |\n",
            r->device, r->device_kind, r->kernels, r->threads, r->test, r->mean, r->stddev,
            fmt_or_blank(mb, sizeof mb, "%.1f", r->bytes_per_token / 1e6), fmt_or_blank(gb, sizeof gb, "%.1f", r->gbps),
            fmt_or_blank(bw, sizeof bw, "%.1f", r->bandwidth_gbps), fmt_or_blank(pct, sizeof pct, "%.0f%%", r->roofline_pct),
            r->load_s, r->peak_rss_mib, fmt_or_blank(dev, sizeof dev, "%.0f", r->device_mib), r->validation);
}

/* A JSON string: the names we write are ours or a driver's, but quote
 * whatever could break the document anyway. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", (unsigned)*s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

void bench_print_json(FILE *f, const struct bench_result *r, int n)
{
    fprintf(f, "[\n");
    for (int i = 0; i < n; i++) {
        const struct bench_result *x = &r[i];
        fprintf(f, "  {\"device\": ");
        json_string(f, x->device);
        fprintf(f, ", \"device_name\": ");
        json_string(f, x->device_name);
        fprintf(f, ", \"backend\": ");
        json_string(f, x->device_kind);
        fprintf(f, ", \"kernels\": ");
        json_string(f, x->kernels);
        fprintf(f, ", \"test\": ");
        json_string(f, x->test);
        fprintf(f,
                ", \"n_tokens\": %u, \"reps\": %d, \"tokens_per_s\": %.3f, \"stddev\": %.3f, \"median\": %.3f, "
                "\"bytes_per_token\": %.0f, "
                "\"gbps\": %.3f, \"bandwidth_gbps\": %.3f, \"roofline_pct\": %.2f, \"load_s\": %.3f, "
                "\"peak_rss_mib\": %.1f, \"device_mib\": %.1f, \"validation\": ",
                x->n_tokens, x->reps, x->mean, x->stddev, x->median, x->bytes_per_token, x->gbps, x->bandwidth_gbps,
                x->roofline_pct, x->load_s, x->peak_rss_mib, x->device_mib);
        json_string(f, x->validation);
        fprintf(f, ", \"nmse\": %.3g, \"threads\": %d", x->nmse, x->threads);
        /* every repetition, as llama-bench writes them: time and rate */
        fprintf(f, ", \"samples_ns\": [");
        for (int k = 0; x->samples && k < x->reps; k++)
            fprintf(f, "%s%.0f", k ? ", " : "", x->samples[k] > 0 ? (double)x->n_tokens / x->samples[k] * 1e9 : 0.0);
        fprintf(f, "], \"samples_ts\": [");
        for (int k = 0; x->samples && k < x->reps; k++) fprintf(f, "%s%.3f", k ? ", " : "", x->samples[k]);
        fprintf(f, "], \"bandwidth_samples_gbps\": [");
        for (int k = 0; x->bw_samples && k < x->n_bw_samples; k++)
            fprintf(f, "%s%.3f", k ? ", " : "", x->bw_samples[k]);
        fprintf(f, "]}%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "]\n");
}

/* A CSV field: quoted, with quotes doubled (RFC 4180). */
static void csv_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void bench_print_csv(FILE *f, const struct bench_result *r, int n)
{
    fprintf(f, "device,device_name,backend,kernels,threads,test,n_tokens,reps,tokens_per_s,stddev,median,"
               "bytes_per_token,gbps,bandwidth_gbps,roofline_pct,load_s,peak_rss_mib,device_mib,validation,nmse\n");
    for (int i = 0; i < n; i++) {
        const struct bench_result *x = &r[i];
        const char *str[] = {x->device, x->device_name, x->device_kind, x->kernels};
        for (int k = 0; k < 4; k++) {
            csv_string(f, str[k]);
            fputc(',', f);
        }
        fprintf(f, "%d,", x->threads);
        csv_string(f, x->test);
        fprintf(f, ",%u,%d,%.3f,%.3f,%.3f,%.0f,%.3f,%.3f,%.2f,%.3f,%.1f,%.1f,", x->n_tokens, x->reps, x->mean,
                x->stddev, x->median, x->bytes_per_token, x->gbps, x->bandwidth_gbps, x->roofline_pct, x->load_s, x->peak_rss_mib,
                x->device_mib);
        csv_string(f, x->validation);
        fprintf(f, ",%.3g\n", x->nmse);
    }
}

static int by_time_desc(const void *a, const void *b)
{
    const double x = ((const struct bench_op *)a)->seconds, y = ((const struct bench_op *)b)->seconds;
    return (x < y) - (x > y);
}

double bench_print_profile(FILE *f, const char *title, struct bench_op *ops, int n_ops, double forward_s)
{
    double total = 0;
    for (int i = 0; i < n_ops; i++) total += ops[i].seconds;
    qsort(ops, (size_t)n_ops, sizeof *ops, by_time_desc); /* the slowest first: visible at a glance */
    fprintf(f, "profile %s\n", title);
    fprintf(f, "  | %-28s | %8s | %10s | %6s | %7s |\n", "op", "calls", "total ms", "share", "GB/s");
    fprintf(f, "  | %-28s | %8s | %10s | %6s | %7s |\n", "---", "---:", "---:", "---:", "---:");
    for (int i = 0; i < n_ops; i++) {
        const struct bench_op *o = &ops[i];
        if (!o->calls) continue;
        char gb[16] = "";
        if (o->bytes > 0 && o->seconds > 0) snprintf(gb, sizeof gb, "%.1f", o->bytes / o->seconds / 1e9);
        fprintf(f, "  | %-28s | %8llu | %10.2f | %5.1f%% | %7s |\n", o->name, (unsigned long long)o->calls,
                o->seconds * 1e3, total > 0 ? 100.0 * o->seconds / total : 0.0, gb);
    }
    const double pct = forward_s > 0 ? 100.0 * total / forward_s : 0.0;
    fprintf(f, "  ops %.1f ms of %.1f ms forward (%.1f%%)\n", total * 1e3, forward_s * 1e3, pct);
    return pct;
}
