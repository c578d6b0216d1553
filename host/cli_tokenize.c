/*
 * `tokenize`: text to token ids with a model's tokenizer, one line of ids.
 * Reads only the GGUF metadata, so vocabulary-only files work too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gguf.h"
#include "tokenizer.h"

static void print_tokenize_help(void)
{
    printf("usage: bitnet-vk tokenize -m MODEL (-p TEXT | -f FILE) [--no-bos] [--no-special]\n"
           "  prints the token ids of the text on one line, separated by spaces\n"
           "  -m, --model FILE   GGUF model, or a vocabulary-only GGUF\n"
           "  -p, --prompt TEXT  the text\n"
           "  -f, --file FILE    read the text from a file (bytes verbatim: newlines, tabs, any bytes)\n"
           "      --no-bos       do not add BOS (added when the vocabulary asks for it)\n"
           "      --no-special   control tokens written in the text (e.g. <|eot_id|>) stay plain text\n");
}

int cli_tokenize(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *file = NULL;
    bool no_bos = false, no_special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_tokenize_help();
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_flag_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_flag_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(file = cli_flag_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = true;
        } else if (!strcmp(a, "--no-special")) {
            no_special = true;
        } else {
            return cli_fail(1, "tokenize: unknown option '%s' (try --help)", a);
        }
    }
    if (!model) return cli_fail(1, "-m MODEL is required");
    if ((prompt != NULL) == (file != NULL)) return cli_fail(1, "tokenize: give exactly one of -p TEXT, -f FILE");

    char *text = NULL;
    size_t len = 0;
    int rc;
    if (file && (rc = cli_read_file(file, &text, &len)) != 0) return rc;
    if (prompt) len = strlen(prompt);

    char err[512];
    bn_gguf *g = NULL;
    bn_tokenizer *tk = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    enum bn_status st = bn_gguf_open(model, &g, err, sizeof err);
    if (st == BN_OK) st = bn_tokenizer_create(g, &tk, err, sizeof err);
    if (st == BN_OK) {
        bool bos = !no_bos && bn_tokenizer_add_bos(tk);
        st = bn_tokenizer_encode(tk, file ? text : prompt, len, bos, !no_special, &ids, &n, err, sizeof err);
    }
    if (st == BN_OK) {
        /* One buffered line; a failed write (closed pipe, full disk) is an error. */
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        putchar('\n');
        if (fflush(stdout) != 0 || ferror(stdout)) rc = cli_fail(3, "tokenize: cannot write the ids");
        else rc = 0;
    } else {
        rc = cli_fail(bn_status_exit_code(st), "%s", err);
    }
    free(ids);
    bn_tokenizer_destroy(tk);
    bn_gguf_close(g);
    free(text);
    return rc;
}
