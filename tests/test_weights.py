"""The model zoo's downloader and cache, against a loopback HTTP server (never the internet)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
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


@contextlib.contextmanager
def raw_server(status: int = 200, headers: dict[str, str] | None = None, body: bytes = b""):
    """An HTTP/1.0 loopback server for what LoopbackServer cannot send: any header, no length.

    Every GET gets ``status``, ``headers`` and ``body``, ended by closing the connection.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


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
    assert "--forget" not in message  # forgetting records cannot help against a published hash
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
    path.write_bytes(b"placed by hand")
    (result,) = weights.verify(entry)  # differs only from the hash recorded at first download
    assert result.status == "mismatch" and path.read_bytes() == b"placed by hand"
    assert "was kept" in result.detail and "verify toy:one --forget" in result.detail
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
    assert weights.is_tag("zoo:stylegan2:ffhq-1024")  # one plugin's tag of a shared name
    for text in ("random", "ffhq.pt", "/a/b:c", "https://x.org/a.pt", "a:b:c:d", None, 3):
        assert not weights.is_tag(text)
    url = ("https://example.org/a",)
    with pytest.raises(ConfigError, match="family:name"):
        WeightsEntry(tag="no-colon", files=(WeightsFile("a", url),), format="x")
    with pytest.raises(ConfigError, match="hex"):
        WeightsFile("a", url, sha256="not-a-hash")


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


def broken_entry():
    """A lazy entry whose module is broken (as a bad sha256 at import would be)."""
    raise ConfigError("sha256 of 'h.pt' must be 8 to 64 hex digits, got 'zzzz'")


def test_two_plugins_one_tag_the_qualified_tag_picks_one(server, caplog):
    """The conflict's advice ('choose one with plugin:family:name') was refused as no tag."""
    first = entry_for(server.url("/a.pt"), tag="toy:shared")
    second = entry_for(server.url("/b.pt"), tag="toy:shared")

    def plugin(entry):
        class Plugin:
            @hookimpl
            def register_weights(self, register):
                register_entries(register, [entry])

        return Plugin()

    class Broken:
        @hookimpl
        def register_weights(self, register):
            register("toy:broken", "test_weights:broken_entry", description="lazy, broken")

    with (
        isolated_registry(),
        register_plugin(plugin(first), name="one"),
        register_plugin(plugin(second), name="two"),
        register_plugin(Broken(), name="broken"),
    ):
        assert weights.weights_entry("two:toy:shared") is second
        assert weights.weights_entry("one:toy:shared") is first
        assert weights.is_tag("two:toy:shared")
        with pytest.raises(ganenc.errors.ComponentConflictError, match="one:toy:shared"):
            weights.weights_entry("toy:shared")
        # one plugin's entry that cannot be imported hides no other plugin's
        with caplog.at_level("WARNING"):
            listed = [e.tag for e in weights.list_entries("toy")]
        assert listed == ["toy:shared", "toy:shared"]
        assert "broken:toy:broken left out" in caplog.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"size": -5}, "positive number of bytes"),
        ({"urls": ("not a url",)}, "http(s):// or file://"),
    ],
)
def test_weights_files_are_checked_when_declared(fields, message):
    """A negative size made every download 'differ from the expected -5' and be deleted."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        WeightsFile(**{"filename": "m.pt", "urls": ("https://example.org/m.pt",), **fields})


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
    state = {"fc.weight": torch.ones(2, 2), "Mixed_7c.branch_pool.conv.weight": torch.ones(1)}
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
    torch.save({"other.weight": torch.ones(1)}, cached)
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


# -- a probe's findings: web pages, trust on first use, locks, resumes, messages ---------------
WEB_PAGE = b"<!DOCTYPE html>\n<html><body>Sign in to OneDrive</body></html>"


@pytest.mark.parametrize("how", ["body", "content-type"])
def test_a_web_page_is_refused_as_weights_nothing_kept_nor_recorded(server, zoo_env, how):
    if how == "body":
        url = server.serve("/share.pt", WEB_PAGE)
        context = contextlib.nullcontext()
    else:
        context = raw_server(headers={"Content-Type": "text/html; charset=utf-8"}, body=b"x" * 99)
    with context as base:
        url = url if how == "body" else f"{base}/share.pt"
        entry = entry_for(url, notes="OneDrive link: fetch it with a browser")
        with pytest.raises(WeightsDownloadError) as info:
            weights.fetch(entry)
    message = str(info.value)
    assert "\n" not in message and "web page" in message and url in message
    assert "fetch it with a browser" in message
    assert f"save it as {zoo_env / 'toy' / 'one' / 'model.pt'}" in message
    assert not zoo_env.exists() or leftovers(zoo_env) == []  # no file, no .part, no record


def test_verify_keeps_a_hand_placed_file_that_differs_only_from_a_recorded_hash(server, zoo_env):
    entry = entry_for(server.serve("/model.pt", PAYLOAD[::-1]))  # a bad first download
    path = weights.fetch(entry)
    path.write_bytes(PAYLOAD)  # the right file, fetched by hand
    (result,) = weights.verify(entry)
    assert result.status == "mismatch" and path.read_bytes() == PAYLOAD
    assert "--forget" in result.detail
    (result,) = weights.verify(entry, forget=True)
    assert result.status == "recorded" and weights.recorded_hash(entry, entry.files[0]) == DIGEST
    (result,) = weights.verify(entry)
    assert result.status == "ok"


def test_a_waiting_process_remakes_the_folders_a_failed_holder_removed(zoo_env):
    from ganenc.weights.cache import _locked

    path = zoo_env / "toy" / "one" / "model.pt"
    outcome: list[object] = []

    def second_process() -> None:
        try:
            with _locked(path):
                path.write_bytes(b"fetched")
            outcome.append("done")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome.append(exc)

    waiter = threading.Thread(target=second_process)
    with pytest.raises(TimeoutError), _locked(path):
        waiter.start()
        time.sleep(0.3)  # the waiter blocks on the lock meanwhile
        raise TimeoutError("the first download failed")
    waiter.join(10)
    assert outcome == ["done"]
    assert leftovers(zoo_env) == ["model.pt"]  # no .lock


def test_a_failed_lock_wait_removes_the_folders_it_made(zoo_env, monkeypatch):
    import fcntl

    from ganenc.weights.cache import _locked

    real_flock = fcntl.flock

    def interrupted_while_waiting(fd, operation):
        if operation == fcntl.LOCK_EX:  # the blocking wait: Ctrl-C
            raise KeyboardInterrupt
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", interrupted_while_waiting)
    with pytest.raises(KeyboardInterrupt), _locked(zoo_env / "toy" / "one" / "model.pt"):
        pass
    assert not zoo_env.exists()


def test_a_hash_prefix_in_an_alias_name_is_checked(tmp_path):
    file = WeightsFile(
        "net-00000000.pth",
        ("http://127.0.0.1:9/x",),
        aliases=("theirs-0badcafe.pth", f"good-{DIGEST[:8]}.pth"),
    )
    entry = WeightsEntry(tag="features:toy", files=(file,), format="toy", cache="torch-hub")
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "theirs-0badcafe.pth").write_bytes(PAYLOAD)
    (result,) = weights.verify(entry)
    assert result.status == "mismatch" and "0badcafe" in result.detail
    assert (hub / "theirs-0badcafe.pth").exists()  # another tool's file: reported, kept
    assert weights.recorded_hash(entry, file) is None
    (hub / "theirs-0badcafe.pth").unlink()
    (hub / f"good-{DIGEST[:8]}.pth").write_bytes(PAYLOAD)
    assert [r.status for r in weights.verify(entry)] == ["ok"]


def test_without_a_known_hash_a_leftover_part_is_not_resumed(server, zoo_env):
    entry = entry_for(server.serve("/model.pt", PAYLOAD))
    part = zoo_env / "toy" / "one" / "model.pt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"bytes of some other file")
    assert weights.fetch(entry).read_bytes() == PAYLOAD
    assert server.requests == [("/model.pt", None)]  # started over: nothing could check a splice
    assert weights.recorded_hash(entry, entry.files[0]) == DIGEST
    cut = entry_for(server.serve("/cut.pt", PAYLOAD, cut_after=[1000]), tag="toy:cut")
    with pytest.raises(WeightsDownloadError):
        weights.fetch(cut)
    assert not (zoo_env / "toy" / "cut").exists()  # an unresumable .part is not kept


def test_a_body_of_unknown_length_is_kept_but_its_hash_not_trusted(zoo_env, capsys):
    with raw_server(body=PAYLOAD) as base:  # no Content-Length: a cut looks like the end
        entry = entry_for(f"{base}/model.pt")
        assert weights.fetch(entry).read_bytes() == PAYLOAD
    assert weights.recorded_hash(entry, entry.files[0]) is None
    err = capsys.readouterr().err
    assert "no length" in err and "not recorded" in err and "weights verify toy:one" in err


def test_forced_download_replaces_the_file_only_when_the_new_one_is_whole(server, zoo_env):
    entry = entry_for(server.serve("/model.pt", PAYLOAD, cut_after=[1000]), sha256=DIGEST)
    path = weights.file_path(entry, entry.files[0])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"old copy")
    with pytest.raises(WeightsDownloadError):
        weights.fetch(entry, force=True)
    assert path.read_bytes() == b"old copy"
    assert leftovers(zoo_env) == ["model.pt", "model.pt.part"]  # the usual, resumable .part
    assert weights.fetch(entry, force=True).read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/model.pt", "bytes=1000-")
    assert leftovers(zoo_env) == ["model.pt"]


def test_a_folder_in_the_files_place_is_reported_before_downloading(server, zoo_env):
    entry = entry_for(server.serve("/model.pt", PAYLOAD), sha256=DIGEST)
    (zoo_env / "toy" / "one" / "model.pt").mkdir(parents=True)
    for force in (False, True):
        with pytest.raises(WeightsDownloadError, match="is a folder, not a file"):
            weights.fetch(entry, force=force)
    assert server.requests == [] and leftovers(zoo_env) == []


def test_a_redirect_loop_is_a_one_line_error(zoo_env):
    with raw_server(302, {"Location": "/loop.pt", "Content-Length": "0"}) as base:
        with pytest.raises(WeightsDownloadError) as info:
            weights.fetch(entry_for(f"{base}/loop.pt"))
    message = str(info.value)
    assert "\n" not in message and "redirect" in message and f"{base}/loop.pt" in message


def test_unknown_tags_get_the_closest_tag_whatever_the_case(server):
    entry = entry_for(server.url("/m.pt"), tag="toy:good")

    class Plugin:
        @hookimpl
        def register_weights(self, register):
            register_entries(register, [entry])

    with isolated_registry(), register_plugin(Plugin(), name="zoo"):
        for typed in ("TOY:GOOD", "toy:god"):
            with pytest.raises(UnknownComponentError, match="did you mean 'toy:good'"):
                weights.weights_entry(typed)
        with pytest.raises(UnknownComponentError, match="tags of family 'toy': toy:good"):
            weights.weights_entry("Toy:other-thing")
        with pytest.raises(UnknownComponentError, match="no family 'nope'; families: .*toy"):
            weights.weights_entry("nope:x")
