"""Pretrained feature weights: explicit path, hub cache, download (loopback only), clear errors."""

from __future__ import annotations

import hashlib
import http.server
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from ganenc import features, weights
from ganenc.errors import CheckpointError, ConfigError, WeightsNotFoundError
from ganenc.features import FeatureWeights, RandomFeatureWeightsWarning


def _tiny_network() -> nn.Module:
    return nn.Linear(3, 2)


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache under tmp_path; downloads allowed (tests serve them locally)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GANENC_HOME", str(tmp_path / "ganenc"))  # hashes recorded on download
    monkeypatch.delenv(features.OFFLINE_ENV, raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def tiny_weights(tmp_path) -> tuple[bytes, dict[str, torch.Tensor]]:
    state = {k: v.clone() for k, v in nn.Linear(3, 2).state_dict().items()}
    path = tmp_path / "served.pth"
    torch.save(state, path)
    return path.read_bytes(), state


@pytest.fixture
def register_tiny():
    """Register throw-away catalogue entries; removed afterwards."""
    names = []

    def register(filename: str, url: str) -> FeatureWeights:
        entry = FeatureWeights(
            name=f"tiny{len(names)}", filename=filename, url=url, build=_tiny_network
        )
        features.register_feature_weights(entry)
        names.append(entry.name)
        return entry

    yield register
    for name in names:
        features.unregister_feature_weights(name)


@pytest.fixture
def serve(tmp_path):
    """A loopback HTTP server for given bytes; yields a function returning its URL."""
    servers = []

    def start(payload: bytes) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/weights.pth"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_offline_error_names_file_folder_and_url_within_seconds(hub, monkeypatch):
    monkeypatch.setenv(features.OFFLINE_ENV, "1")
    monkeypatch.setattr(  # the model zoo's fetch is the only downloader of feature weights
        weights.resolve, "download_file", lambda *a, **k: pytest.fail("GANENC_OFFLINE=1 downloaded")
    )
    start = time.monotonic()
    with pytest.raises(WeightsNotFoundError) as info:
        features.build_feature_network("vgg16")
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert str(hub / "vgg16-397923af.pth") in message
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in message
    assert "GANENC_OFFLINE" in message and "feature_weights" in message


def test_a_missing_explicit_file_for_shipped_weights_points_at_the_shipped_one(tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        features.build_feature_network("emoji-cnn", tmp_path / "judge.pt")
    message = str(info.value)
    assert str(tmp_path / "judge.pt") in message
    assert "emoji-cnn.pt, shipped with ganenc" in message and "from ." not in message


def test_failed_download_is_a_weights_error_naming_the_file(hub, register_tiny):
    with socket.socket() as probe:  # a port nobody listens on: connection refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    entry = register_tiny("tiny-00000000.pth", f"http://127.0.0.1:{port}/w.pth")
    with pytest.raises(WeightsNotFoundError) as info:
        features.resolve_weights_file(entry.name)
    assert str(hub / "tiny-00000000.pth") in str(info.value)
    assert "download failed" in str(info.value)
    assert not (hub / "tiny-00000000.pth").exists()
    assert not hub.parent.exists()  # no empty hub/checkpoints folders left in torch's cache


def test_stalled_server_times_out_quickly(hub, register_tiny, monkeypatch):
    monkeypatch.setenv("GANENC_DOWNLOAD_RETRIES", "0")  # each retry would wait out the timeout
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection (backlog) but never answers
    try:
        entry = register_tiny("tiny-00000000.pth", f"http://127.0.0.1:{listener.getsockname()[1]}/")
        start = time.monotonic()
        with pytest.raises(WeightsNotFoundError, match="download failed"):
            features.resolve_weights_file(entry.name, timeout=0.5)
        assert time.monotonic() - start < 5
    finally:
        listener.close()
    assert socket.getdefaulttimeout() is None  # the temporary timeout was restored


def test_download_into_hub_cache_then_load(hub, tiny_weights, serve, register_tiny):
    payload, state = tiny_weights
    digest = hashlib.sha256(payload).hexdigest()
    entry = register_tiny(f"tiny-{digest[:8]}.pth", serve(payload))
    network = features.build_feature_network(entry.name)
    assert (hub / entry.filename).read_bytes() == payload
    assert torch.equal(network.weight, state["weight"])
    assert not network.training and not network.weight.requires_grad
    # second time: found in the cache, no server needed
    features.unregister_feature_weights(entry.name)
    features.register_feature_weights(
        FeatureWeights(entry.name, entry.filename, "http://127.0.0.1:9/none", _tiny_network)
    )
    assert features.resolve_weights_file(entry.name) == hub / entry.filename


def test_download_with_wrong_hash_is_rejected(hub, tiny_weights, serve, register_tiny):
    payload, _ = tiny_weights
    entry = register_tiny("tiny-deadbeef.pth", serve(payload))
    with pytest.raises(WeightsNotFoundError, match="hash"):
        features.resolve_weights_file(entry.name)
    assert not (hub / entry.filename).exists()


def test_explicit_path_wins_and_missing_explicit_path_is_named(hub, tmp_path, register_tiny):
    entry = register_tiny("tiny-00000000.pth", "http://127.0.0.1:9/none")
    state = nn.Linear(3, 2).state_dict()
    path = tmp_path / "mine.pth"
    torch.save(state, path)
    network = features.build_feature_network(entry.name, str(path))
    assert torch.equal(network.bias, state["bias"])
    missing = tmp_path / "nope" / "vgg16.pth"
    with pytest.raises(WeightsNotFoundError) as info:
        features.resolve_weights_file("vgg16", missing)
    assert str(missing) in str(info.value) and "vgg16-397923af.pth" in str(info.value)


def test_cache_file_is_found_without_download(hub, register_tiny, monkeypatch):
    entry = register_tiny("tiny-00000000.pth", "http://127.0.0.1:9/none")
    hub.mkdir(parents=True)
    torch.save(nn.Linear(3, 2).state_dict(), hub / entry.filename)
    monkeypatch.setattr(weights.resolve, "download_file", lambda *a, **k: pytest.fail("downloaded"))
    assert features.resolve_weights_file(entry.name) == hub / entry.filename


def test_bad_weight_files_are_checkpoint_errors(tmp_path, register_tiny):
    entry = register_tiny("tiny-00000000.pth", "http://127.0.0.1:9/none")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        features.build_feature_network(entry.name, str(corrupt))
    other = tmp_path / "other.pth"
    torch.save(nn.Linear(5, 5).state_dict(), other)
    with pytest.raises(CheckpointError, match="does not fit"):
        features.build_feature_network(entry.name, str(other))


def test_random_weights_only_on_explicit_opt_in_and_loudly(register_tiny, caplog):
    entry = register_tiny("tiny-00000000.pth", "http://127.0.0.1:9/none")
    with caplog.at_level(logging.WARNING, logger="ganenc.features"):
        with pytest.warns(RandomFeatureWeightsWarning, match="RANDOM"):
            network = features.build_feature_network(entry.name, "random")
    assert isinstance(network, nn.Linear)
    assert any("RANDOM" in record.getMessage() for record in caplog.records)
    with pytest.warns(RandomFeatureWeightsWarning):
        assert features.load_feature_state_dict(entry.name, "random") is None


def test_catalogue_and_torchvision_lookup():
    vgg = features.feature_weights_entry("vgg16")
    assert vgg.filename == "vgg16-397923af.pth" and vgg.hash_prefix == "397923af"
    assert vgg.url == "https://download.pytorch.org/models/vgg16-397923af.pth"
    resnet = features.feature_weights_entry("resnet18")
    assert resnet.filename.startswith("resnet18-") and resnet.url.endswith(resnet.filename)
    with pytest.raises(ConfigError, match="unknown feature network"):
        features.feature_weights_entry("no_such_network")
    with pytest.raises(ConfigError, match="already registered"):
        features.register_feature_weights(vgg)


def test_download_timeout_from_environment(monkeypatch):
    monkeypatch.setenv(features.DOWNLOAD_TIMEOUT_ENV, "2.5")
    assert features.download_timeout() == 2.5
    monkeypatch.setenv(features.DOWNLOAD_TIMEOUT_ENV, "soon")
    with pytest.raises(ConfigError):
        features.download_timeout()


@pytest.mark.parametrize(
    ("variable", "read", "value", "expected"),
    [
        ("GANENC_DOWNLOAD_TIMEOUT", "download_timeout", "", 10.0),
        ("GANENC_DOWNLOAD_TIMEOUT", "download_timeout", "soon", "is not a number of seconds"),
        (
            "GANENC_DOWNLOAD_TIMEOUT",
            "download_timeout",
            "0",
            "must be a positive finite number, got '0'",
        ),
        ("GANENC_DOWNLOAD_RETRIES", "download_retries", "5", 5),
        ("GANENC_DOWNLOAD_RETRIES", "download_retries", "", 3),
        ("GANENC_DOWNLOAD_RETRIES", "download_retries", "1.5", "is not a whole number"),
        ("GANENC_DOWNLOAD_RETRIES", "download_retries", "-1", "must be 0 or more, got '-1'"),
    ],
)
def test_download_settings_from_environment(monkeypatch, variable, read, value, expected):
    monkeypatch.setenv(variable, value)
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=f"{variable}.*{re.escape(expected)}"):
            getattr(weights, read)()
    else:
        result = getattr(weights, read)()
        assert result == expected and type(result) is type(expected)


def test_import_does_not_import_torch_or_download():
    code = "import sys, ganenc.features; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_plugin_registers_a_feature_network_through_register_weights(hub, tmp_path, monkeypatch):
    from ganenc import hookimpl
    from ganenc.features import FeatureEntry
    from ganenc.testing import register_plugin
    from ganenc.weights import WeightsEntry, WeightsFile, register_entries

    network = FeatureEntry(
        tag="features:plugged",
        files=(WeightsFile("plugged-00000000.pth", ("http://127.0.0.1:9/none",)),),
        build=_tiny_network,
    )
    plain = WeightsEntry(
        tag="features:plain",
        files=(WeightsFile("plain.pth", ("http://127.0.0.1:9/p",)),),
        format="x",
    )

    class Plugin:
        @hookimpl
        def register_weights(self, register):
            register_entries(register, [network, plain])

    state = nn.Linear(3, 2).state_dict()
    hub.mkdir(parents=True)
    torch.save(state, hub / "plugged-00000000.pth")
    monkeypatch.setattr(weights.resolve, "download_file", lambda *a, **k: pytest.fail("download"))
    with register_plugin(Plugin(), name="plugged"):
        assert features.feature_weights_entry("plugged") is network  # the one registry
        assert torch.equal(features.build_feature_network("plugged").bias, state["bias"])
        with pytest.raises(ConfigError, match="not a feature network"):
            features.feature_weights_entry("plain")
    with pytest.raises(ConfigError, match="unknown feature network"):
        features.feature_weights_entry("plugged")


def test_the_weights_package_has_no_import_cycle():
    """Each module of ganenc.weights imports (at run time) only those before it."""
    import ast

    layers = ["entries", "cache", "records", "download", "resolve"]
    folder = Path(weights.__file__).parent
    for position, name in enumerate(layers):
        tree = ast.parse((folder / f"{name}.py").read_text())
        imported = {
            node.module
            for node in tree.body  # top level only: TYPE_CHECKING and lazy imports do not count
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        }
        assert imported <= set(layers[:position]), (name, imported)
