"""The steps of each built-in design's paths, written out by hand from the implementations.

Not read from the design tables: these lists come from the code the tables cite (vianpl/qemu
hw/hyperv/hyperv.c and target/i386/kvm/kvm.c at e5750204, the planes RFC), as described in
docs/designs.md, so a test comparing a simulated round trip with their sum checks the tables.
Names are cost names; 'name*k' counts k times (as conftest.cost reads them).
"""

from conftest import cost

# kvm_arch_get_registers: events, mp_state, regs, xsave, xcrs, sregs2, msrs (~100 entries),
# lapic, debugregs (no nested state: the guest CPU has no VMX/SVM): 9 ioctls.
GET = ["ioctl_events", "ioctl_mp_state", "ioctl_regs", "ioctl_fpu", "ioctl_xcrs", "ioctl_sregs",
       "ioctl_msrs", "msr_entry*100", "ioctl_lapic", "ioctl_debugregs"]
# kvm_arch_put_registers(KVM_PUT_RESET_STATE): sregs2, regs, xsave, xcrs, msrs (~100),
# vcpu events, mp_state, the TSC-deadline MSR (1 entry), debugregs: 9 ioctls.
PUT = ["ioctl_sregs", "ioctl_regs", "ioctl_fpu", "ioctl_xcrs", "ioctl_msrs", "msr_entry*100",
       "ioctl_events", "ioctl_mp_state", "ioctl_msrs", "msr_entry", "ioctl_debugregs"]
# planes: the VMM moves VSM's shared registers (GPRs, CR2, DRs, XCR0), a get and a set each.
MOVE = ["ioctl_regs*2", "ioctl_sregs*2", "ioctl_debugregs*2", "ioctl_xcrs*2"]

_IDG_SWITCH = ["exit", "uexit", *GET, "vmm_switch", "handoff_futex", *PUT]
SWITCH_STEPS = {
    "vm-per-vtl": {
        "call": ["exit", "uexit", *GET, "kick_parked", "kvm_run", *GET, "vmm_switch", *PUT],
        "return": ["exit", "uexit", "ioctl_tlb_flush_inhibit", *GET, "handoff_futex",
                   "vmm_switch", *PUT],
        "interrupt": [*GET, "handoff_futex", *GET, "vmm_switch", *PUT, "kvm_run"],
        "intercept": ["exit", "uexit", *GET, "kick_parked", "kvm_run", "uexit",
                      "handoff_futex*2", *GET, "vmm_switch", *PUT, "kvm_run"],
    },
    "apic-id-groups": {
        "call": _IDG_SWITCH, "return": _IDG_SWITCH, "intercept": _IDG_SWITCH,
        "interrupt": [*GET, "vmm_switch", "handoff_futex", *PUT, "kvm_run"],
    },
    "planes": {
        "call": ["exit", "uexit", *MOVE, "vmm_switch", "vtl_state_switch"],
        "return": ["exit", "uexit", *MOVE, "vmm_switch", "vtl_state_switch"],
        "intercept": ["exit", "uexit", *MOVE, "vmm_switch", "vtl_state_switch"],
        "interrupt": ["kvm_run", *MOVE, "vmm_switch", "vtl_state_switch"],
    },
    "planes-inkernel": {
        "call": ["exit", "vtl_state_switch"], "return": ["exit", "vtl_state_switch"],
        "intercept": ["exit", "vtl_state_switch"], "interrupt": ["vtl_state_switch"],
    },
}
SWITCH_STEPS["apic-namespaces"] = SWITCH_STEPS["apic-id-groups"]  # a review idea: A's VMM
SWITCH_STEPS["planes-rfc"] = SWITCH_STEPS["planes"]  # the RFC as posted switches as planes

# State ioctls each switch issues (the parking KVM_SET_MP_STATE of a vm-per-vtl return,
# do_vtl1_poll, runs on VTL1's thread in parallel: counted, costs VTL0 nothing).
SWITCH_IOCTLS = {
    "vm-per-vtl": {"call": 27, "return": 20, "interrupt": 27, "intercept": 27},
    "apic-id-groups": {"call": 18, "return": 18, "interrupt": 18, "intercept": 18},
    "apic-namespaces": {"call": 18, "return": 18, "interrupt": 18, "intercept": 18},
    "planes": {"call": 8, "return": 8, "interrupt": 8, "intercept": 8},
    "planes-rfc": {"call": 8, "return": 8, "interrupt": 8, "intercept": 8},
    "planes-inkernel": {"call": 0, "return": 0, "interrupt": 0, "intercept": 0},
}

# deliver.inactive.timer: (latency-only steps, receiver steps)
INACTIVE_TIMER_STEPS = {
    "vm-per-vtl": (["timer_expiry", "msi_halted", "kvm_run", "kick"], ["exit", "kvm_run"]),
    "apic-id-groups": (["timer_expiry", "handoff_eventfd", "kick"], ["exit", "kvm_run"]),
    "apic-namespaces": (["timer_expiry", "handoff_eventfd", "kick"], ["exit", "kvm_run"]),
    "planes": ([], ["timer_expiry", "kvm_run"]),
    # as posted: no notification; taken at the VP's next exit, which pays its own exit
    "planes-rfc": ([], ["kvm_run"]),
    "planes-inkernel": ([], ["timer_expiry"]),
}


def switch_ns(design: str, reason: str, profile: str = "default") -> int:
    """Sum (ns) of the steps of one switch of *design* under *profile*."""
    return cost(profile, *SWITCH_STEPS[design][reason])


def inactive_timer_ns(design: str, profile: str = "default") -> tuple[int, int]:
    """(latency-only ns, receiver ns) of a higher-VTL timer expiring while VTL0 runs."""
    none, vp = INACTIVE_TIMER_STEPS[design]
    return cost(profile, *none), cost(profile, *vp)
