/*
 * cli_interrupt.h - Ctrl-C (SIGINT) during generation: the first one asks
 * the generate and chat loops to stop at the next token, print their stats
 * line and exit 130 (128 + SIGINT, what a shell reports for a killed job);
 * a second one, while a long prompt is still being evaluated, ends the
 * process at once as SIGINT does by default.
 */
#ifndef BN_CLI_INTERRUPT_H
#define BN_CLI_INTERRUPT_H

#include <stdbool.h>

#define CLI_EXIT_INTERRUPTED 130

/* Installs the handler (once the model is loaded: before that, Ctrl-C
 * simply ends the process). Blocking reads (the chat's stdin) are not
 * restarted after it, so a chat waiting for a line stops too. */
void cli_interrupt_install(void);

/* Whether Ctrl-C was pressed since cli_interrupt_install(). */
bool cli_interrupted(void);

#endif
