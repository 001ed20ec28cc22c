"""Forgetting quality F of the registered methods over K models a side (``unlearnlab compare --forgetting-quality``),
on a tiny study: real MLPs on real MNIST, three models a side."""

import json

import pytest

from unlearnlab import cli
from unlearnlab.compare import forgetting
from unlearnlab.compare.forgetting import Study, model_counts, run_study

TINY = Study("mlp", models=3, train_subset=600, num_epochs=1, forget_fraction=0.05, scored=10)
METHODS = ["finetune", "gradient_ascent", "amnesiac"]


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("UNLEARNLAB_RESUME", raising=False)


def test_model_counts_double_up_to_k():
    assert model_counts(32) == [4, 8, 16, 32]
    assert model_counts(3) == [3]
    assert model_counts(100) == [4, 8, 16, 32, 64, 100]
    with pytest.raises(ValueError, match="at least 3 models"):
        Study("mlp", 2, 600, 1, 0.05, 10)


def test_every_method_gets_f_against_k_retrained_models_and_a_rerun_loads_every_pair(cache, tmp_path, monkeypatch):
    result = run_study(METHODS, "quick", study=TINY, device="cpu")
    rows = {r.name: r for r in result.rows}
    assert list(rows) == METHODS
    for name in ("finetune", "gradient_ascent"):
        row = rows[name]
        assert 0.0 <= row.quality.score <= 1.0 and row.quality.n_models == 3
        assert len(row.quality.epsilons) == TINY.scored
        assert row.by_models == {3: row.quality.score}
        assert 0.0 <= row.forget_acc <= 1.0 and row.seconds > 0
    assert rows["amnesiac"].quality is None and rows["amnesiac"].error.startswith("not run: it needs the ledger")
    # the references: the originals (no time spent) and three more retrained models, scored the same way
    assert result.original.seconds == 0.0 and result.original.quality is not None
    assert result.retrained.name == "retrained (seeds 3 to 5)" and result.retrained.quality is not None
    assert set(result.ranking_by_models()) == {3}

    table = result.markdown()
    assert "K = 3 models a side" in table and "not run: it needs the ledger" in table
    assert table.index("original (no unlearning)") < table.index("retrained (seeds 3 to 5)") < table.index("amnesiac")
    paths = result.write(tmp_path / "out")
    saved = json.loads(paths[0].read_text())
    assert [m["F"] for m in saved["methods"]] == [rows[n].quality and rows[n].quality.score for n in METHODS]
    assert paths[2].stat().st_size > 0

    def runs_again(*args, **kwargs):
        raise AssertionError("a finished pair should load from its checkpoint")

    monkeypatch.setattr(forgetting, "_pair", runs_again)
    again = run_study(METHODS, "quick", study=TINY, device="cpu")
    assert again.resumed == 3 + 3 + 1  # amnesiac stops at its first seed
    assert [r.quality and r.quality.score for r in again.rows] == [r.quality and r.quality.score for r in result.rows]


def test_cli_scores_forgetting_quality_into_its_folder(cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(forgetting.STUDIES, "quick", TINY)
    out = tmp_path / "fq"
    argv = ["compare", "--forgetting-quality", "--models", "4", "--methods", "finetune", "--device", "cpu"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "K = 4 models a side" in printed and "| finetune |" in printed
    assert sorted(p.name for p in out.iterdir()) == [f"forgetting_quality.{e}" for e in ("json", "md", "png")]
    assert cli.main(["compare", "--forgetting-quality", "--methods", "no_such_method", "--out", str(out)]) == 2


def test_the_study_on_a_local_cluster_gives_the_same_rows(cache, monkeypatch):
    here = run_study(METHODS[:2], "quick", study=TINY, device="cpu")
    monkeypatch.setenv("UNLEARNLAB_RESUME", "0")  # the workers run every pair again (they inherit the setting)
    there = run_study(METHODS[:2], "quick", study=TINY, device="cpu", scheduler="local", jobs=2)
    assert (here.workers, there.workers, there.resumed) == (1, 2, 0)

    def measured(result):
        return [(r.name, r.quality.score, r.forget_acc, r.retain_acc, r.test_acc) for r in result.rows]

    assert measured(there) == measured(here)
    assert "as tasks on 2 worker processes" in there.markdown() and there.as_dict()["seconds"] > 0


def test_notebook_08_reads_each_method_between_doing_nothing_and_retraining(cache):
    from unlearnlab.lessons import capstone

    result = run_study(METHODS[:2], "quick", study=TINY, device="cpu")
    text = capstone.quality_reading(result)
    assert "K = 3 models a side" in text and f"F = {result.retrained.quality.score:.3f}" in text
    nothing, ceiling = result.original.quality.score, result.retrained.quality.score
    if ceiling > nothing:
        share = (result.rows[0].quality.score - nothing) / (ceiling - nothing)
        assert f"{result.rows[0].name} {share:+.0%}" in text
    else:
        assert "does not tell doing nothing from retraining" in text
