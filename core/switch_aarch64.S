/* switch_aarch64.S: context switch for AArch64, AAPCS64.
 *
 * Saved frame, 176 bytes at the parked context's stack pointer (lowest address first):
 *   +0   x19, x20
 *   +16  x21, x22
 *   +32  x23, x24
 *   +48  x25, x26
 *   +64  x27, x28
 *   +80  x29 (frame pointer), x30 (return address)
 *   +96  d8, d9
 *   +112 d10, d11
 *   +128 d12, d13
 *   +144 d14, d15
 *   +160 FPCR (8 bytes), 8 bytes padding
 * The frame size is a multiple of 16, so sp keeps the ABI's 16-byte alignment throughout.
 * Only the low 64 bits of v8-v15 are callee-saved; caller-saved registers need no saving
 * because the switch is an ordinary call for the compiler.
 */
#include "core/asm.h"

/* With branch target identification enabled, indirect branches may only land on a BTI
 * instruction; "hint #34" is "bti c" and executes as a no-op on cores without BTI. */
#define AG_BTI_C hint #34

    .text
    .globl AG_SYM(ag__ctx_switch)
    AG_HIDDEN(ag__ctx_switch)
    AG_TYPE_FUNCTION(ag__ctx_switch)
    .p2align 4
AG_SYM(ag__ctx_switch):
    .cfi_startproc
    AG_BTI_C
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x9, fpcr
    str x9, [sp, #160]
    mov x9, sp
    str x9, [x0]
    ldr x9, [x1]
    mov sp, x9
    ldr x9, [sp, #160]
    msr fpcr, x9
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    ret
    .cfi_endproc
    AG_SIZE(ag__ctx_switch)

/* First code of a new context: reached by the ret above with x19 = fn, x20 = arg, x29 = 0
 * (an empty frame chain) and sp 16-byte aligned at the top of the stack. fn must never
 * return; if it does, brk stops the program at once instead of running off into nowhere. */
    .globl AG_SYM(ag__ctx_trampoline)
    AG_HIDDEN(ag__ctx_trampoline)
    AG_TYPE_FUNCTION(ag__ctx_trampoline)
    .p2align 4
AG_SYM(ag__ctx_trampoline):
    .cfi_startproc
    .cfi_undefined x30
    mov x0, x20
    blr x19
    brk #0
    .cfi_endproc
    AG_SIZE(ag__ctx_trampoline)

/* A translation unit built with -mbranch-protection marks its object as BTI/PAC compatible;
 * this file must carry the same GNU property, or the linker turns BTI off for the program. */
#if defined(__ELF__) && (defined(__ARM_FEATURE_BTI_DEFAULT) || defined(__ARM_FEATURE_PAC_DEFAULT))
#define AG_GNU_PROPERTY_AARCH64_FEATURE_1_AND 0xc0000000
    .pushsection .note.gnu.property, "a"
    .p2align 3
    .word 4
    .word 16
    .word 5
    .asciz "GNU"
    .word AG_GNU_PROPERTY_AARCH64_FEATURE_1_AND
    .word 4
#if defined(__ARM_FEATURE_BTI_DEFAULT) && defined(__ARM_FEATURE_PAC_DEFAULT)
    .word 3
#elif defined(__ARM_FEATURE_BTI_DEFAULT)
    .word 1
#else
    .word 2
#endif
    .word 0
    .popsection
#endif

    AG_NOTE_GNU_STACK
