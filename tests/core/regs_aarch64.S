/* regs_aarch64.S: test helpers that hold known values in the callee-saved registers across
 * ag__ctx_switch, and read and write the floating-point control register.
 *
 * uint32_t regs_switch_check(ag__ctx *from, const ag__ctx *to, const uint64_t pat[19])
 *   Loads pat[0..18] into the registers below, calls ag__ctx_switch(from, to) and, once
 *   something switches back, returns a mask with bit i set when register i no longer holds
 *   pat[i] (for d8-d15, its 64 bits). The caller's own values of these registers are kept in
 *   this frame and put back.
 *     bits 0-9 x19-x28, bit 10 x29, bits 11-18 d8-d15
 *
 * uint64_t regs_fpctl_get(void)       FPCR.
 * void regs_fpctl_set(uint64_t v)     Writes FPCR.
 *
 * Frame of regs_switch_check, 176 bytes (lowest address first):
 *   +0   x19-x28, +80 x29, +88 x30, +96 d8-d15 (the caller's values)
 *   +160 pat, 8 bytes padding
 */
    .text

/* Sets bit \bit of w0 when x\reg differs from the pattern at [x2, #\off]. */
    .macro checkx reg, off, bit
    ldr x9, [x2, #\off]
    cmp x\reg, x9
    cset w10, ne
    orr w0, w0, w10, lsl #\bit
    .endm

/* The same for the 64 bits of d\reg. */
    .macro checkd reg, off, bit
    fmov x11, d\reg
    ldr x9, [x2, #\off]
    cmp x11, x9
    cset w10, ne
    orr w0, w0, w10, lsl #\bit
    .endm

    .globl regs_switch_check
    .type regs_switch_check, %function
    .p2align 4
regs_switch_check:
    .cfi_startproc
    sub sp, sp, #176
    .cfi_def_cfa_offset 176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    .cfi_offset x29, -96
    .cfi_offset x30, -88
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    str x2, [sp, #160]
    ldp x19, x20, [x2, #0]
    ldp x21, x22, [x2, #16]
    ldp x23, x24, [x2, #32]
    ldp x25, x26, [x2, #48]
    ldp x27, x28, [x2, #64]
    ldr x29, [x2, #80]
    ldp d8, d9, [x2, #88]
    ldp d10, d11, [x2, #104]
    ldp d12, d13, [x2, #120]
    ldp d14, d15, [x2, #136]
    bl ag__ctx_switch
    ldr x2, [sp, #160]
    mov w0, #0
    checkx 19, 0, 0
    checkx 20, 8, 1
    checkx 21, 16, 2
    checkx 22, 24, 3
    checkx 23, 32, 4
    checkx 24, 40, 5
    checkx 25, 48, 6
    checkx 26, 56, 7
    checkx 27, 64, 8
    checkx 28, 72, 9
    checkx 29, 80, 10
    checkd 8, 88, 11
    checkd 9, 96, 12
    checkd 10, 104, 13
    checkd 11, 112, 14
    checkd 12, 120, 15
    checkd 13, 128, 16
    checkd 14, 136, 17
    checkd 15, 144, 18
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
    .cfi_def_cfa_offset 0
    ret
    .cfi_endproc
    .size regs_switch_check, .-regs_switch_check

    .globl regs_fpctl_get
    .type regs_fpctl_get, %function
    .p2align 4
regs_fpctl_get:
    .cfi_startproc
    mrs x0, fpcr
    ret
    .cfi_endproc
    .size regs_fpctl_get, .-regs_fpctl_get

    .globl regs_fpctl_set
    .type regs_fpctl_set, %function
    .p2align 4
regs_fpctl_set:
    .cfi_startproc
    msr fpcr, x0
    ret
    .cfi_endproc
    .size regs_fpctl_set, .-regs_fpctl_set

    .section .note.GNU-stack,"",%progbits
