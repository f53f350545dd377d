/* asm.h: the directives of core/switch_*.S that differ between ELF (Linux, the BSDs) and Mach-O
 * (macOS), so that each switch is written once for both. Mach-O prefixes C symbol names with an
 * underscore, spells hidden visibility .private_extern, and
 * has neither symbol types and sizes nor the .note.GNU-stack section. */
#ifndef AG_CORE_ASM_H
#define AG_CORE_ASM_H

#if defined(__APPLE__)
#define AG_SYM(name) _##name
#else
#define AG_SYM(name) name
#endif

/* Assembler text, not C: clang-format would split its tokens. */
/* clang-format off */
#if defined(__ELF__)
#define AG_HIDDEN(name) .hidden AG_SYM(name)
/* %function, not @function: on AArch64 "@" starts a comment. */
#define AG_TYPE_FUNCTION(name) .type AG_SYM(name), %function
#define AG_SIZE(name) .size AG_SYM(name), .- AG_SYM(name)
/* The stack is not executable: without this note the linker makes it so for the whole program. */
#define AG_NOTE_GNU_STACK .section .note.GNU-stack, "", %progbits
#elif defined(__APPLE__)
#define AG_HIDDEN(name) .private_extern AG_SYM(name)
#define AG_TYPE_FUNCTION(name)
#define AG_SIZE(name)
#define AG_NOTE_GNU_STACK
#else
#error "core/asm.h: neither ELF nor Mach-O"
#endif
/* clang-format on */

#endif
