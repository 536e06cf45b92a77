"""The remedies recover what the demo planted: fixes, reruns, restart chains, a regression."""

from __future__ import annotations

import json
from collections import defaultdict

import pandas as pd
import pytest

from runcrawler_assets.analytics import AnalysisResult
from runcrawler_assets.analytics.fixes import FIX, RERUN, RESTART
from runcrawler_assets.demo.knobs import KNOBS
from runcrawler_tests.conftest import DemoWarehouse


@pytest.fixture(scope="module")
def planted(demo_warehouse: DemoWarehouse) -> dict[str, list[dict]]:
    """The demo's planted remedies by kind, each with the run that carries it."""
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for line in demo_warehouse.truth.read_text(encoding="utf-8").splitlines():
        truth = json.loads(line)
        if truth.get("remedy"):
            by_kind[truth["remedy"]["kind"]].append({**truth["remedy"], "run": truth["run_path"]})
    return by_kind


@pytest.fixture(scope="module")
def fixes(demo_results: dict[str, AnalysisResult]) -> pd.DataFrame:
    return demo_results["fixes"].tables["fixes"].set_index("failed_run_path")


def test_nine_in_ten_planted_fixes_are_found_with_their_keyword(
    planted: dict[str, list[dict]], fixes: pd.DataFrame
) -> None:
    assert len(planted[FIX]) >= 20
    found = [
        p
        for p in planted[FIX]
        if p["failed_run"] in fixes.index
        and fixes.loc[p["failed_run"], "fixing_run_path"] == p["run"]
        and fixes.loc[p["failed_run"], "kind"] == FIX
        and list(fixes.loc[p["failed_run"], "changed_keywords"]) == [p["keyword"]]
    ]
    assert len(found) >= 0.9 * len(planted[FIX]), f"{len(found)} of {len(planted[FIX])}"


def test_reruns_are_never_reported_as_fixes(
    planted: dict[str, list[dict]], fixes: pd.DataFrame
) -> None:
    assert len(planted[RERUN]) >= 10
    for rerun in planted[RERUN]:
        row = fixes.loc[rerun["failed_run"]]
        assert (row["fixing_run_path"], row["kind"]) == (rerun["run"], RERUN)
    reported = {
        (failed, fixing)
        for failed, fixing, kind in zip(
            fixes.index, fixes["fixing_run_path"], fixes["kind"], strict=True
        )
        if kind == FIX
    }
    assert not reported & {(r["failed_run"], r["run"]) for r in planted[RERUN]}


def test_the_typical_fix_of_the_planted_errors_is_the_planted_keyword(
    planted: dict[str, list[dict]], demo_results: dict[str, AnalysisResult]
) -> None:
    """Each error the demo fixed by lowering CFL reads, beside it, "change cfl"."""
    keywords = {p["keyword"] for p in planted[FIX]}
    signatures = demo_results["fixes"].tables["error_fixes"]
    fixed_categories = {"numerical_instability", "thermo_table"}  # knobs' settings failures
    fixed = signatures[
        signatures["error_category"].isin(fixed_categories) & (signatures["fixed_runs"] >= 3)
    ]
    assert len(fixed) >= 2
    for text in fixed["typical_fix"]:
        assert any(str(text).startswith(f"change {keyword} ") for keyword in keywords), text


def test_each_restart_chain_is_one_campaign_with_its_restarts(
    planted: dict[str, list[dict]], demo_results: dict[str, AnalysisResult]
) -> None:
    campaigns = demo_results["campaigns"].tables["campaigns"]
    campaign_of = {
        path: row.campaign_id for row in campaigns.itertuples(index=False) for path in row.run_paths
    }
    chains: dict[str, set[str]] = defaultdict(set)
    for entry in planted[RESTART] + planted["campaign_start"]:
        chains[entry["campaign"]].add(entry["run"])
    assert len(chains) >= 8
    for first, runs in chains.items():
        assert {campaign_of[run] for run in runs} == {campaign_of[first]}, first
        row = campaigns.set_index("campaign_id").loc[campaign_of[first]]
        assert row["restarts"] >= len(runs) - 1


def test_the_planted_regression_is_flagged_and_the_neutral_version_is_not(
    demo_results: dict[str, AnalysisResult],
) -> None:
    effects = demo_results["version_effects"].tables["version_effects"]
    avbp = effects[effects["solver"] == "avbp"].set_index("solver_version")
    regressed, neutral = avbp.loc[KNOBS.regressed_version], avbp.loc[KNOBS.neutral_version]
    assert regressed["regression"] and regressed["failure_ratio"] > 1
    assert not neutral["failure_flagged"] and not neutral["regression"]
    assert not avbp.drop(KNOBS.regressed_version)["regression"].any()
    assert KNOBS.regressed_version in " ".join(demo_results["version_effects"].findings)
    assert KNOBS.neutral_version not in " ".join(demo_results["version_effects"].findings)
