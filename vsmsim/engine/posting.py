"""Which VTLs get posted interrupts (APICv/AVIC) and IPI virtualization, per run.

Posting is not a fixed property of a design: the host, the guest and the design decide it
together. KVM keeps a set of *APICv inhibit reasons* per VM (``struct kvm``); APICv is off
for the whole VM while any reason that the vendor requires is set.

- The design must be able to post at all (capability ``posted``) and the host must offer
  APICv/AVIC (``vm.apicv``).
- ``APICV_INHIBIT_REASON_LOGICAL_ID_ALIASED``: set by ``kvm_recalculate_apic_map``
  (``arch/x86/kvm/lapic.c``) when the logical map is disabled, as it is when APIC IDs alias
  across groups (capability ``logical_map_disabled``). It is in
  ``AVIC_REQUIRED_APICV_INHIBITS`` (``arch/x86/kvm/svm/svm.h``) but not in
  ``VMX_REQUIRED_APICV_INHIBITS``: it inhibits on AMD only (``vm.vendor``).
- ``APICV_INHIBIT_REASON_HYPERV``: set by ``synic_update_vector``
  (``arch/x86/kvm/hyperv.c``) while a SynIC uses AutoEOI (``guest.auto_eoi``, VTL0's
  SynIC), required by both vendors. A guest told that AutoEOI is deprecated
  (``vm.deprecate_auto_eoi``, CPUID 0x40000004 EAX bit 9,
  ``HV_DEPRECATING_AEOI_RECOMMENDED``) does not use it (that Windows honours the bit is
  inferred; Linux does, ``drivers/hv/hv.c``).
- Scope: an inhibit covers one ``struct kvm``: with a VM per VTL (capability
  ``per_vtl_vm``) only the VTL whose SynIC uses AutoEOI; otherwise every VTL.
- IPI virtualization needs APICv on the sending VTL, the design's ``ipiv`` capability and
  the host's (``vm.ipiv``).
"""

from __future__ import annotations


def posting(sc, design) -> tuple[list[bool], list[bool]]:
    """``(posted, ipiv)``: for each VTL of scenario *sc* under *design*, usable or not."""
    caps, vm = design.capabilities, sc.vm
    base = vm.apicv and caps["posted"]
    if vm.vendor == "amd" and caps["logical_map_disabled"]:
        base = False
    hyperv_inhibit = sc.guest.auto_eoi and not vm.deprecate_auto_eoi
    posted = []
    for vtl in range(vm.vtls):
        hit = hyperv_inhibit and (vtl == 0 or not caps["per_vtl_vm"])
        posted.append(bool(base and not hit))
    ipiv = [bool(p and vm.ipiv and caps["ipiv"]) for p in posted]
    return posted, ipiv
