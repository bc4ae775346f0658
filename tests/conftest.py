"""Shared helpers: every run in the suite is checked against the model's invariants."""

import pytest

import vsmsim


def run(spec: dict, **kw):
    """Simulate a scenario dict with the engine's debug assertions on, then check it."""
    sc = vsmsim.Scenario.model_validate(spec)
    res = vsmsim.simulate(sc, debug=True, **kw)
    vsmsim.check(res)
    return res


def cost(profile: str, *names: str) -> int:
    """Sum of the named costs (ns) of a built-in profile; 'name*k' counts k times."""
    p = vsmsim.load_profile(profile)
    total = 0
    for n in names:
        name, _, times = n.partition("*")
        total += int(p.mean(name)) * int(times or 1)
    return total


def kvm_mark(what: str):
    """A skipif mark for tests that need a usable /dev/kvm on x86-64 (*what* needs it)."""
    import platform

    from vsmsim.calibrate.kvm import KvmUnavailable, open_kvm

    reason = None
    if platform.machine() not in ("x86_64", "AMD64", "amd64"):
        reason = f"{what} need x86-64, this is {platform.machine()}"
    else:
        try:
            open_kvm().close()
        except KvmUnavailable as e:
            reason = str(e)
    return pytest.mark.skipif(reason is not None, reason=str(reason))


@pytest.fixture
def runner():
    return run


#: Results with more interrupt rows than this are not checked by the autouse fixture
#: (check() is linear, but a few long runs would dominate the suite's time).
CHECK_ROWS = 200_000


@pytest.fixture(autouse=True)
def check_every_result(monkeypatch):
    """Every result a test simulates in this process passes vsmsim.check() (issue 14)."""
    import vsmsim.api

    real = vsmsim.api.harvest

    def checked(sim):
        fields = real(sim)
        if fields["interrupts"] is not None and len(fields["interrupts"]) <= CHECK_ROWS:
            vsmsim.check(vsmsim.Result.from_run(fields))
        return fields

    # simulate() hands the engine's harvest to Result.from_run: check every one of them.
    monkeypatch.setattr(vsmsim.api, "harvest", checked)
