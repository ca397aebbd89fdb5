from __future__ import annotations

import pytest

from infra.accounting import AccountingError, check_counts, fold_tallies


def test_fold_tallies_sums_per_stage_and_reason():
    counts = fold_tallies(
        [
            [["license", "in", ""], 5],
            [["license", "kept", ""], 3],
            [["license", "rejected", "license"], 2],
            [["scrub", "stat", "emails"], 4],
        ]
    )
    assert counts["license"] == {"in": 5, "kept": 3, "rejected": {"license": 2}, "stats": {}}
    assert counts["scrub"]["stats"] == {"emails": 4}


def test_check_counts_finds_a_lost_record():
    counts = {"read": {"in": 3, "kept": 3, "rejected": {}}, "license": {"in": 3, "kept": 1, "rejected": {"license": 1}}}
    with pytest.raises(AccountingError, match="stage license: read 3 != kept 1 \\+ rejected 1"):
        check_counts(counts, [["read", "license"]], {})


def test_check_counts_finds_a_broken_chain_and_a_short_output():
    counts = {"read": {"in": 3, "kept": 3, "rejected": {}}, "license": {"in": 2, "kept": 2, "rejected": {}}}
    with pytest.raises(AccountingError) as err:
        check_counts(counts, [["read", "license"]], {"documents": (["license"], 1)})
    assert "stage license read 2 records but stage read kept 3" in str(err.value)
    assert "documents: wrote 1 rows but stages ['license'] kept 2" in str(err.value)


def test_check_counts_follows_a_grouping_stage_by_its_stat():
    counts = {
        "join": {"in": 5, "kept": 5, "rejected": {}, "stats": {"threads": 2}},
        "format": {"in": 1, "kept": 1, "rejected": {}, "stats": {}},
    }
    with pytest.raises(AccountingError, match=r"stage format read 1 records but stage join emitted 2 \(threads\)"):
        check_counts(counts, [["join"], ["format"]], {}, [("join", "threads", "format")])
    counts["format"].update({"in": 2, "kept": 2})
    check_counts(counts, [["join"], ["format"]], {}, [("join", "threads", "format")])
