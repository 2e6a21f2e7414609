"""Choosing the query expansion: every setting scored at every archive size, and the rule refuses a setting
that wrecks a small archive even when it is the best on the whole one."""

import numpy as np
import pytest

from shared.model.expansion_choice import best_setting, score_settings


def rows_for(box: str, archive_maps: dict[tuple[int, float], dict[int, float]]) -> list[dict]:
    return [{"box": box, "archive": a, "neighbours": n, "power": p, "map": m}
            for (n, p), by_archive in archive_maps.items() for a, m in by_archive.items()]


def test_the_best_whole_archive_setting_loses_when_it_wrecks_a_small_archive():
    maps = {(0, 0.0): {10: 0.95, 2000: 0.94}, (10, 0.0): {10: 0.52, 2000: 0.946},
            (10, 10.0): {10: 0.948, 2000: 0.944}, (5, 10.0): {10: 0.949, 2000: 0.942}}
    rows = rows_for("expert", maps) + rows_for("auto", {k: {10: v[10] - 0.05, 1990: v[2000] - 0.05}
                                                        for k, v in maps.items()})
    chosen = best_setting(rows)
    assert (chosen["neighbours"], chosen["power"]) == (10, 10.0)
    assert chosen["map_expert_box"] == 0.944 and chosen["map_auto_box"] == pytest.approx(0.894)
    with pytest.raises(ValueError, match="no expansion setting"):
        best_setting(rows_for("expert", {(0, 0.0): {10: 0.95}, (10, 0.0): {10: 0.5}}))


def test_every_setting_is_scored_on_every_archive_size_with_the_whole_database_last():
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8) * 4
    d_types, q_types = rng.integers(0, 3, 60), rng.integers(0, 3, 12)
    database = centres[d_types] + rng.normal(size=(60, 8))
    queries = centres[q_types] + rng.normal(size=(12, 8))
    database[3] = np.nan  # a database image without a box is left out, not drawn
    rows = score_settings({"expert": (queries, database)}, q_types, d_types, archives=(10, 30), draws=2)
    assert sorted({r["archive"] for r in rows}) == [10, 30, 59]
    assert len(rows) == 3 * (1 + 3 * 4) and all(0 <= r["map"] <= 1 for r in rows)
    plain = [r for r in rows if r["neighbours"] == 0 and r["archive"] == 59][0]
    assert plain["map"] > 0.8  # well-separated types: retrieval works before any expansion


def test_the_command_refuses_a_fold_the_checkpoint_trained_on(capsys):
    from services.modeling.expansion import command
    from shared.model.checkpoint import SHIPPED

    assert command(["--checkpoint", str(SHIPPED), "--fold", "4"]) == 2
    assert "expected a fold the checkpoint never saw, found fold 4" in capsys.readouterr().out
