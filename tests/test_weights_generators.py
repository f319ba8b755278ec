"""Tags end to end: ``ganenc.load_generator(name, TAG)``, ``--checkpoint TAG``, ``ganenc weights``.

A tiny StyleGAN2 saved in rosinality's format is served by a loopback HTTP
server and registered under a test tag; nothing touches the internet.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
import urllib.request

import pytest
import torch
from click.testing import CliRunner
from weights_server import LoopbackServer

import ganenc
from ganenc import hookimpl, weights
from ganenc.cli.weights import weights_group
from ganenc.errors import CheckpointError, UnknownComponentError
from ganenc.testing import register_plugin
from ganenc.weights import WeightsEntry, WeightsFile, register_entries


@pytest.fixture(autouse=True)
def zoo_env(tmp_path, monkeypatch):
    """An empty cache, no retries, and a guard: only loopback URLs may be fetched."""
    monkeypatch.setenv("GANENC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GANENC_OFFLINE", raising=False)
    monkeypatch.setenv("GANENC_DOWNLOAD_RETRIES", "0")
    real_urlopen = urllib.request.urlopen

    def loopback_only(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        assert urllib.parse.urlsplit(url).hostname == "127.0.0.1", f"tests must not fetch {url}"
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", loopback_only)
    return tmp_path / "home" / "weights"


@pytest.fixture(scope="module")
def tiny_stylegan2(tmp_path_factory) -> tuple[bytes, torch.Tensor]:
    """A 32 px StyleGAN2 in rosinality's format, and its images for fixed latents."""
    from ganenc_stylegan.formats import save_rosinality

    generator = ganenc.load_generator(
        "stylegan2", resolution=32, channel_base=64, channel_max=16, z_dim=16, w_dim=16,
        mapping_layers=2, seed=3,
    )  # fmt: skip
    path = save_rosinality(generator.model, tmp_path_factory.mktemp("g") / "tiny.pt")
    latents = generator.sample_latents(2, seed=0)
    with torch.no_grad():
        images = generator.synthesize(latents)
    return path.read_bytes(), images


@pytest.fixture
def zoo(tiny_stylegan2):
    """A loopback server with the tiny file and a plugin registering tags for it."""
    server = LoopbackServer()
    data, _ = tiny_stylegan2
    url = server.serve("/tiny-stylegan2.pt", data)
    entries = [
        WeightsEntry(
            tag="stylegan2:test-tiny-32",
            files=(WeightsFile("tiny.pt", (url,), sha256=hashlib.sha256(data).hexdigest()),),
            format="rosinality-pt",
            description="a tiny test generator",
            resolution=32,
            latents={"z": 16, "w": 16},
            licence="test",
            source="tests",
        ),
        WeightsEntry(
            tag="stylegan2:test-claims-64",
            files=(WeightsFile("tiny.pt", (url,)),),
            format="rosinality-pt",
            resolution=64,
        ),
    ]

    class TestZoo:
        @hookimpl
        def register_weights(self, register):
            register_entries(register, entries)

    with register_plugin(TestZoo(), name="test-zoo"):
        yield server
    server.close()


def test_load_generator_resolves_downloads_and_caches_a_tag(zoo, zoo_env, tiny_stylegan2):
    _, expected = tiny_stylegan2
    generator = ganenc.load_generator("stylegan2", "stylegan2:test-tiny-32")
    assert generator.resolution == 32
    with torch.no_grad():
        images = generator.synthesize(generator.sample_latents(2, seed=0))
    torch.testing.assert_close(images, expected)
    assert (zoo_env / "stylegan2" / "test-tiny-32" / "tiny.pt").is_file()
    zoo.close()  # second load: from the cache, no server
    again = ganenc.load_generator("stylegan2", "stylegan2:test-tiny-32")
    assert again.resolution == 32 and len(zoo.requests) == 1


def test_tag_of_another_family_is_refused_before_any_download(zoo):
    with pytest.raises(CheckpointError, match="for the 'stylegan2' generator, not 'pggan'"):
        ganenc.load_generator("pggan", "stylegan2:test-tiny-32")
    assert zoo.requests == []


def test_unknown_tag_lists_the_family_tags(zoo):
    with pytest.raises(UnknownComponentError) as info:
        ganenc.load_generator("stylegan2", "stylegan2:test-nope")
    assert "stylegan2:test-tiny-32" in str(info.value) and "stylegan2:ffhq-1024" in str(info.value)


def test_a_file_that_contradicts_its_entry_is_reported(zoo):
    with pytest.raises(CheckpointError, match="resolution 32 \\(expected 64\\)"):
        ganenc.load_generator("stylegan2", "stylegan2:test-claims-64")


def test_generator_alias_and_plain_paths_still_work(zoo, tmp_path, tiny_stylegan2):
    path = tmp_path / "local.pt"
    path.write_bytes(tiny_stylegan2[0])
    assert ganenc.load_generator("stylegan2", str(path)).resolution == 32
    assert weights.resolve_checkpoint("stylegan2", None) is None
    assert weights.resolve_checkpoint("stylegan2", path) == path


def test_sample_command_accepts_a_tag(zoo, tmp_path):
    from ganenc.cli.main import cli

    out = tmp_path / "grid.png"
    result = CliRunner().invoke(
        cli,
        ["sample", "--gan", "stylegan2", "--checkpoint", "stylegan2:test-tiny-32", "-n", "2",
         "--out", str(out), "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_offline_cli_error_is_one_line_naming_url_and_path(zoo, zoo_env, monkeypatch, tmp_path):
    from ganenc.cli.main import cli

    monkeypatch.setenv("GANENC_OFFLINE", "1")
    result = CliRunner().invoke(
        cli, ["sample", "--gan", "stylegan2", "--checkpoint", "stylegan2:test-tiny-32"]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert zoo.url("/tiny-stylegan2.pt") in result.output
    assert str(zoo_env / "stylegan2" / "test-tiny-32" / "tiny.pt") in result.output


def test_weights_list_download_verify_path(zoo, zoo_env):
    runner = CliRunner()
    rows = json.loads(
        runner.invoke(weights_group, ["list", "--family", "stylegan2", "--json"]).output
    )
    (row,) = [r for r in rows if r["tag"] == "stylegan2:test-tiny-32"]
    assert row["status"] == "missing" and row["resolution"] == 32 and row["licence"] == "test"
    assert row["files"][0]["urls"] == [zoo.url("/tiny-stylegan2.pt")]
    table = runner.invoke(weights_group, ["list", "--family", "stylegan2"]).output
    assert "stylegan2:test-tiny-32" in table and "ffhq-1024" in table

    path = zoo_env / "stylegan2" / "test-tiny-32" / "tiny.pt"
    missing = runner.invoke(weights_group, ["path", "stylegan2:test-tiny-32"])
    assert missing.exit_code == 1 and str(path) in missing.output and "not cached" in missing.output

    downloaded = runner.invoke(weights_group, ["download", "stylegan2:test-tiny-32"])
    assert downloaded.exit_code == 0, downloaded.output
    assert downloaded.output.strip().splitlines()[-1] == str(path) and path.is_file()
    found = runner.invoke(weights_group, ["path", "stylegan2:test-tiny-32"])
    assert (found.exit_code, found.output.strip()) == (0, str(path))
    cached = json.loads(runner.invoke(weights_group, ["list", "--cached", "--json"]).output)
    downloaded_tags = [r["tag"] for r in cached if r["status"] != "packaged"]  # shipped: always
    assert downloaded_tags == ["stylegan2:test-tiny-32"]

    verified = runner.invoke(weights_group, ["verify"])
    assert verified.exit_code == 0 and verified.output.startswith("ok")
    path.write_bytes(b"tampered")
    failed = runner.invoke(weights_group, ["verify", "stylegan2:test-tiny-32"])
    assert failed.exit_code == 1 and "mismatch" in failed.output and not path.exists()

    unknown = runner.invoke(weights_group, ["download", "stylegan2:nope"])
    assert unknown.exit_code == 1 and "no weights tagged 'stylegan2:nope'" in unknown.output


def test_ganenc_list_shows_weights_kind(zoo):
    from ganenc.cli.main import cli

    result = CliRunner().invoke(cli, ["list", "--kind", "weights", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["stylegan2:test-tiny-32"]["plugin"] == "test-zoo"
    assert rows["stylegan2:test-tiny-32"]["kind"] == "weights"
    assert "features:vgg16" in rows and "pggan:celebahq-256" in rows


@pytest.mark.parametrize("tag", ["features:vgg16", "encoder:stylegan2-emoji-64"])
def test_a_tag_that_names_no_generator_says_where_it_goes(tag):
    from ganenc.cli.main import cli

    result = CliRunner().invoke(cli, ["sample", "--checkpoint", tag])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"weights '{tag}' are not a generator's" in result.output
    assert "no generator named" not in result.output
    with pytest.raises(CheckpointError, match="are not a generator's"):
        ganenc.load_generator(tag)
