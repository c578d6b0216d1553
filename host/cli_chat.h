/*
 * cli_chat.h - `generate --chat`: the interactive conversation loop.
 */
#ifndef BN_CLI_CHAT_H
#define BN_CLI_CHAT_H

#include <stdbool.h>

#include "engine.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

struct cli_chat_opts {
    const struct bn_model *model; /* its tokenizer.chat_template and architecture */
    bn_engine *engine;            /* fresh (position 0); keeps the conversation */
    const bn_tokenizer *tok;
    struct bn_sampler_params sp;
    const char *system;       /* --system TEXT, or NULL                         */
    const char *format;       /* --chat-template NAME, or NULL: from the model  */
    long n_predict;           /* tokens per answer; -1: until it ends           */
    bool verbose_prompt;      /* prompt and answer ids on stderr, per turn      */
    bool special;             /* print control tokens in answers as their text  */
    double t_load;            /* seconds, for the summary line                  */
    const char *backend_name;
};

/* Reads user lines from stdin until end of input (Ctrl-D), answering each
 * with streamed text; the KV cache holds the whole conversation, so each
 * turn evaluates only its own new tokens. Returns an exit code. */
int cli_chat(const struct cli_chat_opts *o);

#endif
