"""64-bit guests: long-mode page tables, GDT and IDT, and the programs of the prototypes.

The calibration's first guests (:mod:`vsmsim.calibrate.guest`) run in real mode; the VTL
switch prototypes and the LAPIC figures need a 64-bit guest with an IDT and the LAPIC page
mapped. The host writes the tables into guest memory and enters long mode directly with
KVM_SET_SREGS (no mode-switch code in the guest). The programs are bytes with their
assembly beside them (GNU as, ``.code64``; checked with ``objdump -d``).

Guest memory layout (at least :data:`MEM_SIZE` bytes, guest-physical = guest-virtual):

==========  ==============================================================================
address     content
==========  ==============================================================================
0x1000      PML4; 0x2000 PDPT; 0x3000 PD for 0-1 GiB (2 MiB pages); 0x4000 PD for 3-4 GiB
            (maps the LAPIC page at 0xFEE00000, uncached)
0x5000      GDT: null, 64-bit code (selector 0x08), data (0x10)
0x6000      IDT: 256 x 16-byte gates, all to :data:`HANDLER`
0x8000      the program (entry); 0x8800 the service when both VTLs share memory
0x9000      the interrupt handler
0xA000      parameters: u32 service loop count at +0, u64 service result pointer at +8
0xF000      top of the stack
0x100000    u64 results of the caller (one per call: TSC ticks of the round trip)
0x200000    u64 results of the service (one per call: TSC ticks of the work)
==========  ==============================================================================

Ports (each ``out`` to them is a userspace exit, KVM_EXIT_IO): :data:`PORT_CALL` the VTL
call, :data:`PORT_RETURN` the VTL return, :data:`PORT_DONE` the caller filled its result
buffer, :data:`PORT_IRQ` the interrupt handler ran.
"""

from __future__ import annotations

import struct

from .kvm import KvmError

PML4, PDPT, PD_LOW, PD_APIC = 0x1000, 0x2000, 0x3000, 0x4000
GDT, IDT = 0x5000, 0x6000
CODE, HANDLER, PARAMS, STACK = 0x8000, 0x9000, 0xA000, 0xF000
#: Where VTL1's service sits when it shares guest memory with VTL0's caller.
SERVICE_CODE = 0x8800
CALLER_RESULTS, SERVICE_RESULTS = 0x100000, 0x200000
MEM_SIZE = 0x300000
#: The most calls one run records (the caller's result area holds this many u64).
MAX_CALLS = (SERVICE_RESULTS - CALLER_RESULTS) // 8

PORT_IRQ = 0x30
PORT_CALL = 0x40
PORT_RETURN = 0x41
PORT_DONE = 0x42
#: The vector the MSI figures send (any vector >= 32 would do).
VECTOR = 0x40

#: VTL0's caller loop. r12 = next result slot, r13 = end of the result area (set by the
#: host); r14 holds the start TSC across the call (the service never touches r12-r14,
#: which matters because the VMMs copy the shared general registers across the switch)::
#:
#:     start: rdtsc; shl $32,%rdx; or %rdx,%rax; mov %rax,%r14
#:            out %al,$0x40                 # VTL call
#:            rdtsc; shl $32,%rdx; or %rdx,%rax; sub %r14,%rax
#:            mov %rax,(%r12); add $8,%r12  # round trip in TSC ticks
#:            cmp %r13,%r12; jb start
#:            out %al,$0x42                 # buffer full
#:            jmp start
CALLER = bytes.fromhex("0f3148c1e2204809d04989c6e6400f3148c1e2204809d04c29f0498904244983c408"
                       "4d39ec72d9e642ebd5")

#: VTL1's service: a timed ``dec/jnz`` loop of the count at PARAMS, its TSC ticks stored
#: at the pointer at PARAMS+8 (memory, not registers: the caller's registers overwrite
#: the shared ones on each call), then the VTL return::
#:
#:     svc:   rdtsc; shl $32,%rdx; or %rdx,%rax; mov %rax,%rsi
#:            mov 0xa000,%ecx
#:     1:     dec %ecx; jnz 1b
#:            rdtsc; shl $32,%rdx; or %rdx,%rax; sub %rsi,%rax
#:            mov 0xa008,%rdi; mov %rax,(%rdi); add $8,%rdi; mov %rdi,0xa008
#:            out %al,$0x41                 # VTL return
#:            jmp svc
SERVICE = bytes.fromhex("0f3148c1e2204809d04889c68b0c2500a00000ffc975fc0f3148c1e2204809d048"
                        "29f0488b3c2508a000004889074883c70848893c2508a00000e641ebc2")

#: ``idle: sti; hlt; jmp idle``: halted with interrupts enabled (MSI figures).
HALT_IDLE = bytes.fromhex("fbf4ebfc")
#: The handler: ``push %rax; out %al,$0x30; mov $0xfee000b0,%eax; movl $0,(%rax)`` (LAPIC
#: EOI), ``pop %rax; iretq``.
IRQ_HANDLER = bytes.fromhex("50e630b8b000e0fec700000000005848cf")
#: ``out %al,$0x41; jmp .-2``: one userspace exit per KVM_RUN, in long mode.
OUT_LOOP = bytes.fromhex("e641ebfc")

_CR0 = 0x80050033      # PG | AM | WP | NE | ET | MP | PE
_CR4 = 0x620           # PAE | OSFXSR | OSXMMEXCPT
_EFER = 0x500          # LME | LMA
_SEG = 24
_SREG = {"cs": 0, "ds": 1, "es": 2, "fs": 3, "gs": 4, "ss": 5, "tr": 6, "ldt": 7}


def tables() -> list[tuple[int, bytes]]:
    """(guest address, bytes) of the page tables, GDT and IDT."""
    pd_low = b"".join(struct.pack("<Q", (i << 21) | 0x83) for i in range(512))  # P|RW|PS
    pd_apic = bytearray(4096)
    struct.pack_into("<Q", pd_apic, 8 * 0x1F7, 0xFEE00000 | 0x9B)  # P|RW|PWT|PCD|PS
    pdpt = bytearray(4096)
    struct.pack_into("<Q", pdpt, 0, PD_LOW | 0x3)
    struct.pack_into("<Q", pdpt, 8 * 3, PD_APIC | 0x3)
    gdt = struct.pack("<QQQ", 0, 0x00209A0000000000, 0x0000920000000000)
    gate = struct.pack("<HHBBHIi", HANDLER & 0xFFFF, 0x08, 0, 0x8E, (HANDLER >> 16) & 0xFFFF,
                       HANDLER >> 32, 0)
    return [(PML4, struct.pack("<Q", PDPT | 0x3)), (PDPT, bytes(pdpt)), (PD_LOW, pd_low),
            (PD_APIC, bytes(pd_apic)), (GDT, gdt), (IDT, gate * 256)]


def _segment(sregs: bytearray, name: str, selector: int, type_: int, s: int, l_: int,
             db: int) -> None:
    off = _SREG[name] * _SEG
    # base u64, limit u32, selector u16, type, present, dpl, db, s, l, g, avl, unusable
    struct.pack_into("=QIHBBBBBBBBB", sregs, off, 0, 0xFFFFFFFF, selector, type_, 1, 0, db,
                     s, l_, 1, 0, 0)


def enter_long_mode(vm, vcpu, rip: int, rsp: int = STACK, cpuid: bytes | None = None,
                    regs: dict | None = None) -> None:
    """Write the tables into *vm* and put *vcpu* in 64-bit mode at *rip* with *rsp*.

    *cpuid* (a ``kvm_cpuid2``, :meth:`Kvm.supported_cpuid`) is set first because KVM
    only accepts EFER.LME for a guest whose CPUID has long mode. *regs* sets general
    registers by name (``{"r12": ..., "r13": ...}``).
    """
    if vm.mem is None or len(vm.mem) < MEM_SIZE:
        raise KvmError(f"a 64-bit guest needs {MEM_SIZE:#x} bytes of guest memory")
    for gpa, data in tables():
        vm.write(gpa, data)
    if cpuid is not None:
        vcpu.set_cpuid(cpuid)
    sregs = vcpu.state_buffer("sregs")
    vcpu.get_state("sregs", sregs)
    _segment(sregs, "cs", 0x08, 0xB, 1, 1, 0)
    for name in ("ds", "es", "fs", "gs", "ss"):
        _segment(sregs, name, 0x10, 0x3, 1, 0, 1)
    off = _SREG["tr"] * _SEG
    struct.pack_into("=QIHBBBBBBBBB", sregs, off, 0, 0x67, 0, 0xB, 1, 0, 0, 0, 0, 0, 0, 0)
    struct.pack_into("=QH", sregs, 192, GDT, 23)         # gdt: base, limit
    struct.pack_into("=QH", sregs, 208, IDT, 16 * 256 - 1)  # idt
    struct.pack_into("=QQQQQQ", sregs, 224, _CR0, 0, PML4, _CR4, 0, _EFER)  # cr0..efer
    vcpu.set_state("sregs", sregs)
    names = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10",
             "r11", "r12", "r13", "r14", "r15", "rip", "rflags")
    values = dict.fromkeys(names, 0)
    values.update(regs or {})
    values.update(rip=rip, rsp=rsp, rflags=0x2)
    vcpu.set_state("regs", bytearray(struct.pack("=18Q", *(values[n] for n in names))))


def set_service(vm, loop_count: int, results: int = SERVICE_RESULTS) -> None:
    """Set the service's loop count and reset its result pointer (in *vm*'s memory)."""
    vm.write(PARAMS, struct.pack("<IIQ", loop_count, 0, results))


def results(vm, base: int, n: int) -> list[int]:
    """The first *n* u64 results at *base* of *vm*'s memory (TSC ticks)."""
    return list(struct.unpack(f"<{n}Q", vm.read(base, 8 * n)))
