#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "model.h"

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
    bn_model_close(m);
    return 0;
}
