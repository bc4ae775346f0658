"""Raw /dev/kvm plumbing from the standard library: a VM, its memory and real-mode vCPUs.

Everything here is ``fcntl.ioctl`` on file descriptors plus ``mmap``; there are no compiled
helpers. The ioctl numbers and struct layouts are those of the x86-64 Linux uapi headers
(``include/uapi/linux/kvm.h``, ``arch/x86/include/uapi/asm/kvm.h``) and were checked
against ``sizeof``/``offsetof`` from the system headers:

=============================  ==========  =====
struct                         size        notes
=============================  ==========  =====
kvm_userspace_memory_region    32 bytes    slot, flags (u32), gpa, size, uaddr (u64)
kvm_regs                       144 bytes   18 x u64, rip at 128, rflags at 136
kvm_sregs                      312 bytes   8 x kvm_segment (24 bytes), gdt/idt, cr0 at 224
kvm_irq_level                  8 bytes     irq (u32), level (u32)
kvm_run                        mmap'd      immediate_exit u8 at 1, exit_reason u32 at 8,
                                           exit union at 32
kvm_fpu                        416 bytes   x87, XMM and MXCSR
kvm_xsave                      4096 bytes  the XSAVE area (larger than fcntl's 1024-byte
                                           copy buffer: passed in place, GIL held)
kvm_xcrs                       392 bytes   nr_xcrs, flags, 16 x {xcr, value}, padding
kvm_debugregs                  128 bytes   db[4], dr6, dr7, flags, reserved[9]
kvm_vcpu_events                64 bytes    pending exception / interrupt / NMI / SMI
kvm_lapic_state                1024 bytes  the LAPIC register page
kvm_mp_state                   4 bytes     mp_state (u32)
kvm_msrs                       8 + 16 n    nmsrs, pad, n x {index, reserved, data}
kvm_cpuid2                     8 + 40 n    nent, pad, n x kvm_cpuid_entry2
kvm_msi                        32 bytes    address_lo, address_hi, data, flags, devid
=============================  ==========  =====

Every object owns its file descriptors and mappings and releases them in ``close()``
(also on ``with`` exit), so repeated calibrations do not leak.
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import struct

#: Environment variable that points calibration at another KVM device (tests use it).
DEVICE_ENV = "VSMSIM_KVM_DEVICE"
#: The KVM device used when :data:`DEVICE_ENV` is not set.
DEFAULT_DEVICE = "/dev/kvm"


def device_path() -> str:
    """Return the KVM device path: ``$VSMSIM_KVM_DEVICE`` if set, else ``/dev/kvm``."""
    return os.environ.get(DEVICE_ENV) or DEFAULT_DEVICE


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (0xAE << 8) | nr


def _io(nr):
    return _ioc(0, nr, 0)


def _iow(nr, size):
    return _ioc(1, nr, size)


def _ior(nr, size):
    return _ioc(2, nr, size)


def _iowr(nr, size):
    return _ioc(3, nr, size)


KVM_API_VERSION = 12

KVM_GET_API_VERSION = _io(0x00)
KVM_CREATE_VM = _io(0x01)
KVM_CHECK_EXTENSION = _io(0x03)
KVM_GET_VCPU_MMAP_SIZE = _io(0x04)
KVM_CREATE_VCPU = _io(0x41)
KVM_SET_USER_MEMORY_REGION = _iow(0x46, 32)
KVM_SET_TSS_ADDR = _io(0x47)
KVM_CREATE_IRQCHIP = _io(0x60)
KVM_IRQ_LINE = _iow(0x61, 8)
KVM_RUN = _io(0x80)
KVM_GET_REGS = _ior(0x81, 144)
KVM_SET_REGS = _iow(0x82, 144)
KVM_GET_SREGS = _ior(0x83, 312)
KVM_SET_SREGS = _iow(0x84, 312)
KVM_SIGNAL_MSI = _iow(0xA5, 32)
KVM_GET_SUPPORTED_CPUID = _iowr(0x05, 8)
KVM_GET_MSRS = _iowr(0x88, 8)
KVM_SET_MSRS = _iow(0x89, 8)
KVM_GET_FPU = _ior(0x8C, 416)
KVM_SET_FPU = _iow(0x8D, 416)
KVM_GET_LAPIC = _ior(0x8E, 1024)
KVM_SET_LAPIC = _iow(0x8F, 1024)
KVM_SET_CPUID2 = _iow(0x90, 8)
KVM_GET_MP_STATE = _ior(0x98, 4)
KVM_SET_MP_STATE = _iow(0x99, 4)
KVM_GET_VCPU_EVENTS = _ior(0x9F, 64)
KVM_SET_VCPU_EVENTS = _iow(0xA0, 64)
KVM_GET_DEBUGREGS = _ior(0xA1, 128)
KVM_SET_DEBUGREGS = _iow(0xA2, 128)
KVM_GET_XSAVE = _ior(0xA4, 4096)
KVM_SET_XSAVE = _iow(0xA5, 4096)
KVM_GET_XCRS = _ior(0xA6, 392)
KVM_SET_XCRS = _iow(0xA7, 392)
KVM_GET_SREGS2 = _ior(0xCC, 320)
KVM_SET_SREGS2 = _iow(0xCD, 320)
KVM_GET_XSAVE2 = _ior(0xCF, 4096)
KVM_GET_MSR_INDEX_LIST = _iowr(0x02, 4)

#: State ioctls by kind: (get request, set request, buffer size in bytes; msrs: header).
STATE_IOCTLS = {
    "regs": (KVM_GET_REGS, KVM_SET_REGS, 144),
    "sregs": (KVM_GET_SREGS, KVM_SET_SREGS, 312),
    "fpu": (KVM_GET_FPU, KVM_SET_FPU, 416),
    "xsave": (KVM_GET_XSAVE, KVM_SET_XSAVE, 4096),
    "xcrs": (KVM_GET_XCRS, KVM_SET_XCRS, 392),
    "debugregs": (KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, 128),
    "msrs": (KVM_GET_MSRS, KVM_SET_MSRS, 8),
    "lapic": (KVM_GET_LAPIC, KVM_SET_LAPIC, 1024),
    "events": (KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, 64),
    "mp_state": (KVM_GET_MP_STATE, KVM_SET_MP_STATE, 4),
}

#: kvm_mp_state values (``KVM_MP_STATE_*``).
MP_STATE_RUNNABLE = 0
MP_STATE_HALTED = 3

#: MSRs that the state-ioctl figures and the prototypes move with one KVM_GET/SET_MSRS:
#: the syscall/sysenter MSRs, KERNEL_GS_BASE, PAT and TSC_AUX (a VMM's per-switch set).
STATE_MSRS = (0x174, 0x175, 0x176, 0xC0000081, 0xC0000082, 0xC0000083, 0xC0000084,
              0xC0000102, 0x277, 0xC0000103)

KVM_CAP_IRQCHIP = 0
KVM_CAP_SET_TSS_ADDR = 4
KVM_CAP_SIGNAL_MSI = 77
KVM_CAP_DEBUGREGS = 50
KVM_CAP_XSAVE = 55
KVM_CAP_XCRS = 56
KVM_CAP_IMMEDIATE_EXIT = 136
KVM_CAP_SREGS2 = 200
KVM_CAP_XSAVE2 = 208

#: MSRs a VMM must not write back from an old read: the TSC and its adjust MSR (the guest's
#: clock would step back) and the PV wall-clock MSRs (a write makes KVM write the wall
#: clock into guest memory at the written address).
UNSAFE_WRITE_BACK_MSRS = frozenset({0x10, 0x3B, 0x11, 0x12, 0x4B564D00, 0x4B564D01})
#: MTRR MSRs (variable pairs, fixed ranges, default type): KVM keeps them per vCPU and
#: QEMU's kvm_put_msrs/kvm_get_msrs move them, but KVM_GET_MSR_INDEX_LIST does not list
#: them.
MTRR_MSRS = tuple(range(0x200, 0x210)) + (0x250, 0x258, 0x259) + tuple(range(0x268, 0x270)) \
    + (0x2FF,)


def path_state_ioctls(kvm) -> dict[str, tuple[int, int, int, str]]:
    """The state ioctl of each kind as the design paths name it (``vsmsim.costs``:
    ``ioctl_sregs`` is KVM_GET/SET_SREGS2, ``ioctl_fpu`` KVM_GET_XSAVE2/KVM_SET_XSAVE):
    ``{kind: (get request, set request, buffer size, name)}``. Where this KVM lacks
    SREGS2 or XSAVE2 the older ioctl stands in (KVM_GET/SET_SREGS, KVM_GET/SET_XSAVE, or
    KVM_GET/SET_FPU without XSAVE), and *name* says which."""
    out = {k: (g, s_, n, "") for k, (g, s_, n) in STATE_IOCTLS.items()}
    names = {"regs": "REGS", "xcrs": "XCRS", "debugregs": "DEBUGREGS", "msrs": "MSRS",
             "lapic": "LAPIC", "events": "VCPU_EVENTS", "mp_state": "MP_STATE",
             "sregs": "SREGS", "fpu": "FPU", "xsave": "XSAVE"}
    for k, (g, s_, n, _) in list(out.items()):
        out[k] = (g, s_, n, f"KVM_GET/SET_{names[k]}")
    if kvm.check_extension(KVM_CAP_SREGS2) > 0:
        out["sregs"] = (KVM_GET_SREGS2, KVM_SET_SREGS2, 320, "KVM_GET/SET_SREGS2")
    xsave2 = kvm.check_extension(KVM_CAP_XSAVE2)
    if xsave2 == 4096:
        out["fpu"] = (KVM_GET_XSAVE2, KVM_SET_XSAVE, 4096, "KVM_GET_XSAVE2/KVM_SET_XSAVE")
    elif kvm.check_extension(KVM_CAP_XSAVE) > 0:
        out["fpu"] = (KVM_GET_XSAVE, KVM_SET_XSAVE, 4096, "KVM_GET/SET_XSAVE")
    return out


def msr_index_list(kvm) -> list[int]:
    """KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and emulates for a vCPU."""
    buf = bytearray(4 + 4 * 2048)   # in place (> 1024 bytes)
    struct.pack_into("=I", buf, 0, 2048)
    fcntl.ioctl(kvm.fd, KVM_GET_MSR_INDEX_LIST, buf, True)
    n = struct.unpack_from("=I", buf)[0]
    return list(struct.unpack_from(f"={n}I", buf, 4))


def msr_buffer(indices) -> bytearray:
    """A ``kvm_msrs`` buffer for *indices* (values zero until a KVM_GET_MSRS)."""
    buf = bytearray(8 + 16 * len(indices))
    struct.pack_into("=I", buf, 0, len(indices))
    for i, index in enumerate(indices):
        struct.pack_into("=I", buf, 8 + 16 * i, index)
    return buf


def vmm_msrs(kvm, vcpu, count: int) -> list[int]:
    """*count* MSR indices a VMM can read and write back on *vcpu* (each checked alone):
    the index list and the MTRRs, without :data:`UNSAFE_WRITE_BACK_MSRS`, repeated in
    order when there are fewer distinct ones than *count* (KVM handles each entry on its
    own, so a repeated entry costs what a distinct one does)."""
    usable = []
    for index in [i for i in msr_index_list(kvm) + list(MTRR_MSRS)
                  if i not in UNSAFE_WRITE_BACK_MSRS]:
        buf = msr_buffer([index])
        try:
            if fcntl.ioctl(vcpu.fd, KVM_GET_MSRS, buf, True) == 1 and \
                    fcntl.ioctl(vcpu.fd, KVM_SET_MSRS, buf, True) == 1:
                usable.append(index)
        except OSError:
            continue
    if not usable:
        raise KvmError("no MSR can be read and written back on this KVM")
    return [usable[i % len(usable)] for i in range(count)]

#: kvm_run.exit_reason values used here (the rest are reported by number).
EXIT_NAMES = {0: "UNKNOWN", 1: "EXCEPTION", 2: "IO", 5: "HLT", 6: "MMIO", 8: "SHUTDOWN",
              9: "FAIL_ENTRY", 10: "INTR", 17: "INTERNAL_ERROR"}
KVM_EXIT_IO = 2
KVM_EXIT_HLT = 5
KVM_EXIT_INTR = 10

_RUN_IMMEDIATE_EXIT = 1
_RUN_EXIT_REASON = 8
_RUN_EXIT_UNION = 32
_REGS_RIP, _REGS_RFLAGS, _REGS_RSP = 128, 136, 48
_SEG_SIZE = 24
_SREGS_CS, _SREGS_SS = 0, 5 * _SEG_SIZE


class KvmError(OSError):
    """A KVM ioctl failed or a guest stopped in an unexpected way."""


class KvmUnavailable(RuntimeError):
    """There is no usable KVM device here; the message is one line for the user."""


def open_kvm(path: str | None = None) -> Kvm:
    """Open the KVM device (:func:`device_path` by default).

    Raises :class:`KvmUnavailable` with a one-line reason if it is missing, not
    accessible, or not a KVM device.
    """
    path = path or device_path()
    try:
        return Kvm(path)
    except OSError as e:
        reason = e.strerror or str(e)
        raise KvmUnavailable(
            f"{path} not available ({reason}): calibration needs a host with KVM"
        ) from None


class Kvm:
    """The system KVM file descriptor (``/dev/kvm`` or :func:`device_path`)."""

    def __init__(self, path: str | None = None):
        self.path = path or device_path()
        self.fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        try:
            version = fcntl.ioctl(self.fd, KVM_GET_API_VERSION, 0)
            if version != KVM_API_VERSION:
                raise KvmError(
                    f"{self.path}: KVM API version {version}, expected {KVM_API_VERSION}")
            self.vcpu_mmap_size = fcntl.ioctl(self.fd, KVM_GET_VCPU_MMAP_SIZE, 0)
        except BaseException:
            os.close(self.fd)
            raise

    def check_extension(self, cap: int) -> int:
        """Return KVM_CHECK_EXTENSION for capability number *cap* (0 = absent)."""
        return fcntl.ioctl(self.fd, KVM_CHECK_EXTENSION, cap)

    def supported_cpuid(self, max_entries: int = 100) -> bytes:
        """KVM_GET_SUPPORTED_CPUID: a ``kvm_cpuid2`` that KVM_SET_CPUID2 accepts as is."""
        buf = bytearray(8 + 40 * max_entries)
        struct.pack_into("=I", buf, 0, max_entries)
        fcntl.ioctl(self.fd, KVM_GET_SUPPORTED_CPUID, buf, True)
        nent = struct.unpack_from("=I", buf, 0)[0]
        return bytes(buf[:8 + 40 * nent])

    def close(self) -> None:
        """Close the system file descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Vm:
    """A VM with one memory slot of *mem_size* bytes at guest-physical 0.

    With *irqchip* the in-kernel PIC, IOAPIC and LAPICs are created (before any vCPU, as
    KVM requires), so that port I/O to the PIC and ``hlt`` are handled in the kernel.
    """

    def __init__(self, kvm: Kvm, mem_size: int = 0x10000, irqchip: bool = False):
        self.kvm = kvm
        self.vcpus: list[Vcpu] = []
        self.mem = None
        self.fd = fcntl.ioctl(kvm.fd, KVM_CREATE_VM, 0)
        try:
            if kvm.check_extension(KVM_CAP_SET_TSS_ADDR):
                # Needed for real mode on Intel without unrestricted guest; harmless elsewhere.
                # Three pages outside guest memory; below 2**31 because fcntl passes a C int.
                try:
                    fcntl.ioctl(self.fd, KVM_SET_TSS_ADDR, 0x7FFF0000)
                except OSError:
                    pass
            if irqchip:
                fcntl.ioctl(self.fd, KVM_CREATE_IRQCHIP, 0)
            self.mem = mmap.mmap(-1, mem_size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                                 mmap.PROT_READ | mmap.PROT_WRITE)
            view = ctypes.c_char.from_buffer(self.mem)
            uaddr = ctypes.addressof(view)
            del view  # drop the buffer export so that mem.close() is allowed later
            region = struct.pack("=IIQQQ", 0, 0, 0, mem_size, uaddr)
            fcntl.ioctl(self.fd, KVM_SET_USER_MEMORY_REGION, region)
        except BaseException:
            self.close()
            raise

    def write(self, gpa: int, data: bytes) -> None:
        """Copy *data* into guest memory at guest-physical address *gpa*."""
        self.mem[gpa:gpa + len(data)] = data

    def read(self, gpa: int, size: int) -> bytes:
        """Return *size* bytes of guest memory from guest-physical address *gpa*."""
        return self.mem[gpa:gpa + size]

    def create_vcpu(self) -> Vcpu:
        """Create the next vCPU (id 0, 1, ...) and map its kvm_run area."""
        vcpu = Vcpu(self, len(self.vcpus))
        self.vcpus.append(vcpu)
        return vcpu

    def signal_msi(self, vector: int, dest_apic_id: int = 0) -> int:
        """KVM_SIGNAL_MSI: a fixed, edge, physical-destination MSI of *vector* to the LAPIC
        *dest_apic_id*; returns KVM's result (> 0 delivered, 0 blocked by the guest)."""
        msi = struct.pack("=IIIII12x", 0xFEE00000 | (dest_apic_id << 12), 0, vector, 0, 0)
        return fcntl.ioctl(self.fd, KVM_SIGNAL_MSI, msi)

    def irq_line(self, irq: int, level: int) -> None:
        """KVM_IRQ_LINE: set GSI *irq* to *level* on the in-kernel irqchip."""
        fcntl.ioctl(self.fd, KVM_IRQ_LINE, struct.pack("=II", irq, level))

    def close(self) -> None:
        """Close every vCPU, the VM descriptor and the guest memory mapping."""
        for vcpu in self.vcpus:
            vcpu.close()
        self.vcpus = []
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.mem is not None:
            self.mem.close()
            self.mem = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Vcpu:
    """One vCPU: its file descriptor and its mapped ``kvm_run`` area."""

    def __init__(self, vm: Vm, vcpu_id: int):
        self.vm = vm
        self.run_area = None
        self.fd = fcntl.ioctl(vm.fd, KVM_CREATE_VCPU, vcpu_id)
        try:
            self.run_area = mmap.mmap(self.fd, vm.kvm.vcpu_mmap_size, mmap.MAP_SHARED,
                                      mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            self.close()
            raise

    def set_real_mode(self, rip: int, sp: int = 0x8000) -> None:
        """Start in real mode at cs:ip = 0:*rip* with ss:sp = 0:*sp* and flags = 0x2."""
        sregs = bytearray(312)
        fcntl.ioctl(self.fd, KVM_GET_SREGS, sregs, True)
        for seg in (_SREGS_CS, _SREGS_SS):
            struct.pack_into("=Q", sregs, seg, 0)        # base
            struct.pack_into("=H", sregs, seg + 12, 0)   # selector
        fcntl.ioctl(self.fd, KVM_SET_SREGS, bytes(sregs))
        regs = bytearray(144)
        struct.pack_into("=Q", regs, _REGS_RIP, rip)
        struct.pack_into("=Q", regs, _REGS_RFLAGS, 0x2)
        struct.pack_into("=Q", regs, _REGS_RSP, sp)
        fcntl.ioctl(self.fd, KVM_SET_REGS, bytes(regs))

    def regs(self) -> tuple:
        """Return the 18 general registers (rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp,
        r8-r15, rip, rflags) as integers."""
        regs = bytearray(144)
        fcntl.ioctl(self.fd, KVM_GET_REGS, regs, True)
        return struct.unpack("=18Q", regs)

    def set_cpuid(self, cpuid2: bytes) -> None:
        """KVM_SET_CPUID2 with a ``kvm_cpuid2`` (e.g. :meth:`Kvm.supported_cpuid`); KVM
        refuses long mode in KVM_SET_SREGS unless the guest CPUID has LM."""
        fcntl.ioctl(self.fd, KVM_SET_CPUID2, bytearray(cpuid2), True)

    def state_buffer(self, kind: str) -> bytearray:
        """A buffer for the state ioctls of *kind* (a key of :data:`STATE_IOCTLS`); the
        ``msrs`` buffer is pre-filled with :data:`STATE_MSRS`."""
        if kind == "msrs":
            buf = bytearray(8 + 16 * len(STATE_MSRS))
            struct.pack_into("=I", buf, 0, len(STATE_MSRS))
            for i, index in enumerate(STATE_MSRS):
                struct.pack_into("=I", buf, 8 + 16 * i, index)
            return buf
        buf = bytearray(STATE_IOCTLS[kind][2])
        if kind == "xcrs":
            fcntl.ioctl(self.fd, KVM_GET_XCRS, buf, True)
        return buf

    def get_state(self, kind: str, buf: bytearray) -> None:
        """The KVM_GET_* ioctl of *kind* into *buf* (from :meth:`state_buffer`)."""
        fcntl.ioctl(self.fd, STATE_IOCTLS[kind][0], buf, True)

    def set_state(self, kind: str, buf: bytearray) -> None:
        """The KVM_SET_* ioctl of *kind* from *buf*."""
        fcntl.ioctl(self.fd, STATE_IOCTLS[kind][1], buf, True)

    def set_mp_state(self, state: int) -> None:
        """KVM_SET_MP_STATE (:data:`MP_STATE_RUNNABLE`, :data:`MP_STATE_HALTED`, ...)."""
        fcntl.ioctl(self.fd, KVM_SET_MP_STATE, struct.pack("=I", state))

    def mp_state(self) -> int:
        """KVM_GET_MP_STATE."""
        buf = bytearray(4)
        fcntl.ioctl(self.fd, KVM_GET_MP_STATE, buf, True)
        return struct.unpack("=I", buf)[0]

    def set_immediate_exit(self, value: int) -> None:
        """Write ``kvm_run.immediate_exit``: while non-zero, KVM_RUN returns EINTR at once.
        A kicker sets it before signalling, so a kick that lands just before the target
        enters KVM_RUN is not lost (Documentation/virt/kvm/api.rst, immediate_exit)."""
        self.run_area[_RUN_IMMEDIATE_EXIT] = value

    def run(self) -> int:
        """Enter the guest once (KVM_RUN); return the exit reason."""
        fcntl.ioctl(self.fd, KVM_RUN, 0)
        return self.exit_reason()

    def exit_reason(self) -> int:
        """The exit reason of the last KVM_RUN."""
        return struct.unpack_from("=I", self.run_area, _RUN_EXIT_REASON)[0]

    def io(self) -> tuple[int, int, int, bytes]:
        """For a KVM_EXIT_IO exit: (direction, size, port, data bytes of the first access)."""
        direction, size, port, _count, off = struct.unpack_from("=BBHIQ", self.run_area,
                                                                _RUN_EXIT_UNION)
        return direction, size, port, self.run_area[off:off + size]

    def io_value(self) -> int:
        """The value of the last OUT (KVM_EXIT_IO), as an unsigned integer."""
        _d, _size, _port, data = self.io()
        return int.from_bytes(data, "little")

    def expect_io(self, port: int | None = None) -> None:
        """Raise :class:`KvmError` unless the last exit was port I/O (to *port* if given)."""
        reason = self.exit_reason()
        if reason != KVM_EXIT_IO:
            name = EXIT_NAMES.get(reason, str(reason))
            rip = self.regs()[16]
            raise KvmError(f"guest stopped with KVM_EXIT_{name} at rip={rip:#x}, expected IO")
        if port is not None and self.io()[2] != port:
            raise KvmError(f"guest wrote to port {self.io()[2]:#x}, expected {port:#x}")

    def close(self) -> None:
        """Unmap the kvm_run area and close the vCPU descriptor."""
        if self.run_area is not None:
            self.run_area.close()
            self.run_area = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
