"""A fake timer for autotune's whole-graph races, shared by the autotune test modules."""
from __future__ import annotations

from toolkit.nn import autotune


def fake_race(monkeypatch, times: dict[str, float]) -> list[list[str]]:
    """Fake medians: ``times`` for the whole-graph race (1.0 for a candidate not named), aten for
    every convolution. Returns the candidates of each whole-graph race, in order."""
    races: list[list[str]] = []

    def fake(fns, budget_s=autotune.BUDGET_S):
        if "aten" in fns:
            return {name: 0.5 if name == "aten" else 1.0 for name in fns}
        races.append(list(fns))
        return {name: times.get(name, 1.0) for name in fns}

    monkeypatch.setattr(autotune, "_measure", fake)
    return races
