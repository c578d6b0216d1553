#include "cli_interrupt.h"

#include <signal.h>
#include <string.h>

/* Only a volatile sig_atomic_t may be written from a signal handler and
 * read safely outside it (C11 7.14.1.1). */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

void cli_interrupt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    /* SA_RESETHAND: the handler runs once, then SIGINT is back to its
     * default action, so a second Ctrl-C ends a run stuck in a long
     * forward pass. No SA_RESTART: getline() on stdin returns EINTR. */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
}

bool cli_interrupted(void)
{
    return interrupted != 0;
}
