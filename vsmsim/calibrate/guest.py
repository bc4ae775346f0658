"""The real-mode guest programs that calibration runs, as 16-bit x86 machine code.

The guests are a few dozen bytes each and are kept here as bytes with their assembly
beside them (GNU as, ``.code16``; checked with ``objdump -M i8086``). Guest memory layout:

=========  ===================================================================
address    content
=========  ===================================================================
0x0000     real-mode interrupt vector table (IVT); vector 0x24 -> IRQ handler
0x1000     the program (entered at cs:ip = 0:0x1000, flags = 0x2)
0x1100     the IRQ handler
0x2000     u32 loop count read by :func:`timed_loop` programs
0x8000     top of the stack (ss:sp = 0:0x8000)
=========  ===================================================================

Ports: the guest talks to the host only through ``out``. Ports 0x10-0x13 and 0x30-0x31
are not claimed by KVM's in-kernel devices, so each such ``out`` is a userspace exit
(KVM_EXIT_IO); ports 0x20/0x21 are the in-kernel PIC once KVM_CREATE_IRQCHIP was called.
"""

from __future__ import annotations

import struct

CODE = 0x1000
HANDLER = 0x1100
COUNT = 0x2000
STACK = 0x8000

PORT_UEXIT = 0x10
PORT_TSC_LO = 0x11
PORT_TSC_HI = 0x12
PORT_LOOP = 0x13
PORT_IRQ = 0x30
PORT_READY = 0x31

#: PIC input used for wake-up measurements, and its vector after the guest's ICW2 = 0x20.
IRQ = 4
VECTOR = 0x20 + IRQ

#: ``out $0x10, %al; jmp .-2``: one userspace exit per KVM_RUN.
OUT_LOOP = bytes.fromhex("e610" "ebfc")

#: ``rdtsc; out %eax, $0x11; mov %edx, %eax; out %eax, $0x12; jmp tscprobe``:
#: two exits per sample, the low then the high half of the guest TSC.
TSC_PROBE = bytes.fromhex("0f31" "66e711" "6689d0" "66e712" "ebf3")

#: Loop bodies for :func:`timed_loop`. They may clobber eax, ebx, ecx, edx (not esi, edi).
OPS = {
    "empty": b"",
    "cpuid": bytes.fromhex("6631c0" "0fa2"),                 # xor %eax,%eax; cpuid
    "rdmsr": bytes.fromhex("66b91b000000" "0f32"),           # mov $0x1b,%ecx; rdmsr (APIC base)
    "pic_in": bytes.fromhex("e421"),                         # in $0x21,%al (PIC mask register)
}


def timed_loop(body: bytes, port: int = PORT_LOOP, count_addr: int = COUNT) -> bytes:
    """Return a program that times ``count`` iterations of *body* with rdtsc, forever.

    ::

        top:  mov  count_addr, %esi     ; 66 8b 36 lo hi
              rdtsc                     ; 0f 31
              mov  %eax, %edi           ; 66 89 c7
        loop: <body>
              dec  %esi                 ; 66 4e
              jnz  loop                 ; 75 rel8
              rdtsc                     ; 0f 31
              sub  %edi, %eax           ; 66 29 f8
              out  %eax, $port          ; 66 e7 port   (TSC ticks for the batch, low 32 bits)
              jmp  top                  ; eb rel8

    The host changes the count between batches by writing the u32 at *count_addr*.
    """
    head = b"\x66\x8b\x36" + struct.pack("<H", count_addr) + b"\x0f\x31" + b"\x66\x89\xc7"
    loop = body + b"\x66\x4e"
    loop += b"\x75" + struct.pack("b", -(len(loop) + 2))
    prog = head + loop + b"\x0f\x31" + b"\x66\x29\xf8" + b"\x66\xe7" + bytes([port])
    return prog + b"\xeb" + struct.pack("b", -(len(prog) + 2))


#: Program the in-kernel master PIC and enable interrupts::
#:
#:     cli
#:     mov $0x11,%al; out %al,$0x20    ; ICW1: edge triggered, cascade, ICW4 follows
#:     mov $0x20,%al; out %al,$0x21    ; ICW2: vectors 0x20-0x27
#:     mov $0x04,%al; out %al,$0x21    ; ICW3: slave on IR2
#:     mov $0x01,%al; out %al,$0x21    ; ICW4: 8086 mode
#:     mov $0xef,%al; out %al,$0x21    ; OCW1: unmask IRQ4 only
#:     out %al,$0x31                   ; tell the host that setup is done
#:     sti
IRQ_SETUP = bytes.fromhex("fa" "b011e620" "b020e621" "b004e621" "b001e621" "b0efe621" "e631" "fb")
#: ``idle: hlt; jmp idle``: the vCPU blocks in the kernel until an interrupt.
HALT_IDLE = bytes.fromhex("f4" "ebfd")
#: ``spin: jmp spin`` with interrupts enabled: the vCPU stays in guest mode.
SPIN_IDLE = bytes.fromhex("ebfe")
#: ``out %al,$0x30; mov $0x20,%al; out %al,$0x20; iret``: report, EOI to the PIC, return.
IRQ_HANDLER = bytes.fromhex("e630" "b020e620" "cf")


def ivt_entry(vector: int, offset: int, segment: int = 0) -> tuple[int, bytes]:
    """Return (guest address, bytes) of the real-mode IVT entry pointing *vector* at
    *segment*:*offset*."""
    return vector * 4, struct.pack("<HH", offset, segment)
