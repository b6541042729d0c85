"""The page's files as served: labelled controls, its own assets only, small, a real gallery."""

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.real_pictures import CREDITS
from scripts.gallery import write_gallery
from service.contract import CLASS_NAMES
from training.data import find_data_dir, load

STATIC = Path(__file__).resolve().parents[2] / "service/http/static/ui"
PAGE_BUDGET = 100 * 1024  # the page's own HTML + JS + CSS, gallery images aside


@pytest.fixture
def page(client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_every_control_has_a_label_and_assets_are_local(page):
    for control in re.findall(r"<(?:select|input)\b[^>]*>", page):
        ident = re.search(r'id="([^"]+)"', control)
        assert ident, control
        # Labelled by wrapping: the control sits inside its <label>.
        label_start = page.rfind("<label", 0, page.index(control))
        assert page.rfind("</label>", 0, page.index(control)) < label_start, control
    for asset in re.findall(r'(?:src|href)="([^"#]+)"', page):
        assert asset.startswith(("/", "data:")), f"{asset} is not served by this app"


def test_the_page_and_its_assets_fit_the_budget(client, page):
    assets = re.findall(r'(?:src|href)="(/ui/[^"]+\.(?:js|css))"', page)
    assert {Path(a).name for a in assets} == {"page.js", "page.css"}
    sizes = [len(page.encode())]
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200
        sizes.append(len(response.data))
    assert sum(sizes) <= PAGE_BUDGET, sizes


def test_gallery_images_are_the_real_test_images_they_claim_to_be(client):
    entries = json.loads(client.get("/ui/gallery/gallery.json").data)
    tests = [entry for entry in entries if entry["kind"] == "test"]
    assert len(tests) >= 30
    assert {entry["class_id"] for entry in tests} == set(range(10))
    data = load(find_data_dir(None))
    for entry in tests:
        response = client.get(f"/ui/gallery/{entry['file']}")
        assert response.status_code == 200
        assert len(response.data) < 4096
        pixels = np.asarray(Image.open(STATIC / "gallery" / entry["file"]))
        np.testing.assert_array_equal(pixels, data.test_images[entry["index"]])
        assert entry["class_id"] == data.test_labels[entry["index"]]


def test_the_committed_gallery_is_what_the_generator_writes(tmp_path):
    entries = write_gallery(None, tmp_path)  # the tests never see a fetched real-picture set
    assert {entry["kind"] for entry in entries} == {"test", "photo", "real"}
    committed = sorted(path.name for path in (STATIC / "gallery").iterdir())
    assert sorted(path.name for path in tmp_path.iterdir()) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (STATIC / "gallery" / name).read_bytes(), name


def test_the_drawn_pictures_name_their_source_and_licence(client):
    entries = [e for e in json.loads((STATIC / "gallery" / "gallery.json").read_text())
               if e["kind"] == "real"]  # fmt: skip

    assert len(entries) >= 5
    assert len({e["class_id"] for e in entries}) == len(entries)  # one per class shown
    for entry in entries:
        assert entry["credit"] == CREDITS[entry["source"]]
        assert entry["label"] == CLASS_NAMES[entry["class_id"]]
        response = client.get(f"/ui/gallery/{entry['file']}")
        assert response.status_code == 200
        assert Image.open(io.BytesIO(response.data)).size[0] <= 128


def test_unknown_assets_are_json_404s(client):
    response = client.get("/ui/../models/fashion-mnist/aliases.json")
    assert response.status_code == 404
    assert client.get("/ui/nope.js").status_code == 404
