/*
 * bitnet-vk: run ternary (BitNet b1.58) language models from GGUF files.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define BN_VERSION "0.1.0"

static void print_usage(FILE *f)
{
    fprintf(f,
            "bitnet-vk %s - ternary (BitNet b1.58) inference\n"
            "\n"
            "usage: bitnet-vk COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  generate -m MODEL (-p TEXT | -f FILE | --tokens \"1 2 3\") [-n N] [options]\n"
            "  logits   -m MODEL --tokens \"1 2 3\" -o OUT.f32 [--all]\n"
            "  info     -m MODEL\n"
            "  bench    -m MODEL [-p 128] [-n 32] [-r 5] [-t N] [--device cpu] [--head f16|q8] [--json]\n"
            "  perplexity -m MODEL -f TEXT [-c N] [--device D]\n"
            "  tokenize -m MODEL (-p TEXT | -f FILE) [--no-bos] [--no-special]\n"
            "  devices  (the Vulkan devices and whether they are usable)\n"
            "\n"
            "Run 'bitnet-vk COMMAND --help' for the options of a command.\n"
            "Exit status: 0 ok, 1 usage error, 2 bad model file, 3 device or runtime failure.\n",
            BN_VERSION);
}

static int run_command(int argc, char **argv)
{
    const char *cmd = argv[1];
    if (strcmp(cmd, "generate") == 0) return cli_generate(argc - 1, argv + 1);
    if (strcmp(cmd, "logits") == 0) return cli_logits(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0) return cli_info(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return cli_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "perplexity") == 0) return cli_perplexity(argc - 1, argv + 1);
    if (strcmp(cmd, "tokenize") == 0) return cli_tokenize(argc - 1, argv + 1);
    if (strcmp(cmd, "devices") == 0) return cli_devices(argc - 1, argv + 1);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("bitnet-vk %s\n", BN_VERSION);
        return 0;
    }
    return cli_fail(1, "unknown command '%s' (try --help)", cmd);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 1;
    }
    int rc = run_command(argc, argv);
    /* Output that never arrived is a failure, whatever the command: a
     * command that already failed has said why. */
    if (!cli_stdout_flush() && rc == 0) rc = cli_fail(3, "cannot write to standard output");
    return rc;
}
