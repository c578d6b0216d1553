#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "model.h"
#include "tokenizer.h"

/* The tokenizer line: what --tokens ids may be and how text is split. A
 * model whose tokenizer metadata is unusable still gets its other facts. */
static void print_vocabulary(const struct bn_model *m)
{
    char err[512];
    bn_tokenizer *tok = NULL;
    if (bn_tokenizer_create(m->gguf, &tok, err, sizeof err) != BN_OK) {
        printf("vocabulary:      %u tokens (no usable tokenizer: %s)\n", m->hp.n_vocab, err);
        return;
    }
    struct bn_gguf_str kind = {NULL, 0};
    bool found = false;
    if (bn_gguf_get_str_opt(m->gguf, "tokenizer.ggml.model", &kind, &found, err, sizeof err) != BN_OK) found = false;
    bool guessed = false;
    const char *pre = bn_tokenizer_pre_name(tok, &guessed);
    printf("vocabulary:      %u tokens, %.*s", bn_tokenizer_n_vocab(tok), found ? (int)kind.len : 1,
           found ? kind.data : "?");
    if (pre) printf(" (pre-tokenizer %s%s)", pre, guessed ? ", guessed" : "");
    printf(", bos %d, eos %d%s\n", (int)bn_tokenizer_bos(tok), (int)bn_tokenizer_eos(tok),
           bn_tokenizer_add_bos(tok) ? ", BOS added" : "");
    bn_tokenizer_destroy(tok);
}

int cli_info(int argc, char **argv)
{
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-m") == 0 || strcmp(argv[i], "--model") == 0) {
            if (!(model = cli_flag_value(argc, argv, &i))) return 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: bitnet-vk info -m MODEL\n");
            return 0;
        } else {
            return cli_fail(1, "info: unknown option '%s'", argv[i]);
        }
    }
    if (!model) return cli_fail(1, "info: -m MODEL is required");
    char err[512];
    struct bn_model *m;
    enum bn_status st = bn_model_open(model, &m, err, sizeof err);
    if (st != BN_OK) return cli_fail(bn_status_exit_code(st), "%s", err);
    char desc[2048];
    bn_model_describe(m, desc, sizeof desc);
    printf("model:           %s\n%s", model, desc);
    print_vocabulary(m);
    bn_model_close(m);
    return 0;
}
