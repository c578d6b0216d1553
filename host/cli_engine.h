/*
 * cli_engine.h - the backend and the engine a subcommand runs on, opened
 * together, so every subcommand treats --device auto the same way.
 */
#ifndef BN_CLI_ENGINE_H
#define BN_CLI_ENGINE_H

#include <stddef.h>

#include "backend.h"
#include "engine.h"

/* Opens the backend for `device` (NULL: auto; see bn_backend_select) and an
 * engine with params `ep` on it. Under auto, an engine that does not fit the
 * Vulkan device chosen (its cache and activations, after the weights did) is
 * one more reason to run on the CPU: the Vulkan backend is closed first, so
 * its memory is free again, and the reason is written to note like the
 * other auto fallbacks. On failure nothing is left open (*be zeroed, *e
 * NULL) and err holds the reason. */
enum bn_status cli_open_engine(const char *device, const struct bn_model *m, const struct bn_backend_cpu_opts *cpu,
                               const struct bn_engine_params *ep, struct bn_backend *be, bn_engine **e, char *note,
                               size_t note_len, char *err, size_t errlen);

/* A warning on stderr when the engine's context is longer than the one
 * the model was trained with (positions past it are untested ground). */
void cli_warn_context(const struct bn_model *m, const bn_engine *e);

#endif
