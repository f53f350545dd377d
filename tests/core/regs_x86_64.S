/* regs_x86_64.S: test helpers that hold known values in the callee-saved registers across
 * ag__ctx_switch, and read and write the floating-point control state.
 *
 * uint32_t regs_switch_check(ag__ctx *from, const ag__ctx *to, const uint64_t pat[6])
 *   Loads pat[0..5] into the registers below, calls ag__ctx_switch(from, to) and, once
 *   something switches back, returns a mask with bit i set when register i no longer holds
 *   pat[i]. The caller's own values of these registers are kept in this frame and put back.
 *     bit 0 rbx, 1 rbp, 2 r12, 3 r13, 4 r14, 5 r15
 *
 * uint64_t regs_fpctl_get(void)       MXCSR in bits 0-31, x87 control word in bits 32-47.
 * void regs_fpctl_set(uint64_t v)     Loads both from the same encoding.
 *
 * Frame of regs_switch_check (lowest address first):
 *   +0   pat
 *   +8   r15, +16 r14, +24 r13, +32 r12, +40 rbx, +48 rbp (the caller's values)
 *   +56  return address
 * Seven pushes after the return address leave rsp 16-byte aligned for the call.
 */
    .text

/* Sets bit \bit of eax when \reg differs from the pattern at \off(%rdx). */
    .macro check reg, off, bit
    cmpq \off(%rdx), \reg
    je 1f
    orl $(1 << \bit), %eax
1:
    .endm

    .globl regs_switch_check
    .type regs_switch_check, @function
    .p2align 4
regs_switch_check:
    .cfi_startproc
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    pushq %r12
    .cfi_adjust_cfa_offset 8
    pushq %r13
    .cfi_adjust_cfa_offset 8
    pushq %r14
    .cfi_adjust_cfa_offset 8
    pushq %r15
    .cfi_adjust_cfa_offset 8
    pushq %rdx
    .cfi_adjust_cfa_offset 8
    movq 0(%rdx), %rbx
    movq 8(%rdx), %rbp
    movq 16(%rdx), %r12
    movq 24(%rdx), %r13
    movq 32(%rdx), %r14
    movq 40(%rdx), %r15
    callq ag__ctx_switch
    movq (%rsp), %rdx
    xorl %eax, %eax
    check %rbx, 0, 0
    check %rbp, 8, 1
    check %r12, 16, 2
    check %r13, 24, 3
    check %r14, 32, 4
    check %r15, 40, 5
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq %r15
    .cfi_adjust_cfa_offset -8
    popq %r14
    .cfi_adjust_cfa_offset -8
    popq %r13
    .cfi_adjust_cfa_offset -8
    popq %r12
    .cfi_adjust_cfa_offset -8
    popq %rbx
    .cfi_adjust_cfa_offset -8
    popq %rbp
    .cfi_adjust_cfa_offset -8
    ret
    .cfi_endproc
    .size regs_switch_check, .-regs_switch_check

    .globl regs_fpctl_get
    .type regs_fpctl_get, @function
    .p2align 4
regs_fpctl_get:
    .cfi_startproc
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    movq $0, (%rsp)
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq (%rsp), %rax
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    ret
    .cfi_endproc
    .size regs_fpctl_get, .-regs_fpctl_get

    .globl regs_fpctl_set
    .type regs_fpctl_set, @function
    .p2align 4
regs_fpctl_set:
    .cfi_startproc
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    movq %rdi, (%rsp)
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    ret
    .cfi_endproc
    .size regs_fpctl_set, .-regs_fpctl_set

    .section .note.GNU-stack,"",@progbits
