"""The generative-models section of the report: one table over every scored run, and
observations stated from its numbers (the DCGAN vs improved-GAN comparison the issue asks
to show, conditional accuracy against the evaluator's own accuracy, face rates beside the
real-data rate).

Every number comes from a run's ``metrics.json`` as written by ``genda eval``
(:func:`genda.engine.generate.evaluate_run`); scores with different extractors or sample
counts are never compared with each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from genda.report.render import Block, Paragraph, Table
from genda.report.sections import name


def _is_scored(m: Mapping[str, Any]) -> bool:
    return "fid" in m or "recon_mse" in m or "face_detection_rate" in m


def _num(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    return "—" if value is None else f"{float(value):{spec}}{suffix}"


def _fid(m: Mapping[str, Any]) -> str:
    """``13.22 [12.10, 14.51]``: FID with its bootstrap interval when the run stored one."""
    lo_hi = m.get("fid_interval")
    return f"{m['fid']:.2f}" + (f" [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]" if lo_hi else "")


def _separate(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when both FID intervals are known and do not overlap."""
    ia, ib = a.get("fid_interval"), b.get("fid_interval")
    return bool(ia and ib) and (ia[1] < ib[0] or ib[1] < ia[0])


def _row(label: str, m: Mapping[str, Any]) -> tuple[str, ...]:
    fid = m.get("fid")
    acc = m.get("classifier_accuracy")
    face = m.get("face_detection_rate")
    return (
        label,
        name(m.get("method")),
        str(m.get("source", "—")),
        str(m.get("steps", "—")),
        _num(m.get("wall_time_s"), ".0f"),
        "—" if fid is None else f"{_fid(m)} ({m.get('fid_extractor', '?')}, n={m.get('eval_n')})",
        "—" if m.get("kid") is None else f"{1000 * m['kid']:.2f} ± {1000 * m['kid_std']:.2f}",
        "—" if m.get("precision") is None else f"{m['precision']:.2f} / {m['recall']:.2f}",
        "—"
        if m.get("inception_score") is None
        else f"{m['inception_score']:.2f} (real {_num(m.get('inception_score_real'))})",
        "—"
        if acc is None
        else f"{acc:.1f}% (evaluator {_num(m.get('evaluator_accuracy'), '.1f')}%)",
        "—"
        if face is None
        else f"{face:.1f}% (real {_num(m.get('face_detection_rate_real'), '.1f')}%)",
        _num(m.get("recon_mse"), ".4f"),
    )


def _compare_gans(runs: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """DCGAN vs improved GAN where both were trained on the same data for the same steps and
    scored with the same extractor and sample count."""
    found = []
    for _, a in runs:
        if a.get("method") != "dcgan" or "fid" not in a:
            continue
        for _, b in runs:
            same = all(a.get(k) == b.get(k) for k in ("source", "steps", "fid_extractor", "eval_n"))
            if b.get("method") != "gan" or "fid" not in b or not same:
                continue
            if not _separate(a, b):
                verdict = "is within noise of"
            else:
                verdict = "beats" if b["fid"] < a["fid"] else "is worse than"
            gb, ga = (m.get("parameters", {}).get("g") for m in (b, a))
            sizes = f"; generators of {gb:,} vs {ga:,} parameters" if gb and ga and gb != ga else ""
            found.append(
                f"The improved GAN {verdict} DCGAN on {a['source']} at {a['steps']} steps: "
                f"FID {_fid(b)} vs {_fid(a)} ({a['fid_extractor']} features, "
                f"{a['eval_n']} samples, 95% bootstrap intervals over the samples; lower is "
                f"better{sizes})."
            )
    return found


def _observe(label: str, m: Mapping[str, Any]) -> list[str]:
    model = name(m.get("method"))
    found = []
    if m.get("classifier_accuracy") is not None:
        found.append(
            f"{model} ({label}): {m['classifier_accuracy']:.1f}% of its samples are recognised as "
            f"the class they were asked for by the evaluation classifier, which scores "
            f"{_num(m.get('evaluator_accuracy'), '.1f')}% on real test images."
        )
    if m.get("pair_accuracy") is not None:
        found.append(
            f"{model} ({label}): in {m['pair_n']} pairs drawn from the same noise with the "
            f"attribute off and on, the evaluation classifier judges {m['pair_accuracy']:.1f}% "
            f"of the images as asked (off {m['pair_accuracy_off']:.1f}%, on "
            f"{m['pair_accuracy_on']:.1f}%) and both images right in "
            f"{m['pairs_both_correct']:.1f}% of pairs."
        )
    if m.get("face_detection_rate") is not None:
        found.append(
            f"{model} ({label}): the Haar-cascade detector finds a face in "
            f"{m['face_detection_rate']:.1f}% of samples and in "
            f"{_num(m.get('face_detection_rate_real'), '.1f')}% of real test faces."
        )
    return found


def generative_table(
    runs: Sequence[tuple[str, Mapping[str, Any]]], explain: bool = True
) -> list[Block]:
    """One table over the scored generative runs among ``runs`` (``(label, metrics)``
    pairs), without the columns none of them has, after a paragraph on what the scores
    mean (``explain``; a report says it once); nothing when no run is scored."""
    scored = [(label, m) for label, m in runs if _is_scored(m)]
    if not scored:
        return []
    header = (
        "Run",
        "Model",
        "Data",
        "Steps",
        "Train time (s)",
        "FID (extractor, samples)",
        "KID × 1000",
        "Precision / recall",
        "Inception Score",
        "Class accuracy",
        "Face-detection rate",
        "Recon. MSE",
    )
    rows = [_row(label, m) for label, m in scored]
    keep = [i for i in range(len(header)) if i < 5 or any(r[i] != "—" for r in rows)]
    table = Table(tuple(header[i] for i in keep), tuple(tuple(r[i] for i in keep) for r in rows))
    if not explain:
        return [table]
    return [
        Paragraph(
            "FID and Inception Score are computed by torchmetrics on the features of the "
            "extractor named in brackets: `classifier:<data>` is genda's evaluation classifier "
            "trained on the real data (a classifier FID, comparable only within the same "
            "extractor and sample count), `inception-fid` the standard FID Inception and "
            "`inception-torchvision` torchvision's ImageNet Inception. Brackets after a FID: "
            "its 95% bootstrap interval over the generated samples. KID (x 1000, mean ± std over "
            "subsets) and improved precision / recall (k = 3; low recall = mode collapse) use the "
            "same features."
        ),
        table,
    ]


def generative_observations(runs: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Sentences stated from the scored runs' numbers (comparisons only within noise-aware
    intervals and the same extractor)."""
    scored = [(label, m) for label, m in runs if _is_scored(m)]
    return _compare_gans(scored) + [o for label, m in scored for o in _observe(label, m)]
