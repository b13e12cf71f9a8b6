"""``netfield sample --resume`` never reuses a damaged chunk: the result equals an uninterrupted run, with a
one-line note per recomputed chunk, or exits 2 naming a chunk of another run."""

import numpy as np
import pytest

from netfield.cli import main

MANIFEST = "__manifest__"  # the manifest entry of a chunk (netfield._runtime.checkpoint)


def _argv(tmp_path, *extra):
    return ["sample", "--depth", "2", "--width", "8", "--networks", "4", "--chunk-size", "2", "--digits", "3",
            "--seed", "3", "--quiet", "--keep-checkpoints", "--checkpoint", str(tmp_path / "ck"),
            "--out", str(tmp_path / "s.npz"), *extra]


def _arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _drop_array(arrays):
    arrays.pop("preactivation_2_2")


def _nan(arrays):
    arrays["readout"] = np.full_like(arrays["readout"], np.nan)


def _malformed(arrays):
    arrays.clear()
    arrays["junk"] = np.zeros(3)


@pytest.mark.parametrize("damage", [_drop_array, _nan, _malformed])
def test_sample_resume_recomputes_a_damaged_chunk(tmp_path, capsys, damage):
    assert main(_argv(tmp_path)) == 0
    reference = _arrays(tmp_path / "s.npz")
    chunks = sorted((tmp_path / "ck").glob("*.npz"))
    assert len(chunks) == 2
    arrays = _arrays(chunks[1])
    damage(arrays)
    arrays.pop(MANIFEST, None)  # as an older writer, a fault or a hand edit leaves it
    np.savez(chunks[1], **arrays)
    capsys.readouterr()
    assert main(_argv(tmp_path, "--resume")) == 0
    err = capsys.readouterr().err
    assert err.count("netfield: note: checkpoint chunk") == 1 and chunks[1].name in err and "recomputing" in err
    resumed = _arrays(tmp_path / "s.npz")
    assert sorted(resumed) == sorted(reference)
    for name in reference:
        np.testing.assert_array_equal(resumed[name], reference[name])


def test_sample_resume_rejects_a_chunk_of_another_run(tmp_path, capsys):
    assert main(_argv(tmp_path)) == 0
    chunks = sorted((tmp_path / "ck").glob("*.npz"))
    chunks[1].write_bytes(chunks[0].read_bytes())  # the first chunk copied over the second
    (tmp_path / "s.npz").unlink()
    capsys.readouterr()
    assert main(_argv(tmp_path, "--resume")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("netfield: error: checkpoint chunk") and chunks[1].name in err and "\n" not in err
    assert not (tmp_path / "s.npz").exists()


def test_out_under_a_regular_file_fails_before_computing(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    argv = _argv(tmp_path)
    argv[argv.index("--out") + 1] = str(tmp_path / "file" / "s.npz")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("netfield: error: --out") and "is a file, not a folder" in err
    assert not (tmp_path / "ck").exists()  # nothing was computed
