"""Results as Markdown tables (the JSON is the results dict itself)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.{max(digits - 1, 1)}f}"
    return f"{value:.{digits}g}"


def _ratio(data: dict | None) -> str:
    if not data:
        return "-"
    return f"{_num(data['median'])}x ({_num(data['min'])}-{_num(data['max'])})"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _memory_cells(memory: dict | None) -> tuple[str, str]:
    memory = memory or {}
    device = memory.get("cuda_peak_mb")
    if device is None:
        growth = memory.get("rss_growth_mb")
        device = None if growth is None else memory.get("state_mb", 0) + growth
    return _num(memory.get("tensor_peak_mb")), _num(device)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _skips(section: dict) -> list[str]:
    return [f"- skipped: {s['skipped']} ({s['reason']})" for s in section.get("skipped", [])]


def _failed(row: dict, width: int, *first: str) -> list[str] | None:
    """A table row for a case that raised (or was skipped), or None for a measured one."""
    if "error" in row:
        what = f"failed: {row['error']}".replace("|", "/").replace("\n", " ")[:200]
    elif "skipped" in row:
        what = f"skipped ({row['reason']})"
    else:
        return None
    cells = [*first, what]
    return cells + [""] * (width - len(cells))


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    device_memory = (
        "CUDA peak MB" if machine["device"].startswith("cuda") else "RSS MB (state + step growth)"
    )
    lines = [
        f"### Plan `{results['plan']}` on {machine.get('gpu') or machine['cpu']}",
        "",
        f"- command: `{machine['command']}` (git {machine.get('git_commit') or '?'},"
        f" {machine['date']}, {results['elapsed_s']:.0f} s)",
        f"- machine: {machine['cpu']}, {machine['cpu_cores']} cores"
        f" ({machine['torch_threads']} torch threads), {machine['memory_gb']} GB;"
        f" device {machine['device']}"
        + (f" ({machine['gpu']}, {machine['gpu_memory_gb']} GB)" if machine.get("gpu") else "")
        + f"; load average {machine.get('load_average_at_start')} at start,"
        f" {results.get('load_average_at_end')} at end",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
    ]
    lines += [f"- note: {note}" for note in results.get("notes", [])]
    if results.get("complete") is False:
        lines.append("- **partial**: the run stopped before its last section (written as it went)")
    memory_note = (
        "Memory: *tensor peak* = weights + optimizer state + the largest total of tensors"
        " alive during one step (counted op by op, the same on every device);"
        f" *{device_memory}* = weights etc. + "
        + (
            "growth of `torch.cuda.max_memory_allocated` in the step."
            if device_memory.startswith("CUDA")
            else "growth of the process's peak RSS in the step (above the tensor peak: it also"
            " holds oneDNN's convolution scratch buffers and memory the C allocator has not"
            " reused)."
        )
    )
    sections = results["sections"]

    if "generator" in sections and "rows" in sections["generator"]:
        section = sections["generator"]
        rows = []
        for row in section["rows"]:
            if "error" in row:
                rows.append([row["family"], str(row["resolution"]), "-", row["error"], "", ""])
                continue
            name = row["family"] + (" (reference)" if row.get("reference_only") else "")
            rows.append(
                [
                    name,
                    str(row["resolution"]),
                    str(row["batch"]),
                    _num(row["images_per_s"]),
                    _pct(row["timing"]["spread"]),
                    _ratio(row.get("speed_vs_stylegan2")),
                ]
            )
        lines += ["", "#### Generator forward (no gradient)", ""]
        lines += _table(
            ["family", "px", "batch", "images/s", "spread", "speed vs StyleGAN2 (same px)"], rows
        )
        lines += _skips(section)

    if "inversion" in sections and "rows" in sections["inversion"]:
        section = sections["inversion"]
        rows = []
        for row in section["rows"]:
            if "skipped" in row:
                rows.append([row["skipped"], "skipped", "", ""])
                continue
            extra = ""
            if "steps" in row:
                extra = f"{row['steps']} steps" + ("" if row.get("reached") else ", not reached")
            rows.append(
                [row["method"], _num(row.get("seconds_per_image")), _num(row["psnr"]), extra]
            )
        source = section.get("source", {})
        speed = section["equal_quality_speedup"]
        lines += [
            "",
            f"#### Inversion at {section['resolution']} px"
            f" ({source.get('images', str(section['images']) + ' images')};"
            f" encoder: {source.get('encoder', '?')})",
            "",
        ]
        lines += _table(["method", "s / image", "PSNR dB", ""], rows)
        verdict = "met" if speed["reached"] and speed["median"] >= speed["target"] else "not met"
        lines += [
            "",
            f"Speed at equal quality (latent optimisation / encoder): **{_ratio(speed)}**"
            f" (target >= {speed['target']}x: {verdict}).",
        ]
        if speed.get("optimization_step_in_encoder_passes"):
            lines.append(
                "One optimisation step costs"
                f" {_num(speed['optimization_step_in_encoder_passes'])} encoder passes per image:"
                f" optimisation would have to need {_num(speed['steps_needed_for_target'])} steps"
                f" or more to reach the encoder's quality for {speed['target']}x."
            )

    if "pretrain" in sections and "rows" in sections["pretrain"]:
        section = sections["pretrain"]
        rows = []
        for row in section["rows"]:
            failed = _failed(row, 7, str(row["resolution"]), str(row["batch"]))
            if failed:
                rows.append(failed)
                continue
            tensor, device = _memory_cells(row["memory"])
            rows.append(
                [
                    str(row["resolution"]),
                    str(row["batch"]),
                    _num(row["images_per_s"]),
                    _pct(row["step"]["spread"]),
                    _ratio(row["step_in_generator_forwards"]),
                    tensor,
                    device,
                ]
            )
        lines += ["", "#### Pre-training step (paper's loss, centre attentions, Adam)", ""]
        lines += _table(
            [
                "px",
                "batch",
                "images/s",
                "spread",
                "step = x generator forwards",
                "tensor peak MB",
                device_memory,
            ],
            rows,
        )
        lines += _skips(section)

    if "finetune" in sections and "rows" in sections["finetune"]:
        section = sections["finetune"]
        rows = []
        for row in section["rows"]:
            failed = _failed(row, 9, str(row["resolution"]), row["case"])
            if failed:
                rows.append(failed)
                continue
            tensor, device = _memory_cells(row["memory"])
            within = row.get("within_target_3835_mb")
            rows.append(
                [
                    str(row["resolution"]),
                    row["case"],
                    _num(row.get("iterations_per_s")),
                    _pct(row["iteration"]["spread"]) if "iteration" in row else "-",
                    _ratio(row.get("iteration_in_generator_forwards")),
                    tensor,
                    device,
                    _num(row["memory"].get("cuda_max_allocated_mb")),
                    "-" if within is None else ("yes" if within else "no"),
                ]
            )
        lines += [
            "",
            "#### Per-image fine-tuning iteration (batch 1; paper: 2.08 it/s, 7,670 MB on a V100)",
            "",
        ]
        lines += _table(
            [
                "px",
                "case",
                "it/s",
                "spread",
                "iteration = x generator forwards",
                "tensor peak MB",
                device_memory,
                "GPU allocator peak MB (all)",
                "<= 3,835 MB",
            ],
            rows,
        )
        lines += _skips(section)

    for key in ("options", "compile"):
        if key not in sections or "error" in sections[key]:
            continue
        for name, section in sections[key].items():
            if isinstance(section, dict) and "skipped" in section:
                lines += ["", f"- skipped: {section['skipped']} ({section['reason']})"]
                continue
            if not isinstance(section, dict) or "rows" not in section:
                continue
            rows = []
            for row in section["rows"]:
                failed = _failed(row, 9, row["case"])
                if failed:
                    rows.append(failed)
                    continue
                tensor, device = _memory_cells(row["memory"])
                numerics = row["numerics_vs_reference"]
                rows.append(
                    [
                        row["case"],
                        _num(row["per_s"]),
                        row["reference"],
                        _ratio(row["speed_vs_reference"]),
                        _ratio(row.get("speed_vs_default")),
                        tensor,
                        device,
                        f"{numerics['loss_abs_diff']:.1e}",
                        f"{numerics['grad_max_rel_diff']:.1e}",
                    ]
                )
            header = [
                "case",
                section["unit"],
                "compared with",
                "speed vs that",
                "speed vs default",
                "tensor peak MB",
                device_memory,
                "abs(loss - that)",
                "max abs(grad - that) / max abs(grad)",
            ]
            what = "per-image fine-tuning" if name == "finetune" else "pre-training"
            title = "Speed options" if key == "options" else "torch.compile"
            lines += [
                "",
                f"#### {title}: {what} at {section['resolution']} px, batch {section['batch']}",
                "",
            ]
            lines += _table(header, rows)
            verdicts = [
                (row["case"], row["within_target_3835_mb"])
                for row in section["rows"]
                if "within_target_3835_mb" in row
            ]
            if verdicts:
                lines += [
                    "",
                    "Within 3,835 MB (half the paper's 7,670; the allocator's whole peak on a GPU,"
                    " the tensor peak elsewhere): "
                    + ", ".join(f"{case} {'yes' if ok else 'no'}" for case, ok in verdicts)
                    + ".",
                ]
    if sections.get("folders", {}).get("rows"):
        section = sections["folders"]
        rows = []
        for row in section["rows"]:
            cells = [_num(row["images"]), _num(row["decoded_mb"])]
            for name in ("invert", "eval"):
                cells += [
                    _num(row[name]["tensor_peak_mb"]),
                    _num(row[f"{name}_before"]["tensor_peak_mb"]),
                    f"{_num(row[f'{name}_memory_ratio'])}x",
                ]
            cells.insert(6, _num(row["eval_kept"]["tensor_peak_mb"]) if "eval_kept" in row else "-")
            rows.append(cells)
        resolution = section["rows"][0]["resolution"]
        lines += [
            "",
            f"#### Folders at {resolution} px: tensor peak MB, chunk by chunk vs all at once",
            "",
            f"`ganenc invert` goes through {section['chunk_images']} images at a time; `ganenc eval`"
            " reads a folder above 2 GiB decoded batch by batch (forced here: *eval*) and keeps a"
            " smaller one decoded at 8 bits (*eval kept*). *Before*: every image, and every"
            " reconstruction, in one float32 tensor. Random weights.",
            "",
        ]
        lines += _table(
            [
                "images",
                "decoded MB",
                "invert",
                "invert before",
                "before / now",
                "eval",
                "eval kept",
                "eval before",
                "before / now",
            ],
            rows,
        )
        lines += _skips(section)
    for name, section in sections.items():
        if isinstance(section, dict) and set(section) >= {"skipped", "reason"}:
            lines += ["", f"- section {name} skipped ({section['reason']})"]
        elif isinstance(section, dict) and "error" in section:
            lines += ["", f"- section {name} failed: {section['error']} (traceback in the JSON)"]
    lines += ["", memory_note, ""]
    return "\n".join(lines)


def write(results: dict[str, Any], json_path: Path | None, markdown_path: Path | None) -> str:
    text = markdown(results)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    if markdown_path is not None:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(text, encoding="utf-8")
    return text
