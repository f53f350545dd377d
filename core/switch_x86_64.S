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
    .text
    .globl ag__ctx_switch
    .hidden ag__ctx_switch
    .type ag__ctx_switch, @function
    .p2align 4
ag__ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size ag__ctx_switch, .-ag__ctx_switch

/* First code of a new context: reached by the ret above with r12 = arg and r13 = fn, and the
 * stack pointer 16-byte aligned, so the call below enters fn with the ABI's alignment. */
    .globl ag__ctx_trampoline
    .hidden ag__ctx_trampoline
    .type ag__ctx_trampoline, @function
    .p2align 4
ag__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size ag__ctx_trampoline, .-ag__ctx_trampoline

    .section .note.GNU-stack,"",@progbits
