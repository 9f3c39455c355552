"""`dgm sandbox ls` and `dgm sandbox prune` against the real engine, on small
throwaway images this test builds and labels (a kind of its own, so that
nothing else on the engine is listed, judged or removed)."""

from __future__ import annotations

import io
import os
import secrets
import tarfile

import pytest

from dgm.archive.store import ArchiveStore
from tests.support.cli import run_dgm

MINI_TASK = "confini__confini-1"  # a dgm-mini task the campaign below plans


def _context(base: str, payload_bytes: int) -> io.BytesIO:
    """A build context whose image has one layer of its own (random bytes: nothing to share)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dockerfile = f"FROM {base}\nCOPY payload /payload\n".encode()
        for name, data in (("Dockerfile", dockerfile), ("payload", os.urandom(payload_bytes))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture
def throwaway_images(docker_client, base_image):
    """kind -> {name: image id}: a kept task's image, an unplanned task's, a planned
    task's, a kind-wide one, and an untagged leftover; each ~1 MB of its own."""
    kind = f"dgmtest-{secrets.token_hex(4)}"
    made: dict[str, str] = {}
    specs = {"ran": {"dgm.instance": "task-ran"}, "unused": {"dgm.instance": "task-unused"},
             "planned": {"dgm.instance": MINI_TASK}, "shared": {}, "leftover": {"dgm.instance": "task-ran"}}
    try:
        for name, labels in specs.items():
            tag = None if name == "leftover" else f"dgm-{kind}-{name}:v1"
            image, _ = docker_client.images.build(fileobj=_context(base_image, 1_000_000), custom_context=True,
                                                  tag=tag, labels={"dgm.image": kind, **labels}, rm=True,
                                                  network_mode="none")
            made[name] = image.id
        yield kind, made
    finally:
        for image_id in made.values():
            try:
                docker_client.images.remove(image_id, force=True)
            except Exception:  # noqa: BLE001 - pruned by the test already
                pass


@pytest.fixture
def archive_needing_some(tmp_path):
    """An archive: an eval that ran task-ran; a campaign whose plan holds MINI_TASK."""
    store = ArchiveStore.open(None, tmp_path / "archive")
    src = tmp_path / "agent"
    src.mkdir()
    (src / "main.py").write_text("print('hi')\n")
    commit = store.code.commit_tree(src, None, "agent")
    ran = store.create_campaign("eval-1", "eval", {})
    agent = store.add_agent(ran.id, commit, status="seed", origin="seed")
    store.start_task_run(ran.id, agent_id=agent.id, kind="task", benchmark="elsewhere", task_id="task-ran",
                         stage="eval", model="scripted:gold")
    store.create_campaign("planned", "evolution", {"benchmark": "dgm-mini", "model": "scripted:gold", "heldout": [],
                                                   "stages": [{"name": "s1", "tasks": [MINI_TASK]}]})
    store.close()
    return tmp_path / "archive"


def test_ls_shows_dgm_images_with_sizes_and_what_the_archive_needs(throwaway_images, archive_needing_some):
    kind, made = throwaway_images
    proc = run_dgm(["sandbox", "ls", "--kind", kind, "--grace-minutes", "0", "--archive-dir", str(archive_needing_some)])
    assert proc.returncode == 0, proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 7 and cells[1] == kind:
            rows[cells[0]] = cells  # image, kind, task, MB, own MB, created, needed
    assert set(rows) == {f"dgm-{kind}-{n}:v1" for n in ("ran", "unused", "planned", "shared")} | {
        f"<untagged {made['leftover'].removeprefix('sha256:')[:12]}>"}
    ran = rows[f"dgm-{kind}-ran:v1"]
    assert ran[2] == "task-ran" and ran[6] == "yes"
    assert int(ran[4]) >= 1 and int(ran[3].replace(",", "")) > int(ran[4])  # its own MB (the payload) < its size
    assert rows[f"dgm-{kind}-unused:v1"][6].startswith("no: its task is in no campaign")
    assert rows[f"dgm-{kind}-planned:v1"][6] == "yes"  # through the campaign's plan, never run
    assert rows[f"dgm-{kind}-shared:v1"][6] == "yes"
    assert next(v for k, v in rows.items() if k.startswith("<untagged"))[6].startswith("no: untagged")
    assert "5 image(s)" in proc.stdout


def test_prune_dry_run_lists_then_prune_removes_only_what_no_campaign_needs(throwaway_images, archive_needing_some,
                                                                            docker_client):
    kind, made = throwaway_images
    args = ["sandbox", "prune", "--kind", kind, "--archive-dir", str(archive_needing_some)]
    # The leftover is seconds old: kept as maybe a build in progress, unless no grace is given.
    recent = run_dgm([*args, "--dry-run"])
    assert recent.returncode == 0, recent.stderr
    assert "would remove <untagged" not in recent.stdout and "1 of 5 image(s) would be removed" in recent.stdout
    args.extend(["--grace-minutes", "0"])

    dry = run_dgm([*args, "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    assert f"would remove dgm-{kind}-unused:v1" in dry.stdout and "would remove <untagged" in dry.stdout
    assert "2 of 5 image(s) would be removed" in dry.stdout
    assert all(docker_client.images.get(i) for i in made.values())  # nothing removed

    real = run_dgm(args)
    assert real.returncode == 0, real.stderr
    assert "removed 2 image(s)" in real.stdout
    freed_mb = int(real.stdout.split("freed ")[1].split(" MB")[0].replace(",", ""))
    assert freed_mb >= 2  # both payloads, at least
    present = {i.id for i in docker_client.images.list(filters={"label": f"dgm.image={kind}"})}
    assert made["unused"] not in present and made["leftover"] not in present
    assert {made["ran"], made["planned"], made["shared"]} <= present


def test_a_rebuild_removes_the_image_that_held_its_tag(docker_client, base_image):
    """`remove_replaced`, which the image builders call after a rebuild: the image the tag named
    before is removed, not left untagged; one a container still uses is kept (never forced)."""
    from dgm.sandbox.images import image_id, remove_replaced

    tag = f"dgmtest-rebuild-{secrets.token_hex(4)}:v1"

    def build() -> str:
        image, _ = docker_client.images.build(fileobj=_context(base_image, 1000), custom_context=True, tag=tag,
                                              labels={"dgm.image": "dgmtest"}, rm=True, network_mode="none")
        return image.id

    first = build()
    try:
        assert remove_replaced(docker_client, tag, image_id(docker_client, tag)) is False  # not rebuilt: kept
        second = build()
        assert second != first  # random payload: a new image, and `first` lost its tag
        assert remove_replaced(docker_client, tag, first) is True
        assert image_id(docker_client, first) is None and image_id(docker_client, tag) == second
        holder = docker_client.containers.create(second, ["true"])
        try:
            third = build()
            assert remove_replaced(docker_client, tag, second) is False  # a container uses it
            assert image_id(docker_client, second) == second and image_id(docker_client, tag) == third
        finally:
            holder.remove(force=True)
    finally:
        for ref in (tag, first):
            try:
                docker_client.images.remove(ref, force=True)
            except Exception:  # noqa: BLE001 - removed by the test
                pass
        for image in docker_client.images.list(filters={"label": "dgm.image=dgmtest", "dangling": True}):
            docker_client.images.remove(image.id, force=True)
