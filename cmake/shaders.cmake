# Shaders of the Vulkan backend: every variant is compiled by glslc,
# validated by spirv-val, and embedded by bn-spv-embed as
#     const uint32_t <name>_spv[];  const size_t <name>_spv_len;  (bytes)
# in a generated C file; one generated header (bn_shaders.h) declares them
# all. One custom command per variant, with glslc's depfile, so editing a
# shader or an include under shaders/common rebuilds only what uses it.
# Included from the top-level CMakeLists.txt; does nothing without BN_VULKAN.
if(NOT BN_VULKAN)
  return()
endif()

find_program(BN_GLSLC glslc)
find_program(BN_SPIRV_VAL spirv-val)
if(NOT BN_GLSLC OR NOT BN_SPIRV_VAL)
  message(FATAL_ERROR "The Vulkan backend needs glslc and spirv-val (Debian: glslc spirv-tools; "
                      "tools/install-deps.sh installs them), or configure with -DBN_VULKAN=OFF")
endif()

# SPIR-V 1.3: runs on every Vulkan 1.1 device, the least the backend needs.
set(BN_SHADER_ENV vulkan1.1)
set(BN_SHADER_SRC ${CMAKE_SOURCE_DIR}/shaders)
set(BN_SHADER_OUT ${CMAKE_BINARY_DIR}/shaders)
file(MAKE_DIRECTORY ${BN_SHADER_OUT})

add_executable(bn-spv-embed ${CMAKE_SOURCE_DIR}/tools/spv_embed.c)

set(BN_SHADER_C)
set(BN_SHADER_DECLS)
# bn_shader(NAME SOURCE [-DDEFINE ...]): one variant of shaders/SOURCE.
function(bn_shader name source)
  set(spv ${BN_SHADER_OUT}/${name}.spv)
  set(c ${BN_SHADER_OUT}/${name}.c)
  # Compiled to a temporary name and renamed once spirv-val accepts it, so a
  # module that fails validation never counts as built.
  add_custom_command(OUTPUT ${spv}
    COMMAND ${BN_GLSLC} --target-env=${BN_SHADER_ENV} -O -fshader-stage=compute ${ARGN}
            -MD -MF ${spv}.d -MT ${spv} -o ${spv}.tmp ${BN_SHADER_SRC}/${source}
    COMMAND ${BN_SPIRV_VAL} --target-env ${BN_SHADER_ENV} ${spv}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${spv}.tmp ${spv}
    DEPENDS ${BN_SHADER_SRC}/${source}
    DEPFILE ${spv}.d
    COMMENT "Compiling shader ${name}"
    VERBATIM)
  add_custom_command(OUTPUT ${c}
    COMMAND bn-spv-embed ${name} ${spv} ${c}
    DEPENDS bn-spv-embed ${spv}
    COMMENT "Embedding shader ${name}"
    VERBATIM)
  set(BN_SHADER_C ${BN_SHADER_C} ${c} PARENT_SCOPE)
  set(BN_SHADER_DECLS "${BN_SHADER_DECLS}extern const uint32_t ${name}_spv[];\nextern const size_t ${name}_spv_len;\n"
      PARENT_SCOPE)
endfunction()

bn_shader(embed_f16_i32_f32 embed_f16_i32_f32.comp)
bn_shader(embed_f32_i32_f32 embed_f16_i32_f32.comp -DTABLE_F32)
bn_shader(rmsnorm_f32_f32 rmsnorm_f32_f32.comp)
bn_shader(quantize_f32_i8 quantize_f32_i8.comp)
bn_shader(quantize_f32_i8_norm quantize_f32_i8.comp -DNORM)
bn_shader(matvec_t2_i8_f32 matvec_t2_i8_f32.comp)
bn_shader(matvec_t2_i8_f32_dot matvec_t2_i8_f32.comp -DUSE_DOT)
bn_shader(matmul_t2_i8_f32 matmul_t2_i8_f32.comp)
bn_shader(matmul_t2_i8_f32_dot matmul_t2_i8_f32.comp -DUSE_DOT)
bn_shader(rope_f32_f32 rope_f32_f32.comp)
bn_shader(kv_store_f32_f16 kv_store_f32_f16.comp)
bn_shader(kv_store_f32_f32 kv_store_f32_f16.comp -DCACHE_F32)
bn_shader(attn_decode_f16_f32_f32 attn_decode_f16_f32_f32.comp)
bn_shader(attn_decode_f32_f32_f32 attn_decode_f16_f32_f32.comp -DCACHE_F32)
bn_shader(attn_reduce_f32_f32 attn_reduce_f32_f32.comp)
bn_shader(attn_prefill_f16_f32_f32 attn_prefill_f16_f32_f32.comp)
bn_shader(attn_prefill_f32_f32_f32 attn_prefill_f16_f32_f32.comp -DCACHE_F32)
bn_shader(ffn_act_f32_f32 ffn_act_f32_f32.comp)
bn_shader(head_f16_f32_f32 head_f16_f32_f32.comp)
bn_shader(head_f32_f32_f32 head_f16_f32_f32.comp -DTABLE_F32)
bn_shader(quantize_f32_i16 quantize_f32_i16.comp)
bn_shader(head_q8_i8_f32 head_q8_i8_f32.comp)
bn_shader(argmax_f32_i32 argmax_f32_i32.comp)
bn_shader(topk_f32 topk_f32.comp)
bn_shader(proj_t2_f32_f32 proj_t2_f32_f32.comp)
bn_shader(proj_t2_f32_f32_dot proj_t2_f32_f32.comp -DUSE_DOT)
bn_shader(proj_gate_up_t2_f32_f32 proj_t2_f32_f32.comp -DGATE_UP)
bn_shader(proj_gate_up_t2_f32_f32_dot proj_t2_f32_f32.comp -DGATE_UP -DUSE_DOT)
bn_shader(proj_qkv_t2_f32_f16 proj_t2_f32_f32.comp -DQKV)
bn_shader(proj_qkv_t2_f32_f16_dot proj_t2_f32_f32.comp -DQKV -DUSE_DOT)
bn_shader(proj_qkv_t2_f32_f32 proj_t2_f32_f32.comp -DQKV -DCACHE_F32)
bn_shader(proj_qkv_t2_f32_f32_dot proj_t2_f32_f32.comp -DQKV -DCACHE_F32 -DUSE_DOT)
# Subgroup-arithmetic variants of the shaders with workgroup reductions,
# for devices that have it (VK_SUBGROUP_FEATURE_ARITHMETIC_BIT in compute).
bn_shader(rmsnorm_f32_f32_sg rmsnorm_f32_f32.comp -DUSE_SUBGROUP)
bn_shader(quantize_f32_i8_sg quantize_f32_i8.comp -DUSE_SUBGROUP)
bn_shader(quantize_f32_i8_norm_sg quantize_f32_i8.comp -DNORM -DUSE_SUBGROUP)
bn_shader(quantize_f32_i16_sg quantize_f32_i16.comp -DUSE_SUBGROUP)
bn_shader(head_f16_f32_f32_sg head_f16_f32_f32.comp -DUSE_SUBGROUP)
bn_shader(head_f32_f32_f32_sg head_f16_f32_f32.comp -DTABLE_F32 -DUSE_SUBGROUP)
bn_shader(proj_t2_f32_f32_sg proj_t2_f32_f32.comp -DUSE_SUBGROUP)
bn_shader(proj_t2_f32_f32_dot_sg proj_t2_f32_f32.comp -DUSE_DOT -DUSE_SUBGROUP)
bn_shader(proj_gate_up_t2_f32_f32_sg proj_t2_f32_f32.comp -DGATE_UP -DUSE_SUBGROUP)
bn_shader(proj_gate_up_t2_f32_f32_dot_sg proj_t2_f32_f32.comp -DGATE_UP -DUSE_DOT -DUSE_SUBGROUP)
bn_shader(proj_qkv_t2_f32_f16_sg proj_t2_f32_f32.comp -DQKV -DUSE_SUBGROUP)
bn_shader(proj_qkv_t2_f32_f16_dot_sg proj_t2_f32_f32.comp -DQKV -DUSE_DOT -DUSE_SUBGROUP)
bn_shader(proj_qkv_t2_f32_f32_sg proj_t2_f32_f32.comp -DQKV -DCACHE_F32 -DUSE_SUBGROUP)
bn_shader(proj_qkv_t2_f32_f32_dot_sg proj_t2_f32_f32.comp -DQKV -DCACHE_F32 -DUSE_DOT -DUSE_SUBGROUP)
bn_shader(copy_probe copy_probe.comp)

# Written only when the list changes, so adding a shader is the only thing
# that recompiles the backend's users of the header.
file(CONFIGURE OUTPUT ${BN_SHADER_OUT}/bn_shaders.h CONTENT
"/* Generated by cmake/shaders.cmake: the embedded SPIR-V of every shader
 * variant (<name>_spv_len is in bytes). Do not edit. */
#ifndef BN_SHADERS_H
#define BN_SHADERS_H

#include <stddef.h>
#include <stdint.h>

@BN_SHADER_DECLS@
#endif
" @ONLY)

add_library(bn_shaders STATIC ${BN_SHADER_C})
target_include_directories(bn_shaders PUBLIC ${BN_SHADER_OUT})
target_link_libraries(bn_runtime PRIVATE bn_shaders)
