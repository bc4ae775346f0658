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
kvm_run                        mmap'd      exit_reason u32 at 8, exit union at 32
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

KVM_CAP_IRQCHIP = 0
KVM_CAP_SET_TSS_ADDR = 4
KVM_CAP_SIGNAL_MSI = 77

#: kvm_run.exit_reason values used here (the rest are reported by number).
EXIT_NAMES = {0: "UNKNOWN", 1: "EXCEPTION", 2: "IO", 5: "HLT", 6: "MMIO", 8: "SHUTDOWN",
              9: "FAIL_ENTRY", 10: "INTR", 17: "INTERNAL_ERROR"}
KVM_EXIT_IO = 2
KVM_EXIT_HLT = 5

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
