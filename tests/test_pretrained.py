"""Published models by name or URL: downloads through pooch from a loopback server that
each test starts and stops (no network), the hash record, the offline error, the
one-time conversion to safetensors + JSON and the trust rule for Lightning files."""

from __future__ import annotations

import dataclasses
import fractions
import hashlib
import io
import json
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_records import random_records

from mcrt_sklearn import pretrained
from mcrt_sklearn.cli import main
from mcrt_sklearn.collate import collate
from mcrt_sklearn.errors import (
    CheckpointError,
    ModelDownloadError,
    ModelHashError,
    ModelOfflineError,
    UnknownModelError,
)
from mcrt_sklearn.estimators.encoder import MCRTEncoder
from mcrt_sklearn.model import MCRT, MCRTConfig, load_checkpoint
from mcrt_sklearn.model.checkpoint import (
    checkpoint_info,
    file_sha256,
    is_safetensors,
    read_checkpoint_metadata,
)
from mcrt_sklearn.pretrained import ModelInfo, cache_path, fetch, figshare

TINY = dict(num_blocks=1, hid_dim=16, num_heads=2, alignn_hidden_dim=8, alignn_num_conv=1,
            use_images=False)


class LoopbackServer:
    """http.server in a daemon thread on 127.0.0.1:<free port>, serving ``files``
    (URL path -> bytes). ``truncate`` > 0: that many next answers announce the whole
    length, send half the body and close the connection."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.truncate = 0
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.hits.append(self.path)
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if server.truncate > 0:
                    server.truncate -= 1
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def models_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "models"
    monkeypatch.setenv(pretrained.ENV_VAR, str(home))
    return home


@pytest.fixture
def serve():
    servers = []

    def start(files):
        servers.append(LoopbackServer(files))
        return servers[-1]

    yield start
    for s in servers:
        try:
            s.stop()
        except OSError:
            pass


def _reference_bytes(model: MCRT, lightning_objects: bool = False) -> bytes:
    """A checkpoint in the reference's layout; with ``lightning_objects`` it also holds
    a Python object that weights_only refuses, as Lightning's callbacks do."""
    ckpt = {"state_dict": {k: v.clone() for k, v in model.state_dict().items()},
            "hyper_parameters": {"config": model.config.to_reference_config()}}
    if lightning_objects:
        ckpt["callbacks"] = {"ModelCheckpoint": fractions.Fraction(1, 3)}
        ckpt["epoch"] = 7
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = MCRT(MCRTConfig(**TINY, tasks=("map", "apc", "cdp", "sep"))).eval()
    batch = collate(random_records(3, n_atoms=(4, 10), images=False, seed=2),
                    require_images=False)
    return model, batch


def _same_outputs(a: MCRT, b: MCRT, batch) -> None:
    with torch.no_grad():
        out_a, out_b = a(batch), b(batch)
    for key in ("cls_feats", "raw_cls_feats", "map_logits", "cdp", "sep_logits"):
        assert torch.equal(out_a[key], out_b[key]), key


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_fetch_by_url_then_from_the_cache_after_the_server_stops(models_home, serve, tiny,
                                                                 capsys):
    model, batch = tiny
    blob = _reference_bytes(model)
    server = serve({"/models/x.ckpt": blob})
    url = server.url("/models/x.ckpt")
    path = fetch(url, progress=False)
    assert path == cache_path(url) and path.is_relative_to(models_home)
    assert path.read_bytes() == blob
    digest = hashlib.sha256(blob).hexdigest()
    assert (path.parent / "x.ckpt.sha256").read_text().split()[0] == digest
    notice = capsys.readouterr().err
    assert "licence" in notice and digest in notice
    _same_outputs(model, load_checkpoint(url), batch)
    server.stop()
    assert fetch(url, progress=False) == path  # no server: the cached, hash-checked file
    enc = MCRTEncoder(checkpoint=url).fit()
    assert enc.started_from_ == {"checkpoint": url, "file": "x.ckpt", "sha256": digest}
    assert server.hits == ["/models/x.ckpt"]


def test_fetch_by_a_registry_entry(models_home, serve, tiny, monkeypatch):
    model, batch = tiny
    blob = _reference_bytes(model)
    server = serve({"/tiny.ckpt": blob})
    entry = ModelInfo(name="mcrt-tiny-test", description="a tiny test model",
                      url=server.url("/tiny.ckpt"), file_name="tiny.ckpt",
                      sha256=hashlib.sha256(blob).hexdigest(), licence="CC0 (test)")
    monkeypatch.setitem(pretrained.REGISTRY, entry.name, entry)
    listed = {m["name"]: m for m in pretrained.list_models()}["mcrt-tiny-test"]
    assert listed["source"] == entry.url and listed["sha256"] == entry.sha256
    assert listed["licence"] == "CC0 (test)" and listed["cached"] is None
    _same_outputs(model, load_checkpoint("mcrt-tiny-test"), batch)
    assert cache_path("mcrt-tiny-test") == models_home / "mcrt-tiny-test" / "tiny.ckpt"
    server.stop()
    enc = MCRTEncoder(checkpoint="mcrt-tiny-test").fit()  # from the cache
    with torch.no_grad():
        expected = model.encode(batch)["cls_feats"]
    assert enc.n_features_out_ == 16  # the encoder keeps no heads
    assert torch.equal(enc.network_.encode(batch)["cls_feats"], expected)
    with pytest.raises(ValueError, match="registered already"):
        pretrained.register_model(entry)


def test_hash_mismatch_is_a_typed_error_and_leaves_no_file(models_home, serve, tiny,
                                                           monkeypatch):
    blob = _reference_bytes(tiny[0])
    server = serve({"/m.ckpt": blob})
    entry = ModelInfo(name="mcrt-bad-hash", description="pinned to another hash",
                      url=server.url("/m.ckpt"), file_name="m.ckpt", sha256="0" * 64)
    monkeypatch.setitem(pretrained.REGISTRY, entry.name, entry)
    with pytest.raises(ModelHashError) as info:
        fetch("mcrt-bad-hash", progress=False, retries=0)
    assert info.value.path == str(cache_path("mcrt-bad-hash"))
    assert _leftovers(models_home) == []
    # a cached file that changed after its first download is refused, not used
    url = server.url("/m.ckpt")
    path = fetch(url, progress=False)
    path.write_bytes(blob[:-10] + b"0123456789")
    with pytest.raises(ModelHashError, match="recorded at its first download"):
        fetch(url, progress=False)
    with pytest.raises(ModelHashError):
        MCRTEncoder(checkpoint=url).fit()


def test_connection_closed_mid_file_leaves_no_partial_file(models_home, serve, tiny):
    blob = _reference_bytes(tiny[0])
    server = serve({"/big.ckpt": blob})
    url = server.url("/big.ckpt")
    server.truncate = 1
    with pytest.raises(ModelDownloadError) as info:
        fetch(url, progress=False, retries=0)
    assert type(info.value) is ModelDownloadError  # neither offline nor a hash error
    assert "nothing was written" in str(info.value)
    assert _leftovers(models_home) == []  # no half-written file, no temporary file
    path = fetch(url, progress=False)  # the retry gets the whole file
    assert path.read_bytes() == blob
    # pooch's own retries recover from one broken answer
    url2 = server.url("/big2.ckpt")
    server.files["/big2.ckpt"] = blob
    server.truncate = 1
    assert fetch(url2, progress=False, retries=1).read_bytes() == blob


def test_offline_error_names_the_url_the_file_and_the_path(models_home, serve, tiny,
                                                           monkeypatch, capsys):
    blob = _reference_bytes(tiny[0])
    server = serve({})
    url = server.url("/gone/model.ckpt")
    server.stop()  # nothing listens on that port any more
    with pytest.raises(ModelOfflineError) as info:
        fetch(url, progress=False, retries=0, timeout=5)
    err = info.value
    target = cache_path(url)
    assert err.path == str(target) and err.url == url and err.file_name == "model.ckpt"
    message = str(err)
    assert url in message and "model.ckpt" in message and str(target) in message
    # a hand-downloaded file put at that path is used (its sha256 recorded on first use)
    target.parent.mkdir(parents=True, exist_ok=True)  # the failed fetch made the folder
    target.write_bytes(blob)
    capsys.readouterr()
    assert fetch(url, progress=False) == target
    assert "using the file found in the cache" in capsys.readouterr().err
    assert (target.parent / "model.ckpt.sha256").read_text().split()[0] == file_sha256(target)
    # the published model without a network: the article page, its file name, the path
    monkeypatch.setattr(figshare, "FIGSHARE_API", url.replace("/gone/model.ckpt", "/{article_id}"))
    with pytest.raises(ModelOfflineError) as info:
        fetch("mcrt-pretrained", progress=False, timeout=5)
    where = models_home / "mcrt-pretrained" / "MCRT.ckpt"
    assert info.value.path == str(where) and str(where) in str(info.value)
    assert pretrained.ARTICLE_PAGE in str(info.value) and "MCRT.ckpt" in str(info.value)
    # an entry without any published URL says so without trying the network
    monkeypatch.setitem(pretrained.REGISTRY, "mcrt-nourl", ModelInfo(
        name="mcrt-nourl", description="no URL", file_name="n.ckpt", page="https://example.org/x"))
    with pytest.raises(ModelOfflineError, match="no published download URL") as info:
        fetch("mcrt-nourl")
    assert info.value.path == str(models_home / "mcrt-nourl" / "n.ckpt")


def test_published_model_found_in_the_figshare_article_listing(models_home, serve, tiny,
                                                               monkeypatch, capsys):
    """``mcrt-pretrained`` is looked up by name in the article's file list (figshare's
    public API), checked against the md5 figshare publishes, then its sha256 recorded."""
    model, batch = tiny
    blob = _reference_bytes(model, lightning_objects=True)
    server = serve({"/files/1": blob})
    article = {"files": [{"name": "MCRT.ckpt", "download_url": server.url("/files/1"),
                          "computed_md5": hashlib.md5(blob).hexdigest(), "size": len(blob)},
                         {"name": "other.ckpt", "download_url": server.url("/files/2")}],
               "license": {"name": "CC BY 4.0 (test)"}}
    server.files["/v2/articles/27822705"] = json.dumps(article).encode()
    monkeypatch.setattr(figshare, "FIGSHARE_API", server.url("/v2/articles/{article_id}"))
    capsys.readouterr()
    path = fetch("mcrt-pretrained", progress=False)
    assert path == models_home / "mcrt-pretrained" / "MCRT.ckpt" and path.read_bytes() == blob
    notice = capsys.readouterr().err
    assert "CC BY 4.0 (test)" in notice and "Chem. Sci." in notice
    with pytest.raises(CheckpointError, match="trusted=True"):
        load_checkpoint("mcrt-pretrained")
    _same_outputs(model, load_checkpoint("mcrt-pretrained", trusted=True), batch)
    # a fine-tuned entry, whose file name in the article is not published: a hand download
    with pytest.raises(ModelDownloadError, match="not known") as info:
        fetch("mcrt-charge-mobility", progress=False)
    assert "MCRT.ckpt" in str(info.value)  # the article's files are listed
    assert info.value.path == str(models_home / "mcrt-charge-mobility" / "mcrt-charge-mobility.ckpt")
    # the md5 figshare publishes is checked
    shutil.rmtree(models_home / "mcrt-pretrained")
    article["files"][0]["computed_md5"] = "0" * 32
    (models_home / ".figshare" / "article-27822705.json").write_text(json.dumps(article))
    with pytest.raises(ModelHashError):
        fetch("mcrt-pretrained", progress=False, retries=0)
    assert _leftovers(models_home / "mcrt-pretrained") == []


def test_untrusted_lightning_checkpoint_is_refused(models_home, serve, tiny):
    model, batch = tiny
    server = serve({"/l.ckpt": _reference_bytes(model, lightning_objects=True)})
    url = server.url("/l.ckpt")
    with pytest.raises(CheckpointError, match="trusted=True"):
        MCRTEncoder(checkpoint=url).fit()
    with pytest.raises(CheckpointError, match="trusted=True"):
        load_checkpoint(url)
    _same_outputs(model, load_checkpoint(url, trusted=True), batch)
    assert MCRTEncoder(checkpoint=url, trusted=True).fit().n_features_out_ == 16


def test_convert_writes_safetensors_json_with_identical_outputs(models_home, serve, tiny,
                                                                tmp_path, capsys):
    model, batch = tiny
    blob = _reference_bytes(model, lightning_objects=True)
    src = tmp_path / "lightning.ckpt"
    src.write_bytes(blob)
    dst = tmp_path / "converted.safetensors"
    with pytest.raises(CheckpointError, match="trusted=True"):
        main(["models", "convert", str(src), str(dst)])
    assert not dst.exists()
    assert main(["models", "convert", str(src), str(dst), "--trusted"]) == 0
    assert is_safetensors(dst)
    from safetensors import safe_open

    with safe_open(str(dst), framework="pt") as fh:
        doc = json.loads(fh.metadata()["mcrt_sklearn"])  # the JSON document
    assert doc["format_version"] == 2 and doc["config"]["tasks"] == ["map", "apc", "cdp", "sep"]
    source = doc["provenance"]["converted_from"]
    assert source["sha256"] == hashlib.sha256(blob).hexdigest()
    assert source["reference_config"]["hid_dim"] == 16 and source["epoch"] == 7
    converted = load_checkpoint(dst)  # no trusted needed
    _same_outputs(model, converted, batch)
    _same_outputs(load_checkpoint(src, trusted=True), converted, batch)
    # a converted file loads without ever unpickling
    assert read_checkpoint_metadata(dst)["unpickled"] is False
    capsys.readouterr()
    assert main(["models", "info", str(dst)]) == 0
    out = capsys.readouterr().out
    n_params = sum(p.numel() for p in model.parameters())
    assert f"parameters: {n_params:,}" in out and "heads: map, apc, cdp, sep" in out
    assert "converted_from" in out and "hid_dim=16" in out
    info = checkpoint_info(dst)
    assert info["safe"] and info["n_parameters"] == n_params
    assert not checkpoint_info(src, trusted=True)["safe"]


def test_cli_models_list_fetch_and_info(models_home, serve, tiny, capsys, monkeypatch):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "mcrt-pretrained" in out and pretrained.ARTICLE_PAGE in out
    assert "mcrt-charge-mobility" in out and "cm^2/(V s)" in out and str(models_home) in out
    assert main(["models", "info", "mcrt-pretrained"]) == 0
    out = capsys.readouterr().out
    assert "not downloaded yet" in out and str(models_home / "mcrt-pretrained" / "MCRT.ckpt") in out
    server = serve({"/c.ckpt": _reference_bytes(tiny[0])})
    assert main(["models", "fetch", server.url("/c.ckpt"), "--no-progress"]) == 0
    path = capsys.readouterr().out.strip()
    assert Path(path).is_file() and Path(path) == cache_path(server.url("/c.ckpt"))
    assert main(["models", "info", path, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["heads"] == ["map", "apc", "cdp", "sep"] and info["architecture"]["hid_dim"] == 16


def test_fine_tuned_entries_and_unknown_names(models_home):
    models = {m["name"]: m for m in pretrained.list_models()}
    assert {"mcrt-pretrained", "mcrt-lattice-energy-t2", "mcrt-charge-mobility",
            "mcrt-methane-capacity", "mcrt-delta-energy"} <= set(models)
    for m in models.values():
        assert set(m) >= {"name", "description", "source", "size", "sha256", "licence"}
        assert m["source"].startswith("https://figshare.com/")
        assert m["sha256"] is None  # no hash is published
    t2 = pretrained.get_model_info("mcrt-lattice-energy-t2")
    assert (t2.unit, t2.target_mean, t2.target_std) == ("kJ/mol", -121.097, 22.639)
    with pytest.raises(UnknownModelError, match="mcrt-pretrained"):
        pretrained.get_model_info("mcrt-nonexistent")
    with pytest.raises(FileNotFoundError, match="not a published model"):
        load_checkpoint("mcrt-nonexistent")
    with pytest.raises(FileNotFoundError):
        MCRTEncoder(checkpoint="no/such/file.ckpt").fit()


def test_converted_fine_tuned_model_predicts_in_its_unit(models_home, tmp_path, monkeypatch):
    """A published fine-tuned regression file becomes a saved MCRTRegressor whose
    predictions are de-normalised with the reference script's mean and std."""
    from mcrt_sklearn.estimators.regressor import MCRTRegressor

    torch.manual_seed(3)
    model = MCRT(MCRTConfig(**TINY, tasks=("regression",))).eval()
    entry = dataclasses.replace(pretrained.get_model_info("mcrt-lattice-energy-t2"),
                                name="mcrt-t2-test")
    monkeypatch.setitem(pretrained.REGISTRY, entry.name, entry)
    target = cache_path(entry.name)
    target.parent.mkdir(parents=True)
    target.write_bytes(_reference_bytes(model))  # as if downloaded by hand
    out = pretrained.convert(entry.name, tmp_path / "t2.safetensors")
    reg = MCRTRegressor.load(out)
    records = random_records(4, images=False, seed=4)
    with torch.no_grad():
        raw = model(collate(records, require_images=False))["regression"].numpy()
    np.testing.assert_allclose(reg.predict(records), raw * 22.639 - 121.097, rtol=1e-5)
    meta = read_checkpoint_metadata(out)
    assert meta["provenance"]["published_model"]["name"] == "mcrt-t2-test"
    assert meta["provenance"]["published_model"]["unit"] == "kJ/mol"


def test_reference_checkpoint_over_loopback_reproduces_reference_outputs(
        shared_data, models_home, serve, tmp_path):
    """The reference code's own checkpoint, served by URL, gives the reference's [CLS]
    embeddings; after the server stops it comes from the cache; converted, it loads
    without ``trusted`` and gives the same numbers."""
    from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

    parity = shared_data / "reference_parity"
    ref = np.load(parity / "reference_small_outputs.npz")
    cifs = [shared_data / "mcrt_examples" / "cifs" / f"5A_CSP_{i}.cif" for i in range(1, 6)]
    records = []
    for rec in MCRTFeaturizer(images=False).transform([str(p) for p in cifs]):
        img = np.load(shared_data / "mcrt_examples" / "imgs" / f"{rec.structure_id}.npy",
                      allow_pickle=True)
        records.append(dataclasses.replace(rec, image=np.asarray(img[0], np.float32),
                                           image_scalars=np.asarray(img[1:5], np.float32)))
    server = serve({"/x.ckpt": (parity / "reference_small.ckpt").read_bytes()})
    url = server.url("/x.ckpt")
    emb = MCRTEncoder(checkpoint=url, trusted=True).fit().transform(records)
    np.testing.assert_allclose(emb, ref["cls_feats"], atol=1e-4)
    server.stop()
    again = MCRTEncoder(checkpoint=url, trusted=True).fit().transform(records)
    np.testing.assert_array_equal(again, emb)
    converted = tmp_path / "small.safetensors"
    assert main(["models", "convert", url, str(converted), "--trusted"]) == 0
    safe = MCRTEncoder(checkpoint=str(converted)).fit()
    np.testing.assert_array_equal(safe.transform(records), emb)
    raw = MCRTEncoder(checkpoint=str(converted), output="raw_cls").fit().transform(records)
    np.testing.assert_allclose(raw, ref["raw_cls_feats"], atol=1e-4)
