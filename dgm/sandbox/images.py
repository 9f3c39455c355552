"""Sandbox base image: the name it goes by (the builder comes with the sandbox)."""

BASE_IMAGE_REPO = "dgm-base"
BASE_IMAGE_VERSION = "bookworm-v1"


def base_image_tag() -> str:
    """The tag every dgm-mini task and self-modification sandbox runs on."""
    return f"{BASE_IMAGE_REPO}:{BASE_IMAGE_VERSION}"


def build_script():
    """The offline builder (debootstrap + docker import), shipped with the repo."""
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "sandboxes" / "build_base_image.sh"
