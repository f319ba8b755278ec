"""The model zoo's downloader and cache, against a loopback HTTP server (never the internet)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from weights_server import LoopbackServer

import ganenc
from ganenc import hookimpl, weights
from ganenc.errors import ConfigError, PluginLoadError, UnknownComponentError
from ganenc.testing import isolated_registry, register_plugin
from ganenc.weights import (
    WeightsDownloadError,
    WeightsEntry,
    WeightsFile,
    WeightsHashError,
    register_entries,
)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: several chunks
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def zoo_env(tmp_path, monkeypatch):
    """An empty cache, downloads allowed, no retries unless a test asks, loopback only."""
    monkeypatch.setenv("GANENC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for variable in ("GANENC_OFFLINE", "GANENC_DOWNLOAD_TIMEOUT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("GANENC_DOWNLOAD_RETRIES", "0")
    monkeypatch.setattr(weights.download, "RETRY_BACKOFF_SECONDS", 0.01)  # read there
    real_urlopen = urllib.request.urlopen

    def loopback_only(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        assert urllib.parse.urlsplit(url).hostname == "127.0.0.1", f"tests must not fetch {url}"
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", loopback_only)
    return tmp_path / "home" / "weights"


@pytest.fixture
def server():
    server = LoopbackServer()
    yield server
    server.close()


def entry_for(
    url: str, *, sha256: str | None = None, tag: str = "toy:one", **fields
) -> WeightsEntry:
    return WeightsEntry(
        tag=tag,
        files=(WeightsFile("model.pt", (url,), sha256=sha256),),
        format="toy",
        **fields,
    )


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_download_with_progress_records_hash_and_tells_the_user(server, zoo_env, capsys):
    entry = entry_for(server.serve("/model.pt", PAYLOAD))
    path = weights.fetch(entry, progress=True)
    assert path == zoo_env / "toy" / "one" / "model.pt"
    assert path.read_bytes() == PAYLOAD
    err = capsys.readouterr().err
    assert "toy:one model.pt" in err and "100%" in err  # the rich progress bar's last frame
    assert f"recorded sha256 {DIGEST}" in err and "no published checksum" in err
    assert weights.recorded_hash(entry, entry.files[0]) == DIGEST
    assert json.loads((zoo_env / "sha256.json").read_text())["toy:one/model.pt"]["sha256"] == DIGEST
    assert leftovers(zoo_env / "toy") == ["model.pt"]  # no .part left behind


def test_published_hash_mismatch_is_rejected_and_the_partial_file_removed(server, zoo_env):
    entry = entry_for(server.serve("/model.pt", PAYLOAD), sha256="ab" * 32)
    with pytest.raises(WeightsHashError) as info:
        weights.fetch(entry)
    message = str(info.value)
    assert DIGEST in message and "ab" * 32 in message and "deleted" in message
    assert leftovers(zoo_env) == []  # neither the file nor its .part is kept
    assert weights.recorded_hash(entry, entry.files[0]) is None


def test_torch_hub_name_prefix_is_checked(server, zoo_env):
    good = WeightsFile.from_hub_url(server.serve(f"/net-{DIGEST[:8]}.pth", PAYLOAD))
    assert good.filename == f"net-{DIGEST[:8]}.pth" and good.sha256 == DIGEST[:8]
    entry = WeightsEntry(tag="toy:hub", files=(good,), format="toy")
    assert weights.fetch(entry).read_bytes() == PAYLOAD
    bad = WeightsFile.from_hub_url(server.serve("/net-0badcafe.pth", PAYLOAD))
    with pytest.raises(WeightsHashError, match="0badcafe"):
        weights.fetch(WeightsEntry(tag="toy:bad", files=(bad,), format="toy"))
    assert not (zoo_env / "toy" / "bad").exists() or leftovers(zoo_env / "toy" / "bad") == []


def test_interrupted_download_resumes_with_http_range(server, zoo_env):
    half = len(PAYLOAD) // 2
    entry = entry_for(server.serve("/model.pt", PAYLOAD, cut_after=[half]), sha256=DIGEST)
    with pytest.raises(WeightsDownloadError) as info:  # no retries: the first call gives up
        weights.fetch(entry)
    part = zoo_env / "toy" / "one" / "model.pt.part"
    assert part.stat().st_size == half
    assert leftovers(zoo_env) == ["model.pt.part"]  # resumable; no .lock
    assert weights.cache_status(entry) == "partial"  # what 'ganenc weights list' shows
    assert server.url("/model.pt") in str(info.value)
    path = weights.fetch(entry)  # the second call asks only for the rest
    assert server.requests[-1] == ("/model.pt", f"bytes={half}-")
    assert path.read_bytes() == PAYLOAD and not part.exists()


def test_a_failed_download_leaves_no_litter(server, zoo_env):
    missing = entry_for(server.url("/missing.pt"))  # 404
    with pytest.raises(WeightsDownloadError):
        weights.fetch(missing)
    empty = entry_for(server.serve("/empty.pt", PAYLOAD, cut_after=[0]), tag="toy:two")
    with pytest.raises(WeightsDownloadError):
        weights.fetch(empty)
    assert not zoo_env.exists() or list(zoo_env.rglob("*")) == []  # no .lock, .part or folder


def test_retries_resume_within_one_call(server, zoo_env, monkeypatch):
    monkeypatch.setenv("GANENC_DOWNLOAD_RETRIES", "2")
    cuts = [100_000, 300_000]
    entry = entry_for(server.serve("/model.pt", PAYLOAD, cut_after=list(cuts)), sha256=DIGEST)
    assert weights.fetch(entry).read_bytes() == PAYLOAD
    assert [r for _, r in server.requests] == [None, "bytes=100000-", "bytes=400000-"]


def test_a_stalled_answer_times_out_and_is_retried(server, zoo_env, monkeypatch):
    monkeypatch.setenv("GANENC_DOWNLOAD_RETRIES", "1")
    monkeypatch.setenv("GANENC_DOWNLOAD_TIMEOUT", "0.3")
    entry = entry_for(server.serve("/model.pt", PAYLOAD, stall=[1.0]), sha256=DIGEST)
    start = time.monotonic()
    assert weights.fetch(entry).read_bytes() == PAYLOAD
    assert len(server.requests) == 2 and time.monotonic() - start < 5


def test_a_stale_part_file_that_spoils_the_hash_is_discarded_and_fetched_again(server, zoo_env):
    entry = entry_for(server.serve("/model.pt", PAYLOAD), sha256=DIGEST)
    part = zoo_env / "toy" / "one" / "model.pt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage from another version")
    assert weights.fetch(entry).read_bytes() == PAYLOAD
    assert [r for _, r in server.requests] == [
        f"bytes={len(b'garbage from another version')}-",
        None,
    ]


def test_server_ignoring_range_restarts_cleanly(server, zoo_env):
    entry = entry_for(server.serve("/model.pt", PAYLOAD, ignore_range=True), sha256=DIGEST)
    part = zoo_env / "toy" / "one" / "model.pt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:1000])
    assert weights.fetch(entry).read_bytes() == PAYLOAD
    assert len(server.requests) == 1


def test_offline_error_names_the_url_and_the_path_without_any_request(server, zoo_env, monkeypatch):
    monkeypatch.setenv("GANENC_OFFLINE", "1")
    url = server.serve("/model.pt", PAYLOAD)
    entry = entry_for(url, notes="fetch it with a browser")
    start = time.monotonic()
    with pytest.raises(WeightsDownloadError) as info:
        weights.fetch(entry)
    assert time.monotonic() - start < 2 and server.requests == []
    message = str(info.value)
    assert url in message and str(zoo_env / "toy" / "one" / "model.pt") in message
    assert "GANENC_OFFLINE" in message and "fetch it with a browser" in message
    assert isinstance(info.value, ganenc.WeightsNotFoundError)


@pytest.mark.parametrize("dead", ["404", "refused"])
def test_dead_link_is_one_error_naming_url_and_path(server, zoo_env, dead):
    if dead == "404":
        url = server.url("/gone.pt")
    else:
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}/model.pt"
    entry = entry_for(url)
    with pytest.raises(WeightsDownloadError) as info:
        weights.fetch(entry)
    message = str(info.value)
    assert message.startswith("cannot download weights toy:one")
    assert url in message and str(zoo_env / "toy" / "one" / "model.pt") in message
    assert ("HTTP 404" in message) if dead == "404" else ("ConnectionRefusedError" in message)
    assert leftovers(zoo_env) == []


def test_mirrors_are_tried_in_order(server, zoo_env):
    entry = WeightsEntry(
        tag="toy:mirrored",
        files=(
            WeightsFile(
                "model.pt",
                (
                    server.url("/missing.pt"),
                    server.serve("/stale.pt", PAYLOAD[:-1]),
                    server.serve("/mirror.pt", PAYLOAD),
                ),
                sha256=DIGEST,
            ),
        ),
        format="toy",
    )
    assert weights.fetch(entry).read_bytes() == PAYLOAD
    assert [p for p, _ in server.requests] == ["/missing.pt", "/stale.pt", "/mirror.pt"]


def test_cache_hit_needs_no_network(server, zoo_env, monkeypatch):
    entry = entry_for(server.serve("/model.pt", PAYLOAD))
    first = weights.fetch(entry)
    server.close()
    monkeypatch.setenv("GANENC_OFFLINE", "1")
    monkeypatch.setattr(  # where fetch looks the downloader up
        weights.resolve,
        "download_file",
        lambda *a, **k: pytest.fail("a cached file was downloaded"),
    )
    assert weights.fetch(entry) == first
    assert weights.cache_status(entry) == "cached" and weights.cached_path(entry) == first


def test_file_placed_by_hand_is_used(zoo_env, monkeypatch):
    monkeypatch.setenv("GANENC_OFFLINE", "1")
    entry = entry_for("http://127.0.0.1:9/model.pt")
    placed = weights.file_path(entry, entry.files[0])
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"mine")
    assert weights.fetch(entry) == placed


def test_later_downloads_are_checked_against_the_recorded_hash(server, zoo_env):
    url = server.serve("/model.pt", PAYLOAD)
    entry = entry_for(url)
    path = weights.fetch(entry)
    path.unlink()
    server.serve("/model.pt", PAYLOAD[::-1])  # upstream changed (or was tampered with)
    with pytest.raises(WeightsHashError) as info:
        weights.fetch(entry)
    assert "recorded at first download" in str(info.value) and "--forget" in str(info.value)
    assert leftovers(zoo_env / "toy") == []


def test_multi_file_entry_downloads_into_one_folder(server, zoo_env):
    entry = WeightsEntry(
        tag="toy:pair",
        files=(
            WeightsFile("config.json", (server.serve("/c.json", b'{"a": 1}'),)),
            WeightsFile("weights.bin", (server.serve("/w.bin", PAYLOAD),)),
        ),
        format="toy",
    )
    assert weights.cache_status(entry) == "missing"
    folder = weights.fetch(entry)
    assert folder == zoo_env / "toy" / "pair" and folder.is_dir()
    assert (folder / "config.json").read_bytes() == b'{"a": 1}'
    assert (folder / "weights.bin").read_bytes() == PAYLOAD
    (folder / "config.json").unlink()
    assert weights.cache_status(entry) == "partial" and weights.cached_path(entry) is None


def test_verify_confirms_records_and_deletes_bad_files(server, zoo_env):
    entry = entry_for(server.serve("/model.pt", PAYLOAD))
    assert [r.status for r in weights.verify(entry)] == ["missing"]
    path = weights.fetch(entry)
    (result,) = weights.verify(entry)
    assert (result.status, result.sha256) == ("ok", DIGEST)
    path.write_bytes(b"corrupted")
    (result,) = weights.verify(entry)
    assert result.status == "mismatch" and not path.exists()
    path.write_bytes(b"placed by hand")
    (result,) = weights.verify(entry, forget=True)
    assert result.status == "recorded"
    assert (
        weights.recorded_hash(entry, entry.files[0])
        == hashlib.sha256(b"placed by hand").hexdigest()
    )


def test_torch_hub_entries_use_torch_cache_and_aliases(tmp_path, zoo_env):
    file = WeightsFile("net-00000000.pth", ("http://127.0.0.1:9/x",), aliases=("other-name.pth",))
    entry = WeightsEntry(tag="features:toy", files=(file,), format="toy", cache="torch-hub")
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    assert weights.torch_hub_checkpoint_dir() == hub
    assert weights.local_path(entry) == hub / "net-00000000.pth"
    hub.mkdir(parents=True)
    (hub / "other-name.pth").write_bytes(b"cached by another tool")
    assert weights.fetch(entry, download=False) == hub / "other-name.pth"


def test_packaged_entries_are_found_in_their_package_never_downloaded_never_deleted(
    tmp_path, monkeypatch
):
    package = tmp_path / "site" / "toy_assets"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "toy.pt").write_bytes(b"shipped bytes")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    digest = hashlib.sha256(b"shipped bytes").hexdigest()
    file = WeightsFile("toy.pt", (), sha256=digest)
    entry = WeightsEntry(
        tag="toy:shipped", files=(file,), format="toy", cache="package", package="toy_assets"
    )
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download"))
    assert weights.fetch(entry) == package / "toy.pt"
    assert weights.cache_status(entry) == "packaged"
    assert [r.status for r in weights.verify(entry)] == ["ok"]
    (package / "toy.pt").write_bytes(b"broken install")
    (result,) = weights.verify(entry)
    assert result.status == "mismatch" and "reinstall" in result.detail
    assert (package / "toy.pt").exists(), "a shipped file is never deleted"
    (package / "toy.pt").unlink()
    with pytest.raises(ganenc.WeightsNotFoundError, match="reinstall"):
        weights.fetch(entry)
    with pytest.raises(ConfigError, match="full sha256"):
        WeightsEntry(
            tag="toy:x", files=(WeightsFile("a", ()),), format="t", cache="package", package="p"
        )
    with pytest.raises(ConfigError, match="package="):
        WeightsEntry(tag="toy:x", files=(file,), format="t", cache="package")


def test_tags_and_paths():
    assert weights.is_tag("stylegan2:ffhq-1024") and weights.is_tag("features:vgg16")
    for text in ("random", "ffhq.pt", "/a/b:c", "https://x.org/a.pt", "a:b:c", None, 3):
        assert not weights.is_tag(text)
    with pytest.raises(ConfigError, match="family:name"):
        WeightsEntry(tag="no-colon", files=(WeightsFile("a", ("u",)),), format="x")
    with pytest.raises(ConfigError, match="hex"):
        WeightsFile("a", ("u",), sha256="not-a-hash")


def test_an_existing_file_with_a_tag_like_name_is_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy:one").write_bytes(b"x")
    assert not weights.is_tag("toy:one")
    assert weights.resolve_checkpoint("toy", "toy:one") == "toy:one"


def test_registry_lookup_by_tag_qualified_and_unknown(server):
    entry = entry_for(server.url("/m.pt"), tag="toy:one")

    class Plugin:
        @hookimpl
        def register_weights(self, register):
            register_entries(register, [entry])

    class Lazy:
        @hookimpl
        def register_weights(self, register):
            register("toy:lazy", "test_weights:LAZY_ENTRY", description="lazy")

    with isolated_registry() as registry, register_plugin(Plugin(), name="zoo"):
        with register_plugin(Lazy(), name="lazy"):
            assert registry.get("weights", "zoo:toy:one").factory is entry
            assert weights.weights_entry("toy:lazy") == LAZY_ENTRY  # imported on first use
            assert [e.tag for e in weights.list_entries("toy")] == ["toy:lazy", "toy:one"]
        with pytest.raises(UnknownComponentError) as info:
            weights.weights_entry("toy:two")
        assert "toy:one" in str(info.value) and "ganenc weights list" in str(info.value)


def test_invalid_tags_fail_only_their_plugin(monkeypatch):
    class Bad:
        @hookimpl
        def register_weights(self, register):
            register("no-family", entry_for("http://127.0.0.1:9/m"))

    with isolated_registry() as registry, register_plugin(Bad(), name="bad"):
        assert registry.components("weights")  # the built-in features:* tags are still there
        assert registry.plugins["bad"].status == "failed"
        assert "family:name" in registry.plugins["bad"].error
    monkeypatch.setenv("GANENC_STRICT_PLUGINS", "1")
    with isolated_registry(), register_plugin(Bad(), name="bad"):
        with pytest.raises(PluginLoadError, match="family:name"):
            ganenc.get_registry().components("weights")


def test_installed_plugins_register_the_issue_tags():
    tags = {e.tag: e for e in weights.list_entries()}
    for tag in (
        "stylegan2:ffhq-1024",
        "stylegan1:ffhq-1024",
        "pggan:celebahq-256",
        "biggan:deep-256",
    ):
        assert tag in tags, tag
    assert {"features:vgg16", "features:inception-fid"} <= set(tags)
    assert tags["pggan:celebahq-256"].files[0].sha256 == "6196db68"
    assert tags["biggan:deep-256"].is_folder
    assert [f.filename for f in tags["biggan:deep-256"].files] == [
        "config.json",
        "pytorch_model.bin",
    ]
    assert tags["stylegan2:ffhq-1024"].format == "nvidia-pkl"
    assert tags["features:vgg16"].cache == "torch-hub"
    for entry in tags.values():
        shipped = entry.cache == "package"  # inside a distribution: no URL, full sha256
        assert entry.licence and entry.source, entry.tag
        assert shipped or all(f.urls for f in entry.files), entry.tag
        assert not shipped or all(f.full_sha256 for f in entry.files), entry.tag
        assert all(f.sha256 is None or len(f.sha256) >= 8 for f in entry.files)


def test_import_and_listing_neither_download_nor_import_torch(tmp_path):
    code = (
        "import sys, urllib.request\n"
        "urllib.request.urlopen = lambda *a, **k: sys.exit('DOWNLOADED')\n"
        "import ganenc.weights, ganenc.features\n"
        "tags = [e.tag for e in ganenc.weights.list_entries()]\n"
        "assert 'stylegan2:ffhq-1024' in tags, tags\n"
        "print('torch' in sys.modules)\n"
    )
    env = {**os.environ, "GANENC_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


LAZY_ENTRY = WeightsEntry(
    tag="toy:lazy", files=(WeightsFile("m.pt", ("http://127.0.0.1:9/m",)),), format="toy"
)


def test_fid_inception_is_found_under_torch_fidelity_name_and_built_around_its_file(
    tmp_path, monkeypatch
):
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    from ganenc import features
    from ganenc.errors import CheckpointError

    entry = features.feature_weights_entry("inception-fid")
    assert entry.filename == "pt_inception-2015-12-05-6726825d.pth"
    assert entry.hash_prefix == "6726825d" and entry.url.startswith("https://github.com/mseitzer/")
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    cached = hub / "weights-inception-2015-12-05-6726825d.pth"  # where torch-fidelity keeps it
    state = {"fc.weight": torch.zeros(2, 2), "Mixed_7c.branch_pool.conv.weight": torch.zeros(1)}
    torch.save(state, cached)
    monkeypatch.setenv("GANENC_OFFLINE", "1")
    assert features.resolve_weights_file("inception-fid") == cached

    built = []

    class FakeExtractor(torch.nn.Module):
        def __init__(self, name, features_list, feature_extractor_weights_path=None):
            super().__init__()
            built.append((name, features_list, feature_extractor_weights_path))

    monkeypatch.setattr(fidelity, "FeatureExtractorInceptionV3", FakeExtractor)
    network = features.build_feature_network("inception-fid")
    assert isinstance(network, FakeExtractor) and not network.training
    assert built == [("inception-v3-compat", ["2048"], str(cached))]
    torch.save({"other.weight": torch.zeros(1)}, cached)
    with pytest.raises(CheckpointError, match="not the FID Inception"):
        features.build_feature_network("inception-fid")
    with pytest.raises(ConfigError, match="random weights are not available"):
        features.build_feature_network("inception-fid", "random")


def test_verify_never_deletes_another_tools_copy_for_the_primary_names_hash(tmp_path):
    file = WeightsFile("net-00000000.pth", ("http://127.0.0.1:9/x",), aliases=("theirs.pth",))
    entry = WeightsEntry(tag="features:toy", files=(file,), format="toy", cache="torch-hub")
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "theirs.pth").write_bytes(b"their bytes")
    (result,) = weights.verify(entry)
    assert result.status == "recorded" and (hub / "theirs.pth").exists()
    (result,) = weights.verify(entry)
    assert result.status == "ok"
