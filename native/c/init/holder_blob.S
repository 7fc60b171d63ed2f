/* paddock-hold's bytes, for holder.c. The Makefile builds it first. */
  .section .rodata
  .balign 16
  .global pi_holder_start
pi_holder_start:
  .incbin "build/paddock-hold"
  .global pi_holder_end
pi_holder_end:
  .section .note.GNU-stack,"",%progbits
