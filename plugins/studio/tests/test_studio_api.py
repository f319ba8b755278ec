"""The studio's command, session and HTTP API, without a browser (see test_studio_browser.py)."""

from __future__ import annotations

import io
import json
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import ganenc
from ganenc.cli.main import cli
from ganenc_studio.session import EXAMPLES_DIR as EXAMPLES

STATIC = Path(__file__).resolve().parents[1] / "ganenc_studio" / "static"


@pytest.fixture(scope="module")
def client(studio):
    from starlette.testclient import TestClient

    from ganenc_studio.app import create_app

    with TestClient(create_app(studio)) as test_client:
        yield test_client


def _png(data: bytes) -> torch.Tensor:
    return torch.tensor(np.array(Image.open(io.BytesIO(data))), dtype=torch.float32)


def _decode(data_url: str) -> torch.Tensor:
    import base64

    assert data_url.startswith("data:image/png;base64,")
    return _png(base64.b64decode(data_url.split(",", 1)[1]))


def _example(client) -> str:
    response = client.post("/api/subjects?example=1f607.png", json={})
    assert response.status_code == 200, response.text
    return response.json()["subject"]


# -- the command -----------------------------------------------------------------------------


def test_the_plugin_adds_the_studio_command():
    info = ganenc.get_registry().plugins["studio"]
    assert (info.status, info.distribution) == ("ok", "ganenc-studio")
    result = CliRunner().invoke(cli, ["studio", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--encoder", "--directions", "--port", "--host"):
        assert option in result.output


def test_the_default_encoder_is_the_packaged_emoji_tag():
    from ganenc.weights import cached_path, weights_entry
    from ganenc_studio import DEFAULT_ENCODER
    from ganenc_studio.session import Studio

    assert DEFAULT_ENCODER == "encoder:stylegan2-emoji-64"
    entry = weights_entry(DEFAULT_ENCODER)  # registered by the stylegan plugin
    if cached_path(entry) is None:
        pytest.skip(f"{DEFAULT_ENCODER} is registered but its file is not shipped here yet")
    studio = Studio.open(device="cpu")
    try:
        assert (studio.info()["gan"], studio.resolution) == ("stylegan2", 64)
    finally:
        studio.close()


def test_without_the_default_encoder_one_line_says_to_pass_encoder(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr("ganenc_studio.session.DEFAULT_ENCODER", "encoder:not-shipped-here")
    result = CliRunner().invoke(cli, ["studio", "--port", "0"])
    assert result.exit_code == 1
    assert "encoder:not-shipped-here" in result.output and "pass --encoder" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # a failed start leaves nothing behind


def test_a_non_loopback_host_is_warned_about(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    missing = tmp_path / "no-run"
    result = CliRunner().invoke(
        cli, ["studio", "--encoder", str(missing), "--host", "0.0.0.0", "--port", "0"]
    )
    assert "warning: listening on 0.0.0.0" in result.output
    assert result.exit_code == 1 and "encoder not found" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_busy_port_is_one_line_before_loading_anything(tiny_run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["studio", "--encoder", str(tiny_run), "--port", str(port)]
        )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output
    empty = CliRunner().invoke(cli, ["studio", "--encoder", str(tiny_run), "--host", ""])
    assert empty.exit_code == 1 and "--host is empty" in empty.output


def test_bad_hosts_and_threads_are_one_line_before_anything_else(tiny_run):
    for host, message in (("", "--host is empty"), ("[::1", "brackets"), ("::1]", "brackets")):
        result = CliRunner().invoke(cli, ["studio", "--encoder", str(tiny_run), "--host", host])
        assert result.exit_code == 1 and message in result.output, (host, result.output)
        assert "warning" not in result.output and len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(cli, ["studio", "--threads", "99999999999"])
    assert result.exit_code == 2 and "1<=x<=1024" in result.output
    assert "unexpected error" not in result.output and "Traceback" not in result.output


def test_an_ipv6_host_is_printed_once_in_brackets(tiny_run, monkeypatch):
    import uvicorn

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options))
    for host in ("[::1]", "::1"):
        result = CliRunner().invoke(
            cli, ["studio", "--encoder", str(tiny_run), "--host", host, "--port", "0"]
        )
        assert result.exit_code == 0, result.output
        assert re.search(r"studio at http://\[::1\]:[1-9]\d*/ ", result.output), result.output
        assert served["host"] == "::1"


def test_loopback_hosts():
    from ganenc_studio.plugin import is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.org"]))


def test_bad_directions_are_refused_at_start(tiny_run, tmp_path):
    from ganenc.editing import Direction
    from ganenc_studio.session import Studio

    Direction("wide", "w", torch.ones(7) / 7**0.5, {}).save(tmp_path / "wide.pt")
    with pytest.raises(ganenc.GanencError, match="direction 'wide' does not fit"):
        Studio.open(str(tiny_run), tmp_path, device="cpu", workspace=tmp_path / "ws")
    assert not (tmp_path / "ws").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ganenc.GanencError, match="no direction files"):
        Studio.open(str(tiny_run), tmp_path / "empty", device="cpu")


# -- the page and its safety -----------------------------------------------------------------


def test_the_page_loads_nothing_from_outside(client):
    response = client.get("/")
    assert response.status_code == 200 and "ganenc studio" in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name
    for asset in ("/static/studio.js", "/static/studio.css"):
        assert client.get(asset).status_code == 200


def test_only_known_host_headers_are_answered(client):
    assert client.get("/api/info", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/api/info", headers={"host": "localhost:7860"}).status_code == 200


def test_info_lists_model_examples_and_directions(client, studio):
    info = client.get("/api/info").json()
    assert info["gan"] == "stylegan2" and info["resolution"] == 32
    assert info["examples"] == sorted(p.name for p in EXAMPLES.glob("*.png"))
    assert [d["name"] for d in info["directions"]] == ["age", "smile"]
    assert info["layers"] == studio.inverter.encode(torch.zeros(1, 3, 32, 32))["w_plus"].shape[1]
    assert info["workspace"] == str(studio.workspace)


def test_uploads_are_capped_checked_and_kept_in_the_workspace(client, studio, monkeypatch):
    import ganenc_studio.app as app_module

    png = (EXAMPLES / "1f49b.png").read_bytes()
    ok = client.post("/api/subjects", content=png, headers={"x-filename": "../../heart.png"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["name"] == "heart.png"
    stored = set((studio.workspace / "uploads").iterdir())
    assert any(p.read_bytes() == png for p in stored)

    not_image = client.post("/api/subjects", content=b"hello", headers={"x-filename": "a.png"})
    assert not_image.status_code == 400 and "not an image" in not_image.json()["error"]
    assert not_image.json()["error"].startswith("a.png ")  # the user's name, not the workspace's
    assert set((studio.workspace / "uploads").iterdir()) == stored  # a refused upload goes
    wrong_kind = client.post("/api/subjects", content=png, headers={"x-filename": "a.svg"})
    assert wrong_kind.status_code == 400 and "upload one of" in wrong_kind.json()["error"]

    buffer = io.BytesIO()
    Image.new("L", (4200, 4200)).save(buffer, format="PNG")
    huge = client.post("/api/subjects", content=buffer.getvalue(), headers={"x-filename": "b.png"})
    assert huge.status_code == 400 and "4200x4200 pixels" in huge.json()["error"]

    monkeypatch.setattr(app_module, "MAX_UPLOAD_BYTES", 1000)
    too_big = client.post("/api/subjects", content=png, headers={"x-filename": "c.png"})
    assert too_big.status_code == 413 and "limited to 1000 bytes" in too_big.json()["error"]


def test_upload_names_may_be_any_language_and_long(client, studio):
    from urllib.parse import quote

    png = (EXAMPLES / "1f49b.png").read_bytes()
    name = "笑脸🙂 heart.png"  # what the page sends: encodeURIComponent(name)
    response = client.post("/api/subjects", content=png, headers={"x-filename": quote(name)})
    assert response.status_code == 200 and response.json()["name"] == name
    script = (STATIC / "studio.js").read_text(encoding="utf-8")
    assert "encodeURIComponent(raw.name)" in script and '"X-Filename": raw.name' not in script
    subject = response.json()["subject"]
    download = client.get(f"/api/subjects/{subject}/download/png")
    assert download.headers["content-disposition"] == (
        f"attachment; filename*=utf-8''{quote('笑脸🙂 heart.png')}"
    )

    long_name = "a" * 150 + ".PNG"  # valid: only the stem is shortened, never the suffix
    response = client.post("/api/subjects", content=png, headers={"x-filename": long_name})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "a" * 96 + ".PNG"
    wrong = client.post("/api/subjects", content=png, headers={"x-filename": "b" * 150 + ".svg"})
    assert wrong.status_code == 400 and "upload one of" in wrong.json()["error"]


# -- inversion, refinement, editing, downloads -----------------------------------------------


def test_invert_shows_the_encoder_reconstruction_with_metrics(client):
    subject = _example(client)
    result = client.post(f"/api/subjects/{subject}/invert", json={"refine": "none"}).json()
    assert set(result) == {"subject", "encoder"}
    panel = result["encoder"]
    assert _decode(panel["image"]).shape == (32, 32, 3)
    assert 0 < panel["psnr"] < 100 and -1 <= panel["ssim"] <= 1 and panel["seconds"] > 0


def test_refinement_runs_as_a_job_with_progress_and_improves_the_loss(client, studio):
    subject = _example(client)
    bad = client.post(f"/api/subjects/{subject}/invert", json={"refine": "optimize", "steps": 0})
    assert bad.status_code == 400 and "between 1 and" in bad.json()["error"]
    job = client.post(
        f"/api/subjects/{subject}/invert", json={"refine": "optimize", "steps": 8}
    ).json()["job"]
    deadline = time.monotonic() + 60
    while (state := client.get(f"/api/jobs/{job}").json())["status"] not in {"done", "error"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert state["status"] == "done", state
    assert (state["done"], state["total"]) == (8, 8)
    refined, encoder = state["result"]["refined"], state["result"]["encoder"]
    assert (refined["refine"], refined["steps"]) == ("optimize", 8)
    assert refined["psnr"] > encoder["psnr"]  # latent optimisation on the image's own loss
    assert studio.subject(subject).record["refine"] == "optimize"


def test_refinements_past_the_queue_bound_are_refused_with_one_line(client, monkeypatch):
    import ganenc_studio.app as app_module

    subject = _example(client)
    monkeypatch.setattr(app_module, "MAX_PENDING_JOBS", 0)
    response = client.post(
        f"/api/subjects/{subject}/invert", json={"refine": "optimize", "steps": 2}
    )
    assert response.status_code == 503
    assert "at most 0" in response.json()["error"] and "try again" in response.json()["error"]


def _wait_for(jobs, job_id: str, statuses: set[str], seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while (state := jobs.get(job_id))["status"] not in statuses:
        assert time.monotonic() < deadline, state
        time.sleep(0.02)
    return state


def test_stopping_the_studio_stops_the_running_refinement_at_its_next_step(monkeypatch):
    import ganenc_studio.app as app_module
    from ganenc_studio.app import Jobs

    def long_refinement(progress):  # bounded, so a failing test does not hang the process
        for step in range(2000):
            progress(step, 2000)
            time.sleep(0.01)
        return "finished"

    jobs = Jobs()
    running = jobs.submit(long_refinement)
    queued = jobs.submit(long_refinement)
    _wait_for(jobs, running, {"running"})
    jobs.shutdown()
    stopped = _wait_for(jobs, running, {"done", "error", "stopped"}, seconds=5)
    assert stopped["status"] == "stopped" and "studio stopped" in stopped["error"]
    assert jobs.get(queued)["status"] == "queued"  # dropped: it never starts
    with pytest.raises(Exception, match="stopping"):
        jobs.submit(long_refinement)

    monkeypatch.setattr(app_module, "MAX_FINISHED_JOBS", 1)  # finished results are bounded
    jobs = Jobs()
    first = jobs.submit(lambda progress: 1)
    _wait_for(jobs, first, {"done"})
    second = jobs.submit(lambda progress: 2)
    _wait_for(jobs, second, {"done"})
    with pytest.raises(Exception, match=f"no job '{first}'"):
        jobs.get(first)
    jobs.shutdown()


def test_sliders_edit_the_image_and_zero_gives_back_the_inversion(client, studio):
    subject = _example(client)
    client.post(f"/api/subjects/{subject}/invert", json={"refine": "none"})
    layers = studio.layer_count
    zero = client.post(f"/api/subjects/{subject}/edit", json={"strengths": {"smile": 0}}).json()
    moved = client.post(
        f"/api/subjects/{subject}/edit",
        json={"strengths": {"smile": 3, "age": -1}, "layers": [0, layers - 1]},
    ).json()
    assert (_decode(zero["image"]) - _decode(moved["image"])).abs().max() > 0
    reconstruction = studio.render(studio.subject(subject), studio.subject(subject).latents)
    from ganenc_studio.session import png_data_url

    assert zero["image"] == png_data_url(reconstruction)
    for body, message in (
        ({"strengths": {"nose": 1}}, "no direction 'nose'"),
        ({"strengths": {"smile": "x"}}, "must be a number"),
        ({"strengths": {"smile": 1}, "layers": [3, 99]}, "layers must lie within"),
    ):
        response = client.post(f"/api/subjects/{subject}/edit", json=body)
        assert response.status_code == 400 and message in response.json()["error"]
    for missing in (
        client.post("/api/subjects/s999/edit", json={}),
        client.post("/api/subjects/s999/invert", json={"refine": "none"}),
        client.get("/api/subjects/s999/download/png"),
    ):  # like an unknown job: the image is not there
        assert missing.status_code == 404 and "no image 's999'" in missing.json()["error"]


def test_downloads_are_the_edited_png_and_a_latent_file_of_ganenc_invert(client, studio):
    from ganenc.editing import apply_direction
    from ganenc.latents import read_latent_file

    subject = _example(client)
    client.post(f"/api/subjects/{subject}/invert", json={"refine": "none"})
    edit = {"strengths": {"smile": 2.5}, "layers": [1, 3]}
    query = {"edit": json.dumps(edit)}
    png = client.get(f"/api/subjects/{subject}/download/png", params=query)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert 'filename="1f607-edited.png"' in png.headers["content-disposition"]
    shown = client.post(f"/api/subjects/{subject}/edit", json=edit).json()["image"]
    assert torch.equal(_decode(shown), _png(png.content))

    latents = client.get(f"/api/subjects/{subject}/download/latents", params=query)
    assert latents.status_code == 200
    path = studio.workspace / "check.pt"
    path.write_bytes(latents.content)
    payload = read_latent_file(path)
    assert payload["format"] == "ganenc-latents/1" and payload["gan"] == "stylegan2"
    assert payload["image"] == "1f607.png" and payload["refine"] == "none"
    assert payload["edit"] == {"strengths": {"smile": 2.5}, "layers": "1-3"}
    expected = apply_direction(
        studio.subject(subject).latents, studio.directions["smile"], 2.5, "1-3"
    )
    assert torch.equal(payload["latents"]["w_plus"], expected["w_plus"])
    bad = client.get(f"/api/subjects/{subject}/download/zip")
    assert bad.status_code == 400


def test_samples_follow_seed_and_truncation_and_can_be_edited(client):
    def draw(seed, truncation):
        response = client.post("/api/samples", json={"seed": seed, "truncation": truncation})
        assert response.status_code == 200, response.text
        return response.json()

    a, b = draw(1, 0.0), draw(2, 0.0)
    assert a["image"] == b["image"]  # truncation 0: every sample is the average image
    c, d = draw(1, 1.0), draw(2, 1.0)
    assert c["image"] != d["image"] and draw(1, 1.0)["image"] == c["image"]
    edited = client.post(f"/api/subjects/{c['subject']}/edit", json={"strengths": {"age": 4}})
    assert edited.json()["image"] != c["image"]
    assert client.post("/api/samples", json={"truncation": 5}).status_code == 400
    no_image = client.post(f"/api/subjects/{c['subject']}/invert", json={"refine": "none"})
    assert no_image.status_code == 400 and "no image" in no_image.json()["error"]
    refined = client.post(f"/api/subjects/{c['subject']}/invert", json={"refine": "optimize"})
    assert refined.status_code == 400 and "no image" in refined.json()["error"]


def test_hostile_json_is_a_clear_400_never_a_server_error(client):
    subject = _example(client)
    requests = [
        ("/api/samples", {"seed": 1e999}, "seed must be a whole number, got inf"),
        ("/api/samples", {"seed": 1.7}, "seed must be a whole number, got 1.7"),
        ("/api/samples", {"seed": -1}, "seed must be between 0"),
        ("/api/samples", {"truncation": "wide"}, "truncation must be a number"),
        (f"/api/subjects/{subject}/edit", {"strengths": [1, 2]}, "strengths must map"),
        (f"/api/subjects/{subject}/edit", {"strengths": "smile"}, "strengths must map"),
        (
            f"/api/subjects/{subject}/edit",
            {"strengths": {"smile": 1}, "layers": [0, 1e999]},
            "layers must be a whole number",
        ),
        (f"/api/subjects/{subject}/edit", {"layers": [0]}, "layers must be [first, last]"),
        (f"/api/subjects/{subject}/invert", {"refine": "optimize", "steps": 1e999}, "steps must"),
        (f"/api/subjects/{subject}/invert", {"refine": ["optimize"]}, "refine must be one of"),
        # an integer too large for a float: not an OverflowError and a 500
        (f"/api/subjects/{subject}/edit", {"strengths": {"smile": 10**400}}, "finite number"),
        ("/api/samples", {"truncation": 10**400}, "truncation must be a finite number"),
        ("/api/samples", {"seed": 10**400}, "seed must be between 0"),
        # numbers only, as for seed and steps: no "5", no true
        (f"/api/subjects/{subject}/edit", {"strengths": {"smile": "5"}}, "must be a number"),
        (f"/api/subjects/{subject}/edit", {"strengths": {"smile": True}}, "must be a number"),
    ]
    for path, body, message in requests:
        # the JSON text itself, since 1e999 is what a hostile client sends (json= refuses inf)
        text = json.dumps(body).replace("Infinity", "1e999")
        response = client.post(path, content=text, headers={"content-type": "application/json"})
        assert response.status_code == 400, (path, body, response.text)
        assert message in response.json()["error"], (path, body, response.text)
    for edit, message in (
        ({"strengths": [1]}, "strengths must map"),
        ({"strengths": {"smile": 10**400}}, "finite number"),
        ({"strengths": 0}, "strengths must map"),  # as /edit says it, not taken for {}
        ({"strengths": ""}, "strengths must map"),
        ({"strengths": False}, "strengths must map"),
    ):
        download = client.get(
            f"/api/subjects/{subject}/download/png", params={"edit": json.dumps(edit)}
        )
        assert download.status_code == 400, (edit, download.text)
        assert message in download.json()["error"], (edit, download.text)
        posted = client.post(f"/api/subjects/{subject}/edit", json=edit)
        assert posted.status_code == 400 and message in posted.json()["error"], edit


def test_deeply_nested_json_is_a_400_and_large_bodies_are_refused_unread(client):
    subject = _example(client)
    nested = "[" * 5000 + "]" * 5000  # under the body and URL caps, deeper than Python parses
    for path in ("/api/samples", f"/api/subjects/{subject}/edit"):
        response = client.post(path, content=nested, headers={"content-type": "application/json"})
        assert response.status_code == 400 and "nests too deeply" in response.json()["error"]
    download = client.get(f"/api/subjects/{subject}/download/png", params={"edit": nested})
    assert download.status_code == 400 and "edit nests too deeply" in download.json()["error"]
    huge = "[" * 100000 + "]" * 100000
    response = client.post(
        "/api/samples", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "limited to" in response.json()["error"]


def test_an_unexpected_error_is_one_line_of_json_without_a_traceback(studio, monkeypatch):
    from starlette.testclient import TestClient

    from ganenc_studio.app import create_app

    def broken(*args, **kwargs):
        raise ZeroDivisionError("secret detail\n  File 'x.py', line 1")

    monkeypatch.setattr(studio, "edit", broken)
    with TestClient(create_app(studio), raise_server_exceptions=False) as test_client:
        response = test_client.post("/api/subjects/s1/edit", json={})
    assert response.status_code == 500
    assert response.json() == {
        "error": "unexpected error in the studio (ZeroDivisionError); the studio's log has the"
        " details"
    }


def test_a_wrong_method_is_a_405_that_says_which_are_allowed(client):
    response = client.get("/api/samples")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert "error" in response.json()


# -- plugin panels and the workspace ----------------------------------------------------------


def test_a_plugin_panel_adds_html_a_script_and_routes(studio):
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from ganenc_studio.app import Panel, create_app

    async def count(request):
        return JSONResponse({"directions": len(studio.directions)})

    panel = Panel(
        "counter",
        "Direction count",
        '<p id="count"></p>',
        script="studio.api('/plugins/counter/count').then(r => {})",
        routes=[Route("/count", count)],
    )
    with TestClient(create_app(studio, [panel])) as test_client:
        page = test_client.get("/").text
        assert '<section class="card panel" id="panel-counter"><h2>Direction count</h2>' in page
        assert '<script src="/plugins/counter/panel.js"></script>' in page
        assert "studio.api" in test_client.get("/plugins/counter/panel.js").text
        assert test_client.get("/plugins/counter/count").json() == {"directions": 2}
    with pytest.raises(ganenc.GanencError, match="panel name"):
        Panel("Bad Name", "x", "")


def test_the_workspace_is_the_only_folder_written_and_is_removed(tiny_run, tmp_path):
    from ganenc_studio.session import Studio

    studio = Studio.open(str(tiny_run), device="cpu")
    try:
        subject = studio.add_upload((EXAMPLES / "270b.png").read_bytes(), "hand.png")
        path = studio.export(subject.id, "latents", {})
        assert path.is_relative_to(studio.workspace)
    finally:
        studio.close()
    assert not studio.workspace.exists()


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_the_command_serves_the_page_and_removes_its_workspace_on_exit(
    tiny_run, directions_dir, tmp_path, stop
):
    import os
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    # --port 0: a free port, and the address printed is the one it listens on
    command = [sys.executable, "-m", "ganenc", "studio", "--encoder", str(tiny_run)]
    command += ["--directions", str(directions_dir), "--port", "0", "--device", "cpu"]
    command += ["--threads", "1"]
    env = {**os.environ, "TMPDIR": str(tmp_path)}

    def post(url: str, body: dict) -> dict:
        request = urllib.request.Request(
            url, json.dumps(body).encode(), {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    lines = []
    try:
        while not (lines and lines[-1].startswith("studio at")):
            lines.append(process.stdout.readline())
            assert lines[-1], "".join(lines)  # the process ended before serving
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", lines[-1]).group(1))
        assert port != 0
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info") as response:
                    info = json.loads(response.read())
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        workspace = Path(info["workspace"])
        assert workspace.parent == tmp_path and workspace.is_dir()
        # a long refinement is running when the signal comes: the process still exits promptly
        base = f"http://127.0.0.1:{port}/api"
        subject = post(f"{base}/subjects?example=1f607.png", {})["subject"]
        job = post(f"{base}/subjects/{subject}/invert", {"refine": "finetune", "steps": 3000})
        while True:
            with urllib.request.urlopen(f"{base}/jobs/{job['job']}") as response:
                state = json.loads(response.read())
            assert state["status"] in {"queued", "running"}, state
            if state["done"] > 0:
                break
            time.sleep(0.1)
    finally:
        process.send_signal(getattr(signal, stop))  # SIGTERM: kill, timeout, systemd, docker
        try:
            output = "".join(lines) + process.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            process.kill()  # still running: the test fails, without leaving the process behind
            raise
    assert f"workspace (uploads and downloads, removed at exit): {workspace}" in output
    assert "2 direction(s)" in output and "Traceback" not in output
    assert not workspace.exists() and list(tmp_path.iterdir()) == []


def test_the_workspace_stays_bounded(client, studio, monkeypatch):
    import ganenc_studio.session as session_module

    png = (EXAMPLES / "1f49b.png").read_bytes()
    monkeypatch.setattr(session_module, "MAX_SUBJECTS", 1)
    for name in ("one.png", "two.png", "three.png"):
        subject = client.post("/api/subjects", content=png, headers={"x-filename": name}).json()
    assert len(list((studio.workspace / "uploads").iterdir())) == 1  # forgotten images' files go

    url = f"/api/subjects/{subject['subject']}/download/png"
    for _ in range(3):
        assert client.get(url).status_code == 200
    head = client.head(url, params={"edit": json.dumps({"strengths": {"smile": 1}})})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-disposition"] == 'attachment; filename="three-edited.png"'
    assert head.headers["content-type"] == "image/png"
    assert client.head(url.replace("png", "zip")).status_code == 400
    assert list(studio.workspace.glob("download-*")) == []  # sent, then removed; HEAD made none


def test_a_long_session_forgets_its_oldest_images(studio, monkeypatch):
    import ganenc_studio.session as session_module

    monkeypatch.setattr(session_module, "MAX_SUBJECTS", 2)
    first, second, third = (studio.sample(seed, 0.5) for seed in (1, 2, 3))
    with pytest.raises(ganenc.GanencError, match=f"no image '{first.id}'"):
        studio.subject(first.id)
    assert studio.subject(second.id) is second and studio.subject(third.id) is third
