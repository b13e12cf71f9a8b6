"""Helpers shared by the benchmark driver and its workers: timing, peak memory, machine info, tables.

This module imports only the standard library (numpy lazily), because it is imported both by the
netfield worker (system python) and by the neural-tangents worker (its own virtual environment).

Peak-memory method (the same in every worker, documented in benchmarks/README.md):

    1. after the imports, the inputs and the network description exist, run gc and read the
       resident set size VmRSS from /proc/self/status: the *baseline*;
    2. reset the kernel's high-water mark VmHWM to the current RSS by writing "5" to
       /proc/self/clear_refs (Linux >= 4.0);
    3. run everything that is measured (first call including compilation, warm repeats);
    4. peak above baseline = VmHWM - baseline.

If /proc/self/clear_refs cannot be written, a background thread samples VmRSS every millisecond
instead (it can miss spikes shorter than that; the method used is recorded in the results).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import socket
import threading
import time
from pathlib import Path

FLOAT64 = 8


# ---- memory -----------------------------------------------------------------------------------------

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def rss_bytes() -> int:
    """Current resident set size of this process."""
    return _status_kb("VmRSS") * 1024


class PeakMemory:
    """Peak resident memory of this process above a baseline taken at :meth:`start`."""

    def __init__(self, interval: float = 0.001):
        self.interval = interval
        self.method = None
        self.baseline = None
        self._max = 0
        self._stop = None
        self._thread = None

    def start(self) -> PeakMemory:
        gc.collect()
        self.baseline = rss_bytes()
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.method = "VmHWM reset via /proc/self/clear_refs"
        except OSError:
            self.method = f"VmRSS sampled every {self.interval * 1e3:g} ms"
            self._max = self.baseline
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._max = max(self._max, rss_bytes())
            time.sleep(self.interval)

    def peak_bytes(self) -> int:
        """Peak RSS since :meth:`start` (absolute)."""
        if self._thread is not None:
            self._max = max(self._max, rss_bytes())
            return self._max
        return _status_kb("VmHWM") * 1024

    def stop(self) -> dict:
        """Stop measuring; returns baseline, peak and peak above baseline in bytes, and the method."""
        peak = self.peak_bytes()
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        return {"baseline_bytes": self.baseline, "peak_bytes": peak,
                "peak_above_baseline_bytes": peak - self.baseline, "method": self.method}


# ---- timing -----------------------------------------------------------------------------------------

def timed(fn, *args, **kwargs):
    """(result, seconds) of one call; ``fn`` must block until its result is ready."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def seconds(fn) -> float:
    """Seconds of one call whose result is dropped as soon as it returns: a later timed call does not
    run beside it (two N x N results alive at once would cost fresh pages, not the call itself)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def warm_repeats(fn, first_seconds: float, budget: float = 20.0, max_repeats: int = 3) -> list[float]:
    """Repeat a warm call while the expected total stays within ``budget`` seconds (at least once)."""
    times = []
    expected = first_seconds
    while len(times) < max_repeats and (not times or sum(times) + expected <= budget):
        _, dt = timed(fn)
        times.append(dt)
        expected = min(times)
    return times


# ---- work counts ----------------------------------------------------------------------------------------

def sample_flops(depth: int, width: int, n: int, dim: int, networks: int, preactivation_kernels: int) -> dict:
    """Matrix-multiply FLOPs (2 per multiply-add) of sampling ``networks`` DNNs on n inputs.

    Per network: the input layer U x (width x dim by dim x n), depth - 1 hidden layers W phi(h)
    (width x width by width x n), the readout kernel phi^T phi / width (n x width by width x n) and
    one more such Gram matrix per recorded pre-activation kernel. Elementwise work (activations,
    biases) and random-number generation are not counted.
    """
    per = {
        "input_layer": 2 * width * dim * n,
        "hidden_layers": 2 * (depth - 1) * width * width * n,
        "readout_kernel": 2 * n * n * width,
        "preactivation_kernels": 2 * preactivation_kernels * n * n * width,
    }
    return {"per_network": per, "total": networks * sum(per.values()), "networks": networks}


def dnn_expectation_count(n: int, depth: int) -> int:
    """Closed-form expectations of a depth-L DNN readout kernel: N (N + 1) / 2 pairs x L layers
    (L - 1 between hidden layers, one for the readout)."""
    return n * (n + 1) // 2 * depth


# ---- machine ------------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def package_versions(names) -> dict:
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "host": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "memory_total_bytes": memory_total_bytes(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


# ---- results --------------------------------------------------------------------------------------------

def write_json(path, obj):
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=_jsonable)
        fh.write("\n")


def _jsonable(v):
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"cannot serialise {type(v).__name__}")


def read_json(path):
    with open(path) as fh:
        return json.load(fh)


# ---- table --------------------------------------------------------------------------------------------

def fmt_seconds(s) -> str:
    if s is None:
        return "-"
    if s >= 100:
        return f"{s:.0f} s"
    if s >= 10:
        return f"{s:.1f} s"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def fmt_ratio(r) -> str:
    if r is None:
        return "-"
    if r >= 100:
        return f"{r:.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    return f"{r:.2f}x"


def fmt_memory(n_bytes, n: int | None = None) -> str:
    """Bytes as MB, with the multiple of an N x N float64 matrix when N is given."""
    if n_bytes is None:
        return "-"
    text = f"{n_bytes / 2**20:.0f} MB"
    if n:
        text += f" ({n_bytes / (n * n * FLOAT64):.2f} N^2)"
    return text


def fmt_error(e) -> str:
    return "-" if e is None else f"{e:.1e}"


TABLE_COLUMNS = (
    ("case", "case"),
    ("peer", "peer"),
    ("peer_s", "peer time"),
    ("ours_s", "netfield time"),
    ("ratio", "ratio"),
    ("ours_first_s", "netfield 1st call"),
    ("peer_new_n", "peer 1st call at new N"),
    ("ours_new_n", "netfield 1st call at new N"),
    ("peer_mem", "peer peak mem"),
    ("ours_mem", "netfield peak mem"),
    ("check", "check"),
    ("target", "target"),
    ("met", "met"),
)


def fmt_new_size(new_size) -> str:
    """The first call at a size not seen before, after calls at other sizes (N and 100 inputs), and its
    ratio to a second call there (benchmarks/ours.py ``_new_size_calls``): "1.2 s (1.1x warm)"."""
    if not new_size:
        return "-"
    return f"{fmt_seconds(new_size['first_s'])} ({new_size['ratio']:.2f}x warm)"


def format_table(rows: list[dict]) -> str:
    """Markdown table of benchmark rows (dicts with the raw fields below; missing values print "-").

    Row fields: case, peer (name), peer_s, ours_s, ours_first_s (seconds), peer_new_size / ours_new_size
    (dicts of :func:`fmt_new_size`), ratio (peer_s / ours_s,
    computed when absent; ``ratio_text`` overrides its formatting), peer_mem_bytes, ours_mem_bytes, n (for N^2 units), check (text),
    target (text), met (bool or None).
    """
    lines = ["| " + " | ".join(title for _, title in TABLE_COLUMNS) + " |",
             "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|"]
    for row in rows:
        ratio = row.get("ratio")
        if ratio is None and row.get("peer_s") and row.get("ours_s"):
            ratio = row["peer_s"] / row["ours_s"]
        met = row.get("met")
        cells = {
            "case": row.get("case", "?"),
            "peer": row.get("peer") or "-",
            "peer_s": fmt_seconds(row.get("peer_s")),
            "ours_s": fmt_seconds(row.get("ours_s")),
            "ratio": row["ratio_text"] if row.get("ratio_text") else fmt_ratio(ratio),
            "ours_first_s": fmt_seconds(row.get("ours_first_s")),
            "peer_new_n": fmt_new_size(row.get("peer_new_size")),
            "ours_new_n": fmt_new_size(row.get("ours_new_size")),
            "peer_mem": fmt_memory(row.get("peer_mem_bytes"), row.get("n")),
            "ours_mem": fmt_memory(row.get("ours_mem_bytes"), row.get("n")),
            "check": row.get("check") or "-",
            "target": row.get("target") or "-",
            "met": "-" if met is None else ("yes" if met else "NO"),
        }
        lines.append("| " + " | ".join(str(cells[key]).replace("|", "/") for key, _ in TABLE_COLUMNS) + " |")
    return "\n".join(lines)


# ---- README report ----------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"
README_START = "<!-- benchmarks: written by benchmarks/run.py, do not edit by hand -->"
README_END = "<!-- benchmarks: end -->"


def update_readme(result, source: Path, readme: Path = README) -> None:
    """Replace the text between README_START and README_END in ``readme`` by the markdown report of
    ``result`` (a full run's results JSON) and the file it came from."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no benchmark markers ({README_START!r} ... {README_END!r})")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    try:
        name = source.resolve().relative_to(readme.resolve().parent)
    except ValueError:
        name = source.name
    body = f"Results file: `{name}`.\n\n" + markdown_report(result)
    readme.write_text(head + README_START + "\n" + body + README_END + tail)


def markdown_report(result) -> str:
    m = result["machine"]
    versions = result["netfield"]["versions"]
    peer = (result["peer_env"] or {}).get("versions")
    lines = [
        f"Benchmarks {result['date'][:10]} on {m['cpu_model']}, {m['cpus_usable']} cores, "
        f"{(m['memory_total_bytes'] or 0) / 2**30:.0f} GiB; float64"
        + (" (--quick: small sizes, targets not meaningful)" if result["quick"] else ""),
        f"netfield {versions.get('netfield')} (commit {str(result['netfield']['commit'])[:9]}"
        + (", src modified" if result["netfield"]["src_dirty"] else "") + f"), jax {versions.get('jax')}; "
        + (f"neural-tangents {peer['neural-tangents']} with jax {peer['jax']}" if peer else "no neural-tangents"),
        "",
        result["table"],
        "",
        ("Time = warm call; ratio = peer / netfield (sampling: achieved fraction of the matmul rate); "
         "peak mem = RSS above the post-import baseline (N^2 = one N x N float64 matrix)."),
    ]
    if result.get("busy_workers"):
        lines.append(f"Warning: the machine was busy (1-min load average > {m['cpu_count']} cores) during "
                     + ", ".join(result["busy_workers"]) + ": those timings are not comparable.")
    missed = [t for t in result["targets"] if t["met"] is False]
    if missed:
        lines.append("Targets missed: " + "; ".join(
            f"{t['case']} {t['target']} {t['value']:.3g} (want {t['op']} {t['threshold']:g})" for t in missed))
    return "\n".join(lines) + "\n"
