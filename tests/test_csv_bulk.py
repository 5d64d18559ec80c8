"""Long CSV files read in bulk (models/csv_io.py, read_csv): the same recording, notes or error as line by line.
Every test of tests/test_readers.py also runs both ways (its csv_read fixture)."""

from __future__ import annotations

import numpy as np
import pytest

from ecgmon.models.records import RecordError, read_csv


@pytest.mark.parametrize("change", ["none", "extra field", "blank line", "comment line", "inf", "nan", "empty cell",
                                    "text", "thousands", "no newline at end", "trailing note"])
def test_a_large_csv_is_read_in_bulk_as_it_would_be_line_by_line(tmp_path, monkeypatch, change):
    """A long file's rows are parsed in bulk (numpy) after its start decides the dialect; a change deep in the file
    that the bulk read would not read as the line-by-line read does sends it there: the same recording, the same
    notes, or the same error at the same line, either way."""
    from ecgmon.models import csv_io

    fs, n = 250.0, 15000
    rng = np.random.default_rng(1)
    rows = [f"{k},{k / fs:.3f},{v:.4f}" for k, v in enumerate(rng.normal(0, 0.3, n))]
    deep = 11000  # well past the start the dialect is taken from
    edit = {"extra field": lambda r: r + ",7", "inf": lambda r: r.rsplit(",", 1)[0] + ",inf",
            "nan": lambda r: r.rsplit(",", 1)[0] + ",nan", "empty cell": lambda r: r.rsplit(",", 1)[0] + ",",
            "text": lambda r: r.rsplit(",", 1)[0] + ",abc", "thousands": lambda r: "1.234" + r[r.index(","):],
            "trailing note": lambda r: r + " # electrode check"}
    if change in edit:
        rows[deep] = edit[change](rows[deep])
    elif change == "blank line":
        rows.insert(deep, "")
    elif change == "comment line":
        rows.insert(deep, "# lead re-attached")
    text = "# sampling rate: 250 Hz\nsample,time_s,ECG (mV)\n" + "\n".join(rows) + ("" if change == "no newline at end"
                                                                                 else "\n")
    path = tmp_path / "long.csv"
    path.write_text(text)
    monkeypatch.setattr(csv_io, "HEAD_BYTES", 4096)
    used = []
    bulk = csv_io._bulk
    monkeypatch.setattr(csv_io, "_bulk", lambda *a: used.append(r := bulk(*a)) or r)

    def read_it(threshold):
        monkeypatch.setattr(csv_io, "BULK_BYTES", threshold)
        try:
            r = read_csv(path)
        except RecordError as err:
            return str(err)
        return r.fs, r.lead, r.signal, r.notes

    by_lines = read_it(2**62)
    assert not used
    in_bulk = read_it(0)
    if isinstance(by_lines, str):
        assert in_bulk == by_lines  # the same refusal, naming the same line
    else:
        assert in_bulk[:2] == by_lines[:2] and in_bulk[3] == by_lines[3]
        np.testing.assert_array_equal(in_bulk[2], by_lines[2])
    # the bulk read did the work where the file allows it exactly
    assert (used[0] is not None) == (change in ("none", "no newline at end", "trailing note", "nan")), used
