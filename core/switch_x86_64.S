/* switch_x86_64.S: context switch for x86-64, System V ABI.
 *
 * Saved frame, at the parked context's stack pointer (lowest address first):
 *   +0   MXCSR (4 bytes), x87 control word (2 bytes), 2 bytes padding
 *   +8   r15
 *   +16  r14
 *   +24  r13
 *   +32  r12
 *   +40  rbx
 *   +48  rbp
 *   +56  return address
 * Caller-saved registers need no saving: the switch is an ordinary call for the compiler.
 */
#include "core/asm.h"
    .text
    .globl AG_SYM(ag__ctx_switch)
    AG_HIDDEN(ag__ctx_switch)
    AG_TYPE_FUNCTION(ag__ctx_switch)
    .p2align 4
AG_SYM(ag__ctx_switch):
    .cfi_startproc
    /* The frame has the same shape on both stacks, so the unwind rules below stay true after
     * the stack pointer moves to the other context. */
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    ret
    .cfi_endproc
    AG_SIZE(ag__ctx_switch)

/* First code of a new context: reached by the ret above with r12 = arg and r13 = fn, and the
 * stack pointer 16-byte aligned, so the call below enters fn with the ABI's alignment. */
    .globl AG_SYM(ag__ctx_trampoline)
    AG_HIDDEN(ag__ctx_trampoline)
    AG_TYPE_FUNCTION(ag__ctx_trampoline)
    .p2align 4
AG_SYM(ag__ctx_trampoline):
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    AG_SIZE(ag__ctx_trampoline)

    AG_NOTE_GNU_STACK
