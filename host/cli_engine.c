#include <stdio.h>
#include <string.h>

#include "cli_engine.h"
#include "model.h"
#include "status.h"

enum bn_status cli_open_engine(const char *device, const struct bn_model *m, const struct bn_backend_cpu_opts *cpu,
                               const struct bn_engine_params *ep, struct bn_backend *be, bn_engine **e, char *note,
                               size_t note_len, char *err, size_t errlen)
{
    *e = NULL;
    enum bn_status st = bn_backend_select(device, m, cpu, be, note, note_len, err, errlen);
    if (st != BN_OK) return st;
    st = bn_engine_create(m, be, ep, e, err, errlen);
    const bool auto_pref = device == NULL || strcmp(device, "auto") == 0;
    if (st != BN_OK && auto_pref && strcmp(be->iface.name, "cpu") != 0) {
        be->iface.destroy(be->ctx);
        memset(be, 0, sizeof *be);
        bn_errf(note, note_len, BN_OK, "--device auto: %s; running on the CPU", err);
        if ((st = bn_backend_select("cpu", m, cpu, be, NULL, 0, err, errlen)) != BN_OK) return st;
        st = bn_engine_create(m, be, ep, e, err, errlen);
    }
    if (st != BN_OK) {
        be->iface.destroy(be->ctx);
        memset(be, 0, sizeof *be);
        *e = NULL;
    }
    return st;
}

void cli_warn_context(const struct bn_model *m, const bn_engine *e)
{
    const uint32_t n_ctx = bn_engine_n_ctx(e), n_train = m->hp.n_ctx_train;
    if (n_train > 0 && n_ctx > n_train)
        fprintf(stderr,
                "bitnet-vk: warning: the context of %u tokens is longer than the model was trained on (%u): text past "
                "position %u may degrade\n",
                n_ctx, n_train, n_train);
}
