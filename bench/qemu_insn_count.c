/*
 * A qemu-user TCG plugin: counts the guest instructions a process executes, and among them
 * the floating-point multiply-adds, vector (FMLA on .4s: 4 lanes) and scalar (FMADD, FMLA on
 * one lane of .s), so that a kernel's instruction count and its share of 4-lane FMAs can be
 * compared without an ARM machine. Counters are inline (exact on one thread). Built and run by
 * bench/insn_count.sh.
 */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t all, vector_fma, scalar_fma;

static void report(qemu_plugin_id_t id, void *p)
{
    char line[256];
    snprintf(line, sizeof line,
             "instructions %" PRIu64 " vector_fma %" PRIu64 " scalar_fma %" PRIu64 "\n",
             all, vector_fma, scalar_fma);
    qemu_plugin_outs(line);
}

static void on_translation(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &all, 1);
        char *text = qemu_plugin_insn_disas(insn);
        uint64_t *counter = NULL;
        if (strncmp(text, "fmla", 4) == 0) {
            counter = strstr(text, ".4s") ? &vector_fma : &scalar_fma;
        } else if (strncmp(text, "fmadd", 5) == 0) {
            counter = &scalar_fma;
        }
        if (counter) {
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, counter, 1);
        }
        g_free(text);
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translation);
    qemu_plugin_register_atexit_cb(id, report, NULL);
    return 0;
}
