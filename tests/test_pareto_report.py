"""den.pareto's report on the committed search behind den_pmnist (no training): rings only on
the trials chosen, budgets drawn, labels that never share a spot, never written into the
sweep folder."""

from __future__ import annotations

import pytest

from den.reports import pareto

from conftest import REPO_ROOT

SWEEP = REPO_ROOT / "experiments" / "pmnist_pareto" / "sweep"


@pytest.fixture(scope="module")
def front():
    return pareto.load_front(SWEEP)


def legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_rings_only_on_the_chosen_trials(front):
    assert pareto.choose(front, None) == []  # no --choose: nothing is ringed
    fig = pareto.front_figure(front, [], pareto.Budgets())
    assert "chosen" not in legend(fig)
    fig = pareto.front_figure(front, pareto.choose(front, [4]), pareto.Budgets())
    rings = [c for c in fig.axes[0].collections if c.get_label() == "chosen"]
    assert len(rings) == 1 and len(rings[0].get_offsets()) == 1


def test_budgets_are_drawn_and_trials_over_the_stored_budget_crossed(front):
    budgets = pareto.Budgets(nonzero=1.0, stored=2.0, project_to=10)
    fig = pareto.front_figure(front, pareto.choose(front, [4]), budgets)
    labels = legend(fig)
    assert "non-zero budget 1" in labels and "over the stored budget 2" in labels
    ax = fig.axes[0]
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [1.0]
    assert "projected to 10 tasks" in ax.get_xlabel()


def test_trial_labels_never_share_a_spot(front):
    fig = pareto.front_figure(front, [], pareto.Budgets())
    ax = fig.axes[0]
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    assert len(boxes) == len(front.pareto)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), "two trial numbers drawn on top of each other"


def test_the_report_goes_to_outputs_not_into_the_sweep_folder(front, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert pareto.main([str(SWEEP), "--choose", "4"]) == 0
    assert (tmp_path / "outputs" / "pareto" / front.study_name / "pareto.md").is_file()
    assert not list(SWEEP.glob("pareto*"))
